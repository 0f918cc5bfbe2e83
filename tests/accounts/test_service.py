from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import SecretStr

from flowrunner.accounts import AccountService, LoginLimiter, PasswordHasher
from flowrunner.accounts.tokens import hash_token
from flowrunner.audit import AuditLog, actions
from flowrunner.config import Settings
from flowrunner.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from flowrunner.storage import Account, Store
from tests.accounts.conftest import ManualClock

PASSWORD = "s3cret-pass"


@pytest.fixture
async def alice(accounts: AccountService) -> Account:
    return await accounts.create_account("alice", PASSWORD)


@pytest.fixture
async def admin(accounts: AccountService) -> Account:
    return await accounts.create_account("root", PASSWORD, is_admin=True)


async def actions_of(audit: AuditLog) -> list[tuple[str, str]]:
    page = await audit.list(None, limit=1000)
    return [(r.action, str(r.data["outcome"])) for r in page.items]


async def test_created_account_authenticates_and_is_audited(
    accounts: AccountService, audit: AuditLog, alice: Account
) -> None:
    assert not alice.is_admin
    assert alice.password_hash.startswith("$argon2id$")
    found = await accounts.authenticate_password("alice", PASSWORD, client="c")
    assert found.id == alice.id
    assert (actions.ACCOUNT_CREATED, "ok") in await actions_of(audit)


async def test_usernames_are_unique(accounts: AccountService, alice: Account) -> None:
    with pytest.raises(Conflict):
        await accounts.create_account("alice", "other-password")


@pytest.mark.parametrize("username", ["ab", "-dash", "has space", "x" * 65])
async def test_invalid_usernames_are_rejected(accounts: AccountService, username: str) -> None:
    with pytest.raises(InvalidInput):
        await accounts.create_account(username, PASSWORD)


async def test_only_admins_create_accounts(
    accounts: AccountService, alice: Account, admin: Account
) -> None:
    with pytest.raises(Forbidden):
        await accounts.create_account("bob", PASSWORD, actor=alice)
    bob = await accounts.create_account("bob", PASSWORD, actor=admin)
    assert bob.username == "bob"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [("alice", "wrong-password", "wrong password"), ("nobody", PASSWORD, "unknown username")],
)
async def test_bad_credentials_fail_alike_and_are_audited(
    accounts: AccountService,
    audit: AuditLog,
    alice: Account,
    username: str,
    password: str,
    reason: str,
) -> None:
    with pytest.raises(Unauthenticated, match="invalid username or password"):
        await accounts.authenticate_password(username, password, client="10.0.0.9")
    last = (await audit.list(None, limit=1000)).items[-1]
    assert (last.action, last.target) == (actions.LOGIN, username)
    assert last.data == {"outcome": "failed", "client": "10.0.0.9", "reason": reason}


async def test_an_oversized_username_is_cut_before_it_is_counted_or_audited(
    accounts: AccountService, audit: AuditLog
) -> None:
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_password("x" * 100_000, PASSWORD, client="c")
    last = (await audit.list(None, limit=1000)).items[-1]
    assert last.target == "x" * 64


async def test_disabled_accounts_cannot_authenticate_with_password_or_token(
    accounts: AccountService, alice: Account, admin: Account
) -> None:
    issued = await accounts.create_token(alice, "ci")
    await accounts.admin_set_disabled(admin, alice.id, True)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_password("alice", PASSWORD, client="c")
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_token(issued.token)
    await accounts.admin_set_disabled(admin, alice.id, False)
    assert (await accounts.authenticate_token(issued.token)).id == alice.id


async def test_repeated_failures_rate_limit_even_the_right_password_from_that_client(
    accounts: AccountService, alice: Account
) -> None:
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await accounts.authenticate_password("alice", "wrong-password", client="attacker")
    with pytest.raises(RateLimited) as caught:
        await accounts.authenticate_password("alice", PASSWORD, client="attacker")
    assert caught.value.retry_after > 0
    # The owner, from their own address, is not locked out.
    assert (await accounts.authenticate_password("alice", PASSWORD, client="owner")).id


async def test_parallel_guesses_cannot_outrun_the_limiter(
    accounts: AccountService, alice: Account
) -> None:
    results = await asyncio.gather(
        *(
            accounts.authenticate_password("alice", f"guess-{n}", client="botnet")
            for n in range(10)
        ),
        return_exceptions=True,
    )
    assert (
        sorted(type(r).__name__ for r in results) == ["RateLimited"] * 7 + ["Unauthenticated"] * 3
    )


