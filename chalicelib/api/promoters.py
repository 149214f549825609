"""/v1/promoters: a customer becomes a promoter and fetches their share code."""
from __future__ import annotations

from chalice import Response

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.fields import code_width
from chalicelib.api.parsing import json_object
from chalicelib.services import sessions, wiring

bp = ApiBlueprint(__name__)


def _customer_id(request) -> str:
    return sessions.current_customer(request.headers.get("authorization"), customers=wiring.customers(),
                                     now=wiring.now(), signing_key=wiring.token_signing_key()).customer_id


@bp.route("/promoters", methods=["POST"])
def become_promoter():
    from chalicelib.config import settings
    from chalicelib.services.promoters import become_promoter as apply

    request = bp.current_request
    customer_id = _customer_id(request)
    if (request.raw_body or b"").strip():
        json_object(request, allowed=set())      # nothing to say yet, but never something unread
    promoter, made = apply(customer_id, promoters=wiring.promoters(), network=wiring.network(),
                           approval=settings().promoter_approval, now=wiring.now())
    return Response(promoter, status_code=201 if made else 200)


@bp.route("/promoters/me", methods=["GET"])
def my_promoter():
    from chalicelib.services.promoters import my_promoter as mine

    return mine(_customer_id(bp.current_request), promoters=wiring.promoters())


@bp.route("/me/promoter", methods=["GET"])
def my_promoter_account():
    from chalicelib.services.promoters import my_promoter_account as account

    return account(_customer_id(bp.current_request), promoters=wiring.promoters(), splits=wiring.splits())


@bp.route("/promoters/me/wxacode", methods=["GET"])
def my_share_code():
    from chalicelib.services.promoters import share_code

    request = bp.current_request
    width = code_width(request.query_params)
    png = share_code(_customer_id(request), width, promoters=wiring.promoters(),
                     miniprogram=wiring.miniprogram())
    return Response(body=png, status_code=200, headers={"Content-Type": "image/png",
                                                        "Cache-Control": "private, max-age=300"})
