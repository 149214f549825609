"""Our side of one Beijing day for the nightly reconciliation (M13) on moto: the payments,
refunds and split / return lines of exactly that day, made through the real use cases
(payments applied, refunds asked and retried, splits and returns carried out against the
WeChat-like fakes), read by indexes only — a Scan fails the test."""
from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.db.reconciliation_day import read_day_keys
from chalicelib.domain.reconciliation import RETURN, SPLIT, OurPayment, OurRefund, OurSharingLine
from chalicelib.domain.time import BEIJING
from chalicelib.services import payments as pay
from chalicelib.services import wiring
from chalicelib.services.refunds import advance_open_refunds, apply_refund_result, request_refund
from chalicelib.services.settlement import collaborators, settle_due_splits
from chalicelib.services.splits import on_plan_split
from tests.unit.test_fulfilment import SP
from tests.unit.test_orders import DELIVERY, STORE, shop  # noqa: F401 - the fixture
from tests.unit.test_refund_unwind import bridged  # noqa: F401 - the fixture
from tests.unit.test_settlement import BRAND_MCHID, fake, stores  # noqa: F401 - fixtures

DAY = "2026-03-01"
BEFORE, AFTER = "2026-02-28", "2026-03-02"
MIDNIGHT = datetime(2026, 3, 1, tzinfo=BEIJING).timestamp()     # 2026-02-28T16:00:00Z
SHU_MCHID, YANGTZE_MCHID = "1900001001", "1900001003"
OTHER_DEALER_STORE = "store-cd-wuhou"                            # dealer-yangtze
SKU, PAID = "LM-MS-WL", 19800                                    # 2 units at 9900
CAP = PAID * 3000 // 10000                                       # the brand's split without promoter


@pytest.fixture(autouse=True)
def no_scan(monkeypatch):
    """Reading a day never scans a table (DynamoDB's Scan fails this test if anything asks)."""
    from moto.dynamodb.models import DynamoDBBackend

    def scan(*args, **kwargs):
        raise AssertionError("a Scan was used")

    monkeypatch.setattr(DynamoDBBackend, "scan", scan)


def rfc(at: float) -> str:
    return datetime.fromtimestamp(at, tz=BEIJING).isoformat()


def paid(shop, key, success_at, applied_at=None, store=STORE, sub_mchid=SHU_MCHID):  # noqa: F811
    """An order paid at the provider at ``success_at`` (None: its word carries no time),
    applied here at ``applied_at`` (default: 3 s later)."""
    order = shop.order({"store_id": store, "lines": [{"sku": SKU, "quantity": 2}], "fulfillment": DELIVERY},
                       key=key).json
    oid = order["order_id"]
    transaction = {**SP, "sub_mchid": sub_mchid, "out_trade_no": oid, "transaction_id": "42" + oid[2:],
                   "trade_state": "SUCCESS", "amount": {"total": order["amounts"]["payable_fen"], "currency": "CNY"}}
    if success_at is not None:
        transaction["success_time"] = rfc(success_at)
    at = applied_at if applied_at is not None else success_at + 3
    assert pay.apply_payment(transaction, payments=wiring.payment_records(), now=at, **SP) == "APPLY"
    return oid


def payment(oid, sub_mchid=SHU_MCHID, fee_fen=None, state="PAID"):
    return OurPayment(oid, sub_mchid, PAID, state, "42" + oid[2:], fee_fen)


def refund(shop, oid, at, body=None, key="r"):  # noqa: F811
    """A refund asked by the customer at ``at`` (the provider is the shop's fake)."""
    customer = shop.get("/v1/me").json["customer_id"]
    status, answer = request_refund(customer, oid, body or {"amount_fen": 100, "reason": "x"}, key, f"fp-{key}",
                                    refunds=wiring.refunds(), payments=shop.payments, now=at,
                                    notify_url="http://127.0.0.1:9/")
    assert status == 201 and answer["status"] == "PROCESSING", answer
    return answer


# --- payments ---------------------------------------------------------------------------------

