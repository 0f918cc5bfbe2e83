"""Every flow in examples/ is validated and run; its output is checked when an
``<name>.expected.json`` sits beside it (``<name>.input.json`` is its run input,
``<name>.secrets.json`` its secrets).

An example that calls a server ships it as ``<name>.server.py`` (a script that serves on
127.0.0.1, takes ``--port`` and prints its address as its first line): the test starts it on
a free port, passes the address as the input's ``base_url``, allows loopback for the run
(``FLOWRUNNER_HTTP_ALLOW_PRIVATE``) and stops it afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.scripting import Sandbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOWS = sorted(EXAMPLES.rglob("*.yaml"))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@contextmanager
def example_server(script: Path) -> Iterator[str]:
    """Runs an example's server on a free port; its address."""
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("http://127.0.0.1:"), f"{script.name} printed {address!r}"
        yield address
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_there_are_examples() -> None:
    assert len(FLOWS) >= 3


@pytest.mark.parametrize("path", FLOWS, ids=[str(p.relative_to(EXAMPLES)) for p in FLOWS])
async def test_example_validates_and_runs(
    path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = load_flow(path.read_text(), source=str(path), base_path=path.parent)
    assert definition.warnings == [], definition.warnings
    input_file = path.with_suffix(".input.json")
    run_input = json.loads(input_file.read_text()) if input_file.exists() else {}
    secrets_file = path.with_suffix(".secrets.json")
    secrets = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    server = path.with_suffix(".server.py")
    with example_server(server) if server.exists() else _no_server() as address:
        if address is not None:
            run_input["base_url"] = address
            monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
        compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
        result = await compiled.run(run_input, secrets=secrets)
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert result.output == json.loads(expected_file.read_text())


@contextmanager
def _no_server() -> Iterator[None]:
    yield None
