"""What ``flowrunner --help`` loads: the CLI's own modules and its terminal libraries, not
the server, the flow stack or an HTTP client (each command imports those when it runs); and
what a server start leaves for later.

Asserted on the set of modules, not on time: the start-up time itself is measured in
``bench/startup.py``; this keeps the heavy imports from creeping back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


# What the server's start must leave for the first request that needs it: the mcp SDK until
# an mcp/agent node connects, Alembic while the database is at head already (each 0.2-1 s of
# CPU and 10-25 MB of RSS); a PostgreSQL store's dialect and driver on SQLite, and the client
# libraries of node types until one runs (each 5-50 ms and 1-3 MB).
SERVE_PROBE = """\
import asyncio, json, sys
from flowrunner.api import create_app
from flowrunner.config import load_settings

async def start_and_stop() -> None:
    app = create_app(load_settings(None))
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start_and_stop())
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by_a_server_start(env: dict[str, str]) -> set[str]:
    """Every module loaded, and each one's top-level package."""
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PROBE], capture_output=True, text=True, check=True, env=env
    )
    loaded = set(json.loads(done.stdout.rsplit("\nMODULES ", 1)[1]))
    return loaded | {m.split(".")[0] for m in loaded}


def test_a_server_restart_loads_neither_alembic_nor_what_no_request_used_yet(
    tmp_path: Path,
) -> None:
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "FLOWRUNNER_DATA_DIR": str(tmp_path),
        "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
    }
    first = modules_loaded_by_a_server_start(env)
    assert "alembic" in first  # an empty database: migrated at the first start
    again = modules_loaded_by_a_server_start(env)
    assert {"alembic", "mako", "mcp", "mcp_types"} & again == set()
    assert {"fastapi", "sqlalchemy"} <= again  # the probe did start the server
    unused = {"sqlalchemy.dialects.postgresql", "asyncpg", "httpx2", "aiosmtplib", "aioimaplib"}
    assert unused & again == set()
    assert "sqlalchemy.dialects.sqlite" in again
    # jsonschema waits for the first flow validated: the built-in types' schemas are checked
    # at first use, a plugin's as it loads (this environment installs one).
    assert "jsonschema" in again
    without_plugins = modules_loaded_by_a_server_start(
        {**env, "FLOWRUNNER_PLUGINS_ENTRY_POINTS": "false"}
    )
    assert {"jsonschema", "referencing"} & without_plugins == set()


# What a `flowrunner worker` builds before Celery takes over (cli/worker.py): the run
# machinery of an API process, without its HTTP application.
WORKER_PROBE = """\
import asyncio, json, sys
from contextlib import AsyncExitStack
from flowrunner.cli.worker import _open
from flowrunner.config import load_settings

async def open_and_close() -> None:
    async with AsyncExitStack() as stack:
        await _open(load_settings(None, executor="celery"), 1, stack)

asyncio.run(open_and_close())
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def worker_env(data_dir: Path) -> dict[str, str]:
    """The environment of a worker on ``data_dir`` with the test Redis as broker and bus."""
    from cryptography.fernet import Fernet

    from tests.conftest import require_service

    redis = require_service("FLOWRUNNER_TEST_REDIS_URL", "Redis")
    return {
        **os.environ,
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
        "FLOWRUNNER_BROKER_URL": redis,
        "FLOWRUNNER_EVENT_BUS_URL": redis,
    }


def test_a_worker_start_builds_no_http_application(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=worker_env(tmp_path),
    )
    loaded = set(json.loads(done.stdout.rsplit("\nMODULES ", 1)[1]))
    assert not any(m.startswith(("fastapi", "flowrunner.api.app")) for m in loaded)
    assert "flowrunner.executions.worker" in loaded  # the probe did build the worker


# The whole `flowrunner worker` command, as its console script runs it, writing at exit
# (after its warm shutdown) the modules it had loaded to the file named by argv[1] (Celery
# sends the worker's stdout and stderr to its log).
WORKER_COMMAND = """\
import atexit, json, pathlib, runpy, sys
report = pathlib.Path(sys.argv[1])
atexit.register(lambda: report.write_text(json.dumps(sorted(sys.modules))))
sys.argv = ["flowrunner", "worker", "--concurrency", "1"]
runpy.run_module("flowrunner", run_name="__main__")
"""


def test_a_worker_runs_celery_without_its_command_line(tmp_path: Path) -> None:
    import signal
    import time

    # A queue of its own: no other test's run reaches this worker.
    env = {**worker_env(tmp_path), "FLOWRUNNER_DEFAULT_QUEUE": f"startup-probe-{os.getpid()}"}
    log, report = tmp_path / "worker.log", tmp_path / "modules.json"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER_COMMAND, str(report)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        while "ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    loaded = set(json.loads(report.read_text()))
    assert "celery.apps.worker" in loaded  # Celery's worker did run
    # Celery's command line (click, its REPL and prompt_toolkit) is not needed to run one.
    assert not any(m.startswith(("celery.bin", "click_repl", "prompt_toolkit")) for m in loaded)
