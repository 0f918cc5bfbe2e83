"""A throwaway RabbitMQ node on free loopback ports, for tests that kill and restart it.

The shared RabbitMQ (``FLOWRUNNER_TEST_RABBITMQ_URL``, the system service) must never be
stopped: other tests use it. A test of a broker outage starts a node of its own, with its
node name, ports, database, logs and Erlang cookie in the test's directory and no plugins,
and always kills it. Killed (``kill -9``) and started again on the same database, it keeps
its durable queues and the persistent messages it confirmed, as a production broker does.

It registers with the machine's ``epmd`` (the system broker's); when none was running, the
one the node starts is stopped with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.redis_server import free_port

# The server script itself: /usr/sbin/rabbitmq-server is a wrapper that switches to the
# rabbitmq user, which could not write the test's directory.
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD_PORT = 4369
START_TIMEOUT = 120.0  # a cold Erlang VM on a busy 2-core machine: a hang guard only


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class RabbitServer:
    """One RabbitMQ node: ``stop`` is ``kill -9`` (connections refused), ``start`` again
    brings it back on the same ports and data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"flowrunner-test-{os.getpid()}-{os.urandom(3).hex()}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "rabbitmq.out"
        self._started_epmd = False
        config = root / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nlog.console = false\n")
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")  # not the system's (its node name)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(root),  # the Erlang cookie is made here, not in the user's home
            "LANG": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.process is None and not _listening(EPMD_PORT):
            self._started_epmd = True
        with self.log.open("ab") as out:
            # A session of its own: ``stop`` kills the script, the VM and its helpers at once.
            self.process = subprocess.Popen(
                [RABBITMQ_SERVER],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.log.read_text()[-3000:]}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"rabbitmq-server did not start: {self.log.read_text()[-3000:]}")

    def _answers(self) -> bool:
        """Whether the node accepts an AMQP login (its listener opens once it booted)."""
        if not _listening(self.port):
            return False
        from kombu.connection import Connection

        try:
            with Connection(self.url, connect_timeout=2) as connection:
                connection.connect()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        """``kill -9`` of the whole node (the script, the Erlang VM and its helpers)."""
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._started_epmd:
            # Only if the node started it; epmd refuses while other nodes are registered.
            subprocess.run(["epmd", "-kill"], capture_output=True, check=False, timeout=10)


@contextmanager
def rabbitmq_server(root: Path) -> Iterator[RabbitServer]:
    """A started node whose files are under ``root``, killed at the end whatever happened."""
    if not Path(RABBITMQ_SERVER).exists() or shutil.which("epmd") is None:
        if REQUIRE_SERVICES:
            pytest.fail(f"CI requires every service: {RABBITMQ_SERVER} is not installed")
        pytest.skip(f"{RABBITMQ_SERVER} is not installed")
    root.mkdir(parents=True, exist_ok=True)
    server = RabbitServer(root)
    try:
        server.start()
        yield server
    finally:
        server.close()
