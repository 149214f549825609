"""The official account (公众号) as WeChat serves it: user info, and event pushes to
the API's OA server URL.

Followers (the contract's sandbox identities) are ``oa_<x>`` with unionid ``u_<x>``,
the same person as the mini-program login ``sandbox-<x>`` (openid ``o_<x>``).

    GET /cgi-bin/user/info?access_token=&openid=&lang=   the OA's own access token
        (stable_token with the OA appid and its secret); errcode 40003 for an openid
        that is not ``oa_<x>``, 48001 for another app's token
    POST /sandbox/oa/push {"openid", "event": "subscribe" | "SCAN", "scene"?,
        "create_time"?, "bad_signature"?}   builds the XML exactly as WeChat pushes it
        (``qrscene_`` before the scene of a subscribe; a subscribe without a scene is a
        plain follow), signs the query string with the OA server token (or a wrong one),
        POSTs it to ``<API>/v1/callbacks/wechat-oa`` and answers the API's
        ``{"status", "body"}``. ``create_time`` (default: the business clock) is what
        WeChat's retries share: push the same one again to play a retry.

The signature rule is written out here again, not imported from the API's code, so a
mistake there is not mirrored here.
"""
from __future__ import annotations

import hashlib
import http.client
import re
import secrets
import time
from urllib.parse import urlencode, urlsplit

from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.miniprogram import json_object, wx_error

OA_USER = re.compile(r"^oa_(?P<x>[A-Za-z0-9_-]{1,40})$")
OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCENE = re.compile(r"^[\x21-\x7e]{1,64}$")
# The official account's original id (ToUserName of every push).
OA_ORIGINAL_ID = "gh_5f0c0ffee5a1"
CALLBACK_PATH = "/v1/callbacks/wechat-oa"
# WeChat drops the connection after 5 s (and would retry; here the caller decides).
PUSH_TIMEOUT_S = 5.0


def oa_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def event_xml(openid: str, event: str, scene: str | None, create_time: int, ticket: str | None = None,
              to_user: str = OA_ORIGINAL_ID) -> bytes:
    """The push as WeChat writes it (wechatpay-v3.md §8, "Scan events")."""
    key = "" if scene is None else (f"qrscene_{scene}" if event == "subscribe" else scene)
    parts = [f"<ToUserName>{_cdata(to_user)}</ToUserName>", f"<FromUserName>{_cdata(openid)}</FromUserName>",
             f"<CreateTime>{int(create_time)}</CreateTime>", f"<MsgType>{_cdata('event')}</MsgType>",
             f"<Event>{_cdata(event)}</Event>", f"<EventKey>{_cdata(key)}</EventKey>"]
    if scene is not None:
        parts.append(f"<Ticket>{_cdata(ticket or 'gQ' + secrets.token_urlsafe(30))}</Ticket>")
    return ("<xml>" + "".join(parts) + "</xml>").encode("utf-8")


def signed_query(token: str, openid: str, wall_now: float) -> str:
    """WeChat's query string: signature over [token, timestamp, nonce] (wall clock), plus the openid."""
    timestamp, nonce = str(int(wall_now)), str(secrets.randbelow(10 ** 10))
    return urlencode({"signature": oa_signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                      "openid": openid})


def http_post(url: str, body: bytes, headers: dict, timeout_s: float = PUSH_TIMEOUT_S) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                           headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class OfficialAccountApis:
    def __init__(self, state, clock, check_access_token, oa_appid: str, server_token: str, api_url: str,
                 wall=time.time, post=http_post):
        self._state = state
        self._clock = clock
        self._check_access_token = check_access_token
        self._appid = oa_appid
        self._server_token = server_token
        self._api_url = api_url.rstrip("/")
        self._wall = wall
        self._post = post

    def routes(self, router) -> None:
        router.add("GET", "/cgi-bin/user/info", self.user_info)
        router.add("POST", "/sandbox/oa/push", self.push)

    def user_info(self, request: Request) -> Reply:
        token = request.query.get("access_token")
        refused = self._check_access_token(token)
        if refused:
            return refused
        if self._state.access_token(token)[0] != self._appid:
            return wx_error(48001, "api unauthorized: not the official account's access_token")
        openid = request.query.get("openid")
        if not openid:
            return wx_error(41009, "missing openid")
        lang = request.query.get("lang", "zh_CN")
        if lang not in ("zh_CN", "zh_TW", "en"):
            return wx_error(40005, "invalid lang")
        match = OA_USER.match(openid)
        if not match:
            return wx_error(40003, "invalid openid")
        return Reply.json({"subscribe": 1, "openid": openid, "language": lang, "subscribe_time": 1795000000,
                           "unionid": f"u_{match.group('x')}", "remark": "", "groupid": 0, "tagid_list": [],
                           "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": ""})

    def push(self, request: Request) -> Reply:
        body = json_object(request)
        if body is None:
            return Reply.error(400, "MALFORMED_JSON", "send a JSON object")
        openid, event, scene = body.get("openid"), body.get("event"), body.get("scene")
        create_time, bad_signature = body.get("create_time"), body.get("bad_signature", False)
        if not isinstance(openid, str) or not OPENID.match(openid):
            return Reply.error(400, "VALIDATION_FAILED", "'openid' must be an openid such as oa_alice")
        if event not in ("subscribe", "SCAN"):
            return Reply.error(400, "VALIDATION_FAILED", "'event' must be subscribe or SCAN")
        if scene is not None and (not isinstance(scene, str) or not SCENE.match(scene)):
            return Reply.error(400, "VALIDATION_FAILED", "'scene' must be 1 to 64 visible characters")
        if event == "SCAN" and scene is None:
            return Reply.error(400, "VALIDATION_FAILED", "a SCAN event needs its 'scene'")
        if create_time is None:
            create_time = int(self._clock.timestamp())
        if isinstance(create_time, bool) or not isinstance(create_time, int) or create_time <= 0:
            return Reply.error(400, "VALIDATION_FAILED", "'create_time' must be Unix seconds")
        if not isinstance(bad_signature, bool):
            return Reply.error(400, "VALIDATION_FAILED", "'bad_signature' must be true or false")
        token = "not-the-server-token" if bad_signature else self._server_token
        url = f"{self._api_url}{CALLBACK_PATH}?{signed_query(token, openid, self._wall())}"
        xml = event_xml(openid, event, scene, create_time)
        try:
            status, answer = self._post(url, xml, {"Content-Type": "text/xml"})
        except (OSError, http.client.HTTPException) as exc:
            return Reply.error(502, "API_UNREACHABLE", f"the API did not answer: {type(exc).__name__}: {exc}")
        return Reply.json({"status": status, "body": answer.decode("utf-8", "replace"), "create_time": create_time})
