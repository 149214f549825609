"""What a wx.login code must look like before we spend a call to WeChat on it."""
from __future__ import annotations

from chalicelib.errors import ValidationFailed

MAX_LOGIN_CODE_LENGTH = 128


def check_login_code(code: object) -> str:
    if not isinstance(code, str):
        raise ValidationFailed("'code' must be the string wx.login returned.", field="code")
    if not code or len(code) > MAX_LOGIN_CODE_LENGTH:
        raise ValidationFailed(
            f"'code' must be 1 to {MAX_LOGIN_CODE_LENGTH} characters.", field="code")
    if not code.isascii() or not code.isprintable() or " " in code:
        raise ValidationFailed("'code' has characters a login code never has.", field="code")
    return code
