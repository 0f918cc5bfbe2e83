"""Importing many secrets at once: checked first, all or nothing, a report per key."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.audit import AuditLog, actions
from flowrunner.errors import InvalidInput, NotFound, StorageUnavailable
from flowrunner.secrets import SecretVault
from flowrunner.secrets.vault import MAX_IMPORT_KEYS
from flowrunner.storage import Account, Store


async def test_import_reports_added_changed_and_unchanged_keys(
    vault: SecretVault, alice: Account, audit: AuditLog
) -> None:
    await vault.put(alice, "SAME", "same-value")
    await vault.put(alice, "OLD", "old-value")
    report = await vault.import_values(
        alice, {"SAME": "same-value", "OLD": "new-value", "NEW": {"user": "u", "pw": "p-w-x"}}
    )
    assert (report.added, report.changed, report.unchanged) == (["NEW"], ["OLD"], ["SAME"])
    assert await vault.get_value(alice, "OLD") == "new-value"
    assert await vault.get_value(alice, "NEW") == {"user": "u", "pw": "p-w-x"}
    # The unchanged key was not written again: two puts before, two writes by the import.
    writes = [
        r.target
        for r in (await audit.list(None)).items
        if r.action in (actions.SECRET_CREATED, actions.SECRET_UPDATED)
    ]
    assert sorted(str(w) for w in writes) == ["NEW", "OLD", "OLD", "SAME"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"GOOD": "value-1", "9bad": "value-2"}, "'9bad'"),
        ({"GOOD": "value-1", "LIST": [1, 2]}, "LIST"),
        ({"GOOD": "value-1", "BIG": "x" * 70_000}, "BIG"),
    ],
    ids=["bad-key", "bad-value", "too-big"],
)
async def test_a_bad_entry_saves_nothing_and_is_named(
    vault: SecretVault, alice: Account, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named):
        await vault.import_values(alice, values)
    with pytest.raises(NotFound):
        await vault.get(alice, "GOOD")


async def test_more_keys_than_the_limit_are_refused(vault: SecretVault, alice: Account) -> None:
    values = {f"K{i}": "value" for i in range(MAX_IMPORT_KEYS + 1)}
    with pytest.raises(InvalidInput, match=str(MAX_IMPORT_KEYS)):
        await vault.import_values(alice, values)


class _FailingSecrets:
    """The real secret store, whose n-th write fails as an unreachable database would."""

    def __init__(self, real: Any, fail_at: int) -> None:
        self._real = real
        self._left = fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def put(self, *args: Any, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left == 0:
            raise StorageUnavailable("the database went away")
        return await self._real.put(*args, **kwargs)


class _Store:
    def __init__(self, real: Store, secrets: _FailingSecrets) -> None:
        self._real = real
        self.secrets = secrets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_a_write_failing_midway_puts_back_what_was_written(
    store: Store, vault: SecretVault, alice: Account, audit: AuditLog
) -> None:
    await vault.put(alice, "B_OLD", "before-value")
    failing = SecretVault(
        _Store(store, _FailingSecrets(store.secrets, fail_at=3)),
        vault.keyring,
        audit,
    )
    with pytest.raises(StorageUnavailable):
        await failing.import_values(
            alice, {"A_NEW": "value-a", "B_OLD": "after-value", "C_NEW": "value-c"}
        )
    assert await vault.get_value(alice, "B_OLD") == "before-value"
    for key in ("A_NEW", "C_NEW"):
        with pytest.raises(NotFound):
            await vault.get(alice, key)
