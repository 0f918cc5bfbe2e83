"""Real mail servers for the email node tests, on 127.0.0.1 and free ports, always stopped.

- ``Dovecot``: the IMAP server, started from its own config in a temp dir (no system
  service): plain IMAP with STARTTLS on one port, implicit TLS on another, users from a
  passwd-file the tests add to, Maildir storage, delivery with ``dovecot-lda``.
- ``SmtpServer``: aiosmtpd with STARTTLS, implicit TLS or no TLS, and AUTH; it hands every
  accepted message to ``dovecot-lda`` for recipients Dovecot knows, so what ``email.send``
  sends is what ``email.receive`` reads, through both real servers.
- ``make_certificate``: a throwaway self-signed certificate for 127.0.0.1 and localhost.

Dovecot is a Debian package (``dovecot-imapd``); where it is missing the tests that need it
are skipped with the reason, except in CI (``FLOWRUNNER_REQUIRE_SERVICES=1``), which fails.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import HANG_GUARD, REQUIRE_SERVICES

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
SMTP_USER = "mailer"
SMTP_PASSWORD = 'sm"tp p@ss/1'
DOMAIN = "example.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- a certificate ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path
    pem: str  # the certificate, what a client trusts (`ca_cert`)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate valid for 127.0.0.1 and localhost, for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flowrunner test mail")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_text(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return Certificate(cert_path, key_path, pem)


# --- Dovecot --------------------------------------------------------------------------------


def dovecot_installed() -> bool:
    return Path(DOVECOT).exists() and Path(DOVECOT_LDA).exists()


def require_dovecot() -> None:
    if dovecot_installed():
        return
    reason = "Dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)"
    if REQUIRE_SERVICES:
        pytest.fail(f"CI requires every service: {reason}")
    pytest.skip(reason)


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
postmaster_address = postmaster@{domain}
lda_mailbox_autocreate = yes
passdb {{
  driver = passwd-file
  # One file per user: a new file is read at once, an edited one only when its mtime
  # second changes.
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
{login_chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{extra}"""


