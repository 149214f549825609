"""/v1/admin/reconciliation/{day}: the nightly reconciliation's report of one Beijing day
(M13), scoped to the caller (a dealer sees its own sub-merchant's part only)."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.services import reconcile as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/reconciliation/{day}", methods=["GET"])
def reconciliation_report(day):
    request = bp.current_request
    sub_mchid = (request.query_params or {}).get("sub_mchid")
    sub_mchid = f.identifier(sub_mchid, "sub_mchid") if sub_mchid is not None else None
    return uc.read_report(principal(request), day, sub_mchid, reports=wiring.reconciliation_reports(),
                          network=wiring.network())
