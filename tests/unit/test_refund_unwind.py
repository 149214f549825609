"""Refunds unwinding a split plan (M10) on moto against the WeChat-like fake provider: the
refund's commissions are cancelled (not paid yet) or clawed back (paid), the brand gives
its share back through a return (分账回退) before the refund is asked of WeChat Pay, a
clawback is recovered from the promoter's next commission on the same dealer's sales or
written off after 90 days — each once, however often a step is redelivered."""
from __future__ import annotations

import math

import pytest

from chalicelib.clock import business_clock
from chalicelib.domain import settlement as steps
from chalicelib.domain import splits as rules
from chalicelib.errors import Internal
from chalicelib.services import payments as pay
from chalicelib.services import wiring
from chalicelib.services.settlement import (collaborators, on_unwind_split, record_refund, settle_due_splits,
                                            settle_order, unwind_before_refund)
from chalicelib.services.splits import earn_due_commissions, estimated_fee_fen, on_plan_split
from tests.helpers import FakeProfitSharing
from tests.unit.test_fulfilment import SP
from tests.unit.test_orders import DELIVERY, STORE, shop  # noqa: F401 - the fixture
from tests.unit.test_refunds import ask, settle
from tests.unit.test_settlement import (amounts, booked, fake, ledger, load, ops, state,  # noqa: F401 - fixtures
                                        stores, with_promoter)

DAY = 86400
SKU = "LM-MS-WL"                 # 9900 fen, cost 7500
PAID = 19800                     # 2 units
CAP = PAID * 3000 // 10000       # 5940: the brand's split without promoter
SHU_MCHID, YANGTZE_MCHID = "1900001001", "1900001003"
OTHER_DEALER_STORE = "store-cd-wuhou"    # dealer-yangtze


# --- fixtures and helpers -----------------------------------------------------------------

@pytest.fixture
def c(stores, fake):
    """The job's collaborators as deployed (brand account from the test stage), on the fake."""
    found = collaborators()
    found.provider = fake
    return found


@pytest.fixture
def bridged(stores, fake):
    """The refund flow asks ``wiring.payments()`` (the shop's FakePayments): its profit-sharing
    calls go to the same fake provider; ``order`` lists the provider calls as they happen."""
    calls = []
    for name in ("add_receiver", "request_split", "query_split", "unfreeze", "unsplit_amount", "max_ratio",
                 "create_return", "query_return"):
        setattr(stores.payments, name, getattr(fake, name))
    refund = stores.payments.refund

    def refunding(out_refund_no, *args, **kwargs):
        calls.append(("refund", out_refund_no, {no: r["result"] for no, r in fake.returns.items()}))
        return refund(out_refund_no, *args, **kwargs)

    stores.payments.refund = refunding
    return calls


def to(at: float) -> float:
    """Business time moved forward to at least ``at`` (the API and the jobs read it)."""
    gap = math.ceil(at - wiring.now())
    if gap > 0:
        business_clock().advance(gap)
    return at


def run(c, fake, at):
    to(at)
    fake.now = at
    return settle_due_splits(c, at)


def drive(c, fake, oid, start, until, max_runs=40):
    at = start
    for _ in range(max_runs):
        record = load(oid)
        if record.next_action_at is None or float(record.next_action_at) > until:
            return at
        at = max(at, float(record.next_action_at))
        run(c, fake, at)
    raise AssertionError(f"{oid} still due after {max_runs} runs: {ops(oid)}")


def order_at(shop, fake, key, quantity=2, store=STORE, sub_mchid=SHU_MCHID, settled=True, plan=True):  # noqa: F811
    """A paid order (its split plan made, its payment known to the fake, fee as estimated)."""
    shop.tokens.clear()                                              # business time moves by weeks here
    order = shop.order({"store_id": store, "lines": [{"sku": SKU, "quantity": quantity}], "fulfillment": DELIVERY},
                       key=key).json
    oid, payable = order["order_id"], order["amounts"]["payable_fen"]
    assert pay.apply_payment({**SP, "sub_mchid": sub_mchid, "out_trade_no": oid, "transaction_id": "42" + oid[2:],
                              "trade_state": "SUCCESS", "amount": {"total": payable, "currency": "CNY"}},
                             payments=wiring.payment_records(), now=wiring.now(), **SP) == "APPLY"
    if not plan:
        return oid, None
    on_plan_split("ob", {"order_id": oid})
    record = load(oid)
    fake.payment(record.transaction_id, record.sub_mchid, payable, estimated_fee_fen(payable), float(record.paid_at),
                 settled=settled)
    return oid, record


