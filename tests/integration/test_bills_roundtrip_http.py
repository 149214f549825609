"""Bills end to end (M12): a day of activity through the whole stack — payments, a partial
refund and a split, made over HTTP with StoreLink's API, the sandbox and the scheduler — then
the day's bills fetched with StoreLink's own use case (``fetch_bill``), run in this process
configured as a process of the test stack (its environment: the sandbox as WeChat Pay's
gateway, DynamoDB Local, the stack's business clock and keys).

What is checked: the rows StoreLink reads equal the sandbox's record of those payments,
refunds and splits fen for fen, and every row and the summary line equal the file read
independently (by header name, Decimal yuan); a sub-merchant with nothing that day is EMPTY;
before 10:00 Beijing D+1 the bill is NOT_YET (without asking, and when WeChat Pay answers
STATEMENT_CREATING), READY once the clock passes 10:00; ``bill_hash_corrupt`` is REFUSED, an
alert the brand sees, and no row."""
from __future__ import annotations

import contextlib
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.domain.time import BEIJING
from tests.helpers import reset_process_caches
from tests.integration.conftest import http
from tests.integration.sandbox_helpers import advance, control, new_sub_mchid
from tests.integration.test_attribution_http import brand, call, customer
from tests.integration.test_settlement_http import (PRICE, STORE, brand_mchid, buy_and_pay, confirm_receipt,
                                                    provider_view, run_job_until)

pytestmark = pytest.mark.integration

BRAND_ID = "brand-lumen"
REFUND_FEN = 30000


# -- StoreLink's side, in this process ----------------------------------------------------------------

@contextlib.contextmanager
def as_stack_process(stack):
    """Run chalicelib here as a process of the test stack, then give this process its own
    environment back (caches included)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack.env.items():
            patch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            patch.delenv(name, raising=False)
        reset_process_caches()
        try:
            yield
        finally:
            reset_process_caches()
    reset_process_caches()


def fetch(stack, day: date, kind: str, sub_mchid: str | None = None, **kwargs):
    """``fetch_bill`` as the reconciliation will call it; READY bills are read whole here
    (rows, raw text) and closed."""
    from chalicelib.services.bills import READY, fetch_bill

    with as_stack_process(stack):
        fetched = fetch_bill(day, kind, sub_mchid, brand_id=BRAND_ID, **kwargs)
        if fetched.outcome == READY:
            with fetched:
                fetched.read_rows = list(fetched.rows())
                fetched.read_text = list(fetched.raw_lines())
                fetched.read_fees = list(fetched.fees()) if kind != "PROFITSHARING" else []
        return fetched


def apply_directly(stack, day: date, sub_mchid: str):
    """The adapter alone: what WeChat Pay answers an application right now."""
    from chalicelib.services import wiring

    with as_stack_process(stack):
        return wiring.bills().apply_trade_bill(day, "ALL", sub_mchid)


# -- the sandbox's side ------------------------------------------------------------------------------

def business_now(stack) -> float:
    return control(stack, "GET", "/sandbox/clock").json()["timestamp"]


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BEIJING).timestamp()


def advance_to(stack, moment: float) -> None:
    seconds = int(moment - business_now(stack)) + 1
    if seconds > 0:
        advance(stack, seconds)


def transaction(stack, out_trade_no: str) -> dict:
    reply = http("GET", f"{stack.urls['sandbox']}/sandbox/transactions/{out_trade_no}")
    assert reply.status == 200, reply.body
    return reply.json()


def epoch(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339).timestamp())


def fen(text: str) -> int:
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text
    return int(value)


def read_independently(lines: list[str]) -> tuple[list[dict], dict]:
    """A bill file by header name: rows {column: value}, summary {column: value}."""
    text = [line.rstrip("\n") for line in lines]
    header, summary_header = text[0].split(","), text[-2].split(",")
    rows = [dict(zip(header, line[1:].split(",`"))) for line in text[1:-2]]
    assert all(len(row) == len(header) for row in rows)
    return rows, dict(zip(summary_header, text[-1][1:].split(",`")))


# -- one business day ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def day(stack):
    """Day D: three orders paid at the national price, one refunded in part before shipping,
    one shipped, received and split to the brand; NOT_YET asked on the way; then the clock
    moved to 10:01 Beijing on D+1, when D's bills exist."""
    now = business_now(stack)
    if datetime.fromtimestamp(now, BEIJING).hour >= 18:          # everything below must stay on one day
        advance_to(stack, at(datetime.fromtimestamp(now, BEIJING).date() + timedelta(days=1), 8))
    d = datetime.fromtimestamp(business_now(stack), BEIJING).date()

    made = call(stack, "POST", "/v1/admin/products",
                {"sku": (sku := f"BILL-{uuid.uuid4().hex[:8].upper()}"), "name": "Bill test lamp, brass",
                 "category": "bill-test", "price_fen": PRICE, "cost_fen": 85000}, brand(stack))
    assert made.status == 201, made.body
    assert call(stack, "PUT", f"/v1/admin/stock/warehouse:cloud/{sku}", {"on_hand": 10}, brand(stack)).status == 200
    _, buyer = customer(stack, "bills")
    paid = buy_and_pay(stack, buyer, sku)
    refunded = buy_and_pay(stack, buyer, sku)
    asked = call(stack, "POST", f"/v1/orders/{refunded}/refunds", {"amount_fen": REFUND_FEN, "reason": "price match"},
                 {**buyer, "Idempotency-Key": uuid.uuid4().hex})
    assert asked.status == 201, asked.body
    split = buy_and_pay(stack, buyer, sku)
    confirm_receipt(stack, split)
    run_job_until(stack, split, lambda: provider_view(stack, split)["received"].get(brand_mchid(stack)))
    advance(stack, 10)                                             # the refund's result lands too
    assert datetime.fromtimestamp(business_now(stack), BEIJING).date() == d, "the day's activity crossed midnight"

    sub = transaction(stack, paid)["sub_mchid"]
    s = {"d": d, "sub": sub, "paid": paid, "refunded": refunded, "split": split,
         "out_refund_no": asked.json()["out_refund_no"]}
    s["too_early"] = fetch(stack, d, "ALL", sub)                   # on D itself: WeChat Pay is not asked
    s["creating_answer"] = apply_directly(stack, d, sub)           # WeChat Pay itself: still making it
    claimed = at(d + timedelta(days=1), 10, 5)                      # our clock past 10:00, WeChat Pay late
    s["creating"] = fetch(stack, d, "ALL", sub, now=claimed)
    s["claimed_now"] = claimed
    advance_to(stack, at(d + timedelta(days=1), 10, 1))
    s["ready"] = fetch(stack, d, "ALL", sub)
    yield s


