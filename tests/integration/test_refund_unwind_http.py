"""Refunds unwinding the money (M10) on the whole local stack: the brand's share comes
back through a return order before the refund, a return that fails leaves the brand
owing the dealer on the statement, a paid commission is clawed back from the promoter's
next one."""
import uuid

import pytest

from chalicelib.domain import splits as rules
from tests.integration.conftest import http, login
from tests.integration.test_attribution_http import become_promoter, brand, call, customer, move, scan, store_scene
from tests.integration.test_settlement_http import (COST, PRICE, STORE, brand_mchid, buy_and_pay, confirm_receipt,
                                                    ledger, new_product, plan_status, provider_view, run_job_until,
                                                    wait_for)

pytestmark = pytest.mark.integration


def merchant(stack, mchid) -> dict:
    reply = http("GET", f"{stack.urls['sandbox']}/sandbox/merchants/{mchid}")
    assert reply.status == 200, reply.body
    return reply.json()


def set_merchant(stack, mchid, **settings) -> None:
    reply = http("PUT", f"{stack.urls['sandbox']}/sandbox/merchants/{mchid}", settings)
    assert reply.status == 200, reply.body


def top_up(stack, mchid, fen) -> None:
    set_merchant(stack, mchid, balance_fen=merchant(stack, mchid)["balance_fen"] + fen)


def refund_all(stack, token, order_id, sku, quantity=1) -> dict:
    """The buyer returns the units (a return request after shipping), the brand approves."""
    asked = call(stack, "POST", f"/v1/orders/{order_id}/refunds",
                 {"lines": [{"sku": sku, "quantity": quantity}], "reason": "changed my mind"},
                 {**token, "Idempotency-Key": uuid.uuid4().hex})
    assert asked.status == 201, asked.body
    refund_id = asked.json()["refund_id"]
    approved = call(stack, "POST", f"/v1/admin/refunds/{refund_id}/approve", {}, brand(stack))
    assert approved.status == 200, approved.body
    return asked.json()


def refund_status(stack, token, order_id) -> str | None:
    refunds = call(stack, "GET", f"/v1/orders/{order_id}", headers=token).json()["refunds"]
    return refunds[-1]["status"] if refunds else None


def settled_and_split(stack, token, sku) -> str:
    order_id = buy_and_pay(stack, token, sku)
    confirm_receipt(stack, order_id)
    run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "FINISHED")
    return order_id


def returns_of(view) -> list:
    return [r for o in view["orders"] for r in o.get("returns", [])]


def test_a_refund_after_the_brands_split_returns_its_share_first_and_the_ledger_balances(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "unw1")
    order_id = settled_and_split(stack, buyer, sku)
    assert provider_view(stack, order_id)["received"] == {brand_mchid(stack): 30000}
    brand_before = merchant(stack, brand_mchid(stack))["balance_fen"]

    refund_all(stack, buyer, order_id, sku)
    move(stack, 10)                                   # the refund completes and is notified
    assert wait_for(lambda: refund_status(stack, buyer, order_id) == "SUCCESS")

    view = provider_view(stack, order_id)
    assert [(r["amount"], r["result"]) for r in returns_of(view)] == [(30000, "SUCCESS")]
    assert merchant(stack, brand_mchid(stack))["balance_fen"] == brand_before - 30000
    entries = ledger(stack, order_id)
    breakdown = rules.check_invariant(entries, PRICE)
    assert (breakdown["brand"], breakdown["receivable"], breakdown["refunded"]) == (0, 0, PRICE)
    assert sum(e.amount_fen for e in entries if e.cause == rules.RETURN) == 30000


