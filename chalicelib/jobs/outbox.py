"""The outbox stream's consumer: each new outbox item is handed to the handler of
its kind, once. Streams deliver at least once (and the local scheduler may be
restarted between reading and checkpointing), so an item already marked consumed is
skipped, and handlers are themselves idempotent per outbox item.

In AWS this runs as the ``outbox_consumer`` Lambda behind an event-source mapping
declared in ``infra/aws`` (with an SQS dead-letter queue); locally the scheduler
feeds it the same records from DynamoDB Local's stream.
"""
from __future__ import annotations

import json
from typing import Callable

from chalicelib.domain import events
from chalicelib.log import get_logger

# kind -> handler(outbox_id, payload); tests may put their own here
HANDLERS: dict[str, Callable[[str, dict], None]] = {}
# The use cases that do each kind of follow-up work, imported only when one arrives.
# (AWARD_POINTS gets its consumer in a later issue; until then it is reported as
# unhandled and left in the table.)
DEFAULT_HANDLERS = {
    "UPLOAD_SHIPPING_INFO": ("chalicelib.services.fulfilment", "upload_shipping_info"),
    "ATTRIBUTE_PURCHASE": ("chalicelib.services.attribution", "on_attribute_purchase"),
    # M8: the split plan and its commissions; the after-sale window of a completed order
    "PLAN_SPLIT": ("chalicelib.services.splits", "on_plan_split"),
    "ORDER_COMPLETED": ("chalicelib.services.splits", "on_order_completed"),
    # M10: a refund that succeeded unwinds its splits (commissions, memo, a return)
    "UNWIND_SPLIT": ("chalicelib.services.settlement", "on_unwind_split"),
    # M7's funnel counters (each counted once per outbox item, whatever the replays)
    events.SCAN_RECORDED: ("chalicelib.services.funnel", "on_scan_recorded"),
    events.CUSTOMER_BOUND: ("chalicelib.services.funnel", "on_customer_bound"),
    events.ORDER_PAID: ("chalicelib.services.funnel", "on_order_paid"),
}
# Funnel events nobody counts yet (PROMOTER_BOUND: the funnel does not count it; M8's
# commissions may). That is expected, not an error: they are skipped quietly, unconsumed.
EVENTS_FOR_LATER = {events.PROMOTER_BOUND}


def _handler(kind):
    from chalicelib.handlers import find_handler

    return find_handler(kind, HANDLERS, DEFAULT_HANDLERS)


def consume(event: dict, *, outbox=None, now=None) -> dict:
    """Returns counts; raises if a handler fails, so the batch is retried."""
    if outbox is None:
        from chalicelib.db.outbox import OutboxRepository

        outbox = OutboxRepository()
    if now is None:
        from chalicelib.clock import timestamp as now
    log = get_logger("storelink.outbox")
    handled = skipped = 0
    for record in event.get("Records", []):
        if record.get("eventName") != "INSERT":
            skipped += 1
            continue
        image = record.get("dynamodb", {}).get("NewImage", {})
        outbox_id = image.get("outbox_id", {}).get("S")
        kind = image.get("kind", {}).get("S")
        handler = _handler(kind)
        if handler is None and kind in EVENTS_FOR_LATER:
            log.debug("outbox event left for later", extra={"fields": {"outbox_id": outbox_id, "kind": kind}})
            skipped += 1
            continue
        if handler is None:
            # Retrying cannot help an item nobody handles: report it, do not block the stream.
            log.error("outbox item of unknown kind", extra={"fields": {"outbox_id": outbox_id, "kind": kind}})
            skipped += 1
            continue
        if outbox.is_consumed(outbox_id):
            skipped += 1
            continue
        handler(outbox_id, _payload(image))
        outbox.mark_consumed(outbox_id, now())
        handled += 1
        log.info("outbox item consumed", extra={"fields": {"outbox_id": outbox_id, "kind": kind}})
    return {"handled": handled, "skipped": skipped}


def _payload(image: dict) -> dict:
    raw = image.get("payload", {}).get("S")
    return json.loads(raw) if raw else {}
