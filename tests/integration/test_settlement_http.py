"""Settling splits with the provider (M9) on the whole local stack: real HTTP, the
sandbox's profit sharing, DynamoDB Local, the scheduler firing settle-splits on the
business clock, and crashes injected into separate processes."""
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.domain import splits as rules
from infra.local.environment import PROJECT_DIR
from tests.integration.conftest import http, login
from tests.integration.test_attribution_http import (become_promoter, brand, call, customer, move, scan,
                                                     store_scene)
from tests.integration.test_payment_callbacks_http import dynamo

pytestmark = pytest.mark.integration

STORE = "store-cd-chunxi"
PRICE, COST = 100000, 85000          # cost 85 % of the price
JOB_EVERY_S = 5 * 60 + 5             # one settle-splits run per move
DELIVERY = {"type": "warehouse", "address": {"recipient": "Sam", "phone": "13812345678", "city": "Chengdu",
                                             "detail": "1 Chunxi Road"}}


# --- helpers -----------------------------------------------------------------------------

def new_product(stack, rates_bps=None) -> str:
    sku = f"PS-{uuid.uuid4().hex[:10].upper()}"
    made = call(stack, "POST", "/v1/admin/products",
                {"sku": sku, "name": "Split test dock", "category": "split-test", "price_fen": PRICE,
                 "cost_fen": COST}, brand(stack))
    assert made.status == 201, made.body
    assert call(stack, "PUT", f"/v1/admin/stock/warehouse:cloud/{sku}", {"on_hand": 20}, brand(stack)).status == 200
    if rates_bps:
        rated = call(stack, "PUT", f"/v1/admin/products/{sku}/commission-rates", {"rates_bps": rates_bps}, brand(stack))
        assert rated.status == 200, rated.body
    return sku


def buy_and_pay(stack, token, sku) -> str:
    placed = call(stack, "POST", "/v1/orders", {"store_id": STORE, "fulfillment": DELIVERY,
                                               "lines": [{"sku": sku, "quantity": 1}]},
                  {**token, "Idempotency-Key": uuid.uuid4().hex})
    assert placed.status == 201, placed.body
    order_id = placed.json()["order_id"]
    paid = http("POST", f"{stack.urls['sandbox']}/sandbox/pay", {"out_trade_no": order_id, "notify": "once"})
    assert paid.status == 200, paid.body
    move(stack, 1)                      # the notification lands; the plan is made from the outbox
    assert wait_for(lambda: plan_item(stack, order_id)) is not None
    return order_id


def confirm_receipt(stack, order_id) -> None:
    """Ship it (the shipping information reaches WeChat through the outbox), then the buyer
    confirms receipt in WeChat: the payment settles."""
    shipped = call(stack, "POST", f"/v1/admin/orders/{order_id}/ship",
                   {"carrier": "SF Express", "tracking_no": f"SF{uuid.uuid4().int % 10**12:012d}"}, brand(stack))
    assert shipped.status == 200, shipped.body
    move(stack, 1)
    reply = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
        http("POST", f"{stack.urls['sandbox']}/sandbox/orders/{order_id}/confirm-receipt")))
    assert reply is not None and reply.status == 200


def wait_for(read, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.2)
    return None


def table(stack, short_name):
    return f"{stack.env['STORELINK_TABLE_PREFIX']}{short_name}"


def plan_item(stack, order_id):
    return dynamo(stack).get_item(TableName=table(stack, "split_plans"), Key={"order_id": {"S": order_id}},
                                  ConsistentRead=True).get("Item")


def plan_status(stack, order_id) -> str:
    return plan_item(stack, order_id)["status"]["S"]


def ledger(stack, order_id) -> list:
    rows = dynamo(stack).query(TableName=table(stack, "ledger_entries"), KeyConditionExpression="order_id = :o",
                               ExpressionAttributeValues={":o": {"S": order_id}}, ConsistentRead=True)["Items"]
    return [rules.LedgerEntry(order_id, r["debit"]["S"], r["credit"]["S"], int(r["amount_fen"]["N"]), r["cause"]["S"])
            for r in rows]


