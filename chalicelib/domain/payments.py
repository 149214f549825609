"""Whether a provider's word that a payment succeeded may be applied to an order.

Every field that identifies the money is checked against our own record: the
service provider and app, the dealer's sub-merchant, the order and the amount.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain import events

# Outcomes
APPLY = "APPLY"
DUPLICATE = "DUPLICATE"            # already applied: answer success, change nothing
REFUSE = "REFUSE"                  # never applied; the cause is recorded

# Follow-up work written with the transition (consumed by later milestones)
FOLLOW_UP_KINDS = ("PLAN_SPLIT", "AWARD_POINTS", "ATTRIBUTE_PURCHASE")


@dataclass(frozen=True)
class Verdict:
    outcome: str
    cause: str | None = None


def judge_payment(transaction: dict, order, *, sp_mchid: str, sp_appid: str) -> Verdict:
    """``order`` is None when no order has this out_trade_no."""
    if transaction.get("sp_mchid") != sp_mchid:
        return Verdict(REFUSE, "WRONG_SP_MCHID")
    if transaction.get("sp_appid") != sp_appid:
        return Verdict(REFUSE, "WRONG_SP_APPID")
    if transaction.get("trade_state") != "SUCCESS":
        return Verdict(REFUSE, f"TRADE_STATE_{transaction.get('trade_state') or 'MISSING'}")
    if order is None:
        return Verdict(REFUSE, "UNKNOWN_ORDER")
    if transaction.get("sub_mchid") != order.sub_mchid:
        return Verdict(REFUSE, "WRONG_SUB_MCHID")
    amount = transaction.get("amount") or {}
    if amount.get("currency", "CNY") != "CNY" or amount.get("total") != order.amounts.payable_fen:
        return Verdict(REFUSE, "AMOUNT_MISMATCH")
    if not transaction.get("transaction_id"):
        return Verdict(REFUSE, "NO_TRANSACTION_ID")
    if order.status == "PENDING_PAYMENT":
        return Verdict(APPLY)
    if order.transaction_id == transaction["transaction_id"]:
        return Verdict(DUPLICATE)
    if order.status == "CLOSED":
        return Verdict(REFUSE, "PAID_AFTER_CLOSE")
    return Verdict(REFUSE, f"ORDER_IS_{order.status}")


def follow_up_on_payment(order, transaction_id: str, paid_at: float) -> list[tuple[str, dict]]:
    """The outbox items written with PENDING_PAYMENT -> PAID: the follow-up work,
    then the ORDER_PAID funnel event (what M7 counts as an order and its GMV)."""
    work = [(kind, {"order_id": order.order_id, "transaction_id": transaction_id}) for kind in FOLLOW_UP_KINDS]
    return work + [(events.ORDER_PAID, events.order_paid(order, paid_at))]
