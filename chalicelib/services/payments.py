"""Applying a payment the provider reports (by notification, or by a query)."""
from __future__ import annotations

import random
import time

from chalicelib.domain.payments import APPLY, DUPLICATE, follow_up_on_payment, judge_payment
from chalicelib.log import get_logger

MAX_ATTEMPTS = 6


def apply_payment(transaction: dict, *, payments, sp_mchid: str, sp_appid: str, now: float,
                  source: str = "notification", on_late_payment=None) -> str:
    """Returns APPLY, DUPLICATE or REFUSE. Never raises for a refused payment: the
    cause is recorded on the order's history and logged for the reconciliation."""
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.db.orders import OrderChanged, to_order
    from chalicelib.services.splits import payment_entry

    log = get_logger("storelink.payments")
    order_id = str(transaction.get("out_trade_no") or "")
    for attempt in range(MAX_ATTEMPTS):
        record = payments.get_order(order_id) if order_id else None
        order = to_order(record) if record is not None else None
        verdict = judge_payment(transaction, order, sp_mchid=sp_mchid, sp_appid=sp_appid)
        if verdict.outcome == DUPLICATE:
            return DUPLICATE
        if verdict.outcome != APPLY:
            detail = {"cause": verdict.cause, "source": source,
                      "transaction_id": transaction.get("transaction_id"),
                      "amount_fen": (transaction.get("amount") or {}).get("total"),
                      "sub_mchid": transaction.get("sub_mchid"), "trade_state": transaction.get("trade_state")}
            if order_id:
                payments.record_event(order_id, "PAYMENT_REFUSED", detail, now)
            log.warning("payment refused", extra={"fields": {"order_id": order_id, **detail}})
            if verdict.cause == "PAID_AFTER_CLOSE" and on_late_payment is not None:
                on_late_payment(transaction, record)
            return verdict.outcome
        transaction_id = transaction["transaction_id"]
        try:
            payments.mark_paid(order.order_id, transaction_id, order.amounts.payable_fen, paid_at=now,
                               follow_up=follow_up_on_payment(order, transaction_id, paid_at=now), now=now,
                               ledger=(payment_entry(order),) if order.amounts.payable_fen > 0 else (),
                               success_at=success_at(transaction))
        except OrderChanged:
            continue  # someone moved it first: re-read and judge again
        except TransactWriteError as exc:
            if not _is_conflict(exc):
                raise
            # A concurrent transaction touched the order: back off, re-read, try again.
            time.sleep(random.uniform(0.005, 0.02) * 2 ** attempt)
            continue
        log.info("payment applied", extra={"fields": {"order_id": order.order_id, "source": source,
                                                       "amount_fen": order.amounts.payable_fen}})
        return APPLY
    raise RuntimeError(f"payment for {order_id} could not be applied after {MAX_ATTEMPTS} attempts")


def success_at(transaction: dict) -> float | None:
    """The provider's ``success_time`` (RFC 3339) as epoch seconds; None when absent or
    unreadable (the reconciliation's day is then our own ``paid_at``'s)."""
    from chalicelib.domain.time import parse_rfc3339

    text = transaction.get("success_time")
    try:
        return parse_rfc3339(text).timestamp() if text else None
    except (TypeError, ValueError):
        return None


def _is_conflict(exc) -> bool:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return (getattr(exc, "cause_response_code", None) == "TransactionCanceledException"
            and any(r is not None and r.code == "TransactionConflict" for r in reasons))


def on_transaction_notification(notification) -> None:
    """The dispatcher's handler for TRANSACTION.SUCCESS."""
    from chalicelib.config import settings
    from chalicelib.services import wiring

    s = settings()
    apply_payment(notification.resource, payments=wiring.payment_records(), sp_mchid=s.sp_mchid,
                  sp_appid=s.sp_appid, now=wiring.now(), on_late_payment=late_payment_refunder())


def late_payment_refunder():
    """What to do with money that reached a closed order: refund it in full."""
    from chalicelib.config import settings
    from chalicelib.services import wiring
    from chalicelib.services.refunds import refund_late_payment

    def refund(transaction: dict, order_record) -> None:
        refund_late_payment(transaction, order_record, refunds=wiring.refunds(), payments=wiring.payments(),
                            now=wiring.now(), notify_url=settings().notify_url)

    return refund
