"""Nightly reconciliation (M13): chalicelib/domain/reconciliation.py and reconciliation_report.py.

Bills here are written by the sandbox's own writers (infra/local/sandbox/bill_files.py) and
read by the real parsers (chalicelib/domain/bills.py), except in the hand-built rule tests."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain import bills
from chalicelib.domain.reconciliation import (AMOUNT_DIFFERS, MATCHED, MISSING_HERE, MISSING_THERE, PAYMENT, REFUND,
                                              RETURN, SPLIT, SPLIT_DIFFERS, STATUS_DIFFERS, DayKeys, DaySummary,
                                              Finding, OurPayment, OurRefund, OurSharingLine, Seen, leftovers,
                                              match_sharing_rows, match_trade_rows, order_of, reconcile_day,
                                              status_agrees)
from chalicelib.domain.reconciliation_report import report_lines
from infra.local.sandbox import bill_files as bf

DAY = "2025-01-01"
A, B = "1900000109", "1900000110"
BRAND = "1900000200"


# --- hand-built rows ------------------------------------------------------------------------------

def pay_row(otn, total, sub=A, fee=None, tx=None, settle=None, line=2):
    fee = (total * 6 + 500) // 1000 if fee is None else fee
    return bills.TradeRow(bills.PAYMENT, f"{DAY} 10:00:00", sub, tx or f"42{otn}", otn, "", "", "SUCCESS", "",
                          total if settle is None else settle, total, 0, 0, fee, "", line)


def refund_row(otn, orn, amount, status="SUCCESS", sub=A, line=3):
    return bills.TradeRow(bills.REFUND, f"{DAY} 12:00:00", sub, f"42{otn}", otn, f"50{orn}", orn, "REFUND", status,
                          0, 0, amount, amount, -((amount * 6 + 500) // 1000), "", line)


def share_row(out_no, receiver, amount, status="SUCCESS", kind=bills.SPLIT, sub=A, line=2):
    return bills.SharingRow(kind, f"{DAY} 13:00:00", sub, "42tx", "30" + out_no, "" if kind == bills.RETURN else "d1",
                            out_no, "MERCHANT_ID", receiver, amount, status, "brand", line)


def keys(payments=(), refunds=(), sharing=()):
    return DayKeys(DAY, {p.out_trade_no: p for p in payments}, {r.out_refund_no: r for r in refunds},
                   {(s.out_no, s.receiver): s for s in sharing})


def paid(otn, total, sub=A, state="PAID", fee=None):
    return OurPayment(otn, sub, total, state, f"42{otn}", fee)


def line_(out_no, receiver, amount, state="SUCCESS", kind=SPLIT, sub=A):
    return OurSharingLine(kind, out_no, order_of(out_no), sub, receiver, amount, state)


def only(findings):
    findings = list(findings)
    assert len(findings) == 1, findings
    return findings[0]


def day_findings(trade=(), sharing=(), k=None):
    return list(reconcile_day(trade, sharing, k))


def test_a_payment_that_agrees_is_matched_and_carries_the_providers_fee():
    f = only(day_findings([pay_row("O1", 10_000, fee=60)], [], keys([paid("O1", 10_000, fee=None)])))
    assert (f.kind, f.outcome, f.sub_mchid, f.order_id, f.key, f.ours_fen, f.theirs_fen) == \
        (PAYMENT, MATCHED, A, "O1", "O1", 10_000, 10_000)
    assert (f.fee_fen, f.our_fee_fen, f.transaction_id, f.ours_status, f.theirs_status, f.reason) == \
        (60, None, "42O1", "PAID", "SUCCESS", "")
    assert not f.is_discrepancy and f.diff_fen == 0


def test_a_provider_voucher_lowers_the_settled_total_without_a_discrepancy():
    f = only(day_findings([pay_row("O1", 10_000, settle=9_000)], [], keys([paid("O1", 10_000)])))
    assert f.outcome == MATCHED and f.theirs_fen == 10_000


@pytest.mark.parametrize("state", ["PAID", "FULFILLING", "COMPLETED", "REFUNDED"])
def test_every_state_after_payment_counts_as_paid(state):
    assert only(day_findings([pay_row("O1", 500)], [], keys([paid("O1", 500, state=state)]))).outcome == MATCHED


def test_a_payment_we_do_not_know_is_missing_here():
    f = only(day_findings([pay_row("UNKNOWN1", 777)], [], keys()))
    assert (f.outcome, f.kind, f.order_id, f.ours_fen, f.theirs_fen, f.fee_fen) == (MISSING_HERE, PAYMENT, "UNKNOWN1",
                                                                                     None, 777, 5)
    assert f.diff_fen is None


def test_a_payment_on_an_order_closed_here_is_status_differs_paid_there_never_applied():
    for state in ("CLOSED", "PENDING_PAYMENT"):
        f = only(day_findings([pay_row("O1", 2_000)], [], keys([paid("O1", 2_000, state=state)])))
        assert (f.outcome, f.ours_status, f.theirs_status) == (STATUS_DIFFERS, state, "SUCCESS")
        assert "never applied" in f.reason


def test_an_order_closed_here_and_absent_from_the_bill_agrees():
    assert day_findings([], [], keys([paid("O1", 2_000, state="CLOSED"), paid("O2", 1, state="PENDING_PAYMENT")])) == []


def test_a_payment_whose_amount_differs():
    f = only(day_findings([pay_row("O1", 4_999)], [], keys([paid("O1", 5_000, fee=30)])))
    assert (f.outcome, f.ours_fen, f.theirs_fen, f.diff_fen, f.our_fee_fen) == (AMOUNT_DIFFERS, 5_000, 4_999, -1, 30)


def test_a_paid_order_absent_from_the_bill_is_missing_there():
    f = only(day_findings([], [], keys([paid("O1", 5_000, fee=30)])))
    assert (f.outcome, f.kind, f.ours_fen, f.theirs_fen, f.transaction_id, f.our_fee_fen, f.line) == \
        (MISSING_THERE, PAYMENT, 5_000, None, "42O1", 30, 0)


def test_another_sub_merchants_payment_under_our_number_is_missing_here_and_ours_missing_there():
    found = day_findings([pay_row("O1", 5_000, sub=B)], [], keys([paid("O1", 5_000, sub=A)]))
    assert sorted((f.outcome, f.sub_mchid) for f in found) == [(MISSING_HERE, B), (MISSING_THERE, A)]


def test_a_row_listed_twice_is_missing_here_the_second_time():
    found = day_findings([pay_row("O1", 5_000), pay_row("O1", 5_000, line=3)], [], keys([paid("O1", 5_000)]))
    assert [(f.outcome, f.line) for f in found] == [(MATCHED, 2), (MISSING_HERE, 3)]
    assert "twice" in found[1].reason


def test_refunds_matched_missing_both_ways_and_amount_differs():
    ours = [OurRefund("O1R001", "O1", A, 3_000, "SUCCESS"), OurRefund("O1R002", "O1", A, 1_000, "SUCCESS"),
            OurRefund("O1R003", "O1", A, 500, "PROCESSING")]
    rows = [refund_row("O1", "O1R001", 3_000), refund_row("O1", "O1R002", 1_001), refund_row("O1", "MISSED1", 1_000)]
    found = {f.key: f for f in day_findings(rows, [], keys(refunds=ours))}
    assert {k: f.outcome for k, f in found.items()} == {"O1R001": MATCHED, "O1R002": AMOUNT_DIFFERS,
                                                         "MISSED1": MISSING_HERE, "O1R003": MISSING_THERE}
    assert found["O1R001"].fee_fen == -18 and found["MISSED1"].order_id == "O1"
    assert found["O1R003"].ours_status == "PROCESSING"


def test_a_refund_not_yet_sent_to_the_provider_is_not_expected_in_the_bill():
    assert day_findings([], [], keys(refunds=[OurRefund("O1R001", "O1", A, 3_000, "REQUESTED")])) == []


# (bill's status as it was made, ours read later) -> a real difference?
REFUND_STATUSES = [
    ("PROCESSING", "PROCESSING", False), ("PROCESSING", "SUCCESS", False), ("PROCESSING", "CLOSED", False),
    ("PROCESSING", "ABNORMAL", False), ("ABNORMAL", "ABNORMAL", False), ("ABNORMAL", "SUCCESS", False),
    ("SUCCESS", "SUCCESS", False), ("CLOSED", "CLOSED", False), ("REFUNDCLOSE", "CLOSED", False),
    ("CHANGE", "ABNORMAL", False), ("", "SUCCESS", False),
    ("SUCCESS", "PROCESSING", True), ("SUCCESS", "ABNORMAL", True), ("SUCCESS", "CLOSED", True),
    ("CLOSED", "PROCESSING", True), ("CLOSED", "SUCCESS", True), ("ABNORMAL", "PROCESSING", True),
    ("WEIRD", "SUCCESS", True),
]


@pytest.mark.parametrize("theirs, ours, differs", REFUND_STATUSES)
def test_a_refunds_status_in_the_bill_is_a_snapshot_ours_may_only_be_the_same_or_later(theirs, ours, differs):
    f = only(day_findings([refund_row("O1", "O1R001", 100, status=theirs)], [],
                          keys(refunds=[OurRefund("O1R001", "O1", A, 100, ours)])))
    assert f.outcome == (STATUS_DIFFERS if differs else MATCHED)
    assert status_agrees(ours, theirs) is not differs


def test_status_is_judged_before_amount_and_the_reason_names_both():
    f = only(day_findings([refund_row("O1", "O1R001", 100, status="SUCCESS")], [],
                          keys(refunds=[OurRefund("O1R001", "O1", A, 90, "PROCESSING")])))
    assert f.outcome == STATUS_DIFFERS and "90 fen" in f.reason and "100 fen" in f.reason


def test_split_lines_matched_amount_differs_missing_and_status():
    ours = [line_("O1-S01", BRAND, 3_000), line_("O2-S01", BRAND, 500, state="CLOSED"),
            line_("O3-S01", BRAND, 700, state="PROCESSING"), line_("O4-S01", BRAND, 100),
            line_("O5-S01", BRAND, 100, state="SUCCESS")]
    rows = [share_row("O1-S01", BRAND, 3_000), share_row("O2-S01", BRAND, 500, "SUCCESS"),
            share_row("O3-S01", BRAND, 700, "PENDING"), share_row("O9-S02", BRAND, 10),
            share_row("O5-S01", BRAND, 101)]
    found = {f.key: f for f in day_findings([], rows, keys(sharing=ours))}
    assert {k: f.outcome for k, f in found.items()} == {
        "O1-S01": MATCHED, "O2-S01": STATUS_DIFFERS, "O3-S01": MATCHED, "O9-S02": MISSING_HERE,
        "O4-S01": MISSING_THERE, "O5-S01": SPLIT_DIFFERS}
    assert found["O9-S02"].order_id == "O9" and found["O5-S01"].diff_fen == 1 and found["O1-S01"].kind == SPLIT


def test_a_split_closed_in_the_bill_but_success_here_is_status_differs():
    f = only(day_findings([], [share_row("O1-S01", BRAND, 10, "CLOSED")], keys(sharing=[line_("O1-S01", BRAND, 10)])))
    assert (f.outcome, f.ours_status, f.theirs_status) == (STATUS_DIFFERS, "SUCCESS", "CLOSED")


def test_a_split_paid_to_another_receiver_is_one_split_differs():
    ours = [line_("O1-S01", BRAND, 3_000), line_("O1-S01", "oPromoter", 200)]
    rows = [share_row("O1-S01", "1900000999", 3_000), share_row("O1-S01", "oPromoter", 200, line=3)]
    found = day_findings([], rows, keys(sharing=ours))
    assert [f.outcome for f in found] == [MATCHED, SPLIT_DIFFERS]
    assert found[1].receiver == BRAND and "1900000999" in found[1].reason and found[1].line == 2


def test_a_line_to_an_extra_receiver_of_a_known_split_is_missing_here():
    ours = [line_("O1-S01", BRAND, 3_000)]
    rows = [share_row("O1-S01", BRAND, 3_000), share_row("O1-S01", "oStranger", 1)]
    assert [f.outcome for f in day_findings([], rows, keys(sharing=ours))] == [MATCHED, MISSING_HERE]


def test_returns_are_lines_of_their_own_kind():
    ours = [line_("O1-R01", BRAND, 300, kind=RETURN), line_("O2-R01", BRAND, 300, kind=RETURN, state="PROCESSING")]
    rows = [share_row("O1-R01", BRAND, 300, kind=bills.RETURN), share_row("O2-R01", BRAND, 301, "PROCESSING",
                                                                          kind=bills.RETURN),
            share_row("O3-R01", BRAND, 5, "FAILED", kind=bills.RETURN)]
    found = {f.key: f for f in day_findings([], rows, keys(sharing=ours))}
    assert {k: (f.kind, f.outcome) for k, f in found.items()} == {
        "O1-R01": (RETURN, MATCHED), "O2-R01": (RETURN, SPLIT_DIFFERS), "O3-R01": (RETURN, MISSING_HERE)}


def test_leftovers_say_nothing_of_a_bill_or_sub_merchant_not_read():
    k = keys([paid("O1", 1, sub=A), paid("O2", 1, sub=B)], sharing=[line_("O1-S01", BRAND, 1)])
    assert [f.key for f in leftovers(k, Seen(), sharing=False, sub_mchids={B})] == ["O2"]
    assert [f.key for f in leftovers(k, Seen(), trade=False)] == ["O1-S01"]
    assert day_findings([], None, k)[0].key == "O1" and len(day_findings([], None, k)) == 2


def test_the_matching_functions_share_one_seen_across_several_files():
    k = keys([paid("O1", 1, sub=A), paid("O2", 2, sub=B)])
    seen = Seen()
    first = list(match_trade_rows([pay_row("O1", 1, sub=A)], k, seen))
    second = list(match_trade_rows([pay_row("O2", 2, sub=B)], k, seen))
    assert [f.outcome for f in first + second] == [MATCHED, MATCHED] and list(leftovers(k, seen)) == []
    assert list(match_sharing_rows([], k, seen)) == []


def test_order_of_reads_storelinks_numbers():
    assert [order_of(n) for n in ("SL1-S01", "SL-1-R12", "SL1", "SL1-S", "-S01")] == ["SL1", "SL-1", "SL1", "SL1-S",
                                                                                       "-S01"]


def test_a_finding_is_immutable():
    f = only(day_findings([pay_row("O1", 1)], [], keys()))
    with pytest.raises(AttributeError):
        f.outcome = MATCHED
    assert not hasattr(f, "__dict__")


# --- generated days, through the real writer and parsers -------------------------------------------

@dataclass
class Item:
    """One thing of the day: our record and/or the bill's row."""
    kind: str
    ours: object
    row: object


