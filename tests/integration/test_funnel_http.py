"""M7 funnel over real HTTP: scans and a paid order at a new store show up in the funnel
endpoint once the local scheduler has fed the outbox stream to the consumer (about a
second), each counted once. Its own store, customers and scene: the stack is shared by
the whole session."""
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from infra.local.tokens import mint_backoffice_token
from tests.integration.conftest import http
from tests.integration.test_attribution_http import DELIVERY, business_now, call, customer, scan, store_scene

pytestmark = pytest.mark.integration

BEIJING = timezone(timedelta(hours=8))


def office(stack, role: str, tenant: str) -> dict:
    return {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), role, tenant)}"}


def beijing_day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=BEIJING).date().isoformat()


def test_scans_and_a_paid_order_reach_the_funnel_once(stack):
    made = call(stack, "POST", "/v1/admin/stores", {
        "dealer_id": "dealer-shu", "name": "Funnel Lane", "city": "Chengdu", "address": "1 Funnel Lane",
        "lat": 30.60, "lng": 104.05, "services": ["pickup"]}, office(stack, "brand", "brand-lumen"))
    assert made.status == 201, made.body
    store_id = made.json()["store_id"]
    scene = store_scene(stack, store_id)
    first_day = beijing_day(business_now(stack))

    _, buyer = customer(stack, "funnel-buyer")
    _, visitor = customer(stack, "funnel-visitor")
    assert scan(stack, buyer, scene)["binding"] == "FIRST_SCAN"
    assert scan(stack, visitor, scene)["binding"] == "FIRST_SCAN"
    assert scan(stack, visitor, scene)["binding"] == "REPEAT_SCAN"

    placed = call(stack, "POST", "/v1/orders", {"store_id": store_id, "fulfillment": DELIVERY,
                                                "lines": [{"sku": "LM-MS-WL", "quantity": 2}]},
                  {**buyer, "Idempotency-Key": f"m7-{uuid.uuid4().hex[:8]}"})
    assert placed.status == 201, placed.body
    payable = placed.json()["amounts"]["payable_fen"]
    paid = http("POST", f"{stack.urls['sandbox']}/sandbox/pay", {"out_trade_no": placed.json()["order_id"],
                                                               "notify": "once"})
    assert paid.status == 200, paid.body
    last_day = beijing_day(business_now(stack))

    # 3 scans, 2 new customers; the purchase makes the buyer's binding a purchase (a 3rd binding).
    expected = {"scans": 3, "followers": 0, "new_customers": 2, "bindings": 3, "orders": 1, "gmv_fen": payable}
    path = f"/v1/admin/funnel?scope=store&id={store_id}&from={first_day}&to={last_day}"
    dealer = office(stack, "dealer", "dealer-shu")
    deadline, totals = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        reply = call(stack, "GET", path, headers=dealer)
        assert reply.status == 200, reply.body
        totals = reply.json()["totals"]
        if totals == expected:
            break
        time.sleep(0.25)
    assert totals == expected
    assert sum(day["scans"] for day in reply.json()["days"]) == 3

    # Later stream reads (and the scheduler's restarts) count nothing twice.
    time.sleep(2.5)
    assert call(stack, "GET", path, headers=dealer).json()["totals"] == expected
    # The brand sees nothing of dealer-shu's unless it shares (NONE by default in the demo).
    brand = call(stack, "GET", path, headers=office(stack, "brand", "brand-lumen"))
    shares = call(stack, "GET", "/v1/admin/dealers/dealer-shu/data-sharing", headers=dealer).json()["brand_access"]
    assert brand.status == (403 if shares == "NONE" else 200), brand.body
