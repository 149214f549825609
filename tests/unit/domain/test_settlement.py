"""Settling a split plan with the provider (M9), and unwinding it after refunds (M10): the
pure rules of ``domain/settlement.py``.

The receivable memo is booked as the service books it: ``memo_entries`` after every state
change (``Settlement.from_json`` starts it at the plan's receivable, booked at planning)."""
import itertools
import json
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import settlement as s
from chalicelib.domain.money import allocate
from chalicelib.domain.settlement import (BRAND_ROLE, CLOSED, DONE, FAILED, PROCESSING, REFUSED, STORED, SUCCESS,
                                          Operation, Part, RefundUnwind, Settlement, Step, accepted, finished,
                                          fit_entries, memo_entries, next_step, not_ready, not_ready_wait_s,
                                          plan_from_json, readded, receivable_change, refit, refused,
                                          return_finished, unwind, with_operation, with_refund)
from chalicelib.domain.splits import (CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, CommissionShare, LedgerEntry, PlanLine,
                                      balances, check_invariant, plan_split)

DAY = 86_400
PAID_AT = 1_700_000_000.0
EARLIEST = PAID_AT + 60
DEADLINE = PAID_AT + 28 * DAY
DUE = PAID_AT + 25 * DAY
BRAND_MCHID = "1900000109"
RECEIVERS = {BRAND_ROLE: ("MERCHANT_ID", BRAND_MCHID),
             "promoter:p1": ("PERSONAL_OPENID", "o-p1"),
             "promoter:p2": ("PERSONAL_OPENID", "o-p2"),
             "promoter:p3": ("PERSONAL_OPENID", "o-p3")}
DEALER = "dealer:d1"


def line(sku="A", paid=100_000, cost=85_000, quantity=1, rates=()):
    return PlanLine(sku=sku, quantity=quantity, paid_fen=paid, unit_cost_fen=cost, rates_bps=tuple(rates))


def brand_part(amount):
    return Part(BRAND_ROLE, "MERCHANT_ID", BRAND_MCHID, amount)


def promoter_part(promoter_id, amount):
    return Part("promoter:" + promoter_id, "PERSONAL_OPENID", "o-" + promoter_id, amount)


def lines_of(*plan_lines):
    """The order's lines as the settlement keeps them: (sku, quantity, unit cost)."""
    return tuple((l.sku, l.quantity, l.unit_cost_fen) for l in plan_lines)


def state_of(plan, *, fitted=True, due=None, **kw):
    """A plan's settlement, its receivable memo booked at planning (as ``from_json`` has it)."""
    kw.setdefault("receivable_booked_fen", plan.receivable_fen)
    return Settlement("O1", PAID_AT, due, plan, fitted=fitted, **kw)


def planning_entries(plan):
    """What is booked when the order is paid and planned: the payment and the receivable memo."""
    return (LedgerEntry("O1", DEALER, "customer", plan.paid_fen, "PAYMENT"),) + receivable_change("O1",
                                                                                                plan.receivable_fen)


def refund_entry(amount):
    """What the refund itself books (the refund service, not the settlement)."""
    return LedgerEntry("O1", "refunded", DEALER, amount, "REFUND")


def memo_fen(entries):
    """What the entries move the memo by (+: the dealer owes the brand more)."""
    return balances(entries).get(CLAIM_ACCOUNT, 0)


def answer(op, *results):
    """The provider's answer for ``op``: per part, "SUCCESS" or the reason it was CLOSED."""
    return [(p.type, p.account, SUCCESS, None, f"D-{n}") if r == SUCCESS else (p.type, p.account, CLOSED, r, None)
            for n, (p, r) in enumerate(zip(op.parts, results))]


def request(state, now, number, kind):
    """The step must be a new operation of ``kind`` under ``number`` (a split's or a return's)."""
    step = next_step(state, now, number, RECEIVERS, number)
    assert step.kind == "REQUEST" and step.operation.kind == kind and step.operation.out_order_no == number, step
    return step.operation


def carry_out(state, op, now, *results):
    """Store, send (accepted), poll and finish ``op``."""
    state = accepted(with_operation(state, op), op.out_order_no, now)
    assert next_step(state, now + s.POLL_AFTER_S, "unused", RECEIVERS, "unused").kind == "POLL"
    return finished(state, op.out_order_no, answer(op, *results), "d1")


# --- worked examples ----------------------------------------------------------------------

def test_worked_example_without_promoters_walks_brand_unfreeze_close():
    estimate = plan_split([line()], (), 1, 3000, 99_400)
    assert (estimate.fee_fen, estimate.cap_fen, estimate.brand_split_fen, estimate.receivable_fen) \
        == (600, 30_000, 30_000, 55_000)
    state = state_of(estimate, fitted=False)
    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS) == Step("FIT")

    plan = refit(estimate, 99_400, 3000)
    assert plan == estimate                                  # the provider agrees with the estimate
    fit = fit_entries("O1", "d1", plan)
    assert fit == (LedgerEntry("O1", "provider_fee", DEALER, 600, "FEE"),)
    state, memo = memo_entries(replace(state, plan=plan, fitted=True))
    assert memo == () and state.receivable_booked_fen == 55_000   # ... so the memo booked at planning holds

    t = EARLIEST
    step = next_step(state, t, "O1-S01", RECEIVERS)
    assert step == Step("REQUEST", operation=Operation("O1-S01", "BRAND", (brand_part(30_000),), stored_at=t))
    assert step.operation.unfreeze_unsplit is False          # the commissions' room stays frozen
    state = with_operation(state, step.operation)
    assert state.brand_left_fen() == 0 and state.split_fen == 30_000 and state.in_flight_fen(BRAND_ROLE) == 30_000
    assert memo_entries(state)[1] == ()                      # the split under way is counted as the brand's
    state = accepted(state, "O1-S01", t)
    assert state.operations[0].state == PROCESSING and state.operations[0].poll_at == t + 10

    assert next_step(state, t + 9, "O1-S02", RECEIVERS) == Step("WAIT", at=t + 10)
    assert next_step(state, t + 10, "O1-S02", RECEIVERS) == Step("POLL", operation=state.operations[0])
    outcome = finished(state, "O1-S01", [("MERCHANT_ID", BRAND_MCHID, "SUCCESS", None, "3008450740201411110007820472")],
                       "d1")
    assert outcome.entries == (LedgerEntry("O1", "brand", DEALER, 30_000, "SPLIT"),)
    assert outcome.paid_promoters == {} and outcome.given_up == {}
    state = outcome.state
    done = state.operations[0]
    assert done.state == DONE and done.poll_at is None
    assert done.parts == (replace(brand_part(30_000), result=SUCCESS, detail_id="3008450740201411110007820472"),)
    assert state.succeeded(BRAND_ROLE) == 30_000 and state.split_fen == 30_000 and not state.unfrozen
    assert memo_entries(state)[1] == ()

    t += 10
    step = next_step(state, t, "O1-S02", RECEIVERS)      # nothing left and no commission: unfreeze
    assert step == Step("REQUEST", operation=Operation("O1-S02", "UNFREEZE", (), stored_at=t))
    state = accepted(with_operation(state, step.operation), "O1-S02", t)
    unfreeze = finished(state, "O1-S02", [], "d1")
    assert unfreeze.entries == () and unfreeze.given_up == {}
    state = unfreeze.state
    assert state.unfrozen
    assert next_step(state, t + 10, "O1-S03", RECEIVERS) == Step("CLOSE")
    assert state.receivable_target_fen() == 55_000
    assert memo_entries(state)[1] == () and memo_entries(replace(state, status=s.FINISHED))[1] == ()

    ledger = planning_entries(estimate) + fit + outcome.entries + unfreeze.entries
    assert check_invariant(ledger, 100_000) == {"brand": 30_000, "commissions": 0, "dealer": 69_400, "refunded": 0,
                                                "fee": 600, "receivable": 55_000}


def test_worked_example_with_a_5_percent_commission_waits_for_the_due_date_then_splits_final():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 99_400)
    assert (plan.brand_split_fen, plan.commission_fen, plan.receivable_fen) == (25_000, 5_000, 60_000)
    state = state_of(plan, due=DUE)

    op = request(state, EARLIEST, "O1-S01", "BRAND")
    assert op.parts == (brand_part(25_000),)
    outcome = carry_out(state, op, EARLIEST, SUCCESS)
    assert outcome.entries == (LedgerEntry("O1", "brand", DEALER, 25_000, "SPLIT"),)
    state = outcome.state

    assert state.commissions_left() == {"p1": 5_000}
    assert state.brand_room_fen() == 0                    # the cap is used up by the brand split + the commission
    assert next_step(state, EARLIEST + 10, "O1-S02", RECEIVERS) == Step("WAIT", at=DUE)
    assert next_step(state, DUE - 1, "O1-S02", RECEIVERS) == Step("WAIT", at=DUE)
    step = next_step(state, DUE, "O1-S02", RECEIVERS)
    assert step == Step("REQUEST", operation=Operation("O1-S02", "FINAL", (promoter_part("p1", 5_000),),
                                                       stored_at=DUE))
    assert step.operation.unfreeze_unsplit is True

    final = carry_out(state, step.operation, DUE, SUCCESS)
    assert final.entries == (LedgerEntry("O1", "promoter:p1", DEALER, 5_000, "COMMISSION"),)
    assert final.paid_promoters == {"p1": 5_000} and final.given_up == {}
    state = final.state
    assert state.unfrozen and state.commissions_left() == {}
    assert next_step(state, DUE + 20, "O1-S03", RECEIVERS) == Step("CLOSE")
    assert state.receivable_target_fen() == 60_000
    assert memo_entries(replace(state, status=s.FINISHED))[1] == ()

    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan) + outcome.entries + final.entries
    assert check_invariant(ledger, 100_000) == {"brand": 25_000, "commissions": 5_000, "dealer": 69_400,
                                                "refunded": 0, "fee": 600, "receivable": 60_000}


