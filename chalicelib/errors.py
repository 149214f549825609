"""One hierarchy of errors, each with the HTTP status and stable code the contract
promises. Raised anywhere (domain, use cases, adapters); turned into the contract's
error body in exactly one place, ``chalicelib.api.middleware``.
"""
from __future__ import annotations

from typing import Any


class StoreLinkError(Exception):
    status = 500
    code = "INTERNAL_ERROR"
    default_message = "Something went wrong on our side."

    def __init__(self, message: str | None = None, **details: Any):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details

    def to_body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


# 400: the request itself is malformed
class BadRequest(StoreLinkError):
    status, code = 400, "BAD_REQUEST"
    default_message = "The request is malformed."


class MalformedJson(BadRequest):
    code = "MALFORMED_JSON"
    default_message = "The request body is not valid JSON."


class ValidationFailed(BadRequest):
    code = "VALIDATION_FAILED"
    default_message = "The request has invalid fields."


class MalformedXml(BadRequest):
    code = "MALFORMED_XML"
    default_message = "The request body is not well-formed XML."


# 401: no session, or a session we cannot trust
class Unauthenticated(StoreLinkError):
    status, code = 401, "UNAUTHENTICATED"
    default_message = "Sign in first: send 'Authorization: Bearer <token>'."


class InvalidToken(Unauthenticated):
    code = "INVALID_TOKEN"
    default_message = "The token is not valid."


class TokenExpired(Unauthenticated):
    code = "TOKEN_EXPIRED"
    default_message = "The token has expired: sign in again."


class InvalidLoginCode(Unauthenticated):
    code = "INVALID_LOGIN_CODE"
    default_message = "WeChat does not recognise this login code: call wx.login again."


class LoginCodeUsed(Unauthenticated):
    code = "LOGIN_CODE_ALREADY_USED"
    default_message = "This login code has already been used: call wx.login again."


class InvalidSignature(Unauthenticated):
    """A push that claims to come from WeChat (the official account's server URL) and does not verify."""
    code = "INVALID_SIGNATURE"
    default_message = "The request's signature does not verify."


# 403, 404, 405, 409, 413, 415, 422, 429
class Forbidden(StoreLinkError):
    status, code = 403, "FORBIDDEN"
    default_message = "Your role may not do this."


class LoginBlocked(Forbidden):
    code = "LOGIN_BLOCKED"
    default_message = "WeChat refused this user's login (high-risk account)."


class NotFound(StoreLinkError):
    status, code = 404, "NOT_FOUND"
    default_message = "Nothing is here."


class MethodNotAllowed(StoreLinkError):
    status, code = 405, "METHOD_NOT_ALLOWED"
    default_message = "This method is not allowed on this resource."


class Conflict(StoreLinkError):
    status, code = 409, "CONFLICT"
    default_message = "The resource changed; reload and try again."


class PayloadTooLarge(StoreLinkError):
    status, code = 413, "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class UnsupportedMediaType(StoreLinkError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Send the body as application/json."


class BusinessRuleViolated(StoreLinkError):
    status, code = 422, "BUSINESS_RULE_VIOLATED"
    default_message = "A business rule refuses this request."


class NotSupported(BusinessRuleViolated):
    code = "NOT_SUPPORTED"
    default_message = "This is not supported yet."


class Throttled(StoreLinkError):
    status, code = 429, "THROTTLED"
    default_message = "Too many requests: try again shortly."


# 5xx: our side or an upstream failed; never for bad input
class UpstreamUnavailable(StoreLinkError):
    status, code = 503, "UPSTREAM_UNAVAILABLE"
    default_message = "WeChat did not answer in time: try again shortly."


class Internal(StoreLinkError):
    status, code = 500, "INTERNAL_ERROR"
