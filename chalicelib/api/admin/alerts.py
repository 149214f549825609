"""/v1/admin/alerts: what a person must act on, scoped like the rest of the back office."""
from __future__ import annotations

from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.errors import ValidationFailed
from chalicelib.services import alerts as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/alerts", methods=["GET"])
def list_alerts():
    request = bp.current_request
    limit, start = paging(request)
    return paged(uc.list_alerts(principal(request), limit, start, alerts=wiring.alerts()))


@bp.route("/alerts/{alert_id}/acknowledge", methods=["POST"])
def acknowledge(alert_id):
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", alert_id):
        raise ValidationFailed("'alert_id' is not an alert id.", field="alert_id")
    return uc.acknowledge(principal(bp.current_request), alert_id, alerts=wiring.alerts(), now=wiring.now())