def refund_all(shop, oid, units=2, key="all"):  # noqa: F811
    status, refund = ask(shop, oid, {"lines": [{"sku": SKU, "quantity": units}], "reason": "changed my mind"},
                         key=key)
    assert status == 201 and refund["status"] == "PROCESSING", refund
    return refund


def succeed(refund, oid):
    """WeChat reports the refund's success; its UNWIND_SPLIT is consumed (twice: redelivered)."""
    assert settle(refund["out_refund_no"], oid) == "SUCCESS"
    payload = {"order_id": oid, "refund_id": refund["refund_id"]}
    on_unwind_split("ob-1", payload)
    on_unwind_split("ob-1", payload)


def commission(oid):
    """The order's one commission (its clawbacks are on the order's index too)."""
    (record,) = [cm for cm in wiring.splits().commissions_of_order(oid) if not cm.commission_id.startswith("clawback#")]
    return wiring.splits().commission(record.promoter_id, record.commission_id)


def breakdown(oid, paid=PAID):
    return rules.check_invariant(ledger(oid), paid)


def promoter_record(promoter_id):
    return wiring.splits().promoter(promoter_id)


def clawbacks(promoter_id):
    return [(cb.order_id, cb.status, int(cb.amount_fen), int(cb.owed_fen), cb.dealer_id)
            for cb in wiring.splits().clawbacks_of_promoter(promoter_id, 10)]


def alerts_of(kind):
    from chalicelib.db.records import AlertRecord

    return sorted(a.alert_id for a in AlertRecord.scan() if a.kind == kind)   # test only


def return_calls(fake):
    return [key for api, key in fake.calls if api == "create_return"]


def paid_commission_then_refunded(stores, fake, c):  # noqa: F811
    """amy's commission of 990 on a 2-unit order PAID at its date, then the order refunded in
    full: (amy, order id, the time of the refund)."""
    amy = with_promoter(stores)
    oid, record = order_at(stores, fake, "first")
    t0, due_at = float(record.paid_at), float(record.commission_due_at)
    drive(c, fake, oid, t0 + 61, due_at + DAY)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE"), (f"{oid}-S02", "FINAL", "DONE")]
    assert commission(oid).status == "PAID" and amounts(amy) == (0, 0, 990)
    now = to(due_at + DAY)
    stores.tokens.clear()                                            # sessions last 7 days
    refund = refund_all(stores, oid)
    succeed(refund, oid)
    drive(c, fake, oid, wiring.now(), wiring.now() + DAY)
    return amy, oid, now


# --- the fake's returns are WeChat-like (no DynamoDB needed) -----------------------------------

