"""``/api/v1/ws``: live run events over a WebSocket.

Authentication: ``Authorization: Bearer <token>`` on the upgrade request, or (browsers cannot
set headers) ``?token=`` in the URL, or a first message ``{"type": "auth", "token": ...}``.

Client messages: ``{"type": "subscribe", "execution_id", "after_seq"?}`` (replays what was
missed from the store, then continues live with no gap and no duplicate), ``{"type":
"subscribe", "flow_id", "since"?, "after"?}`` (live events of every run of that flow; with a
cursor, first the events missed: of the runs in ``after`` past their seq, of runs created
since ``since``, of runs still queued), ``unsubscribe`` with the same id, and ``ping``.
Server messages: the events ``status``, ``log``, ``node``, ``complete`` and ``error`` (each
with ``seq``, ``execution_id``, ``time`` and ``data``), ``pong``, ``subscribed``, ``end``
(``execution_id``, ``status``) after a run's final event, and ``error`` with an ``error``
object (no ``seq``) when a request fails.
An account only ever sees its own runs: another account's run or flow is "not found".
The token is re-checked every few seconds: once it is revoked or expires, or its account is
disabled, the socket gets an ``unauthenticated`` error and is closed with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from flowrunner.api.deps import Services
from flowrunner.api.input_guard import InputRejected, loads_checked
from flowrunner.errors import FlowrunnerError, NotFound, Unauthenticated
from flowrunner.executions import ExecutionService
from flowrunner.executions.events import as_message, is_final
from flowrunner.executions.follow import MAX_REPLAY_RUNS
from flowrunner.storage import Account, ExecutionEvent

router = APIRouter(tags=["executions"])
log = logging.getLogger(__name__)

AUTH_TIMEOUT = 10.0
UNAUTHORIZED = 4401  # application close code: the HTTP status, in the 4000 range


@router.websocket("/ws")
async def websocket_events(websocket: WebSocket) -> None:
    await websocket.accept()
    services: Services = websocket.app.state.services
    try:
        account, token = await _authenticate(websocket, services)
    except (Unauthenticated, TimeoutError, ValueError, KeyError) as exc:
        message = str(exc) if isinstance(exc, Unauthenticated) else "authentication required"
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_json(_problem("unauthenticated", message))
            await websocket.close(UNAUTHORIZED)
        return
    except WebSocketDisconnect:
        return
    session = _Session(websocket, account, websocket.app.state.executions)
    watch = asyncio.get_running_loop().create_task(_watch_token(session, services, token))
    max_depth = services.settings.max_json_depth
    try:
        while True:
            try:
                message = await _receive(websocket, max_depth)
            except _BadMessage as bad:  # answered; the connection and its subscriptions stay
                await session.send(_problem("bad_request", str(bad)))
                continue
            await session.handle(message)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away (or the watch closed the socket)
    finally:
        watch.cancel()
        await asyncio.wait([watch])
        await session.close()


async def _watch_token(session: _Session, services: Services, token: str) -> None:
    """Close the socket (4401) once its token is revoked or expires, or its account is
    disabled: authentication happened once, at the upgrade, and a stream can stay open for
    hours. Checked through the token cache, so a revoke in this process shows at the next
    check and one in another process within the cache's few seconds more."""
    interval = services.settings.ws_auth_recheck_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            await services.tokens.resolve(token, services.accounts.authenticate_token)
        except (Unauthenticated, NotFound) as exc:  # NotFound: the account is gone
            message = str(exc) if isinstance(exc, Unauthenticated) else "invalid token"
            await session.end(UNAUTHORIZED, _problem("unauthenticated", message))
            return
        except FlowrunnerError:
            # The store is briefly unreachable: keep the stream, check again next time.
            log.warning("websocket token re-check failed", exc_info=True)


async def _authenticate(websocket: WebSocket, services: Services) -> tuple[Account, str]:
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials.strip() if scheme.lower() == "bearer" else ""
    token = token or websocket.query_params.get("token", "")
    if not token:
        try:
            first = await asyncio.wait_for(
                _receive(websocket, services.settings.max_json_depth), AUTH_TIMEOUT
            )
        except _BadMessage as bad:
            raise Unauthenticated(f'send {{"type": "auth", "token": ...}} first ({bad})') from bad
        if not isinstance(first, dict) or first.get("type") != "auth":
            raise Unauthenticated('send {"type": "auth", "token": ...} first')
        token = str(first.get("token") or "")
    return await services.accounts.authenticate_token(token), token


class _BadMessage(Exception):
    """A frame that is not a JSON message we can read; the text says why."""


