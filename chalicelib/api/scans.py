"""POST /v1/scans."""
from __future__ import annotations

import re

from chalice import Response

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.geo import check_coordinates
from chalicelib.errors import ValidationFailed
from chalicelib.services import sessions, wiring

bp = ApiBlueprint(__name__)
SCENE = re.compile(r"^[A-Za-z0-9!#$&'()*+,/:;=?@\-._~]{1,32}$")


@bp.route("/scans", methods=["POST"])
def create_scan():
    from chalicelib.services.scans import scan

    request = bp.current_request
    customer = sessions.current_customer(request.headers.get("authorization"), customers=wiring.customers(),
                                         now=wiring.now(), signing_key=wiring.token_signing_key())
    body = json_object(request, allowed={"scene", "lat", "lng"}, required={"scene"})
    if not isinstance(body["scene"], str) or not SCENE.match(body["scene"]):
        raise ValidationFailed("'scene' must be 1 to 32 characters of WeChat's scene alphabet.", field="scene")
    lat = lng = None
    if "lat" in body or "lng" in body:
        lat, lng = check_coordinates(body.get("lat"), body.get("lng"))
    answer = scan(customer.customer_id, body["scene"], lat, lng, scans=wiring.scans(), now=wiring.now(),
                  policy=wiring.scan_policy())
    return Response(answer, status_code=201)
