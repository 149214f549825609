"""M6 over real HTTP: scans bind customers to stores, a purchase moves them, points are
once per scene per Beijing day, promoters bind friends under them, malformed scans are
4xx, and a scene's welcome and store card follow the store.

Every test uses its own customers (fresh login codes) and its own scenes: the stack is
shared by the whole session, and other tests move the business clock too."""
import time
import uuid
from pathlib import Path

import pytest

from infra.local.tokens import mint_backoffice_token
from tests.integration.conftest import assert_contract_error, http, login
from tests.openapi import check_response

pytestmark = pytest.mark.integration

DELIVERY = {"type": "warehouse", "address": {"recipient": "Mei", "phone": "13600000000", "city": "Chengdu",
                                             "detail": "8 Taikoo Li"}}
BEIJING_OFFSET_S = 8 * 3600
DAY_S = 86400


# --- helpers -----------------------------------------------------------------

def call(stack, method, path, body=None, headers=None):
    """One request to the API, its answer held against docs/openapi.yaml."""
    reply = http(method, stack.urls["api"] + path, body, headers)
    check_response(method, path, reply.status, reply.body)
    return reply


def brand(stack) -> dict:
    """A fresh brand token (back-office tokens live 12 business hours; the clock moves)."""
    return {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), 'brand', 'brand-lumen')}"}


def customer(stack, name: str) -> tuple[str, dict]:
    """A new customer: (customer_id, auth headers)."""
    reply = login(stack.urls["api"], f"sandbox-m6{name}-{uuid.uuid4().hex[:10]}")
    assert reply.status == 200, reply.body
    assert reply.json()["new_customer"] is True
    return reply.json()["customer_id"], {"Authorization": f"Bearer {reply.json()['token']}"}


def store_scene(stack, store_id: str, welcome: dict | None = None) -> str:
    body = {"kind": "store", "store_id": store_id, **({"welcome": welcome} if welcome is not None else {})}
    made = call(stack, "POST", "/v1/admin/scenes", body, brand(stack))
    assert made.status == 201, made.body
    assert made.json()["store_id"] == store_id
    return made.json()["scene"]


def scan(stack, token: dict, scene: str, **extra) -> dict:
    reply = call(stack, "POST", "/v1/scans", {"scene": scene, **extra}, token)
    assert reply.status == 201, reply.body
    return reply.json()


def me(stack, token: dict) -> dict:
    reply = call(stack, "GET", "/v1/me", headers=token)
    assert reply.status == 200, reply.body
    return reply.json()


def become_promoter(stack, token: dict, store_id: str) -> str:
    reply = call(stack, "POST", "/v1/promoters", None, token)
    assert reply.status == 201, reply.body
    promoter = reply.json()
    assert promoter["status"] == "APPROVED" and promoter["store_id"] == store_id
    assert isinstance(promoter["scene"], str) and 1 <= len(promoter["scene"]) <= 32
    return promoter["scene"]


def business_now(stack) -> int:
    reply = http("GET", f"{stack.urls['sandbox']}/sandbox/clock")
    assert reply.status == 200, reply.body
    return reply.json()["timestamp"]


def seconds_to_next_beijing_midnight(timestamp: int) -> int:
    return DAY_S - (timestamp + BEIJING_OFFSET_S) % DAY_S


def move(stack, seconds: int) -> None:
    reply = http("POST", f"{stack.urls['sandbox']}/sandbox/clock", {"advance_s": seconds})
    assert reply.status == 200 and "due_work_errors" not in reply.json(), reply.body


# --- 1. first scan binds, a visit does not, the last purchase does -------------------