class Dovecot:
    """One ``dovecot -F`` process on its own config; ``add_user`` makes a mailbox owner."""

    def __init__(self, certificate: Certificate) -> None:
        # Not under pytest's tmp dir: that is private (0700) to the test user, and Dovecot's
        # mail processes run as an unprivileged user when the tests run as root.
        self.root = Path(tempfile.mkdtemp(prefix="flowrunner-dovecot-"))
        self.root.chmod(0o755)
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.config = self.root / "dovecot.conf"
        self.process: subprocess.Popen[bytes] | None = None
        login_chroot = extra = ""
        if os.geteuid() == 0:
            # Dovecot never gives mail access to root: mail belongs to "nobody".
            mail_user = pwd.getpwnam("nobody")
            internal_user, login_user = "dovecot", "dovenull"
        else:
            # Everything as the test user, who may not chroot.
            mail_user = pwd.getpwuid(os.geteuid())
            internal_user = login_user = mail_user.pw_name
            login_chroot = "  chroot ="
            extra = "service anvil {\n  chroot =\n}\n"
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", self.uid, self.gid)
        (self.root / "users").mkdir()
        self.config.write_text(
            _CONFIG.format(
                root=self.root,
                cert=certificate.cert_path,
                key=certificate.key_path,
                internal_user=internal_user,
                internal_group=_group_of(internal_user),
                login_user=login_user,
                uid=self.uid,
                gid=self.gid,
                domain=DOMAIN,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                login_chroot=login_chroot,
                extra=extra,
            )
        )

    def start(self) -> None:
        with (self.root / "stdout.log").open("ab") as out:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log_text()}")
            if _greets(self.imap_port) and _accepts(self.imaps_port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dovecot did not start: {self.log_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        parts = [self.root / "dovecot.log", self.root / "stdout.log"]
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in parts if p.exists())

    def add_user(self, name: str, password: str) -> None:
        """A mailbox owner (``name`` is its address)."""
        (self.root / "users" / name).write_text(f"{name}:{{PLAIN}}{password}\n")

    def deliver(
        self, user: str, raw: bytes, sender: str = f"sender@{DOMAIN}", folder: str = "INBOX"
    ) -> None:
        """Deliver ``raw`` into ``user``'s ``folder`` (made if missing) as a mail server
        would (dovecot-lda)."""
        done = subprocess.run(
            [DOVECOT_LDA, "-c", str(self.config), "-d", user, "-f", sender, "-m", folder],
            input=raw,
            capture_output=True,
            timeout=HANG_GUARD,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"dovecot-lda failed ({done.returncode}): {done.stderr.decode()}\n{self.log_text()}"
            )


def _group_of(user: str) -> str:
    import grp

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def dovecot(certificate: Certificate) -> Iterator[Dovecot]:
    require_dovecot()
    server = Dovecot(certificate)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- SMTP -----------------------------------------------------------------------------------


REFUSED_DOMAIN = "refused.test"


@dataclass
class Received:
    """One message the SMTP server accepted."""

    sender: str
    recipients: list[str]
    data: bytes
    auth_user: str | None


@dataclass
class MailHandler:
    """aiosmtpd handler: refuses ``*@refused.test``, records the rest, and delivers to
    Dovecot users (when there is a Dovecot)."""

    dovecot: Dovecot | None = None
    received: list[Received] = field(default_factory=list)
    # Set to hold DATA until released: a conversation stuck mid-message (cancellation tests).
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hold is not None:
            self.closed.clear()  # from here on: this client's connection
            self.held.set()
            while not self.hold.is_set():  # aiosmtpd's own loop: poll, don't block it
                await _nap()
        data = envelope.original_content or b""
        auth = session.auth_data
        user = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.received.append(
            Received(envelope.mail_from or "", list(envelope.rcpt_tos), data, user)
        )
        if self.dovecot is not None:
            for rcpt in envelope.rcpt_tos:
                self.dovecot.deliver(rcpt, data, envelope.mail_from or "")
        return "250 2.0.0 Message accepted for delivery"


async def _nap() -> None:
    import asyncio

    await asyncio.sleep(0.02)


class _Authenticator:
    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _TrackingSMTP(SMTP):
    """Notes when a client's connection closes (cancellation tests wait for it)."""

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.event_handler.closed.set()


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without STARTTLS: on purpose for `tls: implicit` (the whole session is TLS,
            # which aiosmtpd does not count) and `tls: none`.
            warnings.simplefilter("ignore", UserWarning)
            return _TrackingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """aiosmtpd on a free port: ``tls`` is ``starttls`` (offered and required before AUTH),
    ``implicit`` (TLS from the first byte) or ``none`` (no TLS; AUTH over plain text)."""

    def __init__(
        self,
        certificate: Certificate,
        tls: str = "starttls",
        dovecot: Dovecot | None = None,
        auth_required: bool = True,
    ) -> None:
        self.handler = MailHandler(dovecot)
        self.port = free_port()
        self.tls = tls
        smtp: dict[str, Any] = {
            "server_hostname": "mail.example.test",
            "auth_required": auth_required,
            "authenticator": _Authenticator(),
            "auth_require_tls": tls == "starttls",
        }
        if tls == "starttls":
            smtp.update(tls_context=certificate.server_context(), require_starttls=True)
        elif tls == "implicit":
            smtp["ssl_context"] = certificate.server_context()
        self._controller = _Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=HANG_GUARD, **smtp
        )

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        if self.handler.hold is not None:
            self.handler.hold.set()
        self._controller.stop()


@contextmanager
def smtp_server(certificate: Certificate, **kwargs: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(certificate, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Silent:
    """Where the silent server listens; ``connected`` is set once a client connected,
    ``gone`` once a client that connected has gone away."""

    port: int
    connected: threading.Event = field(default_factory=threading.Event)
    gone: threading.Event = field(default_factory=threading.Event)


@contextmanager
def silent_server() -> Iterator[Silent]:
    """A TCP server that accepts and never says a word: the client waits for a greeting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    silent = Silent(listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            silent.connected.set()
            with conn:
                conn.settimeout(0.1)
                while not stop.is_set():
                    try:
                        if conn.recv(4096) == b"":
                            silent.gone.set()
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        silent.gone.set()
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield silent
    finally:
        stop.set()
        thread.join(HANG_GUARD)
        listener.close()


# --- local servers for trying the email example by hand ---------------------------------------


@contextmanager
def mail_setup(
    directory: Path, mailbox: str = f"ana@{DOMAIN}"
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Dovecot and a delivering STARTTLS SMTP server, with a mailbox: the run input and
    secrets the email example (examples/email-report.yaml) takes."""
    certificate = make_certificate(directory)
    password = f"imap-{os.urandom(6).hex()}"
    with dovecot(certificate) as imap, smtp_server(certificate, dovecot=imap) as smtp:
        imap.add_user(mailbox, password)
        run_input = {
            "smtp_port": smtp.port,
            "smtp_user": SMTP_USER,
            "imap_port": imap.imaps_port,
            "mailbox": mailbox,
            "ca_cert": certificate.pem,
        }
        yield run_input, {"SMTP_PASSWORD": SMTP_PASSWORD, "IMAP_PASSWORD": password}


def main() -> None:
    """``python -m tests.mail_servers``: serve until Ctrl-C, after printing how to run the
    email example against these servers."""
    import json

    directory = Path(tempfile.mkdtemp(prefix="flowrunner-mail-"))
    with mail_setup(directory) as (run_input, secrets):
        secrets_file = directory / "secrets.json"
        secrets_file.write_text(json.dumps(secrets))
        print("SMTP (STARTTLS, AUTH) and IMAP (implicit TLS) on 127.0.0.1. Run the example with:")
        print(
            "flowrunner run examples/email-report.yaml "
            f"--input '{json.dumps(run_input)}' --secrets-file {secrets_file}",
            flush=True,
        )
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
