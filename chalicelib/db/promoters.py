"""Promoters: applications, decisions and share scenes, each written with the
customer's promoter status in one transaction."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.orders import _failed_condition
from chalicelib.domain.promoters import PENDING, REJECTED, PromoterNotPending
from chalicelib.domain.scenes import SceneTokenTaken


class AlreadyApplied(Exception):
    """An application (pending or approved) exists already."""


class PromoterRepository:
    def __init__(self) -> None:
        bind_records()

    def get(self, customer_id: str):
        from chalicelib.db.records import PromoterRecord

        return items.get(PromoterRecord, customer_id)

    def customer(self, customer_id: str):
        from chalicelib.db.records import CustomerRecord

        return items.get(CustomerRecord, customer_id)

    def apply(self, customer_id: str, brand_id: str, store_id: str, status: str, scene, now: float) -> None:
        """A new application (or a new one after a rejection), approved at once when
        ``scene`` (its share scene) is given. Raises AlreadyApplied or SceneTokenTaken."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CustomerRecord, PromoterRecord
        from chalicelib.db.scenes import scene_record

        record = PromoterRecord(customer_id, brand_id=brand_id, status=status, brand_status=f"{brand_id}#{status}",
                                scene=scene.scene if scene else None, store_id=store_id, created_at=now,
                                decided_at=now if scene else None)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(record, condition=PromoterRecord.customer_id.does_not_exist()
                        | (PromoterRecord.status == REJECTED))                                  # put 0
                if scene:
                    tx.save(scene_record(scene), condition=_scene_absent())                      # put 1
                tx.update(CustomerRecord(customer_id), actions=[CustomerRecord.promoter_status.set(status)],
                          condition=CustomerRecord.customer_id.exists())
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            if _failed_condition(reasons, 0):
                raise AlreadyApplied(customer_id) from exc
            if scene and _failed_condition(reasons, 1):
                raise SceneTokenTaken(scene=scene.scene) from exc
            raise

    def decide(self, customer_id: str, brand_id: str, status: str, scene, store_id: str, now: float) -> None:
        """PENDING -> APPROVED (with its share scene) or REJECTED, once. Raises
        PromoterNotPending or SceneTokenTaken."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CustomerRecord, PromoterRecord
        from chalicelib.db.scenes import scene_record

        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                if scene:
                    tx.save(scene_record(scene), condition=_scene_absent())                      # put 0
                actions = [PromoterRecord.status.set(status), PromoterRecord.brand_status.set(f"{brand_id}#{status}"),
                           PromoterRecord.decided_at.set(now), PromoterRecord.store_id.set(store_id)]
                if scene:
                    actions.append(PromoterRecord.scene.set(scene.scene))
                tx.update(PromoterRecord(customer_id), actions=actions,
                          condition=PromoterRecord.status == PENDING)                           # update 0
                tx.update(CustomerRecord(customer_id), actions=[CustomerRecord.promoter_status.set(status)],
                          condition=CustomerRecord.customer_id.exists())
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            puts = 1 if scene else 0
            if _failed_condition(reasons, puts):
                raise PromoterNotPending(customer_id=customer_id) from exc
            if scene and _failed_condition(reasons, 0):
                raise SceneTokenTaken(scene=scene.scene) from exc
            raise

    def of_brand(self, brand_id: str, status: str, limit: int, start: dict | None):
        """One page of a brand's promoters in one status, oldest application first."""
        from chalicelib.db.records import PromoterRecord

        return items.query_page(PromoterRecord.by_brand_status, f"{brand_id}#{status}", limit, start)

    def friends(self, promoter_id: str, limit: int, start: dict | None):
        """One page of the customers bound under a promoter (ended bindings included)."""
        from chalicelib.db.records import ReferralRecord

        return items.query_page(ReferralRecord, promoter_id, limit, start)


def _scene_absent():
    from chalicelib.db.records import SceneRecord

    return SceneRecord.scene.does_not_exist()
