"""The statement's arithmetic (domain rule 6), without AWS: signs, grouping, balances,
Beijing months, settlements and the CSV."""
import csv
import io
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import statements as rules
from chalicelib.domain.splits import CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT
from chalicelib.domain.statements import (BRAND_PAID_DEALER, DEALER_PAID_BRAND, Movement, Settlement,
                                          build_statement, month_bounds)
from chalicelib.domain.time import BEIJING
from chalicelib.errors import ValidationFailed

DEALER = "dealer-shu"


def at(text: str) -> float:
    """A Beijing wall-clock time as a timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def owes(order_id, amount, when, n=0):
    """The dealer owes the brand ``amount`` more (claim ← receivable)."""
    return Movement(order_id, f"e#{n}", CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, amount, at(when))


def owed(order_id, amount, when, n=0):
    """The dealer owes ``amount`` less, or the brand owes the dealer (receivable ← claim)."""
    return Movement(order_id, f"r#{n}", RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT, amount, at(when))


def settled(month, amount, direction=DEALER_PAID_BRAND, reference="TX1", note=None, when="2026-10-31 12:00:00"):
    return Settlement(DEALER, month, reference, amount, direction, note, at(when), "brand:brand-lumen")


# --- signs -----------------------------------------------------------------------------------

def test_an_entry_to_the_claim_raises_what_the_dealer_owes_and_the_reverse_lowers_it():
    assert owes("A", 550, "2026-10-01 00:00:00").signed_fen == 550
    assert owed("A", 550, "2026-10-01 00:00:00").signed_fen == -550


def test_an_entry_outside_the_memo_pair_is_refused():
    with pytest.raises(ValueError, match="not a receivable memo entry"):
        Movement("A", "x", "brand", "dealer:dealer-shu", 5, 0.0).signed_fen


# --- months ------------------------------------------------------------------------------------

def test_a_month_runs_from_beijing_midnight_to_the_next_month_s():
    start, end = month_bounds("2026-10")
    assert start == at("2026-10-01 00:00:00") and end == at("2026-11-01 00:00:00")
    assert month_bounds("2026-12") == (at("2026-12-01 00:00:00"), at("2027-01-01 00:00:00"))
    # 16:00 UTC on the last day is already the next Beijing month
    assert rules.month_of(datetime.fromisoformat("2026-10-31T16:00:00+00:00").timestamp()) == "2026-11"
    assert rules.month_of(datetime.fromisoformat("2026-10-31T15:59:59+00:00").timestamp()) == "2026-10"
    assert rules.next_month("2026-12") == "2027-01" and rules.next_month("2026-01") == "2026-02"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-10", "1999-12", "2026-10-01", "", None, 202610])
def test_a_month_that_is_not_a_real_month_is_refused(text):
    with pytest.raises(ValidationFailed):
        rules.check_month(text)


def test_a_month_after_the_business_clock_s_is_refused():
    now = at("2026-11-23 10:00:00")
    assert rules.check_not_future("2026-11", now) == "2026-11"
    assert rules.check_not_future("2025-01", now) == "2025-01"
    with pytest.raises(ValidationFailed, match="after the current month"):
        rules.check_not_future("2026-12", now)


def test_a_statement_id_is_the_dealer_and_the_month():
    assert rules.statement_id(DEALER, "2026-10") == "dealer-shu:2026-10"
    assert rules.parse_statement_id("dealer-shu:2026-10") == (DEALER, "2026-10")
    for bad in ["dealer-shu", "dealer-shu:2026-13", "dealer shu:2026-10", ":2026-10", "a:b:2026-10", None]:
        with pytest.raises(ValidationFailed):
            rules.parse_statement_id(bad)


# --- the statement ---------------------------------------------------------------------------

def test_a_worked_statement():
    movements = [
        owes("SL-OLD", 9_000, "2026-09-12 10:00:00"),                     # September: opening
        owes("SL-B", 5_500, "2026-10-03 09:00:00"),                       # cost 85 %, cap 30 %
        owes("SL-A", 6_000, "2026-10-01 00:00:00", 1),                    # the very first moment of October
        owed("SL-A", 6_000, "2026-10-05 12:00:00", 2),                    # fully refunded: cancelled
        owed("SL-A", 3_000, "2026-10-05 12:00:01", 3),                    # the split not returned: brand owes
        owes("SL-B", 40, "2026-10-04 09:00:00", 4),                       # the refit's difference
        owes("SL-NOV", 1_000, "2026-11-01 00:00:00"),                     # November: ignored
    ]
    settlements = [settled("2026-09", 4_000, reference="TX-SEP"), settled("2026-10", 2_000, reference="TX-OCT"),
                   settled("2026-10", 500, BRAND_PAID_DEALER, reference="TX-OCT-B", when="2026-11-02 08:00:00"),
                   settled("2026-11", 7_000, reference="TX-NOV")]
    statement = build_statement(DEALER, "2026-10", movements, settlements, dealer_name="Shu Digital")

    assert statement.opening_balance_fen == 9_000 - 4_000
    assert [(l.order_id, l.owed_by_dealer_fen, l.owed_by_brand_fen, l.net_fen, l.entries) for l in statement.lines] == [
        ("SL-A", 6_000, 9_000, -3_000, 3), ("SL-B", 5_540, 0, 5_540, 2)]
    assert statement.lines[0].first_at == at("2026-10-01 00:00:00")
    assert statement.lines[0].last_at == at("2026-10-05 12:00:01")
    assert [s.reference for s in statement.settlements] == ["TX-OCT", "TX-OCT-B"]
    assert (statement.owed_by_dealer_fen, statement.owed_by_brand_fen, statement.net_fen) == (11_540, 9_000, 2_540)
    assert (statement.settled_by_dealer_fen, statement.settled_by_brand_fen) == (2_000, 500)
    assert statement.closing_balance_fen == 5_000 + 2_540 - 2_000 + 500
    body = statement.to_json()
    assert body["statement_id"] == "dealer-shu:2026-10" and body["dealer_name"] == "Shu Digital"
    assert body["period_start"] == "2026-10-01T00:00:00+08:00" and body["period_end"] == "2026-11-01T00:00:00+08:00"
    assert body["closing_balance_fen"] == 6_040
    assert body["lines"][0] == {"order_id": "SL-A", "owed_by_dealer_fen": 6_000, "owed_by_brand_fen": 9_000,
                                "net_fen": -3_000, "entries": 3, "first_at": "2026-10-01T00:00:00+08:00",
                                "last_at": "2026-10-05T12:00:01+08:00"}
    assert body["settlements"][1]["statement_id"] == "dealer-shu:2026-10"
    assert body["settlements"][1]["recorded_at"] == "2026-11-02T08:00:00+08:00"


def test_a_month_without_movements_carries_the_balance_over():
    statement = build_statement(DEALER, "2026-10", [owes("A", 700, "2026-08-01 00:00:00")], [])
    assert statement.lines == () and statement.opening_balance_fen == statement.closing_balance_fen == 700


def test_a_return_that_leaves_the_brand_owing_makes_a_negative_balance():
    statement = build_statement(DEALER, "2026-10", [owed("A", 3_000, "2026-10-05 12:00:00")], [])
    assert statement.closing_balance_fen == -3_000
    assert statement.lines[0].owed_by_brand_fen == 3_000 and statement.lines[0].owed_by_dealer_fen == 0
    paid_back = build_statement(DEALER, "2026-10", [owed("A", 3_000, "2026-10-05 12:00:00")],
                                [settled("2026-10", 3_000, BRAND_PAID_DEALER)])
    assert paid_back.closing_balance_fen == 0


def test_another_dealer_s_settlement_is_a_bug():
    other = Settlement("dealer-chu", "2026-10", "TX", 1, DEALER_PAID_BRAND)
    with pytest.raises(ValueError):
        build_statement(DEALER, "2026-10", [], [other])


# --- settlements ------------------------------------------------------------------------------

def test_a_settlement_s_effect_on_the_balance():
    assert settled("2026-10", 100).effect_fen == -100
    assert settled("2026-10", 100, BRAND_PAID_DEALER).effect_fen == 100
    with pytest.raises(ValueError):
        settled("2026-10", 0)
    with pytest.raises(ValueError):
        Settlement(DEALER, "2026-10", "TX", 5, "SIDEWAYS")


def test_the_same_request_is_a_repeat_whatever_its_time_and_other_figures_are_not():
    first = settled("2026-10", 100, note="October")
    assert first.same_request(settled("2026-10", 100, note="October", when="2026-11-05 00:00:00"))
    assert settled("2026-10", 100).same_request(settled("2026-10", 100, note=""))
    assert not first.same_request(settled("2026-10", 101, note="October"))
    assert not first.same_request(settled("2026-10", 100, BRAND_PAID_DEALER, note="October"))
    assert not first.same_request(settled("2026-09", 100, note="October"))
    assert not first.same_request(settled("2026-10", 100, note="Oct."))


@pytest.mark.parametrize("body, field", [
    ({"direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": 0, "direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": 1.5, "direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": True, "direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": "100", "direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": 10 ** 12, "direction": DEALER_PAID_BRAND, "reference": "TX"}, "amount_fen"),
    ({"amount_fen": 1, "direction": "DEALER", "reference": "TX"}, "direction"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND}, "reference"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND, "reference": " "}, "reference"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND, "reference": "x" * 65}, "reference"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND, "reference": "a\nb"}, "reference"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND, "reference": "TX", "note": "n" * 201}, "note"),
    ({"amount_fen": 1, "direction": DEALER_PAID_BRAND, "reference": "TX", "note": 5}, "note"),
])
def test_a_settlement_body_is_checked_field_by_field(body, field):
    with pytest.raises(ValidationFailed) as caught:
        rules.check_settlement_body(body)
    assert caught.value.details["field"] == field


def test_a_settlement_body_is_trimmed():
    assert rules.check_settlement_body({"amount_fen": 5, "direction": BRAND_PAID_DEALER, "reference": " TX 9 ",
                                        "note": " n "}) == {
        "amount_fen": 5, "direction": BRAND_PAID_DEALER, "reference": "TX 9", "note": "n"}


# --- CSV ---------------------------------------------------------------------------------------

def test_the_csv_has_an_opening_a_row_per_order_and_settlement_and_a_closing():
    movements = [owes("SL-B", 5_500, "2026-10-03 09:00:00"), owed("SL-A", 3_000, "2026-10-01 09:00:00"),
                 owes("SL-OLD", 100, "2026-09-01 09:00:00")]
    statement = build_statement(DEALER, "2026-10", movements,
                                [settled("2026-10", 2_000, reference="=HYPERLINK(1)", note="-late")])
    rows = list(csv.reader(io.StringIO(rules.to_csv(statement))))
    assert rows[0] == list(rules.CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["OPENING", "ORDER", "ORDER", "SETTLEMENT", "CLOSING"]
    assert rows[1][4] == "2026-10-01T00:00:00+08:00" and rows[1][9] == "100"
    assert rows[2][1:2] + rows[2][6:9] == ["SL-A", "0", "3000", "-3000"]     # a negative stays a number
    assert rows[3][1:2] + rows[3][6:9] == ["SL-B", "5500", "0", "5500"]
    assert rows[4][2:4] == ["'=HYPERLINK(1)", DEALER_PAID_BRAND] and rows[4][8] == "-2000" and rows[4][10] == "'-late"
    assert rows[5][4] == "2026-11-01T00:00:00+08:00"
    assert rows[5][6:10] == ["5500", "3000", str(2500 - 2000), str(100 + 2500 - 2000)]
    assert int(rows[5][9]) == statement.closing_balance_fen


# --- property: the books carry over ----------------------------------------------------------------

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]
_START, _END = month_bounds(MONTHS[0])[0] - 86400 * 40, month_bounds(MONTHS[-1])[1] + 86400 * 40

movements_st = st.lists(st.builds(
    lambda order, amount, up, when, n: Movement(f"SL{order}", f"e#{n}", *(
        (CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT) if up else (RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT)), amount, when),
    st.integers(0, 6), st.integers(1, 100_000), st.booleans(),
    st.one_of(st.floats(_START, _END), st.sampled_from([month_bounds(m)[0] for m in MONTHS])), st.integers(0, 99)),
    max_size=40)
settlements_st = st.lists(st.builds(
    lambda month, amount, direction, n: Settlement(DEALER, month, f"TX{n}", amount, direction),
    st.sampled_from(["2025-12", *MONTHS, "2026-05"]), st.integers(1, 100_000), st.sampled_from(rules.DIRECTIONS),
    st.integers(0, 999)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(movements_st, settlements_st)
def test_the_closing_balance_of_a_month_is_the_opening_balance_of_the_next(movements, settlements):
    statements = [build_statement(DEALER, month, movements, settlements) for month in MONTHS]
    for this, following in zip(statements, statements[1:]):
        assert this.closing_balance_fen == following.opening_balance_fen
    # …and every movement and settlement up to the last month's end is counted exactly once
    last_end = month_bounds(MONTHS[-1])[1]
    total = (sum(m.signed_fen for m in movements if m.at < last_end)
             + sum(s.effect_fen for s in settlements if s.month <= MONTHS[-1]))
    assert statements[-1].closing_balance_fen == total
    for statement in statements:
        assert sum(l.net_fen for l in statement.lines) == statement.net_fen
        assert all(l.owed_by_dealer_fen >= 0 and l.owed_by_brand_fen >= 0 for l in statement.lines)
