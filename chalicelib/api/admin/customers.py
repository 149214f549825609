"""/v1/admin/customers/{id}/ownership: every change of a customer's owning store."""
from __future__ import annotations

from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.services import wiring
from chalicelib.services.attribution import ownership_history

bp = ApiBlueprint(__name__)


@bp.route("/customers/{customer_id}/ownership", methods=["GET"])
def ownership(customer_id):
    return {"customer_id": customer_id,
            "changes": ownership_history(principal(bp.current_request), customer_id, ownership=wiring.ownership())}
