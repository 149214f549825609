"""The official account's server API: its own stable access token and user info.

The official account (公众号) has its own appid, AppSecret and access token, apart from
the mini-program's (``chalicelib/wechat/miniprogram.py``, whose token handling this
mirrors). Its openids are its own too; the unionid is what bridges a follower to the
mini-program customer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from chalicelib.errors import UpstreamUnavailable
from chalicelib.wechat.access_token import StableTokenHolder

# WeChat: "invalid openid" (not a follower of this account, or not an openid at all).
UNKNOWN_OPENID_ERRCODES = frozenset({40003})
# The token WeChat no longer takes (expired early, or replaced): fetch another once.
STALE_TOKEN_ERRCODES = frozenset({40001, 42001})
# The OA server URL must answer within 5 s: the token and the user-info call share
# that budget, so each gets at most this long.
MAX_CALL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class OaUser:
    openid: str                 # under the OA appid
    unionid: str | None         # None when the account is not bound to an Open Platform account
    subscribed: bool


class OfficialAccountApi(Protocol):
    def user_info(self, openid: str) -> OaUser | None: ...


class OfficialAccountClient(StableTokenHolder):
    """Talks HTTP to api.weixin.qq.com (or the sandbox at the same paths)."""

    _app_label = "the official account"

    def __init__(self, base_url: str, appid: str, appsecret: str, timeout_s: float):
        self._base = base_url.rstrip("/")
        self._appid = appid
        self._secret = appsecret
        self._timeout = min(timeout_s, MAX_CALL_TIMEOUT_S)
        self._token: tuple[str, float] | None = None

    def user_info(self, openid: str) -> OaUser | None:
        """GET /cgi-bin/user/info: who follows; None when WeChat does not know the openid."""
        import requests

        for _ in range(2):
            try:
                response = requests.get(f"{self._base}/cgi-bin/user/info", timeout=self._timeout, params={
                    "access_token": self._access_token(), "openid": openid, "lang": "zh_CN"})
                data = json.loads(response.content)
            except (requests.RequestException, ValueError) as exc:
                raise UpstreamUnavailable("WeChat did not say who follows the official account.") from exc
            if not isinstance(data, dict):
                raise UpstreamUnavailable("WeChat answered the user info with something unreadable.")
            errcode = data.get("errcode") or 0
            if errcode not in STALE_TOKEN_ERRCODES:
                break
            self._token = None
        if errcode in UNKNOWN_OPENID_ERRCODES:
            return None
        if errcode:
            raise UpstreamUnavailable("WeChat could not say who follows the official account.",
                                      wechat_errcode=errcode)
        if data.get("openid") != openid:
            raise UpstreamUnavailable("WeChat's user info is about someone else.")
        unionid = data.get("unionid")
        return OaUser(openid=openid, unionid=unionid if isinstance(unionid, str) and unionid else None,
                      subscribed=data.get("subscribe") == 1)


def default_client() -> OfficialAccountClient:
    from chalicelib.config import ConfigurationError, settings
    from chalicelib.secrets import OA_APPSECRET, get_secret

    s = settings()
    if not s.oa_appid:
        raise ConfigurationError("OA_APPID is not set: this stage has no official account")
    return OfficialAccountClient(s.wechat_api_base, s.oa_appid, get_secret(OA_APPSECRET), s.wechat_timeout_s)
