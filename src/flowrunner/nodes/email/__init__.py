"""The email built-ins: ``email.send`` (SMTP) and ``email.receive`` (IMAP).

``connection`` holds what both share (TLS, timeouts, the error they raise), ``checks`` the
run-time params check, ``compose``/``parse`` turn params into a MIME message and a message
into JSON (no I/O), ``imap`` is the IMAP conversation, ``send``/``receive`` the node types.
"""

from flowrunner.nodes.base import DefinedNodeType
from flowrunner.nodes.email.connection import EmailError
from flowrunner.nodes.email.receive import EMAIL_RECEIVE
from flowrunner.nodes.email.send import EMAIL_SEND

# (type, aliases) of this package's built-ins.
EMAIL_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [
    (EMAIL_SEND, ()),
    (EMAIL_RECEIVE, ()),
]

__all__ = ["EMAIL_RECEIVE", "EMAIL_SEND", "EMAIL_TYPES", "EmailError"]
