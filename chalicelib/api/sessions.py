"""POST /v1/sessions and GET /v1/me."""
from __future__ import annotations

from chalice import Response

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.services import sessions, wiring

bp = ApiBlueprint(__name__)


@bp.route("/sessions", methods=["POST"])
def create_session():
    body = json_object(bp.current_request, allowed={"code"}, required={"code"})
    started = sessions.start_session(
        body["code"], wechat=wiring.miniprogram(), customers=wiring.customers(),
        now=wiring.now(), signing_key=wiring.token_signing_key())
    return Response(started.to_json(), status_code=200)


@bp.route("/me", methods=["GET"])
def me():
    customer = sessions.current_customer(
        bp.current_request.headers.get("authorization"), customers=wiring.customers(),
        now=wiring.now(), signing_key=wiring.token_signing_key())
    return customer_profile(customer)


def customer_profile(customer) -> dict:
    from chalicelib.domain.time import rfc3339

    owning_store = None
    if customer.owning_store_id:
        owning_store = {"store_id": customer.owning_store_id, "dealer_id": customer.owning_dealer_id}
    return {
        "customer_id": customer.customer_id,
        "first_seen_at": rfc3339(customer.first_seen_at),
        "last_seen_at": rfc3339(customer.last_seen_at),
        "owning_store": owning_store,
        "points_balance": customer.points_balance,
        "promoter": {"status": customer.promoter_status},
    }
