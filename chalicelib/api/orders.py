"""POST/GET /v1/orders, GET /v1/orders/{id}, POST /v1/orders/{id}/payment."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.paging import page_params, encode_cursor
from chalicelib.api.parsing import json_object
from chalicelib.domain.catalogue import check_sku
from chalicelib.domain.idempotency import check_key, request_fingerprint
from chalicelib.domain.orders import (
    FULFILLMENT_TYPES,
    MAX_LINES,
    MAX_QUANTITY_PER_LINE,
    STORE_PICKUP,
    RequestedLine,
)
from chalicelib.errors import NotSupported, ValidationFailed
from chalicelib.services import orders as uc
from chalicelib.services import sessions, wiring

bp = ApiBlueprint(__name__)
# Prices, amounts, statuses and dealers come from the server: such fields in the body
# are unknown fields, refused with 400 (never silently ignored).
ORDER_FIELDS = {"store_id", "lines", "fulfillment", "coupon_id", "points"}


def _customer(request):
    return sessions.current_customer(request.headers.get("authorization"), customers=wiring.customers(),
                                     now=wiring.now(), signing_key=wiring.token_signing_key())


def _lines(body: dict) -> list[RequestedLine]:
    raw = body.get("lines")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LINES:
        raise ValidationFailed(f"'lines' must be a list of 1 to {MAX_LINES} lines.", field="lines")
    lines = []
    for index, line in enumerate(raw):
        if not isinstance(line, dict) or set(line) - {"sku", "quantity"}:
            raise ValidationFailed(f"lines[{index}] must be {{\"sku\", \"quantity\"}} and nothing else.",
                                   field="lines", index=index)
        sku = check_sku(line.get("sku"))
        quantity = f.integer(line, "quantity", 1, MAX_QUANTITY_PER_LINE)
        lines.append(RequestedLine(sku, quantity))
    return lines


def _fulfillment(body: dict) -> dict:
    raw = body.get("fulfillment")
    if not isinstance(raw, dict) or set(raw) - {"type", "address"}:
        raise ValidationFailed("'fulfillment' must be {\"type\", \"address\"?}.", field="fulfillment")
    kind = f.choice(raw, "type", FULFILLMENT_TYPES)
    if kind == STORE_PICKUP:
        if "address" in raw:
            raise ValidationFailed("A pick-up order has no address.", field="fulfillment.address")
        return {"type": kind}
    address = raw.get("address")
    if not isinstance(address, dict) or set(address) - {"recipient", "phone", "city", "detail"}:
        raise ValidationFailed("Delivery needs 'address': {recipient, phone, city, detail}.",
                               field="fulfillment.address")
    phone = f.text(address, "phone", 11, min_len=11)
    if not phone.isdigit() or not phone.startswith("1"):
        raise ValidationFailed("'phone' must be an 11-digit mainland mobile number.", field="fulfillment.address.phone")
    return {"type": kind, "address": {"recipient": f.text(address, "recipient", 50), "phone": phone,
                                      "city": f.text(address, "city", 50), "detail": f.text(address, "detail", 200)}}


@bp.route("/orders", methods=["POST"])
def create_order():
    request = bp.current_request
    customer = _customer(request)
    key = check_key(request.headers.get("idempotency-key"))
    body = json_object(request, allowed=ORDER_FIELDS, required={"lines", "fulfillment"})
    if "coupon_id" in body or "points" in body:
        raise NotSupported("Coupons and points are not supported yet.")
    store_id = f.identifier(body["store_id"], "store_id") if "store_id" in body else None
    command = uc.PlaceOrder(customer_id=customer.customer_id, store_id=store_id, lines=_lines(body),
                            fulfillment=_fulfillment(body), idempotency_key=key,
                            fingerprint=request_fingerprint(body))
    answer = uc.place_order(command, orders=wiring.orders(), payments=wiring.payments(), now=wiring.now(),
                            notify_url=_notify_url())
    return Response(answer.body, status_code=answer.status)


@bp.route("/orders", methods=["GET"])
def list_orders():
    request = bp.current_request
    customer = _customer(request)
    limit, start = page_params(request.query_params, wiring.token_signing_key())
    found, last = uc.list_own_orders(customer.customer_id, limit, start, orders=wiring.orders())
    return {"items": [uc.order_json(o, refunds=_refunds_of(o.order_id)) for o in found],
            "next_cursor": encode_cursor(last, wiring.token_signing_key())}


@bp.route("/orders/{order_id}", methods=["GET"])
def read_order(order_id):
    customer = _customer(bp.current_request)
    order = uc.read_own_order(customer.customer_id, order_id, orders=wiring.orders())
    return uc.order_json(order, refunds=_refunds_of(order_id))


def _refunds_of(order_id: str) -> list:
    from chalicelib.services.refunds import refund_json

    return [refund_json(r) for r in wiring.refunds().of_order(order_id)]


@bp.route("/orders/{order_id}/payment", methods=["POST"])
def pay_again(order_id):
    customer = _customer(bp.current_request)
    payment = uc.payment_again(customer.customer_id, order_id, orders=wiring.orders(),
                               payments=wiring.payments(), now=wiring.now(), notify_url=_notify_url())
    return {"order_id": order_id, "payment": payment}


def _notify_url() -> str:
    from chalicelib.config import settings

    return settings().notify_url


@bp.route("/orders/{order_id}/cancel", methods=["POST"])
def cancel(order_id):
    from chalicelib.services.closing import cancel_order

    customer = _customer(bp.current_request)
    order = cancel_order(customer.customer_id, order_id, orders=wiring.orders(),
                         payment_records=wiring.payment_records(), payments=wiring.payments(), now=wiring.now())
    return uc.order_json(order)


@bp.route("/orders/{order_id}/confirm-receipt", methods=["POST"])
def confirm_receipt(order_id):
    from chalicelib.services.fulfilment import confirm_receipt as confirm

    customer = _customer(bp.current_request)
    return uc.order_json(confirm(customer.customer_id, order_id, orders=wiring.orders(),
                                 fulfilment=wiring.fulfilment(), now=wiring.now()))


@bp.route("/orders/{order_id}/refunds", methods=["POST"])
def ask_refund(order_id):
    from chalicelib.services.refunds import request_refund

    request = bp.current_request
    customer = _customer(request)
    key = check_key(request.headers.get("idempotency-key"))
    body = json_object(request, allowed={"amount_fen", "lines", "reason"}, required={"reason"})
    status, answer = request_refund(customer.customer_id, order_id, body, key, request_fingerprint(body),
                                    refunds=wiring.refunds(), payments=wiring.payments(), now=wiring.now(),
                                    notify_url=_notify_url())
    return Response(answer, status_code=status)