async def test_outdated_hash_parameters_are_upgraded_at_login(
    store: Store, audit: AuditLog, limiter: LoginLimiter, clock: ManualClock, alice: Account
) -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=2048)
    service = AccountService(store, audit, limiter, hasher=stronger, clock=clock)
    account = await service.authenticate_password("alice", PASSWORD, client="c")
    assert account.password_hash != alice.password_hash
    assert not stronger.needs_rehash((await store.accounts.get(alice.id)).password_hash)


async def test_password_verification_does_not_block_the_event_loop(
    store: Store, audit: AuditLog, limiter: LoginLimiter, alice: Account
) -> None:
    # Parameters costly enough (16 MiB, two passes) that a verification on the loop thread
    # would starve the ticker below.
    hasher = PasswordHasher(time_cost=2, memory_cost=16 * 1024)
    service = AccountService(store, audit, limiter, hasher=hasher)
    await store.accounts.update(alice.id, password_hash=await hasher.hash(PASSWORD))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = asyncio.get_running_loop().time()
    await service.authenticate_password("alice", PASSWORD, client="c")
    elapsed = asyncio.get_running_loop().time() - started
    task.cancel()
    # A blocked loop would tick at most once; a free one about once per 1-2 ms.
    assert elapsed > 0.01, "verification too cheap for this test to mean anything"
    assert ticks >= 3


async def test_login_issues_a_short_lived_token(
    accounts: AccountService, audit: AuditLog, clock: ManualClock, alice: Account
) -> None:
    issued = await accounts.login("alice", PASSWORD, client="c")
    assert issued.account.id == alice.id
    assert issued.record.name == "login"
    assert (await accounts.authenticate_token(issued.token)).id == alice.id
    assert (actions.LOGIN, "ok") in await actions_of(audit)
    clock.advance(timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="expired"):
        await accounts.authenticate_token(issued.token)


async def test_tokens_are_stored_hashed_and_shown_once(
    accounts: AccountService, store: Store, alice: Account
) -> None:
    issued = await accounts.create_token(alice, "deploy")
    assert issued.token.startswith("frt_")
    stored = await store.tokens.get(alice.id, issued.record.id)
    assert stored.token_hash == hash_token(issued.token)
    assert issued.token not in repr(stored)
    assert stored.prefix == issued.token[:10]


async def test_tokens_with_expiry_stop_working_after_it(
    accounts: AccountService, clock: ManualClock, alice: Account
) -> None:
    issued = await accounts.create_token(alice, "short", expires_in=timedelta(minutes=5))
    clock.advance(timedelta(minutes=4))
    await accounts.authenticate_token(issued.token)
    clock.advance(timedelta(minutes=2))
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_token(issued.token)


