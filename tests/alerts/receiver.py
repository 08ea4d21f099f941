"""A webhook receiver on 127.0.0.1 for the alert tests: records every JSON post it gets.

It starts *bound but not listening*, so a post is refused as by a dead endpoint; ``listen()``
opens it on the same port. ``slow`` makes it take a post and hold the answer until
``release()``: a webhook that accepts the connection and never answers in time.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_S = 60.0
"""A held post is answered after at most this long, so a test never leaves a thread behind."""


@dataclass(frozen=True)
class Post:
    path: str
    body: dict[str, Any]


class Receiver:
    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self.posts: list[Post] = []
        """Posts answered 200 at once."""
        self.held: list[Post] = []
        """Posts taken while slow; answered only on ``release()``."""
        self.slow = False
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                post = Post(self.path, json.loads(self.rfile.read(length)))
                with receiver._lock:
                    slow = receiver.slow
                    (receiver.held if slow else receiver.posts).append(post)
                if slow:
                    receiver._release.wait(HOLD_S)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.socket.close()
        server.socket = self._socket
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Answer held posts, and every later one at once."""
        with self._lock:
            self.slow = False
        self._release.set()

    def texts(self) -> list[str]:
        return [post.body["text"] for post in self.posts]

    def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
        else:
            self._socket.close()
