"""Reading typed fields out of a JSON body, each failure a clear 400 naming the field."""
from __future__ import annotations

import re

from chalicelib.errors import ValidationFailed

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MISSING = object()


def text(body: dict, name: str, max_len: int, required: bool = True, min_len: int = 1):
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise ValidationFailed(f"'{name}' is required.", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"'{name}' must be a string.", field=name)
    value = value.strip()
    if not min_len <= len(value) <= max_len:
        raise ValidationFailed(f"'{name}' must be {min_len} to {max_len} characters.", field=name)
    if not value.isprintable():
        raise ValidationFailed(f"'{name}' has control characters.", field=name)
    return value


def integer(body: dict, name: str, minimum: int, maximum: int, required: bool = True):
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise ValidationFailed(f"'{name}' is required.", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"'{name}' must be a whole number.", field=name)
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"'{name}' must be between {minimum} and {maximum}.", field=name)
    return value


def choice(body: dict, name: str, options: tuple, required: bool = True):
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise ValidationFailed(f"'{name}' is required.", field=name)
        return None
    if value not in options:
        raise ValidationFailed(f"'{name}' must be one of {', '.join(options)}.", field=name)
    return value


def identifier(value: object, name: str) -> str:
    if not isinstance(value, str) or not ID.match(value):
        raise ValidationFailed(f"'{name}' must be 1 to 64 characters of [A-Za-z0-9_-].", field=name)
    return value


def present(body: dict, *names: str) -> list[str]:
    return [n for n in names if n in body]


CODE_WIDTH_MIN, CODE_WIDTH_MAX, CODE_WIDTH_DEFAULT = 280, 1280, 430   # WeChat's getwxacodeunlimit widths


def code_width(query: dict | None) -> int:
    """?width= of a mini-program code image (WeChat's 280 to 1280, 430 by default)."""
    raw = (query or {}).get("width", str(CODE_WIDTH_DEFAULT))
    if not raw.isdigit() or not CODE_WIDTH_MIN <= int(raw) <= CODE_WIDTH_MAX:
        raise ValidationFailed(f"'width' must be a whole number from {CODE_WIDTH_MIN} to {CODE_WIDTH_MAX}.",
                               field="width")
    return int(raw)