def booked(entries, cause) -> int:
    return sum(e.amount_fen for e in entries if e.cause == cause)


def provider_view(stack, order_id) -> dict:
    reply = http("GET", f"{stack.urls['sandbox']}/sandbox/profitsharing?out_trade_no={order_id}")
    assert reply.status == 200, reply.body
    return reply.json()


def requests_for(stack, api, key) -> dict:
    counts = http("GET", f"{stack.urls['sandbox']}/sandbox/requests?api={api}&key={key}").json()
    return {"received": counts["received"], "accepted": counts["accepted"]}


def run_job_until(stack, order_id, done, moves=8, step_s=JOB_EVERY_S):
    for _ in range(moves):
        if done():
            return
        move(stack, step_s)
    assert done(), plan_item(stack, order_id)


def alerts_of(stack, order_id) -> list:
    reply = call(stack, "GET", "/v1/admin/alerts?limit=100", headers=brand(stack))
    assert reply.status == 200, reply.body
    return [a for a in reply.json()["items"] if a["order_id"] == order_id]


def brand_mchid(stack) -> str:
    return stack.env["BRAND_MCHID"]


# --- the whole way, with a promoter --------------------------------------------------------

def test_the_brand_is_split_after_settlement_and_the_promoter_after_the_window(stack):
    sku = new_product(stack, rates_bps=[500])
    a_code = f"sandbox-psa-{uuid.uuid4().hex[:10]}"
    signed_in = login(stack.urls["api"], a_code).json()
    a_id, a = signed_in["customer_id"], {"Authorization": f"Bearer {signed_in['token']}"}
    scan(stack, a, store_scene(stack, STORE))
    a_scene = become_promoter(stack, a, STORE)
    b_id, b = customer(stack, "psb")
    assert scan(stack, b, a_scene)["promoter"]["promoter_id"] == a_id
    order_id = buy_and_pay(stack, b, sku)

    move(stack, JOB_EVERY_S)           # fitted to the provider; not settled yet: nothing split
    view = provider_view(stack, order_id)
    assert view["split_orders"] == 0 and view["settled_at"] is None
    fee = view["fee_fen"]
    assert booked(ledger(stack, order_id), rules.FEE) == fee == PRICE - (PRICE - fee)

    confirm_receipt(stack, order_id)   # settles the payment
    run_job_until(stack, order_id, lambda: provider_view(stack, order_id)["received"].get(brand_mchid(stack)))
    move(stack, JOB_EVERY_S)           # the result is polled and booked
    view = provider_view(stack, order_id)
    assert view["received"] == {brand_mchid(stack): 25000}            # 30 % cap − 5 % commission room
    assert [o["unfreeze_unsplit"] for o in view["orders"]] == [False]
    assert booked(ledger(stack, order_id), rules.SPLIT) == 25000
    assert booked(ledger(stack, order_id), rules.COMMISSION) == 0    # not before the window

    move(stack, 25 * 86400)            # day 25: the commission is earned and split, the rest unfrozen
    run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "FINISHED")
    view = provider_view(stack, order_id)
    promoter_account = next(k for k in view["received"] if k != brand_mchid(stack))
    assert view["received"] == {brand_mchid(stack): 25000, promoter_account: 5000}
    assert [o["unfreeze_unsplit"] for o in view["orders"]] == [False, True]
    assert view["unsplit_amount"] == 0 and view["unfrozen"]["amount_fen"] == PRICE - fee - 30000

    entries = ledger(stack, order_id)
    assert booked(entries, rules.SPLIT) == sum(v for k, v in view["received"].items() if k == brand_mchid(stack))
    assert booked(entries, rules.COMMISSION) == view["received"][promoter_account]
    assert booked(entries, rules.FEE) == view["fee_fen"]
    breakdown = rules.check_invariant(entries, PRICE)
    assert breakdown == {"brand": 25000, "commissions": 5000, "dealer": PRICE - fee - 30000, "refunded": 0,
                         "fee": fee, "receivable": 60000}
    again = login(stack.urls["api"], a_code).json()          # 25 days on: a new session, the same customer
    assert again["customer_id"] == a_id
    mine = call(stack, "GET", "/v1/me/promoter", headers={"Authorization": f"Bearer {again['token']}"})
    assert mine.json()["amounts"] == {"pending_fen": 0, "earned_fen": 0, "paid_fen": 5000,
                                       "clawback_owed_fen": 0}


