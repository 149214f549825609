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
