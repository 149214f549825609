"""Settling a split plan with the provider (M9): the pure rules of ``domain/settlement.py``."""
import itertools
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import settlement as s
from chalicelib.domain.settlement import (BRAND_ROLE, CLOSED, DONE, PROCESSING, REFUSED, STORED, SUCCESS, Operation,
                                          Part, Settlement, Step, accepted, closing_entries, finished, fit_entries,
                                          next_step, not_ready, not_ready_wait_s, plan_from_json, readded,
                                          receivable_change, refit, refused, with_operation)
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


def state_of(plan, *, fitted=True, due=None, **kw):
    return Settlement("O1", PAID_AT, due, plan, fitted=fitted, **kw)


def planning_entries(plan):
    """What is booked when the order is paid and planned: the payment and the receivable memo."""
    return (LedgerEntry("O1", DEALER, "customer", plan.paid_fen, "PAYMENT"),) + receivable_change("O1",
                                                                                                plan.receivable_fen)


def answer(op, *results):
    """The provider's answer for ``op``: per part, "SUCCESS" or the reason it was CLOSED."""
    return [(p.type, p.account, SUCCESS, None, f"D-{n}") if r == SUCCESS else (p.type, p.account, CLOSED, r, None)
            for n, (p, r) in enumerate(zip(op.parts, results))]


def request(state, now, number, kind):
    step = next_step(state, now, number, RECEIVERS)
    assert step.kind == "REQUEST" and step.operation.kind == kind and step.operation.out_order_no == number
    return step.operation


def carry_out(state, op, now, *results):
    """Store, send (accepted), poll and finish ``op``."""
    state = accepted(with_operation(state, op), op.out_order_no, now)
    assert next_step(state, now + s.POLL_AFTER_S, "unused", RECEIVERS).kind == "POLL"
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
    fit = fit_entries("O1", "d1", estimate, plan)
    assert fit == (LedgerEntry("O1", "provider_fee", DEALER, 600, "FEE"),)
    state = replace(state, plan=plan, fitted=True)

    t = EARLIEST
    step = next_step(state, t, "O1-S01", RECEIVERS)
    assert step == Step("REQUEST", operation=Operation("O1-S01", "BRAND", (brand_part(30_000),), stored_at=t))
    assert step.operation.unfreeze_unsplit is False          # the commissions' room stays frozen
    state = with_operation(state, step.operation)
    assert state.brand_left_fen() == 0 and state.split_fen == 30_000 and state.in_flight_fen(BRAND_ROLE) == 30_000
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
    assert closing_entries(state, 55_000) == ()

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
    assert closing_entries(state, 60_000) == ()

    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan, plan) + outcome.entries + final.entries
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
    processing = Operation("O1-S01", "BRAND", (brand_part(25_000),), state=PROCESSING, poll_at=EARLIEST)
    state = state_of(PLAN, due=DUE, operations=(processing,), status=status)
    assert next_step(state, EARLIEST + 10, "O1-S02", RECEIVERS) == Step("NOTHING")


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

    unfreeze = request(state, t + 20, "O1-S05", "UNFREEZE")
    state = carry_out(state, unfreeze, t + 20).state
    assert next_step(state, t + 40, "O1-S06", RECEIVERS) == Step("CLOSE")
    assert state.receivable_target_fen() == 85_000
    closing = closing_entries(state, 55_000)
    assert closing == (LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 30_000, "RECEIVABLE"),)
    ledger = planning_entries(plan) + fit_entries("O1", "d1", plan, plan) + closing
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
    assert closing_entries(state, 60_000) == ()
    ledger = planning_entries(PLAN) + fit_entries("O1", "d1", PLAN, PLAN) + brand.entries
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
    assert closing_entries(outcome.state, 60_000) == (
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


def test_fit_entries_book_the_fee_and_move_the_receivable_either_way():
    estimate = plan_split([line()], (), 1, 3000, 99_400)                     # receivable 55000
    lower = refit(estimate, 99_000, 2000)                                   # cap 20000: receivable 65000
    assert fit_entries("O1", "d1", estimate, lower) == (
        LedgerEntry("O1", "provider_fee", DEALER, 1_000, "FEE"),
        LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 10_000, "RECEIVABLE"))
    estimate = plan_split([line()], (), 1, 2000, 99_400)                     # receivable 65000
    higher = refit(estimate, 100_000, 3000)                                 # no fee; receivable 55000
    entries = fit_entries("O1", "d1", estimate, higher)
    assert entries == (LedgerEntry("O1", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, 10_000, "RECEIVABLE"),)
    ledger = planning_entries(estimate) + entries + (LedgerEntry("O1", "brand", DEALER, 30_000, "SPLIT"),)
    assert check_invariant(ledger, 100_000)["receivable"] == 55_000


