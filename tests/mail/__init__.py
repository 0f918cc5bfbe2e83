"""Real mail servers for the email node tests, on 127.0.0.1 and free ports, always stopped:
Dovecot (IMAP), aiosmtpd (SMTP, delivering to Dovecot), a silent TCP server, and a
throwaway certificate they share."""

from tests.mail.certificate import Certificate, make_certificate
from tests.mail.dovecot import DOMAIN, Dovecot, dovecot, require_dovecot
from tests.mail.setup import mail_setup
from tests.mail.silent import Silent, silent_server
from tests.mail.smtp import (
    REFUSED_DOMAIN,
    SMTP_PASSWORD,
    SMTP_USER,
    Received,
    SmtpServer,
    smtp_server,
)

__all__ = [
    "DOMAIN",
    "REFUSED_DOMAIN",
    "SMTP_PASSWORD",
    "SMTP_USER",
    "Certificate",
    "Dovecot",
    "Received",
    "Silent",
    "SmtpServer",
    "dovecot",
    "mail_setup",
    "make_certificate",
    "require_dovecot",
    "silent_server",
    "smtp_server",
]
