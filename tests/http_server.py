"""A local HTTP server for download tests: Range requests and injected faults."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    # Close the connection after this many body bytes (once per entry, then serve normally).
    cut_after: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    honour_range: bool = True
    # Bytes sent after the body, beyond the Content-Length (a misbehaving server).
    extra: bytes = b""
    # path -> Location: answered with 302.
    redirects: dict[str, str] = field(default_factory=dict)
    # Send this many body bytes, then go silent for stall_seconds (once per entry).
    stall_after: list[int] = field(default_factory=list)
    stall_seconds: float = 3.0


def make_handler(state: ServerState) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range", "")
            state.requests.append((self.path, rng))
            if self.path in state.redirects:
                self.send_response(302)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and state.honour_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if state.cut_after:
                n = state.cut_after.pop(0)
                self.wfile.write(payload[:n])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            if state.stall_after:
                n = state.stall_after.pop(0)
                self.wfile.write(payload[:n])
                self.wfile.flush()
                time.sleep(state.stall_seconds)
                return
            self.wfile.write(payload + state.extra)

    return Handler


class LocalServer:
    def __init__(self) -> None:
        self.state = ServerState()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
