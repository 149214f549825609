"""GET /v1/stores/{store_id}/products: a store's shelf (no sign-in needed to browse)."""
from __future__ import annotations

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.paging import encode_cursor, page_params
from chalicelib.services import wiring
from chalicelib.services.shelf import store_shelf

bp = ApiBlueprint(__name__)


@bp.route("/stores/{store_id}/products", methods=["GET"])
def shelf(store_id):
    key = wiring.token_signing_key()
    limit, start = page_params(bp.current_request.query_params, key)
    store, items, last = store_shelf(store_id, limit, start, network=wiring.network(), catalogue=wiring.catalogue())
    return {"store": store, "items": items, "next_cursor": encode_cursor(last, key)}