# --- the cap: 30 % split, 55 % receivable ----------------------------------------------------

def test_with_cost_85_percent_and_max_ratio_3000_30_percent_is_split_and_55_a_receivable(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "pscap")
    order_id = buy_and_pay(stack, buyer, sku)
    confirm_receipt(stack, order_id)
    assert provider_view(stack, order_id)["max_ratio"] == 3000
    run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "FINISHED")
    view = provider_view(stack, order_id)
    assert view["received"] == {brand_mchid(stack): 30000} and view["split_fen"] == 30000
    assert view["unsplit_amount"] == 0 and view["unfrozen"] is not None
    breakdown = rules.check_invariant(ledger(stack, order_id), PRICE)
    assert breakdown["brand"] == 30000 and breakdown["receivable"] == 55000


# --- receivers that fail -----------------------------------------------------------------------

def test_a_receiver_failing_with_no_relation_is_added_again_and_the_split_succeeds(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "psrel")
    order_id = buy_and_pay(stack, buyer, sku)
    confirm_receipt(stack, order_id)
    sub_mchid = provider_view(stack, order_id)["sub_mchid"]
    added_before = requests_for(stack, "receivers_add", f"{sub_mchid}%23{brand_mchid(stack)}")["received"]
    fault = http("POST", f"{stack.urls['sandbox']}/sandbox/faults",
                 {"kind": "receiver_fails", "account": brand_mchid(stack), "reason": "NO_RELATION", "once": True})
    assert fault.status in (200, 201), fault.body
    try:
        run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "FINISHED")
    finally:
        http("DELETE", f"{stack.urls['sandbox']}/sandbox/faults")
    splits = [o for o in provider_view(stack, order_id)["orders"] if o["kind"] == "SPLIT"]
    assert [(r["result"], r.get("fail_reason")) for o in splits for r in o["receivers"]] == [
        ("CLOSED", "NO_RELATION"), ("SUCCESS", None)]
    assert splits[0]["out_order_no"] != splits[1]["out_order_no"]
    assert requests_for(stack, "receivers_add", f"{sub_mchid}%23{brand_mchid(stack)}")["received"] > added_before
    assert rules.check_invariant(ledger(stack, order_id), PRICE)["brand"] == 30000


def test_a_receiver_failing_for_good_becomes_an_alert_with_the_order_id(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "psrisk")
    order_id = buy_and_pay(stack, buyer, sku)
    confirm_receipt(stack, order_id)
    http("POST", f"{stack.urls['sandbox']}/sandbox/faults",
         {"kind": "receiver_fails", "account": brand_mchid(stack), "reason": "RECEIVER_HIGH_RISK", "once": True})
    try:
        run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "FINISHED")
    finally:
        http("DELETE", f"{stack.urls['sandbox']}/sandbox/faults")
    alerts = alerts_of(stack, order_id)
    assert [(a["kind"], a["detail"]["reason"]) for a in alerts] == [("SPLIT_FAILED", "RECEIVER_HIGH_RISK")]
    breakdown = rules.check_invariant(ledger(stack, order_id), PRICE)
    assert breakdown["brand"] == 0 and breakdown["receivable"] == COST     # the whole share is owed


