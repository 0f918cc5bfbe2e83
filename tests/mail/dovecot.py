"""Dovecot, the real IMAP server of the email tests, started from its own config in a temp dir.

No system service: ``dovecot -F`` on free ports of 127.0.0.1 — plain IMAP with STARTTLS on
one, implicit TLS on another — with a passwd-file per user, Maildir storage and delivery with
``dovecot-lda``. Dovecot is a Debian package (``dovecot-imapd``); where it is missing the
tests that need it are skipped with the reason, except in CI (``FLOWRUNNER_REQUIRE_SERVICES=1``),
which fails them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD, REQUIRE_SERVICES
from tests.e2e.server import free_port
from tests.mail.certificate import Certificate

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
DOMAIN = "example.test"


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
