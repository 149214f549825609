"""Stores as customers see them: the nearest ones (GET /v1/stores/nearest) and a store's
shelf (GET /v1/stores/{store_id}/products). No sign-in needed to browse."""
from __future__ import annotations

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.paging import encode_cursor, page_params
from chalicelib.errors import ValidationFailed
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)

NEAREST_PARAMS = ("lat", "lng", "service", "limit", "include_closed")
DEFAULT_NEAREST_LIMIT = 10
MAX_NEAREST_LIMIT = 50


def _degrees(params: dict, name: str) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        raise ValidationFailed(f"'{name}' is required (degrees, WGS-84).", field=name)
    try:
        return float(raw)
    except ValueError:
        raise ValidationFailed(f"'{name}' must be a number of degrees, not {raw[:20]!r}.", field=name) from None


def nearest_query(params: dict | None) -> dict:
    """The query string of GET /v1/stores/nearest, checked."""
    from chalicelib.domain.geo import check_coordinates
    from chalicelib.domain.network import SERVICES

    params = params or {}
    unknown = sorted(set(params) - set(NEAREST_PARAMS))
    if unknown:
        raise ValidationFailed(f"Unknown parameter(s): {', '.join(unknown)}; known: {', '.join(NEAREST_PARAMS)}.",
                               field=unknown[0])
    lat, lng = check_coordinates(_degrees(params, "lat"), _degrees(params, "lng"))
    service = params.get("service") or None
    if service is not None and service not in SERVICES:
        raise ValidationFailed(f"Unknown service {service[:30]!r}; known: {', '.join(SERVICES)}.", field="service")
    raw_limit = params.get("limit", str(DEFAULT_NEAREST_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_NEAREST_LIMIT:
        raise ValidationFailed(f"'limit' must be a whole number from 1 to {MAX_NEAREST_LIMIT}.", field="limit")
    include_closed = params.get("include_closed", "false")
    if include_closed not in ("true", "false"):
        raise ValidationFailed("'include_closed' must be true or false.", field="include_closed")
    return {"lat": lat, "lng": lng, "service": service, "limit": int(raw_limit),
            "include_closed": include_closed == "true"}


@bp.route("/stores/nearest", methods=["GET"])
def nearest():
    from chalicelib.services.store_finder import nearest_for_customer

    query = nearest_query(bp.current_request.query_params)
    return nearest_for_customer(**query, finder=wiring.store_finder(), now=wiring.now())


@bp.route("/stores/{store_id}/products", methods=["GET"])
def shelf(store_id):
    from chalicelib.services.shelf import store_shelf

    key = wiring.token_signing_key()
    limit, start = page_params(bp.current_request.query_params, key)
    store, items, last = store_shelf(store_id, limit, start, network=wiring.network(), catalogue=wiring.catalogue())
    return {"store": store, "items": items, "next_cursor": encode_cursor(last, key)}
