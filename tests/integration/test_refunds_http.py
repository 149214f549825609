"""Refunds against the whole stack: a refund the provider closes is retried with a new
out_refund_no and succeeds. (A payment after closing is covered through the callback in
tests/unit/test_refunds.py: the sandbox closes a provider order at once, so it cannot
produce one yet.)"""
import pytest

from tests.integration.conftest import http, login

pytestmark = pytest.mark.integration

DELIVERY = {"type": "warehouse", "address": {"recipient": "Eve", "phone": "13700000000", "city": "Wuhan",
                                             "detail": "3 Optics Valley"}}


def place(stack, token, key):
    reply = http("POST", f"{stack.urls['api']}/v1/orders", {"store_id": "store-wh-optics", "fulfillment": DELIVERY,
                                                            "lines": [{"sku": "LM-PWR-65", "quantity": 2}]},
                 {**token, "Idempotency-Key": key})
    assert reply.status == 201, reply.body
    return reply.json()


def order(stack, token, order_id):
    return http("GET", f"{stack.urls['api']}/v1/orders/{order_id}", headers=token).json()


def move(stack, seconds):
    reply = http("POST", f"{stack.urls['sandbox']}/sandbox/clock", {"advance_s": seconds})
    assert reply.status == 200 and "due_work_errors" not in reply.json(), reply.body


def test_a_refund_the_provider_closes_is_retried_with_a_new_number_and_succeeds(stack):
    sandbox = stack.urls["sandbox"]
    token = {"Authorization": f"Bearer {login(stack.urls['api'], 'sandbox-eve').json()['token']}"}
    placed = place(stack, token, "refund-retry")
    http("POST", f"{sandbox}/sandbox/pay", {"out_trade_no": placed["order_id"], "notify": "once"})
    move(stack, 1)
    assert http("POST", f"{sandbox}/sandbox/faults", {"kind": "refunds_hold"}).status in (200, 201)
    asked = http("POST", f"{stack.urls['api']}/v1/orders/{placed['order_id']}/refunds",
                 {"amount_fen": 1000, "reason": "price match"}, {**token, "Idempotency-Key": "r-1"})
    assert asked.status == 201 and asked.json()["status"] == "PROCESSING"
    first_no = asked.json()["out_refund_no"]
    http("DELETE", f"{sandbox}/sandbox/faults")
    finished = http("POST", f"{sandbox}/sandbox/refunds/{first_no}/finish", {"status": "CLOSED", "notify": "once"})
    assert finished.status == 200, finished.body
    move(stack, 1)
    assert order(stack, token, placed["order_id"])["refunds"][0]["status"] == "CLOSED"
    move(stack, 61)      # the job retries it with a new out_refund_no
    move(stack, 61)      # the provider finishes it and says so
    refund = order(stack, token, placed["order_id"])["refunds"][0]
    assert refund["status"] == "SUCCESS" and refund["out_refund_no"] != first_no
    assert order(stack, token, placed["order_id"])["refunded_fen"] == 1000
    provider = http("GET", f"{sandbox}/sandbox/transactions/{placed['order_id']}").json()
    assert provider["refunded_fen"] == 1000
