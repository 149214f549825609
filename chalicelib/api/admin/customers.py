"""/v1/admin/customers: store groups (lists and CSV exports, masked) and each
customer's history of owners."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.paging import encode_cursor
from chalicelib.services import customer_groups as uc
from chalicelib.services import wiring
from chalicelib.services.attribution import ownership_history

bp = ApiBlueprint(__name__)


def _whose(request) -> tuple[str | None, str | None]:
    query = request.query_params or {}
    store_id, dealer_id = query.get("store_id"), query.get("dealer_id")
    return (f.identifier(store_id, "store_id") if store_id is not None else None,
            f.identifier(dealer_id, "dealer_id") if dealer_id is not None else None)


@bp.route("/customers", methods=["GET"])
def list_customers():
    request = bp.current_request
    limit, start = paging(request)
    store_id, dealer_id = _whose(request)
    return paged(uc.list_customers(principal(request), store_id, dealer_id, limit, start,
                                   groups=wiring.customer_groups(), network=wiring.network()))


@bp.route("/customers/export", methods=["GET"])
def export_customers():
    """Up to 5 000 rows of CSV per call; the header X-Next-Cursor (as ?cursor=) continues."""
    from chalicelib.api.paging import decode_cursor

    request = bp.current_request
    cursor = (request.query_params or {}).get("cursor")
    start = decode_cursor(cursor, wiring.token_signing_key()) if cursor else None
    store_id, dealer_id = _whose(request)
    rows, last = uc.list_customers(principal(request), store_id, dealer_id, uc.EXPORT_ROWS, start,
                                   groups=wiring.customer_groups(), network=wiring.network())
    headers = {"Content-Type": "text/csv; charset=utf-8",
               "Content-Disposition": 'attachment; filename="customers.csv"', "Cache-Control": "no-store"}
    next_cursor = encode_cursor(last, wiring.token_signing_key())
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(body=uc.export_rows(rows), status_code=200, headers=headers)


@bp.route("/customers/{customer_id}/ownership", methods=["GET"])
def ownership(customer_id):
    return {"customer_id": customer_id,
            "changes": ownership_history(principal(bp.current_request), customer_id, ownership=wiring.ownership(),
                                         network=wiring.network())}