def test_the_final_split_of_two_promoters_books_one_commission_each_nearest_first():
    plan = plan_split([line("A", 100_000, 50_000, rates=[500, 300])], ("p1", "p2"), 2, 3000, 100_000)
    state = state_of(plan, due=DUE)
    state = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS).state
    op = request(state, DUE, "O1-S02", "FINAL")
    assert op.parts == (promoter_part("p1", 5_000), promoter_part("p2", 3_000))
    outcome = carry_out(state, op, DUE, SUCCESS, SUCCESS)
    assert outcome.entries == (LedgerEntry("O1", "promoter:p1", DEALER, 5_000, "COMMISSION"),
                               LedgerEntry("O1", "promoter:p2", DEALER, 3_000, "COMMISSION"))
    assert outcome.paid_promoters == {"p1": 5_000, "p2": 3_000}


# --- the order of next_step -----------------------------------------------------------------

PLAN = plan_split([line(rates=[500])], ("p1",), 1, 3000, 99_400)       # brand 25000, commission 5000


def test_a_processing_operation_comes_before_everything_else():
    stored = Operation("O1-S02", "FINAL", (promoter_part("p1", 5_000),), state=STORED, stored_at=EARLIEST)
    processing = Operation("O1-S01", "BRAND", (brand_part(25_000),), state=PROCESSING, stored_at=EARLIEST,
                           poll_at=EARLIEST + 10)
    state = state_of(PLAN, fitted=False, due=DUE, operations=(stored, processing), to_readd=(BRAND_ROLE,))
    assert next_step(state, EARLIEST + 10, "O1-S03", RECEIVERS) == Step("POLL", operation=processing)
    assert next_step(state, EARLIEST + 5, "O1-S03", RECEIVERS) == Step("WAIT", at=EARLIEST + 10)
    assert next_step(state, DEADLINE + DAY, "O1-S03", RECEIVERS) == Step("POLL", operation=processing)


def test_a_stored_operation_is_sent_again_under_its_own_number_after_a_crash():
    state = state_of(PLAN, due=DUE)
    op = request(state, EARLIEST, "O1-S01", "BRAND")
    state = with_operation(state, op)                       # stored, then the job crashed
    step = next_step(state, EARLIEST + 3600, "O1-S02", RECEIVERS)
    assert step == Step("SEND", operation=op)
    assert step.operation.out_order_no == "O1-S01"
    with pytest.raises(ValueError):
        with_operation(state, replace(op, stored_at=EARLIEST + 1))      # a number is never stored twice


def test_a_stored_operation_not_ready_waits_then_is_sent_again_and_expires_past_the_deadline():
    state = state_of(PLAN, due=DUE)
    op = request(state, EARLIEST, "O1-S01", "BRAND")
    state = not_ready(with_operation(state, op), "O1-S01", EARLIEST)
    assert state.operations[0].not_ready and state.operations[0].state == STORED
    assert state.not_ready_count == 1 and state.not_ready_until == EARLIEST + 300
    assert next_step(state, EARLIEST + 299, "O1-S02", RECEIVERS) == Step("WAIT", at=EARLIEST + 300)
    assert next_step(state, EARLIEST + 300, "O1-S02", RECEIVERS) == Step("SEND", operation=state.operations[0])
    state = not_ready(state, "O1-S01", EARLIEST + 300)
    assert state.not_ready_count == 2 and state.not_ready_until == EARLIEST + 300 + 600
    assert next_step(state, DEADLINE - 1, "O1-S02", RECEIVERS).kind == "SEND"
    assert next_step(state, DEADLINE, "O1-S02", RECEIVERS) == Step("EXPIRE")
    # accepted at last: the wait is over and the number is followed
    state = accepted(state, "O1-S01", EARLIEST + 900)
    assert state.not_ready_until is None and not state.operations[0].not_ready
    assert state.operations[0].state == PROCESSING


def test_nothing_is_split_within_a_minute_of_the_payment():
    state = state_of(PLAN, fitted=False, due=DUE)
    assert next_step(state, PAID_AT, "O1-S01", RECEIVERS) == Step("WAIT", at=EARLIEST)
    assert next_step(state, EARLIEST - 1, "O1-S01", RECEIVERS) == Step("WAIT", at=EARLIEST)
    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS) == Step("FIT")
    assert next_step(replace(state, fitted=True), EARLIEST - 1, "O1-S01", RECEIVERS) == Step("WAIT", at=EARLIEST)


def test_past_the_deadline_a_plan_expires():
    state = state_of(PLAN, fitted=False, due=DUE)
    assert state.deadline == DEADLINE
    assert next_step(state, DEADLINE - 1, "O1-S01", RECEIVERS) == Step("FIT")
    assert next_step(state, DEADLINE, "O1-S01", RECEIVERS) == Step("EXPIRE")
    assert next_step(replace(state, fitted=True), DEADLINE, "O1-S01", RECEIVERS) == Step("EXPIRE")


@pytest.mark.parametrize("status", [s.FINISHED, s.EXPIRED])
def test_a_finished_or_expired_plan_has_nothing_to_do(status):
    state = state_of(PLAN, fitted=False, due=DUE, status=status)     # not even fitted, the brand share unsplit
    assert state.brand_left_fen() == 0
    for now in (PAID_AT, EARLIEST, DUE, DEADLINE + DAY):
        assert next_step(state, now, "O1-S01", RECEIVERS, "O1-R01") == Step("NOTHING")
    refused_op = Operation("O1-S01", "BRAND", (brand_part(25_000),), state=REFUSED, stored_at=EARLIEST)
    assert next_step(replace(state, operations=(refused_op,)), DUE, "O1-S02", RECEIVERS, "O1-R01") == Step("NOTHING")


@pytest.mark.parametrize("status", [s.FINISHED, s.EXPIRED])
def test_a_finished_or_expired_plan_still_follows_what_is_under_way(status):
    """M10: a refund long after the end may need a return, so an operation under way is
    followed whatever the plan's status (a split cannot be under way then: CLOSE and
    EXPIRE come only when none is)."""
    split = Operation("O1-S01", "BRAND", (replace(brand_part(25_000), result=SUCCESS),), state=DONE)
    returning = Operation("O1-R01", "RETURN", (brand_part(25_000),), state=PROCESSING, stored_at=EARLIEST,
                          poll_at=EARLIEST + 10, from_out_order_no="O1-S01")
    state = state_of(PLAN, due=DUE, operations=(split, returning), status=status)
    assert next_step(state, EARLIEST + 10, "O1-S02", RECEIVERS, "O1-R02") == Step("POLL", operation=returning)
    assert next_step(state, EARLIEST + 5, "O1-S02", RECEIVERS, "O1-R02") == Step("WAIT", at=EARLIEST + 10)
    stored = replace(returning, state=STORED, poll_at=None)
    state = state_of(PLAN, due=DUE, operations=(split, stored), status=status)
    assert next_step(state, DEADLINE + DAY, "O1-S02", RECEIVERS, "O1-R02") == Step("SEND", operation=stored)


def test_readd_comes_before_close_and_close_before_the_deadline():
    unfreeze = Operation("O1-S01", "UNFREEZE", (), state=DONE)
    state = state_of(PLAN, due=DUE, operations=(unfreeze,), to_readd=(BRAND_ROLE,))
    assert next_step(state, DEADLINE + 1, "O1-S02", RECEIVERS) == Step("READD", roles=(BRAND_ROLE,))
    assert next_step(readded(state, (BRAND_ROLE,)), DEADLINE + 1, "O1-S02", RECEIVERS) == Step("CLOSE")


def test_no_more_than_max_operations_are_requested():
    refused_ops = tuple(Operation(f"O1-S{n:02d}", "UNFREEZE", (), state=REFUSED) for n in range(1, 50))
    state = state_of(PLAN, due=DUE, operations=refused_ops)
    assert len(state.operations) == s.MAX_OPERATIONS - 1
    step = next_step(state, EARLIEST, "O1-S50", RECEIVERS)
    assert step.kind == "REQUEST" and step.operation.parts == (brand_part(25_000),)
    state = with_operation(state, replace(step.operation, state=REFUSED))
    assert len(state.operations) == s.MAX_OPERATIONS
    assert next_step(state, EARLIEST, "O1-S51", RECEIVERS) == Step("EXPIRE")


# --- not ready: back-off ----------------------------------------------------------------------

def test_not_ready_backs_off_doubling_from_5_minutes_up_to_6_hours():
    assert [not_ready_wait_s(n) for n in range(1, 11)] == [300, 600, 1200, 2400, 4800, 9600, 19_200, 21_600,
                                                           21_600, 21_600]
    assert not_ready_wait_s(0) == 300
    assert not_ready_wait_s(1000) == 6 * 3600


def test_each_not_ready_answer_waits_longer():
    state = with_operation(state_of(PLAN, due=DUE), Operation("O1-S01", "BRAND", (brand_part(25_000),)))
    t = EARLIEST
    for count, wait in enumerate([300, 600, 1200, 2400, 4800, 9600, 19_200, 21_600, 21_600], start=1):
        state = not_ready(state, "O1-S01", t)
        assert state.not_ready_count == count and state.not_ready_until == t + wait
        assert next_step(state, t + wait - 1, "O1-S02", RECEIVERS) == Step("WAIT", at=t + wait)
        t += wait


# --- NO_RELATION and giving up --------------------------------------------------------------