# --- never settled -------------------------------------------------------------------------------

def test_a_payment_never_settled_turns_into_a_receivable_and_an_alert_on_day_28(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "psd28")
    order_id = buy_and_pay(stack, buyer, sku)
    move(stack, JOB_EVERY_S)
    assert plan_status(stack, order_id) == "PLANNED"
    move(stack, 27 * 86400)
    assert plan_status(stack, order_id) == "PLANNED"                    # still trying on day 27
    move(stack, 86400)
    run_job_until(stack, order_id, lambda: plan_status(stack, order_id) == "EXPIRED", moves=2)
    assert provider_view(stack, order_id)["split_orders"] == 0
    breakdown = rules.check_invariant(ledger(stack, order_id), PRICE)
    assert breakdown["brand"] == 0 and breakdown["receivable"] == COST
    assert [a["kind"] for a in alerts_of(stack, order_id)] == ["SPLIT_DEADLINE_MISSED"]


# --- crashes and two runs at once ------------------------------------------------------------------

def park(stack, order_id) -> None:
    """Keep the scheduler's own runs off this plan: this test's processes run it."""
    dynamo(stack).update_item(TableName=table(stack, "split_plans"), Key={"order_id": {"S": order_id}},
                              UpdateExpression="SET next_action_at = :far",
                              ExpressionAttributeValues={":far": {"N": "99999999999"}})


def operations(stack, order_id) -> list:
    return json.loads(plan_item(stack, order_id)["settlement"]["S"])["operations"]


def worker(stack, mode, order_id) -> subprocess.CompletedProcess:
    env = {**stack.env, "PYTHONPATH": str(PROJECT_DIR), "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "tests.integration.settlement_worker", mode, order_id],
                          cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)


def test_crashes_and_two_runs_at_once_make_exactly_one_operation_per_planned_split(stack):
    sku = new_product(stack)
    _, buyer = customer(stack, "pscrash")
    order_id = buy_and_pay(stack, buyer, sku)
    park(stack, order_id)
    confirm_receipt(stack, order_id)
    move(stack, 61)
    park(stack, order_id)

    crashed = worker(stack, "crash-before-send", order_id)     # fitted, number stored, killed before asking
    assert crashed.returncode == 97, crashed.stderr
    park(stack, order_id)
    first_no = operations(stack, order_id)[0]["out_order_no"]
    assert requests_for(stack, "profitsharing_order", first_no) == {"received": 0, "accepted": 0}

    crashed = worker(stack, "crash-after-send", order_id)      # asked (the same number), killed before recording
    assert crashed.returncode == 97, crashed.stderr
    park(stack, order_id)
    assert requests_for(stack, "profitsharing_order", first_no) == {"received": 1, "accepted": 1}

    for _ in range(4):                                          # then two runs at once, until finished
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: worker(stack, "run", order_id), range(2)))
        assert all(r.returncode == 0 for r in runs), [r.stderr[-3000:] for r in runs]
        if plan_status(stack, order_id) == "FINISHED":
            break
        move(stack, 31)                                         # the provider's result is due
        park(stack, order_id)
    assert plan_status(stack, order_id) == "FINISHED"

    view = provider_view(stack, order_id)
    done = operations(stack, order_id)
    assert [o["kind"] for o in done] == ["BRAND", "UNFREEZE"]
    assert [o["out_order_no"] for o in view["orders"]] == [o["out_order_no"] for o in done]
    assert requests_for(stack, "profitsharing_order", first_no)["accepted"] == 1
    unfreeze_no = done[1]["out_order_no"]
    assert requests_for(stack, "profitsharing_unfreeze", unfreeze_no)["accepted"] == 1
    assert view["received"] == {brand_mchid(stack): 30000}
    entries = ledger(stack, order_id)
    assert [e.cause for e in entries].count(rules.SPLIT) == 1
    assert rules.check_invariant(entries, PRICE)["brand"] == 30000
