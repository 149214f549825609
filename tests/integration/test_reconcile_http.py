"""The nightly reconciliation end to end (M13): a day of activity over HTTP (payments, a
partial refund, a split, an order the customer cancelled), the provider's odd behaviour
injected into that day's bills through the sandbox — a payment of the closed order nobody
told us of, a bill amount that differs, a refund done at the provider only, a split line
one fen off — then ``./storelink job reconcile --date D`` after 10:00 on D+1.

The report finds exactly the injected discrepancies (precision and recall 100 %), the
unknown payment is refunded through the late-payment path, the command exits non-zero
while discrepancies remain; two runs at once make one report and a later run writes
nothing; a dealer reads only its own sub-merchant's part; and a day whose bill does not
match its hash is refused, reported, and nothing of it is applied."""
from __future__ import annotations

import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.domain.time import BEIJING
from infra.local.environment import PROJECT_DIR
from infra.local.tokens import mint_backoffice_token
from tests.integration.sandbox_helpers import advance, control
from tests.integration.test_attribution_http import brand, call, customer
from tests.integration.test_bills_roundtrip_http import advance_to, at, business_now, transaction
from tests.integration.test_settlement_http import (DELIVERY, PRICE, STORE, brand_mchid, buy_and_pay,
                                                    confirm_receipt, provider_view, run_job_until)

pytestmark = pytest.mark.integration

SHU, YANGTZE = "1900001001", "1900001003"          # STORE is dealer-shu's
MISSED_REFUND_FEN = 1000


def reconcile(stack, day) -> tuple[int, dict, str]:
    done = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "job", "reconcile",
                           "--date", day.isoformat()], capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    return done.returncode, json.loads(lines[-1])["result"], done.stderr


def office(stack, role, tenant) -> dict:
    return {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), role, tenant)}"}


def fault(stack, body) -> dict:
    reply = control(stack, "POST", "/sandbox/faults", body)
    assert reply.status in (200, 201), reply.body
    return reply.json()["fault"]


def cancelled_order(stack, buyer, sku) -> str:
    """An order placed and cancelled by the customer, closed at the provider too."""
    placed = call(stack, "POST", "/v1/orders", {"store_id": STORE, "lines": [{"sku": sku, "quantity": 1}],
                                                "fulfillment": DELIVERY},
                  {**buyer, "Idempotency-Key": uuid.uuid4().hex})
    assert placed.status == 201, placed.body
    order_id = placed.json()["order_id"]
    assert call(stack, "POST", f"/v1/orders/{order_id}/cancel", None, buyer).status == 200
    advance(stack, 6 * 60)             # WeChat may refuse to close in the first minutes: the close job does it
    assert transaction(stack, order_id)["trade_state"] == "CLOSED"
    return order_id


def report(stack, day, headers, query=""):
    return call(stack, "GET", f"/v1/admin/reconciliation/{day.isoformat()}{query}", headers=headers)


@pytest.fixture(scope="module")
def day(stack):
    now = business_now(stack)
    d = datetime.fromtimestamp(now, BEIJING).date() + timedelta(days=1)      # a fresh day, nobody else's
    advance_to(stack, at(d, 7))
    made = call(stack, "POST", "/v1/admin/products",
                {"sku": (sku := f"REC-{uuid.uuid4().hex[:8].upper()}"), "name": "Reconciliation lamp",
                 "category": "rec-test", "price_fen": PRICE, "cost_fen": 85000}, brand(stack))
    assert made.status == 201, made.body
    assert call(stack, "PUT", f"/v1/admin/stock/warehouse:cloud/{sku}", {"on_hand": 20}, brand(stack)).status == 200
    _, buyer = customer(stack, "rec")
    paid = buy_and_pay(stack, buyer, sku)
    refunded = buy_and_pay(stack, buyer, sku)
    asked = call(stack, "POST", f"/v1/orders/{refunded}/refunds", {"amount_fen": 30000, "reason": "price match"},
                 {**buyer, "Idempotency-Key": uuid.uuid4().hex})
    assert asked.status == 201, asked.body
    split = buy_and_pay(stack, buyer, sku)
    confirm_receipt(stack, split)
    run_job_until(stack, split, lambda: provider_view(stack, split)["received"].get(brand_mchid(stack)))
    closed = cancelled_order(stack, buyer, sku)
    advance(stack, 10)
    assert datetime.fromtimestamp(business_now(stack), BEIJING).date() == d, "the day's activity crossed midnight"

    injected = {
        "unknown": fault(stack, {"kind": "unknown_payment", "date": d.isoformat(), "out_trade_no": closed}),
        "amount": fault(stack, {"kind": "amount_differs", "date": d.isoformat(), "out_trade_no": paid,
                                "total_fen": PRICE - 100}),
        "refund": fault(stack, {"kind": "missed_refund", "date": d.isoformat(), "out_trade_no": paid,
                                "amount_fen": MISSED_REFUND_FEN}),
        "split": fault(stack, {"kind": "split_differs", "date": d.isoformat(), "out_order_no": f"{split}-S01"}),
    }
    # The scheduler's reconcile (10:30 Beijing) falls due during this move and runs at its
    # end, for the day before: D, whose bills are not there yet (WAITING).
    advance_to(stack, at(d + timedelta(days=1), 9, 59))
    waiting = report(stack, d, brand(stack)).json()
    advance_to(stack, at(d + timedelta(days=1), 10, 1))
    # Two runs at once, as the first runs after 10:00.
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: reconcile(stack, d), range(2)))
    yield {"d": d, "sku": sku, "buyer": buyer, "paid": paid, "refunded": refunded, "split": split, "closed": closed,
           "injected": injected, "runs": runs, "waiting": waiting}