def test_receivable_change_and_closing_entries_by_sign():
    assert receivable_change("O1", 0) == ()
    assert receivable_change("O1", 7) == (LedgerEntry("O1", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, 7, "RECEIVABLE"),)
    assert receivable_change("O1", -7) == (LedgerEntry("O1", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, 7, "RECEIVABLE"),)
    state = state_of(PLAN)                                                   # nothing split: target = the share
    assert closing_entries(state, 60_000) == receivable_change("O1", 25_000)
    assert closing_entries(state, 85_000) == ()


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
           Operation("O1-S05", "UNFREEZE", (), state=REFUSED, stored_at=DUE + 30))
    state = Settlement("O1", PAID_AT, DUE, plan, fitted=True, operations=ops, not_ready_count=3,
                       not_ready_until=DUE + 1200, repairs={BRAND_MCHID: 1}, to_readd=(BRAND_ROLE,),
                       given_up=("promoter:p2",), status=s.SETTLING)
    body = json.loads(json.dumps(state.to_json()))
    plan_body = json.loads(json.dumps(plan.to_json()))
    back = Settlement.from_json("O1", PAID_AT, DUE, plan_from_json(plan_body), body)
    assert plan_from_json(plan_body) == plan
    assert back == state
    assert Settlement.from_json("O1", PAID_AT, None, plan, None, status=s.FINISHED) == \
        Settlement("O1", PAID_AT, None, plan, status=s.FINISHED)


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
    plan = state.plan
    assert not any(o.in_flight for o in state.operations)          # one operation at a time
    assert not state.unfrozen and not state.to_readd
    assert all(p.amount_fen > 0 for p in op.parts)
    assert sum(p.amount_fen for p in op.parts) <= plan.cap_fen - state.split_fen
    roles = [p.role for p in op.parts]
    assert len(set(roles)) == len(roles)
    owed = {BRAND_ROLE: plan.brand_share_fen,
            **{"promoter:" + pid: amount for pid, amount in plan.commissions_by_promoter().items()}}
    for part in op.parts:
        assert part.role not in state.given_up and (part.type, part.account) == RECEIVERS[part.role]
        assert part.amount_fen <= owed[part.role] - state.succeeded(part.role) - state.in_flight_fen(part.role)
    if op.kind == "BRAND":
        assert roles == [BRAND_ROLE] and not op.unfreeze_unsplit
        assert op.parts[0].amount_fen <= plan.brand_split_fen - state.succeeded(BRAND_ROLE)
    elif op.kind == "FINAL":
        assert op.parts and op.unfreeze_unsplit
        assert {r for r in roles if r != BRAND_ROLE} == {"promoter:" + p for p in state.commissions_left()}
    else:
        assert op.kind == "UNFREEZE" and op.parts == () and state.commissions_left() == {}


