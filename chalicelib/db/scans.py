"""Recording a scan: the scan, its points, any change of owner or promoter and the
funnel events, in one transaction."""
from __future__ import annotations

from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import _failed_condition


class PointsAlreadyAwarded(Exception):
    pass


class CustomerMoved(Exception):
    """The customer's owner or promoter is not the one the decision was made against."""


class UnitCountMoved(Exception):
    """A unit code was scanned by someone else between our read and our write."""


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

    def promoter_upline(self, promoter_id: str) -> list[str]:
        """The promoter's own chain (nearest first), from their customer item."""
        from chalicelib.db import items
        from chalicelib.db.records import CustomerRecord

        promoter = items.get(CustomerRecord, promoter_id)
        return list(promoter.promoter_chain or []) if promoter is not None else []

    def record(self, write) -> None:
        """``write``: a services.scans.ScanWrite. Raises PointsAlreadyAwarded or
        CustomerMoved (the caller decides again without them)."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.outbox import new_outbox_item
        from chalicelib.db.records import (
            CustomerRecord,
            OwnershipChangeRecord,
            PointsEntryRecord,
            PromoterRecord,
            ReferralRecord,
            SceneRecord,
        )

        customer_id, now, scan = write.customer_id, write.now, write.scan
        actions, condition = [CustomerRecord.last_scan_at.set(now)], CustomerRecord.customer_id.exists()
        if write.last_scan_store:
            actions.append(CustomerRecord.last_scan_store_id.set(write.last_scan_store))
        puts = 0
        try:
            # PynamoDB sends puts first, then updates in the order given: the customer's
            # update is therefore at index `puts` of the cancellation reasons.
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(scan)
                puts += 1
                if write.points:
                    key, points = write.points
                    tx.save(PointsEntryRecord(customer_id, key, points=points, reason="SCAN", at=now),
                            condition=PointsEntryRecord.entry_id.does_not_exist())     # index 1
                    puts += 1
                    actions.append(CustomerRecord.points_balance.add(points))
                owner = write.owner
                if owner:
                    tx.save(OwnershipChangeRecord(customer_id, f"{int(now * 1000):015d}#scan#{scan.scan_id}",
                                                  from_store_id=owner["expected_store"],
                                                  to_store_id=owner["to_store"], to_dealer_id=owner["to_dealer"],
                                                  staff_id=owner.get("staff_id"), basis=owner["basis"],
                                                  reason=owner["reason"], at=now))
                    puts += 1
                    actions += [CustomerRecord.owning_store_id.set(owner["to_store"]),
                                CustomerRecord.owning_dealer_id.set(owner["to_dealer"]),
                                CustomerRecord.owner_basis.set(owner["basis"]),
                                CustomerRecord.owned_since.set(now),
                                # an owner ends the customer's wait for routing (route-traffic)
                                CustomerRecord.awaiting_route.remove(), CustomerRecord.route_due_at.remove()]
                    condition &= (CustomerRecord.owning_store_id.does_not_exist() if owner["expected_store"] is None
                                  else CustomerRecord.owning_store_id == owner["expected_store"])
                if write.location is not None:
                    # Newest wins, and a customer nobody owns joins the routing queue: both
                    # conditions fail as CustomerMoved, and the scan is decided again.
                    from chalicelib.db.locations import location_changes

                    located, newer = location_changes(customer_id, write.location,
                                                      queue_for_routing=write.queue_for_routing)
                    actions += located
                    condition &= newer
                promoter = write.promoter
                if promoter:
                    tx.save(ReferralRecord(promoter["promoter_id"], customer_id, chain=promoter["chain"],
                                           scene=promoter["scene"], rule=promoter["rule"], bound_at=now))
                    puts += 1
                    actions += [CustomerRecord.promoter_id.set(promoter["promoter_id"]),
                                CustomerRecord.promoter_chain.set(promoter["chain"]),
                                CustomerRecord.promoter_bound_at.set(now)]
                    condition &= (CustomerRecord.promoter_id.does_not_exist()
                                  if promoter["expected_promoter"] is None
                                  else CustomerRecord.promoter_id == promoter["expected_promoter"])
                for kind, payload in write.events:
                    tx.save(new_outbox_item(kind, payload, now))
                    puts += 1
                tx.update(CustomerRecord(customer_id), actions=actions, condition=condition)     # update 0
                unit = write.unit
                if unit:
                    # The count is conditional on what we read, so each scan reports its own number.
                    unit_actions = [SceneRecord.unit_scan_count.set(unit["expected_count"] + 1),
                                    SceneRecord.unit_last_seen_at.set(now)]
                    if unit["expected_count"] == 0:
                        unit_actions.append(SceneRecord.unit_first_seen_at.set(now))
                        if unit["area"]:
                            unit_actions.append(SceneRecord.unit_first_seen_area.set(unit["area"]))
                    if unit["area"]:
                        unit_actions.append(SceneRecord.unit_areas.add({unit["area"]}))
                    expected = (SceneRecord.unit_scan_count == unit["expected_count"])
                    if unit["expected_count"] == 0:
                        expected = expected | SceneRecord.unit_scan_count.does_not_exist()
                    tx.update(SceneRecord(scan.scene), actions=unit_actions, condition=expected)   # update 1
                if promoter and promoter["expected_promoter"]:
                    # LAST_TOUCH: the previous promoter's referral ends (kept as history)
                    tx.update(ReferralRecord(promoter["expected_promoter"], customer_id),
                              actions=[ReferralRecord.ended_at.set(now)])
                if promoter:
                    # Each upline member counts the customer at their level (for /v1/me/promoter).
                    moves: dict[tuple[str, int], int] = {}
                    for level, upline in enumerate(promoter.get("previous_chain") or (), start=1):
                        moves[(upline, level)] = moves.get((upline, level), 0) - 1
                    for level, upline in enumerate(promoter["chain"], start=1):
                        moves[(upline, level)] = moves.get((upline, level), 0) + 1
                    by_promoter: dict[str, list] = {}
                    for (upline, level), delta in sorted(moves.items()):
                        if delta:
                            by_promoter.setdefault(upline, []).append(
                                getattr(PromoterRecord, f"downline_{level}").add(delta))
                    for upline, counts in by_promoter.items():
                        tx.update(PromoterRecord(upline), actions=counts)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            if write.points and _failed_condition(reasons, 1):
                raise PointsAlreadyAwarded() from exc
            if _failed_condition(reasons, puts):
                raise CustomerMoved() from exc
            if write.unit and _failed_condition(reasons, puts + 1):
                raise UnitCountMoved() from exc
            raise
