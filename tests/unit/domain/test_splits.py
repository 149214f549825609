import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import splits
from chalicelib.domain.orders import Amounts, Order, OrderLine
from chalicelib.domain.refunds import line_paid_fen
from chalicelib.domain.splits import (CommissionShare, LedgerEntry, LedgerOutOfBalance, PlanLine, balances,
                                      check_commission_configuration, check_invariant, ledger_for_plan,
                                      paid_per_line, plan_split)
from chalicelib.errors import BusinessRuleViolated

BPS = 10_000


def line(sku="A", paid=10_000, cost=8_500, quantity=1, rates=()):
    return PlanLine(sku=sku, quantity=quantity, paid_fen=paid, unit_cost_fen=cost, rates_bps=tuple(rates))


# --- worked examples ----------------------------------------------------------------------

WORKED = [  # name, lines, promoters, depth, max_ratio, splittable -> cap, brand split, commission, receivable, cut
    ("cost 85 %, cap 30 %, no promoter: brand split 30 %, receivable 55 %",
     [line()], (), 1, 3000, 10_000, dict(cap=3000, split=3000, commission=0, receivable=5500, cut=0)),
    ("one promoter at 500 bps: commission 5 %, brand 25 %, receivable 60 %",
     [line(rates=[500])], ("p1",), 1, 3000, 10_000, dict(cap=3000, split=2500, commission=500, receivable=6000,
                                                         cut=0)),
    ("the fee lowers the cap when splittable is below paid × max_ratio",
     [line(cost=9500, rates=[500])], ("p1",), 1, 10_000, 9_940,
     dict(cap=9940, split=9440, commission=500, receivable=60, cut=0)),
    ("depth 1 with a 3-level chain pays level 1 only",
     [line(rates=[500, 300, 200])], ("p1", "p2", "p3"), 1, 3000, 10_000,
     dict(cap=3000, split=2500, commission=500, receivable=6000, cut=0)),
    ("depth 3 with a 3-level chain pays every level",
     [line(rates=[500, 300, 200])], ("p1", "p2", "p3"), 3, 3000, 10_000,
     dict(cap=3000, split=2000, commission=1000, receivable=6500, cut=0)),
    ("depth 3 with a 2-promoter chain pays two levels",
     [line(rates=[500, 300, 200])], ("p1", "p2"), 3, 3000, 10_000,
     dict(cap=3000, split=2200, commission=800, receivable=6300, cut=0)),
    ("a rate missing for a level is 0",
     [line(rates=[500])], ("p1", "p2"), 2, 3000, 10_000,
     dict(cap=3000, split=2500, commission=500, receivable=6000, cut=0)),
    ("cap 0: everything is receivable and the commissions are cut",
     [line(rates=[500])], ("p1",), 1, 0, 10_000, dict(cap=0, split=0, commission=0, receivable=8500, cut=500)),
    ("the cap is rounded down, never up (9999 × 30 % = 2999.7)",
     [line(paid=9_999)], (), 1, 3000, 9_999, dict(cap=2999, split=2999, commission=0, receivable=5501, cut=0)),
    ("a commission is floored per line and level (3 × floor(0.5) = 0)",
     [line("A", 1, 0, rates=[5000]), line("B", 1, 0, rates=[5000]), line("C", 1, 0, rates=[5000])], ("p1",), 1,
     10_000, 3, dict(cap=3, split=0, commission=0, receivable=0, cut=0)),
    ("the brand's share is cost × quantity, summed over lines",
     [line("A", 3 * 1000, 600, quantity=3), line("B", 2 * 500, 400, quantity=2)], (), 1, 10_000, 4_000,
     dict(cap=4000, split=2600, commission=0, receivable=0, cut=0)),
]


@pytest.mark.parametrize("name, lines, promoters, depth, max_ratio, splittable, expected", WORKED,
                         ids=[row[0] for row in WORKED])
