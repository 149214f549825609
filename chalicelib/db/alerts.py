"""Alerts: one item per cause (a conditional put), listed newest first per tenant."""
from __future__ import annotations

from chalicelib.db import items


class AlertRepository:
    def raise_once(self, record) -> bool:
        """False when this alert (same kind and subject) exists already."""
        from chalicelib.errors import Conflict

        try:
            items.create(record, Conflict("raised already"))
        except Conflict:
            return False
        return True

    def get(self, alert_id: str):
        from chalicelib.db.records import AlertRecord

        return items.get(AlertRecord, alert_id)

    def page(self, role: str, tenant_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import AlertRecord

        index = {"brand": AlertRecord.by_brand, "dealer": AlertRecord.by_dealer, "store": AlertRecord.by_store}[role]
        return items.query_page(index, tenant_id, limit, start, newest_first=True)

    def acknowledge(self, alert_id: str, by: str, now: float):
        """OPEN -> ACKNOWLEDGED, once (Conflict after)."""
        from chalicelib.db.records import AlertRecord
        from chalicelib.errors import Conflict

        return items.update(AlertRecord, (alert_id,),
                            [AlertRecord.status.set("ACKNOWLEDGED"), AlertRecord.acknowledged_at.set(now),
                             AlertRecord.acknowledged_by.set(by)],
                            AlertRecord.alert_id.exists() & (AlertRecord.status == "OPEN"),
                            Conflict("This alert is acknowledged already.", alert_id=alert_id))
