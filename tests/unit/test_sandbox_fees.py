"""The sandbox's provider fee: 0.6 % rounded half up, refunded in proportion, exactly."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.local.sandbox.fees import fee_refund, payment_fee


@pytest.mark.parametrize("total, fee", [
    (0, 0), (1, 0), (83, 0),       # 0.498 fen -> 0
    (84, 1),                      # 0.504 -> 1
    (250, 2),                     # 1.5 exactly: half up -> 2
    (100, 1),                     # 0.6 -> 1
    (10000, 60), (9900, 59),      # 59.4 -> 59
    (12345, 74),                  # 74.07 -> 74
    (1250, 8),                    # 7.5 exactly -> 8
])
def test_the_fee_is_six_per_mille_rounded_half_up(total, fee):
    assert payment_fee(total) == fee


@given(st.integers(min_value=0, max_value=10 ** 12))
def test_the_fee_formula_is_the_integer_form_of_half_up(total):
    assert payment_fee(total) == (total * 6 + 500) // 1000


def test_a_partial_refund_gives_back_its_share_and_the_last_the_remainder():
    fee = payment_fee(10000)                                         # 60
    first = fee_refund(fee, 10000, 3000, 0)                          # 30 % of 60
    second = fee_refund(fee, 10000, 10000, first)                    # the rest
    assert (first, second) == (18, 42)


def test_rounding_each_refund_alone_would_overpay_but_the_cumulative_form_does_not():
    # total 250 -> fee 2; three refunds of 63 would each round 1.008 fen -> 1 on their own (3 > 2).
    fee, given_back = payment_fee(250), []
    for refunded_after in (63, 126, 189):
        given_back.append(fee_refund(fee, 250, refunded_after, sum(given_back)))
    assert sum(given_back) <= fee
    given_back.append(fee_refund(fee, 250, 250, sum(given_back)))
    assert sum(given_back) == fee == 2


def splits():
    """A total and any split of it into 1-50 refunds (WeChat's cap per order)."""
    return st.integers(min_value=1, max_value=10 ** 9).flatmap(
        lambda total: st.lists(st.integers(min_value=1, max_value=total), min_size=0, max_size=49).map(
            lambda cuts: (total, sorted(set(cuts) | {total}))))


@settings(max_examples=500)
@given(splits())
def test_fee_refunds_over_any_split_sum_exactly_to_the_fee(case):
    total, cumulative = case
    fee, given_back = payment_fee(total), []
    for refunded_after in cumulative:
        part = fee_refund(fee, total, refunded_after, sum(given_back))
        given_back.append(part)
        assert part >= 0
        assert sum(given_back) <= fee
    assert sum(given_back) == fee


def test_a_refund_beyond_the_total_is_not_a_fee_question():
    with pytest.raises(ValueError):
        fee_refund(60, 10000, 10001, 0)