def test_a_days_payments_are_those_the_provider_says_succeeded_that_beijing_day(shop):  # noqa: F811
    late_eve = paid(shop, "p1", MIDNIGHT - 1, applied_at=MIDNIGHT + 4)   # success 23:59:59, applied after midnight
    first = paid(shop, "p2", MIDNIGHT)                                    # 00:00:00 Beijing = 16:00 UTC
    last = paid(shop, "p3", MIDNIGHT + 86399)                             # 23:59:59
    next_day = paid(shop, "p4", MIDNIGHT + 86400)
    no_time = paid(shop, "p5", None, applied_at=MIDNIGHT + 10)            # no success_time: our paid_at
    no_time_before = paid(shop, "p6", None, applied_at=MIDNIGHT - 10)
    other = paid(shop, "p7", MIDNIGHT + 100, store=OTHER_DEALER_STORE, sub_mchid=YANGTZE_MCHID)
    shop.order({"store_id": STORE, "lines": [{"sku": SKU, "quantity": 2}], "fulfillment": DELIVERY}, key="unpaid")

    keys = read_day_keys(DAY)
    assert keys.day == DAY
    assert keys.payments == {oid: payment(oid) for oid in (first, last, no_time)} | {
        other: payment(other, YANGTZE_MCHID)}
    assert set(read_day_keys(BEFORE).payments) == {late_eve, no_time_before}
    assert set(read_day_keys(AFTER).payments) == {next_day}
    assert keys.refunds == {} and keys.sharing == {}

    assert set(read_day_keys(DAY, SHU_MCHID).payments) == {first, last, no_time}
    assert read_day_keys(DAY, YANGTZE_MCHID).payments == {other: payment(other, YANGTZE_MCHID)}
    assert read_day_keys(DAY, "1900009999").payments == {}


def test_the_state_follows_the_order_and_the_fee_is_the_one_the_ledger_booked(stores, fake):  # noqa: F811
    oid = paid(stores, "fee", MIDNIGHT + 50)
    on_plan_split("ob", {"order_id": oid})
    record = wiring.settlement().load(oid)
    fake.payment(record.transaction_id, record.sub_mchid, PAID, 121, float(record.paid_at), settled=False)
    assert read_day_keys(DAY).payments[oid].fee_fen is None               # not fitted yet: no fee booked
    c = collaborators()
    c.provider = fake
    fake.now = MIDNIGHT + 120
    settle_due_splits(c, MIDNIGHT + 120)                                  # fitted: FEE booked (split not ready)
    assert read_day_keys(DAY).payments == {oid: payment(oid, fee_fen=121)}

    full = refund(stores, oid, MIDNIGHT + 3600, {"amount_fen": PAID, "reason": "x"})
    apply_refund_result({"out_refund_no": full["out_refund_no"], "out_trade_no": oid, "refund_status": "SUCCESS"},
                        refunds=wiring.refunds(), now=MIDNIGHT + 3700)
    assert read_day_keys(DAY).payments == {oid: payment(oid, fee_fen=121, state="REFUNDED")}


# --- refunds ----------------------------------------------------------------------------------

def test_a_days_refunds_are_those_asked_of_the_provider_that_beijing_day(shop):  # noqa: F811
    a, b, c, d = (paid(shop, f"rp{n}", MIDNIGHT - 5 * 86400) for n in range(4))
    other = paid(shop, "rp-o", MIDNIGHT - 5 * 86400, store=OTHER_DEALER_STORE, sub_mchid=YANGTZE_MCHID)
    eve = refund(shop, a, MIDNIGHT - 1)
    first = refund(shop, b, MIDNIGHT, {"amount_fen": 300, "reason": "x"})
    last = refund(shop, c, MIDNIGHT + 86399)
    next_day = refund(shop, d, MIDNIGHT + 86400)
    theirs = refund(shop, other, MIDNIGHT + 7200, {"amount_fen": 200, "reason": "x"})
    apply_refund_result({"out_refund_no": first["out_refund_no"], "out_trade_no": b, "refund_status": "SUCCESS"},
                        refunds=wiring.refunds(), now=MIDNIGHT + 60)

    keys = read_day_keys(DAY)
    assert keys.refunds == {
        first["out_refund_no"]: OurRefund(first["out_refund_no"], b, SHU_MCHID, 300, "SUCCESS"),
        last["out_refund_no"]: OurRefund(last["out_refund_no"], c, SHU_MCHID, 100, "PROCESSING"),
        theirs["out_refund_no"]: OurRefund(theirs["out_refund_no"], other, YANGTZE_MCHID, 200, "PROCESSING")}
    assert set(read_day_keys(BEFORE).refunds) == {eve["out_refund_no"]}
    assert set(read_day_keys(AFTER).refunds) == {next_day["out_refund_no"]}
    assert set(read_day_keys(DAY, SHU_MCHID).refunds) == {first["out_refund_no"], last["out_refund_no"]}
    assert set(read_day_keys(DAY, YANGTZE_MCHID).refunds) == {theirs["out_refund_no"]}
    assert set(read_day_keys(DAY).payments) == set()                     # paid days earlier


