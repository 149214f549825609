import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.money import allocate, round_half_up_div


@given(st.integers(0, 10**10), st.lists(st.integers(0, 10**8), min_size=1, max_size=60).filter(lambda w: sum(w) > 0))
def test_allocation_sums_exactly_and_stays_within_one_fen_of_the_exact_share(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(isinstance(p, int) and p >= 0 for p in parts)
    for part, weight in zip(parts, weights):
        exact_floor = total * weight // sum(weights)
        assert exact_floor <= part <= exact_floor + 1
        if weight == 0:
            assert part == 0


def test_leftover_fen_go_to_the_largest_remainders_then_the_earlier_part():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [3, 3, 4]) == [3, 3, 4]
    assert allocate(1, [1, 1]) == [1, 0]
    assert allocate(5, [0, 2, 1]) == [0, 3, 2]


@pytest.mark.parametrize("total, weights", [(-1, [1]), (1, []), (1, [0, 0]), (1.5, [1]), (1, [-1, 2]), (1, [1.0])])
def test_nonsense_allocations_are_refused(total, weights):
    with pytest.raises(ValueError):
        allocate(total, weights)


@pytest.mark.parametrize("numerator, denominator, expected", [(15, 10, 2), (14, 10, 1), (25, 10, 3), (0, 7, 0),
                                                              (99 * 6, 1000, 1), (83 * 6, 1000, 0)])
def test_round_half_up(numerator, denominator, expected):
    assert round_half_up_div(numerator, denominator) == expected


@given(st.integers(0, 10**12), st.integers(1, 10**6))
def test_round_half_up_is_within_half_a_unit(numerator, denominator):
    result = round_half_up_div(numerator, denominator)
    assert abs(result * denominator - numerator) * 2 <= denominator
