"""Retention policies: a global default from the settings, and an account's own, stored.

A policy has one rule for successful runs (``completed``) and one for the others (``failed``
and ``canceled``). A rule keeps runs for ``days`` after they ended and/or the last
``keep_last`` of each flow; a finished run goes when either limit passes it by. A rule with
neither keeps everything. Active runs are never subject to a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowrunner.config import Settings
from flowrunner.errors import InvalidInput, NotFound
from flowrunner.storage import Store
from flowrunner.storage.records import SYSTEM_ACCOUNT, ExecutionStatus

SUCCEEDED: tuple[ExecutionStatus, ...] = ("completed",)
UNSUCCESSFUL: tuple[ExecutionStatus, ...] = ("failed", "canceled")
# The system partition's namespace of account policies (key: the account id). Not in the
# account's own store, which its flows can write with the ``store`` node.
NAMESPACE = "retention"


@dataclass(frozen=True, slots=True)
class Rule:
    days: float | None = None
    keep_last: int | None = None

    @property
    def keeps_everything(self) -> bool:
        return self.days is None and self.keep_last is None

    def to_json(self) -> dict[str, Any]:
        return {"days": self.days, "keep_last": self.keep_last}

    @classmethod
    def from_json(cls, value: Any, where: str) -> Rule:
        if value is None:
            return cls()
        if not isinstance(value, Mapping) or set(value) - {"days", "keep_last"}:
            raise InvalidInput(f"{where}: an object with days and/or keep_last")
        days, keep = value.get("days"), value.get("keep_last")
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int | float) or days <= 0
        ):
            raise InvalidInput(f"{where}.days: a number of days above 0, or null")
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise InvalidInput(f"{where}.keep_last: an integer of at least 1, or null")
        return cls(None if days is None else float(days), keep)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    completed: Rule = Rule()
    failed: Rule = Rule()
    """For failed and canceled runs."""

    def rules(self) -> tuple[tuple[Rule, tuple[ExecutionStatus, ...]], ...]:
        return ((self.completed, SUCCEEDED), (self.failed, UNSUCCESSFUL))

    @property
    def keeps_everything(self) -> bool:
        return self.completed.keeps_everything and self.failed.keeps_everything

    def to_json(self) -> dict[str, Any]:
        return {"completed": self.completed.to_json(), "failed": self.failed.to_json()}

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            Rule(settings.retention_completed_days, settings.retention_completed_keep_last),
            Rule(settings.retention_failed_days, settings.retention_failed_keep_last),
        )

    @classmethod
    def from_json(cls, value: Any) -> RetentionPolicy:
        if not isinstance(value, Mapping) or set(value) - {"completed", "failed"}:
            raise InvalidInput("a retention policy: an object with completed and/or failed")
        return cls(
            Rule.from_json(value.get("completed"), "completed"),
            Rule.from_json(value.get("failed"), "failed"),
        )


class PolicyStore:
    """Accounts' own policies, in the system partition of the key-value store (every backend
    has it: no table of its own)."""

    def __init__(self, store: Store, default: RetentionPolicy) -> None:
        self._kv = store.kv
        self.default = default

    async def own(self, account_id: str) -> RetentionPolicy | None:
        try:
            entry = await self._kv.get(SYSTEM_ACCOUNT, NAMESPACE, account_id)
        except NotFound:
            return None
        return RetentionPolicy.from_json(entry.value)

    async def effective(self, account_id: str) -> RetentionPolicy:
        return await self.own(account_id) or self.default

    async def set(self, account_id: str, policy: RetentionPolicy) -> None:
        await self._kv.put(SYSTEM_ACCOUNT, NAMESPACE, account_id, policy.to_json())

    async def clear(self, account_id: str) -> bool:
        return await self._kv.delete(SYSTEM_ACCOUNT, NAMESPACE, account_id)
