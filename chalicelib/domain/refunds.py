"""Refunds and returns: how much may go back, for which units, and when (domain rule 6).

Pure rules, no I/O. The customer's refund is never held back; what is refunded is
always a whole number of fen, never more than was paid, and refunding every unit of
every line gives back exactly ``payable_fen``.

How a paid order is spread over its units (``line_amounts``):
  1. the order-level discount is spread over the lines in proportion to
     ``line_total_fen`` by largest remainder (``money.allocate``): a line's *paid*
     amount is its total minus its share of the discount;
  2. each line's paid amount is spread over its units the same way (equal weights:
     the first ``paid % quantity`` units carry one fen more than the rest).
Units are refunded from the highest index first (the cheaper units go first, the
last refund of a line takes the ones carrying the leftover fen), so any sequence of
partial refunds of one line sums to exactly that line's paid amount.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from chalicelib.domain.money import allocate
from chalicelib.domain.orders import COMPLETED, FULFILLING, PAID, Order
from chalicelib.errors import BusinessRuleViolated, Conflict, ValidationFailed

# Refund statuses (the contract's words; the last four are WeChat Pay's)
REQUESTED = "REQUESTED"    # a return after fulfilment, waiting for the store's or dealer's approval
REJECTED = "REJECTED"      # the store or dealer refused the return request; no money moves
PROCESSING = "PROCESSING"  # asked of the provider, money on its way back to the customer
SUCCESS = "SUCCESS"        # the provider refunded the customer
CLOSED = "CLOSED"          # the provider closed this attempt without refunding; retried with a new out_refund_no
ABNORMAL = "ABNORMAL"      # the provider could not pay it back (card frozen or cancelled): a person must act
REFUND_STATUSES = (REQUESTED, REJECTED, PROCESSING, SUCCESS, CLOSED, ABNORMAL)

# Nothing will change these by itself. (CLOSED is final for its attempt: a retry is a new
# attempt with a new out_refund_no. ABNORMAL is not final: WeChat's abnormal-refund flow,
# run by a person, may still pay it out.)
FINAL_STATUSES = frozenset({REJECTED, SUCCESS, CLOSED})

# Refunds in these statuses hold part of the refundable amount (their units and fen):
# ABNORMAL too, because that money may still go out. REJECTED and CLOSED give it back.
COUNTING_STATUSES = frozenset({REQUESTED, PROCESSING, SUCCESS, ABNORMAL})

# Order statuses from which a refund may be asked
REFUNDABLE_ORDER_STATUSES = (PAID, FULFILLING, COMPLETED)

REASON_MAX_CHARS = 80           # WeChat Pay's limit on a refund reason
OUT_REFUND_NO_MIN, OUT_REFUND_NO_MAX = 6, 32
_WECHAT_ID = re.compile(r"[A-Za-z0-9_-]{6,32}")
_LINE_KEYS = frozenset({"sku", "quantity"})


class OrderNotRefundable(Conflict):
    code = "ORDER_NOT_REFUNDABLE"
    default_message = "This order cannot be refunded in its current status."


class RefundExceedsPaid(BusinessRuleViolated):
    code = "REFUND_EXCEEDS_PAID"
    default_message = "This refund would give back more than was paid."


class LinesAlreadyRefunded(BusinessRuleViolated):
    code = "LINES_ALREADY_REFUNDED"
    default_message = "More units than remain to be refunded on this line."


class NothingToRefund(BusinessRuleViolated):
    code = "NOTHING_TO_REFUND"
    default_message = "The units asked for were paid 0 fen: there is no money to refund."


def _check_status(status: str) -> None:
    if status not in REFUND_STATUSES:
        raise ValueError(f"unknown refund status {status!r}")


def is_final(status: str) -> bool:
    _check_status(status)
    return status in FINAL_STATUSES


def counts_against_refundable(status: str) -> bool:
    _check_status(status)
    return status in COUNTING_STATUSES


def next_attempt_allowed(status: str) -> bool:
    """Only a CLOSED attempt is retried (with a new out_refund_no); an ABNORMAL one waits
    for a person, never an automatic retry; everything else is either done or in flight."""
    _check_status(status)
    return status == CLOSED


def needs_approval(order_status: str) -> bool:
    """Before fulfilment (PAID) a refund starts at once; after it (FULFILLING, COMPLETED)
    it is a return request for the store or dealer to approve. Any other order status
    cannot be refunded at all (OrderNotRefundable)."""
    if order_status == PAID:
        return False
    if order_status in (FULFILLING, COMPLETED):
        return True
    raise OrderNotRefundable(f"An order that is {order_status} cannot be refunded.", status=order_status)


def initial_status(order_status: str) -> str:
    """The status a new refund starts in: PROCESSING at once, or REQUESTED for approval."""
    return REQUESTED if needs_approval(order_status) else PROCESSING


def check_reason(reason) -> str:
    """The body's ``reason``: a non-blank string of at most 80 characters, stripped."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Give a 'reason' for the refund.", field="reason")
    reason = reason.strip()
    if len(reason) > REASON_MAX_CHARS:
        raise ValidationFailed(f"'reason' is at most {REASON_MAX_CHARS} characters.", field="reason")
    return reason