def test_first_scan_binds_a_visit_does_not_and_the_last_purchase_moves_the_customer(stack):
    store_a, store_b = "store-cd-tianfu", "store-cd-chunxi"
    scene_a, scene_b = store_scene(stack, store_a), store_scene(stack, store_b)
    customer_id, token = customer(stack, "buyer")

    first = scan(stack, token, scene_a)
    assert (first["binding"], first["bound_store_id"]) == ("FIRST_SCAN", store_a)
    assert first["scene"]["kind"] == "store" and first["store"]["store_id"] == store_a
    assert first["promoter"] is None
    visit = scan(stack, token, scene_b)
    assert (visit["binding"], visit["bound_store_id"]) == ("VISIT_RECORDED", store_a)
    assert visit["store"]["store_id"] == store_b
    assert me(stack, token)["owning_store"]["store_id"] == store_a

    placed = call(stack, "POST", "/v1/orders", {"store_id": store_b, "fulfillment": DELIVERY,
                                                "lines": [{"sku": "LM-MS-WL", "quantity": 1}]},
                  {**token, "Idempotency-Key": f"m6-buy-{uuid.uuid4().hex[:8]}"})
    assert placed.status == 201, placed.body
    order_id = placed.json()["order_id"]
    paid = http("POST", f"{stack.urls['sandbox']}/sandbox/pay", {"out_trade_no": order_id, "notify": "once"})
    assert paid.status == 200, paid.body

    # The callback applies the payment; the scheduler feeds ATTRIBUTE_PURCHASE from the outbox stream.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and me(stack, token)["owning_store"]["store_id"] != store_b:
        time.sleep(0.2)
    owner = me(stack, token)["owning_store"]
    assert owner == {"store_id": store_b, "dealer_id": "dealer-shu"}
    assert call(stack, "GET", f"/v1/orders/{order_id}", headers=token).json()["status"] == "PAID"

    # The owner's dealer reads the history (the brand would need the dealer's FULL data sharing).
    dealer = {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), 'dealer', 'dealer-shu')}"}
    history = call(stack, "GET", f"/v1/admin/customers/{customer_id}/ownership", headers=dealer)
    assert history.status == 200, history.body
    assert history.json()["customer_id"] == customer_id
    changes = history.json()["changes"]
    assert [(c["from_store_id"], c["to_store_id"], c["basis"], c["reason"]) for c in changes] == [
        (None, store_a, "SCANNED", "FIRST_SCAN"),
        (store_a, store_b, "PURCHASED", "LAST_PURCHASE")]
    assert changes[0]["at"] <= changes[1]["at"]


# --- 2. points: once per scene per Beijing day -------------------------------------

def test_scan_points_are_once_per_scene_per_beijing_day(stack):
    scene = store_scene(stack, "store-cd-wuhou")
    _, token = customer(stack, "points")
    if seconds_to_next_beijing_midnight(business_now(stack)) < 120:
        move(stack, 180)   # never straddle midnight between the first two scans

    assert scan(stack, token, scene)["points_awarded"] == 10
    assert scan(stack, token, scene)["points_awarded"] == 0
    assert me(stack, token)["points_balance"] == 10

    move(stack, seconds_to_next_beijing_midnight(business_now(stack)) + 60)
    third = scan(stack, token, scene)
    assert third["points_awarded"] == 10
    assert third["binding"] == "REPEAT_SCAN" and third["bound_store_id"] == "store-cd-wuhou"
    assert me(stack, token)["points_balance"] == 20


# --- 3. promoters ------------------------------------------------------------------

def test_promoters_bind_friends_first_touch_with_their_upline(stack):
    store = "store-wh-optics"
    scene = store_scene(stack, store)
    admin = brand(stack)
    a_id, a = customer(stack, "proma")
    b_id, b = customer(stack, "promb")
    c_id, c = customer(stack, "promc")
    z_id, z = customer(stack, "promz")

    assert scan(stack, a, scene)["binding"] == "FIRST_SCAN"
    a_scene = become_promoter(stack, a, store)
    assert call(stack, "GET", "/v1/promoters/me", headers=a).json()["scene"] == a_scene

    b_arrives = scan(stack, b, a_scene)
    assert b_arrives["scene"]["kind"] == "promoter"
    assert b_arrives["promoter"] == {"promoter_id": a_id, "outcome": "PROMOTER_BOUND"}
    assert (b_arrives["binding"], b_arrives["bound_store_id"]) == ("FIRST_SCAN", store)
    b_scene = become_promoter(stack, b, store)

    c_arrives = scan(stack, c, b_scene)
    assert c_arrives["promoter"] == {"promoter_id": b_id, "outcome": "PROMOTER_BOUND"}
    become_promoter(stack, c, store)    # so that the back office shows C's own upline

    def upline(customer_id):
        reply = call(stack, "GET", f"/v1/admin/promoters/{customer_id}", headers=admin)
        assert reply.status == 200, reply.body
        assert reply.json()["customer_id"] == customer_id
        return reply.json()["upline"]

    def friends(customer_id):
        reply = call(stack, "GET", f"/v1/admin/promoters/{customer_id}/friends", headers=admin)
        assert reply.status == 200, reply.body
        return [(f["customer_id"], f["chain"]) for f in reply.json()["items"]]

    assert upline(c_id) == [b_id, a_id]
    assert upline(b_id) == [a_id]
    assert upline(a_id) == []
    assert friends(a_id) == [(b_id, [a_id])]
    assert friends(b_id) == [(c_id, [b_id, a_id])]

    # A second promoter's code does not take B from A (first touch).
    assert scan(stack, z, scene)["binding"] == "FIRST_SCAN"
    z_scene = become_promoter(stack, z, store)
    kept = scan(stack, b, z_scene)
    assert kept["promoter"] == {"promoter_id": z_id, "outcome": "PROMOTER_KEPT"}
    assert (kept["binding"], kept["bound_store_id"]) == ("REPEAT_SCAN", store)
    assert upline(b_id) == [a_id]
    assert friends(z_id) == []
    assert friends(a_id) == [(b_id, [a_id])]


