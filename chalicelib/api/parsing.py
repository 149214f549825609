"""Reading request bodies strictly: a JSON object with known fields, or a clear 4xx."""
from __future__ import annotations

from chalicelib.errors import MalformedJson, ValidationFailed

MAX_BODY_BYTES = 64 * 1024


def json_object(request, allowed: set[str], required: set[str] = frozenset()) -> dict:
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationFailed(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        raise MalformedJson("The body is empty: send a JSON object.")
    body = request.json_body  # Chalice raises BadRequestError on bad JSON: mapped to 400
    if not isinstance(body, dict):
        raise MalformedJson("The body must be a JSON object.")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)
    missing = sorted(required - set(body))
    if missing:
        raise ValidationFailed(f"Missing field(s): {', '.join(missing)}.", fields=missing)
    return body