def test_no_relation_on_the_brand_split_is_repaired_then_given_up_and_becomes_a_receivable():
    plan = plan_split([line()], (), 1, 3000, 99_400)        # brand split 30000, receivable 55000
    state = state_of(plan)
    t = EARLIEST
    for attempt in range(1, s.MAX_RELATION_REPAIRS + 1):
        number = f"O1-S{attempt:02d}"
        op = request(state, t, number, "BRAND")
        assert op.parts == (brand_part(30_000),)            # the same amount, under a new number
        outcome = carry_out(state, op, t, "NO_RELATION")
        assert outcome.entries == () and outcome.given_up == {} and outcome.paid_promoters == {}
        state = outcome.state
        assert state.to_readd == (BRAND_ROLE,) and state.repairs == {BRAND_MCHID: attempt}
        assert state.given_up == () and state.brand_left_fen() == 30_000
        assert memo_entries(state)[1] == ()                 # still to ask for: the memo stays at 55000
        assert next_step(state, t + 20, f"O1-S{attempt + 1:02d}", RECEIVERS) == Step("READD", roles=(BRAND_ROLE,))
        state = readded(state, (BRAND_ROLE,))
        assert state.to_readd == ()
        t += 20

    op = request(state, t, "O1-S04", "BRAND")
    assert op.parts == (brand_part(30_000),)
    outcome = carry_out(state, op, t, "NO_RELATION")
    assert outcome.entries == () and outcome.given_up == {BRAND_ROLE: "NO_RELATION"}
    state = outcome.state
    assert state.to_readd == () and state.given_up == (BRAND_ROLE,)
    assert state.repairs == {BRAND_MCHID: s.MAX_RELATION_REPAIRS}
    assert state.brand_left_fen() == 0 and state.brand_room_fen() == 0
    assert [op.out_order_no for op in state.operations] == ["O1-S01", "O1-S02", "O1-S03", "O1-S04"]
    assert state.receivable_target_fen() == 85_000
    state, given_up = memo_entries(state)                   # the step that gives it up books the receivable
    assert given_up == (LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 30_000, "RECEIVABLE"),)

    unfreeze = request(state, t + 20, "O1-S05", "UNFREEZE")
    state = carry_out(state, unfreeze, t + 20).state
    assert next_step(state, t + 40, "O1-S06", RECEIVERS) == Step("CLOSE")
    assert state.receivable_target_fen() == 85_000
    assert memo_entries(replace(state, status=s.FINISHED))[1] == ()
    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan) + given_up
    assert check_invariant(ledger, 100_000) == {"brand": 0, "commissions": 0, "dealer": 99_400, "refunded": 0,
                                                "fee": 600, "receivable": 85_000}


@pytest.mark.parametrize("reason", ["ACCOUNT_ABNORMAL", "RECEIVER_HIGH_RISK"])
def test_any_other_closed_brand_split_is_given_up_at_once(reason):
    state = state_of(PLAN, due=DUE)
    outcome = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, reason)
    assert outcome.given_up == {BRAND_ROLE: reason} and outcome.entries == ()
    assert outcome.state.to_readd == () and outcome.state.repairs == {}
    assert outcome.state.brand_left_fen() == 0


@pytest.mark.parametrize("reason", ["NO_RELATION", "ACCOUNT_ABNORMAL"])
def test_a_closed_promoter_in_the_final_split_is_given_up_at_once_without_a_commission(reason):
    state = state_of(PLAN, due=DUE)
    brand = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS)
    state = brand.state
    op = request(state, DUE, "O1-S02", "FINAL")
    outcome = carry_out(state, op, DUE, reason)
    assert outcome.entries == () and outcome.paid_promoters == {}
    assert outcome.given_up == {"promoter:p1": reason}
    state = outcome.state
    assert state.given_up == ("promoter:p1",) and state.to_readd == () and state.repairs == {}
    assert state.commissions_left() == {}
    assert next_step(state, DUE + 20, "O1-S03", RECEIVERS) == Step("CLOSE")      # no retry
    assert memo_entries(state)[1] == ()                     # booked 60000 at planning, still 60000
    ledger = planning_entries(PLAN) + fit_entries("O1", "d1", PLAN) + brand.entries
    assert check_invariant(ledger, 100_000) == {"brand": 25_000, "commissions": 0, "dealer": 74_400, "refunded": 0,
                                                "fee": 600, "receivable": 60_000}


def test_a_receiver_missing_from_the_answer_is_closed_and_given_up():
    state = state_of(PLAN, due=DUE)
    op = request(state, EARLIEST, "O1-S01", "BRAND")
    state = accepted(with_operation(state, op), "O1-S01", EARLIEST)
    outcome = finished(state, "O1-S01", [("MERCHANT_ID", "someone-else", SUCCESS, None, "D")], "d1")
    assert outcome.entries == () and outcome.given_up == {BRAND_ROLE: "MISSING_IN_ANSWER"}
    assert outcome.state.operations[0].parts[0].result == CLOSED


def test_a_refused_final_split_gives_up_its_promoters_and_the_freed_room_goes_to_the_brand():
    state = state_of(PLAN, due=DUE)
    state = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS).state
    op = request(state, DUE, "O1-S02", "FINAL")
    state, roles = refused(with_operation(state, op), "O1-S02")
    assert roles == ("promoter:p1",) and state.given_up == ("promoter:p1",)
    assert state.operations[1].state == REFUSED and state.split_fen == 25_000 and not state.unfrozen
    assert state.brand_room_fen() == 5_000
    op = request(state, DUE, "O1-S03", "FINAL")
    assert op.parts == (brand_part(5_000),)
    outcome = carry_out(state, op, DUE, SUCCESS)
    assert outcome.entries == (LedgerEntry("O1", "brand", DEALER, 5_000, "SPLIT"),)
    assert outcome.state.receivable_target_fen() == 55_000
    assert memo_entries(outcome.state)[1] == (                 # booked 60000 at planning
        LedgerEntry("O1", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, 5_000, "RECEIVABLE"),)


def test_a_refused_brand_split_is_given_up():
    state = state_of(PLAN, due=DUE)
    op = request(state, EARLIEST, "O1-S01", "BRAND")
    state, roles = refused(with_operation(state, op), "O1-S01")
    assert roles == (BRAND_ROLE,) and state.given_up == (BRAND_ROLE,) and state.brand_left_fen() == 0
    assert state.split_fen == 0
    assert next_step(state, EARLIEST, "O1-S02", RECEIVERS) == Step("WAIT", at=DUE)
    op = request(state, DUE, "O1-S02", "FINAL")
    assert op.parts == (promoter_part("p1", 5_000),)       # the brand is not asked for again


def test_state_changes_on_an_unknown_number_are_value_errors():
    state = state_of(PLAN, due=DUE)
    for change in (lambda: accepted(state, "nope", 0.0), lambda: not_ready(state, "nope", 0.0),
                   lambda: refused(state, "nope"), lambda: finished(state, "nope", [], "d1")):
        with pytest.raises(ValueError):
            change()


# --- refit --------------------------------------------------------------------------------------

TWO_LEVELS = [line("A", 10_000, 0, rates=[1000, 500]), line("B", 10_000, 0, rates=[1000, 500])]


def test_refit_takes_the_providers_fee_and_keeps_commissions_that_fit():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 99_400)
    fitted = refit(plan, 98_000, 3000)
    assert fitted.fee_fen == 2_000 and fitted.cap_fen == 30_000
    assert fitted.commissions == plan.commissions and fitted.commission_fen == 5_000
    assert fitted.brand_split_fen == 25_000 and fitted.receivable_fen == 60_000 and fitted.cut_commission_fen == 0
    assert fitted.dealer_remainder_fen == 100_000 - 2_000 - 25_000 - 5_000
    # the splittable amount below paid × max ratio lowers the cap; the brand takes what is left
    fitted = refit(plan, 20_000, 3000)
    assert (fitted.fee_fen, fitted.cap_fen, fitted.commission_fen, fitted.brand_split_fen, fitted.receivable_fen) \
        == (80_000, 20_000, 5_000, 15_000, 70_000)


def test_refit_with_the_same_figures_changes_nothing():
    plan = plan_split(TWO_LEVELS, ("p1", "p2"), 2, 3000, 19_900)
    assert refit(plan, 19_900, 3000) == plan


def test_refit_cuts_commissions_above_the_new_cap_deepest_level_first_then_line_order():
    plan = plan_split(TWO_LEVELS, ("p1", "p2"), 2, 3000, 20_000)
    assert plan.commission_fen == 3_000 and plan.cut_commission_fen == 0
    assert refit(plan, 20_000, 1500).commissions == plan.commissions       # cap 3000: fits exactly
    fitted = refit(plan, 20_000, 1200)                                      # cap 2400: 600 too much
    assert fitted.cap_fen == 2_400
    assert fitted.commissions == (CommissionShare(1, "p1", "A", 1000), CommissionShare(1, "p1", "B", 1000),
                                  CommissionShare(2, "p2", "B", 400))
    assert fitted.cut_commissions == (CommissionShare(2, "p2", "A", 500), CommissionShare(2, "p2", "B", 100))
    assert fitted.commission_fen == 2_400 and fitted.cut_commission_fen == 600
    assert fitted.brand_split_fen == 0 and fitted.receivable_fen == 0
    # a cap below the level-1 commissions: level 2 is cut entirely, then level 1 line by line
    fitted = refit(plan, 20_000, 700)                                       # cap 1400
    assert fitted.commissions == (CommissionShare(1, "p1", "A", 400), CommissionShare(1, "p1", "B", 1000))
    assert fitted.cut_commission_fen == 1_600 and fitted.commission_fen == 1_400
    assert fitted.commissions_by_promoter() == {"p1": 1_400}


def test_refit_grows_the_cut_by_exactly_what_it_cuts():
    plan = plan_split(TWO_LEVELS, ("p1", "p2"), 2, 1400, 20_000)            # cap 2800: 200 cut at planning
    assert plan.cut_commission_fen == 200 and plan.commission_fen == 2_800
    fitted = refit(plan, 20_000, 1200)                                      # cap 2400: 400 more
    assert fitted.commission_fen == 2_400
    assert fitted.cut_commission_fen == plan.cut_commission_fen + 400 == 600
    assert sum(c.amount_fen for c in fitted.cut_commissions) == fitted.cut_commission_fen


def test_refit_of_a_plan_already_cut_lists_each_cut_share_once():
    plan = plan_split(TWO_LEVELS, ("p1", "p2"), 2, 1400, 20_000)            # 200 of level 2, line A, cut
    fitted = refit(plan, 20_000, 1200)                                      # 300 more of it, and 100 of B
    assert fitted.cut_commission_fen == 600                                 # the total is right ...
    assert fitted.cut_commissions == (CommissionShare(2, "p2", "A", 500), CommissionShare(2, "p2", "B", 100))


def test_refit_brand_split_is_the_share_within_the_cap_left_by_the_commissions():
    plan = plan_split([line("A", 100_000, 20_000, rates=[1000])], ("p1",), 1, 3000, 100_000)
    assert plan.brand_split_fen == 20_000                                   # the share fits entirely
    fitted = refit(plan, 100_000, 2500)                                     # cap 25000, commission 10000
    assert fitted.brand_split_fen == 15_000 == min(20_000, 25_000 - 10_000)
    assert fitted.receivable_fen == 5_000 and fitted.dealer_remainder_fen == 100_000 - 15_000 - 10_000


