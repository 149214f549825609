"""Field checks shared by the WeChat Pay APIs: each raises PARAM_ERROR the way WeChat
names the field at fault."""
from __future__ import annotations

import re

from infra.local.sandbox.v3 import param_error

_URL = re.compile(r"^https?://[^/\s?#]+[^\s?#]*$")


def text(body: dict, name: str, max_len: int, required: bool = True, field: str | None = None) -> str | None:
    """A string of 1..max_len characters (None when optional and absent)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise param_error(f"{field or name} 必须是1-{max_len}个字符的字符串", field or name)
    return value


def notify_url(value, field: str = "notify_url") -> str:
    """A full http(s) URL without query string, at most 255 characters (WeChat's rule)."""
    if not isinstance(value, str) or len(value) > 255 or not _URL.match(value):
        raise param_error(f"{field} 必须是不带参数的完整http(s) URL", field)
    return value


def fen(value, field: str) -> int:
    """An amount: a positive integer number of fen."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise param_error(f"{field} 必须是大于0的整数(分)", field)
    return value
