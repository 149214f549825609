"""The WeChat Pay API v3 front door: every ``/v3/...`` call is authenticated like
WeChat does it and every answer (success or error) goes out signed.

Handlers return ``ok(data)`` / ``no_content()`` or raise ``V3Error``; ``V3Gateway.wrap``
checks the request signature first (401 SIGN_ERROR otherwise), turns anything
unexpected into 500 SYSTEM_ERROR, and signs the reply with the platform key — or,
under the fault ``response_bad_signature``, with a key nobody trusts.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
import uuid

from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.signing import AuthorizationError, signed_headers, verify_request

JSON_TYPE = "application/json; charset=utf-8"


class V3Error(Exception):
    """A WeChat Pay error answer: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str, detail: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def body(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


def param_error(message: str, field: str | None = None) -> V3Error:
    return V3Error(400, "PARAM_ERROR", message, {"field": field, "location": "body"} if field else None)


def ok(data: dict, status: int = 200) -> Reply:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Reply(status, body, {"Content-Type": JSON_TYPE})


def no_content() -> Reply:
    return Reply(204, b"", {})


def json_body(request: Request) -> dict:
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise param_error("请求体不是合法的JSON (the body is not valid JSON)") from None
    if not isinstance(body, dict):
        raise param_error("请求体必须是JSON对象 (the body must be a JSON object)")
    return body


class V3Gateway:
    def __init__(self, keys, sp_mchid: str, faults, wall=time.time, log=sys.stderr):
        self._keys = keys
        self._sp_mchid = sp_mchid
        self._faults = faults
        self._wall = wall
        self._log = log

    def route(self, router, method: str, pattern: str, handler) -> None:
        router.add(method, pattern, self.wrap(handler))

    def wrap(self, handler):
        def authenticated(request: Request) -> Reply:
            try:
                try:
                    verify_request(self._keys, self._sp_mchid, request.method, request.target, request.body,
                                   request.headers.get("authorization"), self._wall())
                except AuthorizationError as exc:
                    raise V3Error(401, "SIGN_ERROR", str(exc),
                                  {"location": "authorization", "issue": "sign not match"}) from None
                reply = handler(request)
            except V3Error as exc:
                reply = ok(exc.body(), exc.status)
            except Exception:  # noqa: BLE001 - WeChat answers its own failures this way; retry is safe
                traceback.print_exc(file=self._log)
                reply = ok({"code": "SYSTEM_ERROR", "message": "系统错误 (sandbox error: see its log)"}, 500)
            return self.sign(reply)

        return authenticated

    def sign(self, reply: Reply) -> Reply:
        bad = self._faults.take("response_bad_signature") is not None
        reply.headers.update(signed_headers(self._keys, reply.body, self._wall(), bad_signature=bad))
        reply.headers["Request-ID"] = uuid.uuid4().hex.upper()
        return reply

    def unknown_path(self, request: Request, allowed: list[str]) -> Reply:
        """A /v3 path or method the sandbox does not serve: authenticated and signed like the rest."""
        def refuse(_request: Request) -> Reply:
            if allowed:
                raise V3Error(405, "METHOD_NOT_ALLOWED", f"请使用 {'/'.join(sorted(set(allowed)))} 方法")
            raise V3Error(404, "NOT_FOUND", f"sandbox: no WeChat Pay API at {request.path}")

        return self.wrap(refuse)(request)
