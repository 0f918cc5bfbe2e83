"""``flows run --follow`` through dropped WebSocket connections: every node line and log
line exactly once, in order, and the output at the end."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.client.conftest import Cli
from tests.cli.client.flows import steps
from tests.cli.client.proxy import CuttingProxy
from tests.conftest import HANG_GUARD
from tests.e2e.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(server: Server) -> Iterator[CuttingProxy]:
    running = CuttingProxy(server.port)
    try:
        yield running
    finally:
        running.close()


class Lines:
    """A process's stderr, read line by line as it is written."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        stream = process.stderr
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, text: str) -> None:
        while True:
            line = self._queue.get(timeout=HANG_GUARD)
            if line is None:
                raise AssertionError(f"ended before {text!r}: {self.seen}")
            self.seen.append(line)
            if text in line:
                return

    def rest(self) -> list[str]:
        while (line := self._queue.get(timeout=HANG_GUARD)) is not None:
            self.seen.append(line)
        return self.seen


def test_follow_survives_dropped_connections_with_no_missing_or_repeated_lines(
    admin_cli: Cli, proxy: CuttingProxy, tmp_path: Path
) -> None:
    flow = tmp_path / "steps.yaml"
    # The nap is long enough to drop the stream twice while it runs; were the machine slow
    # enough for the run to end first, the replay after the reconnect would still be tested.
    flow.write_text(steps("Followed through drops", nap=3))
    admin_cli.ok("flows", "push", str(flow))
    environment = {
        **os.environ,
        "FLOWRUNNER_CLI_CONFIG": str(admin_cli.config),
        "FLOWRUNNER_URL": proxy.url,  # the profile's token is not sent to another server…
        "FLOWRUNNER_TOKEN": _token(admin_cli),  # …so it is given explicitly
    }
    command = [
        sys.executable, "-m", "flowrunner", "flows", "run", "Followed through drops",
        "--input", '{"name": "Ada"}', "--follow",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        try:
            lines = Lines(process)
            lines.until("✓ say")
            proxy.wait_for_websockets(1)
            assert proxy.cut_websockets() == 1
            lines.until("reconnecting")
            proxy.wait_for_websockets(2)
            assert proxy.cut_websockets() <= 1  # the second cut may meet a connection opening
            seen = lines.rest()
            assert process.wait(timeout=HANG_GUARD) == 0, seen
            assert process.stdout is not None
            output = process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
    finished = [line.split()[1] for line in seen if line.startswith("✓ ")]
    assert finished == ["greet", "say", "nap", "done"], seen
    assert sum("hi Ada" in line for line in seen) == 1, seen
    assert proxy.websockets_opened >= 2
    assert json.loads(output) == {"done": True}


def _token(cli: Cli) -> str:
    import tomllib

    profile = tomllib.loads(cli.config.read_text())["profiles"]["default"]
    token: str = profile["token"]
    return token
