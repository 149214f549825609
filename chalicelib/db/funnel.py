"""Funnel counters: applying one event's increments exactly once, and reading them back.

One event is one TransactWriteItems: a put of its ``counted_events`` marker on
condition of absence, and one UpdateItem ADD per counter item it touches (at most four:
store, dealer, staff, campaign). Either the marker and every counter are written, or
nothing is; a marker already there means the event was counted before (a replayed
stream record, or a crash between counting and marking the outbox item consumed).
"""
from __future__ import annotations

import time

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import _failed_condition
from chalicelib.domain.funnel import FIELDS, Increment, by_counter

# Markers outlive any replay: a stream keeps records 24 hours, the outbox item 14 days.
MARKER_RETENTION_S = 30 * 86400
ATTEMPTS = 5               # concurrent events on one counter item conflict: retry, then let the batch retry
BATCH_GET_MAX = 100        # DynamoDB's limit of keys per BatchGetItem


class FunnelRepository:
    def __init__(self) -> None:
        bind_records()

    def apply(self, outbox_id: str, kind: str, found: list[Increment], now: float) -> bool:
        """Adds ``found`` to the counters unless this outbox item was counted before.
        True when counted now, False when it had been. Other failures raise (the stream
        batch is retried; the marker keeps a retry from counting twice)."""
        from pynamodb.exceptions import TransactWriteError

        counters = by_counter(found)
        for attempt in range(ATTEMPTS):
            try:
                self._write(outbox_id, kind, counters, now)
                return True
            except TransactWriteError as exc:
                # PynamoDB sends puts before updates: [marker, counter 0, counter 1, ...]
                reasons = list(exc.cancellation_reasons or [])
                if _failed_condition(reasons, 0):
                    return False
                conflicted = any(r is not None and r.code == "TransactionConflict" for r in reasons)
                if not conflicted or attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _write(self, outbox_id: str, kind: str, counters: dict, now: float) -> None:
        from datetime import datetime, timezone

        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CountedEventRecord, FunnelCounterRecord

        marker = CountedEventRecord(outbox_id, kind=kind, counted_at=now,
                                    expires_at=datetime.fromtimestamp(int(now) + MARKER_RETENTION_S,
                                                                      tz=timezone.utc))
        with TransactWrite(connection=transaction_connection()) as tx:
            tx.save(marker, condition=CountedEventRecord.outbox_id.does_not_exist())
            for (scope, day), fields in counters.items():
                actions = [getattr(FunnelCounterRecord, name).add(amount) for name, amount in fields.items()]
                tx.update(FunnelCounterRecord(scope, day),
                          actions=actions + [FunnelCounterRecord.updated_at.set(now)])

    def is_counted(self, outbox_id: str) -> bool:
        from chalicelib.db.records import CountedEventRecord

        return items.get(CountedEventRecord, outbox_id) is not None

    # --- reading
    def days(self, scope: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """{day: counts} of one scope between two days (both included): one Query."""
        from chalicelib.db.records import FunnelCounterRecord

        return {r.day: _counts(r) for r in FunnelCounterRecord.query(
            scope, FunnelCounterRecord.day.between(first_day, last_day))}

    def on_day(self, scopes: list[str], day: str) -> dict[str, dict[str, int]]:
        """{scope: counts} of several scopes on one day (absent: nothing counted):
        BatchGetItem, 100 keys a call."""
        from chalicelib.db.records import FunnelCounterRecord

        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(scopes), BATCH_GET_MAX):
            keys = [{"scope": {"S": scope}, "day": {"S": day}} for scope in scopes[start:start + BATCH_GET_MAX]]
            for record in items.batch_get({FunnelCounterRecord: keys}).get(FunnelCounterRecord, []):
                found[record.scope] = _counts(record)
        return found


def _counts(record) -> dict[str, int]:
    return {name: int(getattr(record, name) or 0) for name in FIELDS}
