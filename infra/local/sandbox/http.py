"""A tiny router on the standard library's threading HTTP server.

The sandbox needs exact control of bytes and headers (WeChat's quirks, signed
responses over the exact body bytes, request signatures over the exact request
target), which a plain http.server gives without another dependency.
"""
from __future__ import annotations

import json
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    # The request target exactly as it came on the wire (path and query, still
    # percent-encoded): WeChat Pay signatures cover these bytes.
    target: str = ""

    def json(self):
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200, content_type: str = "application/json; charset=utf-8"):
        return cls(status, json.dumps(data, ensure_ascii=False).encode(), {"Content-Type": content_type})

    @classmethod
    def error(cls, status: int, code: str, message: str, details: dict | None = None):
        """The contract's error body, used by the sandbox's own controls."""
        return cls.json({"error": {"code": code, "message": message, "details": details or {}}}, status)


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, callable]] = []
        self._fallbacks: list[tuple[str, callable]] = []

    def add(self, method: str, pattern: str, handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, handler))

    def fallback(self, prefix: str, handler) -> None:
        """What answers a path under ``prefix`` that no route takes: each family of
        APIs answers a wrong path or method in its own error dialect. The handler
        gets the request and the methods the path allows (empty: unknown path)."""
        self._fallbacks.append((prefix, handler))

    def dispatch(self, request: Request) -> Reply:
        allowed = []
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            return handler(request)
        for prefix, handler in self._fallbacks:
            if request.path.startswith(prefix):
                return handler(request, allowed)
        if allowed:
            return Reply.json({"errcode": 43001, "errmsg": f"require {'/'.join(allowed)} method"}, 405)
        return Reply.json({"errcode": 404, "errmsg": f"sandbox: no API at {request.path}"}, 404)


def serve(router: Router, host: str, port: int, log=sys.stdout) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            started = time.perf_counter()
            parts = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            body = self.rfile.read(length) if length > 0 else b""
            request = Request(self.command, parts.path,
                              {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                              {k.lower(): v for k, v in self.headers.items()}, body, target=self.path)
            try:
                reply = router.dispatch(request)
            except Exception:  # noqa: BLE001 - the sandbox answers like WeChat's "system busy"
                traceback.print_exc(file=sys.stderr)
                if parts.path.startswith("/sandbox/"):
                    reply = Reply.error(500, "SANDBOX_ERROR", "the sandbox failed: see its log")
                else:
                    reply = Reply.json({"errcode": -1, "errmsg": "system error"}, 500)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            print(json.dumps({"method": self.command, "path": parts.path, "status": reply.status,
                              "latency_ms": round((time.perf_counter() - started) * 1000, 1)}),
                  file=log, flush=True)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format, *args):  # noqa: A002 - logged as JSON above
            pass

    class SandboxServer(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # the standard backlog of 5 resets bursts of connections

    return SandboxServer((host, port), Handler)
