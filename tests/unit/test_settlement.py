"""The settle-splits job (M9) on moto against a WeChat-like fake provider: a paid order's
split plan is carried out step by step — fitted to the provider's figures, the brand's
share once settled, the commissions and the unfreeze at the commission due date — and
every fen ends in the ledger once, whatever crashes, races, refusals or outages."""
from __future__ import annotations

import threading

import pytest

from chalicelib.domain import settlement as steps
from chalicelib.domain import splits as rules
from chalicelib.services import wiring
from chalicelib.services.settlement import RETRY_UNAVAILABLE_S, Collaborators, settle_due_splits
from chalicelib.services.splits import on_plan_split
from tests.helpers import FakeProfitSharing, ProcessKilled
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_promoters import customer_id, promoter
from tests.unit.test_scans import make_scene, scan
from tests.unit.test_split_planning import brand_settings

DAY = 86400
BRAND_MCHID = "1900000200"
BRAND_NAME = "Lumen Brand (Shenzhen) Co., Ltd."
PAID = 19800                     # 2 x LM-MS-WL at 9900
CAP = PAID * 3000 // 10000       # 5940: 30 %


# --- fixtures and helpers -----------------------------------------------------------------

@pytest.fixture
def stores(shop):  # noqa: F811
    make_scene("s.chunxi", "store-cd-chunxi")
    return shop


@pytest.fixture
def fake():
    return FakeProfitSharing(max_ratio_bps=3000, result_after_s=5)


@pytest.fixture
def c(stores, fake):
    return Collaborators(settlement=wiring.settlement(), splits=wiring.splits(), customers=wiring.customers(),
                         orders=wiring.orders(), network=wiring.network(), alerts=wiring.alerts(), provider=fake, refunds=wiring.refunds(),
                         brand_mchid=BRAND_MCHID, brand_legal_name=BRAND_NAME)


def with_promoter(shop, rate_bps=500):  # noqa: F811
    """amy promotes at 5 %; alice (who places the orders) arrives through amy's code."""
    brand_settings(shop, {"depth": 1, "default_rates_bps": [rate_bps]})
    scan(shop, {"scene": promoter(shop, "amy")}, who="alice")
    return customer_id(shop, "amy")


def planned(shop, fake, key, fee_fen=119, settled=False):  # noqa: F811
    """A paid order with its split plan, and its payment known to the fake provider."""
    oid = paid_order(shop, key)["order_id"]
    on_plan_split("ob", {"order_id": oid})
    record = wiring.settlement().load(oid)
    fake.payment(record.transaction_id, record.sub_mchid, PAID, fee_fen, float(record.paid_at), settled=settled)
    return oid, record


def run(c, fake, at):
    fake.now = at
    return settle_due_splits(c, at)


def load(oid):
    return wiring.settlement().load(oid)


def state(oid) -> steps.Settlement:
    r = load(oid)
    return steps.Settlement.from_json(r.order_id, float(r.paid_at), r.commission_due_at, steps.plan_from_json(r.plan),
                                      r.settlement, status=r.status, max_ratio_bps=int(r.max_ratio_bps))


def ops(oid):
    return [(op.out_order_no, op.kind, op.state) for op in state(oid).operations]


def ledger(oid):
    return [rules.LedgerEntry(oid, e.debit, e.credit, int(e.amount_fen), e.cause) for e in wiring.splits().ledger(oid)]


def booked(oid, cause):
    return sorted(e.amount_fen for e in ledger(oid) if e.cause == cause)


def drive(c, fake, oid, start, until, max_runs=40):
    """Run the job each time the plan is due, from ``start``, up to ``until``; the runs' times."""
    at, times = start, []
    for _ in range(max_runs):
        record = load(oid)
        if record.next_action_at is None or float(record.next_action_at) > until:
            return times
        at = max(at, float(record.next_action_at))
        run(c, fake, at)
        times.append(at)
    raise AssertionError(f"{oid} still due after {max_runs} runs: {ops(oid)}")


