"""Token accounting seen from a node: a run-scoped meter the runner provides.

The runner gives a run a ``USAGE_METER`` (a run-scoped value; executions/llm_usage.py).
Every model call goes through ``metered_chat``: ``reserve`` holds an estimate of the call's
tokens against the account's monthly budget before the call (refusing it when the budget is
spent), ``settle`` replaces the hold with the call's real usage after it (adding it to the
node's and the run's totals). Without a meter (``flowrunner run``) usage is only reported
in the node's output.
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

from flowrunner.engine import RunScoped
from flowrunner.nodes.llm.types import ChatRequest, ChatResult, OnText, Provider, Usage

# Completion tokens held for a call that sets no max_tokens (the reply is unbounded then;
# what the reply really used replaces the hold when the call ends).
DEFAULT_COMPLETION_HOLD = 4096
# Characters per prompt token when estimating a prompt before the call: low on purpose
# (English runs at about 4), so the estimate errs toward holding too much, never too little.
CHARS_PER_TOKEN = 3


class UsageMeter(Protocol):
    async def reserve(self, node_id: str, tokens: int) -> int:
        """Hold ``tokens`` of the account's monthly budget for one call; the amount held
        (0 when there is no budget). Raises ``LLMBudgetExceeded`` when the budget is spent."""
        ...

    async def settle(self, node_id: str, held: int, usage: Usage | None) -> None:
        """The call ended: count ``usage`` in place of the ``held`` tokens (None: the call
        failed before a reply, nothing is counted and the hold is released)."""
        ...


USAGE_METER: RunScoped[UsageMeter | None] = RunScoped("usage_meter", None)


def estimate(request: ChatRequest) -> int:
    """Tokens a call may use at most, roughly: its prompt (estimated) plus its reply bound."""
    size = len(json.dumps([*request.messages, *(request.tools or ())], default=str))
    prompt = -(-size // CHARS_PER_TOKEN)
    return prompt + (request.max_tokens or DEFAULT_COMPLETION_HOLD)


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
    try:
        result = await provider.chat(request, on_text)
    except BaseException:
        # Cancelled or failed: release the hold. Shielded, so a cancel arriving now does not
        # leave the account's count holding tokens no call used.
        await asyncio.shield(meter.settle(node_id, held, None))
        raise
    await asyncio.shield(meter.settle(node_id, held, result.usage))
    return result
