"""The loopback moto server used by the DynamoDB tests, and the backend's install hint."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from tests.dynamodb_server import ENDPOINT_ENV, endpoint_for_tests, moto_server


def _accepts(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.dynamodb
def test_moto_server_runs_on_loopback_and_stops_after_the_block() -> None:
    with moto_server() as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5) as response:
            assert response.status == 200
    assert not _accepts(endpoint)


def test_a_configured_endpoint_is_used_instead_of_starting_moto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "https://dynamodb.eu-west-1.amazonaws.com")
    with endpoint_for_tests() as endpoint:
        assert endpoint == "https://dynamodb.eu-west-1.amazonaws.com"


def test_missing_aioboto3_gives_an_install_hint() -> None:
    # A real interpreter where importing aioboto3 fails, as it does without the extra.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["aioboto3"] = None
        from flowrunner.errors import StorageError
        try:
            import flowrunner.storage.dynamodb
        except StorageError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'flowrunner[dynamodb]'" in out.stdout
