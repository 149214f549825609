"""Official-account events over real HTTP: the sandbox signs and pushes WeChat's XML to
the API's OA server URL (``POST /sandbox/oa/push``); a follow or scan through a store's
code binds the customer a mini-program login then finds, once, and a push that does
not verify changes nothing.

Every test uses its own followers and scenes: the stack is shared by the session."""
import hashlib
import json
import time
import uuid
from pathlib import Path

import pytest

from infra.local.tokens import mint_backoffice_token
from tests.integration.conftest import assert_contract_error, http, login
from tests.openapi import check_response

pytestmark = pytest.mark.integration


def someone() -> str:
    return f"oa{uuid.uuid4().hex[:10]}"


def call(stack, method, path, body=None, headers=None):
    reply = http(method, stack.urls["api"] + path, body, headers)
    check_response(method, path, reply.status, reply.body)
    return reply


def store_scene(stack, store_id: str) -> str:
    brand = {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), 'brand', 'brand-lumen')}"}
    made = call(stack, "POST", "/v1/admin/scenes", {"kind": "store", "store_id": store_id}, brand)
    assert made.status == 201, made.body
    return made.json()["scene"]


def push(stack, **body) -> dict:
    reply = http("POST", f"{stack.urls['sandbox']}/sandbox/oa/push", body)
    assert reply.status == 200, reply.body
    return reply.json()


def dynamo(stack):
    import boto3

    return boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def table(stack, short_name: str) -> str:
    return f"{stack.env['STORELINK_TABLE_PREFIX']}{short_name}"


def customer_of(stack, key: str) -> str | None:
    item = dynamo(stack).get_item(TableName=table(stack, "customer_identities"), Key={"identity": {"S": key}},
                                  ConsistentRead=True).get("Item")
    return item["customer_id"]["S"] if item else None


def scans_of(stack, customer_id: str) -> list[dict]:
    rows = dynamo(stack).query(TableName=table(stack, "scans"), IndexName="by_customer",
                               KeyConditionExpression="customer_id = :c",
                               ExpressionAttributeValues={":c": {"S": customer_id}})["Items"]
    return sorted(({"scene": r["scene"]["S"], "outcome": r["outcome"]["S"], "at": float(r["at"]["N"])}
                   for r in rows), key=lambda r: r["at"])


def channels_of(stack, customer_id: str) -> list[str]:
    # A Scan, in a test only: the funnel events this customer's scans wrote.
    rows = dynamo(stack).scan(TableName=table(stack, "outbox"), ConsistentRead=True)["Items"]
    payloads = [json.loads(r["payload"]["S"]) for r in rows if r["kind"]["S"] == "SCAN_RECORDED"]
    return sorted(p["channel"] for p in payloads if p["customer_id"] == customer_id)


def oa_event(stack, key: str) -> dict | None:
    return dynamo(stack).get_item(TableName=table(stack, "oa_events"), Key={"event_key": {"S": key}},
                                  ConsistentRead=True).get("Item")


def test_a_follow_through_a_store_code_binds_the_customer_a_mini_program_login_finds(stack):
    scene, x = store_scene(stack, "store-cd-chunxi"), someone()
    pushed = push(stack, openid=f"oa_{x}", event="subscribe", scene=scene)
    assert (pushed["status"], pushed["body"]) == (200, "success")

    customer_id = customer_of(stack, f"oa_openid#oa_{x}")
    assert customer_id and customer_of(stack, f"unionid#u_{x}") == customer_id
    assert [s["outcome"] for s in scans_of(stack, customer_id)] == ["FIRST_SCAN"]
    assert channels_of(stack, customer_id) == ["OA_SUBSCRIBE"]
    applied = oa_event(stack, f"oa_{x}#{pushed['create_time']}")
    assert (applied["state"]["S"], applied["outcome"]["S"]) == ("APPLIED", "FIRST_SCAN")

    session = login(stack.urls["api"], f"sandbox-{x}").json()
    assert (session["customer_id"], session["new_customer"]) == (customer_id, False)
    me = call(stack, "GET", "/v1/me", headers={"Authorization": f"Bearer {session['token']}"}).json()
    assert me["owning_store"]["store_id"] == "store-cd-chunxi" and me["points_balance"] == 10
    assert customer_of(stack, f"openid#o_{x}") == customer_id


