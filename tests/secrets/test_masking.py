from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable

import pytest

from flowrunner.secrets import MASK, Masker


def test_masks_every_occurrence_in_nested_values_and_keeps_shapes() -> None:
    masker = Masker(["hunter22"])
    masked = masker.mask(
        {"log": "pw=hunter22; again hunter22", "items": ["hunter22", 7], "pair": ("a", "hunter22")}
    )
    assert masked == {"log": f"pw={MASK}; again {MASK}", "items": [MASK, 7], "pair": ("a", MASK)}


def test_the_longest_secret_is_masked_whole() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask_text("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


def test_regex_characters_in_secrets_are_literal() -> None:
    masker = Masker(["a.b*c", "(x|y)"])
    assert masker.mask_text("aXbc a.b*c (x|y) x") == f"aXbc {MASK} {MASK} x"


def test_short_values_are_masked_only_as_whole_fields_and_empty_ones_ignored() -> None:
    masker = Masker(["", "ok"])
    assert masker.mask_text("the check went ok") == "the check went ok"
    assert masker.mask({"status": "ok", "ok": 1, "list": ["ok", "okay"]}) == {
        "status": MASK,
        MASK: 1,
        "list": [MASK, "okay"],
    }
    assert masker.contains({"a": ["ok"]})
    assert not masker.contains("okay")


def test_secrets_used_as_mapping_keys_are_masked() -> None:
    masker = Masker(["hunter22"])
    assert masker.mask({"hunter22": 1, "x-hunter22-y": [{"hunter22": 2}]}) == {
        MASK: 1,
        f"x-{MASK}-y": [{MASK: 2}],
    }
    assert masker.contains({"hunter22": None})
    assert not masker.contains({"other": "x"})


SECRET = 'pa"ss\\wo rd/1+é'


@pytest.mark.parametrize(
    "encoded",
    [
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        json.dumps(json.dumps({"k": SECRET})),
        repr(SECRET),
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote(SECRET),
        urllib.parse.quote_plus(SECRET),
        urllib.parse.quote(SECRET, safe="").lower(),
        SECRET.encode().hex(),
        SECRET.encode().hex().upper(),
    ],
)
def test_escaped_and_encoded_forms_are_masked(encoded: str) -> None:
    masker = Masker([SECRET])
    masked = masker.mask_text(f"before {encoded} after")
    assert MASK in masked
    assert "pa" not in masked.replace("before", "")


@pytest.mark.parametrize("prefix", ["", "u", "us", "usr:"])
@pytest.mark.parametrize("suffix", ["", "!", "!!"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_of_a_secret_is_masked_at_every_alignment(
    prefix: str, suffix: str, encode: Callable[[bytes], bytes]
) -> None:
    masker = Masker([SECRET])
    text = encode((prefix + SECRET + suffix).encode()).decode()
    masked = masker.mask_text(f"Authorization: Basic {text}")
    assert MASK in masked
    # What is left around the mask is at most the groups shared with the prefix/suffix.
    assert len(masked) - len("Authorization: Basic ") < 16


def test_structured_secrets_mask_their_strings_and_their_json() -> None:
    smtp = {"host": "smtp.example.test", "user": "mailer", "password": "p4ss-word", "port": 587}
    masker = Masker.for_secrets({"SMTP": smtp, "TOKEN": "tok-123"})
    text = masker.mask_text("connecting to smtp.example.test:587 as mailer with p4ss-word")
    assert text == f"connecting to {MASK}:587 as {MASK} with {MASK}"
    assert masker.mask_text(f"config {json.dumps(smtp)}") == f"config {MASK}"
    assert masker.mask({"auth": "Bearer tok-123"}) == {"auth": f"Bearer {MASK}"}


def test_without_secrets_objects_pass_through_unchanged() -> None:
    value = {"a": ["b"]}
    assert Masker([]).mask(value) is value


def test_overlapping_secrets_mask_like_a_longest_first_alternation() -> None:
    values = ["abcd", "abcdef", "abcx", "bcdefg", "zzzz", "abcdefgh"]
    flat = re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))
    masker = Masker(values)
    for text in ("abcdefgh abcdefg abcde abcx xabcdx zzzzz", "bcdefgabcd", "ab cd"):
        assert masker.mask_text(text) == flat.sub(MASK, text)
