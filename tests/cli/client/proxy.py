"""A TCP proxy on loopback that a test controls: it forwards to the server and can cut the
WebSocket connections going through it, as a flaky network or a restarting balancer would."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.conftest import HANG_GUARD


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._changed = threading.Condition()
        self._websockets: list[tuple[socket.socket, socket.socket]] = []
        self.websockets_opened = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target)
        except OSError:
            client.close()
            return
        try:
            first = client.recv(65536)
            upstream.sendall(first)
        except OSError:
            client.close()
            upstream.close()
            return
        if b"upgrade: websocket" in first.lower():
            with self._changed:
                self._websockets.append((client, upstream))
                self.websockets_opened += 1
                self._changed.notify_all()
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def wait_for_websockets(self, count: int) -> None:
        """Until ``count`` WebSocket connections have been opened through the proxy in all."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: self.websockets_opened >= count, timeout=HANG_GUARD
            ):
                raise AssertionError(f"only {self.websockets_opened} WebSocket connection(s)")

    def cut_websockets(self) -> int:
        """Drop every open WebSocket connection at once (both sides see a reset)."""
        with self._changed:
            pairs, self._websockets = self._websockets, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        return len(pairs)

    def close(self) -> None:
        self._listener.close()
        self.cut_websockets()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
