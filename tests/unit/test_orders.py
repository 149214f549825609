"""Placing orders on moto: server prices, reservations, idempotency, bad inputs."""
import json

import pytest
from chalice.test import Client

from chalicelib import auth
from chalicelib.services import wiring
from tests.helpers import FakeMiniProgram, FakePayments
from tests.openapi import ValidatingClient

STORE = "store-cd-chunxi"
PICKUP = {"type": "store_pickup"}
DELIVERY = {"type": "warehouse", "address": {"recipient": "Alice", "phone": "13812345678", "city": "Chengdu",
                                             "detail": "1 Chunxi Road"}}


@pytest.fixture
def shop(dynamodb, monkeypatch):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    payments = FakePayments()
    wechat = FakeMiniProgram()
    monkeypatch.setattr(wiring, "payments", lambda: payments)
    monkeypatch.setattr(wiring, "miniprogram", lambda: wechat)
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Shop(ValidatingClient(client), payments)


class Shop:
    def __init__(self, client, payments):
        self.client, self.payments = client, payments
        self.tokens = {}

    def token(self, who="alice"):
        if who not in self.tokens:
            response = self.client.http.post("/v1/sessions", headers={"Content-Type": "application/json"},
                                             body=json.dumps({"code": f"sandbox-{who}"}))
            self.tokens[who] = json.loads(response.body)["token"]
        return self.tokens[who]

    def order(self, body, key="k1", who="alice", raw=None):
        headers = {"Authorization": f"Bearer {self.token(who)}", "Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = self.client.http.post("/v1/orders", headers=headers, body=raw if raw is not None else json.dumps(body))
        response.json = json.loads(response.body)
        return response

    def get(self, path, who="alice"):
        response = self.client.http.get(path, headers={"Authorization": f"Bearer {self.token(who)}"})
        response.json = json.loads(response.body)
        return response


def stock(location, sku):
    from chalicelib.db.records import StockRecord

    record = StockRecord.get(location, sku, consistent_read=True)
    return int(record.on_hand), int(record.reserved), int(record.available)


def test_an_order_is_priced_by_the_server_reserves_stock_and_prepays(shop):
    before = stock("warehouse:cloud", "LM-MS-WL")
    placed = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 2},
                                                      {"sku": "LM-PWR-65", "quantity": 1}],
                         "fulfillment": DELIVERY})
    assert placed.status_code == 201, placed.json
    body = placed.json
    assert body["status"] == "PENDING_PAYMENT" and body["store_id"] == STORE and body["dealer_id"] == "dealer-shu"
    assert body["amounts"] == {"subtotal_fen": 2 * 9900 + 14900, "discount_fen": 0, "payable_fen": 34700}
    assert body["payment"]["package"] == f"prepay_id=wx_prepay_{body['order_id']}"
    assert 6 <= len(body["order_id"]) <= 32
    prepay = shop.payments.prepays[body["order_id"]]
    assert (prepay.sub_mchid, prepay.total_fen, prepay.payer_sp_openid, prepay.profit_sharing) == \
        ("1900001001", 34700, "o_alice", True)
    on_hand, reserved, available = stock("warehouse:cloud", "LM-MS-WL")
    assert (on_hand, reserved, available) == (before[0], before[1] + 2, before[2] - 2)
    assert shop.get(f"/v1/orders/{body['order_id']}").json["status"] == "PENDING_PAYMENT"
    assert [o["order_id"] for o in shop.get("/v1/orders").json["items"]] == [body["order_id"]]
    assert shop.get(f"/v1/orders/{body['order_id']}", who="mallory").status_code == 404