def test_worked_examples(name, lines, promoters, depth, max_ratio, splittable, expected):
    plan = plan_split(lines, promoters, depth, max_ratio, splittable)
    assert (plan.cap_fen, plan.brand_split_fen, plan.commission_fen, plan.receivable_fen, plan.cut_commission_fen) \
        == (expected["cap"], expected["split"], expected["commission"], expected["receivable"], expected["cut"])
    assert plan.paid_fen == sum(l.paid_fen for l in lines)
    assert plan.fee_fen == plan.paid_fen - splittable
    assert plan.dealer_remainder_fen == plan.paid_fen - plan.fee_fen - plan.brand_split_fen - plan.commission_fen
    assert plan.dealer_profit_fen == plan.dealer_remainder_fen - plan.receivable_fen
    check_invariant(ledger_for_plan("O1", "d1", plan), plan.paid_fen)


def test_the_85_percent_example_leaves_the_dealer_its_15_percent_after_the_statement():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 10_000)
    assert plan.dealer_remainder_fen == 7000     # its cash, the 6000 it owes the brand included
    assert plan.dealer_profit_fen == 1000        # 15 % margin minus the 5 % commission


def test_commissions_name_level_promoter_and_line():
    plan = plan_split([line("A", 10_000, 0, rates=[500, 300]), line("B", 2_000, 0, rates=[1000])],
                      ("p1", "p2"), 2, 3000, 12_000)
    assert plan.commissions == (CommissionShare(1, "p1", "A", 500), CommissionShare(1, "p1", "B", 200),
                                CommissionShare(2, "p2", "A", 300))   # B has no level-2 rate: no 0 share
    assert plan.commissions_by_promoter() == {"p1": 700, "p2": 300}


def test_commissions_over_the_cap_are_cut_deepest_level_first_then_in_line_order():
    lines = [line("A", 10_000, 0, rates=[1000, 500, 300]), line("B", 10_000, 0, rates=[1000, 500, 300])]
    # raw: level 1 1000 + 1000, level 2 500 + 500, level 3 300 + 300 = 3600; cap 12 % of 20000 = 2400
    plan = plan_split(lines, ("p1", "p2", "p3"), 3, 1200, 20_000)
    assert plan.cap_fen == 2400
    assert plan.cut_commission_fen == 1200
    assert plan.cut_commissions == (CommissionShare(2, "p2", "A", 500), CommissionShare(2, "p2", "B", 100),
                                    CommissionShare(3, "p3", "A", 300), CommissionShare(3, "p3", "B", 300))
    assert plan.commissions == (CommissionShare(1, "p1", "A", 1000), CommissionShare(1, "p1", "B", 1000),
                                CommissionShare(2, "p2", "B", 400))
    assert plan.commission_fen == 2400 and plan.brand_split_fen == 0


def test_the_plan_reserves_the_commission_room_before_the_brand_split():
    plan = plan_split([line(paid=10_000, cost=10_000 - 2_000, rates=[2000])], ("p1",), 1, 3000, 10_000)
    assert plan.commission_fen == 2000
    assert plan.brand_split_fen == 1000          # not 3000: the later commission split must still fit
    assert plan.brand_split_fen + plan.commission_fen == plan.cap_fen


def test_a_free_order_plans_nothing_but_the_brand_receivable():
    plan = plan_split([line(paid=0, cost=500, rates=[1000])], ("p1",), 1, 3000, 0)
    assert (plan.cap_fen, plan.brand_split_fen, plan.commission_fen, plan.receivable_fen) == (0, 0, 0, 500)
    entries = ledger_for_plan("O1", "d1", plan)
    assert [e.cause for e in entries] == ["RECEIVABLE"]
    check_invariant(entries, 0)


# --- the ledger -------------------------------------------------------------------------

