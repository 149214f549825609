"""/v1/admin/funnel: daily funnel counts of a store, staff member, campaign or dealer, and
the brand-wide daily view per dealer."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.domain.funnel import CAMPAIGN, SCOPES
from chalicelib.domain.scenes import check_scene
from chalicelib.errors import ValidationFailed
from chalicelib.services import funnel as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


def _required(query: dict, name: str) -> str:
    value = query.get(name)
    if value is None:
        raise ValidationFailed(f"'{name}' is required.", field=name)
    return value


@bp.route("/funnel", methods=["GET"])
def read_funnel():
    request = bp.current_request
    who = principal(request)
    query = request.query_params or {}
    scope = _required(query, "scope")
    if scope not in SCOPES:
        raise ValidationFailed(f"'scope' must be one of {', '.join(SCOPES)}.", field="scope")
    # A campaign is named by its scene token (e.g. c.4fZq9LmA0x); the others by their id.
    raw_id = _required(query, "id")
    ident = check_scene(raw_id, "id") if scope == CAMPAIGN else f.identifier(raw_id, "id")
    return uc.read_funnel(who, scope, ident, _required(query, "from"), _required(query, "to"),
                          counters=wiring.funnel(), network=wiring.network(), scenes=wiring.scenes())


@bp.route("/funnel/dealers", methods=["GET"])
def dealers_on_day():
    request = bp.current_request
    who = principal(request)
    limit, start = paging(request)
    day = _required(request.query_params or {}, "day")
    items, last = uc.dealers_on_day(who, day, limit, start, counters=wiring.funnel(), network=wiring.network())
    return {"day": day, **paged((items, last))}
