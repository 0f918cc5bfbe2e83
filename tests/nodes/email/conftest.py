"""Real mail servers for the email node tests: one certificate and one Dovecot per module,
SMTP servers per test (they record what they received)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.mail import (
    Certificate,
    Dovecot,
    SmtpServer,
    dovecot,
    make_certificate,
    smtp_server,
)

_users = itertools.count(1)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def imap_server(certificate: Certificate) -> Iterator[Dovecot]:
    with dovecot(certificate) as server:
        yield server


@pytest.fixture
def mailbox(imap_server: Dovecot) -> tuple[str, str]:
    """A new Dovecot user of its own: ``(address, password)``; tests never share a mailbox."""
    name = f"user{next(_users)}@example.test"
    password = f"pw-{name}-1"
    imap_server.add_user(name, password)
    return name, password


@pytest.fixture
def smtp(certificate: Certificate, imap_server: Dovecot) -> Iterator[SmtpServer]:
    """STARTTLS and AUTH required; delivers to Dovecot."""
    with smtp_server(certificate, dovecot=imap_server) as server:
        yield server
