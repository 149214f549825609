"""/v1/admin/brand/routing-settings and /v1/admin/routing/report: how route-traffic shares
the brand's followers among the nearest stores, and how it did (brand tokens only)."""
from __future__ import annotations

from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.routing_config import SETTINGS_FIELDS
from chalicelib.services import routing_admin as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/brand/routing-settings", methods=["GET"])
def read_settings():
    return uc.read_settings(principal(bp.current_request), routing_config=wiring.routing_config())


@bp.route("/brand/routing-settings", methods=["PUT"])
def update_settings():
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed=set(SETTINGS_FIELDS))
    return uc.update_settings(who, body, routing_config=wiring.routing_config())


@bp.route("/routing/report", methods=["GET"])
def routing_report():
    request = bp.current_request
    return uc.routing_report(principal(request), (request.query_params or {}).get("date"),
                             routing_db=wiring.routing(), now=wiring.now())
