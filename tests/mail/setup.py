"""The email example's servers in one go: ``mail_setup`` for tests/test_examples.py and the
CLI and server tests, ``python -m tests.mail`` to try the example by hand."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.mail.certificate import make_certificate
from tests.mail.dovecot import DOMAIN, dovecot
from tests.mail.smtp import SMTP_PASSWORD, SMTP_USER, smtp_server


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
    """``python -m tests.mail``: serve until Ctrl-C, after printing how to run the
    email example against these servers."""
    # A plain `kill` stops the servers as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    directory = Path(tempfile.mkdtemp(prefix="flowrunner-mail-"))
    try:
        with mail_setup(directory) as (run_input, secrets):
            secrets_file = directory / "secrets.json"
            secrets_file.write_text(json.dumps(secrets))
            print(
                "SMTP (STARTTLS, AUTH) and IMAP (implicit TLS) on 127.0.0.1. Run the example with:"
            )
            print(
                "flowrunner run examples/email-report.yaml "
                f"--input '{json.dumps(run_input)}' --secrets-file {secrets_file}",
                flush=True,
            )
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