def simulate(order, rng):
    """Drive the rules as the job would, with a provider that answers at random."""
    lines, promoters, depth, max_ratio, estimated_fee, fee, fit_ratio, due_after = order
    paid = sum(l.paid_fen for l in lines)
    estimate = plan_split(lines, promoters, depth, max_ratio, paid - estimated_fee)
    state = Settlement("O1", PAID_AT, PAID_AT + due_after if estimate.commission_fen else None, estimate)
    ledger = list(planning_entries(estimate))
    never_settles = rng.random() < 0.05
    p_not_ready = rng.choice([0.0, 0.1, 0.3])
    p_refused = {kind: rng.choice([0.0, 0.0, 0.1, 0.3]) for kind in ("BRAND", "FINAL")}
    p_refused["UNFREEZE"] = 1.0 if rng.random() < 0.03 else 0.0     # up to the 50-operation limit
    p_success = rng.choice([1.0, 0.9, 0.6, 0.2])
    p_crash = rng.choice([0.0, 0.1])
    p_late = rng.choice([0.0, 0.05])
    numbers = (f"O1-S{n:03d}" for n in itertools.count(1))
    fresh = next(numbers)
    requested, alerted, fitted = [], set(), None
    now = PAID_AT + rng.choice([0, 30, 60, 3600])

    def send(state, op):
        r = rng.random()
        if never_settles or r < p_not_ready:
            count = state.not_ready_count + 1
            state = not_ready(state, op.out_order_no, now)
            assert state.not_ready_count == count and state.not_ready_until == now + not_ready_wait_s(count)
            return state
        if rng.random() < p_refused[op.kind]:
            state, roles = refused(state, op.out_order_no)
            assert set(roles) <= {p.role for p in op.parts}
            alerted.update(roles)
            return state
        state = accepted(state, op.out_order_no, now)
        return state

    for _ in range(3000):
        step = next_step(state, now, fresh, RECEIVERS)
        if step.kind == "WAIT":
            assert step.at > now
            now = step.at
        elif step.kind == "FIT":
            assert fitted is None and not state.operations
            fitted = refit(state.plan, paid - fee, fit_ratio)
            ledger += fit_entries("O1", "d1", state.plan, fitted)
            state = replace(state, plan=fitted, fitted=True)
        elif step.kind == "REQUEST":
            op = step.operation
            assert op.out_order_no == fresh and op.state == STORED and op.stored_at == now
            assert_asks_only_what_is_left(state, op)
            state = with_operation(state, op)
            requested.append(op.out_order_no)
            fresh = next(numbers)
            if rng.random() >= p_crash:                        # else: a crash right after storing it
                state = send(state, op)
        elif step.kind == "SEND":
            op = step.operation
            assert op.state == STORED and op in state.operations and op.out_order_no in requested
            state = send(state, op)
        elif step.kind == "POLL":
            op = step.operation
            assert op.state == PROCESSING and now >= op.poll_at
            results = []
            for n, part in enumerate(op.parts):
                r = rng.random()
                if r < 0.02:
                    continue                                   # missing in the answer
                if r < p_success:
                    results.append((part.type, part.account, SUCCESS, None, f"D{n}"))
                else:
                    results.append((part.type, part.account, CLOSED, rng.choice(REASONS), None))
            outcome = finished(state, op.out_order_no, results, "d1")
            done = outcome.state.operations[[o.out_order_no for o in state.operations].index(op.out_order_no)]
            assert done.state == DONE
            expected = tuple(
                LedgerEntry("O1", "brand" if p.role == BRAND_ROLE else p.role, DEALER, p.amount_fen,
                            "SPLIT" if p.role == BRAND_ROLE else "COMMISSION")
                for p in done.parts if p.result == SUCCESS)
            assert outcome.entries == expected
            assert outcome.paid_promoters == {p.role[len("promoter:"):]: p.amount_fen for p in done.parts
                                              if p.result == SUCCESS and p.role != BRAND_ROLE}
            assert set(outcome.given_up) | set(outcome.state.to_readd) | \
                {p.role for p in done.parts if p.result == SUCCESS} >= {p.role for p in done.parts}
            if op.kind != "BRAND":
                assert outcome.state.to_readd == ()          # the final split is never retried
            ledger += outcome.entries
            alerted.update(outcome.given_up)
            state = outcome.state
        elif step.kind == "READD":
            assert step.roles == state.to_readd == (BRAND_ROLE,)
            state = readded(state, step.roles)
        elif step.kind in ("CLOSE", "EXPIRE"):
            if step.kind == "CLOSE":
                assert state.unfrozen and state.commissions_left() == {}
            else:
                assert now >= state.deadline or len(state.operations) >= s.MAX_OPERATIONS
            booked = balances(ledger).get(CLAIM_ACCOUNT, 0)
            ledger += closing_entries(state, booked)
            state = replace(state, status=s.FINISHED if step.kind == "CLOSE" else s.EXPIRED)
            assert next_step(state, now, fresh, RECEIVERS) == Step("NOTHING")
            break
        else:
            pytest.fail(f"unexpected step {step}")
        if rng.random() < p_late:
            now += rng.uniform(0, 5 * DAY)                     # the job came back late
    else:
        pytest.fail("the plan never closed nor expired")
    return estimate, fitted, state, ledger, requested, alerted


@settings(max_examples=200, deadline=None)
@given(paid_orders(), st.randoms(use_true_random=False))
def test_any_provider_behaviour_keeps_the_ledger_whole_and_the_splits_under_the_cap(order, rng):
    estimate, fitted, state, ledger, requested, alerted = simulate(order, rng)
    paid, fee = estimate.paid_fen, order[5]
    plan = state.plan

    breakdown = check_invariant(ledger, paid)
    split = sum(e.amount_fen for e in ledger if e.cause == "SPLIT")
    commission = sum(e.amount_fen for e in ledger if e.cause == "COMMISSION")
    if fitted is None:
        assert split == commission == 0
    else:
        assert plan == fitted
        assert breakdown["fee"] == fee
        assert split + commission <= fitted.cap_fen <= paid - fee
    assert breakdown["brand"] == split == state.succeeded(BRAND_ROLE)
    assert breakdown["commissions"] == commission
    assert breakdown["brand"] + breakdown["receivable"] == plan.brand_share_fen == estimate.brand_share_fen
    assert breakdown["receivable"] >= 0 and breakdown["dealer"] >= 0
    for promoter_id, owed in plan.commissions_by_promoter().items():
        role = "promoter:" + promoter_id
        got = balances(ledger).get(role, 0)
        assert got == state.succeeded(role) <= owed
        if state.status == s.FINISHED:                    # paid in full, or given up (and alerted)
            assert got == owed or role in state.given_up
    if state.status == s.FINISHED and BRAND_ROLE not in state.given_up:
        assert split >= plan.brand_split_fen

    assert len(requested) == len(set(requested)) == len(state.operations) <= s.MAX_OPERATIONS
    assert [op.out_order_no for op in state.operations] == requested
    assert set(state.given_up) == alerted
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
