"""The provider's fee in the sandbox: 0.6 % of each payment's total, rounded half up
to the fen, given back in proportion with each refund (contract, "The provider's fee").

Integer arithmetic only: a float near money is how a bill ends up a fen off.
"""
from __future__ import annotations

FEE_PER_MILLE = 6  # 0.6 %


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def payment_fee(total_fen: int) -> int:
    """The fee on a payment: round_half_up(total * 6 / 1000), i.e. (total*6 + 500) // 1000."""
    if total_fen < 0:
        raise ValueError("a payment's total cannot be negative")
    return _half_up(total_fen * FEE_PER_MILLE, 1000)


def fee_refund(fee_fen: int, total_fen: int, refunded_after_fen: int, fee_refunded_before_fen: int) -> int:
    """The part of the fee that a new refund gives back.

    It is computed on the cumulative refunded amount (``refunded_after_fen`` counts
    this refund and every earlier one still standing) minus what earlier refunds gave
    back, rather than on this refund alone: rounding each refund separately could
    hand back more than the fee over a few partial refunds, while the cumulative form
    never exceeds the fee and gives back exactly all of it once the whole total is
    refunded (the last refund takes the remainder).
    """
    if not 0 < total_fen or not 0 <= refunded_after_fen <= total_fen:
        raise ValueError("refunded amount must lie between 0 and the payment's total")
    if refunded_after_fen == total_fen:
        return fee_fen - fee_refunded_before_fen
    return max(0, _half_up(fee_fen * refunded_after_fen, total_fen) - fee_refunded_before_fen)