def test_the_planned_ledger_of_the_worked_example():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 9_940)   # 60 fen fee
    entries = ledger_for_plan("O1", "d1", plan)
    assert entries == (
        LedgerEntry("O1", "dealer:d1", "customer", 10_000, "PAYMENT"),
        LedgerEntry("O1", "provider_fee", "dealer:d1", 60, "FEE"),
        LedgerEntry("O1", "brand", "dealer:d1", 2_500, "SPLIT"),
        LedgerEntry("O1", "promoter:p1", "dealer:d1", 500, "COMMISSION"),
        LedgerEntry("O1", "claim:brand<-dealer", "receivable:dealer->brand", 6_000, "RECEIVABLE"),
    )
    assert balances(entries) == {"customer": -10_000, "dealer:d1": 6_940, "provider_fee": 60, "brand": 2_500,
                                 "promoter:p1": 500, "claim:brand<-dealer": 6_000,
                                 "receivable:dealer->brand": -6_000}
    assert check_invariant(entries, 10_000) == {"brand": 2_500, "commissions": 500, "dealer": 6_940,
                                                "refunded": 0, "fee": 60, "receivable": 6_000}


def test_one_commission_entry_per_promoter_summed_over_lines_nearest_first():
    plan = plan_split([line("A", 10_000, 0, rates=[500, 300]), line("B", 5_000, 0, rates=[400, 100])],
                      ("p1", "p2"), 2, 3000, 15_000)
    commissions = [e for e in ledger_for_plan("O1", "d1", plan) if e.cause == "COMMISSION"]
    assert [(e.debit, e.amount_fen) for e in commissions] == [("promoter:p1", 700), ("promoter:p2", 350)]


def test_a_statement_settles_the_receivable_in_cash_and_closes_the_memo_pair():
    plan = plan_split([line()], (), 1, 3000, 10_000)
    entries = ledger_for_plan("O1", "d1", plan) + (
        LedgerEntry("O1", "brand", "dealer:d1", 5_500, "STATEMENT"),
        LedgerEntry("O1", "receivable:dealer->brand", "claim:brand<-dealer", 5_500, "STATEMENT"),
    )
    breakdown = check_invariant(entries, 10_000)
    assert breakdown["brand"] == 8_500 and breakdown["dealer"] == 1_500 and breakdown["receivable"] == 0


def test_a_full_refund_that_returns_the_split_still_accounts_for_every_fen():
    plan = plan_split([line(rates=[500])], ("p1",), 1, 3000, 10_000)
    entries = ledger_for_plan("O1", "d1", plan) + (
        LedgerEntry("O1", "refunded", "dealer:d1", 10_000, "REFUND"),
        LedgerEntry("O1", "dealer:d1", "brand", 2_500, "RETURN"),
        LedgerEntry("O1", "dealer:d1", "promoter:p1", 500, "RETURN"),
        LedgerEntry("O1", "receivable:dealer->brand", "claim:brand<-dealer", 6_000, "REFUND"),
    )
    assert check_invariant(entries, 10_000) == {"brand": 0, "commissions": 0, "dealer": 0, "refunded": 10_000,
                                                 "fee": 0, "receivable": 0}


def _planned():
    return ledger_for_plan("O1", "d1", plan_split([line(rates=[500])], ("p1",), 1, 3000, 9_940))


@pytest.mark.parametrize("entries, paid", [
    (_planned(), 9_999),                                                                    # wrong amount paid
    (_planned() + (LedgerEntry("O1", "brand", "receivable:dealer->brand", 10, "SPLIT"),), 10_000),  # memo as cash
    (_planned() + (LedgerEntry("O1", "bank", "dealer:d1", 10, "SPLIT"),), 10_000),           # unknown account
    (_planned() + (LedgerEntry("O1", "dealer:d2", "dealer:d1", 10, "SPLIT"),), 10_000),      # two dealers
    (_planned() + (LedgerEntry("O2", "brand", "dealer:d1", 10, "SPLIT"),), 10_000),          # two orders
], ids=["wrong-paid", "memo-mixed-with-cash", "unknown-account", "two-dealers", "two-orders"])
def test_a_ledger_that_does_not_account_for_every_fen_is_caught(entries, paid):
    with pytest.raises(LedgerOutOfBalance) as caught:
        check_invariant(entries, paid)
    assert caught.value.status == 500 and caught.value.code == "LEDGER_OUT_OF_BALANCE"


