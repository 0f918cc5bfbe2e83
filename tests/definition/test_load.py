from __future__ import annotations

import dataclasses

import pytest

from flowrunner.definition import BatchSpec, RetrySpec, load_flow
from flowrunner.errors import DefinitionError

TEXT = """\
metadata:
  name: Orders
  description: Pull orders
  version: "1.0.0"
  webhooks:
    - {url: "https://example.test/hook", events: [execution.completed]}
nodes:
  fetch:
    type: log
    params: {message: "since ${input.since}", level: info}
    retry: {max_retries: 3, wait: 500ms, backoff: exponential, max_wait: 10s, jitter: 0.1}
    batch: {items: "${input.rows}", strategy: worker_pool, max_parallel: 8}
    timeout: 1m30s
    next: {default: done, error: done}
  done:
    type: set
    params: {values: {ok: true}}
    extra: 1
"""


def test_load_builds_a_typed_definition() -> None:
    defn = load_flow(TEXT, source="orders.yaml")
    assert defn.name == "Orders"
    assert defn.metadata.version == "1.0.0"
    assert defn.metadata.webhooks[0]["events"] == ("execution.completed",)
    assert defn.start == "fetch"
    assert list(defn.nodes) == ["fetch", "done"]
    fetch = defn.nodes["fetch"]
    assert fetch.type == "log"
    assert fetch.retry == RetrySpec(3, 0.5, "exponential", 10.0, 0.1)
    assert fetch.batch == BatchSpec("${input.rows}", "worker_pool", 8)
    assert fetch.timeout == 90.0
    assert dict(fetch.next) == {"default": "done", "error": "done"}
    assert (fetch.line, fetch.column) == (8, 3)


def test_definitions_are_read_only() -> None:
    defn = load_flow(TEXT)
    with pytest.raises(TypeError):
        defn.nodes["done"].params["values"]["ok"] = False
    with pytest.raises(TypeError):
        defn.nodes["x"] = defn.nodes["done"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        defn.start = "done"  # type: ignore[misc]


def test_warnings_do_not_stop_loading_and_are_kept() -> None:
    defn = load_flow(TEXT)
    assert [(w.path, w.line) for w in defn.warnings] == [("nodes.done.extra", 18)]


def test_a_definition_error_carries_every_problem() -> None:
    bad = TEXT.replace("type: set", "type: sett").replace("default: done", "default: dne")
    with pytest.raises(DefinitionError) as info:
        load_flow(bad, source="orders.yaml")
    error = info.value
    assert {p.path for p in error.errors} == {"nodes.done.type", "nodes.fetch.next.default"}
    assert [w.path for w in error.warnings] == ["nodes.done.extra"]
    assert str(error).startswith("orders.yaml:14:")
    assert "(and 1 more)" in str(error)


def test_positions_are_kept_for_later_errors() -> None:
    defn = load_flow(TEXT)
    assert defn.position("nodes.fetch.params.message") == (10, 23)
    assert defn.position("nodes.fetch.params.unknown") == (10, 13)


def test_a_flow_names_the_celery_queue_of_its_runs() -> None:
    nodes = "nodes:\n  a: {type: set, params: {values: {}}}\n"
    assert load_flow("metadata: {name: Heavy, queue: heavy.gpu-1}\n" + nodes).metadata.queue == (
        "heavy.gpu-1"
    )
    assert load_flow("metadata: {name: Plain}\n" + nodes).metadata.queue is None


@pytest.mark.parametrize("queue", ["", "two words", "x" * 65, "a/b"])
def test_a_queue_name_outside_the_allowed_characters_is_refused_with_its_path(queue: str) -> None:
    nodes = "nodes:\n  a: {type: set, params: {values: {}}}\n"
    with pytest.raises(DefinitionError) as caught:
        load_flow(f"metadata: {{name: Bad, queue: '{queue}'}}\n" + nodes)
    assert "metadata.queue" in str(caught.value)