def test_a_paid_commission_refunded_is_clawed_back_from_the_promoters_next_commission(stack):
    sku = new_product(stack, rates_bps=[500])
    a_code = f"sandbox-unwa-{uuid.uuid4().hex[:10]}"
    signed_in = login(stack.urls["api"], a_code).json()
    a_id, a = signed_in["customer_id"], {"Authorization": f"Bearer {signed_in['token']}"}
    scan(stack, a, store_scene(stack, STORE))
    a_scene = become_promoter(stack, a, STORE)
    b_code = f"sandbox-unwb-{uuid.uuid4().hex[:10]}"
    b = {"Authorization": f"Bearer {login(stack.urls['api'], b_code).json()['token']}"}
    assert scan(stack, b, a_scene)["promoter"]["promoter_id"] == a_id

    first = buy_and_pay(stack, b, sku)
    confirm_receipt(stack, first)
    move(stack, 25 * 86400)                           # the commission is split on day 25
    run_job_until(stack, first, lambda: plan_status(stack, first) == "FINISHED")
    assert rules.check_invariant(ledger(stack, first), PRICE)["commissions"] == 5000

    # The promoter's 5000 is not returned (it is clawed back later): the dealer's account pays
    # that part of the refund from its other sales' money.
    top_up(stack, provider_view(stack, first)["sub_mchid"], 5000)
    b = {"Authorization": f"Bearer {login(stack.urls['api'], b_code).json()['token']}"}
    refund_all(stack, b, first, sku)                   # ... then the friend returns it
    move(stack, 10)
    assert wait_for(lambda: refund_status(stack, b, first) == "SUCCESS")
    run_job_until(stack, first, lambda: rules.check_invariant(ledger(stack, first), PRICE)["brand"] == 0)

    a = {"Authorization": f"Bearer {login(stack.urls['api'], a_code).json()['token']}"}
    mine = call(stack, "GET", "/v1/me/promoter", headers=a).json()
    assert mine["amounts"]["clawback_owed_fen"] == 5000
    assert [(c["order_id"], c["owed_fen"], c["status"]) for c in mine["clawbacks"]] == [(first, 5000, "OWED")]

    second = buy_and_pay(stack, b, sku)                # the friend buys again: 5000 of commission
    confirm_receipt(stack, second)
    move(stack, 25 * 86400)
    run_job_until(stack, second, lambda: plan_status(stack, second) == "FINISHED")
    view = provider_view(stack, second)
    assert [k for k in view["received"] if k != brand_mchid(stack)] == []   # all of it kept back
    assert rules.check_invariant(ledger(stack, second), PRICE)["commissions"] == 0
    assert rules.check_invariant(ledger(stack, first), PRICE)["commissions"] == 0   # clawed back in full

    a = {"Authorization": f"Bearer {login(stack.urls['api'], a_code).json()['token']}"}
    mine = call(stack, "GET", "/v1/me/promoter", headers=a).json()
    assert mine["amounts"]["clawback_owed_fen"] == 0 and mine["amounts"]["paid_fen"] == 5000
    assert [(c["order_id"], c["owed_fen"], c["status"]) for c in mine["clawbacks"]] == [(first, 0, "RECOVERED")]


def beijing_month(timestamp) -> str:
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(timestamp, tz=timezone(timedelta(hours=8))).strftime("%Y-%m")


def dealer_token(stack, dealer_id) -> dict:
    from pathlib import Path

    from infra.local.tokens import mint_backoffice_token

    return {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), 'dealer', dealer_id)}"}


def test_a_return_that_fails_leaves_the_brand_owing_the_dealer_on_the_statement_and_the_refund_succeeds(stack):
    from tests.integration.test_attribution_http import business_now

    sku = new_product(stack)
    _, buyer = customer(stack, "unw2")
    started = business_now(stack)
    order_id = settled_and_split(stack, buyer, sku)
    brand_settings = merchant(stack, brand_mchid(stack))
    set_merchant(stack, brand_mchid(stack), balance_fen=100)      # the brand's account cannot give 30000 back
    try:
        top_up(stack, provider_view(stack, order_id)["sub_mchid"], 30000)   # the dealer pays the refund itself
        refund_all(stack, buyer, order_id, sku)
        move(stack, 10)
        assert wait_for(lambda: refund_status(stack, buyer, order_id) == "SUCCESS")   # never held back
    finally:
        set_merchant(stack, brand_mchid(stack), balance_fen=brand_settings["balance_fen"])
    returns = returns_of(provider_view(stack, order_id))
    assert [(r["amount"], r["result"], r["fail_reason"]) for r in returns] == [(30000, "FAILED", "BALANCE_NOT_ENOUGH")]
    breakdown = rules.check_invariant(ledger(stack, order_id), PRICE)
    assert (breakdown["brand"], breakdown["receivable"], breakdown["refunded"]) == (30000, -30000, PRICE)

    dealer_id = call(stack, "GET", f"/v1/orders/{order_id}", headers=buyer).json()["dealer_id"]
    net = 0
    for month in sorted({beijing_month(started), beijing_month(business_now(stack))}):
        statement = call(stack, "GET", f"/v1/admin/statements?dealer_id={dealer_id}&month={month}",
                         headers=dealer_token(stack, dealer_id))
        assert statement.status == 200, statement.body
        net += sum(line["net_fen"] for line in statement.json()["lines"] if line["order_id"] == order_id)
    assert net == -30000              # the 55 % receivable cancelled, and the brand owes the 30 % it kept
    alerts = call(stack, "GET", "/v1/admin/alerts?limit=100", headers=brand(stack)).json()["items"]
    assert [a["kind"] for a in alerts if a["order_id"] == order_id] == ["RETURN_FAILED"]
