"""The HTTP edge in-process (chalice.test.Client): shapes, status codes, error bodies."""
import json
import logging

import pytest
from chalice.test import Client

from chalicelib.services import wiring
from tests.helpers import FakeMiniProgram
from tests.openapi import ValidatingClient


@pytest.fixture
def client(dynamodb, monkeypatch):
    import app as app_module

    fake = FakeMiniProgram()
    monkeypatch.setattr(wiring, "miniprogram", lambda: fake)
    with Client(app_module.app, stage_name="test") as client:
        yield ValidatingClient(client)


def post(client, path, body, content_type="application/json", headers=None):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, body=raw, headers={"Content-Type": content_type, **(headers or {})})


def assert_contract_error(response, status, code):
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert "Traceback" not in response.body.decode()


def test_login_then_me(client):
    response = post(client, "/v1/sessions", {"code": "sandbox-alice"})
    assert response.status_code == 200
    session = json.loads(response.body)
    assert set(session) == {"token", "expires_in", "customer_id", "new_customer"}
    assert session["new_customer"] is True and session["expires_in"] == 604800
    me = client.http.get("/v1/me", headers={"Authorization": f"Bearer {session['token']}"})
    assert me.status_code == 200
    profile = json.loads(me.body)
    assert profile["customer_id"] == session["customer_id"]
    assert profile["owning_store"] is None and profile["points_balance"] == 0
    assert profile["first_seen_at"].endswith("+08:00")
    assert "session_key" not in me.body.decode() and "o_alice" not in me.body.decode()


@pytest.mark.parametrize("body, status, code", [
    (b'{"code": ', 400, "MALFORMED_JSON"),
    (b"\xff\xfe", 400, "MALFORMED_JSON"),
    (b"", 400, "MALFORMED_JSON"),
    (b'["sandbox-alice"]', 400, "MALFORMED_JSON"),
    ({"code": 5}, 400, "VALIDATION_FAILED"),
    ({"code": "x" * 10000}, 400, "VALIDATION_FAILED"),
    ({}, 400, "VALIDATION_FAILED"),
    ({"code": "sandbox-a", "admin": True}, 400, "VALIDATION_FAILED"),
    ({"code": "nope"}, 401, "INVALID_LOGIN_CODE"),
])
def test_bad_logins_get_the_contract_error_body(client, body, status, code):
    assert_contract_error(post(client, "/v1/sessions", body), status, code)


def test_a_wrong_method_is_405_with_the_contract_body(client):
    response = client.http.delete("/v1/sessions")
    assert_contract_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "POST"


def test_a_wrong_content_type_is_415_with_the_contract_body(client):
    assert_contract_error(post(client, "/v1/sessions", "code=x", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("header, code", [(None, "UNAUTHENTICATED"), ("Bearer abc", "INVALID_TOKEN"),
                                          ("Basic Zm9vOmJhcg==", "UNAUTHENTICATED")])
def test_me_without_a_good_token_is_401(client, header, code):
    headers = {"Authorization": header} if header else {}
    assert_contract_error(client.http.get("/v1/me", headers=headers), 401, code)


def test_a_bug_is_a_500_with_the_contract_body_and_a_logged_trace(client, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("chalicelib.services.sessions.start_session", broken)
    response = post(client, "/v1/sessions", {"code": "sandbox-alice"})
    assert_contract_error(response, 500, "INTERNAL_ERROR")
    assert "boom" not in response.body.decode()
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(entry.get("message") == "unhandled exception" and "ZeroDivisionError" in entry["exception"]
               for entry in logged)


def test_each_request_is_logged_as_json_without_secrets(client, capsys):
    post(client, "/v1/sessions", {"code": "sandbox-alice"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry["logger"] == "storelink.access"]
    assert access and access[-1]["route"] == "/v1/sessions" and access[-1]["status"] == 200
    assert isinstance(access[-1]["latency_ms"], float) and access[-1]["request_id"] != "-"
    text = json.dumps(lines)
    assert "eyJ" not in text and "session_key" not in text


def test_the_json_formatter_masks_secret_looking_fields():
    from chalicelib.log import JsonFormatter, mask_phone

    record = logging.LogRecord("storelink", logging.INFO, __file__, 1, "x", None, None)
    record.fields = {"session_key": "abc", "openid": "o_1", "apiv3_key": "k"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["session_key"] == "***" and entry["apiv3_key"] == "***" and entry["openid"] == "o_1"
    assert mask_phone("13812345678") == "138****5678"
