"""Signatures the ``standardwebhooks`` library accepts, and endpoint secrets sealed at rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from flowrunner.secrets import Keyring
from flowrunner.webhooks.secretbox import EndpointConfig, seal, unseal
from flowrunner.webhooks.signing import check_secret, new_secret, signature_headers

BODY = b'{"type": "execution.completed"}'


def test_library_verifies_what_we_sign() -> None:
    secret = new_secret()
    headers = signature_headers("msg_1", datetime.now(UTC), BODY, [secret])
    assert Webhook(secret).verify(BODY, headers) == {"type": "execution.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_two_secrets_sign_during_rotation_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers("msg_2", datetime.now(UTC), BODY, [new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)


def test_a_raw_secret_signs_with_its_bytes() -> None:
    headers = signature_headers("msg_3", datetime.now(UTC), BODY, ["plain text secret"])
    Webhook(b"plain text secret").verify(BODY, headers)


def test_malformed_whsec_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        check_secret("whsec_not base64!")


def test_sealed_config_holds_no_plaintext_and_rotation_grace_ends() -> None:
    keyring = Keyring([Fernet.generate_key().decode()])
    now = datetime.now(UTC)
    config = EndpointConfig(current="whsec_c2VjcmV0", headers={"X-Key": "hdr-value"})
    rotated = config.rotated("whsec_bmV3", now + timedelta(hours=1))
    stored = seal(keyring, rotated)
    for plain in ("c2VjcmV0", "bmV3", "hdr-value"):
        assert plain not in stored
    back = unseal(keyring, stored)
    assert back == rotated
    assert back.signing(now) == ["whsec_bmV3", "whsec_c2VjcmV0"]
    assert back.signing(now + timedelta(hours=2)) == ["whsec_bmV3"]
