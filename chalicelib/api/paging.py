"""Paged lists: ?limit=1..100 and an opaque ?cursor.

A cursor is DynamoDB's last evaluated key, signed, so a client can neither read
our key layout into it nor forge one that starts in another tenant's partition.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from chalicelib.errors import ValidationFailed

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


def page_params(query: dict | None, key: str) -> tuple[int, dict | None]:
    query = query or {}
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationFailed(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
    cursor = query.get("cursor")
    return int(raw_limit), (decode_cursor(cursor, key) if cursor else None)


def encode_cursor(last_key: dict | None, key: str) -> str | None:
    if not last_key:
        return None
    payload = base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).rstrip(b"=")
    return f"{payload.decode()}.{_sign(payload, key)}"


def decode_cursor(cursor: str, key: str) -> dict:
    payload, _, signature = cursor.partition(".")
    if not payload or len(cursor) > 2048 or not hmac.compare_digest(signature, _sign(payload.encode(), key)):
        raise ValidationFailed("'cursor' is not one this list gave out.", field="cursor")
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _sign(payload: bytes, key: str) -> str:
    digest = hmac.new(f"cursor:{key}".encode(), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def page(items: list, last_key: dict | None, key: str) -> dict:
    return {"items": [i if isinstance(i, dict) else i.to_json() for i in items],
            "next_cursor": encode_cursor(last_key, key)}
