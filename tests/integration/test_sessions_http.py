"""Signing in over real HTTP: the API on Chalice's local server, DynamoDB Local, the sandbox."""
import pytest

from tests.integration.conftest import assert_contract_error, http, login

pytestmark = pytest.mark.integration


def test_alice_signs_in_and_reads_her_profile(api):
    session = login(api, "sandbox-alice")
    assert session.status == 200
    body = session.json()
    assert body["expires_in"] == 7 * 86400 and body["customer_id"].startswith("cu_")
    me = http("GET", f"{api}/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status == 200 and me.json()["customer_id"] == body["customer_id"]
    assert b"session_key" not in session.body + me.body


def test_the_same_code_twice_is_the_same_customer(api):
    first, second = login(api, "sandbox-erin").json(), login(api, "sandbox-erin").json()
    assert first["customer_id"] == second["customer_id"]
    assert (first["new_customer"], second["new_customer"]) == (True, False)


def test_a_tampered_token_gets_401(api):
    token = login(api, "sandbox-alice").json()["token"]
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload[:-3]}{'abc' if payload[-3:] != 'abc' else 'xyz'}.{signature}"
    assert_contract_error(http("GET", f"{api}/v1/me", headers={"Authorization": f"Bearer {forged}"}),
                          401, "INVALID_TOKEN")


def test_a_one_time_code_works_once_then_gets_a_4xx(api):
    assert login(api, "sandbox-once-bob").status == 200
    assert_contract_error(login(api, "sandbox-once-bob"), 401, "LOGIN_CODE_ALREADY_USED")


def test_an_unknown_code_is_refused(api):
    assert_contract_error(login(api, "not-a-sandbox-code"), 401, "INVALID_LOGIN_CODE")


@pytest.mark.parametrize("method, path, body, headers, status, code", [
    ("POST", "/v1/sessions", b'{"code": "sandbox-al', {"Content-Type": "application/json"}, 400, "MALFORMED_JSON"),
    ("POST", "/v1/sessions", b"{}", {"Content-Type": "application/json"}, 400, "VALIDATION_FAILED"),
    ("POST", "/v1/sessions", b"code=sandbox-alice", {"Content-Type": "application/x-www-form-urlencoded"},
     415, "UNSUPPORTED_MEDIA_TYPE"),
    ("PUT", "/v1/sessions", b"{}", {"Content-Type": "application/json"}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/v1/sessions", None, {}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/v1/no-such-thing", None, {}, 404, "NOT_FOUND"),
    ("GET", "/v1/no-such-thing", None, {"Authorization": "Bearer x"}, 404, "NOT_FOUND"),
    ("POST", "/", b"{}", {"Content-Type": "application/json"}, 404, "NOT_FOUND"),
    ("GET", "/v1/me", None, {}, 401, "UNAUTHENTICATED"),
])
def test_bad_requests_get_the_contract_error_body(api, method, path, body, headers, status, code):
    assert_contract_error(http(method, api + path, body, headers), status, code)


def test_an_unknown_http_method_gets_a_json_error(api):
    reply = http("BREW", f"{api}/v1/sessions")
    assert 400 <= reply.status < 600 and reply.json()["error"]["code"]