def new_out_refund_no(order_id: str, attempt: int) -> str:
    """The provider's idempotency key for one refund attempt of one order: deterministic,
    so a crashed request re-sent with the same ``attempt`` is the same refund at WeChat.

    ``attempt`` numbers every attempt on the order, 1, 2, 3, ... (a new refund and the
    retry of a CLOSED one each take the next number). The result is ``<order_id>R<attempt,
    at least 3 digits>`` (e.g. ``SL20261122100000ABCDEFGHIJR001``): unique per (order,
    attempt) because the digits after the last ``R`` are the attempt. Only when that would
    exceed 32 characters is the order id replaced by ``X`` + 16+ hex digits of its SHA-256.
    """
    if not isinstance(order_id, str) or not _WECHAT_ID.fullmatch(order_id):
        raise ValueError("order_id must be 6 to 32 characters of [A-Za-z0-9_-]")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt < 10**14:
        raise ValueError("attempt must be an int from 1")
    suffix = f"R{attempt:03d}"
    if len(order_id) + len(suffix) <= OUT_REFUND_NO_MAX:
        return order_id + suffix
    digest = hashlib.sha256(order_id.encode()).hexdigest()
    return "X" + digest[:OUT_REFUND_NO_MAX - 1 - len(suffix)] + suffix


# --- how the paid amount is spread over lines and units --------------------------------

def _check_order(order: Order) -> None:
    skus = [line.sku for line in order.lines]
    if not skus or len(set(skus)) != len(skus):
        raise ValueError("an order has at least one line and names each SKU once")
    for line in order.lines:
        if not isinstance(line.quantity, int) or line.quantity < 1 or line.line_total_fen < 0:
            raise ValueError(f"line {line.sku} has no units or a negative total")
    amounts = order.amounts
    if amounts.subtotal_fen != sum(line.line_total_fen for line in order.lines):
        raise ValueError("subtotal_fen is not the sum of the lines")
    if not 0 <= amounts.discount_fen <= amounts.subtotal_fen:
        raise ValueError("discount_fen must be between 0 and subtotal_fen")
    if amounts.payable_fen != amounts.subtotal_fen - amounts.discount_fen:
        raise ValueError("payable_fen is not subtotal_fen - discount_fen")


def line_paid_fen(order: Order) -> dict[str, int]:
    """What was paid for each line: its total minus its largest-remainder share of the
    order's discount. The values sum to ``payable_fen`` exactly; none is negative."""
    _check_order(order)
    totals = [line.line_total_fen for line in order.lines]
    shares = allocate(order.amounts.discount_fen, totals)
    return {line.sku: total - share for line, total, share in zip(order.lines, totals, shares)}


def line_amounts(order: Order) -> dict[str, list[int]]:
    """What was paid for each unit of each line, ``{sku: [unit 0, unit 1, ...]}``: the
    line's paid amount split evenly by largest remainder, so the list is non-increasing
    and sums to the line's paid amount; all lists together sum to ``payable_fen``."""
    paid = line_paid_fen(order)
    return {line.sku: allocate(paid[line.sku], [1] * line.quantity) for line in order.lines}


def _units_amount(remaining_fen: int, remaining_units: int, quantity: int) -> int:
    """Fen for the next ``quantity`` units of a line, highest index first: the line's
    remaining money spread over its remaining units, the top ``quantity`` of them."""
    return sum(allocate(remaining_fen, [1] * remaining_units)[remaining_units - quantity:])


# --- planning one refund ----------------------------------------------------------------

class RefundLine(NamedTuple):
    sku: str
    quantity: int
    amount_fen: int