def test_the_fake_provider_returns_like_wechat():
    from chalicelib.wechat.pay import MERCHANT_ID, ProviderRefused, Receiver, ReturnResult, SplitReceiver

    fake = FakeProfitSharing(max_ratio_bps=3000, result_after_s=5)
    fake.payment("4200000001", SHU_MCHID, 10000, 60, paid_at=1000.0, settled=True)
    fake.add_receiver(SHU_MCHID, Receiver(MERCHANT_ID, "1900000200", "Brand", "BRAND"))
    fake.now = 1100
    fake.request_split(SHU_MCHID, "4200000001", "S01", [SplitReceiver(MERCHANT_ID, "1900000200", 3000, "x")], False)

    def refused(*args):
        with pytest.raises(ProviderRefused) as caught:
            fake.create_return(SHU_MCHID, *args, "回退")
        return caught.value.provider_code

    assert refused("S01", "R01", "1900000200", 1000) == "INVALID_REQUEST"        # not finished yet
    fake.now = 1105
    assert refused("S09", "R01", "1900000200", 1000) == "RESOURCE_NOT_EXISTS"
    assert refused("S01", "R01", "1900000999", 1000) == "INVALID_REQUEST"        # not its receiver
    assert refused("S01", "R01", "1900000200", 3001) == "INVALID_REQUEST"        # more than it got
    fake.balances["1900000200"] = 2500
    first = fake.create_return(SHU_MCHID, "S01", "R01", "1900000200", 2000, "回退")
    assert isinstance(first, ReturnResult) and (first.result, first.amount_fen, first.out_order_no) == \
        ("SUCCESS", 2000, "S01")
    assert fake.create_return(SHU_MCHID, "S01", "R01", "1900000200", 2000, "回退").result == "SUCCESS"   # same one
    assert fake.returns_accepted == {"R01": 1} and fake.balances["1900000200"] == 500
    assert refused("S01", "R01", "1900000200", 1000) == "PARAM_ERROR"            # same number, other amount
    assert refused("S01", "R02", "1900000200", 1001) == "INVALID_REQUEST"        # 3000 - 2000 returned
    failed = fake.create_return(SHU_MCHID, "S01", "R02", "1900000200", 1000, "回退")
    assert (failed.result, failed.fail_reason) == ("FAILED", "BALANCE_NOT_ENOUGH") and fake.balances["1900000200"] == 500
    assert fake.query_return(SHU_MCHID, "S01", "R02").result == "FAILED"
    fake.balances["1900000200"] = 5000                                           # FAILED stays FAILED
    assert fake.create_return(SHU_MCHID, "S01", "R02", "1900000200", 1000, "回退").result == "FAILED"
    assert fake.create_return(SHU_MCHID, "S01", "R03", "1900000200", 1000, "回退").result == "SUCCESS"
    with pytest.raises(ProviderRefused):
        fake.query_return(SHU_MCHID, "S01", "R09")
    assert refused("S01", "R04", "1900000200", 1) == "INVALID_REQUEST"          # all 3000 returned
    fake.no_return_auth.add("1900000200")
    assert refused("S01", "R04", "1900000200", 1) == "NO_AUTH"                  # checked before the amount


# --- 1. before any split: the commission is cancelled, the plan unfreezes --------------------

def test_a_full_refund_before_any_split_cancels_the_pending_commission_and_unfreezes(c, stores, fake, bridged):
    amy = with_promoter(stores)
    oid, record = order_at(stores, fake, "before-split")
    t0 = float(record.paid_at)
    fake.now = to(t0 + 61)
    assert settle_order(oid, c, t0 + 61, only=lambda step: step.kind == "FIT") == 1       # fitted, nothing asked
    assert state(oid).fitted and state(oid).operations == () and amounts(amy) == (990, 0, 0)
    assert booked(oid, "RECEIVABLE") == [10050]

    refund = refund_all(stores, oid)
    # Unwound before the refund was asked: the commission is gone, no split or return asked.
    cancelled = commission(oid)
    assert (cancelled.status, int(cancelled.amount_fen), cancelled.pending_shard) == ("CANCELLED", 0, None)
    assert amounts(amy) == (0, 0, 0) and promoter_record(amy).clawback_owed_fen == 0
    assert [b[0] for b in bridged] == ["refund"] and fake.returns == {}
    succeed(refund, oid)
    assert [(r.refund_id, r.amount_fen, r.units) for r in state(oid).refunds] == [(refund["refund_id"], PAID,
                                                                                    {SKU: 2})]
    assert state(oid).unwound == (refund["refund_id"],)

    drive(c, fake, oid, wiring.now(), wiring.now() + DAY)
    assert ops(oid) == [(f"{oid}-S01", "UNFREEZE", "DONE")] and load(oid).status == "FINISHED"
    assert [o["kind"] for o in fake.operations] == ["UNFREEZE"]
    assert not [call for call in fake.calls if call[0] == "request_split"]       # no split asked for
    assert load(oid).next_action_at is None and clawbacks(amy) == []
    assert amounts(amy) == (0, 0, 0) and commission(oid).status == "CANCELLED"
    assert booked(oid, "RECEIVABLE") == [10050, 10050]                           # booked, then taken back
    assert breakdown(oid) == {"brand": 0, "commissions": 0, "dealer": -119, "refunded": PAID, "fee": 119,
                              "receivable": 0}
    # The earning job finds nothing to earn on it.
    assert earn_due_commissions(splits=wiring.splits(), now=t0 + 26 * DAY)["earned"] == 0