def test_the_report_finds_exactly_what_was_injected(stack, day):
    reply = report(stack, day["d"], brand(stack))
    assert reply.status == 200, reply.body
    found = {(d["class"], d["kind"], d["order_id"], d["repair"]) for d in reply.json()["discrepancies"]}
    assert found == {
        ("MISSING_HERE", "PAYMENT", day["closed"], "LATE_PAYMENT_REFUNDED"),
        ("AMOUNT_DIFFERS", "PAYMENT", day["paid"], "REPORTED"),
        ("MISSING_HERE", "REFUND", day["paid"], "NEEDS_PERSON"),
        ("SPLIT_DIFFERS", "SPLIT", day["split"], "REPORTED"),
    }
    body = reply.json()
    [missed] = [d for d in body["discrepancies"] if d["kind"] == "REFUND"]
    assert (missed["key"], missed["theirs_fen"]) == (day["injected"]["refund"]["out_refund_no"], MISSED_REFUND_FEN)
    [amount] = [d for d in body["discrepancies"] if d["class"] == "AMOUNT_DIFFERS"]
    assert (amount["ours_fen"], amount["theirs_fen"], amount["diff_fen"]) == (PRICE, PRICE - 100, -100)
    [split] = [d for d in body["discrepancies"] if d["class"] == "SPLIT_DIFFERS"]
    assert split["diff_fen"] == 1
    assert body["ledger_breaks"] == [] and body["status"] == "DONE"
    assert (Path(stack.data_dir) / "reports" / f"{day['d'].isoformat()}.csv").exists()


def test_the_unknown_payment_is_refunded_and_the_command_says_discrepancies_remain(stack, day):
    record = transaction(stack, day["closed"])
    assert record["trade_state"] in ("SUCCESS", "REFUND")
    assert [r["refund_fen"] for r in record["refunds"]] == [record["total_fen"]]
    order = call(stack, "GET", f"/v1/orders/{day['closed']}", headers=day["buyer"]).json()
    assert order["status"] == "CLOSED" and order["refunds"][0]["amount_fen"] == record["total_fen"]
    assert [code for code, _, _ in day["runs"]] == [1, 1]


def test_before_ten_the_day_waits_for_its_bills(day):
    assert (day["waiting"]["status"], day["waiting"]["revision"], day["waiting"]["discrepancies"]) == ("WAITING", 0, [])
    assert "retry_at" in day["waiting"]


def test_two_runs_at_once_make_one_report_and_a_later_run_writes_nothing(stack, day):
    results = [result for _, result, _ in day["runs"]]
    assert sum(r.get("written") is True for r in results) == 1, results
    assert all(r["status"] in ("DONE", "BUSY") for r in results)
    code, again, _ = reconcile(stack, day["d"])
    assert (code, again["status"], again["written"], again["revision"]) == (1, "DONE", False, 1)
    assert report(stack, day["d"], brand(stack)).json()["revision"] == 1
    assert [r["refund_fen"] for r in transaction(stack, day["closed"])["refunds"]] == [PRICE]   # refunded once


def test_a_dealer_reads_only_its_own_sub_merchants_part(stack, day):
    shu = report(stack, day["d"], office(stack, "dealer", "dealer-shu"))
    assert shu.status == 200 and shu.json()["scope"] == SHU and len(shu.json()["discrepancies"]) == 4
    other = report(stack, day["d"], office(stack, "dealer", "dealer-shu"), f"?sub_mchid={YANGTZE}")
    assert other.status == 404
    yangtze = report(stack, day["d"], office(stack, "dealer", "dealer-yangtze"))
    assert yangtze.status == 200 and yangtze.json()["discrepancies"] == []
    assert report(stack, day["d"], office(stack, "store", STORE)).status == 403


def test_a_bill_that_does_not_match_its_hash_is_refused_and_nothing_is_applied(stack, day):
    d2 = day["d"] + timedelta(days=1)
    closed = cancelled_order(stack, day["buyer"], day["sku"])
    fault(stack, {"kind": "unknown_payment", "date": d2.isoformat(), "out_trade_no": closed})
    fault(stack, {"kind": "bill_hash_corrupt", "date": d2.isoformat()})
    advance_to(stack, at(d2 + timedelta(days=1), 10, 1))
    try:
        code, result, _ = reconcile(stack, d2)
    finally:
        control(stack, "DELETE", "/sandbox/faults")
    assert (code, result["status"]) == (1, "REFUSED")
    assert transaction(stack, closed)["refunds"] == []                       # nothing applied
    body = report(stack, d2, brand(stack)).json()
    assert body["status"] == "REFUSED" and body["refused"][0]["reason"] == "HASH_MISMATCH"
