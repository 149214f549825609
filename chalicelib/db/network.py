"""Dealers, stores and staff: records <-> the domain's network objects."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.geo import store_cell
from chalicelib.domain.network import Dealer, StaffMember, Store
from chalicelib.domain.splits import DEFAULT_MAX_RATIO_BPS
from chalicelib.errors import Conflict, NotFound


class NetworkRepository:
    # --- dealers
    def get_dealer(self, dealer_id: str) -> Dealer | None:
        from chalicelib.db.records import DealerRecord

        record = items.get(DealerRecord, dealer_id)
        return _dealer(record) if record else None

    def add_dealer(self, dealer: Dealer) -> None:
        from chalicelib.db.records import DealerRecord

        items.create(DealerRecord(**dealer.to_json()), Conflict("That dealer id is taken."))

    def update_dealer(self, dealer_id: str, changes: dict) -> Dealer:
        from chalicelib.db.records import DealerRecord

        actions = [getattr(DealerRecord, name).set(value) for name, value in changes.items()]
        record = items.update(DealerRecord, (dealer_id,), actions, DealerRecord.dealer_id.exists(),
                              NotFound(f"No dealer {dealer_id}.", dealer_id=dealer_id))
        return _dealer(record)

    def set_brand_access(self, dealer_id: str, expected: str, level: str, changed_by: str, now: float) -> Dealer:
        """The switch and its history entry, together; only from the level the caller saw
        (SharingChanged otherwise: two people flipping it at once each see the other's)."""
        import secrets

        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.binding import transaction_connection
        from chalicelib.db.records import DealerRecord, SharingChangeRecord

        seen = (DealerRecord.brand_access == expected)
        if expected == "NONE":
            seen = seen | DealerRecord.brand_access.does_not_exist()
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(SharingChangeRecord(dealer_id, f"{int(now * 1000):015d}#{secrets.token_hex(4)}",
                                            from_access=expected, to_access=level, changed_by=changed_by, at=now))
                tx.update(DealerRecord(dealer_id), actions=[DealerRecord.brand_access.set(level)],
                          condition=DealerRecord.dealer_id.exists() & seen)
        except TransactWriteError as exc:
            if items.is_condition_failure(exc):
                raise Conflict("The switch changed meanwhile; reload and try again.") from exc
            raise
        return self.get_dealer(dealer_id)

    def sharing_history(self, dealer_id: str) -> list:
        from chalicelib.db.binding import bind_records
        from chalicelib.db.records import SharingChangeRecord

        bind_records()
        return list(SharingChangeRecord.query(dealer_id, consistent_read=True))

    def dealers_of_brand(self, brand_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import DealerRecord

        records, last = items.query_page(DealerRecord.by_brand, brand_id, limit, start)
        return [_dealer(r) for r in records], last

    # --- stores
    def get_store(self, store_id: str) -> Store | None:
        from chalicelib.db.records import StoreRecord

        record = items.get(StoreRecord, store_id)
        return _store(record) if record else None

    def add_store(self, store: Store) -> None:
        from chalicelib.db.records import StoreRecord

        data = store.to_json()
        items.create(StoreRecord(**{**data, "services": set(data["services"]) or None},
                                 geo_cell=store_cell(store.lat, store.lng)),
                     Conflict("That store id is taken."))

    def update_store(self, store_id: str, changes: dict) -> Store:
        from chalicelib.db.records import StoreRecord

        changes = dict(changes)
        if "services" in changes:
            changes["services"] = set(changes["services"]) or None
        if "lat" in changes or "lng" in changes:
            changes["geo_cell"] = store_cell(changes["lat"], changes["lng"])
        actions = [getattr(StoreRecord, name).set(value) if value is not None
                   else getattr(StoreRecord, name).remove() for name, value in changes.items()]
        actions.append(StoreRecord.version.add(1))
        record = items.update(StoreRecord, (store_id,), actions, StoreRecord.store_id.exists(),
                              NotFound(f"No store {store_id}.", store_id=store_id))
        return _store(record)

    def stores_of_dealer(self, dealer_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import StoreRecord

        records, last = items.query_page(StoreRecord.by_dealer, dealer_id, limit, start)
        return [_store(r) for r in records], last

    def stores_of_brand(self, brand_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import StoreRecord

        records, last = items.query_page(StoreRecord.by_brand, brand_id, limit, start)
        return [_store(r) for r in records], last

    # --- staff
    def get_staff(self, staff_id: str) -> StaffMember | None:
        from chalicelib.db.records import StaffRecord

        record = items.get(StaffRecord, staff_id)
        return _staff(record) if record else None

    def add_staff(self, member: StaffMember) -> None:
        from chalicelib.db.records import StaffRecord

        items.create(StaffRecord(**member.to_json()), Conflict("That staff id is taken."))

    def update_staff(self, staff_id: str, changes: dict) -> StaffMember:
        from chalicelib.db.records import StaffRecord

        actions = [getattr(StaffRecord, name).set(value) for name, value in changes.items()]
        record = items.update(StaffRecord, (staff_id,), actions, StaffRecord.staff_id.exists(),
                              NotFound(f"No staff {staff_id}.", staff_id=staff_id))
        return _staff(record)

    def staff_of_store(self, store_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import StaffRecord

        records, last = items.query_page(StaffRecord.by_store, store_id, limit, start)
        return [_staff(r) for r in records], last


def _dealer(r) -> Dealer:
    return Dealer(dealer_id=r.dealer_id, brand_id=r.brand_id, name=r.name, sub_mchid=r.sub_mchid,
                  status=r.status, created_at=float(r.created_at), brand_access=r.brand_access or "NONE",
                  max_ratio_bps=DEFAULT_MAX_RATIO_BPS if r.max_ratio_bps is None else int(r.max_ratio_bps))


def _store(r) -> Store:
    return Store(store_id=r.store_id, dealer_id=r.dealer_id, brand_id=r.brand_id, name=r.name,
                 city=r.city, lat=float(r.lat), lng=float(r.lng), address=r.address or "",
                 services=sorted(r.services or ()), opening_hours=r.opening_hours or {},
                 status=r.status, created_at=float(r.created_at), sub_mchid=r.sub_mchid)


def _staff(r) -> StaffMember:
    return StaffMember(staff_id=r.staff_id, store_id=r.store_id, dealer_id=r.dealer_id, name=r.name,
                       role=r.role, status=r.status, created_at=float(r.created_at))