@dataclass(frozen=True)
class RefundPlan:
    amount_fen: int                                   # what to ask the provider for (>= 1)
    lines: list[RefundLine] = field(default_factory=list)   # empty for a refund by amount
    full: bool = False                                # after it, everything paid is refunded

    def to_json(self) -> dict:
        return {"amount_fen": self.amount_fen, "full": self.full,
                "lines": [line._asdict() for line in self.lines]}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _requested_lines(lines, on_order: dict[str, int]) -> list[tuple[str, int]]:
    if not isinstance(lines, (list, tuple)) or not lines:
        raise ValidationFailed("'lines' is a non-empty list of {\"sku\", \"quantity\"}.", field="lines")
    requested: list[tuple[str, int]] = []
    seen: set[str] = set()
    for index, item in enumerate(lines):
        if isinstance(item, Mapping):
            if set(item) - _LINE_KEYS:
                raise ValidationFailed("A refund line has only 'sku' and 'quantity'.", field=f"lines[{index}]")
            sku, quantity = item.get("sku"), item.get("quantity")
        else:
            sku, quantity = getattr(item, "sku", None), getattr(item, "quantity", None)
        if not isinstance(sku, str) or not sku:
            raise ValidationFailed("Each refund line names a 'sku'.", field=f"lines[{index}].sku")
        if not _is_int(quantity) or quantity < 1:
            raise ValidationFailed("'quantity' is a positive whole number.", field=f"lines[{index}].quantity",
                                   sku=sku)
        if sku in seen:
            raise ValidationFailed(f"SKU {sku} appears twice in this refund.", field="lines", sku=sku)
        if sku not in on_order:
            raise ValidationFailed(f"SKU {sku} is not on this order.", field=f"lines[{index}].sku", sku=sku)
        seen.add(sku)
        requested.append((sku, quantity))
    return requested


def plan_refund(order: Order, already_refunding_fen: int, already_refunded_units: Mapping[str, int],
                amount_fen: int | None = None, lines=None, *,
                already_refunded_line_fen: Mapping[str, int] | None = None) -> RefundPlan:
    """Plan one refund of ``order``: by ``amount_fen`` or by ``lines``, exactly one.

    ``already_refunding_fen``: the sum of ``amount_fen`` of this order's refunds whose
    status counts (COUNTING_STATUSES); ``already_refunded_units``: ``{sku: units}`` over
    the line refunds among them (missing SKUs: 0). ``already_refunded_line_fen``
    (optional, ``{sku: fen}`` over the same refunds) makes line amounts exact even when a
    refund in the middle of a line's history was rejected or closed; without it the
    line's fen are taken to be those of its units refunded so far, highest index first.

    Checks, in order: the request's shape (ValidationFailed, 400); the order's status
    (OrderNotRefundable, 409); units left on each line (LinesAlreadyRefunded, 422); the
    total against ``payable_fen`` (RefundExceedsPaid, 422); a 0-fen result (NothingToRefund,
    422 — only units bought for 0 fen).
    """
    if (amount_fen is None) == (lines is None):
        raise ValidationFailed("Give exactly one of 'amount_fen' and 'lines'.", field="amount_fen")
    if amount_fen is not None and (not _is_int(amount_fen) or amount_fen < 1):
        raise ValidationFailed("'amount_fen' is a positive whole number of fen.", field="amount_fen")
    quantities = {line.sku: line.quantity for line in order.lines}
    requested = _requested_lines(lines, quantities) if lines is not None else []

    if order.status not in REFUNDABLE_ORDER_STATUSES:
        raise OrderNotRefundable(f"An order that is {order.status} cannot be refunded.",
                                 order_id=order.order_id, status=order.status)
    paid = line_paid_fen(order)
    payable = order.amounts.payable_fen
    if not _is_int(already_refunding_fen) or already_refunding_fen < 0:
        raise ValueError("already_refunding_fen must be a non-negative int")
    refunded_units = dict(already_refunded_units or {})
    for sku, units in refunded_units.items():
        if sku not in quantities or not _is_int(units) or not 0 <= units <= quantities[sku]:
            raise ValueError(f"already_refunded_units[{sku!r}] is not between 0 and the units bought")
    if already_refunded_line_fen is not None:
        for sku, fen in already_refunded_line_fen.items():
            if sku not in paid or not _is_int(fen) or not 0 <= fen <= paid[sku]:
                raise ValueError(f"already_refunded_line_fen[{sku!r}] is not between 0 and the line's paid fen")
    refundable = max(0, payable - already_refunding_fen)

    plan_lines: list[RefundLine] = []
    for sku, quantity in requested:
        done = refunded_units.get(sku, 0)
        left = quantities[sku] - done
        if quantity > left:
            raise LinesAlreadyRefunded(
                f"Only {left} of the {quantities[sku]} units of SKU {sku} remain to be refunded.",
                sku=sku, quantity=quantity, bought=quantities[sku], already_refunded=done, refundable_quantity=left)
        if already_refunded_line_fen is not None:
            done_fen = already_refunded_line_fen.get(sku, 0)
        else:
            done_fen = _units_amount(paid[sku], quantities[sku], done) if done else 0
        plan_lines.append(RefundLine(sku, quantity, _units_amount(paid[sku] - done_fen, left, quantity)))

    total = amount_fen if amount_fen is not None else sum(line.amount_fen for line in plan_lines)
    if total > refundable:
        raise RefundExceedsPaid(f"At most {refundable} fen of this order can still be refunded.",
                                requested_fen=total, refundable_fen=refundable)
    if total == 0:
        raise NothingToRefund(lines=[line._asdict() for line in plan_lines])
    return RefundPlan(amount_fen=total, lines=plan_lines, full=already_refunding_fen + total == payable)
