"""/v1/admin/refunds/{id}/approve and /reject: returns after fulfilment, decided by the
store or its dealer (or the brand); another dealer's return is not found."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.errors import ValidationFailed
from chalicelib.services import wiring
from chalicelib.services.refunds import decide_return

bp = ApiBlueprint(__name__)


def _decide(refund_id: str, approve: bool):
    from chalicelib.config import settings

    request = bp.current_request
    who = principal(request)
    body = json_object(request, allowed={"restock", "note"}) if (request.raw_body or b"").strip() else {}
    restock = body.get("restock", False)
    if not isinstance(restock, bool):
        raise ValidationFailed("'restock' must be true or false.", field="restock")
    note = f.text(body, "note", 200, required=False, min_len=0) or ""
    return decide_return(who, refund_id, approve, restock, note, refunds=wiring.refunds(), network=wiring.network(),
                         payments=wiring.payments(), now=wiring.now(), notify_url=settings().notify_url)


@bp.route("/refunds/{refund_id}/approve", methods=["POST"])
def approve(refund_id):
    return _decide(refund_id, True)


@bp.route("/refunds/{refund_id}/reject", methods=["POST"])
def reject(refund_id):
    return _decide(refund_id, False)