# --- 2. after the brand's split: the brand's share is returned first, once -------------------

def test_a_refund_after_the_brands_split_returns_its_share_before_the_refund_and_only_once(c, stores, fake,
                                                                                              bridged):
    fake.balances[c.brand_mchid] = 100_000
    oid, record = order_at(stores, fake, "after-brand")                      # no promoter: 30 % to the brand
    t0, tid = float(record.paid_at), record.transaction_id
    drive(c, fake, oid, t0 + 61, t0 + DAY)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE"), (f"{oid}-S02", "UNFREEZE", "DONE")]
    assert booked(oid, "SPLIT") == [CAP] and fake.received(tid, c.brand_mchid) == CAP

    refund = refund_all(stores, oid)
    returned = f"{oid}-R01"
    # The return was carried out before WeChat was asked for the refund.
    assert bridged == [("refund", refund["out_refund_no"], {returned: "SUCCESS"})]
    assert fake.balances[c.brand_mchid] == 100_000 - CAP
    (op,) = [op for op in state(oid).operations if op.kind == steps.RETURN_OP]
    assert (op.out_order_no, op.state, op.from_out_order_no, op.parts[0].amount_fen, op.parts[0].result) == \
        (returned, "DONE", f"{oid}-S01", CAP, "SUCCESS")
    assert fake.returns[returned]["return_mchid"] == c.brand_mchid

    unwind_before_refund(oid, refund["refund_id"], c, wiring.now())          # again: nothing more
    succeed(refund, oid)
    drive(c, fake, oid, wiring.now(), wiring.now() + DAY)
    run(c, fake, wiring.now() + 2 * DAY)
    assert fake.returns_accepted == {returned: 1} and return_calls(fake) == [returned]
    assert ops(oid)[2:] == [(returned, "RETURN", "DONE")] and load(oid).next_action_at is None
    assert booked(oid, "RETURN") == [CAP] and fake.balances[c.brand_mchid] == 100_000 - CAP
    assert breakdown(oid) == {"brand": 0, "commissions": 0, "dealer": -119, "refunded": PAID, "fee": 119,
                              "receivable": 0}
    assert alerts_of("RETURN_FAILED") == []


# --- 3. the return fails: the brand owes the dealer, nobody retries ------------------------

def test_a_return_the_brand_cannot_pay_leaves_the_brand_owing_the_dealer_and_is_not_retried(c, stores, fake, bridged):
    fake.balances[c.brand_mchid] = CAP - 1                                     # one fen short
    oid, record = order_at(stores, fake, "return-fails")
    t0 = float(record.paid_at)
    drive(c, fake, oid, t0 + 61, t0 + DAY)

    refund = refund_all(stores, oid)
    returned = f"{oid}-R01"
    assert fake.returns[returned]["result"] == "FAILED" and fake.balances[c.brand_mchid] == CAP - 1
    assert bridged == [("refund", refund["out_refund_no"], {returned: "FAILED"})]   # the refund still went
    found = wiring.alerts().get(f"RETURN_FAILED-{oid}-R01")
    assert found is not None and (found.kind, found.order_id, found.dealer_id) == ("RETURN_FAILED", oid, "dealer-shu")
    assert (found.detail["reason"], found.detail["out_return_no"], found.detail["amount_fen"]) == \
        ("BALANCE_NOT_ENOUGH", returned, CAP)

    succeed(refund, oid)
    for later in (wiring.now(), wiring.now() + 3600, wiring.now() + 3 * DAY):
        drive(c, fake, oid, later, later + DAY)
        run(c, fake, later + DAY)
    unwind_before_refund(oid, refund["refund_id"], c, wiring.now())
    assert return_calls(fake) == [returned] and fake.returns_accepted == {returned: 1}
    assert [(op.kind, op.parts[0].result, op.parts[0].fail_reason) for op in state(oid).operations
            if op.kind == "RETURN"] == [("RETURN", "FAILED", "BALANCE_NOT_ENOUGH")]
    assert booked(oid, "RETURN") == [] and load(oid).next_action_at is None
    result = breakdown(oid)
    assert (result["receivable"], result["brand"]) == (-CAP, CAP)          # the brand owes the dealer its split
    assert alerts_of("RETURN_FAILED") == [f"RETURN_FAILED-{oid}-R01"]


