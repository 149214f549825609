"""Verified WeChat Pay notifications, handed to one dispatcher by event type.

Payment events are applied by M4's use case, refund events by M5's; until a
handler is registered for a type, the event is acknowledged and logged, so WeChat
stops retrying and the nightly reconciliation remains the backstop.
"""
from __future__ import annotations

from typing import Callable

from chalicelib.log import get_logger

# event_type -> handler(notification); tests may put their own here
HANDLERS: dict[str, Callable] = {}
# The use cases that apply each event, imported only when such an event arrives
DEFAULT_HANDLERS = {
    "TRANSACTION.SUCCESS": ("chalicelib.services.payments", "on_transaction_notification"),
    "REFUND.SUCCESS": ("chalicelib.services.refunds", "on_refund_notification"),
    "REFUND.CLOSED": ("chalicelib.services.refunds", "on_refund_notification"),
    "REFUND.ABNORMAL": ("chalicelib.services.refunds", "on_refund_notification"),
}


def _handler(event_type):
    from chalicelib.handlers import find_handler

    return find_handler(event_type, HANDLERS, DEFAULT_HANDLERS)


def dispatch(notification) -> str:
    """Returns what happened: 'applied' or 'ignored'."""
    handler = _handler(notification.event_type)
    log = get_logger("storelink.callbacks")
    if handler is None:
        log.warning("notification without a handler", extra={"fields": {
            "event_type": notification.event_type, "notification_id": notification.notification_id,
            "out_trade_no": notification.resource.get("out_trade_no")}})
        return "ignored"
    handler(notification)
    return "applied"
