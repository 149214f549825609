"""The sandbox speaks WeChat's mini-program protocols, error codes included."""
import io
import json
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.integration.conftest import http

pytestmark = pytest.mark.integration


@pytest.fixture
def app_credentials(stack):
    return stack.env["SP_APPID"], (Path(stack.data_dir) / "secrets" / "miniprogram_appsecret").read_text().strip()


def code2session(sandbox, appid, secret, code, grant_type="authorization_code"):
    query = urlencode({"appid": appid, "secret": secret, "js_code": code, "grant_type": grant_type})
    return http("GET", f"{sandbox}/sns/jscode2session?{query}")


def test_a_sandbox_code_maps_to_its_openid_and_unionid_as_text_plain(sandbox, app_credentials):
    reply = code2session(sandbox, *app_credentials, "sandbox-zoe_1")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    body = json.loads(reply.body)
    assert (body["openid"], body["unionid"]) == ("o_zoe_1", "u_zoe_1") and len(body["session_key"]) >= 16


@pytest.mark.parametrize("code, errcode", [
    ("whatever", 40029), ("sandbox-", 40029), ("sandbox-" + "x" * 41, 40029), ("sandbox-a b", 40029),
])
def test_codes_outside_the_sandbox_rules_are_invalid(sandbox, app_credentials, code, errcode):
    assert json.loads(code2session(sandbox, *app_credentials, code).body)["errcode"] == errcode


def test_a_once_code_is_refused_the_second_time_with_40163(sandbox, app_credentials):
    first = json.loads(code2session(sandbox, *app_credentials, "sandbox-once-pat").body)
    second = json.loads(code2session(sandbox, *app_credentials, "sandbox-once-pat").body)
    assert first["openid"] == "o_pat" and second["errcode"] == 40163


def test_a_wrong_app_is_refused(sandbox, app_credentials):
    appid, secret = app_credentials
    assert json.loads(code2session(sandbox, "wx_other", secret, "sandbox-a").body)["errcode"] == 40013
    assert json.loads(code2session(sandbox, appid, "wrong", "sandbox-a").body)["errcode"] == 40125
    assert json.loads(code2session(sandbox, appid, secret, "sandbox-a", "x").body)["errcode"] == 40002


def stable_token(sandbox, appid, secret, force=False):
    return http("POST", f"{sandbox}/cgi-bin/stable_token",
                {"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force})


def test_the_stable_token_is_the_same_until_forced(sandbox, app_credentials):
    first = stable_token(sandbox, *app_credentials).json()
    again = stable_token(sandbox, *app_credentials).json()
    forced = stable_token(sandbox, *app_credentials, force=True).json()
    assert first["access_token"] == again["access_token"] != forced["access_token"]
    assert 0 < again["expires_in"] <= first["expires_in"] <= 7200


def test_a_stable_token_with_a_wrong_secret_is_40125(sandbox, app_credentials):
    assert stable_token(sandbox, app_credentials[0], "nope").json()["errcode"] == 40125


def wxacode(sandbox, token, body):
    return http("POST", f"{sandbox}/wxa/getwxacodeunlimit?access_token={token}", body)


def decode_png(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return results[0].text


@pytest.mark.parametrize("scene", ["s=store-cd-chunxi", "a" * 32, "st/1?x=y&z=!#$'()*+,:;@-._~"])
def test_a_mini_program_code_is_a_real_png_that_carries_its_scene(sandbox, app_credentials, scene):
    token = stable_token(sandbox, *app_credentials).json()["access_token"]
    reply = wxacode(sandbox, token, {"scene": scene, "page": "pages/store/index", "width": 430})
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/png"
    assert reply.body[:8] == b"\x89PNG\r\n\x1a\n"
    content = urlsplit(decode_png(reply.body))
    assert parse_qs(content.query)["scene"] == [scene]
    assert parse_qs(content.query)["page"] == ["pages/store/index"]


@pytest.mark.parametrize("body, errcode", [
    ({"scene": "a" * 33}, 40169),
    ({"scene": ""}, 40169),
    ({"page": "pages/index/index"}, 40169),
    ({"scene": "100%"}, 40129),
    ({"scene": "门店"}, 40129),
    ({"scene": "ok", "page": "pages/secret/index"}, 41030),
    ({"scene": "ok", "page": "/pages/index/index"}, 41030),
    ({"scene": "ok", "env_version": "beta"}, 40097),
    (b"not json", 47001),
])
def test_scene_and_page_rules_answer_wechats_error_codes(sandbox, app_credentials, body, errcode):
    token = stable_token(sandbox, *app_credentials).json()["access_token"]
    reply = wxacode(sandbox, token, body)
    assert reply.status == 200 and reply.json()["errcode"] == errcode


def test_an_unpublished_page_is_accepted_without_check_path(sandbox, app_credentials):
    token = stable_token(sandbox, *app_credentials).json()["access_token"]
    reply = wxacode(sandbox, token, {"scene": "ok", "page": "pages/new/index", "check_path": False})
    assert reply.headers["Content-Type"] == "image/png"


def test_a_code_needs_a_valid_access_token(sandbox):
    assert wxacode(sandbox, "forged", {"scene": "ok"}).json()["errcode"] == 40001
    assert http("POST", f"{sandbox}/wxa/getwxacodeunlimit", {"scene": "ok"}).json()["errcode"] == 41001
