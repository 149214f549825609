"""Recording a scan: the scan, its points and any change of owner in one transaction."""
from __future__ import annotations

from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import _failed_condition


class PointsAlreadyAwarded(Exception):
    pass


class OwnerMoved(Exception):
    pass


class ScanRepository:
    def __init__(self) -> None:
        bind_records()

    def load(self, scene: str, customer_id: str, points_key: str | None = None):
        """(scene, customer, points already awarded today?) in one BatchGetItem."""
        from chalicelib.db.items import batch_get
        from chalicelib.db.records import CustomerRecord, PointsEntryRecord, SceneRecord

        wanted = {SceneRecord: [{"scene": {"S": scene}}], CustomerRecord: [{"customer_id": {"S": customer_id}}]}
        if points_key:
            wanted[PointsEntryRecord] = [{"customer_id": {"S": customer_id}, "entry_id": {"S": points_key}}]
        found = batch_get(wanted)
        scenes, customers = found.get(SceneRecord, []), found.get(CustomerRecord, [])
        return (scenes[0] if scenes else None), (customers[0] if customers else None), \
            bool(found.get(PointsEntryRecord))

    def store(self, store_id: str):
        from chalicelib.db import items
        from chalicelib.db.records import StoreRecord

        return items.get(StoreRecord, store_id)

    def record(self, scan, points: int, points_key: str | None, bind: dict | None, expected_store: str | None,
               now: float) -> None:
        """bind: {to_store, to_dealer, basis, reason} or None. Raises PointsAlreadyAwarded or
        OwnerMoved (the caller decides again without them)."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CustomerRecord, OwnershipChangeRecord, PointsEntryRecord

        customer_actions, condition = [], CustomerRecord.customer_id.exists()
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(scan)                                                            # put 0
                if points_key:
                    tx.save(PointsEntryRecord(scan.customer_id, points_key, points=points, reason="SCAN", at=now),
                            condition=PointsEntryRecord.entry_id.does_not_exist())       # put 1
                    customer_actions.append(CustomerRecord.points_balance.add(points))
                if bind:
                    tx.save(OwnershipChangeRecord(scan.customer_id, f"{int(now * 1000):015d}#scan#{scan.scan_id}",
                                                  from_store_id=expected_store, to_store_id=bind["to_store"],
                                                  to_dealer_id=bind["to_dealer"], basis=bind["basis"],
                                                  reason=bind["reason"], at=now))
                    customer_actions += [CustomerRecord.owning_store_id.set(bind["to_store"]),
                                         CustomerRecord.owning_dealer_id.set(bind["to_dealer"]),
                                         CustomerRecord.owner_basis.set(bind["basis"])]
                    condition &= (CustomerRecord.owning_store_id.does_not_exist() if expected_store is None
                                  else CustomerRecord.owning_store_id == expected_store)
                if customer_actions:
                    tx.update(CustomerRecord(scan.customer_id), actions=customer_actions, condition=condition)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            puts = 1 + (1 if points_key else 0) + (1 if bind else 0)
            if points_key and _failed_condition(reasons, 1):
                raise PointsAlreadyAwarded() from exc
            if _failed_condition(reasons, puts):
                raise OwnerMoved() from exc
            raise
