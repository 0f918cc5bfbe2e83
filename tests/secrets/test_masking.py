from __future__ import annotations

import json

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


def test_short_values_are_masked_too_and_empty_ones_ignored() -> None:
    masker = Masker(["", "q"])
    assert masker.mask_text("quiet") == f"{MASK}uiet"


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
