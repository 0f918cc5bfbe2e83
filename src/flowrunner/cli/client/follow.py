"""Following one run over the WebSocket, through dropped connections.

The server replays what a subscriber missed (``after_seq``) and then streams live with no gap
(docs/executions.md), so a reconnect subscribes again after the last ``seq`` seen: each event
is handed on exactly once, in order, however often the connection drops. Reconnects back off
(0.2 s doubling to 5 s) and give up after ``MAX_RECONNECTS`` failures in a row; any event
received resets the count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowrunner import __version__
from flowrunner.cli.client.errors import FAILED, NOT_FOUND_OR_AUTH, ClientError
from flowrunner.cli.client.http import API

MAX_RECONNECTS = 10
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 5.0
UNAUTHORIZED = 4401  # the server's close code for a revoked or expired token
_AUTH_CODES = {"unauthenticated", "not_found", "forbidden"}


def ws_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + API + "/ws"


@dataclass
class Followed:
    """How a followed run ended: its status and its last event (``complete``/``error``)."""

    status: str | None
    last_seq: int
    final: dict[str, Any] | None


async def follow(
    url: str,
    token: str,
    execution_id: str,
    on_event: Callable[[dict[str, Any]], None],
    *,
    after_seq: int = 0,
    on_reconnect: Callable[[int, str], None] = lambda attempt, why: None,
    max_reconnects: int = MAX_RECONNECTS,
) -> Followed:
    """Hand every event of the run after ``after_seq`` to ``on_event`` until it ends."""
    import asyncio

    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    last = after_seq
    final: dict[str, Any] | None = None
    failures = 0
    headers = {"Authorization": f"Bearer {token}", "User-Agent": f"flowrunner-cli/{__version__}"}
    while True:
        why: str
        try:
            async with websockets.connect(
                ws_url(url), additional_headers=headers, open_timeout=15, max_size=2**24
            ) as ws:
                subscribe = {"type": "subscribe", "execution_id": execution_id, "after_seq": last}
                await ws.send(json.dumps(subscribe))
                async for raw in ws:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if "seq" in message:
                        failures = 0
                        if message["seq"] <= last:
                            continue  # already shown before the reconnect
                        last = message["seq"]
                        if kind in ("complete", "error") or _is_final_status(message):
                            final = message
                        on_event(message)
                    elif kind == "end":
                        return Followed(message.get("status"), last, final)
                    elif kind == "error":
                        raise _refused(message.get("error") or {})
            why = "the server closed the connection"
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == UNAUTHORIZED:
                raise ClientError(
                    "the server closed the stream: the token is no longer valid — log in again",
                    exit_code=NOT_FOUND_OR_AUTH,
                ) from exc
            why = f"connection lost ({exc})"
        except InvalidURI as exc:
            raise ClientError(f"bad server URL {url!r}: {exc}") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            why = f"cannot connect ({exc or type(exc).__name__})"
        failures += 1
        if failures > max_reconnects:
            raise ClientError(
                f"lost the run's event stream: {why}; the run goes on on the server — "
                f"see `flowrunner executions get {execution_id}`"
            )
        on_reconnect(failures, why)
        await asyncio.sleep(min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF))


def _is_final_status(message: dict[str, Any]) -> bool:
    status = (message.get("data") or {}).get("status")
    return status in ("completed", "failed", "canceled")


def _refused(error: dict[str, Any]) -> ClientError:
    code = str(error.get("code") or "error")
    return ClientError(
        str(error.get("message") or code),
        exit_code=NOT_FOUND_OR_AUTH if code in _AUTH_CODES else FAILED,
        error_code=code,
    )