# --- 4. malformed scans ------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"scene": "s." + "a" * 31}, "scene"),                       # 33 characters
    ({"scene": "s.abc|def"}, "scene"),                           # not in WeChat's scene alphabet
    ({"scene": "s.abcdef", "lat": 91, "lng": 104.0}, "lat"),
    ({"scene": "s.abcdef", "lat": 30.6, "lng": "x"}, "lng"),
    ({"lat": 30.6, "lng": 104.0}, None),                         # no scene
    ({"scene": "s.abcdef", "note": "x" * (1024 * 1024)}, None),  # a 1 MB body
], ids=["scene-33-chars", "scene-pipe", "lat-91", "lng-x", "no-scene", "one-megabyte"])
def test_malformed_scans_are_4xx_with_the_contract_error(stack, body, field):
    _, token = customer(stack, "bad")
    reply = call(stack, "POST", "/v1/scans", body, token)
    assert_contract_error(reply, 400, "VALIDATION_FAILED")
    if field is not None:
        assert reply.json()["error"]["details"].get("field") == field, reply.body
    assert me(stack, token)["owning_store"] is None and me(stack, token)["points_balance"] == 0


# --- 5. a scene's welcome and its store card follow the store ------------------------

def test_a_scenes_welcome_and_store_card_follow_the_store(stack):
    admin = brand(stack)
    made = call(stack, "POST", "/v1/admin/stores", {
        "dealer_id": "dealer-shu", "name": "Jiaozi Park", "city": "Chengdu", "address": "Jiaozi Avenue",
        "lat": 30.5790, "lng": 104.0630, "services": ["pickup"]}, admin)
    assert made.status == 201, made.body
    store_id = made.json()["store_id"]
    welcome = {"title": "Welcome to Jiaozi Park", "message": "Try the new AirBook today.",
               "featured_skus": ["LM-NB14-I5", "LM-EB-TWS"]}
    scene = store_scene(stack, store_id, welcome)

    _, first = customer(stack, "welcome1")
    answer = scan(stack, first, scene, lat=30.5791, lng=104.0631)
    assert answer["welcome"] == welcome
    assert answer["store"]["store_id"] == store_id and answer["store"]["name"] == "Jiaozi Park"
    assert answer["store"]["city"] == "Chengdu" and answer["store"]["services"] == ["pickup"]
    assert (answer["binding"], answer["bound_store_id"]) == ("FIRST_SCAN", store_id)

    renamed = call(stack, "PATCH", f"/v1/admin/stores/{store_id}", {"name": "Jiaozi Park Experience"}, admin)
    assert renamed.status == 200 and renamed.json()["name"] == "Jiaozi Park Experience", renamed.body
    again = scan(stack, first, scene)
    assert again["store"]["name"] == "Jiaozi Park Experience" and again["welcome"] == welcome
    assert (again["binding"], again["bound_store_id"]) == ("REPEAT_SCAN", store_id)

    closed = call(stack, "PATCH", f"/v1/admin/stores/{store_id}", {"status": "DEACTIVATED"}, admin)
    assert closed.status == 200 and closed.json()["status"] == "DEACTIVATED", closed.body
    _, second = customer(stack, "welcome2")
    late = scan(stack, second, scene)
    assert (late["binding"], late["store"], late["bound_store_id"]) == ("NO_STORE", None, None)
    assert me(stack, second)["owning_store"] is None

    reopened = call(stack, "PATCH", f"/v1/admin/stores/{store_id}", {"status": "ACTIVE"}, admin)
    assert reopened.status == 200 and reopened.json()["status"] == "ACTIVE", reopened.body
    assert scan(stack, second, scene)["binding"] == "FIRST_SCAN"
