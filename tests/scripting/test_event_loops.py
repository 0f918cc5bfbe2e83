"""The sandbox on both event loops the server may run on: asyncio's and uvloop's.

``flowrunner serve`` runs under uvicorn, which picks uvloop when it is installed; uvloop's
Unix transport is not an ``asyncio.Transport`` subclass, and a sandbox that assumed it was
could not start a single worker there. Each scenario runs on its own fresh loop of each kind.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from flowrunner.errors import ScriptError, ScriptResourceError, ScriptTimeout
from flowrunner.scripting import Sandbox
from tests.scripting.processes import until_spinning

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOPS = pytest.mark.parametrize(
    "loop_factory",
    [asyncio.new_event_loop, uvloop.new_event_loop],
    ids=["asyncio", "uvloop"],
)


def run_on(loop_factory: LoopFactory, scenario: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(asyncio.wait_for(scenario, 60))  # a hang guard, not a timing assertion


@LOOPS
def test_expressions_and_functions_evaluate(loop_factory: LoopFactory) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, uvloop.Loop) == (loop_factory is uvloop.new_event_loop)
        async with Sandbox(workers=1, timeout=2.0) as sandbox:
            assert await sandbox.evaluate_expression("input.a * 2", {"input": {"a": 21}}) == 42
            result = await sandbox.run_function(
                "console.log('seen', input.length); shared.n = input.length; return input.at(-1)",
                {"input": [1, 2, 3], "shared": {}},
            )
            assert result.value == 3
            assert result.shared == {"n": 3}
            assert [(line.level, line.message) for line in result.logs] == [("info", "seen 3")]
            with pytest.raises(ScriptError, match="boom"):
                await sandbox.run_function("throw new Error('boom')", {})

    run_on(loop_factory, scenario())


@LOOPS
def test_a_timeout_fails_one_evaluation_and_the_next_one_works(loop_factory: LoopFactory) -> None:
    async def scenario() -> None:
        async with Sandbox(workers=1, timeout=2.0) as sandbox:
            [before] = sandbox.worker_pids
            with pytest.raises(ScriptTimeout):
                await sandbox.run_function("while (true) {}", {}, timeout=0.3)
            assert await sandbox.evaluate_expression("input + 1", {"input": 1}) == 2
            assert sandbox.worker_pids != [before]

    run_on(loop_factory, scenario())


@LOOPS
def test_a_worker_death_fails_one_evaluation_and_the_next_one_works(
    loop_factory: LoopFactory,
) -> None:
    async def scenario() -> None:
        async with Sandbox(workers=1, timeout=5.0) as sandbox:
            [pid] = sandbox.worker_pids
            spinning = asyncio.create_task(sandbox.run_function("while (true) {}", {}))
            await until_spinning(pid)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(ScriptResourceError, match=r"died \(killed by SIGKILL\)"):
                await spinning
            assert await sandbox.evaluate_expression("input + 1", {"input": 1}) == 2

    run_on(loop_factory, scenario())


@LOOPS
def test_recycling_replaces_a_worker_without_failing_an_evaluation(
    loop_factory: LoopFactory,
) -> None:
    async def scenario() -> None:
        async with Sandbox(workers=1, timeout=2.0, recycle_after=20) as sandbox:
            [first] = sandbox.worker_pids
            answers = []
            for n in range(2000):  # bounded; ends as soon as the successor has taken over
                answers.append(await sandbox.evaluate_expression("input * 2", {"input": n}))
                if sandbox.recycled:
                    break
                if n >= 20:
                    await asyncio.sleep(0.01)  # give the successor's start some loop time
            assert sandbox.recycled >= 1
            assert answers == [n * 2 for n in range(len(answers))]
            assert sandbox.worker_pids != [first]
            assert len(sandbox.worker_pids) == 1

    run_on(loop_factory, scenario())
