"""/v1/admin/promoters: the brand's queue of applications, its decisions, and each
promoter's upline and friends."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.domain.promoters import STATUSES
from chalicelib.errors import ValidationFailed
from chalicelib.services import promoters as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/promoters", methods=["GET"])
def list_promoters():
    request = bp.current_request
    limit, start = paging(request)
    status = (request.query_params or {}).get("status", "PENDING")
    if status not in STATUSES:
        raise ValidationFailed(f"'status' must be one of {', '.join(STATUSES)}.", field="status")
    return paged(uc.list_promoters(principal(request), status, limit, start, promoters=wiring.promoters()))


@bp.route("/promoters/{customer_id}", methods=["GET"])
def read_promoter(customer_id):
    return uc.promoter_detail(principal(bp.current_request), f.identifier(customer_id, "customer_id"),
                              promoters=wiring.promoters())


@bp.route("/promoters/{customer_id}/friends", methods=["GET"])
def promoter_friends(customer_id):
    request = bp.current_request
    limit, start = paging(request)
    return paged(uc.friends(principal(request), f.identifier(customer_id, "customer_id"), limit, start,
                            promoters=wiring.promoters()))


def _decide(customer_id: str, approve: bool) -> dict:
    return uc.decide(principal(bp.current_request), f.identifier(customer_id, "customer_id"), approve,
                     promoters=wiring.promoters(), network=wiring.network(), now=wiring.now())


@bp.route("/promoters/{customer_id}/approve", methods=["POST"])
def approve_promoter(customer_id):
    return _decide(customer_id, True)


@bp.route("/promoters/{customer_id}/reject", methods=["POST"])
def reject_promoter(customer_id):
    return _decide(customer_id, False)
