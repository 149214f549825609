"""/v1/admin/products and /v1/admin/stock."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import changes_only, paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.catalogue import MAX_PRICE_FEN, MAX_STOCK_UNITS, check_sku
from chalicelib.domain.network import STATUSES
from chalicelib.services import catalogue_admin as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)
PRODUCT_FIELDS = {"sku", "name", "category", "price_fen", "cost_fen", "status"}


def _product_fields(body: dict, partial: bool) -> dict:
    out = {"name": f.text(body, "name", 100, required=not partial),
           "category": f.text(body, "category", 50, required=False, min_len=0),
           "price_fen": f.integer(body, "price_fen", 1, MAX_PRICE_FEN, required=not partial),
           "cost_fen": f.integer(body, "cost_fen", 0, MAX_PRICE_FEN, required=not partial),
           "status": f.choice(body, "status", STATUSES, required=False)}
    return {k: v for k, v in out.items() if v is not None}


@bp.route("/products", methods=["POST"])
def create_product():
    body = json_object(bp.current_request, allowed=PRODUCT_FIELDS, required={"sku"})
    fields = {"sku": check_sku(body["sku"]), **_product_fields(body, partial=False)}
    product = uc.create_product(principal(bp.current_request), fields, catalogue=wiring.catalogue(),
                                now=wiring.now(), commission_config=wiring.commission_config())
    return Response(product.to_json(), status_code=201)


@bp.route("/products", methods=["GET"])
def list_products():
    limit, start = paging(bp.current_request)
    return paged(uc.list_products(principal(bp.current_request), limit, start,
                                  catalogue=wiring.catalogue(), network=wiring.network()))


@bp.route("/products/{sku}", methods=["GET"])
def read_product(sku):
    return uc.read_product(principal(bp.current_request), sku, catalogue=wiring.catalogue(),
                           network=wiring.network()).to_json()


@bp.route("/products/{sku}", methods=["PATCH"])
def update_product(sku):
    who = principal(bp.current_request)  # a dealer is refused (403) before its body is read
    body = changes_only(json_object(bp.current_request, allowed=PRODUCT_FIELDS - {"sku"}))
    return uc.update_product(who, sku, _product_fields(body, partial=True), catalogue=wiring.catalogue(),
                             network=wiring.network(), commission_config=wiring.commission_config()).to_json()


@bp.route("/stock/{location_id}", methods=["GET"])
def list_stock(location_id):
    limit, start = paging(bp.current_request)
    return paged(uc.list_stock(principal(bp.current_request), location_id, limit, start,
                               catalogue=wiring.catalogue(), network=wiring.network()))


@bp.route("/stock/{location_id}/{sku}", methods=["GET"])
def read_stock(location_id, sku):
    return uc.read_stock(principal(bp.current_request), location_id, sku, catalogue=wiring.catalogue(),
                         network=wiring.network()).to_json()


@bp.route("/stock/{location_id}/{sku}", methods=["PUT"])
def count_stock(location_id, sku):
    body = json_object(bp.current_request, allowed={"on_hand"}, required={"on_hand"})
    on_hand = f.integer(body, "on_hand", 0, MAX_STOCK_UNITS)
    return uc.count_stock(principal(bp.current_request), location_id, check_sku(sku), on_hand,
                          catalogue=wiring.catalogue(), network=wiring.network(), now=wiring.now()).to_json()
