"""PocketFlow cookbook-style nodes, unchanged, run as Flowrunner node types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pocketflow import AsyncNode, BatchNode, Node

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import PluginError
from flowrunner.plugins import builtin_registry
from flowrunner.plugins.pocketflow import pocketflow_type


class Summarize(Node):  # type: ignore[misc]  # pocketflow is untyped. The cookbook's pocketflow-node: retries, then a fallback
    """Summarize shared['data'] in a few words."""

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["data"])

    def exec(self, text: str) -> str:
        self.attempts = getattr(self, "attempts", 0) + 1
        if self.attempts < self.params.get("fail_times", 0) + 1:
            raise RuntimeError("model overloaded")
        return " ".join(text.split()[: self.params.get("words", 3)]) + "…"

    def exec_fallback(self, prep_res: str, exc: Exception) -> str:
        return "There was an error processing your request."

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> str | None:
        shared["summary"] = exec_res
        return "short" if len(exec_res) < 20 else None


class CsvStats(BatchNode):  # type: ignore[misc]  # untyped. The cookbook's pocketflow-batch-node: chunks, then a reduction
    def prep(self, shared: dict[str, Any]) -> list[list[int]]:
        rows: list[int] = shared["rows"]
        size = self.params["chunk"]
        return [rows[i : i + size] for i in range(0, len(rows), size)]

    def exec(self, chunk: list[int]) -> dict[str, int]:
        return {"total": sum(chunk), "count": len(chunk)}

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: list[dict[str, int]]) -> str:
        shared["stats"] = {
            "total": sum(r["total"] for r in exec_res),
            "count": sum(r["count"] for r in exec_res),
        }
        return "default"


class Fetch(AsyncNode):  # type: ignore[misc]  # untyped. The cookbook's pocketflow-async-basic
    async def prep_async(self, shared: dict[str, Any]) -> str:
        return str(self.params["name"])

    async def exec_async(self, name: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"recipes": [f"{name} soup", f"{name} pie"]}

    async def post_async(self, shared: dict[str, Any], prep_res: str, exec_res: Any) -> str:
        shared["recipes"] = exec_res["recipes"]
        return "found"


def registry() -> Any:
    types = builtin_registry()
    types.register(pocketflow_type(Summarize, "pf.summarize", actions={"short"}, max_retries=3))
    types.register(pocketflow_type(CsvStats, "pf.csv_stats"))
    types.register(pocketflow_type(Fetch, "pf.fetch"))
    return types


async def run(yaml: str, run_input: Any = None) -> Any:
    types = registry()
    return await compile_flow(load_flow(yaml, registry=types), registry=types).run(run_input)


async def test_a_sync_node_runs_prep_exec_post_with_its_own_retries() -> None:
    result = await run(
        """metadata: {name: Summary}
nodes:
  seed: {type: set, params: {values: {data: "one two three four five"}}, next: {default: sum}}
  sum: {type: pf.summarize, params: {words: 2, fail_times: 2}, next: {short: done}}
  done: {type: set, params: {values: {was_short: true}}}
"""
    )
    assert result.results["sum"] == "one two…"
    assert result.shared["summary"] == "one two…"
    assert result.shared["was_short"] is True  # post's action picked the edge


async def test_a_node_that_keeps_failing_gets_its_fallback() -> None:
    result = await run(
        """metadata: {name: Summary}
nodes:
  seed: {type: set, params: {values: {data: "a b"}}, next: {default: sum}}
  sum: {type: pf.summarize, params: {fail_times: 5}}
"""
    )
    assert result.output == "There was an error processing your request."


async def test_a_batch_node_maps_its_chunks_and_reduces_in_post() -> None:
    result = await run(
        """metadata: {name: Stats}
nodes:
  seed: {type: set, params: {values: {rows: [1, 2, 3, 4, 5]}}, next: {default: stats}}
  stats: {type: pf.csv_stats, params: {chunk: 2}}
"""
    )
    assert result.output == [
        {"total": 3, "count": 2},
        {"total": 7, "count": 2},
        {"total": 5, "count": 1},
    ]
    assert result.shared["stats"] == {"total": 15, "count": 5}


async def test_an_async_node_runs_on_the_loop_and_routes_by_its_action() -> None:
    result = await run(
        """metadata: {name: Recipes}
nodes:
  fetch: {type: pf.fetch, params: {name: "${input.ingredient}"}, next: {found: done}}
  done: {type: set, params: {values: {n: "${shared.recipes.length}"}}}
""",
        {"ingredient": "leek"},
    )
    assert result.shared["recipes"] == ["leek soup", "leek pie"]
    assert registry().get("pf.fetch").blocking is False
    assert registry().get("pf.summarize").blocking is True


def test_a_class_without_the_node_methods_is_refused() -> None:
    with pytest.raises(PluginError, match="not a PocketFlow node class"):
        pocketflow_type(dict, "pf.dict")
