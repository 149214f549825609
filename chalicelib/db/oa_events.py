"""Official-account event pushes, claimed once: what keeps WeChat's retries from applying twice."""
from __future__ import annotations

import secrets

from chalicelib.db import items
from chalicelib.db.binding import bind_records
from chalicelib.db.items import is_condition_failure

CLAIMED = "CLAIMED"     # being applied (or its handler died: see services/oa_events.py)
APPLIED = "APPLIED"     # done; retries of it change nothing


def _utc(ts: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc)


class OaEventRepository:
    def __init__(self) -> None:
        bind_records()

    def claim(self, event_key: str, *, event: str, scene: str, channel: str, now: float, lease_s: float,
              retention_s: float) -> str | None:
        """One conditional put: the claim's token, or None when this event is already
        applied or being applied. A claim whose lease ran out (its handler died) and a
        record past its retention (TTL deletes late, DynamoDB Local never) are taken over."""
        from pynamodb.exceptions import PutError

        from chalicelib.db.records import OaEventRecord

        token = secrets.token_urlsafe(12)
        record = OaEventRecord(event_key, state=CLAIMED, claim_token=token, lease_until=now + lease_s, event=event,
                               scene=scene, channel=channel, claimed_at=now, expires_at=_utc(now + retention_s))
        try:
            record.save(condition=OaEventRecord.event_key.does_not_exist()
                        | ((OaEventRecord.state == CLAIMED) & (OaEventRecord.lease_until < now))
                        | (OaEventRecord.expires_at < _utc(now)))
        except PutError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return token

    def release(self, event_key: str, token: str) -> None:
        """Give up a claim before anything was applied, so a retry can apply the event."""
        from pynamodb.exceptions import DeleteError

        from chalicelib.db.records import OaEventRecord

        try:
            OaEventRecord(event_key).delete(condition=(OaEventRecord.claim_token == token)
                                            & (OaEventRecord.state == CLAIMED))
        except DeleteError as exc:
            if not is_condition_failure(exc):
                raise

    def mark_applied(self, event_key: str, token: str, *, outcome: str, customer_id: str | None,
                     scan_id: str | None, now: float) -> bool:
        """False when the claim is no longer ours (taken over after its lease ran out)."""
        from chalicelib.db.records import OaEventRecord

        actions = [OaEventRecord.state.set(APPLIED), OaEventRecord.applied_at.set(now),
                   OaEventRecord.outcome.set(outcome)]
        if customer_id:
            actions.append(OaEventRecord.customer_id.set(customer_id))
        if scan_id:
            actions.append(OaEventRecord.scan_id.set(scan_id))
        try:
            items.update(OaEventRecord, (event_key,), actions, OaEventRecord.claim_token == token, _NotOurs())
        except _NotOurs:
            return False
        return True

    def get(self, event_key: str):
        from chalicelib.db.records import OaEventRecord

        return items.get(OaEventRecord, event_key)


class _NotOurs(Exception):
    pass
