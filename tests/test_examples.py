"""Every flow in examples/ is validated and run; its output is checked when an
``<name>.expected.json`` sits beside it (``<name>.input.json`` is its run input).

An example with ``email.send``/``email.receive`` nodes runs against the local mail servers
(``tests.mail_servers.mail_setup``: aiosmtpd delivering to Dovecot): their ports, mailbox
and certificate are added to its input, the passwords are its secrets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.scripting import Sandbox
from tests.mail_servers import mail_setup

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOWS = sorted(EXAMPLES.rglob("*.yaml"))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


def test_there_are_examples() -> None:
    assert len(FLOWS) >= 3


@pytest.mark.parametrize("path", FLOWS, ids=[str(p.relative_to(EXAMPLES)) for p in FLOWS])
async def test_example_validates_and_runs(path: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    definition = load_flow(path.read_text(), source=str(path), base_path=path.parent)
    assert definition.warnings == [], definition.warnings
    input_file = path.with_suffix(".input.json")
    run_input = json.loads(input_file.read_text()) if input_file.exists() else {}
    secrets: dict[str, str] = {}
    with ExitStack() as servers:
        if "type: email." in path.read_text():
            mail_input, secrets = servers.enter_context(mail_setup(tmp_path))
            run_input = {**run_input, **mail_input}
        compiled = compile_flow(definition, scripts=sandbox, base_path=path.parent)
        result = await compiled.run(run_input, secrets=secrets)
    expected_file = path.with_suffix(".expected.json")
    if expected_file.exists():
        assert result.output == json.loads(expected_file.read_text())
