"""Who owns a customer, applied: the last purchase moves ownership to the order's store.

Consumes the ATTRIBUTE_PURCHASE follow-up work a paid order queues (M4). The history
entry is keyed by the order, so a redelivered item changes nothing twice; each change
writes one CUSTOMER_BOUND funnel event in the same transaction (M7 counts bindings).
"""
from __future__ import annotations

from chalicelib.domain import attribution as rules
from chalicelib.log import get_logger


def _owner(customer) -> rules.Owner | None:
    if not customer.owning_store_id:
        return None
    return rules.Owner(customer.owning_store_id, customer.owner_basis or rules.SCANNED)


def attribute_purchase(order, *, ownership, now: float) -> str:
    from chalicelib.db.ownership import AlreadyRecorded, OwnerChanged

    ownership.record_purchase(order.customer_id, order.order_id, order.store_id, order.paid_at or now)
    for _ in range(5):
        customer = ownership.customer(order.customer_id)
        if customer is None:
            return "NO_CUSTOMER"
        decision = rules.on_purchase(_owner(customer), order.store_id)
        if decision.bind_to is None:
            return decision.reason
        try:
            ownership.change(order.customer_id, customer.owning_store_id, decision.bind_to, order.dealer_id,
                             decision.basis, decision.reason, f"purchase#{order.order_id}",
                             order.paid_at or now)
        except AlreadyRecorded:
            return "DUPLICATE"
        except OwnerChanged:
            continue  # a scan or another purchase moved it first: decide again
        get_logger("storelink.attribution").info("owner changed", extra={"fields": {
            "customer_id": order.customer_id, "from_store": customer.owning_store_id,
            "to_store": decision.bind_to, "reason": decision.reason, "order_id": order.order_id}})
        return decision.reason
    raise RuntimeError(f"ownership of {order.customer_id} kept changing")


def on_attribute_purchase(outbox_id: str, payload: dict) -> None:
    """The outbox consumer for ATTRIBUTE_PURCHASE."""
    from chalicelib.services import wiring

    order = wiring.orders().get(payload["order_id"])
    if order is None or order.paid_at is None:
        return
    attribute_purchase(order, ownership=wiring.ownership(), now=wiring.now())


def ownership_history(principal, customer_id: str, *, ownership, network) -> list[dict]:
    """The back office's view: the store or dealer owning the customer now; the brand
    when that dealer shares FULL access (or nobody owns them yet)."""
    from chalicelib.domain.time import rfc3339
    from chalicelib.errors import NotFound
    from chalicelib.services.customer_groups import can_read_customer

    customer = ownership.customer(customer_id)
    if not can_read_customer(principal, customer, network):
        raise NotFound(f"No customer {customer_id}.", customer_id=customer_id)
    return [{"from_store_id": c.from_store_id, "to_store_id": c.to_store_id, "basis": c.basis,
             "reason": c.reason, "staff_id": c.staff_id, "at": rfc3339(c.at)}
            for c in ownership.history(customer_id)]
