"""A TCP server that accepts and never says a word: for timeouts and cancellation mid-greeting."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.conftest import HANG_GUARD


@dataclass
class Silent:
    """Where the silent server listens; ``connected`` is set once a client connected,
    ``gone`` once a client that connected has gone away."""

    port: int
    connected: threading.Event = field(default_factory=threading.Event)
    gone: threading.Event = field(default_factory=threading.Event)


@contextmanager
def silent_server() -> Iterator[Silent]:
    """A TCP server that accepts and never says a word: the client waits for a greeting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    silent = Silent(listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            silent.connected.set()
            with conn:
                conn.settimeout(0.1)
                while not stop.is_set():
                    try:
                        if conn.recv(4096) == b"":
                            silent.gone.set()
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        silent.gone.set()
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield silent
    finally:
        stop.set()
        thread.join(HANG_GUARD)
        listener.close()
