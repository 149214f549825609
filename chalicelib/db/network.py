"""Dealers, stores and staff: records <-> the domain's network objects."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.network import ACTIVE, Dealer, StaffMember, Store
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
        """The store and its geo index entries (and density counts), in one transaction."""
        from chalicelib.db.records import StoreRecord

        record = _store_record(store, geo_keys=[])
        self._write_with_index(store, [], lambda tx, keys: tx.save(
            _with_geo_keys(record, keys), condition=StoreRecord.store_id.does_not_exist()),
            Conflict("That store id is taken."))

    def update_store(self, store_id: str, changes: dict) -> Store:
        """A change of place, services, hours, name, score or status rewrites the store's
        geo index entries in the same transaction, conditional on the version read (a
        concurrent change makes this one re-read and try again); other changes are one
        conditional update."""
        from chalicelib.db.records import StoreRecord

        changes = dict(changes)
        if not changes.keys() & _INDEXED:
            return _store(_update_plain(store_id, changes))
        for _attempt in range(_INDEX_ATTEMPTS):
            record = items.get(StoreRecord, store_id)
            if record is None:
                raise NotFound(f"No store {store_id}.", store_id=store_id)
            seen = int(record.version or 0)
            store = _store(record)
            for name, value in changes.items():
                setattr(store, name, value)
            unchanged = StoreRecord.version == seen
            if seen == 0:
                unchanged = unchanged | StoreRecord.version.does_not_exist()

            def write_store(tx, keys, store_id=store_id, seen=seen, unchanged=unchanged):
                actions = _set_actions(changes) + [
                    StoreRecord.geo_keys.set(keys) if keys else StoreRecord.geo_keys.remove(),
                    StoreRecord.version.set(seen + 1)]
                tx.update(StoreRecord(store_id), actions=actions, condition=unchanged)
            try:
                self._write_with_index(store, list(record.geo_keys or ()), write_store, None)
            except _LostRace:
                continue
            return store
        raise Conflict("The store changed meanwhile; reload and try again.", store_id=store_id)

    def reindex_store(self, store_id: str) -> None:
        """Write the store's geo index entries as its record says (demo data seeded before
        the index existed); idempotent: nothing is counted twice."""
        self.update_store(store_id, {"status": self.get_store(store_id).status})

    @staticmethod
    def _write_with_index(store: Store, old_keys: list[str], write_store, conflict) -> None:
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.binding import transaction_connection
        from chalicelib.db.records import StoreGeoRecord
        from chalicelib.db.store_geo import density_key
        from chalicelib.domain.store_geo import index_change, index_entries

        entries = index_entries(store.store_id, store.lat, store.lng, store.services, store.status == ACTIVE)
        change = index_change(old_keys, entries)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                write_store(tx, [entry.key for entry in entries])
                for entry in change.delete:
                    tx.delete(StoreGeoRecord(entry.partition, entry.sort))
                for entry in change.put:
                    tx.save(StoreGeoRecord(
                        entry.partition, entry.sort, store_id=store.store_id, dealer_id=store.dealer_id,
                        name=store.name, lat=store.lat, lng=store.lng, services=set(store.services) or None,
                        opening_hours=store.opening_hours or None, service_score=store.service_score or None))
                for service, cell, delta in change.counts:
                    tx.update(StoreGeoRecord(density_key(service), cell), actions=[StoreGeoRecord.stores.add(delta)])
        except TransactWriteError as exc:
            if items.is_condition_failure(exc):
                if conflict is not None:
                    raise conflict from exc
                raise _LostRace() from exc
            if _is_transaction_conflict(exc):
                raise _LostRace() from exc
            raise

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
                 status=r.status, created_at=float(r.created_at), sub_mchid=r.sub_mchid,
                 service_score=int(r.service_score or 0))


# What the geo index entries carry: changing any of these rewrites them
_INDEXED = {"lat", "lng", "services", "opening_hours", "status", "name", "service_score", "dealer_id"}
_INDEX_ATTEMPTS = 5


class _LostRace(Exception):
    """Another writer changed the store between our read and our transaction."""


def _is_transaction_conflict(exc) -> bool:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "TransactionConflict" for r in reasons)


def _store_record(store: Store, geo_keys: list[str]):
    from chalicelib.db.records import StoreRecord

    data = store.to_json()
    data["services"] = set(data["services"]) or None
    data["service_score"] = data["service_score"] or None
    return StoreRecord(**data, geo_keys=geo_keys, version=0)


def _with_geo_keys(record, keys: list[str]):
    record.geo_keys = keys or None
    return record


def _set_actions(changes: dict) -> list:
    from chalicelib.db.records import StoreRecord

    stored = {**changes}
    if "services" in stored:
        stored["services"] = set(stored["services"]) or None
    if "service_score" in stored:
        stored["service_score"] = stored["service_score"] or None
    return [getattr(StoreRecord, name).set(value) if value is not None
            else getattr(StoreRecord, name).remove() for name, value in stored.items()]


def _update_plain(store_id: str, changes: dict):
    from chalicelib.db.records import StoreRecord

    actions = _set_actions(changes) + [StoreRecord.version.add(1)]
    return items.update(StoreRecord, (store_id,), actions, StoreRecord.store_id.exists(),
                        NotFound(f"No store {store_id}.", store_id=store_id))


def _staff(r) -> StaffMember:
    return StaffMember(staff_id=r.staff_id, store_id=r.store_id, dealer_id=r.dealer_id, name=r.name,
                       role=r.role, status=r.status, created_at=float(r.created_at))
