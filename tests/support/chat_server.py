"""A local OpenAI-compatible chat-completions server for the tests of our HTTP clients (SFT expert endpoint, judge).

It listens on 127.0.0.1 on a free port and only there; subclasses decide what each ``POST /v1/chat/completions``
answers by implementing :meth:`LocalChatServer.handle`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalChatServer:
    """Threaded HTTP server on 127.0.0.1; ``with server:`` serves, leaving the block shuts it down."""

    def __init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        """Answer one POST (read the body from ``request.rfile``, reply with :func:`send_json`)."""
        raise NotImplementedError


def read_json(request: BaseHTTPRequestHandler) -> dict:
    """The JSON body of a request."""
    return json.loads(request.rfile.read(int(request.headers["Content-Length"])))


def send_json(request: BaseHTTPRequestHandler, status: int, payload) -> None:
    """Reply with ``status`` and ``payload`` as JSON."""
    data = json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)
