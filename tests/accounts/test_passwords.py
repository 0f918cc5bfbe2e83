from __future__ import annotations

import pytest

from flowrunner.accounts import PasswordHasher
from flowrunner.accounts.passwords import check_password_rules
from flowrunner.errors import InvalidInput
from tests.accounts.conftest import cheap_hasher


async def test_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    hasher = cheap_hasher()
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert await hasher.verify(hashed, "correct horse")
    assert not await hasher.verify(hashed, "wrong horse")


async def test_a_garbage_hash_never_verifies() -> None:
    assert not await cheap_hasher().verify("not-a-hash", "anything")


async def test_hashes_made_with_other_parameters_need_a_rehash() -> None:
    old = await cheap_hasher().hash("password1")
    assert PasswordHasher(time_cost=2, memory_cost=2048).needs_rehash(old)
    assert not cheap_hasher().needs_rehash(old)


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_password_rules_reject_too_short_and_too_long(password: str) -> None:
    with pytest.raises(InvalidInput):
        check_password_rules(password)
