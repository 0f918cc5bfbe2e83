"""Durable waits on the server side: what a run waits for, resume links, and signals.

A node that waits durably (``nodes.wait``) raises the ``Pause`` that ``RunWaits.pause``
builds; the runner records the run ``waiting`` with the pause's ``wake_at`` and wait record
(``Execution.wait``) and lets it go. The record names the node visit (node id and the run's
step count at it, so a loop's next visit is a new wait) and what it waits for. It is woken:

- by the waker (``executions.waker``) when ``wake_at`` comes: the timer of a ``delay``, the
  timeout of a ``wait_for``;
- by a signal (``Signals.deliver``): the payload goes into the record and the run becomes
  ``running`` in one compare-and-set on its status and last event number, so one signal
  wins, and only while the run still waits at that very visit.

Either way the run resumes at the waiting node, which finds its record (``RunWaits.woken``).

A resume link (``ResumeLinks``) is a token encrypted and authenticated with the vault's
keyring (Fernet), naming the account, run, node and signal: unforgeable, and bound to that
run. It is single-use because it only delivers while its run waits at that node, and the
first delivery ends the wait; it expires with the wait's timeout, after which it is refused
even before the waker has moved the run on.
"""

from __future__ import annotations

import base64
import binascii
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowrunner import jsontext
from flowrunner.engine import Pause
from flowrunner.errors import Conflict, InvalidPayload, LinkExpired, NotFound, VaultError
from flowrunner.executions.sealing import Keys
from flowrunner.storage import Execution, ExecutionStore
from flowrunner.storage.records import Clock, ExecutionStatus, JSONValue, utcnow

MAX_PROBLEMS = 20
# A signal racing the run's own last write (its ``waiting`` event) retries the
# compare-and-set; more is a real change of state.
DELIVERY_ATTEMPTS = 3
WAITING: tuple[ExecutionStatus, ...] = ("waiting",)


@dataclass(frozen=True, slots=True)
class LinkTarget:
    account_id: str
    execution_id: str
    node_id: str
    signal: str