def test_the_same_push_twice_is_applied_once_and_a_scan_while_following_works(stack):
    chunxi, optics, x = store_scene(stack, "store-cd-chunxi"), store_scene(stack, "store-wh-optics"), someone()
    session = login(stack.urls["api"], f"sandbox-{x}").json()     # a mini-program customer first
    create_time = int(time.time()) - 7
    first = push(stack, openid=f"oa_{x}", event="subscribe", scene=optics, create_time=create_time)
    retry = push(stack, openid=f"oa_{x}", event="subscribe", scene=optics, create_time=create_time)
    assert (first["status"], first["body"]) == (retry["status"], retry["body"]) == (200, "success")
    assert customer_of(stack, f"oa_openid#oa_{x}") == session["customer_id"]
    assert [s["outcome"] for s in scans_of(stack, session["customer_id"])] == ["FIRST_SCAN"]

    scanned = push(stack, openid=f"oa_{x}", event="SCAN", scene=chunxi)     # already following
    assert (scanned["status"], scanned["body"]) == (200, "success")
    assert [s["outcome"] for s in scans_of(stack, session["customer_id"])] == ["FIRST_SCAN", "VISIT_RECORDED"]
    assert channels_of(stack, session["customer_id"]) == ["OA_SCAN", "OA_SUBSCRIBE"]
    me = call(stack, "GET", "/v1/me", headers={"Authorization": f"Bearer {session['token']}"}).json()
    assert me["owning_store"]["store_id"] == "store-wh-optics"


def test_a_push_with_a_bad_signature_is_refused_and_records_nothing(stack):
    scene, x = store_scene(stack, "store-cd-chunxi"), someone()
    pushed = push(stack, openid=f"oa_{x}", event="subscribe", scene=scene, bad_signature=True)
    assert pushed["status"] == 401
    assert json.loads(pushed["body"])["error"]["code"] == "INVALID_SIGNATURE"
    assert customer_of(stack, f"oa_openid#oa_{x}") is None and customer_of(stack, f"unionid#u_{x}") is None
    assert oa_event(stack, f"oa_{x}#{pushed['create_time']}") is None


def test_plain_follows_and_unknown_scenes_are_acknowledged(stack):
    x = someone()
    plain = push(stack, openid=f"oa_{x}", event="subscribe")
    unknown = push(stack, openid=f"oa_{x}", event="SCAN", scene="no.such.scene")
    assert [(p["status"], p["body"]) for p in (plain, unknown)] == [(200, "success"), (200, "success")]
    customer_id = customer_of(stack, f"oa_openid#oa_{x}")
    assert [(s["scene"], s["outcome"]) for s in scans_of(stack, customer_id)] == [("no.such.scene", "SCENE_NOT_FOUND")]


def test_the_url_verification_echoes_echostr_over_real_http(stack):
    token = (Path(stack.data_dir) / "secrets" / "oa_server_token").read_text().strip()
    timestamp, nonce = str(int(time.time())), "20261123"
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    path = f"/v1/callbacks/wechat-oa?signature={signature}&timestamp={timestamp}&nonce={nonce}"
    reply = call(stack, "GET", f"{path}&echostr=7130000000000000001")
    assert (reply.status, reply.body) == (200, b"7130000000000000001")
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert_contract_error(call(stack, "GET", path.replace(signature, "0" * 40) + "&echostr=1"),
                          401, "INVALID_SIGNATURE")
    assert_contract_error(call(stack, "POST", path, b"<xml><a></xml>", {"Content-Type": "text/xml"}),
                          400, "MALFORMED_XML")


def test_the_sandboxs_user_info_wants_the_official_accounts_own_token(stack):
    sandbox, x = stack.urls["sandbox"], someone()
    secrets = Path(stack.data_dir) / "secrets"

    def token(appid, secret_file):
        reply = http("POST", f"{sandbox}/cgi-bin/stable_token", {
            "grant_type": "client_credential", "appid": appid, "secret": (secrets / secret_file).read_text().strip()})
        return reply.json()["access_token"]

    def user_info(access_token, openid):
        return http("GET", f"{sandbox}/cgi-bin/user/info?access_token={access_token}&openid={openid}&lang=zh_CN").json()

    oa_token = token(stack.env["OA_APPID"], "oa_appsecret")
    info = user_info(oa_token, f"oa_{x}")
    assert (info["subscribe"], info["openid"], info["unionid"]) == (1, f"oa_{x}", f"u_{x}")
    assert user_info(oa_token, f"o_{x}")["errcode"] == 40003
    assert user_info("", f"oa_{x}")["errcode"] == 41001
    assert user_info(token(stack.env["SP_APPID"], "miniprogram_appsecret"), f"oa_{x}")["errcode"] == 48001