@pytest.mark.parametrize("amount, cause, debit, credit", [(0, "SPLIT", "brand", "dealer:d1"),
                                                          (-1, "SPLIT", "brand", "dealer:d1"),
                                                          (1, "TIP", "brand", "dealer:d1"),
                                                          (1, "SPLIT", "brand", "brand")])
def test_ledger_entries_move_at_least_one_fen_between_two_accounts_for_a_known_cause(amount, cause, debit, credit):
    with pytest.raises(ValueError):
        LedgerEntry("O1", debit, credit, amount, cause)


# --- the configuration rule -------------------------------------------------------------

CONFIGURATIONS = [  # price, cost, rates, smallest max_ratio, error code or None
    (10_000, 8_500, (1000, 500), 3000, None),                  # cost + commission exactly the price
    (10_000, 8_501, (1000, 500), 3000, "COST_AND_COMMISSION_ABOVE_PRICE"),   # one fen over
    (10_000, 8_500, (1000, 501), 3000, "COST_AND_COMMISSION_ABOVE_PRICE"),   # one bps over
    (3, 2, (3333,), 3000, "COMMISSION_ABOVE_SPLIT_CAP"),       # 2 + 0.9999 fits the price; 3333 > 3000
    (3, 2, (3333,), 3333, None),
    (3, 2, (3334,), 10_000, "COST_AND_COMMISSION_ABOVE_PRICE"),  # exact, not floored: 2 + 1.0002 > 3
    (10_000, 0, (1000, 500, 300), 1800, None),                 # Σ rates exactly the smallest cap
    (10_000, 0, (1000, 500, 301), 1800, "COMMISSION_ABOVE_SPLIT_CAP"),       # one bps over
    (10_000, 10_000, (), 0, None),                             # cost = price, no commission
    (10_000, 10_001, (), 3000, "COST_AND_COMMISSION_ABOVE_PRICE"),
    (0, 0, (0,), 0, None),
]


@pytest.mark.parametrize("price, cost, rates, smallest, code", CONFIGURATIONS)
def test_commission_configuration(price, cost, rates, smallest, code):
    if code is None:
        assert check_commission_configuration(price, cost, rates, smallest) is None
        return
    with pytest.raises(BusinessRuleViolated) as caught:
        check_commission_configuration(price, cost, rates, smallest)
    assert caught.value.code == code and caught.value.status == 422
    assert isinstance(caught.value, splits.InvalidCommissionConfiguration)


@pytest.mark.parametrize("price, cost, rates, smallest", [(-1, 0, (), 3000), (100, -1, (), 3000),
                                                          (100, 0, (-1,), 3000), (100, 0, (10_001,), 10_000),
                                                          (100, 0, (1, 1, 1, 1), 3000), (100, 0, (), 10_001),
                                                          (100.0, 0, (), 3000), (100, 0, (1.5,), 3000)])
def test_nonsense_configurations_are_value_errors(price, cost, rates, smallest):
    with pytest.raises(ValueError):
        check_commission_configuration(price, cost, rates, smallest)


# --- paid per line ----------------------------------------------------------------------

