"""A local HTTP server of images for the tests of fetching by URL: a PNG, a JPEG, a page that is no
image, one too large (declared, and streamed without a length), a 404, redirects and a slow answer.
It records the paths it was asked for, so a test can see that a refused URL was never requested."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))
TOO_LARGE = 10 * 1024 * 1024 + 1


@dataclass
class ImageServer:
    url: str = ""
    requested: list[str] = field(default_factory=list)
    slow_seconds: float = 2.0


def _handler(server: ImageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, content_type: str, *, length: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            server.requested.append(self.path)
            path = self.path.split("?", 1)[0]
            if path == "/shop/tea.png":
                self._send(200, PNG, "image/png")
            elif path == "/photos/%E8%8C%B6.jpg":
                # a JPEG that says it is something else: the first bytes decide
                self._send(200, JPEG, "application/octet-stream")
            elif path == "/page.png":
                self._send(200, b"<!doctype html><title>not an image</title>", "text/html; charset=utf-8")
            elif path == "/big.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(TOO_LARGE))
                self.end_headers()
                self.close_connection = True
            elif path == "/endless.png":
                # no length: the body is cut off only by the size cap
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(PNG)
                    chunk = b"\x00" * 65536
                    for _ in range(TOO_LARGE // len(chunk) + 2):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
            elif path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/shop/tea.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/slow.png":
                time.sleep(server.slow_seconds)
                self._send(200, PNG, "image/png")
            else:
                self._send(404, b"not found", "text/plain")

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # a client that stops reading (a body over the cap) resets the connection: expected here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serving() -> Iterator[ImageServer]:
    """The image server on a free port of 127.0.0.1 until the block ends."""
    state = ImageServer()
    server = _Server(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
