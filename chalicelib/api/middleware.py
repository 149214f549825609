"""The one place errors become the contract's body, and every request is logged.

Also remaps Chalice's own error responses (bad JSON, 405, 415, its 500) from
``{"Code", "Message"}`` to ``{"error": {"code", "message", "details"}}``.
"""
from __future__ import annotations

import json
import time

from chalice import Response
from chalice.app import BadRequestError, ChaliceViewError

from chalicelib import errors
from chalicelib.api.blueprint import RaisedInView
from chalicelib.log import get_logger

_CHALICE_CODES = {
    "MethodNotAllowedError": errors.MethodNotAllowed,
    "UnsupportedMediaType": errors.UnsupportedMediaType,
    "BadRequest": errors.BadRequest,
    "BadRequestError": errors.BadRequest,
    "NotFoundError": errors.NotFound,
    "InternalServerError": errors.Internal,
}


def errors_and_access_log(event, get_response):
    started = time.perf_counter()
    try:
        response = get_response(event)
    except RaisedInView as raised:
        response = error_response(raised.original, event)
    except Exception as exc:  # noqa: BLE001 - anything else is our bug: a 500, logged
        response = error_response(exc, event)
    response = _remap_chalice_error(response)
    request_id = _request_id(event)
    response.headers["X-Request-Id"] = request_id
    get_logger("storelink.access").info("request", extra={"fields": {
        "method": event.method, "route": _route(event), "status": response.status_code,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "request_id": request_id,
    }})
    return response


def error_response(exc: BaseException, event=None) -> Response:
    if isinstance(exc, errors.StoreLinkError):
        error = exc
    elif isinstance(exc, BadRequestError):
        # The only BadRequestError Chalice raises itself is its JSON parse failure.
        error = errors.MalformedJson()
    elif isinstance(exc, ChaliceViewError):
        error = _by_status(exc.STATUS_CODE)(str(exc))
    else:
        get_logger("storelink.errors").error("unhandled exception", exc_info=exc, extra={
            "fields": {"route": _route(event) if event else None,
                       "request_id": _request_id(event) if event else None}})
        error = errors.Internal()
    return contract_response(error)


def contract_response(error: errors.StoreLinkError, headers: dict | None = None) -> Response:
    return Response(body=error.to_body(), status_code=error.status,
                    headers={"Content-Type": "application/json", **(headers or {})})


def _remap_chalice_error(response: Response) -> Response:
    if response.status_code < 400:
        return response
    body = response.body
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if isinstance(body, dict) and not {"Code", "Message"} <= set(body):
        return response  # already ours (the contract's body, or WeChat's {"code","message"})
    code = body.get("Code") if isinstance(body, dict) else None
    error_cls = _CHALICE_CODES.get(code) or _by_status(response.status_code)
    message = None
    if error_cls is errors.MethodNotAllowed and response.headers.get("Allow"):
        message = f"Use {response.headers['Allow']} on this resource."
    extra = {"Allow": response.headers["Allow"]} if "Allow" in response.headers else {}
    return contract_response(error_cls(message), extra)


def _by_status(status: int) -> type[errors.StoreLinkError]:
    for cls in (errors.BadRequest, errors.Unauthenticated, errors.Forbidden, errors.NotFound,
                errors.MethodNotAllowed, errors.Conflict, errors.UnsupportedMediaType,
                errors.BusinessRuleViolated, errors.Throttled):
        if cls.status == status:
            return cls
    return errors.Internal if status >= 500 else errors.BadRequest


def _request_id(event) -> str:
    context = getattr(event, "context", None) or {}
    lambda_context = getattr(event, "lambda_context", None)
    return str(context.get("requestId") or getattr(lambda_context, "aws_request_id", None) or "-")


def _route(event) -> str:
    context = getattr(event, "context", None) or {}
    return str(context.get("resourcePath") or getattr(event, "path", "?"))