class ResumeLinks:
    """Makes and opens resume tokens (see the module docstring)."""

    PREFIX = "/api/v1/resume/"

    def __init__(self, keys: Keys, base_url: str) -> None:
        self._keys = keys
        self._base = base_url.rstrip("/")

    def url(self, target: LinkTarget) -> str:
        return f"{self._base}{self.PREFIX}{self.token(target)}"

    def token(self, target: LinkTarget) -> str:
        plain = jsontext.dumps(
            {
                "a": target.account_id,
                "e": target.execution_id,
                "n": target.node_id,
                "s": target.signal,
            }
        ).encode()
        ciphertext, kid = self._keys.encrypt(plain)
        packed = base64.urlsafe_b64encode(kid.encode()).decode().rstrip("=")
        return f"{packed}.{ciphertext.decode()}"

    def open(self, token: str) -> LinkTarget:
        """The link's target; ``NotFound`` for anything not made by ``token``."""
        try:
            packed, _, ciphertext = token.partition(".")
            kid = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)).decode()
            data = jsontext.loads(self._keys.decrypt(ciphertext.encode(), kid).decode())
            return LinkTarget(str(data["a"]), str(data["e"]), str(data["n"]), str(data["s"]))
        except (VaultError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise NotFound("unknown resume link") from exc


class RunWaits:
    """``nodes.wait.Waits`` for one run: its last wait record, and how to pause it."""

    def __init__(
        self,
        execution: Execution,
        links: ResumeLinks | None,
        threshold: float,
        clock: Clock = utcnow,
    ) -> None:
        self._execution = execution
        self._links = links
        self._threshold = threshold
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    @property
    def threshold(self) -> float:
        return self._threshold

    def woken(self, node_id: str, steps: int) -> Mapping[str, Any] | None:
        wait = self._execution.wait
        if wait is None or wait.get("node_id") != node_id or wait.get("steps") != steps:
            return None
        return wait

    def pause(
        self,
        node_id: str,
        steps: int,
        *,
        wake_at: datetime | None,
        signal: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> Pause:
        record: dict[str, JSONValue] = {
            "id": random.token_hex(8),
            "node_id": node_id,
            "steps": steps,
            "kind": "timer" if signal is None else "signal",
            "wake_at": wake_at.isoformat() if wake_at is not None else None,
        }
        if signal is not None:
            record["signal"] = signal
            if schema is not None:
                record["schema"] = dict(schema)
        return Pause(node_id, {"wake_at": wake_at, "wait": record})

    def resume_url(self, node_id: str, signal: str) -> str:
        if self._links is None:
            return ""
        e = self._execution
        return self._links.url(LinkTarget(e.account_id, e.id, node_id, signal))


def signal_nodes(nodes: Mapping[str, Any]) -> dict[str, str]:
    """The ``wait_for`` nodes of a compiled flow (node id → signal name, when not an
    expression): their resume links are known from the run's start."""
    found: dict[str, str] = {}
    for node_id, node in nodes.items():
        spec = getattr(node, "spec", None)
        if spec is None or spec.type != "wait_for":
            continue
        name = spec.params.get("name")
        if isinstance(name, str) and "${" not in name:
            found[node_id] = name
    return found


class Signals:
    """Delivers signals to waiting runs (the API's signal and resume routes)."""

    def __init__(self, store: ExecutionStore) -> None:
        self._store = store

    async def deliver(
        self,
        account_id: str,
        execution_id: str,
        signal: str,
        payload: JSONValue,
        *,
        node_id: str | None = None,
    ) -> Execution:
        """Hand ``payload`` to the run's wait for ``signal`` and make it ``running`` again
        (unleased: the caller submits it). ``Conflict`` if the run is not waiting for that
        signal (at ``node_id``, for a link), ``InvalidPayload`` if the payload fails the
        wait's schema (the run keeps waiting), ``LinkExpired`` past the wait's timeout."""
        for _ in range(DELIVERY_ATTEMPTS):
            run = await self._store.get(account_id, execution_id)
            wait = _waiting_for(run, signal, node_id)
            _check_payload(wait, payload)
            record = {**wait, "payload": payload, "signaled_at": utcnow().isoformat()}
            try:
                return await self._store.update(
                    account_id,
                    execution_id,
                    expected_status=WAITING,
                    expected_seq=run.last_event_seq,
                    status="running",
                    wait=record,
                )
            except Conflict:
                continue  # changed since read: look again
        raise Conflict("the run changed while the signal was delivered; send it again")


def _waiting_for(run: Execution, signal: str, node_id: str | None) -> Mapping[str, JSONValue]:
    wait = run.wait
    if (
        run.status != "waiting"
        or wait is None
        or wait.get("signal") != signal
        or (node_id is not None and wait.get("node_id") != node_id)
    ):
        if node_id is not None:  # a link: its wait is over (or was never reached)
            raise LinkExpired("this resume link is no longer valid: its wait is over")
        raise Conflict(
            f"the execution is not waiting for signal '{signal}'",
            execution_id=run.id,
            status=run.status,
            waiting_for=wait.get("signal") if wait is not None and run.status == "waiting"
            else None,
        )  # fmt: skip
    if run.wake_at is not None and run.wake_at <= utcnow():
        raise LinkExpired(f"the wait for signal '{signal}' timed out", execution_id=run.id)
    return wait


def _check_payload(wait: Mapping[str, JSONValue], payload: JSONValue) -> None:
    schema = wait.get("schema")
    if not isinstance(schema, Mapping):
        return
    import jsonschema  # by the first payload with a schema, not by every server start

    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        {"path": "/".join(str(p) for p in error.absolute_path), "message": error.message}
        for _, error in zip(range(MAX_PROBLEMS), validator.iter_errors(payload), strict=False)
    ]
    if problems:
        raise InvalidPayload("the signal's payload does not match the wait's schema", problems)