def _stamp(i):
    return f"{DAY} {(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"


def generate_day(rng: random.Random, orders: int, subs=(A, B, "1900000111")):
    """A day whose bills were made from our own records: every item agrees.
    Refund and split statuses are (bill snapshot, ours later) pairs that agree."""
    items: list[Item] = []
    for i in range(orders):
        sub, otn = rng.choice(subs), f"SL{DAY.replace('-', '')}{i:06d}"
        total = rng.choice((1, 99, 1_990, 10_000, 499_900, rng.randint(1, 2_000_000)))
        fee = (total * 6 + 500) // 1000
        tx = f"4200000000{i:018d}"
        state = rng.random()
        if state < 0.05:                                       # closed here, never paid: in no bill
            items.append(Item(PAYMENT, OurPayment(otn, sub, total, "CLOSED"), None))
            continue
        items.append(Item(PAYMENT, OurPayment(otn, sub, total, rng.choice(("PAID", "COMPLETED")), tx,
                                              rng.choice((fee, None))),
                          bf.TradeBillRow(_stamp(i), "wx1", "1900000100", sub, tx, otn, "oU", "SUCCESS", total,
                                          total, fee, description="键盘, 黑色", attach="store=S1")))
        if rng.random() < 0.15 and total > 1:
            orn, amount = f"{otn}R001", rng.randint(1, total)
            theirs, ours = rng.choice((("SUCCESS", "SUCCESS"), ("PROCESSING", "SUCCESS"), ("PROCESSING", "PROCESSING"),
                                       ("ABNORMAL", "ABNORMAL"), ("CLOSED", "CLOSED"), ("PROCESSING", "CLOSED")))
            items.append(Item(REFUND, OurRefund(orn, otn, sub, amount, ours),
                              bf.TradeBillRow(_stamp(i), "wx1", "1900000100", sub, tx, otn, "oU", "REFUND", 0, 0,
                                              -((fee * amount) // total), refund_id=f"503{i:020d}", out_refund_no=orn,
                                              refund_fen=amount, refund_requested_fen=amount, refund_type="ORIGINAL",
                                              refund_status=theirs)))
        if rng.random() < 0.05:
            items.append(Item(REFUND, OurRefund(f"{otn}R002", otn, sub, 1, "REQUESTED"), None))   # never sent
        if rng.random() < 0.4 and total >= 10:
            out_no = f"{otn}-S01"
            receivers = [(BRAND, "MERCHANT_ID", total * 3 // 10 - total // 50)]
            if rng.random() < 0.3:
                receivers.append((f"oPromoter{i % 7}", "PERSONAL_OPENID", total // 50))
            for account, rtype, amount in receivers:
                if amount <= 0:
                    continue
                theirs, ours = rng.choice((("SUCCESS", "SUCCESS"), ("PENDING", "SUCCESS"), ("PENDING", "PROCESSING"),
                                           ("CLOSED", "CLOSED")))
                items.append(Item(SPLIT, OurSharingLine(SPLIT, out_no, otn, sub, account, amount, ours),
                                  bf.ProfitSharingBillRow(_stamp(i), sub, "1900000100", tx, f"3008{i:020d}",
                                                          f"3600{i:020d}", out_no, rtype, account, amount, bf.SPLIT,
                                                          theirs, "品牌方货款, 一期")))
            if rng.random() < 0.1 and receivers[0][2] > 1:
                back = rng.randint(1, receivers[0][2])
                items.append(Item(RETURN, OurSharingLine(RETURN, f"{otn}-R01", otn, sub, BRAND, back, "SUCCESS"),
                                  bf.ProfitSharingBillRow(_stamp(i), sub, "1900000100", tx, f"3009{i:020d}", "",
                                                          f"{otn}-R01", "MERCHANT_ID", BRAND, back, bf.RETURN,
                                                          "SUCCESS", "退货")))
    return items


def day_keys(items) -> DayKeys:
    k = DayKeys(DAY, {}, {}, {})
    for item in items:
        o = item.ours
        if o is None:
            continue
        if item.kind == PAYMENT:
            k.payments[o.out_trade_no] = o
        elif item.kind == REFUND:
            k.refunds[o.out_refund_no] = o
        else:
            k.sharing[(o.out_no, o.receiver)] = o
    return k


def reconcile_items(items, summary=None):
    """Write the bills with the sandbox's writers, read them with the real parsers, reconcile."""
    trade = [it.row for it in items if it.row is not None and it.kind in (PAYMENT, REFUND)]
    sharing = [it.row for it in items if it.row is not None and it.kind in (SPLIT, RETURN)]
    trade_rows = bills.parse_trade_bill(bf.trade_bill_lines(trade, "ALL"))
    sharing_rows = bills.parse_sharing_bill(bf.profitsharing_bill_lines(sharing))
    findings = reconcile_day(trade_rows, sharing_rows, day_keys(items))
    return list(summary.tally(findings) if summary is not None else findings)


def test_a_generated_day_with_the_four_injected_kinds_finds_exactly_them():
    rng = random.Random(13)
    items = generate_day(rng, 3_000)
    assert len(items) > 4_000
    by_key = {}
    for it in items:
        by_key.setdefault((it.kind, it.ours.out_trade_no if it.ours else None), []).append(it)
    paid_plain = [it for it in items if it.kind == PAYMENT and it.row is not None
                  and (REFUND, it.ours.out_trade_no) not in by_key and (SPLIT, it.ours.out_trade_no) not in by_key]
    closed = next(it for it in items if it.kind == PAYMENT and it.ours.state == "CLOSED")
    one_receiver = next(it for it in items if it.kind == SPLIT and it.ours.receiver == BRAND
                        and len(by_key[(SPLIT, it.ours.out_trade_no)]) == 1 and it.row.status == "SUCCESS")
    differs, refunded, control = paid_plain[0], paid_plain[1], paid_plain[2]

    # unknown_payment on an order that exists here as CLOSED, and one of an order we never made
    o = closed.ours
    closed.row = bf.TradeBillRow(_stamp(1), "wx1", "1900000100", o.sub_mchid, "4200000000999", o.out_trade_no, "oU",
                                 "SUCCESS", o.total_fen, o.total_fen, (o.total_fen * 6 + 500) // 1000)
    items.append(Item(PAYMENT, None, bf.TradeBillRow(_stamp(2), "wx1", "1900000100", A, "4200000000998",
                                                     "UNKNOWN20250101ABCDE", "oU", "SUCCESS", 777, 777, 5)))
    # amount_differs: only the bill's row
    differs.row = replace(differs.row, settlement_total_fen=differs.row.total_fen - 1,
                          total_fen=differs.row.total_fen - 1)
    # missed_refund: a refund the provider made without telling us
    r = refunded.row
    items.append(Item(REFUND, None, bf.TradeBillRow(r.trade_time, "wx1", "1900000100", r.sub_mchid, r.transaction_id,
                                                    r.out_trade_no, "oU", "REFUND", 0, 0, 0,
                                                    refund_id="5030000001", out_refund_no="MISSED20250101F00D",
                                                    refund_fen=1, refund_requested_fen=1, refund_type="ORIGINAL",
                                                    refund_status="SUCCESS")))
    # split_differs: one fen more on every receiver line of that split order
    one_receiver.row = replace(one_receiver.row, amount_fen=one_receiver.row.amount_fen + 1)

    summary = DaySummary(DAY)
    findings = reconcile_items(items, summary)
    found = sorted((f.outcome, f.kind, f.key) for f in findings if f.is_discrepancy)
    assert found == sorted([
        (STATUS_DIFFERS, PAYMENT, closed.ours.out_trade_no),
        (MISSING_HERE, PAYMENT, "UNKNOWN20250101ABCDE"),
        (AMOUNT_DIFFERS, PAYMENT, differs.ours.out_trade_no),
        (MISSING_HERE, REFUND, "MISSED20250101F00D"),
        (SPLIT_DIFFERS, SPLIT, one_receiver.ours.out_no),
    ])
    bill_rows = sum(it.row is not None for it in items)
    assert len(findings) == bill_rows                          # one finding per row, nothing left over
    assert summary.discrepancies() == 5 and summary.count(MATCHED) == bill_rows - 5
    matched = next(f for f in findings if f.key == control.ours.out_trade_no)
    assert (matched.outcome, matched.fee_fen, matched.theirs_fen) == (MATCHED, control.row.fee_fen,
                                                                      control.row.total_fen)
    assert next(f for f in findings if f.key == "MISSED20250101F00D").order_id == refunded.ours.out_trade_no


_PERTURBATIONS = {
    # name: (applies to, change, expected class)
    "drop_row": (lambda it: it.kind == PAYMENT and it.ours.state != "CLOSED", lambda it: replace_item(it, row=None),
                 MISSING_THERE),
    "drop_ours": (lambda it: it.ours.state != "CLOSED" if it.kind == PAYMENT else it.kind == REFUND
                  and it.row is not None, lambda it: replace_item(it, ours=None), MISSING_HERE),
    "payment_amount": (lambda it: it.kind == PAYMENT and it.row is not None,
                       lambda it: replace_item(it, row=replace(it.row, total_fen=it.row.total_fen + 1,
                                                               settlement_total_fen=it.row.total_fen + 1)),
                       AMOUNT_DIFFERS),
    "payment_not_applied": (lambda it: it.kind == PAYMENT and it.row is not None,
                            lambda it: replace_item(it, ours=replace(it.ours, state="CLOSED")), STATUS_DIFFERS),
    "refund_amount": (lambda it: it.kind == REFUND and it.row is not None,
                      lambda it: replace_item(it, ours=replace(it.ours, amount_fen=it.ours.amount_fen + 1)),
                      AMOUNT_DIFFERS),
    "refund_result_missed": (lambda it: it.kind == REFUND and it.row is not None,
                             lambda it: replace_item(it, row=replace(it.row, refund_status="SUCCESS"),
                                                     ours=replace(it.ours, state="PROCESSING")), STATUS_DIFFERS),
    "split_amount": (lambda it: it.kind in (SPLIT, RETURN),
                     lambda it: replace_item(it, row=replace(it.row, amount_fen=it.row.amount_fen + 1)),
                     SPLIT_DIFFERS),
    "split_receiver": (lambda it: it.kind == SPLIT,
                       lambda it: replace_item(it, row=replace(it.row, receiver="1900009999")), SPLIT_DIFFERS),
    "split_closed_here": (lambda it: it.kind == SPLIT,
                          lambda it: replace_item(it, row=replace(it.row, status="SUCCESS"),
                                                  ours=replace(it.ours, state="CLOSED")), STATUS_DIFFERS),
    "split_drop_row": (lambda it: it.kind in (SPLIT, RETURN), lambda it: replace_item(it, row=None), MISSING_THERE),
}


def replace_item(item, **changes):
    return Item(item.kind, changes.get("ours", item.ours), changes.get("row", item.row))


def _key_of(item):
    o = item.ours
    return o.out_trade_no if item.kind == PAYMENT else o.out_refund_no if item.kind == REFUND else o.out_no


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), orders=st.integers(0, 60))
def test_a_bill_made_from_our_own_keys_gives_only_matched_and_equal_sums(seed, orders):
    items = generate_day(random.Random(seed), orders)
    summary = DaySummary(DAY)
    findings = reconcile_items(items, summary)
    assert all(f.outcome == MATCHED for f in findings), [f for f in findings if f.is_discrepancy]
    assert len(findings) == sum(it.row is not None for it in items)
    for cell in summary.cells():
        assert cell.ours_fen == cell.theirs_fen
    fees = sum(it.row.fee_fen for it in items if it.kind in (PAYMENT, REFUND) and it.row is not None)
    assert sum(c.fee_fen for c in summary.totals()) == fees


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), orders=st.integers(5, 80), k=st.integers(1, 6), data=st.data())
def test_perturbing_k_items_gives_exactly_k_findings_of_the_right_class(seed, orders, k, data):
    items = generate_day(random.Random(seed), orders)
    expected = Counter()
    touched = set()
    for _ in range(k):
        name = data.draw(st.sampled_from(sorted(_PERTURBATIONS)))
        applies, change, outcome = _PERTURBATIONS[name]
        candidates = [i for i, it in enumerate(items) if i not in touched and it.ours is not None and applies(it)]
        if not candidates:
            continue
        i = data.draw(st.sampled_from(candidates))
        touched.add(i)
        kind, key = items[i].kind, _key_of(items[i])
        items[i] = change(items[i])
        expected[(outcome, kind, key)] += 1
    summary = DaySummary(DAY)
    findings = reconcile_items(items, summary)
    found = Counter((f.outcome, f.kind, f.key) for f in findings if f.is_discrepancy)
    assert found == expected
    assert summary.discrepancies() == sum(expected.values())


# --- the report -------------------------------------------------------------------------------------

def test_the_report_csv_exactly():
    k = keys([paid("O1", 10_000, fee=60), paid("O2", 5_000, sub=B), paid("O3", 2_000, state="CLOSED"),
              paid("O4", 199, sub=B)],
             [OurRefund("O1R001", "O1", A, 3_000, "PROCESSING")],
             [line_("O1-S01", BRAND, 3_000)])
    trade = [pay_row("O1", 10_000, fee=60), pay_row("O2", 4_999, sub=B, line=3), pay_row("O3", 2_000, line=4),
             refund_row("O1", "O1R001", 3_000, "SUCCESS", line=5), refund_row("O1", 'MISSED"1', 1_000, line=6)]
    sharing = [share_row("O1-S01", BRAND, 3_001)]
    summary = DaySummary(DAY)
    discrepancies = [f for f in summary.tally(reconcile_day(trade, sharing, k)) if f.is_discrepancy]
    text = "".join(report_lines(DAY, discrepancies, summary))
    assert text == (
        "section,day,sub_mchid,class,kind,order_id,key,receiver,ours_fen,ours_yuan,theirs_fen,theirs_yuan,diff_fen,"
        "diff_yuan,ours_status,theirs_status,transaction_id,fee_fen,fee_yuan,our_fee_fen,bill_line,reason\n"
        'discrepancy,2025-01-01,1900000109,MISSING_HERE,REFUND,O1,"MISSED""1",,,,1000,10.00,,,,SUCCESS,42O1,-6,'
        "-0.06,,6,\"refunded at the provider, no such refund here\"\n"
        "discrepancy,2025-01-01,1900000109,STATUS_DIFFERS,PAYMENT,O3,O3,,2000,20.00,2000,20.00,0,0.00,CLOSED,SUCCESS,"
        "42O3,12,0.12,,4,\"paid at the provider, CLOSED here (never applied)\"\n"
        "discrepancy,2025-01-01,1900000109,STATUS_DIFFERS,REFUND,O1,O1R001,,3000,30.00,3000,30.00,0,0.00,PROCESSING,"
        "SUCCESS,42O1,-18,-0.18,,5,\"status here PROCESSING, in the bill SUCCESS\"\n"
        "discrepancy,2025-01-01,1900000109,SPLIT_DIFFERS,SPLIT,O1,O1-S01,1900000200,3000,30.00,3001,30.01,1,0.01,"
        "SUCCESS,SUCCESS,42tx,,,,2,\"split here 3000 fen, in the bill 3001 fen\"\n"
        "discrepancy,2025-01-01,1900000110,MISSING_THERE,PAYMENT,O4,O4,,199,1.99,,,,,PAID,,42O4,,,,,"
        "\"paid here, not in the provider's bill\"\n"
        "discrepancy,2025-01-01,1900000110,AMOUNT_DIFFERS,PAYMENT,O2,O2,,5000,50.00,4999,49.99,-1,-0.01,PAID,SUCCESS,"
        "42O2,30,0.30,,3,\"total here 5000 fen, in the bill 4999 fen\"\n"
        "section,day,sub_mchid,class,kind,count,ours_fen,ours_yuan,theirs_fen,theirs_yuan,fee_fen,fee_yuan\n"
        "summary,2025-01-01,1900000109,MATCHED,PAYMENT,1,10000,100.00,10000,100.00,60,0.60\n"
        "summary,2025-01-01,1900000109,MISSING_HERE,REFUND,1,0,0.00,1000,10.00,-6,-0.06\n"
        "summary,2025-01-01,1900000109,STATUS_DIFFERS,PAYMENT,1,2000,20.00,2000,20.00,12,0.12\n"
        "summary,2025-01-01,1900000109,STATUS_DIFFERS,REFUND,1,3000,30.00,3000,30.00,-18,-0.18\n"
        "summary,2025-01-01,1900000109,SPLIT_DIFFERS,SPLIT,1,3000,30.00,3001,30.01,0,0.00\n"
        "summary,2025-01-01,1900000110,MISSING_THERE,PAYMENT,1,199,1.99,0,0.00,0,0.00\n"
        "summary,2025-01-01,1900000110,AMOUNT_DIFFERS,PAYMENT,1,5000,50.00,4999,49.99,30,0.30\n"
        "summary,2025-01-01,ALL,MATCHED,PAYMENT,1,10000,100.00,10000,100.00,60,0.60\n"
        "summary,2025-01-01,ALL,MISSING_HERE,REFUND,1,0,0.00,1000,10.00,-6,-0.06\n"
        "summary,2025-01-01,ALL,MISSING_THERE,PAYMENT,1,199,1.99,0,0.00,0,0.00\n"
        "summary,2025-01-01,ALL,AMOUNT_DIFFERS,PAYMENT,1,5000,50.00,4999,49.99,30,0.30\n"
        "summary,2025-01-01,ALL,STATUS_DIFFERS,PAYMENT,1,2000,20.00,2000,20.00,12,0.12\n"
        "summary,2025-01-01,ALL,STATUS_DIFFERS,REFUND,1,3000,30.00,3000,30.00,-18,-0.18\n"
        "summary,2025-01-01,ALL,SPLIT_DIFFERS,SPLIT,1,3000,30.00,3001,30.01,0,0.00\n")


def test_the_report_leaves_matched_out_and_its_order_does_not_depend_on_the_input_order():
    k = keys([paid(f"O{i}", 100 + i, sub=(A, B)[i % 2]) for i in range(20)])
    rows = [pay_row(f"O{i}", 100 + i + (i % 3 == 0), sub=(A, B)[i % 2], line=i + 2) for i in range(20)]
    summary = DaySummary(DAY)
    findings = list(summary.tally(reconcile_day(rows, [], k)))
    one = list(report_lines(DAY, findings, summary))
    shuffled = findings[:]
    random.Random(1).shuffle(shuffled)
    assert list(report_lines(DAY, shuffled, summary)) == one
    assert sum(line.startswith("discrepancy,") for line in one) == 7
    assert not any(",MATCHED," in line for line in one if line.startswith("discrepancy,"))


@given(st.integers(-10**12, 10**12))
def test_the_reports_yuan_is_exact(fen):
    f = Finding(PAYMENT, MISSING_HERE, A, "O", "O", "", None, fen, None, "SUCCESS", None, None, None, "", 2)
    summary = DaySummary(DAY)
    summary.add(f)
    line = list(report_lines(DAY, [f], summary))[1].split(",")
    assert int(line[10]) == fen
    whole, cents = line[11].lstrip("-").split(".")
    assert (int(whole) * 100 + int(cents)) * (-1 if line[11].startswith("-") else 1) == fen and len(cents) == 2
