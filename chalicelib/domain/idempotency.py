"""Idempotency-Key rules (the contract): the same key and body answer the first
response again; the same key with another body is refused; a request racing one
still in flight is refused; keys live at least 24 hours."""
from __future__ import annotations

import hashlib
import json

from chalicelib.errors import Conflict, ValidationFailed

KEY_TTL_S = 25 * 3600          # at least 24 h, with an hour of margin
IN_FLIGHT_LEASE_S = 60         # after this, an unfinished request is taken to have died

IN_PROGRESS, PREPAY_FAILED, DONE = "IN_PROGRESS", "PREPAY_FAILED", "DONE"


class KeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request body."


class RequestInProgress(Conflict):
    code = "REQUEST_IN_PROGRESS"
    default_message = "A request with this Idempotency-Key is still being processed."


def check_key(key: str | None, required: bool = True) -> str | None:
    if key is None:
        if required:
            raise ValidationFailed("Send an 'Idempotency-Key' header (1 to 255 characters).", field="Idempotency-Key")
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise ValidationFailed("'Idempotency-Key' must be 1 to 255 printable ASCII characters.",
                               field="Idempotency-Key")
    return key


def request_fingerprint(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def decide(record, fingerprint: str, now: float) -> str:
    """What a request finding its key already claimed does: 'replay', 'resume' or 'new'
    (the old claim expired); raises KeyReused / RequestInProgress."""
    if record is None or record.expires_at_ts <= now:
        return "new"
    if record.request_hash != fingerprint:
        raise KeyReused()
    if record.state == DONE:
        return "replay"
    if record.state == PREPAY_FAILED or now - record.created_at > IN_FLIGHT_LEASE_S:
        return "resume"
    raise RequestInProgress()


class KeyView:
    """The fields of a stored key that ``decide`` reads."""

    def __init__(self, request_hash: str, state: str, created_at: float, expires_at_ts: float):
        self.request_hash, self.state = request_hash, state
        self.created_at, self.expires_at_ts = created_at, expires_at_ts

    @classmethod
    def of(cls, record) -> "KeyView":
        return cls(record.request_hash, record.state, float(record.created_at), record.expires_at.timestamp())