@pytest.mark.parametrize("splittable, max_ratio", [(100_001, 3000), (-1, 3000), (99_000.0, 3000), (True, 3000),
                                                   (99_000, -1), (99_000, 10_001), (99_000, 3000.0)])
def test_refit_rejects_nonsense_figures(splittable, max_ratio):
    with pytest.raises(ValueError):
        refit(PLAN, splittable, max_ratio)


def test_fit_entries_book_the_fee_and_the_memo_follows_the_receivable_either_way():
    estimate = plan_split([line()], (), 1, 3000, 99_400)                     # receivable 55000
    lower = refit(estimate, 99_000, 2000)                                   # cap 20000: receivable 65000
    assert fit_entries("O1", "d1", lower) == (LedgerEntry("O1", "provider_fee", DEALER, 1_000, "FEE"),)
    state = state_of(estimate, fitted=False, lines=lines_of(line()), max_ratio_bps=3000)
    fitted, memo = memo_entries(replace(state, plan=lower, fitted=True, max_ratio_bps=2000))
    assert memo == (LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 10_000, "RECEIVABLE"),)
    assert fitted.receivable_booked_fen == 65_000 and memo_entries(fitted) == (fitted, ())   # booked once

    estimate = plan_split([line()], (), 1, 2000, 99_400)                     # receivable 65000
    higher = refit(estimate, 100_000, 3000)                                 # no fee; receivable 55000
    assert fit_entries("O1", "d1", higher) == ()
    state = state_of(estimate, fitted=False, lines=lines_of(line()), max_ratio_bps=2000)
    assert memo_entries(state)[1] == ()                                     # the plan's memo, as booked
    _, memo = memo_entries(replace(state, plan=higher, fitted=True, max_ratio_bps=3000))
    assert memo == (LedgerEntry("O1", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, 10_000, "RECEIVABLE"),)
    ledger = planning_entries(estimate) + memo + (LedgerEntry("O1", "brand", DEALER, 30_000, "SPLIT"),)
    assert check_invariant(ledger, 100_000)["receivable"] == 55_000


def test_receivable_change_and_memo_entries_by_sign():
    assert receivable_change("O1", 0) == ()
    assert receivable_change("O1", 7) == (LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 7, "RECEIVABLE"),)
    assert receivable_change("O1", -7) == (LedgerEntry("O1", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, 7, "RECEIVABLE"),)
    state = state_of(PLAN)                              # booked 60000; the brand split still to ask for counts
    assert state.receivable_booked_fen == 60_000 and memo_entries(state) == (state, ())
    ended = replace(state, status=s.EXPIRED)            # nothing split, nothing more will be: target = the share
    after, memo = memo_entries(ended)
    assert memo == receivable_change("O1", 25_000) and after.receivable_booked_fen == 85_000
    assert memo_entries(after) == (after, ())
    assert memo_entries(replace(ended, receivable_booked_fen=90_000))[1] == receivable_change("O1", -5_000)


# --- refunds (M10): worked examples -----------------------------------------------------------

TWO_UNITS = line("A", 100_000, 42_500, quantity=2, rates=[500])       # cost 85 %, 5 % to p1, two units


def brand_split_done():
    """Cost 85 %, cap 30 %, no promoter: the brand's split of 30000 is done (memo 55000)."""
    plan = plan_split([line()], (), 1, 3000, 99_400)
    state = state_of(plan, lines=lines_of(line()), max_ratio_bps=3000)
    outcome = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS)
    state, memo = memo_entries(outcome.state)
    assert memo == ()
    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan) + outcome.entries
    assert check_invariant(ledger, 100_000) == {"brand": 30_000, "commissions": 0, "dealer": 69_400, "refunded": 0,
                                                "fee": 600, "receivable": 55_000}
    return state, ledger


def closed(state, t):
    """Nothing more to split: unfreeze, then CLOSE (as the service ends it)."""
    state = carry_out(state, request(state, t, "O1-S02", "UNFREEZE"), t).state
    assert next_step(state, t + 20, "O1-S03", RECEIVERS, "O1-R01") == Step("CLOSE")
    state, memo = memo_entries(replace(state, status=s.FINISHED))
    assert memo == ()
    return state


def closed_after(state, t):
    """CLOSE, on a plan already unfrozen."""
    assert next_step(state, t, "O1-S09", RECEIVERS, "O1-R09") == Step("CLOSE")
    return replace(state, status=s.FINISHED)


def full_refund_to_the_return(state, ledger, t):
    """A full refund after the brand's split: UNWIND, then the return of the brand's 30000,
    stored; the memo follows at every step."""
    refund = RefundUnwind("RF1", 100_000, {"A": 1})
    state = with_refund(state, refund)
    assert with_refund(state, refund) is state                          # redelivered: recorded once
    assert (state.brand_share_fen(), state.cap_fen(), state.brand_split_target_fen()) == (0, 0, 0)
    assert state.return_needed_fen() == 30_000
    state, memo = memo_entries(state)
    ledger += (refund_entry(100_000),) + memo                           # the REFUND entry: the refund's own
    check_invariant(ledger, 100_000)
    assert next_step(state, t, "O1-S02", RECEIVERS, "O1-R01") == Step("UNWIND", refund=refund)
    state, cancelled, clawed = unwind(state, "RF1")
    assert (cancelled, clawed, state.unwound) == ({}, {}, ("RF1",))
    state, memo = memo_entries(state)
    ledger += memo
    step = next_step(state, t, "O1-S02", RECEIVERS, "O1-R01")
    assert step == Step("REQUEST", operation=Operation("O1-R01", "RETURN", (brand_part(30_000),), stored_at=t,
                                                       from_out_order_no="O1-S01"))
    state = with_operation(state, step.operation)
    assert state.returning_fen == 30_000 and state.split_fen == 30_000      # a return gives no room back
    assert state.return_needed_fen() == 0 and state.receivable_target_fen() == 0
    state, memo = memo_entries(state)
    ledger += memo
    assert memo_fen(ledger) == 0
    assert check_invariant(ledger, 100_000)["receivable"] == 0          # the 55000 receivable is cancelled
    assert next_step(state, t, "O1-S02", RECEIVERS, "O1-R02") == Step("SEND", operation=step.operation)
    return state, ledger


def test_refund_a_full_refund_after_the_brand_split_cancels_the_receivable_and_returns_the_split():
    """Rule 6's example: cost 85 %, cap 30 %: a full refund cancels the 55 % receivable and
    returns the 30 % split."""
    state, ledger = brand_split_done()
    booked = memo_fen(ledger)
    t = EARLIEST + 20
    state, ledger = full_refund_to_the_return(state, ledger, t)
    assert memo_fen(ledger) - booked == -55_000
    state, entries = return_finished(state, "O1-R01", SUCCESS, None, "d1")
    assert entries == (LedgerEntry("O1", DEALER, "brand", 30_000, "RETURN"),)
    assert state.operations[-1].state == DONE and state.operations[-1].parts[0].result == SUCCESS
    state, memo = memo_entries(state)
    assert memo == ()
    ledger += entries
    assert [e.cause for e in ledger if e.cause != "RECEIVABLE"] == ["PAYMENT", "FEE", "SPLIT", "REFUND", "RETURN"]
    # the dealer bears the fee it paid on the payment (corrected from the bill in M13)
    assert check_invariant(ledger, 100_000) == {"brand": 0, "commissions": 0, "dealer": -600, "refunded": 100_000,
                                                "fee": 600, "receivable": 0}
    assert (state.brand_net_fen(), state.returned(), state.return_needed_fen()) == (0, 30_000, 0)
    # nothing more to split: the rest is unfrozen, and no second return
    assert request(state, t, "O1-S02", "UNFREEZE").parts == ()


@pytest.mark.parametrize("after_close", [False, True])
def test_refund_a_return_that_failed_leaves_the_brand_owing_the_dealer_and_is_not_retried(after_close):
    state, ledger = brand_split_done()
    t = EARLIEST + 20
    if after_close:                                          # returns come before NOTHING: a FINISHED plan returns
        state = closed(state, t)
    state, ledger = full_refund_to_the_return(state, ledger, t)
    state, entries = return_finished(state, "O1-R01", FAILED, "NO_BALANCE", "d1")
    assert entries == ()                                     # nothing moved
    assert state.operations[-1].parts[0].result == FAILED and state.operations[-1].parts[0].fail_reason == "NO_BALANCE"
    state, memo = memo_entries(state)
    assert memo == receivable_change("O1", -30_000)          # the brand owes the dealer what it kept
    ledger += memo
    assert check_invariant(ledger, 100_000) == {"brand": 30_000, "commissions": 0, "dealer": -30_600,
                                                "refunded": 100_000, "fee": 600, "receivable": -30_000}
    assert state.return_needed_fen() == 0 and state.returned(DONE, FAILED) == 30_000
    step = next_step(state, t + 30, "O1-S02", RECEIVERS, "O1-R02")
    if after_close:
        assert step == Step("NOTHING")
    else:                                                   # not another RETURN: the split ends, then CLOSE
        assert step.kind == "REQUEST" and step.operation.kind == "UNFREEZE"
        state = carry_out(state, step.operation, t + 30).state
        assert next_step(state, t + 60, "O1-S03", RECEIVERS, "O1-R02") == Step("CLOSE")
        assert memo_entries(replace(state, status=s.FINISHED))[1] == ()