def commission(oid):
    (record,) = wiring.splits().commissions_of_order(oid)
    return wiring.splits().commission(record.promoter_id, record.commission_id)


def amounts(promoter_id):
    p = wiring.splits().promoter(promoter_id)
    return int(p.pending_fen or 0), int(p.earned_fen or 0), int(p.paid_fen or 0)


def alert(alert_id):
    return wiring.alerts().get(alert_id)


@pytest.fixture
def serialised_moto(monkeypatch):
    """DynamoDB runs each request atomically; moto does not lock. Serialise its
    item-level calls so two job runs in threads race like on DynamoDB, not inside moto."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "get_item", "query", "update_item", "delete_item", "transact_write_items", "scan"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


# --- the fake is WeChat-like (no DynamoDB needed) -------------------------------------------

def test_the_fake_provider_keeps_wechats_rules():
    from chalicelib.wechat.pay import (MERCHANT_ID, ProviderRefused, Receiver, SplitNotReady, SplitReceiver,
                                       SplitRefused)

    fake = FakeProfitSharing(max_ratio_bps=3000, result_after_s=5)
    fake.payment("4200000001", "1900001001", 10000, 60, paid_at=1000.0)
    brand = [SplitReceiver(MERCHANT_ID, BRAND_MCHID, 2000, "品牌货款分账")]
    fake.now = 1100
    with pytest.raises(SplitNotReady):                                # not settled
        fake.request_split("1900001001", "4200000001", "N1", brand, False)
    fake.settle("4200000001")
    assert fake.unsplit_amount("4200000001") == 9940
    assert fake.request_split("1900001001", "4200000001", "N1", brand, False).state == "PROCESSING"
    assert fake.request_split("1900001001", "4200000001", "N1", brand, False).state == "PROCESSING"
    assert fake.accepted == {"N1": 1}
    with pytest.raises(ProviderRefused) as other:                     # same number, other receivers
        fake.request_split("1900001001", "4200000001", "N1", [SplitReceiver(MERCHANT_ID, BRAND_MCHID, 1, "x")], False)
    assert other.value.provider_code == "PARAM_ERROR"
    with pytest.raises(SplitRefused):                                 # 2000 + 1001 > floor(10000 x 30 %)
        fake.request_split("1900001001", "4200000001", "N2", [SplitReceiver(MERCHANT_ID, BRAND_MCHID, 1001, "x")],
                           False)
    fake.now = 1105
    done = fake.query_split("1900001001", "4200000001", "N1")
    assert (done.state, done.receivers[0].result, done.receivers[0].fail_reason) == ("FINISHED", "CLOSED",
                                                                                    "NO_RELATION")
    fake.add_receiver("1900001001", Receiver(MERCHANT_ID, BRAND_MCHID, BRAND_NAME, "BRAND"))
    fake.request_split("1900001001", "4200000001", "N2", [SplitReceiver(MERCHANT_ID, BRAND_MCHID, 3000, "x")], False)
    fake.now = 1110
    assert fake.query_split("1900001001", "4200000001", "N2").receivers[0].result == "SUCCESS"
    assert fake.unsplit_amount("4200000001") == 6940 and fake.received("4200000001", BRAND_MCHID) == 3000
    fake.unfreeze("1900001001", "4200000001", "N3", "解冻")
    with pytest.raises(ProviderRefused):                              # closed to further splits
        fake.request_split("1900001001", "4200000001", "N4", [SplitReceiver(MERCHANT_ID, BRAND_MCHID, 1, "x")], False)
    fake.now = 1120
    assert fake.unsplit_amount("4200000001") == 0 and fake.unfrozen == {"4200000001": 6940}


# --- 1. the full cycle ------------------------------------------------------------------

def test_a_promoted_order_is_split_to_the_brand_once_settled_and_the_commission_paid_at_its_due_date(c, stores, fake):
    amy = with_promoter(stores)
    oid, record = planned(stores, fake, "full", fee_fen=120)
    t0, tid = float(record.paid_at), record.transaction_id
    due_at = float(record.commission_due_at)
    assert due_at == t0 + 25 * DAY and float(record.next_action_at) == t0 + 60 and record.due_shard
    plan = record.plan
    assert (plan["commission_fen"], plan["brand_split_fen"], plan["receivable_fen"], plan["fee_fen"]) == \
        (990, 4950, 10050, 119)

    assert run(c, fake, t0 + 30)["plans"] == 0                       # WeChat: not within a minute of payment

    # paid + 61 s: fitted to the provider's own fee, the brand's split asked for: not settled yet.
    assert run(c, fake, t0 + 61) == {"plans": 1, "steps": 2, "failed": 0}
    r = load(oid)
    assert r.plan["fee_fen"] == 120 and booked(oid, "FEE") == [120]  # total - unsplit as the provider reported
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "STORED")] and state(oid).operations[0].not_ready
    assert float(r.next_action_at) == t0 + 61 + steps.NOT_READY_FIRST_WAIT_S
    assert fake.accepted == {} and ("request_split", f"{oid}-S01") in fake.calls
    assert (r.status, booked(oid, "SPLIT")) == ("PLANNED", [])
    assert run(c, fake, t0 + 200)["plans"] == 0                      # waits: not due before its time

    # settled: the same number is asked again and accepted; polled: booked as the provider confirms.
    fake.settle(tid)
    run(c, fake, t0 + 361)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "PROCESSING")] and fake.accepted == {f"{oid}-S01": 1}
    assert fake.operations[0]["receivers"] == [("MERCHANT_ID", BRAND_MCHID, 4950)]
    assert fake.operations[0]["unfreeze_unsplit"] is False
    assert booked(oid, "SPLIT") == []                                # not before the result
    run(c, fake, t0 + 371)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE")] and booked(oid, "SPLIT") == [4950]
    assert float(load(oid).next_action_at) == due_at                 # now waits for the commission date
    assert commission(oid).status == "PENDING" and amounts(amy) == (990, 0, 0)

    assert run(c, fake, due_at - 1)["plans"] == 0
    # The commission due date: the final split, with the rest unfrozen.
    run(c, fake, due_at)
    assert ops(oid)[-1] == (f"{oid}-S02", "FINAL", "PROCESSING")
    final = fake.operations[-1]
    assert final["unfreeze_unsplit"] is True and final["receivers"] == [("PERSONAL_OPENID", "o_amy", 990)]
    assert commission(oid).status == "EARNED" and amounts(amy) == (0, 990, 0)   # earned, not paid yet
    assert booked(oid, "COMMISSION") == []
    run(c, fake, due_at + 10)
    paid = commission(oid)
    assert (paid.status, float(paid.paid_at)) == ("PAID", due_at + 10) and amounts(amy) == (0, 0, 990)

    r = load(oid)
    assert (r.status, r.due_shard, r.next_action_at) == ("FINISHED", None, None)
    assert fake.accepted == {f"{oid}-S01": 1, f"{oid}-S02": 1} and len(fake.operations) == 2
    breakdown = rules.check_invariant(ledger(oid), PAID)
    assert breakdown == {"brand": 4950, "commissions": 990, "dealer": PAID - 4950 - 990 - 120, "refunded": 0,
                         "fee": 120, "receivable": 10050}
    assert breakdown["dealer"] == fake.unfrozen[tid]                 # what WeChat gave the dealer back
    assert fake.received(tid, BRAND_MCHID) == 4950 and fake.received(tid, "o_amy") == 990
    assert run(c, fake, due_at + 3600)["plans"] == 0                 # finished: off the due index


# --- 2. no promoter: 30 % to the brand, the rest a receivable, then unfreeze --------------

def test_without_promoter_exactly_the_cap_goes_to_the_brand_and_the_rest_is_unfrozen(c, stores, fake):
    import json

    from chalicelib import auth

    token = auth.issue_backoffice_token("brand", "brand-lumen", wiring.now(), wiring.token_signing_key())
    patch = stores.client.http.patch("/v1/admin/products/LM-MS-WL", body=json.dumps({"cost_fen": 8415}),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert patch.status_code == 200, patch.body                     # cost 85 % of 9900
    oid, record = planned(stores, fake, "no-promoter", fee_fen=119, settled=True)
    t0, tid = float(record.paid_at), record.transaction_id
    assert record.commission_due_at is None

    drive(c, fake, oid, t0 + 61, t0 + DAY)
    assert [(o["kind"], o["unfreeze_unsplit"], o["receivers"]) for o in fake.operations] == [
        ("SPLIT", False, [("MERCHANT_ID", BRAND_MCHID, CAP)]), ("UNFREEZE", True, [("MERCHANT_ID", "1900001001",
                                                                                  PAID - 119 - CAP)])]
    assert CAP * 10000 == PAID * 3000                                # exactly 30 %
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE"), (f"{oid}-S02", "UNFREEZE", "DONE")]
    assert load(oid).status == "FINISHED" and load(oid).due_shard is None
    breakdown = rules.check_invariant(ledger(oid), PAID)
    assert breakdown["brand"] == CAP == fake.received(tid, BRAND_MCHID)
    assert breakdown["receivable"] == 2 * 8415 - CAP == PAID * 55 // 100   # 10890: 55 %
    assert (breakdown["fee"], breakdown["dealer"]) == (119, PAID - 119 - CAP)
    assert booked(oid, "RECEIVABLE") == [10890]                      # the planning memo, nothing closed twice


# --- 3. crashes ---------------------------------------------------------------------------

@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_each_split_request_converges_to_one_split_per_number(c, stores, fake, when):
    with_promoter(stores)
    oid, record = planned(stores, fake, f"crash-{when}", settled=True)
    t0, tid, due_at = float(record.paid_at), record.transaction_id, float(record.commission_due_at)

    fake.crash_once(when)                                           # the brand's split
    with pytest.raises(ProcessKilled):
        run(c, fake, t0 + 61)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "STORED")]          # stored before it was sent
    assert fake.accepted == ({} if when == "before" else {f"{oid}-S01": 1})
    assert float(load(oid).next_action_at) <= t0 + 61               # still due
    drive(c, fake, oid, t0 + 62, t0 + DAY)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE")] and booked(oid, "SPLIT") == [4950]

    fake.crash_once(when)                                           # the final split
    with pytest.raises(ProcessKilled):
        run(c, fake, due_at)
    assert ops(oid)[-1] == (f"{oid}-S02", "FINAL", "STORED")
    drive(c, fake, oid, due_at + 1, due_at + DAY)

    assert fake.accepted == {f"{oid}-S01": 1, f"{oid}-S02": 1}
    assert [o["kind"] for o in fake.operations] == ["SPLIT", "SPLIT"]
    assert fake.calls.count(("request_split", f"{oid}-S01")) == 2    # sent again after the crash, same number
    assert load(oid).status == "FINISHED"
    assert (booked(oid, "SPLIT"), booked(oid, "COMMISSION"), booked(oid, "FEE")) == ([4950], [990], [119])
    assert rules.check_invariant(ledger(oid), PAID)["dealer"] == fake.unfrozen[tid]
    assert commission(oid).status == "PAID"


# --- 4. two runs at once ------------------------------------------------------------------

def test_two_runs_at_once_make_one_operation_per_planned_split_and_book_it_once(c, stores, fake, serialised_moto):
    amy = with_promoter(stores)
    orders = [planned(stores, fake, f"race-{n}", settled=True) for n in range(2)]
    t0 = max(float(r.paid_at) for _, r in orders)
    due_at = max(float(r.commission_due_at) for _, r in orders)
    fake.delay_s = 0.02                                             # the provider takes a moment: runs overlap

    def together(at):
        barrier, results, errors = threading.Barrier(2), [], []

        def one():
            try:
                barrier.wait(timeout=10)
                results.append(settle_due_splits(c, at))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        fake.now = at
        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert errors == [] and len(results) == 2
        assert sum(r["failed"] for r in results) == 0, results     # the run that lost stops quietly
        return results

    for at in (t0 + 61, t0 + 71, t0 + 81, due_at, due_at + 10, due_at + 20):
        together(at)

    for oid, record in orders:
        assert load(oid).status == "FINISHED", ops(oid)
        assert fake.accepted[f"{oid}-S01"] == 1 and fake.accepted[f"{oid}-S02"] == 1
        assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE"), (f"{oid}-S02", "FINAL", "DONE")]
        assert (booked(oid, "SPLIT"), booked(oid, "COMMISSION"), booked(oid, "FEE")) == ([4950], [990], [119])
        rules.check_invariant(ledger(oid), PAID)
    assert len(fake.accepted) == 4 and sum(fake.accepted.values()) == 4 and len(fake.operations) == 4
    assert amounts(amy) == (0, 0, 2 * 990)


def test_a_run_that_loses_a_step_with_ledger_entries_to_another_run_stops_quietly(c, stores, fake):
    """Deterministic lost race: the plan's version check is not the transaction's first
    item when ledger entries go with it (PynamoDB sends puts before updates)."""
    from chalicelib.services.settlement import settle_order

    oid, record = planned(stores, fake, "lost-fit", settled=True)
    t0 = float(record.paid_at)
    # While this run asks for the unsplit amount, another run fits the plan (and goes on).
    fake.hooks["unsplit_amount"] = lambda: settle_order(oid, c, t0 + 61)
    assert run(c, fake, t0 + 61) == {"plans": 1, "steps": 0, "failed": 0}
    assert booked(oid, "FEE") == [119] and fake.accepted == {f"{oid}-S01": 1}


# --- 5. receivers the provider closed ------------------------------------------------------

def test_no_relation_once_re_adds_the_brand_and_asks_again_under_a_new_number(c, stores, fake):
    oid, record = planned(stores, fake, "no-relation", settled=True)
    t0, tid = float(record.paid_at), record.transaction_id
    fake.fail_once[BRAND_MCHID] = "NO_RELATION"

    drive(c, fake, oid, t0 + 61, t0 + DAY)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE"), (f"{oid}-S02", "BRAND", "DONE"),
                        (f"{oid}-S03", "UNFREEZE", "DONE")]
    first, second = state(oid).operations[:2]
    assert (first.parts[0].result, first.parts[0].fail_reason) == ("CLOSED", "NO_RELATION")
    assert second.parts[0].result == "SUCCESS" and second.parts[0].amount_fen == CAP
    brand_adds = [a for a in fake.added if a[2] == BRAND_MCHID]
    assert brand_adds == [(record.sub_mchid, "MERCHANT_ID", BRAND_MCHID)] * 2   # added, then added again
    assert fake.accepted == {f"{oid}-S01": 1, f"{oid}-S02": 1, f"{oid}-S03": 1}
    assert state(oid).repairs == {BRAND_MCHID: 1}
    assert booked(oid, "SPLIT") == [CAP] and fake.received(tid, BRAND_MCHID) == CAP
    assert load(oid).status == "FINISHED" and alert(f"SPLIT_FAILED-{oid}-brand") is None
    breakdown = rules.check_invariant(ledger(oid), PAID)
    assert breakdown["receivable"] == 15000 - CAP


def test_a_brand_receiver_refused_for_good_is_alerted_and_its_share_becomes_a_receivable(c, stores, fake):
    amy = with_promoter(stores)
    oid, record = planned(stores, fake, "high-risk", settled=True)
    t0, tid, due_at = float(record.paid_at), record.transaction_id, float(record.commission_due_at)
    fake.fail_always[BRAND_MCHID] = "RECEIVER_HIGH_RISK"

    drive(c, fake, oid, t0 + 61, t0 + DAY)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "DONE")] and state(oid).given_up == ("brand",)
    found = alert(f"SPLIT_FAILED-{oid}-brand")
    assert found is not None and (found.kind, found.order_id) == ("SPLIT_FAILED", oid)
    assert found.detail["reason"] == "RECEIVER_HIGH_RISK" and found.detail["out_order_no"] == f"{oid}-S01"
    assert found.dealer_id == "dealer-shu"
    assert float(load(oid).next_action_at) == due_at                 # the commission is still paid at its date

    drive(c, fake, oid, due_at, due_at + DAY)
    assert ops(oid)[1:] == [(f"{oid}-S02", "FINAL", "DONE")]
    assert fake.operations[-1]["receivers"] == [("PERSONAL_OPENID", "o_amy", 990)]   # no brand share in it
    assert load(oid).status == "FINISHED" and amounts(amy) == (0, 0, 990)
    breakdown = rules.check_invariant(ledger(oid), PAID)
    assert (breakdown["brand"], breakdown["receivable"], breakdown["commissions"]) == (0, 15000, 990)
    assert fake.received(tid, BRAND_MCHID) == 0 and breakdown["dealer"] == fake.unfrozen[tid]


def test_no_relation_every_time_is_repaired_three_times_then_given_up(c, stores, fake):
    oid, record = planned(stores, fake, "no-relation-always", settled=True)
    t0 = float(record.paid_at)
    fake.fail_always[BRAND_MCHID] = "NO_RELATION"

    drive(c, fake, oid, t0 + 61, t0 + DAY)
    kinds = [(op.kind, op.parts[0].fail_reason if op.parts else None) for op in state(oid).operations]
    assert kinds == [("BRAND", "NO_RELATION")] * (1 + steps.MAX_RELATION_REPAIRS) + [("UNFREEZE", None)]
    assert len([a for a in fake.added if a[2] == BRAND_MCHID]) == 1 + steps.MAX_RELATION_REPAIRS
    assert alert(f"SPLIT_FAILED-{oid}-brand").detail["reason"] == "NO_RELATION"
    assert rules.check_invariant(ledger(oid), PAID)["receivable"] == 15000


# --- 6. never settled -----------------------------------------------------------------------

def test_a_payment_never_settled_expires_on_day_28_with_the_brand_share_receivable_and_an_alert(c, stores, fake):
    amy = with_promoter(stores)
    oid, record = planned(stores, fake, "never-settled", fee_fen=119)
    t0 = float(record.paid_at)
    deadline = t0 + steps.DEADLINE_DAYS * DAY

    waits, at = [], t0 + 61
    for _ in range(8):                                              # backing off: 5 min, doubling, up to 6 h
        run(c, fake, at)
        nxt = float(load(oid).next_action_at)
        waits.append(nxt - at)
        at = nxt
    assert waits == [300, 600, 1200, 2400, 4800, 9600, 19200, 21600]
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "STORED")] and fake.accepted == {}

    run(c, fake, deadline - 1)                                      # day 27.99: still asking
    assert load(oid).status == "PLANNED" and float(load(oid).next_action_at) == deadline - 1 + 21600
    assert alert(f"SPLIT_DEADLINE_MISSED-{oid}") is None
    run(c, fake, deadline - 1 + 21600)                              # past day 28: stops
    r = load(oid)
    assert (r.status, r.due_shard, r.next_action_at) == ("EXPIRED", None, None)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "REFUSED")] and fake.accepted == {}
    breakdown = rules.check_invariant(ledger(oid), PAID)
    assert (breakdown["brand"], breakdown["receivable"], breakdown["fee"]) == (0, 15000, 119)
    found = alert(f"SPLIT_DEADLINE_MISSED-{oid}")
    assert found is not None and found.order_id == oid and found.kind == "SPLIT_DEADLINE_MISSED"
    assert found.detail["receivable_fen"] == 15000 and found.detail["unpaid_commission_fen"] == 990
    assert commission(oid).status == "PENDING" and amounts(amy)[2] == 0
    assert run(c, fake, deadline + DAY)["plans"] == 0


# --- 7. the provider away --------------------------------------------------------------------

def test_the_provider_not_answering_changes_nothing_and_the_plan_is_due_again_later(c, stores, fake):
    oid, record = planned(stores, fake, "away", settled=True)
    t0, tid = float(record.paid_at), record.transaction_id
    now = t0 + 61

    def away(api):
        """One run with ``api`` not answering: what changed, and when the plan is due again."""
        nonlocal now
        before, before_ledger, before_accepted = state(oid), ledger(oid), dict(fake.accepted)
        fake.unavailable[api] = 1
        assert run(c, fake, now)["failed"] == 0 and fake.unavailable[api] == 0
        assert float(load(oid).next_action_at) == now + RETRY_UNAVAILABLE_S
        assert run(c, fake, now + RETRY_UNAVAILABLE_S - 1)["plans"] == 0       # not due before then
        assert fake.accepted == before_accepted
        now += RETRY_UNAVAILABLE_S
        return before, state(oid), before_ledger

    # asking for the splittable amount or the max ratio (FIT): not fitted, no fee booked
    for api in ("unsplit_amount", "max_ratio"):
        before, after, before_ledger = away(api)
        assert after == before and not after.fitted and ledger(oid) == before_ledger
    # adding the brand as a receiver (REQUEST): fitted in this run, but no operation stored
    before, after, before_ledger = away("add_receiver")
    assert after.fitted and after.operations == () and booked(oid, "FEE") == [119]
    assert [e for e in ledger(oid) if e.cause != "FEE"] == before_ledger
    # the split request itself (SEND): stored, not sent, not "not ready"
    before, after, before_ledger = away("request_split")
    assert [(op.out_order_no, op.state, op.not_ready) for op in after.operations] == [(f"{oid}-S01", "STORED", False)]
    assert after.not_ready_count == 0 and ledger(oid) == before_ledger and fake.accepted == {}
    # accepted at the next run; then the result's query (POLL): still PROCESSING, nothing booked
    run(c, fake, now)
    assert ops(oid) == [(f"{oid}-S01", "BRAND", "PROCESSING")] and fake.accepted == {f"{oid}-S01": 1}
    now += steps.POLL_AFTER_S
    before, after, before_ledger = away("query_split")
    assert after == before and ledger(oid) == before_ledger and booked(oid, "SPLIT") == []

    drive(c, fake, oid, now, now + DAY)
    assert load(oid).status == "FINISHED"
    assert fake.accepted == {f"{oid}-S01": 1, f"{oid}-S02": 1}
    assert booked(oid, "SPLIT") == [CAP] and booked(oid, "FEE") == [119]
    rules.check_invariant(ledger(oid), PAID)
    assert fake.received(tid, BRAND_MCHID) == CAP


# --- alerts survive a crash ------------------------------------------------------------------

class _SettlementKilledAfterSaving:
    """The settlement repository, with the process killed right after the first step that
    writes an alert was saved (before anything else could happen)."""

    def __init__(self, settlement):
        self.settlement, self.killed = settlement, False

    def save(self, record, **changes):
        saved = self.settlement.save(record, **changes)
        if saved and changes.get("alerts") and not self.killed:
            self.killed = True
            raise ProcessKilled("killed right after the step was saved")
        return saved

    def __getattr__(self, name):
        return getattr(self.settlement, name)


def test_the_deadline_alert_is_written_with_the_expired_state_so_a_crash_cannot_lose_it(c, stores, fake):
    oid, record = planned(stores, fake, "expire-crash", fee_fen=119)
    t0 = float(record.paid_at)
    run(c, fake, t0 + 61)                                            # not settled: waits
    assert alert(f"SPLIT_DEADLINE_MISSED-{oid}") is None
    c.settlement = _SettlementKilledAfterSaving(c.settlement)
    with pytest.raises(ProcessKilled):
        run(c, fake, t0 + steps.DEADLINE_DAYS * DAY)
    assert load(oid).status == "EXPIRED"                             # off the due index ...
    found = alert(f"SPLIT_DEADLINE_MISSED-{oid}")                    # ... and the alert is there already
    assert found is not None and found.order_id == oid
