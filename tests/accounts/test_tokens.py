from __future__ import annotations

from flowrunner.accounts.tokens import (
    TOKEN_PREFIX,
    display_prefix,
    generate_token,
    hash_token,
    looks_like_token,
)


def test_generated_tokens_are_prefixed_random_and_recognised() -> None:
    tokens = {generate_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith(TOKEN_PREFIX)
        assert looks_like_token(token)


def test_foreign_strings_are_not_tokens() -> None:
    token = generate_token()
    assert not looks_like_token(token[:-1])
    assert not looks_like_token("ghp_" + token[4:])
    assert not looks_like_token("")


def test_hash_is_sha256_hex_and_display_prefix_is_short() -> None:
    token = generate_token()
    assert len(hash_token(token)) == 64
    assert hash_token(token) != hash_token(generate_token())
    assert display_prefix(token) == token[:10]