def test_refund_of_some_units_before_any_split_shrinks_the_brand_split_the_memo_and_the_commissions():
    plan = plan_split([TWO_UNITS], ("p1",), 1, 3000, 99_400)
    assert (plan.brand_split_fen, plan.commission_fen, plan.receivable_fen) == (25_000, 5_000, 60_000)
    state = state_of(plan, due=DUE, lines=lines_of(TWO_UNITS), max_ratio_bps=3000)
    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan)
    refund = RefundUnwind("RF1", 50_000, {"A": 1})
    state = with_refund(state, refund)
    assert state.brand_share_fen() == 42_500 and state.commissions_due() == {"p1": 2_500}
    assert state.cap_fen() == 15_000 and state.brand_split_target_fen() == 12_500 == 15_000 - 2_500
    assert state.receivable_target_fen() == 30_000
    state, memo = memo_entries(state)
    assert memo == receivable_change("O1", -30_000)
    ledger += (refund_entry(50_000),) + memo
    check_invariant(ledger, 100_000)

    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01") == Step("UNWIND", refund=refund)
    state, cancelled, clawed = unwind(state, "RF1")
    assert cancelled == {"p1": 2_500} and clawed == {}       # nothing paid yet: cancelled
    assert state.return_needed_fen() == 0
    op = request(state, EARLIEST, "O1-S01", "BRAND")        # no return: the brand got nothing yet
    assert op.parts == (brand_part(12_500),)
    brand = carry_out(state, op, EARLIEST, SUCCESS)
    state, memo = memo_entries(brand.state)
    assert memo == ()
    final = request(state, DUE, "O1-S02", "FINAL")
    assert final.parts == (promoter_part("p1", 2_500),)     # the room is used up: no brand part
    final = carry_out(state, final, DUE, SUCCESS)
    state, memo = memo_entries(final.state)
    assert memo == () and final.paid_promoters == {"p1": 2_500}
    assert next_step(state, DUE + 20, "O1-S03", RECEIVERS, "O1-R01") == Step("CLOSE")
    assert not any(o.kind == "RETURN" for o in state.operations)
    ledger += brand.entries + final.entries
    assert check_invariant(ledger, 100_000) == {"brand": 12_500, "commissions": 2_500, "dealer": 34_400,
                                                "refunded": 50_000, "fee": 600, "receivable": 30_000}


def test_refund_after_a_paid_commission_claws_back_the_refunded_units_commission():
    plan = plan_split([TWO_UNITS], ("p1",), 1, 3000, 99_400)
    state = state_of(plan, due=DUE, lines=lines_of(TWO_UNITS), max_ratio_bps=3000)
    brand = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS)
    final = carry_out(brand.state, request(brand.state, DUE, "O1-S02", "FINAL"), DUE, SUCCESS)
    assert final.paid_promoters == {"p1": 5_000}
    state = final.state
    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan) + brand.entries + final.entries

    state = with_refund(state, RefundUnwind("RF1", 50_000, {"A": 1}))
    state, memo = memo_entries(state)
    ledger += (refund_entry(50_000),) + memo
    assert next_step(state, DUE + 20, "O1-S03", RECEIVERS, "O1-R01").kind == "UNWIND"
    state, cancelled, clawed = unwind(state, "RF1")
    assert cancelled == {} and clawed == {"p1": 2_500}       # paid: clawed back, the refunded unit's commission
    assert state.commissions_due() == {"p1": 2_500}
    # the brand got 25000, less than its share of the unit kept (42500): no return, the memo shrinks
    assert state.return_needed_fen() == 0 and state.receivable_target_fen() == 17_500
    state, memo = memo_entries(state)
    assert memo == ()                                        # booked when the refund was recorded
    assert next_step(state, DUE + 20, "O1-S03", RECEIVERS, "O1-R01") == Step("CLOSE")
    # the clawback is booked (CLAWBACK) when recovered from a later commission, not here
    assert check_invariant(ledger, 100_000) == {"brand": 25_000, "commissions": 5_000, "dealer": 19_400,
                                                "refunded": 50_000, "fee": 600, "receivable": 17_500}
    # the other unit too: the rest is clawed back; cancelled + clawed back + still due = planned
    state = closed_after(state, DUE + 40)
    state = with_refund(state, RefundUnwind("RF2", 50_000, {"A": 1}))
    state, _, clawed = unwind(state, "RF2")
    assert clawed == {"p1": 2_500} and state.commissions_due() == {"p1": 0}
    assert state.return_needed_fen() == 25_000               # now the brand holds more than its share (0)


def test_refund_by_amount_only_lowers_the_cap_and_nothing_else():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 99_400)
    state = state_of(plan, lines=lines_of(line(rates=[500])), max_ratio_bps=3000)
    assert state.cap_fen() == plan.cap_fen == 30_000
    refund = RefundUnwind("RF1", 10_000)
    state = with_refund(state, refund)
    assert state.cap_fen() == 27_000 == (100_000 - 10_000) * 3000 // 10_000
    assert state.brand_share_fen() == 85_000 and state.commissions_due() == {"p1": 5_000}
    assert state.brand_split_target_fen() == 22_000 and state.receivable_target_fen() == 63_000
    assert memo_entries(state)[1] == receivable_change("O1", 3_000)
    _, cancelled, clawed = unwind(state, "RF1")
    assert cancelled == clawed == {}                         # no unit went back: no commission goes
    # the splittable side of the cap: what is kept less the fee
    state = with_refund(state, RefundUnwind("RF2", 89_000))  # 1000 kept: min(300, 1000 - 600)
    assert state.cap_fen() == 300 and state.brand_split_target_fen() == 0
    state = with_refund(state, RefundUnwind("RF3", 700))     # 300 kept, less than the fee
    assert state.cap_fen() == 0
    # a state that never learnt a max ratio keeps the plan's cap
    assert replace(state, max_ratio_bps=None).cap_fen() == plan.cap_fen


def test_refunds_are_unwound_in_order_once_each_before_anything_else_is_asked():
    plan = plan_split([TWO_UNITS], ("p1",), 1, 3000, 99_400)
    state = state_of(plan, due=DUE, lines=lines_of(TWO_UNITS), max_ratio_bps=3000)
    first, second = RefundUnwind("RF1", 1_000), RefundUnwind("RF2", 50_000, {"A": 1})
    state = with_refund(with_refund(state, first), second)
    assert state.refunds == (first, second) and state.refunded_fen == 51_000
    assert with_refund(state, RefundUnwind("RF1", 99, {"A": 2})) is state      # by id: a redelivery
    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01") == Step("UNWIND", refund=first)
    state, _, _ = unwind(state, "RF1")
    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01") == Step("UNWIND", refund=second)
    state, cancelled, _ = unwind(state, "RF2")
    assert cancelled == {"p1": 2_500}
    assert next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01").operation.kind == "BRAND"
    # a split under way is followed first; the unwind waits for it
    processing = Operation("O1-S01", "BRAND", (brand_part(100),), state=PROCESSING, poll_at=EARLIEST + 10)
    waiting = with_refund(replace(state, operations=(processing,)), RefundUnwind("RF3", 1))
    assert next_step(waiting, EARLIEST + 10, "O1-S02", RECEIVERS, "O1-R01") == Step("POLL", operation=processing)


def test_commissions_due_keep_the_floor_of_the_units_kept():
    lines = [line("A", 1_000, 0, quantity=3, rates=[1000, 1000]), line("B", 2_000, 0, rates=[500])]
    plan = plan_split(lines, ("p1", "p2"), 2, 3000, 3_000)
    assert plan.commissions_by_promoter() == {"p1": 200, "p2": 100}        # A: 100 + 100, B: 100 (level 1)
    state = state_of(plan, lines=lines_of(*lines), max_ratio_bps=3000)
    one = RefundUnwind("RF1", 333, {"A": 1})
    assert state.commissions_due((one,)) == {"p1": 66 + 100, "p2": 66}     # floor(100 × 2 / 3) per share
    assert state.commissions_due() == {"p1": 200, "p2": 100}               # no refund recorded yet
    state = with_refund(state, one)
    _, cancelled, clawed = unwind(state, "RF1")
    assert cancelled == {"p1": 34, "p2": 34} and clawed == {}              # the promoter loses the rounding


def test_a_final_split_keeping_back_a_commission_for_a_clawback_counts_it_paid():
    """A promoter's part may be kept back (wholly: 0 fen, not sent) to recover a clawback
    the promoter owes on another sale: it counts as paid, only what was sent is booked."""
    a = line("A", 100_000, 50_000, rates=[500, 300])
    plan = plan_split([a], ("p1", "p2"), 2, 3000, 100_000)
    state = state_of(plan, due=DUE, lines=lines_of(a), max_ratio_bps=3000)
    state = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS).state
    op = request(state, DUE, "O1-S02", "FINAL")
    op = replace(op, parts=(replace(op.parts[0], amount_fen=0, recovered_fen=5_000),
                            replace(op.parts[1], amount_fen=1_000, recovered_fen=2_000)))
    state = accepted(with_operation(state, op), "O1-S02", DUE)
    outcome = finished(state, "O1-S02", [("PERSONAL_OPENID", "o-p2", SUCCESS, None, "D1")], "d1")
    assert outcome.entries == (LedgerEntry("O1", "promoter:p2", DEALER, 1_000, "COMMISSION"),)
    assert outcome.paid_promoters == {"p1": 5_000, "p2": 3_000} and outcome.recovered == {"p1": 5_000, "p2": 2_000}
    assert outcome.given_up == {} and all(p.result == SUCCESS for p in outcome.state.operations[-1].parts)
    # a part kept back in part and closed is given up: nothing recovered, nothing paid
    outcome = finished(state, "O1-S02", [("PERSONAL_OPENID", "o-p2", CLOSED, "ACCOUNT_ABNORMAL", None)], "d1")
    assert outcome.paid_promoters == {"p1": 5_000} and outcome.recovered == {"p1": 5_000}
    assert outcome.given_up == {"promoter:p2": "ACCOUNT_ABNORMAL"}
    # a refund afterwards claws back from what was settled, the part kept back included
    state = with_refund(outcome.state, RefundUnwind("RF1", 100_000, {"A": 1}))
    _, cancelled, clawed = unwind(state, "RF1")
    assert clawed == {"p1": 5_000} and cancelled == {"p2": 3_000}


# --- refunds (M10): bugs found and fixed ---------------------------------------------------------

@pytest.mark.parametrize("refund", [RefundUnwind("RF1", 50_000),                              # by amount
                                    RefundUnwind("RF1", 50_000, {"B": 1})])                   # the costly line