# -- NOT_YET, then READY -------------------------------------------------------------------------------

def test_before_ten_the_day_after_the_bill_is_not_yet_there_and_when_to_ask_again_is_said(day):
    from chalicelib.domain.bills import available_at
    from chalicelib.services.bills import NOT_YET, STATEMENT_CREATING, TOO_EARLY
    from chalicelib.wechat.bills import CREATING

    opens = available_at(day["d"])
    assert (day["too_early"].outcome, day["too_early"].reason, day["too_early"].retry_at) == (NOT_YET, TOO_EARLY, opens)
    assert day["creating_answer"].status == CREATING                         # 400 STATEMENT_CREATING at the sandbox
    creating = day["creating"]
    assert (creating.outcome, creating.reason) == (NOT_YET, STATEMENT_CREATING)
    assert creating.retry_at == int(day["claimed_now"]) + 30 * 60 and creating.retry_at >= opens


def test_after_ten_the_bill_is_ready_and_equals_the_sandboxs_record_fen_for_fen(stack, day):
    from chalicelib.domain.bills import PAYMENT, REFUND
    from chalicelib.services.bills import READY

    ready = day["ready"]
    assert ready.outcome == READY and len(ready.hash_value) == 40
    rows = ready.read_rows
    for order_id in (day["paid"], day["refunded"], day["split"]):
        record = transaction(stack, order_id)
        [payment] = [r for r in rows if r.kind == PAYMENT and r.out_trade_no == order_id]
        assert (payment.transaction_id, payment.sub_mchid, payment.settlement_total_fen, payment.order_total_fen,
                payment.fee_fen, payment.refund_fen, payment.trade_ts, payment.attach, payment.refund_id) == \
            (record["transaction_id"], record["sub_mchid"], record["total_fen"], record["total_fen"],
             record["fee_fen"], 0, epoch(record["success_time"]), f"store={STORE}", "")
        assert record["total_fen"] == PRICE and record["fee_fen"] == (PRICE * 6 + 500) // 1000
    record = transaction(stack, day["refunded"])
    [provider_refund] = record["refunds"]
    [refund] = [r for r in rows if r.kind == REFUND and r.out_trade_no == day["refunded"]]
    assert (refund.out_refund_no, refund.refund_id, refund.refund_fen, refund.requested_refund_fen, refund.fee_fen,
            refund.settlement_total_fen, refund.order_total_fen, refund.refund_status, refund.transaction_id) == \
        (provider_refund["out_refund_no"], provider_refund["refund_id"], provider_refund["refund_fen"],
         provider_refund["refund_fen"], -provider_refund["fee_refund_fen"], 0, 0, provider_refund["status"],
         record["transaction_id"])
    assert (refund.out_refund_no, refund.refund_fen, refund.refund_status) == (day["out_refund_no"], REFUND_FEN,
                                                                                "SUCCESS")
    fees = {(f.out_trade_no, f.out_refund_no): f.fee_fen for f in ready.read_fees}
    assert fees[(day["paid"], "")] == transaction(stack, day["paid"])["fee_fen"]
    assert fees[(day["refunded"], day["out_refund_no"])] == -provider_refund["fee_refund_fen"]


