"""``webhook``: send a signed webhook from inside a flow (Standard Webhooks, like the server's
own outbound events).

The body is ``payload`` as JSON (``body`` is accepted as its alias, as in the original
format). With a ``secret`` (``${secrets.NAME}``: a ``whsec_`` secret or any text) the request
carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``; the id is derived from
the run, the node and the body, so a retry of the node sends the same id and the receiver can
drop the duplicate. The URL passes the same SSRF guard as ``http.request`` (at send time, on
the address actually reached). A network error, a timeout, 408/409/429 or a 5xx fail the node,
so its ``retry`` policy and ``error`` edge apply; another 4xx fails it too (the receiver
refused the message). The output is ``{status_code, webhook_id, response, latency_ms}``,
``response`` being the receiver's answer (parsed when JSON; at most 2048 characters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from flowrunner.config import load_settings
from flowrunner.durations import DURATION_PATTERN, parse_duration
from flowrunner.errors import DestinationRefused, ExecutionError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.spec import BuildEnv
from flowrunner.outbound import AddressPolicy, request_slot, shared_client
from flowrunner.webhooks.signing import check_secret, signature_headers

RESPONSE_CHARS = 2048
_RESERVED = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"})


class WebhookFailed(ExecutionError):
    """The webhook was not accepted: the receiver answered non-2xx or could not be reached."""

    code = "webhook_failed"


class WebhookNode(DefinedNode):
    __slots__ = ("_max_connections", "_policy", "_send_timeout")

    actions: ClassVar[frozenset[str] | None] = frozenset()

    def setup(self, env: BuildEnv) -> None:
        settings = load_settings()
        try:
            self._policy = AddressPolicy.from_settings(
                settings.http_allow_private, settings.http_allow
            )
        except ValueError as exc:
            raise ExecutionError(str(exc)) from exc
        self._send_timeout = settings.webhook_timeout_seconds
        self._max_connections = settings.http_max_connections

    async def work(self, call: Call) -> Any:
        params = call.params
        url = self._param_text(params, "url")
        payload = params.get("payload", params.get("body", {}))
        headers = {str(k): str(v) for k, v in dict(params.get("headers") or {}).items()}
        for name in headers:
            if name.lower() in _RESERVED:
                raise self._fail(f"param headers: {name!r} is set by the node")
        try:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise self._fail(f"param payload: not JSON ({exc})") from exc
        timeout = self._send_timeout
        if params.get("timeout") is not None:
            try:
                timeout = parse_duration(params["timeout"]) or self._send_timeout
            except ValueError as exc:
                raise self._fail(f"param timeout: {exc}") from exc
        message_id = self._message_id(call, body)
        secret = params.get("secret")
        secrets = []
        if secret:
            try:
                secrets = [check_secret(str(secret))]
            except ValueError as exc:
                raise self._fail(f"param secret: {exc}") from exc
        now = datetime.now(UTC)
        signed = signature_headers(message_id, now, body, secrets)
        if not secrets:
            del signed["webhook-signature"]
        sent = {**headers, "content-type": "application/json", **signed}
        return await self._post(url, body, sent, timeout, message_id)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], seconds: float, message_id: str
    ) -> dict[str, Any]:
        try:
            self._policy.check_url(url)
            client = await shared_client(self._policy, max_connections=self._max_connections)
            async with request_slot(self._max_connections):
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers, timeout=seconds)
        except DestinationRefused as exc:
            raise DestinationRefused(
                f"node '{self.node_id}': {exc.message}", node_id=self.node_id, **exc.context
            ) from exc
        except httpx.TimeoutException as exc:
            raise self._fail(f"POST {url}: timed out after {seconds:g} s") from exc
        except httpx.HTTPError as exc:
            raise self._fail(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        latency = round((time.perf_counter() - started) * 1000, 3)
        answer: Any = response.text[:RESPONSE_CHARS]
        if "json" in response.headers.get("content-type", "") and len(response.text) == len(answer):
            with contextlib.suppress(ValueError):  # says JSON but is not: the text
                answer = json.loads(answer)
        if not 200 <= response.status_code < 300:
            raise self._fail(f"POST {url}: the receiver answered {response.status_code}")
        return {
            "status_code": response.status_code,
            "webhook_id": message_id,
            "response": answer,
            "latency_ms": latency,
        }

    def _message_id(self, call: Call, body: bytes) -> str:
        run = str(call.ctx.execution.get("id") or "")
        item = "" if call.index is None else str(call.index)
        digest = hashlib.sha256(f"{run}\0{self.node_id}\0{item}\0".encode() + body)
        return "msg_" + digest.hexdigest()[:32]

    def _param_text(self, params: dict[str, Any], name: str) -> str:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            raise self._fail(f"param {name}: expected a non-empty string")
        return value

    def _fail(self, why: str) -> WebhookFailed:
        return WebhookFailed(f"node '{self.node_id}': {why}", node_id=self.node_id)


WEBHOOK = DefinedNodeType(
    "webhook",
    "POST a JSON payload signed with Standard Webhooks headers (url, payload, secret, headers, "
    "timeout); fails on a non-2xx answer, so the node's retry policy applies. The output is "
    "{status_code, webhook_id, response, latency_ms}.",
    WebhookNode,
    {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1},
            "payload": {},
            "body": {"description": "an alias of payload"},
            "secret": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "timeout": {"type": ["string", "number"], "pattern": DURATION_PATTERN},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
)

WEBHOOK_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(WEBHOOK, ())]
