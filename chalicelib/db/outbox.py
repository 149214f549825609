"""The outbox: follow-up work recorded in the same transaction as its cause."""
from __future__ import annotations

import secrets

from chalicelib.db import items

# Consumed items linger a while for inspection, then TTL removes them (AWS only:
# DynamoDB Local never deletes on TTL).
RETENTION_S = 14 * 86400


def new_outbox_item(kind: str, payload: dict, now: float):
    """An OutboxRecord to put inside the caller's TransactWrite (never on its own)."""
    from chalicelib.db.binding import bind_records
    from chalicelib.db.records import OutboxRecord

    bind_records()
    from datetime import datetime, timezone

    return OutboxRecord(outbox_id="ob_" + secrets.token_urlsafe(12), kind=kind, payload=payload,
                        created_at=now,
                        expires_at=datetime.fromtimestamp(int(now) + RETENTION_S, tz=timezone.utc))


class OutboxRepository:
    def is_consumed(self, outbox_id: str) -> bool:
        from chalicelib.db.records import OutboxRecord

        record = items.get(OutboxRecord, outbox_id)
        return record is not None and record.consumed_at is not None

    def mark_consumed(self, outbox_id: str, at: float) -> bool:
        """False when another consumer finished it first."""
        from chalicelib.db.records import OutboxRecord

        try:
            items.update(OutboxRecord, (outbox_id,), [OutboxRecord.consumed_at.set(at)],
                         OutboxRecord.outbox_id.exists() & OutboxRecord.consumed_at.does_not_exist(),
                         _AlreadyConsumed())
        except _AlreadyConsumed:
            return False
        return True


class _AlreadyConsumed(Exception):
    pass