def test_pickup_reserves_from_the_store_and_running_out_reserves_nothing(shop):
    on_hand, reserved, available = stock(f"store:{STORE}", "LM-NB14-I5")
    ok = shop.order({"store_id": STORE, "lines": [{"sku": "LM-NB14-I5", "quantity": available}],
                     "fulfillment": PICKUP}, key="a")
    assert ok.status_code == 201 and ok.json["lines"][0]["ship_from"] == f"store:{STORE}"
    warehouse_before = stock("warehouse:cloud", "LM-MS-WL")
    refused = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1},
                                                       {"sku": "LM-NB14-I5", "quantity": 1}],
                          "fulfillment": PICKUP}, key="b")
    assert refused.status_code == 422 and refused.json["error"]["code"] == "OUT_OF_STOCK"
    assert refused.json["error"]["details"]["sku"] in ("LM-NB14-I5", "LM-MS-WL")
    assert stock("warehouse:cloud", "LM-MS-WL") == warehouse_before
    assert stock(f"store:{STORE}", "LM-NB14-I5")[2] == 0


def test_the_same_key_and_body_answers_the_first_response_again(shop):
    body = {"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    first, again = shop.order(body, key="same"), shop.order(body, key="same")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert len(shop.get("/v1/orders").json["items"]) == 1
    other = shop.order({**body, "lines": [{"sku": "LM-MS-WL", "quantity": 2}]}, key="same")
    assert other.status_code == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Keys belong to their customer: Bob may use the same string.
    assert shop.order(body, key="same", who="bob").status_code == 201


def test_a_refusal_is_replayed_too(shop):
    body = {"store_id": STORE, "lines": [{"sku": "LM-NB16-G", "quantity": 99}], "fulfillment": PICKUP}
    first, again = shop.order(body, key="r"), shop.order(body, key="r")
    assert first.status_code == again.status_code == 422
    assert again.json == first.json


def test_a_failed_prepay_is_resumed_by_a_retry_with_the_same_key(shop):
    shop.payments.fail_prepay = 1
    body = {"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    failed = shop.order(body, key="p")
    assert failed.status_code == 503
    retried = shop.order(body, key="p")
    assert retried.status_code == 201
    assert len(shop.get("/v1/orders").json["items"]) == 1


def test_a_request_in_flight_with_the_same_key_is_409(shop):
    from datetime import datetime, timezone

    from chalicelib.db.records import IdempotencyRecord

    customer_id = shop.get("/v1/me").json["customer_id"]
    body = {"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    from chalicelib.domain.idempotency import request_fingerprint

    now = wiring.now()
    IdempotencyRecord(f"{customer_id}#orders#busy", request_hash=request_fingerprint(body), state="IN_PROGRESS",
                      created_at=now, expires_at=datetime.fromtimestamp(now + 3600, tz=timezone.utc)).save()
    response = shop.order(body, key="busy")
    assert response.status_code == 409 and response.json["error"]["code"] == "REQUEST_IN_PROGRESS"


def test_an_expired_key_can_be_used_again(shop):
    from datetime import datetime, timezone

    from chalicelib.db.records import IdempotencyRecord

    customer_id = shop.get("/v1/me").json["customer_id"]
    IdempotencyRecord(f"{customer_id}#orders#old", request_hash="x", state="DONE", response_status=201,
                      response_body={}, created_at=0,
                      expires_at=datetime.fromtimestamp(1000, tz=timezone.utc)).save()
    body = {"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    assert shop.order(body, key="old").status_code == 201


def test_the_customers_own_store_is_the_default_and_none_is_refused(shop):
    body = {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    refused = shop.order(body, key="x")
    assert refused.status_code == 422 and refused.json["error"]["code"] == "STORE_REQUIRED"
    from chalicelib.db.records import CustomerRecord

    customer_id = shop.get("/v1/me").json["customer_id"]
    CustomerRecord(customer_id).update(actions=[CustomerRecord.owning_store_id.set("store-wh-optics")])
    placed = shop.order(body, key="y")
    assert placed.status_code == 201 and placed.json["store_id"] == "store-wh-optics"


def test_a_deactivated_store_takes_no_orders_but_a_closed_one_ships_from_the_warehouse(shop):
    from chalicelib.db.records import StoreRecord

    StoreRecord("store-cd-tianfu").update(actions=[StoreRecord.status.set("DEACTIVATED")])
    body = {"store_id": "store-cd-tianfu", "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY}
    refused = shop.order(body, key="d")
    assert refused.status_code == 422 and refused.json["error"]["code"] == "STORE_DEACTIVATED"
    StoreRecord("store-cd-softpark").update(actions=[StoreRecord.opening_hours.set({})])  # never open
    assert shop.order({**body, "store_id": "store-cd-softpark"}, key="e").status_code == 201


LINE = {"sku": "LM-MS-WL", "quantity": 1}
BAD_ORDERS = [
    ({"store_id": STORE, "lines": [], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 0}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": -1}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": "1"}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 10**12}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [LINE] * 500, "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "X" * 5000, "quantity": 1}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "NOPE", "quantity": 1}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1, "unit_price_fen": 1}], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": PICKUP, "payable_fen": 1}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": PICKUP, "dealer_id": "dealer-chu"}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": {"type": "drone"}}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": {"type": "warehouse"}}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": {**DELIVERY, "address": {**DELIVERY["address"], "phone": "123"}}}, 400),
    ({"store_id": "store-nowhere", "lines": [LINE], "fulfillment": PICKUP}, 404),
    ({"store_id": "bad id!", "lines": [LINE], "fulfillment": PICKUP}, 400),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": PICKUP, "coupon_id": "c1"}, 422),
    ({"store_id": STORE, "lines": [LINE], "fulfillment": PICKUP, "points": 100}, 422),
    ({"store_id": STORE, "lines": "LM-MS-WL", "fulfillment": PICKUP}, 400),
]


@pytest.mark.parametrize("body, status", BAD_ORDERS)
def test_bad_orders_are_4xx_with_the_contract_body(shop, body, status):
    response = shop.order(body, key=f"bad-{status}")
    assert response.status_code == status, response.json
    assert set(response.json) == {"error"} and response.json["error"]["code"]


@pytest.mark.parametrize("key", [None, "", "x" * 256])
def test_the_idempotency_key_is_required_and_bounded(shop, key):
    response = shop.order({"store_id": STORE, "lines": [LINE], "fulfillment": PICKUP}, key=key)
    assert response.status_code == 400


def test_fresh_payment_parameters_for_a_pending_order(shop):
    placed = shop.order({"store_id": STORE, "lines": [LINE], "fulfillment": DELIVERY}, key="pay").json
    response = shop.client.http.post(f"/v1/orders/{placed['order_id']}/payment",
                                     headers={"Authorization": f"Bearer {shop.token()}"})
    assert response.status_code == 200
    assert json.loads(response.body)["payment"]["package"] == placed["payment"]["package"]
    other = shop.client.http.post(f"/v1/orders/{placed['order_id']}/payment",
                                  headers={"Authorization": f"Bearer {shop.token('bob')}"})
    assert other.status_code == 404


def test_a_stores_shelf_shows_national_prices_and_where_items_ship_from(shop):
    response = shop.client.http.get(f"/v1/stores/{STORE}/products?limit=100")
    assert response.status_code == 200
    shelf = json.loads(response.body)
    assert shelf["store"]["store_id"] == STORE and len(shelf["items"]) == 20
    by_sku = {item["sku"]: item for item in shelf["items"]}
    assert by_sku["LM-MS-WL"]["price_fen"] == 9900
    assert {s["type"] for s in by_sku["LM-NB14-I5"]["ships_from"]} == {"store", "warehouse"}
    assert "store_pickup" in by_sku["LM-NB14-I5"]["fulfillment"]
    from chalicelib.db.records import StoreRecord

    StoreRecord("store-cd-tianfu").update(actions=[StoreRecord.status.set("DEACTIVATED")])
    assert shop.client.http.get("/v1/stores/store-cd-tianfu/products").status_code == 404
    assert shop.client.http.get("/v1/stores/nowhere/products").status_code == 404
