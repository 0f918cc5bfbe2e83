"""Token accounting seen from a node: a run-scoped meter the runner provides.

The runner gives a run a ``USAGE_METER`` (a run-scoped value; executions/llm_usage.py).
Every model call goes through ``metered_chat``: ``reserve`` holds the most tokens the call
can use against the account's monthly budget before the call (refusing it when that does not
fit in what is left), ``settle`` replaces the hold with the call's real usage after it
(adding it to the node's and the run's totals). Without a meter (``flowrunner run``) usage is
only reported in the node's output.

So that a call cannot use more than it held, the hold is an upper bound (``estimate``): the
prompt counted as one token per UTF-8 byte (a byte-level tokenizer's token covers at least
one byte; English runs at about four), plus a tool-use allowance and one per image, and the
reply's ``max_tokens`` — which, under a budget, a call that sets none is sent with
(``DEFAULT_COMPLETION_HOLD``), since an unbounded reply cannot be held for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Protocol

from flowrunner.engine import RunScoped
from flowrunner.nodes.llm.types import ChatRequest, ChatResult, OnText, Provider, Usage

# Completion tokens held for a call that sets no max_tokens; under a budget the call is sent
# with this max_tokens (what the reply really used replaces the hold when the call ends).
DEFAULT_COMPLETION_HOLD = 4096
# Characters per token of a rough size estimate (agent memory trimming; English runs at
# about 4). The budget's hold does not use it: see ``estimate``.
CHARS_PER_TOKEN = 3
# Prompt tokens a provider adds when a call has tools (Anthropic documents a tool-use system
# prompt of up to 346 tokens; OpenAI's tool preamble is smaller).
TOOLS_ALLOWANCE = 400
# Prompt tokens an image part may cost (Anthropic: at most about 1,600 for the largest image
# it takes unresized; OpenAI: at most 85 + 170 x 8 tiles at high detail).
IMAGE_ALLOWANCE = 1600


class UsageMeter(Protocol):
    async def reserve(self, node_id: str, tokens: int) -> int:
        """Hold ``tokens`` of the account's monthly budget for one call; the amount held
        (0 when there is no budget). Raises ``LLMBudgetExceeded`` when they do not fit in
        what is left of the budget."""
        ...

    async def settle(self, node_id: str, held: int, usage: Usage | None) -> None:
        """The call ended: count ``usage`` in place of the ``held`` tokens (None: the call
        failed before a reply, nothing is counted and the hold is released)."""
        ...


USAGE_METER: RunScoped[UsageMeter | None] = RunScoped("usage_meter", None)


def estimate(request: ChatRequest) -> int:
    """Tokens a call may use at most: an upper bound of its prompt (see the module
    docstring) plus its reply's bound (``max_tokens``, or ``DEFAULT_COMPLETION_HOLD``)."""
    sent = [*request.messages, *(request.tools or ()), request.output_schema]
    prompt = len(json.dumps(sent, ensure_ascii=False, default=str).encode())
    if request.tools:
        prompt += TOOLS_ALLOWANCE
    prompt += IMAGE_ALLOWANCE * sum(_images(m.get("content")) for m in request.messages)
    return prompt + (request.max_tokens or DEFAULT_COMPLETION_HOLD)


def _images(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, Mapping) and part.get("type") != "text")


async def metered_chat(
    meter: UsageMeter | None,
    node_id: str,
    provider: Provider,
    request: ChatRequest,
    on_text: OnText | None = None,
) -> ChatResult:
    """``provider.chat`` with the call's tokens reserved before and settled after."""
    if meter is None:
        return await provider.chat(request, on_text)
    held = await meter.reserve(node_id, estimate(request))
    if held and request.max_tokens is None:
        # Under a budget the reply is bounded by what was held for it.
        request = dataclasses.replace(request, max_tokens=DEFAULT_COMPLETION_HOLD)
    try:
        result = await provider.chat(request, on_text)
    except BaseException:
        # Cancelled or failed: release the hold. Shielded, so a cancel arriving now does not
        # leave the account's count holding tokens no call used.
        await asyncio.shield(meter.settle(node_id, held, None))
        raise
    await asyncio.shield(meter.settle(node_id, held, result.usage))
    return result
