"""Shipping, pick-up and receipt: how a paid order reaches its end.

Each step that WeChat must know of writes an UPLOAD_SHIPPING_INFO outbox item in the
same transaction; its consumer uploads the shipping information (which gates the
payment's settlement) and is retried until WeChat has it.
"""
from __future__ import annotations

from chalicelib.domain import fulfilment as rules
from chalicelib.domain import tenancy
from chalicelib.domain.orders import FULFILLING, PAID, check_move
from chalicelib.errors import Conflict, NotFound
from chalicelib.services.orders import read_own_order

UPLOAD = "UPLOAD_SHIPPING_INFO"


class OrderNotInState(Conflict):
    code = "INVALID_STATE_TRANSITION"


def read_order_in_reach(principal, order_id: str, *, orders, network):
    """An order the back-office principal may see (its store's, its dealer's, its brand's)."""
    order = orders.get(order_id)
    if order is not None:
        store = network.get_store(order.store_id)
        if store is not None and tenancy.can_see_store(principal, store):
            return order
    raise NotFound(f"No order {order_id}.", order_id=order_id)


def delivery_contact(principal, order_id: str, *, orders, network) -> dict:
    """Who to deliver to, unmasked: only for the store or dealer that fulfils the order
    (the customer is theirs to serve); the brand is refused (403) whatever it may see."""
    from chalicelib.domain.tenancy import DEALER, STORE, require_role

    require_role(principal, STORE, DEALER, action="read a customer's delivery contact")
    order = read_order_in_reach(principal, order_id, orders=orders, network=network)
    address = (order.fulfillment or {}).get("address")
    if not address:
        raise NotFound(f"Order {order_id} has no delivery address (a pick-up).", order_id=order_id)
    return {"order_id": order.order_id, **address}


class RefundPending(Conflict):
    code = "REFUND_IN_PROGRESS"
    default_message = "A refund of this order is still being decided or processed: finish it first."


def units_to_hand_over(order, refunds) -> list[tuple[str, str, int]]:
    """What is still reserved for the order: its lines less the units refunded before
    fulfilment (those went back to the shelf when their refund succeeded)."""
    from chalicelib.domain import refunds as refund_rules

    records = refunds.of_order(order.order_id)
    if any(r.status in (refund_rules.REQUESTED, refund_rules.PROCESSING)
           or (r.status == refund_rules.CLOSED and r.open_shard) for r in records):
        raise RefundPending()
    returned: dict[str, int] = {}
    for r in records:
        if r.status == refund_rules.SUCCESS and r.restock == "YES":
            for line in r.lines or []:
                returned[line["sku"]] = returned.get(line["sku"], 0) + line["quantity"]
    units = [(l.ship_from, l.sku, l.quantity - returned.get(l.sku, 0)) for l in order.lines]
    return [u for u in units if u[2] > 0]


def _require(order, status: str, target: str) -> None:
    if order.status != status:
        check_move(order.status, target)  # raises with the contract's words
        raise OrderNotInState(f"The order is {order.status}.", current=order.status)


def ship(principal, order_id: str, carrier: str, tracking_no: str, *, orders, network, fulfilment, refunds,
         now: float):
    from chalicelib.db.orders import OrderChanged

    order = read_order_in_reach(principal, order_id, orders=orders, network=network)
    rules.check_ship(order.fulfillment["type"])
    _require(order, PAID, FULFILLING)
    shipping = {"carrier": carrier, "tracking_no": tracking_no, "by": f"{principal.role}:{principal.tenant_id}",
                "logistics_type": rules.logistics_type(order.fulfillment["type"])}
    try:
        fulfilment.start(order, shipping, now, auto_complete=True, follow_up=[(UPLOAD, {"order_id": order_id})],
                         units=units_to_hand_over(order, refunds))
    except OrderChanged:
        raise OrderNotInState("The order changed meanwhile: reload it.") from None
    return orders.get(order_id)


def ready_for_pickup(principal, order_id: str, *, orders, network, fulfilment, refunds, now: float):
    from chalicelib.db.orders import OrderChanged

    order = read_order_in_reach(principal, order_id, orders=orders, network=network)
    rules.check_pickup(order.fulfillment["type"])
    _require(order, PAID, FULFILLING)
    shipping = {"ready_at_store": order.store_id, "by": f"{principal.role}:{principal.tenant_id}",
                "logistics_type": rules.BUYER_PICKUP}
    try:
        fulfilment.start(order, shipping, now, auto_complete=False, follow_up=[],
                         units=units_to_hand_over(order, refunds))
    except OrderChanged:
        raise OrderNotInState("The order changed meanwhile: reload it.") from None
    return orders.get(order_id)


def picked_up(principal, order_id: str, *, orders, network, fulfilment, now: float):
    order = read_order_in_reach(principal, order_id, orders=orders, network=network)
    rules.check_pickup(order.fulfillment["type"])
    return _complete(order, "PICKED_UP", orders=orders, fulfilment=fulfilment, now=now,
                     follow_up=[(UPLOAD, {"order_id": order_id})])


def confirm_receipt(customer_id: str, order_id: str, *, orders, fulfilment, now: float):
    order = read_own_order(customer_id, order_id, orders=orders)
    rules.check_confirm_receipt(order.fulfillment["type"])
    return _complete(order, "RECEIVED", orders=orders, fulfilment=fulfilment, now=now, follow_up=[])


def _complete(order, cause, *, orders, fulfilment, now, follow_up):
    from chalicelib.db.orders import OrderChanged

    _require(order, FULFILLING, "COMPLETED")
    try:
        fulfilment.complete(order.order_id, cause, now, follow_up)
    except OrderChanged:
        raise OrderNotInState("The order changed meanwhile: reload it.") from None
    return orders.get(order.order_id)


def complete_long_shipped(*, fulfilment, now: float, after_days: int) -> int:
    """The close job's second duty: what was shipped long enough ago counts as received."""
    from chalicelib.db.orders import OrderChanged

    done = 0
    for order in fulfilment.shipped_before(now - after_days * 86400):
        try:
            fulfilment.complete(order.order_id, "AUTO_CONFIRMED", now, [])
            done += 1
        except OrderChanged:
            continue
    return done


def upload_shipping_info(outbox_id: str, payload: dict) -> None:
    """The outbox consumer for UPLOAD_SHIPPING_INFO (idempotent: WeChat keeps the first upload)."""
    from chalicelib.domain.time import rfc3339
    from chalicelib.services import wiring

    order = wiring.orders().get(payload["order_id"])
    customer = wiring.customers().get(order.customer_id)
    shipping = order.shipping or {}
    kind = shipping.get("logistics_type", rules.EXPRESS)
    entry = {"item_desc": ", ".join(f"{l.name} x{l.quantity}" for l in order.lines)[:120]}
    if kind == rules.EXPRESS:
        entry.update({"tracking_no": shipping["tracking_no"], "express_company": shipping["carrier"]})
    wiring.miniprogram().upload_shipping_info(
        transaction_id=order.transaction_id, logistics_type=kind, shipping_list=[entry],
        upload_time=rfc3339(wiring.now()), payer_openid=customer.openid)
