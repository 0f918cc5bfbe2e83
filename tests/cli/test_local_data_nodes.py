"""``flowrunner run`` (no server) with the store and postgres nodes, as typed in a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import require_service
from tests.storage.conftest import scratch_postgres_database

COUNTER = """\
metadata: {name: Counter}
nodes:
  count: {type: store, params: {operation: increment, key: runs}}
"""


def flowrunner(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", *args],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard
        env={**os.environ, "FLOWRUNNER_DATA_DIR": str(tmp_path / "data"), **env},
        check=False,
    )


def test_local_runs_share_a_durable_store_in_the_data_dir(tmp_path: Path) -> None:
    flow = tmp_path / "counter.yaml"
    flow.write_text(COUNTER)
    outputs = []
    for _ in range(2):
        done = flowrunner(tmp_path, "run", str(flow), "-o", "json")
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout)["output"])
    assert outputs == [1, 2]
    assert (tmp_path / "data" / "flowrunner.db").is_file()


def test_with_the_memory_backend_each_local_run_starts_afresh(tmp_path: Path) -> None:
    flow = tmp_path / "counter.yaml"
    flow.write_text(COUNTER)
    for _ in range(2):
        done = flowrunner(tmp_path, "run", str(flow), "-o", "json", FLOWRUNNER_STORAGE="memory")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["output"] == 1
    assert not (tmp_path / "data" / "flowrunner.db").exists()


def test_flows_without_a_store_node_never_open_the_database(tmp_path: Path) -> None:
    flow = tmp_path / "plain.yaml"
    flow.write_text("metadata: {name: P}\nnodes:\n  s: {type: set, params: {values: {a: 1}}}\n")
    done = flowrunner(tmp_path, "run", str(flow), "-o", "json")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data" / "flowrunner.db").exists()


@pytest.mark.postgres
def test_postgres_secrets_stay_masked_in_local_output(tmp_path: Path) -> None:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    password = "local-pw-" + os.urandom(6).hex()
    dsn = make_url(server).set(drivername="postgresql", password=password)
    flow = tmp_path / "pg.yaml"
    flow.write_text(
        "metadata: {name: PG}\nnodes:\n"
        "  q: {type: postgres, params: {dsn: '${secrets.PG}', operation: execute,"
        " query: 'SELECT $1::text AS echoed', args: ['${secrets.PG}']}}\n"
    )
    ok = flowrunner(
        tmp_path, "run", str(flow), "-o", "json", "--secret", f"PG={dsn.render_as_string(False)}"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["output"] == {"rows": [{"echoed": "***"}], "row_count": 1}
    down = dsn.set(port=1).render_as_string(False)
    failed = flowrunner(tmp_path, "run", str(flow), "-o", "json", "--secret", f"PG={down}")
    assert failed.returncode == 1
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in failed.stdout + failed.stderr
    for text in (ok.stdout, ok.stderr, failed.stdout, failed.stderr):
        assert password not in text


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.postgres
def test_the_postgres_example_runs_as_its_header_says(tmp_path: Path) -> None:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    flow = EXAMPLES / "postgres-orders.yaml"
    for url in scratch_postgres_database(server, migrate=False):  # dropped afterwards
        dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        done = flowrunner(
            tmp_path, "run", str(flow), "-i", f"@{flow.with_suffix('.input.json')}",
            "--secret", f"PG_DSN={dsn}", "-o", "json",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = json.loads(flow.with_suffix(".expected.json").read_text())
    assert json.loads(done.stdout)["output"] == expected


@pytest.mark.dynamodb
def test_the_dynamodb_example_runs_as_its_header_says(
    tmp_path: Path, dynamodb_endpoint: str
) -> None:
    pytest.importorskip("aioboto3")
    flow = EXAMPLES / "dynamodb-sessions.yaml"
    done = flowrunner(
        tmp_path, "run", str(flow), "-i", f"@{flow.with_suffix('.input.json')}",
        "--secret", f"DYNAMODB_ENDPOINT={dynamodb_endpoint}",
        "--secret", "AWS_ACCESS_KEY_ID=local", "--secret", "AWS_SECRET_ACCESS_KEY=local",
        "-o", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)["output"]
    assert output["session"] == {"user": "ada", "roles": ["admin"]}
    assert output["logins"] >= 1  # the session's server may have run the example before
