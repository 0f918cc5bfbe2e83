"""The signature schemes as functions of (config, key, raw bytes, headers, now): the clock
is injected, so timestamp tolerance is tested at its edges. Counterparties sign with their
own code (the ``standardwebhooks`` library for Standard Webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from flowrunner.triggers.verification import VerificationFailed, verify

KEY = "whsec_" + base64.b64encode(b"s" * 32).decode()
NOW = 1_800_000_000
BODY = b'{"id": "evt_9", "amount": 5}'


def _standard(msg_id: str, ts: int, key: str = KEY) -> dict[str, str]:
    signature = Webhook(key).sign(msg_id, datetime.fromtimestamp(ts, UTC), BODY)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_standard_webhooks_signed_by_the_library_verify_and_name_the_delivery() -> None:
    verified = verify({"scheme": "standard"}, KEY, BODY, _standard("msg_1", NOW), NOW)
    assert verified.delivery_id == "msg_1"


def test_standard_webhooks_accept_any_of_several_signatures_during_a_rotation() -> None:
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    headers = _standard("msg_2", NOW, other)
    headers["webhook-signature"] += " " + _standard("msg_2", NOW)["webhook-signature"]
    assert verify({"scheme": "standard"}, KEY, BODY, headers, NOW).delivery_id == "msg_2"


@pytest.mark.parametrize(("skew", "ok"), [(300, True), (-300, True), (301, False), (-301, False)])
def test_the_timestamp_tolerance_holds_on_both_sides(skew: int, ok: bool) -> None:
    headers = _standard("msg_3", NOW + skew)
    if ok:
        verify({"scheme": "standard"}, KEY, BODY, headers, NOW)
    else:
        with pytest.raises(VerificationFailed, match="tolerance"):
            verify({"scheme": "standard"}, KEY, BODY, headers, NOW)


def test_stripe_tolerance_is_configurable_and_the_event_id_is_the_delivery() -> None:
    ts = NOW - 100
    signature = hmac.new(b"sk", f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers = {"stripe-signature": f"t={ts},v1=deadbeef,v1={signature}"}
    assert verify({"scheme": "stripe"}, "sk", BODY, headers, NOW).delivery_id == "evt_9"
    with pytest.raises(VerificationFailed, match="tolerance"):
        verify({"scheme": "stripe", "tolerance": "1m"}, "sk", BODY, headers, NOW)


def test_a_scheme_without_its_key_in_the_vault_refuses_everything() -> None:
    with pytest.raises(VerificationFailed, match="missing from the vault"):
        verify({"scheme": "github"}, None, BODY, {"x-hub-signature-256": "sha256=00"}, NOW)


def test_a_token_may_come_as_a_bearer_authorization() -> None:
    verify({"scheme": "token"}, "t0k3n", b"", {"authorization": "Bearer t0k3n"}, NOW)
    with pytest.raises(VerificationFailed, match="mismatch"):
        verify({"scheme": "token"}, "t0k3n", b"", {"authorization": "Bearer t0k3m"}, NOW)


def test_a_delivery_id_header_names_the_delivery_for_any_scheme() -> None:
    config = {"scheme": "none", "delivery_id_header": "X-Request-Id"}
    assert verify(config, None, BODY, {"x-request-id": "r-1"}, NOW).delivery_id == "r-1"
