"""What ``flowrunner --help`` loads: the CLI's own modules and its terminal libraries, not
the server, the flow stack or an HTTP client (each command imports those when it runs).

Asserted on the set of modules, not on time: the start-up time itself is measured in
``bench/startup.py``; this keeps the heavy imports from creeping back.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Third-party packages `--help` must not import (each costs tens to hundreds of ms).
HEAVY = frozenset(
    {
        "aiosqlite",
        "anthropic",
        "argon2",
        "asyncio",
        "asyncpg",
        "cryptography",
        "fastapi",
        "httpx",
        "jsonschema",
        "openai",
        "py_mini_racer",
        "pydantic",
        "pydantic_settings",
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "websockets",
        "yaml",
    }
)
PROBE = """\
import json, runpy, sys
sys.argv = ["flowrunner", *json.loads(sys.argv[1])]
try:
    runpy.run_module("flowrunner", run_name="__main__")
except SystemExit:
    pass
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = done.stdout.rsplit("\nMODULES ", 1)[1]
    return set(json.loads(line))


def test_help_loads_only_the_cli_and_its_terminal_libraries() -> None:
    loaded = modules_loaded_by("--help")
    ours = {m for m in loaded if m == "flowrunner" or m.startswith("flowrunner.")}
    outside_cli = {
        m
        for m in ours
        if m not in {"flowrunner", "flowrunner.errors"} and not m.startswith("flowrunner.cli")
    }
    assert outside_cli == set()
    assert {m.split(".")[0] for m in loaded} & HEAVY == set()
    assert "typer" in loaded  # the probe did run the CLI


def test_a_subcommands_help_loads_no_more() -> None:
    loaded = modules_loaded_by("flows", "--help")
    # Typer itself converts a group's parameters with pydantic (typer._adapters).
    assert {m.split(".")[0] for m in loaded} & HEAVY == {"pydantic"}
    assert not any(m.startswith(("flowrunner.api", "flowrunner.storage")) for m in loaded)
