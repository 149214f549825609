"""/v1/callbacks/wechat-oa: the official account's server URL (WeChat's XML pushes).

``GET`` is WeChat's URL verification (echo ``echostr`` once the signature holds);
``POST`` takes event pushes. Both verify the ``signature``/``timestamp``/``nonce``
query parameters against the OA server token first (a bad, missing or stale one is
the contract's 401). A verified push is answered ``success`` (text/plain) within
WeChat's 5 s, whatever it was: only a scan of one of our parametric QR codes does
anything (``chalicelib.services.oa_events``).
"""
from __future__ import annotations

import time

from chalice import Response

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.log import get_logger

bp = ApiBlueprint(__name__)
ROUTE = "/callbacks/wechat-oa"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _verified_query() -> dict:
    from chalicelib.domain.official_account import check_signature
    from chalicelib.services import wiring

    query = bp.current_request.query_params or {}
    # Signatures are checked against the wall clock, never the business clock.
    check_signature(wiring.oa_server_token(), query.get("signature"), query.get("timestamp"), query.get("nonce"),
                    wall_now=time.time())
    return query


@bp.route(ROUTE, methods=["GET"])
def verify_server_url():
    from chalicelib.domain.official_account import check_echostr

    return Response(body=check_echostr(_verified_query().get("echostr")), status_code=200, headers=TEXT)


@bp.route(ROUTE, methods=["POST"], content_types=["text/xml", "application/xml"])
def receive_event():
    from chalicelib.domain.official_account import parse_event
    from chalicelib.services import wiring
    from chalicelib.services.oa_events import handle_event

    _verified_query()
    event = parse_event(bp.current_request.raw_body or b"")
    handled = handle_event(event, oa_events=wiring.oa_events(), customers=wiring.customers(),
                           official_account=wiring.official_account(), scans=wiring.scans(), now=wiring.now(),
                           policy=wiring.scan_policy())
    get_logger("storelink.oa").info("official-account event", extra={"fields": {
        "msg_type": event.msg_type, "event": event.event, "outcome": handled.outcome, "channel": handled.channel,
        "customer_id": handled.customer_id, "scan_id": handled.scan_id}})
    return Response(body="success", status_code=200, headers=TEXT)
