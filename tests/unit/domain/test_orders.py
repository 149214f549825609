import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import orders
from chalicelib.domain.catalogue import Product
from chalicelib.errors import ValidationFailed

CONTRACT_MOVES = {("PENDING_PAYMENT", "PAID"), ("PENDING_PAYMENT", "CLOSED"), ("PAID", "FULFILLING"),
                  ("PAID", "REFUNDED"), ("FULFILLING", "COMPLETED"), ("FULFILLING", "REFUNDED"),
                  ("COMPLETED", "REFUNDED")}
STATUSES = ["PENDING_PAYMENT", "PAID", "FULFILLING", "COMPLETED", "CLOSED", "REFUNDED"]


@pytest.mark.parametrize("current, target", list(itertools.product(STATUSES, STATUSES)))
def test_exactly_the_contracts_moves_are_allowed(current, target):
    assert orders.can_move(current, target) == ((current, target) in CONTRACT_MOVES)
    if (current, target) not in CONTRACT_MOVES:
        with pytest.raises(orders.TransitionRefused):
            orders.check_move(current, target)


def product(sku, price, status="ACTIVE"):
    return Product(sku=sku, brand_id="b", name=sku.lower(), price_fen=price, cost_fen=price // 2, status=status)


def test_lines_are_priced_from_the_catalogue():
    lines, amounts = orders.price_lines([orders.RequestedLine("A", 2), orders.RequestedLine("B", 1)],
                                        {"A": product("A", 9900), "B": product("B", 14900)}, "warehouse:cloud")
    assert [(l.sku, l.unit_price_fen, l.line_total_fen) for l in lines] == [("A", 9900, 19800), ("B", 14900, 14900)]
    assert amounts.to_json() == {"subtotal_fen": 34700, "discount_fen": 0, "payable_fen": 34700}


@pytest.mark.parametrize("catalogue", [{}, {"A": product("A", 100, status="DEACTIVATED")}])
def test_unknown_or_withdrawn_skus_are_refused(catalogue):
    with pytest.raises(ValidationFailed):
        orders.price_lines([orders.RequestedLine("A", 1)], catalogue, "warehouse:cloud")


@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(1, 99), st.integers(1, 100_000_000)),
                min_size=1, max_size=20))
def test_totals_are_exact_integer_sums(rows):
    prices = {sku: price for sku, _, price in rows}
    requested = orders.merge_lines([orders.RequestedLine(sku, q) for sku, q, _ in rows]) \
        if all(sum(q for s, q, _ in rows if s == sku) <= 99 for sku in prices) else None
    if requested is None:
        return
    lines, amounts = orders.price_lines(requested, {s: product(s, p) for s, p in prices.items()}, "w")
    assert amounts.subtotal_fen == sum(prices[s] * q for s, q, _ in rows)
    assert all(isinstance(l.line_total_fen, int) for l in lines)
    assert amounts.payable_fen == amounts.subtotal_fen - amounts.discount_fen


def test_repeated_skus_merge_and_the_per_sku_cap_holds():
    merged = orders.merge_lines([orders.RequestedLine("A", 60), orders.RequestedLine("B", 1),
                                 orders.RequestedLine("A", 39)])
    assert merged == [orders.RequestedLine("A", 99), orders.RequestedLine("B", 1)]
    with pytest.raises(ValidationFailed):
        orders.merge_lines([orders.RequestedLine("A", 60), orders.RequestedLine("A", 40)])
