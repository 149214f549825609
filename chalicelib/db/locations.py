"""A customer's coarse location on the customer's item, and the route-traffic queue
entry that goes with it (``awaiting_route``, sparse, only while nobody owns them).

``location_changes`` gives the actions and condition of one location write, so the
scan's own transaction (chalicelib/db/scans.py) writes exactly what
``PUT /v1/me/location`` writes: newest wins, and a customer is queued for routing only
on condition that nobody owns them at that moment.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.db import items
from chalicelib.db.binding import bind_records
from chalicelib.domain.locations import CELL, CITY, CoarseLocation, route_shard


class _NotApplied(Exception):
    pass


@dataclass(frozen=True)
class LocatedCustomer:
    """What a location write is decided against."""
    location: CoarseLocation | None
    owning_store_id: str | None
    awaiting_route: bool


def location_changes(customer_id: str, location: CoarseLocation, *, queue_for_routing: bool):
    """(actions, condition) that store ``location`` unless a newer one is stored, and —
    when ``queue_for_routing`` — queue the customer for route-traffic, unless an owner
    appeared meanwhile."""
    from chalicelib.db.records import CustomerRecord as C

    at = location.located_at
    actions = [C.location_kind.set(location.kind), C.location_source.set(location.source), C.located_at.set(at)]
    if location.kind == CELL:
        actions += [C.location_cell.set(location.cell), C.location_lat.set(location.lat),
                    C.location_lng.set(location.lng), C.location_city.remove()]
    else:
        actions += [C.location_city.set(location.city), C.location_cell.remove(), C.location_lat.remove(),
                    C.location_lng.remove()]
    condition = C.located_at.does_not_exist() | (C.located_at < at)
    if queue_for_routing:
        # Due at once: the next run looks at them (a new location also ends a deferral).
        actions += [C.awaiting_route.set(route_shard(customer_id)), C.route_due_at.set(at)]
        condition &= C.owning_store_id.does_not_exist()
    return actions, condition


def stored_location(record) -> CoarseLocation | None:
    """The location on a CustomerRecord, if any."""
    if record is None or not record.location_kind or record.located_at is None:
        return None
    if record.location_kind == CITY:
        return CoarseLocation(CITY, record.location_source or "", float(record.located_at), city=record.location_city)
    return CoarseLocation(CELL, record.location_source or "", float(record.located_at), cell=record.location_cell,
                          lat=float(record.location_lat), lng=float(record.location_lng))


class LocationRepository:
    def __init__(self) -> None:
        bind_records()

    def save(self, customer_id: str, location: CoarseLocation, *, queue_for_routing: bool) -> bool:
        """One conditional UpdateItem; False when a newer location is stored, or (when
        queueing) the customer has an owner by now, or is gone: read and decide again."""
        from chalicelib.db.records import CustomerRecord

        actions, condition = location_changes(customer_id, location, queue_for_routing=queue_for_routing)
        try:
            items.update(CustomerRecord, (customer_id,), actions, CustomerRecord.customer_id.exists() & condition,
                         _NotApplied())
        except _NotApplied:
            return False
        return True

    def current(self, customer_id: str) -> LocatedCustomer | None:
        from chalicelib.db.records import CustomerRecord

        record = items.get(CustomerRecord, customer_id)
        if record is None:
            return None
        return LocatedCustomer(stored_location(record), record.owning_store_id, bool(record.awaiting_route))

    def known_city(self, city: str) -> bool:
        """Whether any store is in ``city`` (as the stores spell it): one Query, one item."""
        from chalicelib.db.records import StoreRecord

        return any(True for _ in StoreRecord.by_city.query(city, limit=1))