# --- 4. after the commission was paid: clawed back, recovered on the same dealer only ---------

def test_a_paid_commission_refunded_is_clawed_back_and_recovered_only_from_the_same_dealers_next_commission(
        c, stores, fake, bridged):
    amy, oid, _ = paid_commission_then_refunded(stores, fake, c)
    assert clawbacks(amy) == [(oid, "OWED", 990, 990, "dealer-shu")]
    assert int(promoter_record(amy).clawback_owed_fen) == 990
    assert commission(oid).status == "PAID"                                   # the commission itself stays paid
    assert booked(oid, "RETURN") == [4950] and booked(oid, "CLAWBACK") == []
    (cb,) = wiring.splits().clawbacks_of_promoter(amy, 10)
    assert cb.refund_id and float(cb.earn_due_at) == pytest.approx(float(cb.created_at) + 90 * DAY)
    account = stores.get("/v1/me/promoter", who="amy").json
    assert account["amounts"] == {"pending_fen": 0, "earned_fen": 0, "paid_fen": 990, "clawback_owed_fen": 990}
    assert [(x["order_id"], x["amount_fen"], x["owed_fen"], x["status"]) for x in account["clawbacks"]] == [
        (oid, 990, 990, "OWED")]
    assert [r["order_id"] for r in account["recent"]] == [oid]              # clawbacks are not commissions

    # Another dealer's sale: its commission is paid in full, the clawback stays owed.
    other, orec = order_at(stores, fake, "other-dealer", store=OTHER_DEALER_STORE, sub_mchid=YANGTZE_MCHID)
    assert orec.dealer_id == "dealer-yangtze"
    drive(c, fake, other, float(orec.paid_at) + 61, float(orec.commission_due_at) + DAY)
    assert load(other).status == "FINISHED" and fake.received(orec.transaction_id, "o_amy") == 990
    assert clawbacks(amy) == [(oid, "OWED", 990, 990, "dealer-shu")]
    assert [p.recovered_fen for p in state(other).operations[-1].parts] == [0]

    # The same dealer's next sale (3 units: 1485 commission): 990 of it is kept back.
    second, srec = order_at(stores, fake, "second", quantity=3)
    drive(c, fake, second, float(srec.paid_at) + 61, float(srec.commission_due_at) + DAY)
    assert load(second).status == "FINISHED"
    assert fake.received(srec.transaction_id, "o_amy") == 1485 - 990
    final = state(second).operations[-1]
    assert [(p.role, p.amount_fen, p.recovered_fen, p.result) for p in final.parts if p.role != "brand"] == [
        (f"promoter:{amy}", 495, 990, "SUCCESS")]
    assert clawbacks(amy) == [(oid, "RECOVERED", 990, 0, "dealer-shu")]
    assert commission(second).status == "PAID" and int(commission(second).amount_fen) == 1485
    assert booked(oid, "CLAWBACK") == [990] and booked(second, "CLAWBACK") == []
    (entry,) = [e for e in ledger(oid) if e.cause == "CLAWBACK"]
    assert (entry.debit, entry.credit) == ("dealer:dealer-shu", f"promoter:{amy}")
    assert breakdown(oid) == {"brand": 0, "commissions": 0, "dealer": -119, "refunded": PAID, "fee": 119,
                              "receivable": 0}
    second_paid = 3 * 9900
    split = breakdown(second, second_paid)
    assert split["commissions"] == 495 and split["dealer"] == fake.unfrozen[srec.transaction_id]
    # amy was paid 990 + 990 + 495 in cash: what her account says, net, with nothing owed.
    assert amounts(amy) == (0, 0, 990 + 990 + 495) and int(promoter_record(amy).clawback_owed_fen) == 0
    stores.tokens.clear()
    account = stores.get("/v1/me/promoter", who="amy").json
    assert account["amounts"]["clawback_owed_fen"] == 0 and account["amounts"]["paid_fen"] == 2475
    assert [(x["order_id"], x["owed_fen"], x["status"]) for x in account["clawbacks"]] == [(oid, 0, "RECOVERED")]