async def test_revoked_tokens_stop_working_and_revocation_is_audited(
    accounts: AccountService, audit: AuditLog, alice: Account
) -> None:
    issued = await accounts.create_token(alice, "ci")
    revoked = await accounts.revoke_token(alice, issued.record.id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_token(issued.token)
    done = await actions_of(audit)
    assert (actions.TOKEN_CREATED, "ok") in done
    assert (actions.TOKEN_REVOKED, "ok") in done


async def test_another_accounts_token_cannot_be_seen_or_revoked(
    accounts: AccountService, alice: Account
) -> None:
    bob = await accounts.create_account("bob", PASSWORD)
    issued = await accounts.create_token(alice, "ci")
    with pytest.raises(NotFound):
        await accounts.revoke_token(bob, issued.record.id)
    with pytest.raises(NotFound):
        await accounts.get_token(bob, issued.record.id)
    assert (await accounts.list_tokens(bob)).items == []
    await accounts.authenticate_token(issued.token)


@pytest.mark.parametrize("raw", ["", "frt_short", "Bearer x", "frt_" + "A" * 43])
async def test_unknown_or_malformed_tokens_are_unauthenticated(
    accounts: AccountService, raw: str
) -> None:
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_token(raw)


async def test_last_used_is_touched_at_most_once_a_minute(
    accounts: AccountService, store: Store, clock: ManualClock, alice: Account
) -> None:
    issued = await accounts.create_token(alice, "ci")
    await accounts.authenticate_token(issued.token)
    first = (await store.tokens.get(alice.id, issued.record.id)).last_used_at
    assert first is not None
    clock.advance(timedelta(seconds=30))
    await accounts.authenticate_token(issued.token)
    assert (await store.tokens.get(alice.id, issued.record.id)).last_used_at == first
    clock.advance(timedelta(seconds=31))
    await accounts.authenticate_token(issued.token)
    later = (await store.tokens.get(alice.id, issued.record.id)).last_used_at
    assert later is not None
    assert later > first


async def test_token_listing_is_paginated(accounts: AccountService, alice: Account) -> None:
    for n in range(5):
        await accounts.create_token(alice, f"t{n}")
    first = await accounts.list_tokens(alice, limit=3)
    assert len(first.items) == 3
    assert first.next_cursor is not None
    rest = await accounts.list_tokens(alice, limit=3, cursor=first.next_cursor)
    names = [t.name for t in first.items + rest.items]
    assert sorted(names) == ["t0", "t1", "t2", "t3", "t4"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_token_names_must_be_reasonable(
    accounts: AccountService, alice: Account, name: str
) -> None:
    with pytest.raises(InvalidInput):
        await accounts.create_token(alice, name)


async def test_change_password_needs_the_current_one(
    accounts: AccountService, audit: AuditLog, alice: Account
) -> None:
    with pytest.raises(Forbidden):
        await accounts.change_password(alice, "not-it-at-all", "new-password-1")
    with pytest.raises(InvalidInput):
        await accounts.change_password(alice, PASSWORD, "short")
    await accounts.change_password(alice, PASSWORD, "new-password-1")
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_password("alice", PASSWORD, client="c")
    await accounts.authenticate_password("alice", "new-password-1", client="c")
    assert (actions.PASSWORD_CHANGED, "ok") in await actions_of(audit)


async def test_admin_routes_are_forbidden_to_other_accounts(
    accounts: AccountService, alice: Account, admin: Account
) -> None:
    with pytest.raises(Forbidden):
        await accounts.admin_list(alice)
    with pytest.raises(Forbidden):
        await accounts.admin_set_disabled(alice, admin.id, True)
    listed = await accounts.admin_list(admin, username_contains="ali")
    assert [a.username for a in listed.items] == ["alice"]


async def test_an_admin_cannot_disable_themselves(accounts: AccountService, admin: Account) -> None:
    with pytest.raises(InvalidInput):
        await accounts.admin_set_disabled(admin, admin.id, True)


async def test_accounts_see_only_themselves_admins_see_all(
    accounts: AccountService, alice: Account, admin: Account
) -> None:
    assert (await accounts.get_account(alice, "me")).id == alice.id
    with pytest.raises(NotFound):
        await accounts.get_account(alice, admin.id)
    assert (await accounts.get_account(admin, alice.id)).id == alice.id


async def test_admin_from_env_is_created_once_and_never_reset(
    accounts: AccountService, store: Store
) -> None:
    settings = Settings(admin_username="boss", admin_password=SecretStr("first-password"))
    created = await accounts.ensure_admin_from_env(settings)
    assert created is not None
    assert created.is_admin
    await accounts.change_password(created, "first-password", "changed-password")
    again = await accounts.ensure_admin_from_env(
        Settings(admin_username="boss", admin_password=SecretStr("first-password"))
    )
    assert again is not None
    assert again.id == created.id
    await accounts.authenticate_password("boss", "changed-password", client="c")
    assert await accounts.ensure_admin_from_env(Settings()) is None


async def test_servers_starting_together_create_the_env_admin_once(
    accounts: AccountService, store: Store
) -> None:
    settings = Settings(admin_username="boss", admin_password=SecretStr("first-password"))
    results = await asyncio.gather(*(accounts.ensure_admin_from_env(settings) for _ in range(3)))
    assert len({a.id for a in results if a is not None}) == 1
    listed = await store.accounts.admin_list(username_contains="boss")
    assert len(listed.items) == 1


async def test_a_password_change_revokes_the_other_login_sessions_only(
    accounts: AccountService, alice: Account
) -> None:
    current = await accounts.login("alice", PASSWORD, client="c")
    other = await accounts.login("alice", PASSWORD, client="c")
    api = await accounts.create_token(alice, "ci")
    revoked = await accounts.change_password(
        alice, PASSWORD, "new-password-1", current_token=current.token
    )
    assert revoked == 1
    await accounts.authenticate_token(current.token)
    await accounts.authenticate_token(api.token)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate_token(other.token)


async def test_a_password_change_can_revoke_api_tokens_too(
    accounts: AccountService, alice: Account
) -> None:
    api = await accounts.create_token(alice, "ci")
    session = await accounts.login("alice", PASSWORD, client="c")
    revoked = await accounts.change_password(alice, PASSWORD, "new-password-1", revoke_tokens=True)
    assert revoked == 2
    for token in (api.token, session.token):
        with pytest.raises(Unauthenticated):
            await accounts.authenticate_token(token)
