"""The example receiver for webhook-notify.yaml: verifies Standard Webhooks signatures.

    python examples/webhook-notify.server.py --port 8766

POST /hooks checks the ``webhook-*`` headers with the ``standardwebhooks`` library and the
secret ``whsec_ZXhhbXBsZS1zaWduaW5nLXNlY3JldA==`` (the example's ``HOOK_SECRET``): 401 when
the signature does not verify, otherwise 200 with ``{"verified": true, "type": ...}``. Its
very first request gets a 503, to show the node's retry policy at work. The first line printed
is the server's address; port 0 picks a free one.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SECRET = "whsec_ZXhhbXBsZS1zaWduaW5nLXNlY3JldA=="
seen = {"requests": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        seen["requests"] += 1
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path != "/hooks":
            return self._json(404, {"error": "not found"})
        if seen["requests"] == 1:
            return self._json(503, {"error": "warming up, try again"})
        try:
            event = Webhook(SECRET).verify(body, dict(self.headers.items()))
        except WebhookVerificationError as exc:
            return self._json(401, {"error": str(exc)})
        self._json(200, {"verified": True, "type": event.get("type"), "attempt": seen["requests"]})

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
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8766)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