def test_a_final_split_after_a_refund_never_asks_more_than_the_lowered_cap(refund):
    lines = [line("A", 50_000, 0, rates=[1000]), line("B", 50_000, 25_000)]
    plan = plan_split(lines, ("p1",), 1, 3000, 100_000)                    # cap 30000: commission 5000, brand 25000
    state = state_of(plan, due=DUE, lines=lines_of(*lines), max_ratio_bps=3000)
    state = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS).state
    state = with_refund(state, refund)
    state, _, _ = unwind(state, "RF1")
    if state.return_needed_fen():                                          # the brand gives its 25000 back first
        op = request(state, EARLIEST + 20, "O1-R01", "RETURN")
        state, _ = return_finished(with_operation(state, op), "O1-R01", SUCCESS, None, "d1")
    assert state.cap_fen() == 15_000 and state.split_fen == 25_000 and state.commissions_due() == {"p1": 5_000}
    step = next_step(state, DUE, "O1-S02", RECEIVERS, "O1-R02")
    assert step.kind == "REQUEST" and within_cap(state, step.operation)   # here: nothing more fits


def test_a_refund_after_the_brand_split_never_says_the_brand_owes_before_a_return_failed():
    state, _ = brand_split_done()
    state = with_refund(state, RefundUnwind("RF1", 100_000, {"A": 1}))
    assert state.receivable_target_fen() == 0                             # the return is still to ask for
    assert memo_entries(state)[1] == receivable_change("O1", -55_000)      # one entry: the receivable cancelled


def test_commissions_cancelled_before_a_cutting_fit_still_add_up_to_what_is_planned():
    a = line("A", 10_000, 0, quantity=2, rates=[1000, 500])
    estimate = plan_split([a], ("p1", "p2"), 2, 1500, 10_000)              # p1 1000, p2 500, cap 1500
    state = state_of(estimate, fitted=False, due=DUE, lines=lines_of(a), max_ratio_bps=1500)
    state = with_refund(state, RefundUnwind("RF1", 5_000, {"A": 1}))
    cancelled = {}
    step = next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01")
    while step.kind in ("FIT", "UNWIND"):
        if step.kind == "UNWIND":
            state, cancelled, _ = unwind(state, step.refund.refund_id)
        else:
            fitted = refit(state.plan, 10_000, 1200)                       # cap 1200: 300 of p2 cut
            state = replace(state, plan=fitted, fitted=True, max_ratio_bps=1200)
        step = next_step(state, EARLIEST, "O1-S01", RECEIVERS, "O1-R01")
    due = state.commissions_due()
    for promoter_id, planned in state.plan.commissions_by_promoter().items():
        assert cancelled.get(promoter_id, 0) + due[promoter_id] == planned


def test_a_commission_kept_back_for_a_clawback_is_no_longer_left():
    state = state_of(PLAN, due=DUE)
    state = carry_out(state, request(state, EARLIEST, "O1-S01", "BRAND"), EARLIEST, SUCCESS).state
    op = request(state, DUE, "O1-S02", "FINAL")
    op = replace(op, parts=(replace(op.parts[0], amount_fen=0, recovered_fen=5_000),))
    state = finished(accepted(with_operation(state, op), "O1-S02", DUE), "O1-S02", [], "d1").state
    assert state.commissions_left() == {}


# --- JSON round trips -------------------------------------------------------------------------

def test_settlement_and_plan_round_trip_through_json():
    plan = plan_split(TWO_LEVELS, ("p1", "p2"), 2, 1200, 19_900)
    assert plan.cut_commissions                                              # with a cut, to carry it too
    ops = (Operation("O1-S01", "BRAND", (replace(brand_part(100), result=CLOSED, fail_reason="NO_RELATION"),),
                     state=DONE, stored_at=EARLIEST),
           Operation("O1-S02", "BRAND", (replace(brand_part(100), result=SUCCESS, detail_id="D2"),), state=DONE,
                     stored_at=EARLIEST + 1.5),
           Operation("O1-S03", "FINAL", (promoter_part("p1", 2_000), promoter_part("p2", 300)), state=PROCESSING,
                     stored_at=DUE, poll_at=DUE + 10),
           Operation("O1-S04", "UNFREEZE", (), state=STORED, stored_at=DUE + 20, not_ready=True),
           Operation("O1-S05", "UNFREEZE", (), state=REFUSED, stored_at=DUE + 30),
           Operation("O1-S06", "FINAL", (replace(promoter_part("p1", 0), result=SUCCESS, recovered_fen=2_000),),
                     state=DONE, stored_at=DUE + 40),
           Operation("O1-R01", "RETURN", (replace(brand_part(60), result=FAILED, fail_reason="NO_BALANCE"),),
                     state=DONE, stored_at=DUE + 50, from_out_order_no="O1-S02"),
           Operation("O1-R02", "RETURN", (brand_part(40),), state=PROCESSING, stored_at=DUE + 60,
                     poll_at=DUE + 70, from_out_order_no="O1-S02"))
    state = Settlement("O1", PAID_AT, DUE, plan, fitted=True, operations=ops, not_ready_count=3,
                       not_ready_until=DUE + 1200, repairs={BRAND_MCHID: 1}, to_readd=(BRAND_ROLE,),
                       given_up=("promoter:p2",), status=s.SETTLING, lines=lines_of(*TWO_LEVELS), max_ratio_bps=1200,
                       refunds=(RefundUnwind("RF1", 5_000, {"A": 1}), RefundUnwind("RF2", 300)), unwound=("RF1",),
                       receivable_booked_fen=-60)
    body = json.loads(json.dumps(state.to_json()))
    plan_body = json.loads(json.dumps(plan.to_json()))
    back = Settlement.from_json("O1", PAID_AT, DUE, plan_from_json(plan_body), body, max_ratio_bps=3000)
    assert plan_from_json(plan_body) == plan
    assert back == state                                     # the stored max ratio wins over the dealer's
    # a plan never worked on: its memo is the plan's (booked with it), its max ratio the dealer's
    assert Settlement.from_json("O1", PAID_AT, None, plan, None, status=s.FINISHED) == \
        Settlement("O1", PAID_AT, None, plan, status=s.FINISHED, receivable_booked_fen=plan.receivable_fen)
    assert Settlement.from_json("O1", PAID_AT, None, plan, {"lines": [["A", 1, 0]]}, max_ratio_bps=1200) == \
        Settlement("O1", PAID_AT, None, plan, lines=(("A", 1, 0),), max_ratio_bps=1200,
                   receivable_booked_fen=plan.receivable_fen)


# --- the whole thing, with a random provider ------------------------------------------------

REASONS = ("NO_RELATION", "NO_RELATION", "ACCOUNT_ABNORMAL", "RECEIVER_HIGH_RISK", "NO_AUTH")