def test_every_row_and_the_summary_equal_the_file_read_independently(day):
    ready = day["ready"]
    rows, summary = read_independently(ready.read_text)
    assert len(rows) == len(ready.read_rows) == ready.totals.rows
    for parsed, raw in zip(ready.read_rows, rows):
        assert (parsed.trade_time, parsed.sub_mchid, parsed.transaction_id, parsed.out_trade_no, parsed.status,
                parsed.refund_id or "0", parsed.out_refund_no or "0", parsed.refund_status, parsed.attach,
                parsed.settlement_total_fen, parsed.order_total_fen, parsed.refund_fen, parsed.requested_refund_fen,
                parsed.fee_fen) == \
            (raw["交易时间"], raw["特约商户号"], raw["微信订单号"], raw["商户订单号"], raw["交易状态"], raw["微信退款单号"],
             raw["商户退款单号"], raw["退款状态"], raw["商户数据包"], fen(raw["应结订单金额"]), fen(raw["订单金额"]),
             fen(raw["退款金额"]), fen(raw["申请退款金额"]), fen(raw["手续费"]))
    assert ready.totals.summary == {name: int(value) if name == "总交易单数" else fen(value)
                                    for name, value in summary.items()}
    assert ready.totals.summary["订单总金额"] == sum(r.order_total_fen for r in ready.read_rows)
    assert ready.totals.summary["手续费总金额"] == sum(r.fee_fen for r in ready.read_rows)


def test_the_profit_sharing_bill_holds_the_brands_split_as_the_sandbox_recorded_it(stack, day):
    from chalicelib.domain.bills import SPLIT
    from chalicelib.services.bills import READY

    fetched = fetch(stack, day["d"], "PROFITSHARING", day["sub"])
    assert fetched.outcome == READY
    view = provider_view(stack, day["split"])
    splits = [o for o in view["orders"] if o["kind"] == "SPLIT"]
    assert splits, view
    expected = {(o["out_order_no"], r["detail_id"]): (o["order_id"], r["account"], r["type"], r["amount"], r["result"])
                for o in splits for r in o["receivers"]}
    mine = {(r.out_no, r.detail_id): (r.order_id, r.receiver, r.receiver_type, r.amount_fen, r.status)
            for r in fetched.read_rows if r.transaction_id == view["transaction_id"]}
    assert mine == expected and all(r.kind == SPLIT for r in fetched.read_rows
                                    if r.transaction_id == view["transaction_id"])
    assert sum(amount for _, _, _, amount, result in mine.values() if result == "SUCCESS") == \
        view["received"][brand_mchid(stack)]
    rows, summary = read_independently(fetched.read_text)
    assert fetched.totals.summary == {name: int(value) if name.endswith("笔数") else fen(value)
                                      for name, value in summary.items()}
    assert [(r.out_no, r.amount_fen) for r in fetched.read_rows] == \
        [(raw["商户分账/回退单号"], fen(raw["动账金额"])) for raw in rows]


# -- EMPTY ---------------------------------------------------------------------------------------------

def test_a_sub_merchant_with_nothing_that_day_has_an_empty_day(stack, day):
    from chalicelib.services.bills import EMPTY

    quiet = new_sub_mchid()
    for kind in ("ALL", "PROFITSHARING"):
        fetched = fetch(stack, day["d"], kind, quiet)
        assert (fetched.outcome, fetched.retry_at, fetched.totals) == (EMPTY, None, None)
    assert fetch(stack, day["d"], "REFUND", transaction(stack, day["paid"])["sub_mchid"]).outcome == "READY"


# -- REFUSED -------------------------------------------------------------------------------------------

def test_a_bill_whose_hash_is_corrupt_is_refused_once_alerted_and_gives_no_row(stack, day):
    from chalicelib.services.bills import ALERT_KIND, HASH_MISMATCH, READY, REFUSED

    for _ in range(2):                                               # refused twice, alerted once
        reply = control(stack, "POST", "/sandbox/faults", {"kind": "bill_hash_corrupt", "date": str(day["d"]),
                                                           "once": True})
        assert reply.status == 201, reply.body
        refused = fetch(stack, day["d"], "SUCCESS")
        assert (refused.outcome, refused.reason, refused.totals, refused.hash_value) == \
            (REFUSED, HASH_MISMATCH, None, None)
        assert not hasattr(refused, "read_rows")
        with pytest.raises(ValueError):
            refused.rows()
    alert_id = f"{ALERT_KIND}-{day['d']}-SUCCESS"
    listed = call(stack, "GET", "/v1/admin/alerts?limit=100", headers=brand(stack))
    assert listed.status == 200, listed.body
    mine = [a for a in listed.json()["items"] if a["alert_id"] == alert_id]
    assert len(mine) == 1, listed.json()
    assert mine[0]["kind"] == ALERT_KIND and mine[0]["status"] == "OPEN" and mine[0]["order_id"] is None
    assert (mine[0]["detail"]["bill_date"], mine[0]["detail"]["bill_kind"], mine[0]["detail"]["reason"]) == \
        (str(day["d"]), "SUCCESS", HASH_MISMATCH)
    assert fetch(stack, day["d"], "SUCCESS").outcome == READY        # the fault was used up: the file is fine