async def _receive(websocket: WebSocket, max_depth: int) -> Any:
    """The next client message, decoded and checked like an HTTP JSON body."""
    frame = await websocket.receive()
    if frame["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(frame.get("code", 1000), frame.get("reason"))
    text = frame.get("text")
    if text is None:
        raise _BadMessage("messages are JSON text frames, not binary")
    try:
        return loads_checked(text, max_depth=max_depth, loc=("message",))
    except InputRejected as exc:
        raise _BadMessage(exc.message) from exc
    except ValueError as exc:
        raise _BadMessage(f"a message must be JSON: {exc}") from exc


def _problem(code: str, message: str, **about: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}, **about}


class _Session:
    """One connection's subscriptions, each a task forwarding events to the socket."""

    def __init__(self, websocket: WebSocket, account: Account, runs: ExecutionService) -> None:
        self._ws = websocket
        self._account = account
        self._runs = runs
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self._ws.send_json(message)

    async def handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind in ("subscribe", "unsubscribe"):
            target = _target(message)
            if target is None:
                await self.send(_problem("bad_request", f"{kind} needs execution_id or flow_id"))
            elif kind == "subscribe":
                await self._subscribe(target, message.get("after_seq"), message)
            else:
                await self._unsubscribe(target)
        else:
            await self.send(_problem("bad_request", f"unknown message type {kind!r}"))

    async def _subscribe(self, target: tuple[str, str], after_seq: Any, message: Any) -> None:
        what, ident = target
        await self._unsubscribe(target)
        if after_seq is not None and (not isinstance(after_seq, int) or after_seq < 0):
            await self.send(_problem("bad_request", "after_seq must be a non-negative integer"))
            return
        cursor = _flow_cursor(message) if what == "flow_id" else (None, None)
        if isinstance(cursor, str):
            await self.send(_problem("bad_request", cursor))
            return
        try:
            if what == "execution_id":
                stream = await self._runs.follow(self._account.id, ident, after_seq=after_seq or 0)
            else:
                since, after = cursor
                stream = await self._runs.follow_flow(
                    self._account.id, ident, since=since, after=after
                )
        except FlowrunnerError as exc:
            await self.send(_problem(exc.code, exc.message, **{what: ident}))
            return
        await self.send({"type": "subscribed", what: ident})
        flow_id = ident if what == "flow_id" else None
        execution_id = ident if what == "execution_id" else None
        self._tasks[target] = asyncio.get_running_loop().create_task(
            self._forward(stream, flow_id, execution_id)
        )

    async def _unsubscribe(self, target: tuple[str, str]) -> None:
        task = self._tasks.pop(target, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _forward(
        self,
        stream: AsyncGenerator[ExecutionEvent, None],
        flow_id: str | None,
        execution_id: str | None = None,
    ) -> None:
        try:
            last: ExecutionEvent | None = None
            async for event in stream:
                last = event
                await self.send(as_message(event, flow_id))
            if execution_id is not None:
                # The run's stream is over: say so, so a client knows to stop waiting.
                await self.send(await self._end(execution_id, last))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await stream.aclose()

    async def _end(self, execution_id: str, last: ExecutionEvent | None) -> dict[str, Any]:
        status = last.data.get("status") if last is not None and is_final(last) else None
        if status is None:  # ended without its final event (lost in a crash): the store knows
            with contextlib.suppress(FlowrunnerError):
                status = (await self._runs.get(self._account.id, execution_id)).status
        return {"type": "end", "execution_id": execution_id, "status": status}

    async def close(self) -> None:
        for target in list(self._tasks):
            await self._unsubscribe(target)

    async def end(self, code: int, message: dict[str, Any]) -> None:
        """Stop every stream, say why, and close the socket with ``code``."""
        await self.close()
        async with self._send_lock:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._ws.send_json(message)
                await self._ws.close(code)


def _target(message: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("execution_id", "flow_id"):
        value = message.get(key)
        if isinstance(value, str) and 0 < len(value) <= 64:
            return key, value
    return None


def _flow_cursor(message: dict[str, Any]) -> tuple[datetime | None, dict[str, int] | None] | str:
    """A flow subscription's replay cursor: ``since`` (an ISO 8601 time with its offset) and
    ``after`` ({execution_id: last seq seen}, at most ``MAX_REPLAY_RUNS``); or what is wrong."""
    since, after = message.get("since"), message.get("after")
    when: datetime | None = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since) if isinstance(since, str) else None
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            return "since must be an ISO 8601 time with its offset"
    if after is not None and not (
        isinstance(after, dict)
        and len(after) <= MAX_REPLAY_RUNS
        and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in after.items()
        )
    ):
        return f"after maps execution ids to seqs (at most {MAX_REPLAY_RUNS})"
    return when, after
