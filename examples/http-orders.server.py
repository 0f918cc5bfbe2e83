"""The example orders API for http-orders.yaml (standard library only).

    python examples/http-orders.server.py --port 8765

GET /orders?min_total=N (needs ``Authorization: Bearer demo-token``) lists the orders with a
total of at least N; POST /reports takes {"orders": [...]} and answers 201 with an id and the
orders it got. The first line printed is the server's address; port 0 picks a free one.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "demo-token"
ORDERS = [
    {"id": 1, "customer": "Ada", "total": 40},
    {"id": 2, "customer": "Grace", "total": 120},
    {"id": 3, "customer": "Edsger", "total": 310},
]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/orders":
            return self._json(404, {"error": "not found"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(401, {"error": "unauthorized"})
        least = float(parse_qs(url.query).get("min_total", ["0"])[0])
        self._json(200, [o for o in ORDERS if o["total"] >= least])

    def do_POST(self) -> None:
        if self.path != "/reports":
            return self._json(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        report = json.loads(self.rfile.read(length) or b"{}")
        self._json(201, {"id": "r-1", "orders": report.get("orders", [])})

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
