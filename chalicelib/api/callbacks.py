"""POST /v1/callbacks/wechatpay: WeChat Pay's notifications, verified before anything else.

Answers 204 when the event is verified and handed on; 401 with
``{"code": "FAIL", "message": ...}`` when not, so WeChat delivers it again.
"""
from __future__ import annotations

import time

from chalice import Response

from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.log import get_logger

bp = ApiBlueprint(__name__)


@bp.route("/callbacks/wechatpay", methods=["POST"], content_types=["application/json"])
def wechatpay_notification():
    from chalicelib.services.notifications import dispatch
    from chalicelib.wechat.callbacks import CallbackRefused, verify_notification
    from chalicelib.wechat.keys import pay_keys

    request = bp.current_request
    try:
        # Signatures are checked against the wall clock, never the business clock.
        notification = verify_notification(request.headers, request.raw_body or b"", keys=pay_keys(),
                                           wall_now=time.time())
    except CallbackRefused as refused:
        get_logger("storelink.callbacks").warning("callback refused", extra={"fields": {
            "reason": refused.reason, "detail": refused.message,
            "serial": request.headers.get("wechatpay-serial")}})
        return Response({"code": "FAIL", "message": refused.message}, status_code=401)
    outcome = dispatch(notification)
    get_logger("storelink.callbacks").info("callback accepted", extra={"fields": {
        "event_type": notification.event_type, "notification_id": notification.notification_id,
        "outcome": outcome}})
    return Response(body="", status_code=204)
