"""End to end against a real ``flowrunner serve`` process on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.api.helpers import flow_yaml
from tests.e2e.server import free_port

ADMIN = ("root", "root-password-1")
pytestmark = pytest.mark.slow


@contextmanager
def serve(data_dir: Path, **env: str) -> Iterator[str]:
    """Run ``flowrunner serve`` until the block ends; yields its base URL once it answers."""
    port = free_port()
    environ = {
        **os.environ,
        "FLOWRUNNER_DATA_DIR": str(data_dir),
        "FLOWRUNNER_STORAGE": "sqlite",
        "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
        "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
        **env,
    }
    if "FLOWRUNNER_SECRET_KEYS" not in env:
        environ.pop("FLOWRUNNER_SECRET_KEYS", None)  # the embedded default: a generated key
    log = (data_dir / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowrunner",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process, data_dir / f"serve-{port}.log")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1) as http:  # one CA bundle load, not one per poll
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}: {log.read_text()}")
            try:
                if http.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
    raise AssertionError(f"server did not answer within 30 s: {log.read_text()}")


def login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("serve")
    shutil.copyfile(sqlite_template, data_dir / "flowrunner.db")  # skip migrating from scratch
    key = Fernet.generate_key().decode()
    with serve(data_dir, FLOWRUNNER_SECRET_KEYS=key) as base:
        yield base


def test_served_api_creates_and_returns_a_flow(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        assert client.get("/readyz").json()["status"] == "ok"
        headers = login(client, *ADMIN)
        created = client.post(
            "/api/v1/flows",
            content=flow_yaml(),
            headers={**headers, "content-type": "application/yaml", "x-request-id": "e2e-1"},
        )
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "e2e-1"
        raw = client.get(
            f"/api/v1/flows/{created.json()['id']}",
            headers={**headers, "accept": "application/yaml"},
        )
        assert raw.text == flow_yaml()


def test_served_api_refuses_an_oversized_body_with_413(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        headers = login(client, *ADMIN)
        huge = b"#" * (2 * 1024 * 1024)
        response = client.post(
            "/api/v1/flows", content=huge, headers={**headers, "content-type": "application/yaml"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"


def test_served_api_answers_unauthenticated_requests_with_401(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        response = client.get("/api/v1/flows")
        assert response.status_code == 401
        assert response.json()["error"]["correlation_id"] == response.headers["x-request-id"]


def test_generated_key_survives_restarts_and_a_wrong_key_set_stops_the_start(
    tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "flowrunner.db")
    secret = {"value": {"user": "bot", "password": "p"}}
    with serve(tmp_path) as base, httpx.Client(base_url=base) as client:
        headers = login(client, *ADMIN)
        put = client.put("/api/v1/accounts/me/secrets/SMTP", json=secret, headers=headers)
        assert put.status_code == 200
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600

    with serve(tmp_path) as base, httpx.Client(base_url=base) as client:
        headers = login(client, *ADMIN)
        read = client.get("/api/v1/accounts/me/secrets/SMTP", headers=headers)
        assert read.json()["value"] == secret["value"]

    wrong = Fernet.generate_key().decode()
    with (
        pytest.raises(AssertionError, match="server exited") as failed,
        serve(tmp_path, FLOWRUNNER_SECRET_KEYS=wrong),
    ):
        pass
    assert "not in the keyring" in str(failed.value)
