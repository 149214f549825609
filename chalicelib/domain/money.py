"""Money is an int of fen. Splitting it is a named rule, so every split sums exactly."""
from __future__ import annotations

Fen = int


def allocate(total: Fen, weights: list[int]) -> list[Fen]:
    """Largest remainder: split ``total`` in proportion to ``weights``; the parts sum to
    ``total`` exactly. Fen left over after flooring go one each to the largest
    remainders, ties to the earlier part (so the rule is deterministic)."""
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ValueError("total must be a non-negative int of fen")
    if not weights or any((not isinstance(w, int)) or isinstance(w, bool) or w < 0 for w in weights):
        raise ValueError("weights must be non-negative ints")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot allocate a positive total over zero weights")
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    return shares


def round_half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, in integers (e.g. a 0.6 % fee)."""
    if denominator <= 0 or numerator < 0:
        raise ValueError("round_half_up_div takes a non-negative numerator and a positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)
