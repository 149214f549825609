"""PUT /v1/me/location."""
from __future__ import annotations

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.services import sessions, wiring

bp = ApiBlueprint(__name__)


@bp.route("/me/location", methods=["PUT"])
def put_location():
    from chalicelib.services.customer_location import set_location

    request = bp.current_request
    customer = sessions.current_customer(request.headers.get("authorization"), customers=wiring.customers(),
                                         now=wiring.now(), signing_key=wiring.token_signing_key())
    body = json_object(request, allowed={"lat", "lng", "city"})
    return set_location(customer, body, locations=wiring.locations(), now=wiring.now())