def test_a_retried_attempt_is_a_refund_of_its_own_and_one_the_provider_refused_is_left_out(shop):  # noqa: F811
    from chalicelib.wechat.pay import ProviderRefused

    oid = paid(shop, "retry", MIDNIGHT - 86400)
    asked = refund(shop, oid, MIDNIGHT + 1000)
    apply_refund_result({"out_refund_no": asked["out_refund_no"], "out_trade_no": oid, "refund_status": "CLOSED"},
                        refunds=wiring.refunds(), now=MIDNIGHT + 1010)
    assert advance_open_refunds(refunds=wiring.refunds(), payments=shop.payments, now=MIDNIGHT + 1100,
                                notify_url="http://127.0.0.1:9/")["retried"] == 1
    (record,) = wiring.refunds().of_order(oid)
    second = record.out_refund_no
    assert second != asked["out_refund_no"]
    assert read_day_keys(DAY).refunds == {
        asked["out_refund_no"]: OurRefund(asked["out_refund_no"], oid, SHU_MCHID, 100, "CLOSED"),
        second: OurRefund(second, oid, SHU_MCHID, 100, "PROCESSING")}

    # The provider refuses the next attempt outright: it never existed there.
    apply_refund_result({"out_refund_no": second, "out_trade_no": oid, "refund_status": "CLOSED"},
                        refunds=wiring.refunds(), now=MIDNIGHT + 1200)

    def refused(*args, **kwargs):
        raise ProviderRefused("NOT_ENOUGH", "no balance", 403)

    shop.payments.refund = refused
    advance_open_refunds(refunds=wiring.refunds(), payments=shop.payments, now=MIDNIGHT + 1300,
                         notify_url="http://127.0.0.1:9/")
    (record,) = wiring.refunds().of_order(oid)
    assert record.out_refund_no not in (asked["out_refund_no"], second) and record.status == "CLOSED"
    assert set(read_day_keys(DAY).refunds) == {asked["out_refund_no"], second}


def test_the_refund_of_a_payment_that_reached_a_closed_order_is_on_its_day(shop):  # noqa: F811
    from chalicelib.services.refunds import refund_late_payment

    order = shop.order({"store_id": STORE, "lines": [{"sku": SKU, "quantity": 2}], "fulfillment": DELIVERY},
                       key="late").json
    oid = order["order_id"]
    records = wiring.payment_records()
    records.close(wiring.orders().get(oid), "EXPIRED", MIDNIGHT + 10, provider_closed=False)
    transaction = {**SP, "sub_mchid": SHU_MCHID, "out_trade_no": oid, "transaction_id": "42" + oid[2:],
                   "trade_state": "SUCCESS", "amount": {"total": PAID, "currency": "CNY"},
                   "success_time": rfc(MIDNIGHT + 20)}

    def late(tx, record):
        refund_late_payment(tx, record, refunds=wiring.refunds(), payments=shop.payments, now=MIDNIGHT + 30,
                            notify_url="http://127.0.0.1:9/")

    assert pay.apply_payment(transaction, payments=records, now=MIDNIGHT + 30, on_late_payment=late, **SP) == "REFUSE"
    (record,) = wiring.refunds().of_order(oid)
    keys = read_day_keys(DAY)
    assert keys.refunds == {record.out_refund_no: OurRefund(record.out_refund_no, oid, SHU_MCHID, PAID, "PROCESSING")}
    assert keys.payments == {}       # never applied here: the bill's row finds no payment of ours (MISSING_HERE)


# --- split and return lines -----------------------------------------------------------------

