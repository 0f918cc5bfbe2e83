"""Which plugins an admin enabled or disabled, stored so the choice outlives the process.

One record per plugin in the system partition of the key-value store (the pseudo-account
``_system``, as triggers: no account's ``store`` node reaches it), so every backend keeps it
with no new table. A server applies the stored choices when it starts and on every explicit
reload: with several server processes, the one that answered a disable applies it at once,
the others at their next reload or restart. ``FLOWRUNNER_PLUGINS_DISABLED`` disables at start;
a stored choice about the same plugin wins (it was made later, on purpose).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flowrunner.storage import Store
from flowrunner.storage.protocols import MAX_LIMIT

SYSTEM = "_system"
NS_CHOICES = "plugin-choices"


class PluginChoices:
    def __init__(self, store: Store) -> None:
        self._kv = store.kv

    async def save(self, name: str, enabled: bool, actor_id: str | None) -> None:
        record = {"enabled": enabled, "by": actor_id, "at": datetime.now(UTC).isoformat()}
        await self._kv.put(SYSTEM, NS_CHOICES, name, record)

    async def load(self) -> dict[str, bool]:
        """Every stored choice: plugin name -> enabled."""
        choices: dict[str, bool] = {}
        cursor: str | None = None
        while True:
            page = await self._kv.list(SYSTEM, NS_CHOICES, limit=MAX_LIMIT, cursor=cursor)
            for entry in page.items:
                value = entry.value
                if isinstance(value, dict) and isinstance(value.get("enabled"), bool):
                    choices[entry.key] = value["enabled"]
            if page.next_cursor is None:
                return choices
            cursor = page.next_cursor
