"""Placing an order, paying for it, and reading one's own orders."""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone

from chalicelib.domain import idempotency as idem
from chalicelib.domain.catalogue import CLOUD_WAREHOUSE_ID, store_location
from chalicelib.domain.network import ACTIVE
from chalicelib.domain.orders import (
    PAYMENT_WINDOW_S,
    PENDING_PAYMENT,
    WAREHOUSE,
    Order,
    RequestedLine,
    merge_lines,
    price_lines,
)
from chalicelib.domain.time import BEIJING, rfc3339
from chalicelib.errors import BusinessRuleViolated, Conflict, NotFound, StoreLinkError


class StoreRequired(BusinessRuleViolated):
    code = "STORE_REQUIRED"
    default_message = "Choose a store: you are not a customer of any store yet."


class StoreDeactivated(BusinessRuleViolated):
    code = "STORE_DEACTIVATED"
    default_message = "This store no longer takes orders."


class OrderNotPayable(Conflict):
    code = "ORDER_NOT_PAYABLE"
    default_message = "Only an order waiting for payment can be paid."


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    store_id: str | None
    lines: list[RequestedLine]
    fulfillment: dict
    idempotency_key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict


_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_order_id(now: float) -> str:
    """SL + Beijing yyyymmddHHMMSS + 10 random: 26 chars, a valid out_trade_no, sorts by time."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    return "SL" + stamp + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def order_json(order: Order, payment: dict | None = None, refunds: list | None = None) -> dict:
    body = {"order_id": order.order_id, "status": order.status, "store_id": order.store_id,
            "dealer_id": order.dealer_id, "lines": [l.to_json() for l in order.lines],
            "amounts": order.amounts.to_json(), "fulfillment": order.fulfillment,
            "created_at": rfc3339(order.created_at), "expires_at": rfc3339(order.expires_at),
            "paid_at": rfc3339(order.paid_at) if order.paid_at else None,
            "shipping": order.shipping,
            "shipped_at": rfc3339(order.shipped_at) if order.shipped_at else None,
            "completed_at": rfc3339(order.completed_at) if order.completed_at else None,
            "refunded_fen": order.refunded_fen, "refunds": refunds or []}
    if payment is not None:
        body["payment"] = payment
    return body


def place_order(cmd: PlaceOrder, *, orders, payments, now: float, notify_url: str) -> Answer:
    from chalicelib.db.orders import KeyAlreadyUsed

    scope_key = f"{cmd.customer_id}#orders#{cmd.idempotency_key}"
    requested = merge_lines(cmd.lines)
    customer, store, products = orders.load(cmd.customer_id, cmd.store_id, [l.sku for l in requested])
    if customer is None:
        raise NotFound("No such customer.")
    if store is None:
        store_id = cmd.store_id or customer.owning_store_id
        if store_id is None:
            raise StoreRequired()
        store = orders.get_store(store_id) if not cmd.store_id else None
        if store is None:
            raise NotFound(f"No store {store_id}.", store_id=store_id)
    if store.status != ACTIVE:
        raise StoreDeactivated(store_id=store.store_id)
    ship_from = CLOUD_WAREHOUSE_ID if cmd.fulfillment["type"] == WAREHOUSE else store_location(store.store_id)
    lines, amounts = price_lines(requested, products, ship_from)
    order = Order(order_id=new_order_id(now), customer_id=cmd.customer_id, store_id=store.store_id,
                  dealer_id=store.dealer_id, sub_mchid=store.sub_mchid, status=PENDING_PAYMENT, lines=lines,
                  amounts=amounts, fulfillment=cmd.fulfillment, created_at=now,
                  expires_at=now + PAYMENT_WINDOW_S)
    key_item = {"scope_key": scope_key, "request_hash": cmd.fingerprint, "state": idem.IN_PROGRESS,
                "resource_id": order.order_id, "created_at": now,
                "expires_at": datetime.fromtimestamp(now + idem.KEY_TTL_S, tz=timezone.utc)}
    try:
        orders.place(order, key_item, now)
    except KeyAlreadyUsed:
        return _answer_known_key(scope_key, cmd, orders=orders, payments=payments, now=now,
                                 notify_url=notify_url, customer=customer)
    except StoreLinkError as refusal:
        # Remember the refusal under the key, so a retry gets the same answer.
        orders.finish_key(scope_key, key_item, refusal.status, refusal.to_body())
        raise
    return _prepay_and_answer(order, customer.openid, scope_key, orders=orders, payments=payments, now=now,
                              notify_url=notify_url)


def _prepay_and_answer(order: Order, openid: str, scope_key: str | None, *, orders, payments, now: float,
                       notify_url: str) -> Answer:
    from chalicelib.wechat.pay import Prepay

    try:
        prepay_id = payments.prepay(Prepay(
            out_trade_no=order.order_id, sub_mchid=order.sub_mchid,
            description=_description(order), total_fen=order.amounts.payable_fen, payer_sp_openid=openid,
            time_expire=datetime.fromtimestamp(order.expires_at, tz=timezone.utc), notify_url=notify_url,
            profit_sharing=True, attach=f"store={order.store_id}"))
    except StoreLinkError:
        if scope_key:
            orders.mark_prepay_failed(scope_key)
        raise
    body = order_json(order, payments.payment_params(prepay_id))
    orders.record_prepay(order.order_id, prepay_id, now, scope_key, {"status": 201, "body": body})
    return Answer(201, body)


def _answer_known_key(scope_key: str, cmd: PlaceOrder, *, orders, payments, now, notify_url, customer) -> Answer:
    record = orders.get_key(scope_key)
    view = idem.KeyView.of(record) if record is not None else None
    decision = idem.decide(view, cmd.fingerprint, now)
    if decision == "replay":
        return Answer(int(record.response_status), record.response_body)
    if decision == "resume":
        order = orders.get(record.resource_id)
        if order is None or order.status != PENDING_PAYMENT:
            raise idem.RequestInProgress()
        return _prepay_and_answer(order, customer.openid, scope_key, orders=orders, payments=payments, now=now,
                                  notify_url=notify_url)
    # The old claim expired between the transaction and this read: a fresh attempt is safe.
    raise idem.RequestInProgress("The earlier request with this key just expired: send it again.")


def _description(order: Order) -> str:
    first = order.lines[0]
    more = f" and {len(order.lines) - 1} more" if len(order.lines) > 1 else ""
    return f"{first.name} x{first.quantity}{more}"[:127]


def payment_again(customer_id: str, order_id: str, *, orders, payments, now: float, notify_url: str) -> dict:
    """Fresh wx.requestPayment parameters for one's own order still waiting for payment."""
    order = read_own_order(customer_id, order_id, orders=orders)
    if order.status != PENDING_PAYMENT or order.expires_at <= now:
        raise OrderNotPayable(status=order.status)
    if order.prepay_id:
        return payments.payment_params(order.prepay_id)
    customer, _, _ = orders.load(customer_id, None, [])
    return _prepay_and_answer(order, customer.openid, None, orders=orders, payments=payments, now=now,
                              notify_url=notify_url).body["payment"]


def read_own_order(customer_id: str, order_id: str, *, orders) -> Order:
    order = orders.get(order_id)
    if order is None or order.customer_id != customer_id:
        raise NotFound(f"No order {order_id}.", order_id=order_id)
    return order


def list_own_orders(customer_id: str, limit: int, start, *, orders):
    return orders.of_customer(customer_id, limit, start)