def test_a_days_split_lines_are_the_operations_the_provider_accepted_that_beijing_day(stores, fake):  # noqa: F811
    c = collaborators()
    c.provider = fake

    def planned(key, at, settled, store=STORE, sub_mchid=SHU_MCHID):
        oid = paid(stores, key, at, store=store, sub_mchid=sub_mchid)
        on_plan_split("ob", {"order_id": oid})
        record = wiring.settlement().load(oid)
        fake.payment(record.transaction_id, record.sub_mchid, PAID, 119, float(record.paid_at), settled=settled)
        return oid, record.transaction_id

    def run(at):
        fake.now = at
        settle_due_splits(c, at)

    eve, _ = planned("eve", MIDNIGHT - 200, settled=True)
    waited, waited_tid = planned("waited", MIDNIGHT - 100, settled=False)
    theirs, _ = planned("theirs", MIDNIGHT + 300, settled=True, store=OTHER_DEALER_STORE, sub_mchid=YANGTZE_MCHID)
    run(MIDNIGHT - 139)                       # eve: fitted and its brand share accepted, 23:57:41
    run(MIDNIGHT - 39)                        # waited: stored, "not settled yet"
    assert read_day_keys(BEFORE).sharing == {(f"{eve}-S01", BRAND_MCHID): OurSharingLine(
        SPLIT, f"{eve}-S01", eve, SHU_MCHID, BRAND_MCHID, CAP, "PROCESSING")}
    fake.settle(waited_tid)
    run(MIDNIGHT + 400)                       # eve's result (DONE), waited's split accepted, theirs accepted
    run(MIDNIGHT + 410)                       # results; both unfrozen (no receiver: no line)
    run(MIDNIGHT + 420)

    line = lambda oid, sub: OurSharingLine(SPLIT, f"{oid}-S01", oid, sub, BRAND_MCHID, CAP, "SUCCESS")  # noqa: E731
    assert read_day_keys(BEFORE).sharing == {(f"{eve}-S01", BRAND_MCHID): line(eve, SHU_MCHID)}
    keys = read_day_keys(DAY)
    assert keys.sharing == {(f"{waited}-S01", BRAND_MCHID): line(waited, SHU_MCHID),
                            (f"{theirs}-S01", BRAND_MCHID): line(theirs, YANGTZE_MCHID)}
    assert read_day_keys(DAY, YANGTZE_MCHID).sharing == {(f"{theirs}-S01", BRAND_MCHID): line(theirs, YANGTZE_MCHID)}
    assert read_day_keys(AFTER).sharing == {}
    assert [op["kind"] for op in wiring.settlement().load(waited).settlement["operations"]] == ["BRAND", "UNFREEZE"]


def test_a_return_is_a_line_on_the_day_the_refund_sent_it(stores, fake, bridged):  # noqa: F811
    c = collaborators()
    c.provider = fake
    oid = paid(stores, "ret", MIDNIGHT - 3600)
    on_plan_split("ob", {"order_id": oid})
    record = wiring.settlement().load(oid)
    fake.payment(record.transaction_id, record.sub_mchid, PAID, 119, float(record.paid_at), settled=True)
    for at in (MIDNIGHT - 3500, MIDNIGHT - 3400, MIDNIGHT - 3300, MIDNIGHT - 3200):
        fake.now = at
        settle_due_splits(c, at)
    assert read_day_keys(BEFORE).sharing[(f"{oid}-S01", BRAND_MCHID)].state == "SUCCESS"

    fake.now = MIDNIGHT + 500
    refund(stores, oid, MIDNIGHT + 500, {"lines": [{"sku": SKU, "quantity": 2}], "reason": "x"})  # brand gives back
    (op,) = [op for op in wiring.settlement().load(oid).settlement["operations"] if op["kind"] == "RETURN"]
    back = op["parts"][0]["amount_fen"]
    assert back > 0
    assert read_day_keys(DAY).sharing == {(op["out_order_no"], BRAND_MCHID): OurSharingLine(
        RETURN, op["out_order_no"], oid, SHU_MCHID, BRAND_MCHID, back, op["parts"][0]["result"])}
    assert op["parts"][0]["result"] == "SUCCESS"
    assert set(read_day_keys(BEFORE).sharing) == {(f"{oid}-S01", BRAND_MCHID)}


def test_a_malformed_day_is_refused(dynamodb):
    with pytest.raises(ValueError):
        read_day_keys("2026-3-1")
