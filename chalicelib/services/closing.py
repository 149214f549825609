"""Closing unpaid orders: by the customer (cancel) or when the payment window ends
(the close-expired-orders job). Stock comes back exactly once; the provider's order
is closed too, and a payment the provider already took is applied, never lost."""
from __future__ import annotations

from chalicelib.domain.orders import CLOSED, PENDING_PAYMENT
from chalicelib.log import get_logger
from chalicelib.services.orders import OrderNotPayable, read_own_order


def _close_at_provider(order, payments) -> bool:
    """True when the provider's order is closed (or never existed); False to retry later."""
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable

    try:
        payments.close(order.order_id, order.sub_mchid)
        return True
    except ProviderRefused as refused:
        if refused.provider_code in ("ORDER_CLOSED", "ORDER_NOT_EXIST", "ORDERNOTEXIST"):
            return True
        get_logger("storelink.closing").warning("provider refused to close", extra={"fields": {
            "order_id": order.order_id, "provider_code": refused.provider_code}})
        return False
    except ProviderUnavailable:
        return False


def cancel_order(customer_id: str, order_id: str, *, orders, payment_records, payments, now: float):
    from chalicelib.db.orders import OrderChanged

    order = read_own_order(customer_id, order_id, orders=orders)
    if order.status != PENDING_PAYMENT:
        raise OrderNotPayable("Only an order waiting for payment can be cancelled.", status=order.status)
    try:
        payment_records.close(order, "CANCELLED_BY_CUSTOMER", now, provider_closed=False)
    except OrderChanged:
        order = orders.get(order_id)
        if order.status != CLOSED:
            raise OrderNotPayable("The order was paid meanwhile.", status=order.status) from None
        return order
    if order.prepay_id is None or _close_at_provider(order, payments):
        payment_records.provider_closed(order_id, now)
    # else: WeChat refuses to close an order in its first minutes; the close job retries.
    return orders.get(order_id)


def close_expired_orders(*, orders, payment_records, payments, now: float, sp_mchid: str, sp_appid: str,
                         on_late_payment=None) -> dict:
    """One run of the job: safe to run twice at once and to re-run."""
    from chalicelib.db.orders import OrderChanged
    from chalicelib.services.payments import apply_payment
    from chalicelib.wechat.pay import ProviderUnavailable

    counts = {"closed": 0, "paid": 0, "provider_closed": 0, "retry_later": 0}
    for order in payment_records.due_for_closing(now):
        if order.prepay_id is not None:
            try:
                found = payments.query(order.order_id, order.sub_mchid)
            except ProviderUnavailable:
                counts["retry_later"] += 1
                continue
            except Exception:  # noqa: BLE001 - e.g. ORDER_NOT_EXIST: nothing was paid
                found = None
            if found is not None and found.trade_state == "SUCCESS":
                # Paid but never notified (or notified after we closed): apply it now.
                outcome = apply_payment({**found.raw, "out_trade_no": order.order_id}, payments=payment_records,
                                        sp_mchid=sp_mchid, sp_appid=sp_appid, now=now, source="close_job_query",
                                        on_late_payment=on_late_payment)
                if order.status == CLOSED:
                    # Paid after we closed it: the money is kept, recorded and refunded in
                    # full (on_late_payment), and the job stops looking at this order.
                    payment_records.record_event(order.order_id, "LATE_PAYMENT_FOUND",
                                                 {"transaction_id": found.transaction_id,
                                                  "amount_fen": found.total_fen, "outcome": outcome}, now)
                    payment_records.provider_closed(order.order_id, now)
                counts["paid"] += 1
                continue
        closed_at_provider = order.prepay_id is None or _close_at_provider(order, payments)
        if order.status == PENDING_PAYMENT:
            try:
                payment_records.close(order, "EXPIRED", now, provider_closed=closed_at_provider)
                counts["closed"] += 1
            except OrderChanged:
                continue  # paid or closed by someone else meanwhile
        elif closed_at_provider:
            payment_records.provider_closed(order.order_id, now)
            counts["provider_closed"] += 1
        if not closed_at_provider:
            counts["retry_later"] += 1
    return counts
