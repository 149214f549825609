"""Funnel events: facts written to the outbox in the same transaction as their cause.

M7 counts them per store, staff, campaign and day (scans, new customers, bindings,
orders, GMV), asynchronously from the outbox stream. Each payload carries exactly the
facts a counter needs, so counting never reads the tables back. Times are epoch
seconds (float), money is int fen.

SCAN_RECORDED — a customer scanned a QR code (written by the scan flow)::

    {scan_id, customer_id, scene, kind, store_id, dealer_id, staff_id, campaign, sku,
     outcome, points_awarded, channel, customer_first_seen_at, at}
    # channel: MINI_PROGRAM, OA_SUBSCRIBE (followed the official account through the
    # code: a new follower) or OA_SCAN (an existing follower scanned it)

CUSTOMER_BOUND — a customer's owning store changed (e.g. the last-purchase rule)::

    {customer_id, from_store_id, to_store_id, to_dealer_id, basis, reason,
     cause, at}                      # cause: what moved it, e.g. "purchase#<order_id>"
    # from a scan also: staff_id (the badge scanned, credited), campaign (its name),
    # scene and scene_kind; cause "scan#<scan_id>"

PROMOTER_BOUND — a customer was bound to a promoter (written by the scan flow)::

    {customer_id, promoter_id, chain, previous_promoter_id, rule, scene, at}

ORDER_PAID — a payment was applied to an order::

    {order_id, customer_id, store_id, dealer_id, payable_fen, paid_at,
     lines: [{sku, quantity}]}
"""
from __future__ import annotations

SCAN_RECORDED = "SCAN_RECORDED"      # a QR scan happened, whatever its outcome
CUSTOMER_BOUND = "CUSTOMER_BOUND"    # a customer's owning store changed
PROMOTER_BOUND = "PROMOTER_BOUND"    # a customer was bound to a promoter
ORDER_PAID = "ORDER_PAID"            # an order's payment was applied (counts the order and its GMV)

FUNNEL_EVENTS = frozenset({SCAN_RECORDED, CUSTOMER_BOUND, PROMOTER_BOUND, ORDER_PAID})


def order_paid(order, paid_at: float) -> dict:
    """ORDER_PAID's payload for a domain Order that was paid at ``paid_at``."""
    return {"order_id": order.order_id, "customer_id": order.customer_id, "store_id": order.store_id,
            "dealer_id": order.dealer_id, "payable_fen": int(order.amounts.payable_fen),
            "paid_at": float(paid_at),
            "lines": [{"sku": line.sku, "quantity": int(line.quantity)} for line in order.lines]}


def customer_bound(*, customer_id: str, from_store_id: str | None, to_store_id: str, to_dealer_id: str | None,
                   basis: str, reason: str, cause: str, at: float) -> dict:
    """CUSTOMER_BOUND's payload."""
    return {"customer_id": customer_id, "from_store_id": from_store_id, "to_store_id": to_store_id,
            "to_dealer_id": to_dealer_id, "basis": basis, "reason": reason, "cause": cause, "at": float(at)}
