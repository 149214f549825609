"""WeChat's stable access token (POST /cgi-bin/stable_token), shared by the
mini-program and official-account clients: each app has its own appid, secret and
token, but the same way of getting one."""
from __future__ import annotations

from chalicelib.errors import UpstreamUnavailable

TOKEN_RENEW_BEFORE_S = 300   # WeChat hands out a new token ~5 minutes before the old one expires


class StableTokenHolder:
    """A mixin: needs ``_base``, ``_appid``, ``_secret``, ``_timeout``; keeps ``_token``
    (token, expires_at) in the process; set ``_token = None`` to fetch a new one."""

    _token: tuple[str, float] | None = None
    _app_label = "the app"      # for error messages: whose token WeChat refused

    def _access_token(self) -> str:
        import time

        import requests

        cached = self._token
        if cached and cached[1] - TOKEN_RENEW_BEFORE_S > time.time():
            return cached[0]
        try:
            response = requests.post(f"{self._base}/cgi-bin/stable_token", timeout=self._timeout, json={
                "grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
                "force_refresh": False})
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamUnavailable(f"WeChat did not hand {self._app_label} an access token.") from exc
        if not isinstance(data, dict) or not data.get("access_token"):
            raise UpstreamUnavailable(f"WeChat refused {self._app_label} an access token.",
                                      wechat_errcode=data.get("errcode") if isinstance(data, dict) else None)
        self._token = (data["access_token"], time.time() + int(data.get("expires_in", 0)))
        return self._token[0]