def test_the_discount_is_shared_by_largest_remainder_over_list_amounts():
    assert paid_per_line([100, 100, 100], 100) == [66, 67, 67]      # discount shares 34, 33, 33
    assert paid_per_line([300, 200], 101) == [239, 160]
    assert paid_per_line([0, 500], 100) == [0, 400]
    assert paid_per_line([500], 0) == [500]


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 10**7)), min_size=1, max_size=10), st.data())
def test_paid_per_line_agrees_with_the_refund_rule(rows, data):
    lines = [OrderLine(sku=f"S{i}", name="", quantity=q, unit_price_fen=p, line_total_fen=q * p,
                       ship_from="warehouse:cloud") for i, (q, p) in enumerate(rows)]
    subtotal = sum(l.line_total_fen for l in lines)
    discount = data.draw(st.integers(0, subtotal))
    order = Order(order_id="SL1", customer_id="c1", store_id="s1", dealer_id="d1", sub_mchid="1", status="PAID",
                  lines=lines, amounts=Amounts(subtotal, discount, subtotal - discount), fulfillment={},
                  created_at=0.0, expires_at=0.0)
    paid = paid_per_line(lines, discount)
    assert paid == paid_per_line([l.line_total_fen for l in lines], discount)
    assert paid == list(line_paid_fen(order).values())
    assert sum(paid) == subtotal - discount and min(paid) >= 0


@pytest.mark.parametrize("lines, discount", [([], 0), ([100], 101), ([100], -1), ([-1, 100], 0), ([100.0], 0),
                                             ([True], 0), ([100], 1.5)])
def test_nonsense_discounts_are_value_errors(lines, discount):
    with pytest.raises(ValueError):
        paid_per_line(lines, discount)


# --- input validation -------------------------------------------------------------------

@pytest.mark.parametrize("lines, promoters, depth, max_ratio, splittable", [
    ([], (), 1, 3000, 0),                                           # no line
    ([line(paid=-1)], (), 1, 3000, 0),                              # negative paid
    ([line(cost=-1)], (), 1, 3000, 10_000),                         # negative cost
    ([line(quantity=0)], (), 1, 3000, 10_000),                      # no unit
    ([line(rates=[-1])], (), 1, 3000, 10_000),                      # negative rate
    ([line(rates=[10_001])], (), 1, 3000, 10_000),                  # a rate above 100 %
    ([line(rates=[1, 1, 1, 1])], (), 1, 3000, 10_000),              # four levels
    ([line(), line()], (), 1, 3000, 20_000),                        # one SKU twice
    ([line()], ("p1", "p1"), 2, 3000, 10_000),                      # duplicate promoter
    ([line()], ("p1", "p2", "p3", "p4"), 3, 3000, 10_000),          # chain too long
    ([line()], ("",), 1, 3000, 10_000),                             # empty promoter id
    ([line()], (), 0, 3000, 10_000),                                # depth 0
    ([line()], (), 4, 3000, 10_000),                                # depth 4
    ([line()], (), 1, -1, 10_000),                                  # max_ratio below 0
    ([line()], (), 1, 10_001, 10_000),                              # max_ratio above 100 %
    ([line()], (), 1, 3000, 10_001),                                # splittable above paid
    ([line()], (), 1, 3000, -1),                                    # splittable below 0
    ([line()], (), 1, 3000, 10_000.0),                              # not an int
])
def test_nonsense_plans_are_value_errors(lines, promoters, depth, max_ratio, splittable):
    with pytest.raises(ValueError):
        plan_split(lines, promoters, depth, max_ratio, splittable)


# --- properties -------------------------------------------------------------------------

PROMOTERS = ("p1", "p2", "p3")


