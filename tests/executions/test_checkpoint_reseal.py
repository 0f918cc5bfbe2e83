"""Key rotation re-seals the checkpoints of waiting runs: after it, the old key can go."""

from __future__ import annotations

from flowrunner.executions.checkpoint_reseal import reseal_checkpoints
from flowrunner.executions.sealing import Sealer, is_sealed, unseal
from flowrunner.secrets import Keyring, Masker
from flowrunner.storage.memory import MemoryStore

TOKEN = "tok-5f1c9e-secret"


async def test_waiting_runs_checkpoints_move_to_the_new_key_and_others_are_left() -> None:
    old_key, new_key = Keyring.generate_key(), Keyring.generate_key()
    old = Keyring([old_key])
    store = MemoryStore()
    account = await store.accounts.create("ada", "hash")
    sealer = Sealer(Masker([TOKEN]), old)
    runs = {}
    for status in ("waiting", "running"):
        run = await store.executions.create(account.id, flow_id="f", flow_version=1)
        await store.executions.update(account.id, run.id, status=status)
        await store.executions.save_checkpoint(
            account.id, run.id,
            shared=sealer.seal({"token": TOKEN}), next_node="b",
            results={"a": sealer.seal({"t": TOKEN}), "plain": {"n": 1}},
        )  # fmt: skip
        runs[status] = run.id

    rotated = Keyring([new_key, old_key])
    assert await reseal_checkpoints(store, rotated) == 1
    assert await reseal_checkpoints(store, rotated) == 0  # nothing left under the old key

    new_only = Keyring([new_key])
    point = await store.executions.get_checkpoint(account.id, runs["waiting"])
    assert point is not None
    assert unseal(point.shared, new_only) == {"token": TOKEN}
    assert unseal(point.results["a"], new_only) == {"t": TOKEN}
    assert point.results["plain"] == {"n": 1}
    assert point.next_node == "b"
    # A running run writes its own checkpoints with the newest key: left as it is.
    running = await store.executions.get_checkpoint(account.id, runs["running"])
    assert running is not None
    assert is_sealed(running.shared)
    assert running.shared["key_id"] == old.primary_id
