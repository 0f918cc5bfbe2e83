"""Conformance: the hash-chained audit log, on every backend."""

from __future__ import annotations

import asyncio
import dataclasses

from flowrunner.storage import Account, AuditChain, NewAuditEntry, Store, verify_chain
from flowrunner.storage.chain import GENESIS_HASH


async def test_records_link_to_their_predecessor(store: Store, account: Account) -> None:
    first = await store.audit.append(
        "security", NewAuditEntry("login", account_id=account.id, actor="ada", data={"ip": "::1"})
    )
    second = await store.audit.append("security", NewAuditEntry("logout", account_id=account.id))
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    records = await store.audit.list("security")
    assert records == [first, second]
    assert verify_chain(records).ok


async def test_concurrent_appends_never_fork_the_chain(store: Store) -> None:
    await asyncio.gather(
        *(store.audit.append("busy", NewAuditEntry("tick", data={"i": i})) for i in range(40))
    )
    records = await store.audit.list("busy")
    assert [r.seq for r in records] == list(range(1, 41))
    check = verify_chain(records)
    assert check.ok
    assert check.checked == 40


async def test_chains_are_independent(store: Store) -> None:
    await store.audit.append("a", NewAuditEntry("x"))
    b1 = await store.audit.append("b", NewAuditEntry("y"))
    assert b1.seq == 1
    assert b1.prev_hash == GENESIS_HASH


async def test_tampered_record_is_detected(store: Store) -> None:
    for i in range(5):
        await store.audit.append("c", NewAuditEntry("grant", actor="root", data={"i": i}))
    records = await store.audit.list("c")
    edited = list(records)
    edited[2] = dataclasses.replace(records[2], actor="mallory")
    check = verify_chain(edited)
    assert not check.ok
    assert check.first_bad_seq == 3
    removed = records[:2] + records[3:]
    assert verify_chain(removed).first_bad_seq == 4


async def test_verification_can_resume_from_a_slice(store: Store) -> None:
    for i in range(6):
        await store.audit.append("s", NewAuditEntry("e", data={"i": i}))
    head = await store.audit.list("s", limit=3)
    tail = await store.audit.list("s", after_seq=3)
    assert verify_chain(head).ok
    assert verify_chain(tail, start_hash=head[-1].hash, start_seq=4).ok


async def test_list_for_account_spans_chains_newest_first(
    store: Store, account: Account, other: Account
) -> None:
    a = await store.audit.append("security", NewAuditEntry("login", account_id=account.id))
    await store.audit.append("security", NewAuditEntry("login", account_id=other.id))
    b = await store.audit.append("flows", NewAuditEntry("flow.create", account_id=account.id))
    page = await store.audit.list_for_account(account.id, limit=1)
    assert page.items == [b]
    rest = await store.audit.list_for_account(account.id, cursor=page.next_cursor)
    assert rest.items == [a]
    assert rest.next_cursor is None


async def test_list_for_account_can_keep_to_one_chain(store: Store, account: Account) -> None:
    kept = await store.audit.append("security", NewAuditEntry("login", account_id=account.id))
    await store.audit.append("flows", NewAuditEntry("flow.create", account_id=account.id))
    page = await store.audit.list_for_account(account.id, chain="security")
    assert page.items == [kept]
    assert page.next_cursor is None


async def test_chains_names_every_chain_with_its_last_record_as_head(store: Store) -> None:
    assert await store.audit.chains() == []
    await store.audit.append("b", NewAuditEntry("x"))
    last_b = await store.audit.append("b", NewAuditEntry("y"))
    last_a = await store.audit.append("a", NewAuditEntry("z"))
    assert await store.audit.chains() == [
        AuditChain("a", 1, last_a.hash),
        AuditChain("b", 2, last_b.hash),
    ]
