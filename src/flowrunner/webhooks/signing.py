"""Standard Webhooks signatures (the ``standardwebhooks`` library): the three headers.

``webhook-signature`` holds one ``v1,<base64 HMAC-SHA256>`` per secret, space-separated: during
a secret rotation both the new and the old secret sign, so a receiver verifying with either
accepts the message (the library tries every signature it is given).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh signing secret, in the spec's ``whsec_<base64>`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """ValueError unless ``secret`` is usable: ``whsec_<base64>`` or any other text (used raw,
    as the library does with a secret that lacks the prefix)."""
    if not secret or len(secret) > 512:
        raise ValueError("a webhook secret must be 1 to 512 characters")
    if secret.startswith(SECRET_PREFIX):
        try:
            base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except ValueError:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret


def _signer(secret: str) -> Webhook:
    if secret.startswith(SECRET_PREFIX):
        return Webhook(secret)
    return Webhook(secret.encode())  # a raw secret (as a flow may give one): its bytes are the key


def signature_headers(
    message_id: str, timestamp: datetime, body: bytes, secrets_: Sequence[str]
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers."""
    signatures = " ".join(_signer(s).sign(message_id, timestamp, body) for s in secrets_)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