# --- 5. never recovered: written off after 90 days, once --------------------------------------

def test_a_clawback_never_recovered_is_written_off_after_90_days_and_only_once(c, stores, fake, bridged):
    amy, oid, _ = paid_commission_then_refunded(stores, fake, c)
    (cb,) = wiring.splits().clawbacks_of_promoter(amy, 10)
    write_off_at = float(cb.earn_due_at)

    def job(at):
        return earn_due_commissions(splits=wiring.splits(), now=at, alerts=wiring.alerts(), network=wiring.network(),
                                    orders=wiring.orders())

    assert job(write_off_at - 1)["written_off"] == 0                          # day 89.99: still owed
    assert clawbacks(amy) == [(oid, "OWED", 990, 990, "dealer-shu")]
    assert job(write_off_at) == {"earned": 0, "skipped": 0, "written_off": 1}
    (gone,) = wiring.splits().clawbacks_of_promoter(amy, 10)
    assert (gone.status, gone.pending_shard) == ("WRITTEN_OFF", None)
    assert int(promoter_record(amy).clawback_owed_fen) == 0 and amounts(amy) == (0, 0, 990)
    (alert_id,) = alerts_of("CLAWBACK_WRITTEN_OFF")
    found = wiring.alerts().get(alert_id)
    assert (found.order_id, found.dealer_id) == (oid, "dealer-shu")
    assert found.detail == {"written_off_fen": 990, "refund_id": cb.refund_id}
    assert job(write_off_at + DAY)["written_off"] == 0                        # not twice
    assert alerts_of("CLAWBACK_WRITTEN_OFF") == [alert_id] and int(promoter_record(amy).clawback_owed_fen) == 0
    stores.tokens.clear()
    account = stores.get("/v1/me/promoter", who="amy").json
    assert account["amounts"]["clawback_owed_fen"] == 0 and account["clawbacks"][0]["status"] == "WRITTEN_OFF"
    # A later sale of the same dealer keeps nothing back for it.
    second, srec = order_at(stores, fake, "after-write-off")
    drive(c, fake, second, float(srec.paid_at) + 61, float(srec.commission_due_at) + DAY)
    assert fake.received(srec.transaction_id, "o_amy") == 990 and booked(oid, "CLAWBACK") == []


# --- 6. UNWIND_SPLIT redelivered, or early ---------------------------------------------------

def test_unwind_split_is_recorded_once_and_waits_for_the_plan(c, stores, fake, bridged):
    oid, _ = order_at(stores, fake, "unplanned", plan=False)                  # PLAN_SPLIT not consumed yet
    refund = refund_all(stores, oid, units=1)                                 # unwinding first fails quietly
    assert stores.payments.refunds[refund["out_refund_no"]]["amount"] == 9900
    assert settle(refund["out_refund_no"], oid) == "SUCCESS"
    payload = {"order_id": oid, "refund_id": refund["refund_id"]}
    with pytest.raises(Internal):                                             # the outbox retries it
        on_unwind_split("ob-1", payload)
    assert load(oid) is None

    on_plan_split("ob", {"order_id": oid})
    before = load(oid)
    on_unwind_split("ob-1", payload)
    after = load(oid)
    assert int(after.version) == int(before.version) + 1
    for _ in range(2):                                                        # redelivered
        on_unwind_split("ob-1", payload)
        assert record_refund(oid, refund["refund_id"], c, wiring.now()) == "ALREADY_RECORDED"
    assert int(load(oid).version) == int(after.version)
    assert state(oid).refunds == (steps.RefundUnwind(refund["refund_id"], 9900, {SKU: 1}),)
    assert record_refund(oid, "rf_unknown", c, wiring.now()) == "NO_REFUND"
    assert booked(oid, "REFUND") == [9900]
    rules.check_invariant(ledger(oid), PAID)


