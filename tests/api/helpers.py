"""Shared bits of the API tests: keys, a webhook receiver, the signature check."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from dataclasses import dataclass, field

from ptmatch.domain import api

ALL_SCOPES = api.SCOPES


def make_key(session, now, therapist, scopes=ALL_SCOPES, name="Praxissoftware") -> str:
    _key, raw = api.create_key(session, now, therapist.user, name, scopes)
    return raw


def auth(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def verify_signature(secret: str, header: str, body: bytes, now_ts: int, tolerance=300) -> bool:
    """The receiver's side, written from the docs (docs/api.md), not from the app's code."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(now_ts - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    """A local HTTP server that records webhook POSTs; `up=False` answers 503."""

    up: bool = True
    received: list = field(default_factory=list)

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not outer.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
