"""Mini-program server APIs as WeChat serves them: code2Session, the stable access
token and unlimited mini-program codes, with WeChat's error codes.

Login codes (the contract's sandbox identities): ``sandbox-<x>`` works any number
of times, ``sandbox-once-<x>`` once (then 40163, like a real wx.login code), both
mapping to openid ``o_<x>`` and unionid ``u_<x>``; anything else is 40029.
"""
from __future__ import annotations

import io
import re
import secrets
from urllib.parse import quote

from infra.local.sandbox.http import Reply, Request

LOGIN_CODE = re.compile(r"^sandbox-(?P<once>once-)?(?P<x>[A-Za-z0-9_-]{1,40})$")
ACCESS_TOKEN_TTL_S = 7200
# A stable token is handed out again until this close to its expiry.
ACCESS_TOKEN_RENEW_BEFORE_S = 300
SCENE_MAX_CHARS = 32
SCENE_CHARS = re.compile(r"^[A-Za-z0-9!#$&'()*+,/:;=?@\-._~]+$")
# The pages of the released mall (check_path=true accepts only these).
RELEASED_PAGES = ("pages/index/index", "pages/store/index", "pages/product/index",
                  "pages/scan/index", "pages/promoter/index")
CODE_CONTENT_BASE = "https://sandbox.storelink.invalid/wxacode"


def wx_error(errcode: int, errmsg: str, content_type: str = "application/json; charset=utf-8") -> Reply:
    # WeChat answers API errors with HTTP 200 and an errcode.
    return Reply.json({"errcode": errcode, "errmsg": errmsg}, 200, content_type)


def json_object(request: Request) -> dict | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class MiniProgramApis:
    def __init__(self, state, clock, apps: dict[str, str]):
        self._state = state
        self._clock = clock
        self._apps = apps  # appid -> appsecret

    def routes(self, router) -> None:
        router.add("GET", "/sns/jscode2session", self.jscode2session)
        router.add("POST", "/cgi-bin/stable_token", self.stable_token)
        router.add("POST", "/wxa/getwxacodeunlimit", self.getwxacodeunlimit)

    def _check_app(self, appid: str | None, secret: str | None, plain: bool = False) -> Reply | None:
        ctype = "text/plain" if plain else "application/json; charset=utf-8"
        if not appid:
            return wx_error(41002, "appid missing", ctype)
        if appid not in self._apps:
            return wx_error(40013, "invalid appid", ctype)
        if not secret:
            return wx_error(41004, "appsecret missing", ctype)
        if not secrets.compare_digest(secret, self._apps[appid]):
            return wx_error(40125, "invalid appsecret", ctype)
        return None

    def jscode2session(self, request: Request) -> Reply:
        q = request.query
        refused = self._check_app(q.get("appid"), q.get("secret"), plain=True)
        if refused:
            return refused
        if q.get("grant_type") != "authorization_code":
            return wx_error(40002, "invalid grant_type", "text/plain")
        code = q.get("js_code")
        if not code:
            return wx_error(41008, "missing code", "text/plain")
        match = LOGIN_CODE.match(code)
        if not match:
            return wx_error(40029, "invalid code", "text/plain")
        if match.group("once") and not self._state.use_login_code_once(code, self._clock.timestamp()):
            return wx_error(40163, "code been used", "text/plain")
        x = match.group("x")
        # Real WeChat sends this JSON as text/plain: clients must not trust the header.
        return Reply.json({"session_key": secrets.token_urlsafe(18), "openid": f"o_{x}",
                           "unionid": f"u_{x}"}, 200, "text/plain")

    def stable_token(self, request: Request) -> Reply:
        body = json_object(request)
        if body is None:
            return wx_error(47001, "data format error")
        if body.get("grant_type") != "client_credential":
            return wx_error(40002, "invalid grant_type")
        refused = self._check_app(body.get("appid"), body.get("secret"))
        if refused:
            return refused
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return wx_error(40097, "invalid args: force_refresh must be a boolean")
        now = self._clock.timestamp()
        current = self._state.current_access_token(body["appid"], now)
        if current and not force and current[1] - now > ACCESS_TOKEN_RENEW_BEFORE_S:
            token, expires_at = current
        else:
            token, expires_at = secrets.token_urlsafe(120), now + ACCESS_TOKEN_TTL_S
            self._state.add_access_token(body["appid"], token, now, expires_at)
        return Reply.json({"access_token": token, "expires_in": int(expires_at - now)})

    def check_access_token(self, token: str | None) -> Reply | None:
        """None when ``token`` is a current access token, else WeChat's refusal (every API
        that takes ``?access_token=`` checks it this way: getwxacodeunlimit, shipping.py)."""
        if not token:
            return wx_error(41001, "access_token missing")
        found = self._state.access_token(token)
        if found is None:
            return wx_error(40001, "invalid credential, access_token is invalid or not latest")
        if found[1] <= self._clock.timestamp():
            return wx_error(42001, "access_token expired")
        return None

    def getwxacodeunlimit(self, request: Request) -> Reply:
        refused = self.check_access_token(request.query.get("access_token"))
        if refused:
            return refused
        body = json_object(request)
        if body is None:
            return wx_error(47001, "data format error")
        scene = body.get("scene")
        if not isinstance(scene, str) or not 0 < len(scene) <= SCENE_MAX_CHARS:
            return wx_error(40169, "invalid length for scene, or the data is not json string")
        if not SCENE_CHARS.match(scene):
            return wx_error(40129, "invalid scene")
        page = body.get("page", "")
        check_path = body.get("check_path", True)
        env_version = body.get("env_version", "release")
        width = body.get("width", 430)
        if not isinstance(page, str) or page.startswith("/") or "?" in page:
            return wx_error(41030, "invalid page rid")
        if check_path is True and page and page not in RELEASED_PAGES:
            return wx_error(41030, "invalid page rid")
        if env_version not in ("release", "trial", "develop"):
            return wx_error(40097, "invalid args: env_version")
        if isinstance(width, bool) or not isinstance(width, int):
            return wx_error(40097, "invalid args: width")
        width = min(max(width, 280), 1280)
        png = render_code(f"{CODE_CONTENT_BASE}?page={quote(page or RELEASED_PAGES[0], safe='/')}"
                          f"&scene={quote(scene, safe='')}&env_version={env_version}", width)
        return Reply(200, png, {"Content-Type": "image/png"})


def render_code(content: str, width: int) -> bytes:
    """A QR code as PNG, about ``width`` pixels wide (WeChat draws a round code; a
    QR code carries the same content and any phone or library can read it)."""
    import segno

    qr = segno.make(content, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=max(1, width // modules), border=4)
    return buffer.getvalue()