# --- bugs found and fixed ----------------------------------------------------------------------

def test_two_final_splits_of_the_same_promoter_and_dealer_at_once_recover_a_clawback_once(c, stores, fake, bridged):
    amy, oid, _ = paid_commission_then_refunded(stores, fake, c)               # 990 owed on dealer-shu
    orders = [order_at(stores, fake, f"busy-{n}", quantity=3) for n in range(2)]   # 1485 commission each
    start = max(float(r.paid_at) for _, r in orders) + 61
    due_at = max(float(r.commission_due_at) for _, r in orders)
    for at in (start, start + 10, due_at, due_at + 10, due_at + 20):          # one job run for both plans
        run(c, fake, at)
    assert all(load(o).status == "FINISHED" for o, _ in orders)
    assert clawbacks(amy) == [(oid, "RECOVERED", 990, 0, "dealer-shu")]
    cash = sum(fake.received(r.transaction_id, "o_amy") for _, r in orders)
    kept = sorted(p.recovered_fen for o, _ in orders for p in state(o).operations[-1].parts if p.role != "brand")
    assert sum(kept) == 990 and cash == 2 * 1485 - 990                        # kept back once in all
    assert amounts(amy)[2] == 990 + cash                                      # paid_fen = what she got


def test_a_full_refund_by_amount_before_shipping_gives_every_unit_back_to_the_split(c, stores, fake, bridged):
    amy = with_promoter(stores)
    oid, record = order_at(stores, fake, "full-by-amount")
    t0 = float(record.paid_at)
    fake.now = to(t0 + 61)
    settle_order(oid, c, t0 + 61, only=lambda step: step.kind == "FIT")
    status, refund = ask(stores, oid, {"amount_fen": PAID, "reason": "changed my mind"}, key="amount")
    assert status == 201
    succeed(refund, oid)
    assert stores.get(f"/v1/orders/{oid}").json["status"] == "REFUNDED"
    drive(c, fake, oid, wiring.now(), float(record.commission_due_at) + DAY)
    assert load(oid).status == "FINISHED" and [o["kind"] for o in fake.operations] == ["UNFREEZE"]
    assert commission(oid).status == "CANCELLED" and amounts(amy) == (0, 0, 0)
    assert breakdown(oid)["receivable"] == 0 and alerts_of("SPLIT_FAILED") == []


def test_a_late_payment_refunded_without_a_plan_has_nothing_to_unwind_and_does_not_block_the_outbox():
    """A payment that reached a closed order (found by the nightly reconciliation, or a
    late notification) is refunded without ever being applied: its UNWIND_SPLIT must not
    fail forever (it held up every later outbox item of its stream shard)."""
    from types import SimpleNamespace

    from chalicelib.errors import Internal
    from chalicelib.services.settlement import record_refund

    refund = SimpleNamespace(order_id="od_late", amount_fen=9900, lines=[])
    never_paid = SimpleNamespace(paid_at=None)
    c = SimpleNamespace(refunds=SimpleNamespace(get=lambda _id: refund),
                        settlement=SimpleNamespace(load=lambda _id: None),
                        orders=SimpleNamespace(get=lambda _id: never_paid))
    assert record_refund("od_late", "rf_late_od_late", c, 0.0) == "NEVER_PLANNED"
    never_paid.paid_at = 1.0                       # paid here: the plan is only late, so wait for it
    with pytest.raises(Internal):
        record_refund("od_late", "rf_late_od_late", c, 0.0)
