"""The mini-program server API: code2Session (and, later, access tokens and codes)."""
from __future__ import annotations

import json
from typing import Protocol

from chalicelib.domain.customers import WeChatIdentity
from chalicelib.errors import (
    InvalidLoginCode,
    LoginBlocked,
    LoginCodeUsed,
    Throttled,
    UpstreamUnavailable,
)
from chalicelib.wechat.access_token import StableTokenHolder

# errcode → what it means for the caller (see wechatpay-v3.md, code2Session)
_LOGIN_ERRORS = {
    40029: InvalidLoginCode,
    40163: LoginCodeUsed,
    45011: Throttled,
    40226: LoginBlocked,
}


class MiniProgramApi(Protocol):
    def code2session(self, code: str) -> WeChatIdentity: ...
    def upload_shipping_info(self, *, transaction_id: str, logistics_type: int, shipping_list: list,
                             upload_time: str, payer_openid: str) -> None: ...
    def wxacode(self, scene: str, page: str, width: int) -> bytes: ...


class ShippingUploadFailed(UpstreamUnavailable):
    code = "SHIPPING_UPLOAD_FAILED"
    default_message = "WeChat did not take the shipping information."


# WeChat keeps the first upload of an order; answers to a repeat mean "already there".
ALREADY_UPLOADED_ERRCODES = frozenset({10060003})


class MiniProgramClient(StableTokenHolder):
    """Talks HTTP to api.weixin.qq.com (or the sandbox at the same paths)."""

    _app_label = "the mini-program"

    def __init__(self, base_url: str, appid: str, appsecret: str, timeout_s: float):
        self._base = base_url.rstrip("/")
        self._appid = appid
        self._secret = appsecret
        self._timeout = timeout_s

    def upload_shipping_info(self, *, transaction_id: str, logistics_type: int, shipping_list: list,
                             upload_time: str, payer_openid: str) -> None:
        import requests

        body = {"order_key": {"order_number_type": 2, "transaction_id": transaction_id},
                "logistics_type": logistics_type, "delivery_mode": 1, "shipping_list": shipping_list,
                "upload_time": upload_time, "payer": {"openid": payer_openid}}
        for _ in range(2):
            try:
                response = requests.post(f"{self._base}/wxa/sec/order/upload_shipping_info",
                                         params={"access_token": self._access_token()}, json=body,
                                         timeout=self._timeout)
                data = json.loads(response.content)
            except (requests.RequestException, ValueError) as exc:
                raise ShippingUploadFailed() from exc
            errcode = data.get("errcode") or 0
            if errcode not in (40001, 42001):
                break
            self._token = None  # a token WeChat no longer takes (it expired early): fetch another once
        if errcode and errcode not in ALREADY_UPLOADED_ERRCODES:
            raise ShippingUploadFailed(wechat_errcode=errcode, wechat_errmsg=data.get("errmsg"))

    def wxacode(self, scene: str, page: str, width: int) -> bytes:
        """An unlimited mini-program code (PNG bytes) opening ``page`` with ``scene``.

        WeChat answers image bytes on success and JSON ``{errcode, errmsg}`` on failure
        (HTTP 200 either way): any errcode is UpstreamUnavailable, after one retry with
        a fresh token when WeChat no longer takes ours (40001/42001)."""
        import requests

        body = {"scene": scene, "page": page, "check_path": True, "width": width}
        for _ in range(2):
            try:
                response = requests.post(f"{self._base}/wxa/getwxacodeunlimit",
                                         params={"access_token": self._access_token()}, json=body,
                                         timeout=self._timeout)
            except requests.RequestException as exc:
                raise UpstreamUnavailable("WeChat did not make the mini-program code.") from exc
            content_type = response.headers.get("Content-Type", "")
            if response.status_code == 200 and content_type.startswith("image/"):
                return response.content
            try:
                data = json.loads(response.content)
            except ValueError:
                data = None
            errcode = data.get("errcode") if isinstance(data, dict) else None
            if errcode not in (40001, 42001):
                break
            self._token = None  # a token WeChat no longer takes: fetch another once
        raise UpstreamUnavailable("WeChat did not make the mini-program code.", wechat_errcode=errcode,
                                  wechat_errmsg=data.get("errmsg") if isinstance(data, dict) else None,
                                  http_status=response.status_code)

    def code2session(self, code: str) -> WeChatIdentity:
        import requests  # imported on first login, not on every cold start

        try:
            response = requests.get(
                f"{self._base}/sns/jscode2session",
                params={"appid": self._appid, "secret": self._secret, "js_code": code,
                        "grant_type": "authorization_code"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable() from exc
        # WeChat answers this call with Content-Type text/plain: parse the body regardless.
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise UpstreamUnavailable("WeChat answered the login with something unreadable.") from exc
        if not isinstance(data, dict):
            raise UpstreamUnavailable("WeChat answered the login with something unreadable.")
        errcode = data.get("errcode") or 0
        if errcode:
            error = _LOGIN_ERRORS.get(errcode)
            if error is not None:
                raise error(wechat_errcode=errcode)
            # -1 (busy), bad appid/secret (40013/40125): our side or theirs, not the user's
            raise UpstreamUnavailable(
                "WeChat could not complete the login.", wechat_errcode=errcode)
        openid = data.get("openid")
        if not isinstance(openid, str) or not openid:
            raise UpstreamUnavailable("WeChat's login answer has no openid.")
        unionid = data.get("unionid")
        # session_key is deliberately dropped here: it never leaves this function.
        return WeChatIdentity(openid=openid, unionid=unionid if isinstance(unionid, str) and unionid else None)


def default_client() -> MiniProgramClient:
    from chalicelib.config import settings
    from chalicelib.secrets import MINIPROGRAM_APPSECRET, get_secret

    s = settings()
    return MiniProgramClient(s.wechat_api_base, s.sp_appid, get_secret(MINIPROGRAM_APPSECRET),
                             s.wechat_timeout_s)
