from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from flowrunner.audit import AuditLog
from flowrunner.errors import InvalidInput
from flowrunner.storage import NewAuditEntry, Store
from flowrunner.storage.chain import hash_of
from flowrunner.storage.sql import SqlStore


async def fill(audit: AuditLog, n: int = 5) -> None:
    for i in range(n):
        await audit.record(
            "secret.read",
            account_id="acct-a" if i % 2 == 0 else "acct-b",
            actor_id="acct-a",
            target=f"K{i}",
            details={"i": i},
        )


async def test_records_carry_outcome_and_details_and_link_to_each_other(audit: AuditLog) -> None:
    first = await audit.record("auth.login", account_id=None, actor_id=None, target="eve",
                               outcome="failed", details={"client": "1.2.3.4"})  # fmt: skip
    second = await audit.record("token.created", account_id="a", actor_id="a", target="t1")
    assert first.data == {"outcome": "failed", "client": "1.2.3.4"}
    assert second.data == {"outcome": "ok"}
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1


async def test_an_account_lists_only_its_records_newest_first(audit: AuditLog) -> None:
    await fill(audit)
    page = await audit.list("acct-b")
    assert [r.target for r in page.items] == ["K3", "K1"]


async def test_the_admin_listing_is_the_whole_chain_in_pages(audit: AuditLog) -> None:
    await fill(audit)
    first = await audit.list(None, limit=3)
    assert [r.seq for r in first.items] == [1, 2, 3]
    assert first.next_cursor is not None
    rest = await audit.list(None, limit=3, cursor=first.next_cursor)
    assert [r.seq for r in rest.items] == [4, 5]
    assert rest.next_cursor is None


async def test_a_foreign_cursor_is_rejected(audit: AuditLog) -> None:
    with pytest.raises(InvalidInput):
        await audit.list(None, cursor="abc")


@pytest.mark.parametrize("batch", [2, 1000])
async def test_an_untouched_chain_verifies(audit: AuditLog, batch: int) -> None:
    assert (await audit.verify()).ok
    await fill(audit)
    report = await audit.verify(batch=batch)
    assert report.ok
    assert report.checked == 5
    assert report.head_seq == 5
    assert report.head_hash == (await audit.list(None)).items[-1].hash


async def test_verify_reports_every_chain_that_is_not_ours_and_listings_skip_it(
    audit: AuditLog, store: Store
) -> None:
    await fill(audit, 2)
    await store.audit.append("shadow", NewAuditEntry("secret.read", account_id="acct-a"))
    report = await audit.verify()
    assert not report.ok
    assert report.chains == 2
    assert report.checked == 3
    assert report.problems == [
        "chain 'shadow': not written by flowrunner (its one chain is 'global'); "
        "1 record(s) under it are not shown"
    ]
    assert [r.chain for r in (await audit.list("acct-a")).items] == ["global"]


# --- tampering, on a real SQLite database edited behind the service's back ---------------


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[tuple[Path, AuditLog]]:
    path = tmp_path / "audit.db"
    store = SqlStore(f"sqlite:///{path}")
    await store.connect()
    audit = AuditLog(store)
    await fill(audit, 6)
    yield path, audit
    await store.close()


def tamper(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute(sql).rowcount == 1


@pytest.mark.parametrize("batch", [2, 1000])
async def test_verify_detects_an_edited_record(
    sqlite_file: tuple[Path, AuditLog], batch: int
) -> None:
    path, audit = sqlite_file
    tamper(path, "UPDATE audit_records SET target = 'K-forged' WHERE seq = 4")
    report = await audit.verify(batch=batch)
    assert not report.ok
    assert report.checked == 3
    assert report.problems == ["chain 'global': record 4: content does not match its hash"]


async def test_verify_detects_edited_data(sqlite_file: tuple[Path, AuditLog]) -> None:
    path, audit = sqlite_file
    tamper(path, """UPDATE audit_records SET data = '{"outcome":"ok","i":99}' WHERE seq = 2""")
    assert not (await audit.verify()).ok


@pytest.mark.parametrize("seq", [1, 3, 5])
async def test_verify_detects_a_deleted_record(
    sqlite_file: tuple[Path, AuditLog], seq: int
) -> None:
    path, audit = sqlite_file
    tamper(path, f"DELETE FROM audit_records WHERE seq = {seq}")
    report = await audit.verify()
    assert not report.ok
    assert report.problems == [f"chain 'global': record {seq + 1}: expected seq {seq}"]


async def test_verify_detects_a_record_rehashed_after_editing(
    sqlite_file: tuple[Path, AuditLog],
) -> None:
    # Recomputing the edited record's own hash is not enough: the next link breaks.
    path, audit = sqlite_file
    original = (await audit.list(None)).items[2]
    forged_hash = hash_of(replace(original, target="K-forged"))
    tamper(
        path,
        f"UPDATE audit_records SET target = 'K-forged', hash = '{forged_hash}' WHERE seq = 3",
    )
    report = await audit.verify()
    assert not report.ok
    assert report.problems == ["chain 'global': record 4: prev_hash does not match"]


async def test_listings_leave_out_a_record_that_fails_its_hash(
    sqlite_file: tuple[Path, AuditLog],
) -> None:
    path, audit = sqlite_file
    tamper(path, "UPDATE audit_records SET actor = 'mallory' WHERE seq = 3")
    assert [r.seq for r in (await audit.list(None)).items] == [1, 2, 4, 5, 6]
    assert [r.seq for r in (await audit.list("acct-a")).items] == [5, 1]


async def test_verify_detects_records_cut_off_the_end_by_the_recorded_head(
    sqlite_file: tuple[Path, AuditLog],
) -> None:
    path, audit = sqlite_file
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM audit_records WHERE seq >= 5")
    report = await audit.verify()
    assert not report.ok
    assert report.head_seq == 4
    assert report.problems == [
        "chain 'global': ends at record 4 but its recorded head is record 6: "
        "records were removed from its end"
    ]