@st.composite
def valid_orders(draw):
    """A random paid order whose configuration is valid for this order's dealer.

    Validity, per product: Σ rates ≤ this order's max_ratio (so check_commission_configuration
    passes with smallest_max_ratio = max_ratio), and the margin left after the cost and *all*
    levels of commission is at least 1 % of the price:
        cost × 10000 + price × Σ rates + price × 100 ≤ price × 10000.
    Rates are drawn level by level within the budget min(max_ratio, 9900) bps, then the cost
    within what the price has left. The fee is 0..1 % of paid (floored), so the commissions
    (≤ 99 % of paid, discount or not) always fit under the splittable amount; without a
    discount the dealer's profit also covers the fee.
    """
    max_ratio = draw(st.integers(0, BPS))
    depth = draw(st.integers(1, 3))
    promoters = PROMOTERS[:draw(st.integers(0, 3))]
    products = []
    for index in range(draw(st.integers(1, 10))):
        price = draw(st.integers(1, 10**7))
        budget = min(max_ratio, BPS - 100)
        rates = []
        for _ in range(draw(st.integers(0, 3))):
            rates.append(draw(st.integers(0, budget - sum(rates))))
        cost_max = price * (BPS - 100 - sum(rates)) // BPS
        cost = draw(st.one_of(st.integers(0, cost_max), st.just(cost_max)))
        products.append((f"S{index}", price, draw(st.integers(1, 5)), cost, tuple(rates)))
    list_amounts = [price * quantity for _, price, quantity, _, _ in products]
    discount = draw(st.one_of(st.just(0), st.integers(0, sum(list_amounts))))
    lines = [PlanLine(sku, quantity, paid, cost, rates)
             for (sku, _, quantity, cost, rates), paid in zip(products, paid_per_line(list_amounts, discount))]
    paid = sum(l.paid_fen for l in lines)
    fee = draw(st.integers(0, paid // 100))
    return products, lines, promoters, depth, max_ratio, paid - fee, discount


def raw_commissions(lines, promoters, depth):
    """The commissions before any cut, straight from rule 7: {(level, line index): fen}."""
    return {(level, i): l.paid_fen * (l.rates_bps[level - 1] if level <= len(l.rates_bps) else 0) // BPS
            for level in range(1, min(depth, len(promoters)) + 1) for i, l in enumerate(lines)}


def assert_planned_ledger_accounts_for_every_fen(plan):
    entries = ledger_for_plan("O1", "d1", plan)
    assert all(e.amount_fen > 0 for e in entries)
    assert sum(e.amount_fen for e in entries if e.debit.startswith("promoter:")) == plan.commission_fen
    debits, credits = {}, {}
    for e in entries:
        debits[e.debit] = debits.get(e.debit, 0) + e.amount_fen
        credits[e.credit] = credits.get(e.credit, 0) + e.amount_fen
    assert sum(debits.values()) == sum(credits.values())
    assert sum(balances(entries).values()) == 0
    by_cause = {}
    for e in entries:
        by_cause[e.cause] = by_cause.get(e.cause, 0) + e.amount_fen
    assert by_cause == {cause: amount for cause, amount in [
        ("PAYMENT", plan.paid_fen), ("FEE", plan.fee_fen), ("SPLIT", plan.brand_split_fen),
        ("COMMISSION", plan.commission_fen), ("RECEIVABLE", plan.receivable_fen)] if amount}
    breakdown = check_invariant(entries, plan.paid_fen)
    assert breakdown == {"brand": plan.brand_split_fen, "commissions": plan.commission_fen,
                         "dealer": plan.dealer_remainder_fen, "refunded": 0, "fee": plan.fee_fen,
                         "receivable": plan.receivable_fen}


def assert_never_over_the_cap(plan, paid, max_ratio, splittable):
    assert plan.paid_fen == paid and plan.fee_fen == paid - splittable
    assert plan.cap_fen == min(paid * max_ratio // BPS, splittable)
    assert plan.brand_split_fen <= plan.cap_fen and plan.commission_fen <= plan.cap_fen
    assert plan.brand_split_fen + plan.commission_fen <= plan.cap_fen <= splittable
    assert plan.brand_split_fen == min(plan.brand_share_fen, plan.cap_fen - plan.commission_fen)
    assert plan.brand_split_fen + plan.receivable_fen == plan.brand_share_fen
    amounts = [plan.fee_fen, plan.cap_fen, plan.brand_share_fen, plan.commission_fen, plan.brand_split_fen,
               plan.receivable_fen, plan.dealer_remainder_fen, plan.cut_commission_fen]
    assert all(isinstance(a, int) and a >= 0 for a in amounts)
    assert all(s.amount_fen > 0 for s in plan.commissions + plan.cut_commissions)
    assert sum(s.amount_fen for s in plan.commissions) == plan.commission_fen
    assert sum(s.amount_fen for s in plan.cut_commissions) == plan.cut_commission_fen


@settings(max_examples=300, deadline=None)
@given(valid_orders())
def test_valid_configurations_always_fit_balance_and_reserve_the_commission_room(order):
    products, lines, promoters, depth, max_ratio, splittable, discount = order
    for _, price, _, cost, rates in products:
        check_commission_configuration(price, cost, rates, smallest_max_ratio_bps=max_ratio)
    plan = plan_split(lines, promoters, depth, max_ratio, splittable)
    paid = sum(l.paid_fen for l in lines)

    assert_never_over_the_cap(plan, paid, max_ratio, splittable)
    assert plan.cut_commission_fen == 0 and plan.cut_commissions == ()
    assert plan.commission_fen == sum(raw_commissions(lines, promoters, depth).values())
    assert plan.commission_fen <= plan.cap_fen - plan.brand_split_fen          # the room is reserved
    assert plan.brand_share_fen == sum(cost * quantity for _, _, quantity, cost, _ in products)
    if discount == 0:
        assert plan.dealer_profit_fen >= 0                                     # the margin covers the fee
    assert_planned_ledger_accounts_for_every_fen(plan)


@st.composite
def any_orders(draw):
    """Any configuration at all: rates up to 100 % per level, costs up to twice the price,
    any max_ratio, any fee (splittable anywhere from 0 to paid)."""
    max_ratio = draw(st.integers(0, BPS))
    depth = draw(st.integers(1, 3))
    promoters = PROMOTERS[:draw(st.integers(0, 3))]
    lines = []
    for index in range(draw(st.integers(1, 10))):
        quantity = draw(st.integers(1, 5))
        price = draw(st.integers(1, 10**7))
        paid = draw(st.integers(0, price * quantity))
        lines.append(PlanLine(f"S{index}", quantity, paid, draw(st.integers(0, 2 * price)),
                              tuple(draw(st.lists(st.integers(0, BPS), max_size=3)))))
    paid = sum(l.paid_fen for l in lines)
    splittable = draw(st.one_of(st.just(paid), st.integers(0, paid)))
    return lines, promoters, depth, max_ratio, splittable


@settings(max_examples=300, deadline=None)
@given(any_orders())
def test_invalid_configurations_still_balance_never_exceed_the_cap_and_report_the_cut(order):
    lines, promoters, depth, max_ratio, splittable = order
    plan = plan_split(lines, promoters, depth, max_ratio, splittable)
    paid = sum(l.paid_fen for l in lines)
    raw = raw_commissions(lines, promoters, depth)

    assert_never_over_the_cap(plan, paid, max_ratio, splittable)
    assert plan.cut_commission_fen == max(0, sum(raw.values()) - plan.cap_fen)
    assert plan.commission_fen + plan.cut_commission_fen == sum(raw.values())
    # Cut deepest level first, then in line order: whatever was kept of a share, every share
    # cut before it (a deeper level, or an earlier line of the same level) is cut entirely.
    kept = {(s.level, s.sku): s.amount_fen for s in plan.commissions}
    order_of_cut = sorted(raw, key=lambda key: (-key[0], key[1]))
    kept_in_cut_order = [kept.get((level, lines[i].sku), 0) for level, i in order_of_cut]
    first_kept = next((n for n, amount in enumerate(kept_in_cut_order) if amount), len(order_of_cut))
    assert all(amount == raw[key] for key, amount in zip(order_of_cut[first_kept + 1:],
                                                          kept_in_cut_order[first_kept + 1:]))
    assert all(amount == 0 for amount in kept_in_cut_order[:first_kept])
    assert_planned_ledger_accounts_for_every_fen(plan)