@st.composite
def paid_orders(draw):
    """A paid order under a valid configuration (Σ rates ≤ max_ratio, cost ≤ paid), an
    estimated fee at planning and the provider's own figures at fit time (the fee, and a max
    ratio that is usually the same, sometimes lower: then commissions are cut)."""
    max_ratio = draw(st.integers(0, 3000))
    promoters = ("p1", "p2", "p3")[:draw(st.integers(0, 3))]
    depth = draw(st.integers(1, 3))
    lines = []
    for index in range(draw(st.integers(1, 4))):
        paid = draw(st.integers(1, 10**7))
        quantity = draw(st.integers(1, 3))
        cost = draw(st.one_of(st.integers(0, paid // quantity), st.just(paid // quantity)))
        rates = []
        for _ in range(draw(st.integers(0, 3))):
            rates.append(draw(st.integers(0, max_ratio - sum(rates))))
        lines.append(PlanLine(f"S{index}", quantity, paid, cost, tuple(rates)))
    paid = sum(l.paid_fen for l in lines)
    estimated_fee = draw(st.integers(0, paid // 100))
    fee = draw(st.one_of(st.just(estimated_fee), st.integers(0, paid // 100)))
    fit_ratio = draw(st.one_of(st.just(max_ratio), st.integers(0, 3000)))
    due_after = draw(st.one_of(st.just(25 * DAY), st.integers(0, 27 * DAY)))
    return lines, promoters, depth, max_ratio, estimated_fee, fee, fit_ratio, due_after


def assert_asks_only_what_is_left(state, op):
    assert not any(o.in_flight for o in state.operations)          # one operation at a time
    assert not state.unfrozen and not state.to_readd and state.status == s.SETTLING
    assert all(p.amount_fen > 0 for p in op.parts)
    roles = [p.role for p in op.parts]
    assert len(set(roles)) == len(roles)
    due = state.commissions_due()
    for part in op.parts:
        assert part.role not in state.given_up and (part.type, part.account) == RECEIVERS[part.role]
        if part.role == BRAND_ROLE:            # never more than the share of what the customer kept
            assert part.amount_fen <= state.brand_share_fen() - state.brand_net_fen() - state.in_flight_fen(BRAND_ROLE)
        else:
            owed = due[part.role[len("promoter:"):]]
            assert part.amount_fen <= owed - state.succeeded(part.role) - state.in_flight_fen(part.role)
    if op.kind == "BRAND":
        assert roles == [BRAND_ROLE] and not op.unfreeze_unsplit
        assert op.parts[0].amount_fen <= state.brand_split_target_fen() - state.succeeded(BRAND_ROLE)
    elif op.kind == "FINAL":
        assert op.parts and op.unfreeze_unsplit
        asked = {r for r in roles if r != BRAND_ROLE}
        left = {"promoter:" + p for p in state.commissions_left()}
        assert asked <= left
        if asked != left:           # a refund lowered the cap: the commissions got what was left of it
            assert sum(p.amount_fen for p in op.parts if p.role != BRAND_ROLE) == \
                max(0, state.cap_fen() - state.split_fen)
    else:
        assert op.kind == "UNFREEZE" and op.parts == ()
        assert state.commissions_left() == {} or state.cap_fen() <= state.split_fen   # the cap is used up


def within_cap(state, op):
    """Σ splits ≤ the cap at the time of each split (refunds lower it; a return gives no room
    back): a new operation asks no more than the cap left (a refund may have left the splits
    above the cap already: then nothing more)."""
    return sum(p.amount_fen for p in op.parts) <= max(0, state.cap_fen() - state.split_fen)


def assert_returns_only_what_is_held(state, op):
    assert not any(o.in_flight for o in state.operations)
    assert op.kind == "RETURN" and op.state == STORED and len(op.parts) == 1
    part = op.parts[0]
    assert part.role == BRAND_ROLE and (part.type, part.account) == RECEIVERS[BRAND_ROLE]
    assert 0 < part.amount_fen == min(part.amount_fen, state.return_needed_fen())
    # the brand holds more than its share of what the customer kept
    assert state.brand_net_fen() - state.returned(DONE, FAILED) - part.amount_fen >= state.brand_share_fen()
    source = [o for o in state.operations if o.out_order_no == op.from_out_order_no]
    assert len(source) == 1 and source[0].state == DONE and source[0].kind in ("BRAND", "FINAL")
    got = sum(p.amount_fen for p in source[0].parts if p.role == BRAND_ROLE and p.result == SUCCESS)
    assert part.amount_fen <= got - returns_from(state, op.from_out_order_no)


def returns_from(state, out_order_no):
    """What returns under way or ended took (or tried to take) back from one split order."""
    return sum(p.amount_fen for o in state.operations if o.kind == "RETURN" and o.from_out_order_no == out_order_no
               and o.state in (STORED, PROCESSING, DONE) for p in o.parts)


def promoter_paid(state, role):
    """A promoter's commission settled by the splits, the part kept back for a clawback included."""
    return sum(p.amount_fen + p.recovered_fen for o in state.operations if o.state == DONE and o.kind != "RETURN"
               for p in o.parts if p.role == role and p.result == SUCCESS)


def ended(state, status):
    """CLOSE / EXPIRE as the service writes them: numbers only ever answered "not settled"
    were never accepted, nothing to follow."""
    return replace(state, status=status, operations=tuple(
        replace(op, state=REFUSED) if op.state == STORED and op.not_ready else op for op in state.operations))


def units_fen(remaining_fen, remaining_units, quantity):
    """The refund service's rule: a line's remaining money over its remaining units, the
    top ``quantity`` of them (so the units of a line always add up to what it was paid)."""
    return sum(allocate(remaining_fen, [1] * remaining_units)[remaining_units - quantity:])


class Sim:
    """Drive the rules as the job would, with a provider that answers at random and a
    customer who asks for refunds at random moments. The memo is brought up to date after
    every state change, and the ledger checked after every step."""

    def __init__(self, order, rng):
        lines, promoters, depth, max_ratio, estimated_fee, fee, fit_ratio, due_after = order
        self.rng, self.lines, self.fee, self.fit_ratio = rng, lines, fee, fit_ratio
        self.paid = sum(l.paid_fen for l in lines)
        self.estimate = plan_split(lines, promoters, depth, max_ratio, self.paid - estimated_fee)
        self.state = Settlement("O1", PAID_AT, PAID_AT + due_after if self.estimate.commission_fen else None,
                                self.estimate, lines=lines_of(*lines), max_ratio_bps=max_ratio,
                                receivable_booked_fen=self.estimate.receivable_fen)
        self.ledger = list(planning_entries(self.estimate))
        assert memo_entries(self.state) == (self.state, ())       # the plan's memo is the state's
        self.never_settles = rng.random() < 0.05
        self.p_not_ready = rng.choice([0.0, 0.1, 0.3])
        self.p_refused = {kind: rng.choice([0.0, 0.0, 0.1, 0.3]) for kind in ("BRAND", "FINAL")}
        self.p_refused["UNFREEZE"] = 1.0 if rng.random() < 0.03 else 0.0     # up to the 50-operation limit
        self.p_success = rng.choice([1.0, 0.9, 0.6, 0.2])
        self.p_crash = rng.choice([0.0, 0.1])
        self.p_late = rng.choice([0.0, 0.05])
        self.p_refund = rng.choice([0.0, 0.1, 0.3])
        self.p_recover = rng.choice([0.0, 0.0, 0.3])                 # a promoter owes a clawback elsewhere
        self.p_return_fails = rng.choice([0.0, 0.3, 1.0])
        self.max_refunds = rng.choice([1, 2, 4])
        self.after_close_refunds = rng.choice([0, 0, 1, 2])
        self.numbers = (f"O1-S{n:03d}" for n in itertools.count(1))
        self.return_numbers = (f"O1-R{n:03d}" for n in itertools.count(1))
        self.fresh, self.fresh_return = next(self.numbers), next(self.return_numbers)
        self.requested, self.alerted, self.fitted = [], set(), None
        self.refunds = []
        self.cancelled, self.clawed = {}, {}
        self.refunded_line_fen = {l.sku: 0 for l in lines}
        self.now = PAID_AT + rng.choice([0, 30, 60, 3600])

    # --- the books, after every step -------------------------------------------------------
    def save(self, state, entries=()):
        self.ledger += entries
        state, memo = memo_entries(state)
        assert memo_entries(state)[1] == ()                    # brought up to date: nothing more to book
        self.ledger += memo
        check_invariant(self.ledger, self.paid)
        assert balances(self.ledger).get(CLAIM_ACCOUNT, 0) == state.receivable_booked_fen
        self.state = state
        return state

    # --- the customer --------------------------------------------------------------------
    def draw_refund(self):
        """A refund the refund service would take (never more than paid, never 0), or None."""
        state, rng = self.state, self.rng
        left_fen = self.paid - state.refunded_fen
        units_left = {l.sku: l.quantity - state.refunded_units().get(l.sku, 0) for l in self.lines}
        refund_id = f"RF{len(self.refunds) + 1}"
        if left_fen <= 0:
            return None
        if rng.random() < 0.25 or not any(units_left.values()):
            return RefundUnwind(refund_id, rng.choice([left_fen, rng.randint(1, left_fen)]))   # by amount
        everything = rng.random() < 0.3
        picked = [l for l in self.lines if units_left[l.sku] and (everything or rng.random() < 0.5)]
        picked = picked or [next(l for l in self.lines if units_left[l.sku])]
        units, amount = {}, 0
        for l in picked:
            quantity = units_left[l.sku] if everything else rng.randint(1, units_left[l.sku])
            units[l.sku] = quantity
            amount += units_fen(l.paid_fen - self.refunded_line_fen[l.sku], units_left[l.sku], quantity)
        if not 0 < amount <= left_fen:
            return None                                        # NOTHING_TO_REFUND / REFUND_EXCEEDS_PAID
        for l in picked:
            self.refunded_line_fen[l.sku] += units_fen(l.paid_fen - self.refunded_line_fen[l.sku],
                                                       units_left[l.sku], units[l.sku])
        return RefundUnwind(refund_id, amount, units)

    def refund(self):
        refund = self.draw_refund()
        if refund is None:
            return
        self.refunds.append(refund)
        recorded = with_refund(self.state, refund)
        assert with_refund(recorded, refund) is recorded      # a redelivery changes nothing
        assert recorded.refunded_fen == sum(r.amount_fen for r in self.refunds) <= self.paid
        self.save(recorded, (refund_entry(refund.amount_fen),))   # the REFUND entry the refund itself books

    # --- the provider --------------------------------------------------------------------
    def send(self, state, op):
        rng = self.rng
        if op.kind == "RETURN":                              # synchronous at WeChat, mostly
            if rng.random() < 0.6:
                return self.return_ended(state, op)
            return self.save(accepted(state, op.out_order_no, self.now))
        if self.never_settles or rng.random() < self.p_not_ready:
            count = state.not_ready_count + 1
            state = not_ready(state, op.out_order_no, self.now)
            assert state.not_ready_count == count and state.not_ready_until == self.now + not_ready_wait_s(count)
            return self.save(state)
        if rng.random() < self.p_refused[op.kind]:
            state, roles = refused(state, op.out_order_no)
            assert set(roles) <= {p.role for p in op.parts}
            self.alerted.update(roles)
            return self.save(state)
        return self.save(accepted(state, op.out_order_no, self.now))

    def return_ended(self, state, op):
        failed = self.rng.random() < self.p_return_fails
        ended_state, entries = return_finished(state, op.out_order_no, FAILED if failed else SUCCESS,
                                               "NO_BALANCE" if failed else None, "d1")
        done = next(o for o in ended_state.operations if o.out_order_no == op.out_order_no)
        assert done.state == DONE and done.parts[0].result == (FAILED if failed else SUCCESS)
        amount = op.parts[0].amount_fen
        assert entries == (() if failed else (LedgerEntry("O1", DEALER, "brand", amount, "RETURN"),))
        return self.save(ended_state, entries)

    def poll(self, state, op):
        rng = self.rng
        if op.kind == "RETURN":
            if rng.random() < 0.2:                           # still processing
                return self.save(s._replace_op(state, replace(op, poll_at=self.now + s.POLL_AFTER_S)))
            return self.return_ended(state, op)
        results = []
        for n, part in enumerate(op.parts):
            r = rng.random()
            if not part.amount_fen or r < 0.02:
                continue                                       # not sent (wholly kept back), or missing
            if r < self.p_success:
                results.append((part.type, part.account, SUCCESS, None, f"D{n}"))
            else:
                results.append((part.type, part.account, CLOSED, rng.choice(REASONS), None))
        outcome = finished(state, op.out_order_no, results, "d1")
        done = outcome.state.operations[[o.out_order_no for o in state.operations].index(op.out_order_no)]
        assert done.state == DONE
        assert all(p.result == SUCCESS for p in done.parts if not p.amount_fen)
        expected = tuple(
            LedgerEntry("O1", "brand" if p.role == BRAND_ROLE else p.role, DEALER, p.amount_fen,
                        "SPLIT" if p.role == BRAND_ROLE else "COMMISSION")
            for p in done.parts if p.result == SUCCESS and p.amount_fen)
        assert outcome.entries == expected
        assert outcome.paid_promoters == {p.role[len("promoter:"):]: p.amount_fen + p.recovered_fen
                                          for p in done.parts if p.result == SUCCESS and p.role != BRAND_ROLE}
        assert outcome.recovered == {p.role[len("promoter:"):]: p.recovered_fen for p in done.parts
                                     if p.result == SUCCESS and p.recovered_fen}
        assert set(outcome.given_up) | set(outcome.state.to_readd) | \
            {p.role for p in done.parts if p.result == SUCCESS} >= {p.role for p in done.parts}
        if op.kind != "BRAND":
            assert outcome.state.to_readd == ()              # the final split is never retried
        self.alerted.update(outcome.given_up)
        return self.save(outcome.state, outcome.entries)

    # --- the job ---------------------------------------------------------------------------
    def step(self):
        """One step; False once there is nothing more to do."""
        state, rng, now = self.state, self.rng, self.now
        step = next_step(state, now, self.fresh, RECEIVERS, self.fresh_return)
        if step.kind == "WAIT":
            assert step.at > now
            self.now = step.at
        elif step.kind == "FIT":
            assert self.fitted is None and not state.operations and state.status == s.SETTLING
            self.fitted = refit(state.plan, self.paid - self.fee, self.fit_ratio)
            self.save(replace(state, plan=self.fitted, fitted=True, max_ratio_bps=self.fit_ratio),
                      fit_entries("O1", "d1", self.fitted))
        elif step.kind == "UNWIND":
            refund = step.refund
            assert refund in state.refunds and refund.refund_id not in state.unwound
            assert all(r.refund_id in state.unwound for r in state.refunds[:state.refunds.index(refund)])
            paid_before = {pid: promoter_paid(state, "promoter:" + pid) for pid in state.plan.commissions_by_promoter()}
            unwound, cancelled, clawed = unwind(state, refund.refund_id)
            assert unwound.unwound == state.unwound + (refund.refund_id,)
            assert all(v > 0 for v in cancelled.values()) and all(v > 0 for v in clawed.values())
            if not refund.units:
                assert cancelled == clawed == {}               # by amount: no unit takes a commission away
            for pid, fen in clawed.items():
                assert self.clawed.get(pid, 0) + fen <= paid_before[pid]   # only what was paid is clawed back
            for total, part in ((self.cancelled, cancelled), (self.clawed, clawed)):
                for pid, fen in part.items():
                    total[pid] = total.get(pid, 0) + fen
            self.save(unwound)
        elif step.kind == "REQUEST":
            op = step.operation
            assert op.state == STORED and op.stored_at == now
            if op.kind == "RETURN":
                assert op.out_order_no == self.fresh_return
                assert_returns_only_what_is_held(state, op)
                self.fresh_return = next(self.return_numbers)
            else:
                assert op.out_order_no == self.fresh
                assert_asks_only_what_is_left(state, op)
                assert within_cap(state, op), "a split past the cap"
                self.fresh = next(self.numbers)
                if op.kind == "FINAL":                         # the service keeps back what promoters owe
                    op = replace(op, parts=tuple(
                        replace(p, amount_fen=p.amount_fen - kept, recovered_fen=kept)
                        if p.role != BRAND_ROLE and rng.random() < self.p_recover
                        and (kept := rng.randint(0, p.amount_fen)) else p for p in op.parts))
            state = self.save(with_operation(state, op))
            self.requested.append(op.out_order_no)
            if rng.random() >= self.p_crash:                   # else: a crash right after storing it
                self.send(state, op)
        elif step.kind == "SEND":
            op = step.operation
            assert op.state == STORED and op in state.operations and op.out_order_no in self.requested
            self.send(state, op)
        elif step.kind == "POLL":
            op = step.operation
            assert op.state == PROCESSING and now >= op.poll_at
            self.poll(state, op)
        elif step.kind == "READD":
            assert step.roles == state.to_readd == (BRAND_ROLE,)
            self.save(readded(state, step.roles))
        elif step.kind in ("CLOSE", "EXPIRE"):
            assert state.status == s.SETTLING and not any(o.state == PROCESSING for o in state.operations)
            if step.kind == "CLOSE":          # (EXPIRE may come first: a number "not settled" past the deadline)
                assert state.return_needed_fen() == 0 and set(state.unwound) == {r.refund_id for r in state.refunds}
                assert state.unfrozen
                if not self.p_recover:
                    assert state.commissions_left() == {}
                for promoter_id, due in state.commissions_due().items():
                    role = "promoter:" + promoter_id
                    assert promoter_paid(state, role) >= due or role in state.given_up
            else:
                splits = sum(o.kind != "RETURN" for o in state.operations)
                assert now >= state.deadline or splits >= s.MAX_OPERATIONS
            state = self.save(ended(state, s.FINISHED if step.kind == "CLOSE" else s.EXPIRED))
            after = next_step(state, now, self.fresh, RECEIVERS, self.fresh_return)
            pending = [r for r in state.refunds if r.refund_id not in state.unwound]
            assert after == (Step("UNWIND", refund=pending[0]) if pending else Step("NOTHING"))
        elif step.kind == "NOTHING":
            assert state.status != s.SETTLING and not any(o.in_flight for o in state.operations)
            assert state.return_needed_fen() == 0 and set(state.unwound) == {r.refund_id for r in state.refunds}
            if self.after_close_refunds:                       # a refund long after the end
                self.after_close_refunds -= 1
                self.refund()
                return True
            return False
        else:
            pytest.fail(f"unexpected step {step}")
        if rng.random() < self.p_late:
            self.now += rng.uniform(0, 5 * DAY)                # the job came back late
        return True

    def run(self):
        for _ in range(3000):
            if self.state.status == s.SETTLING and len(self.refunds) < self.max_refunds \
                    and self.rng.random() < self.p_refund:
                self.refund()                                  # before the fit, between operations, ...
            if not self.step():
                return self
        pytest.fail("the plan never ended")


@settings(max_examples=150, deadline=None)
@given(paid_orders(), st.integers(0, 2**64))
def test_any_provider_behaviour_and_any_refunds_keep_the_ledger_whole_and_the_splits_under_the_cap(order, seed):
    # The provider and the customer draw from a seeded generator: a run takes hundreds of
    # draws, too many for Hypothesis to keep (and shrink) one by one.
    sim = Sim(order, random.Random(seed)).run()     # check_invariant held after every step (Sim.save)
    state, ledger, estimate, fitted = sim.state, sim.ledger, sim.estimate, sim.fitted
    paid, plan = sim.paid, state.plan
    refunded = sum(r.amount_fen for r in sim.refunds)

    breakdown = check_invariant(ledger, paid)
    split = sum(e.amount_fen for e in ledger if e.cause == "SPLIT")
    commission = sum(e.amount_fen for e in ledger if e.cause == "COMMISSION")
    returned = sum(e.amount_fen for e in ledger if e.cause == "RETURN")
    assert breakdown["refunded"] == refunded == state.refunded_fen <= paid
    if fitted is None:
        assert split == commission == returned == 0
    else:
        assert plan == fitted
        assert breakdown["fee"] == sim.fee
        assert split + commission <= fitted.cap_fen <= paid - sim.fee
    assert breakdown["brand"] == split - returned == state.brand_net_fen()
    assert split == state.succeeded(BRAND_ROLE) and returned == state.returned()
    assert breakdown["commissions"] == commission
    # the memo: the brand's share of what the customer kept, less what the brand holds
    assert state.status != s.SETTLING
    assert breakdown["receivable"] == state.receivable_booked_fen == state.brand_share_fen() - state.brand_net_fen()
    if not sim.refunds:
        assert breakdown["brand"] + breakdown["receivable"] == plan.brand_share_fen == estimate.brand_share_fen
        assert breakdown["receivable"] >= 0 and breakdown["dealer"] >= 0
        if state.status == s.FINISHED and BRAND_ROLE not in state.given_up:
            assert split >= plan.brand_split_fen
    # the brand: a return only ever what it got from that split order, never retried once failed
    for op in state.operations:
        if op.kind in ("BRAND", "FINAL"):
            got = sum(p.amount_fen for p in op.parts if p.role == BRAND_ROLE and p.result == SUCCESS)
            assert returns_from(state, op.out_order_no) <= got
    failed = state.returned(DONE, FAILED)
    assert state.return_needed_fen() == 0
    assert breakdown["brand"] - failed <= state.brand_share_fen()     # the brand keeps no more than its share ...
    assert breakdown["receivable"] >= -failed                          # ... but what it could not give back
    # commissions: cancelled + clawed back + still due = planned, to the fen
    due = state.commissions_due()
    for promoter_id, planned in plan.commissions_by_promoter().items():
        role = "promoter:" + promoter_id
        got = balances(ledger).get(role, 0)
        assert got == state.succeeded(role) and promoter_paid(state, role) <= planned
        accounted = sim.cancelled.get(promoter_id, 0) + sim.clawed.get(promoter_id, 0) + due[promoter_id]
        assert accounted == planned
        assert sim.clawed.get(promoter_id, 0) <= promoter_paid(state, role)
        if state.status == s.FINISHED and role not in state.given_up:   # paid in full, less what was clawed back
            assert promoter_paid(state, role) - sim.clawed.get(promoter_id, 0) == due[promoter_id]
    assert set(state.unwound) == {r.refund_id for r in sim.refunds}

    assert len(sim.requested) == len(set(sim.requested)) == len(state.operations)
    assert sum(op.kind != "RETURN" for op in state.operations) <= s.MAX_OPERATIONS
    assert [op.out_order_no for op in state.operations] == sim.requested
    assert set(state.given_up) == sim.alerted
    assert all(state.repairs.get(account, 0) <= s.MAX_RELATION_REPAIRS for account in state.repairs)

    body = json.loads(json.dumps(state.to_json()))
    again = Settlement.from_json("O1", PAID_AT, state.commission_due_at, plan_from_json(
        json.loads(json.dumps(plan.to_json()))), body, status=state.status)
    assert again == state


@settings(max_examples=200, deadline=None)
@given(paid_orders())
def test_refit_of_an_uncut_plan_is_the_plan_made_with_the_providers_figures(order):
    lines, promoters, depth, max_ratio, estimated_fee, fee, fit_ratio, _ = order
    paid = sum(l.paid_fen for l in lines)
    estimate = plan_split(lines, promoters, depth, max_ratio, paid - estimated_fee)
    assert estimate.cut_commission_fen == 0                 # a valid configuration is never cut
    fitted = refit(estimate, paid - fee, fit_ratio)
    direct = plan_split(lines, promoters, depth, fit_ratio, paid - fee)
    assert replace(fitted, cut_commissions=()) == replace(direct, cut_commissions=())
    key = lambda c: (c.level, c.promoter_id, c.sku)                            # noqa: E731
    assert sorted(fitted.cut_commissions, key=key) == sorted(direct.cut_commissions, key=key)
    assert fitted.commission_fen + fitted.brand_split_fen <= fitted.cap_fen
    assert fitted.cut_commission_fen == estimate.commission_fen - fitted.commission_fen
