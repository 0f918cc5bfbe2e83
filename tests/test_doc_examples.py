"""Every ```yaml block in docs/*.md and README.md validates and runs.

A block may carry a marker on the line before its fence:
``<!-- example: input=<JSON>; output=<JSON>; warnings=<n> -->`` gives the run input, the
output the docs promise, and how many warnings validation gives (default none);
``needs=<node type>`` skips a block that needs a node type that does not exist yet (the rest
of it must still be valid), and fails once that type exists, so the marker cannot go stale;
``skip=<reason>`` marks a block that is not a flow (and fails if it becomes one);
``on_server=<reason>`` marks a flow that waits durably (a ``wait_for``, a long ``delay``):
it is validated here and not run, since only a server can wake it (the same patterns run on
a real server in tests/e2e/test_waiting.py and examples/approval.yaml); the block must hold
such a wait, so the marker cannot outlive it;
``server=<base URL>`` serves the block's URLs under that base from the test HTTP server
(tests/http_server.py) on 127.0.0.1: they are pointed at it before the run, and loopback is
allowed for it (``FLOWRUNNER_HTTP_ALLOW_PRIVATE``);
``models=<base URL>`` points the block's model ``base_url`` (an OpenAI-compatible one, or an
Anthropic one when the URL says ``anthropic``) at the scripted model server
(tests/llm_servers), loopback allowed likewise.

``store`` nodes run on a fresh in-memory key-value store per block.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow, validate_flow
from flowrunner.definition.source import parse_yaml
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.store import RUN_KV
from flowrunner.plugins import builtin_registry
from flowrunner.scripting import Sandbox
from flowrunner.storage.memory import MemoryStore
from tests.http_server import running_server
from tests.llm_servers.server import model_server

ROOT = Path(__file__).resolve().parents[1]
DOCS = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```yaml\s*$")
MARKER = re.compile(r"^<!--\s*example:\s*(.*?)\s*-->\s*$")
KEYS = {"input", "output", "warnings", "needs", "skip", "server", "models", "on_server"}
WAITS = re.compile(r"type: (wait_for|wait|delay)\b")


@dataclass
class Example:
    where: str
    text: str
    marks: dict[str, str] = field(default_factory=dict)


def examples() -> list[Example]:
    found = []
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not FENCE.match(line):
                continue
            end = next(i for i in range(number + 1, len(lines)) if lines[i].startswith("```"))
            marker = MARKER.match(lines[number - 1]) if number else None
            marks: dict[str, str] = {}
            if marker:
                for part in marker.group(1).split("; "):
                    key, _, value = part.partition("=")
                    marks[key.strip()] = value.strip()
            text = "\n".join(lines[number + 1 : end]) + "\n"
            found.append(Example(f"{doc.relative_to(ROOT)}:{number + 1}", text, marks))
    return found


EXAMPLES = examples()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@pytest.fixture
async def kv() -> AsyncIterator[AccountKV]:
    store = MemoryStore()
    await store.connect()
    yield AccountKV(store.kv, "docs")
    await store.close()


def test_the_docs_have_flow_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
async def test_doc_example_validates_and_runs(
    example: Example, sandbox: Sandbox, kv: AccountKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = example.marks
    assert set(marks) <= KEYS, f"{example.where}: unknown marker keys {set(marks) - KEYS}"
    data: Any = parse_yaml(example.text).data
    is_flow = isinstance(data, dict) and {"metadata", "nodes"} <= set(data)
    if "skip" in marks:
        assert not is_flow, f"{example.where} is a whole flow now: drop its skip marker"
        pytest.skip(marks["skip"])
    assert is_flow, f"{example.where}: not a whole flow; complete it or mark it skip=<reason>"
    if "needs" in marks:
        needed = marks["needs"]
        assert builtin_registry().find(needed) is None, (
            f"{example.where}: node type {needed} exists now: drop needs= and make it run"
        )
        errors = [p for p in validate_flow(example.text) if p.severity == "error"]
        # Everything else in the example is valid: only the missing node type is reported.
        assert errors, f"{example.where}: needs {needed} but nothing uses it"
        assert all(f"unknown node type '{needed}'" in p.message for p in errors), errors
        pytest.skip(f"needs the {needed} node type")
    if "on_server" in marks:
        assert WAITS.search(example.text), f"{example.where}: no wait: drop on_server="
        definition = load_flow(example.text, source=example.where, scripts=sandbox)
        assert len(definition.warnings) == int(marks.get("warnings", 0)), definition.warnings
        pytest.skip(f"waits durably: {marks['on_server']}")
    with ExitStack() as stack:
        text = example.text
        if "server" in marks:
            server = stack.enter_context(running_server())
            assert marks["server"] in text, f"{example.where}: no URL under {marks['server']}"
            text = text.replace(marks["server"], server.url)
            monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
        if "models" in marks:
            models = stack.enter_context(model_server())
            base = marks["models"]
            assert base in text, f"{example.where}: no URL under {base}"
            text = text.replace(
                base, models.anthropic_url if "anthropic" in base else models.openai_url
            )
            monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
        definition = load_flow(text, source=example.where, scripts=sandbox)
        assert len(definition.warnings) == int(marks.get("warnings", 0)), definition.warnings
        run_input = json.loads(marks["input"]) if "input" in marks else {}
        compiled = compile_flow(definition, scripts=sandbox)
        result = await compiled.run(run_input, scoped={RUN_KV: kv})
    if "output" in marks:
        assert result.output == json.loads(marks["output"])
