"""/v1/admin/orders: a store's orders and their fulfilment, scoped like the rest of
the back office (brand, owning dealer, the store itself)."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.paging import encode_cursor
from chalicelib.api.parsing import json_object
from chalicelib.domain.fulfilment import check_tracking
from chalicelib.domain.sharing import mask_phone
from chalicelib.errors import ValidationFailed
from chalicelib.services import fulfilment as uc
from chalicelib.services import wiring
from chalicelib.services.network_admin import read_store
from chalicelib.services.orders import order_json

bp = ApiBlueprint(__name__)


def _admin_order_json(order) -> dict:
    """The back office's view: the delivery phone masked (the delivering store asks for it
    through /contact, which the brand never gets)."""
    shown = {**order_json(order), "customer_id": order.customer_id}
    address = (shown.get("fulfillment") or {}).get("address")
    if address and address.get("phone"):
        shown["fulfillment"] = {**shown["fulfillment"], "address": {**address,
                                                                     "phone": mask_phone(address["phone"])}}
    return shown


@bp.route("/orders", methods=["GET"])
def list_orders():
    request = bp.current_request
    who = principal(request)
    store_id = (request.query_params or {}).get("store_id")
    if store_id is None:
        raise ValidationFailed("Name the store: ?store_id=...", field="store_id")
    read_store(who, f.identifier(store_id, "store_id"), network=wiring.network())
    limit, start = paging(request)
    found, last = wiring.fulfilment().of_store(store_id, limit, start)
    return {"items": [_admin_order_json(o) for o in found],
            "next_cursor": encode_cursor(last, wiring.token_signing_key())}


@bp.route("/orders/{order_id}", methods=["GET"])
def read_order(order_id):
    return _admin_order_json(uc.read_order_in_reach(principal(bp.current_request), order_id,
                                                    orders=wiring.orders(), network=wiring.network()))


@bp.route("/orders/{order_id}/contact", methods=["GET"])
def delivery_contact(order_id):
    """The delivery address with the full phone, for the store or dealer delivering it."""
    return uc.delivery_contact(principal(bp.current_request), order_id, orders=wiring.orders(),
                               network=wiring.network())


@bp.route("/orders/{order_id}/ship", methods=["POST"])
def ship(order_id):
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed={"carrier", "tracking_no"}, required={"carrier", "tracking_no"})
    carrier, tracking_no = check_tracking(body["carrier"], body["tracking_no"])
    return _admin_order_json(uc.ship(who, order_id, carrier, tracking_no, orders=wiring.orders(),
                                     network=wiring.network(), fulfilment=wiring.fulfilment(),
                                     refunds=wiring.refunds(), now=wiring.now()))


@bp.route("/orders/{order_id}/ready-for-pickup", methods=["POST"])
def ready_for_pickup(order_id):
    return _admin_order_json(uc.ready_for_pickup(principal(bp.current_request), order_id, orders=wiring.orders(),
                                                 network=wiring.network(), fulfilment=wiring.fulfilment(),
                                                 refunds=wiring.refunds(), now=wiring.now()))


@bp.route("/orders/{order_id}/picked-up", methods=["POST"])
def picked_up(order_id):
    return _admin_order_json(uc.picked_up(principal(bp.current_request), order_id, orders=wiring.orders(),
                                          network=wiring.network(), fulfilment=wiring.fulfilment(),
                                          now=wiring.now()))
