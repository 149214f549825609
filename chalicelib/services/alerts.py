"""Alerts: what the system cannot finish by itself is written down for a person (and
logged), once per cause, and shown to the brand, the order's dealer and its store."""
from __future__ import annotations

from chalicelib.domain.tenancy import BRAND, DEALER
from chalicelib.domain.time import rfc3339
from chalicelib.errors import NotFound
from chalicelib.log import get_logger


def alert_record(kind: str, subject: str, message: str, *, order=None, detail: dict | None = None, network,
                 now: float, brand_id: str | None = None):
    """The alert about an order, scoped to its brand, dealer and store (id ``<kind>-<subject>``);
    an alert about no order (a bill) is the brand's ``brand_id``."""
    from chalicelib.db.records import AlertRecord

    dealer = network.get_dealer(order.dealer_id) if order is not None else None
    return AlertRecord(f"{kind}-{subject}", kind=kind, order_id=order.order_id if order else None,
                       brand_id=dealer.brand_id if dealer else brand_id or "unknown",
                       dealer_id=order.dealer_id if order else None, store_id=order.store_id if order else None,
                       message=message, detail=detail or {}, created_at=now)


def log_alert(record, new: bool = True) -> None:
    get_logger("storelink.alerts").error(record.message, extra={"fields": {
        "alert": record.kind, "subject": record.alert_id[len(record.kind) + 1:], "order_id": record.order_id,
        "new": new, **(record.detail or {})}})


def raise_alert(kind: str, subject: str, message: str, *, order=None, detail: dict | None = None, alerts, network,
                now: float, brand_id: str | None = None) -> bool:
    """Record (once per ``kind`` and ``subject``, e.g. a refund id) and log an alert about
    an order; True when it is new."""
    record = alert_record(kind, subject, message, order=order, detail=detail, network=network, now=now,
                          brand_id=brand_id)
    new = alerts.raise_once(record)
    log_alert(record, new)
    return new


def alert_view(record) -> dict:
    return {"alert_id": record.alert_id, "kind": record.kind, "order_id": record.order_id,
            "dealer_id": record.dealer_id, "store_id": record.store_id, "message": record.message,
            "detail": record.detail or {}, "status": record.status, "created_at": rfc3339(record.created_at),
            "acknowledged_at": rfc3339(record.acknowledged_at) if record.acknowledged_at is not None else None}


def list_alerts(principal, limit: int, start, *, alerts):
    records, last = alerts.page(principal.role, principal.tenant_id, limit, start)
    return [alert_view(r) for r in records], last


def _in_reach(principal, record) -> bool:
    if principal.role == BRAND:
        return record.brand_id == principal.tenant_id
    if principal.role == DEALER:
        return record.dealer_id == principal.tenant_id
    return record.store_id == principal.tenant_id


def acknowledge(principal, alert_id: str, *, alerts, now: float) -> dict:
    record = alerts.get(alert_id)
    if record is None or not _in_reach(principal, record):
        raise NotFound(f"No alert {alert_id}.", alert_id=alert_id)
    return alert_view(alerts.acknowledge(alert_id, f"{principal.role}:{principal.tenant_id}", now))
