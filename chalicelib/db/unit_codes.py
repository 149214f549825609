"""Unit codes: batches (table ``unit_code_batches``) and their unit scenes (table
``scenes``, kind ``unit``, sparse index ``by_batch``) <-> the domain's types."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.scenes import UNIT
from chalicelib.domain.unit_codes import COMPLETE, CREATING, UnitCode, UnitCodeBatch
from chalicelib.errors import Conflict


class UnitCodeRepository:
    def start_batch(self, batch: UnitCodeBatch) -> None:
        """The batch, CREATING, before any of its codes (conditional on a new batch_id)."""
        items.create(_batch_record(batch), Conflict("That batch id is taken.", batch_id=batch.batch_id))

    def add_codes(self, codes: list[UnitCode]) -> None:
        """Unconditional puts, 25 per request: the tokens' length is what keeps them
        apart (chalicelib/services/unit_codes.py says why that is enough)."""
        from chalicelib.db.records import SceneRecord

        items.batch_write([SceneRecord(scene=c.scene, kind=UNIT, brand_id=c.brand_id, sku=c.sku,
                                       batch_id=c.batch_id, unit_scan_count=c.scan_count, status=c.status,
                                       created_at=c.created_at) for c in codes])

    def complete_batch(self, batch_id: str, now: float) -> UnitCodeBatch:
        """CREATING -> COMPLETE, once (a second completion is a 409)."""
        from chalicelib.db.records import UnitCodeBatchRecord as R

        record = items.update(R, (batch_id,), [R.status.set(COMPLETE), R.completed_at.set(now)],
                              R.batch_id.exists() & (R.status == CREATING),
                              Conflict("That batch is not being created.", batch_id=batch_id))
        return _batch(record)

    def get_batch(self, batch_id: str) -> UnitCodeBatch | None:
        from chalicelib.db.records import UnitCodeBatchRecord

        record = items.get(UnitCodeBatchRecord, batch_id)
        return _batch(record) if record else None

    def batches_of_sku(self, sku: str, limit: int, start: dict | None):
        """One page of a SKU's batches, newest first."""
        from chalicelib.db.binding import bind_records
        from chalicelib.db.records import UnitCodeBatchRecord

        bind_records()
        results = UnitCodeBatchRecord.by_sku.query(sku, limit=limit, last_evaluated_key=start or None,
                                                   scan_index_forward=False)
        records = list(results)
        return [_batch(r) for r in records], results.last_evaluated_key

    def codes_of_batch(self, batch_id: str, limit: int, start: dict | None):
        """One page of a batch's codes, in token order."""
        from chalicelib.db.records import SceneRecord

        records, last = items.query_page(SceneRecord.by_batch, batch_id, limit, start)
        return [_code(r) for r in records], last

    def get_code(self, scene: str) -> UnitCode | None:
        """The unit code with this token, or None (also when the scene is another kind)."""
        from chalicelib.db.records import SceneRecord

        record = items.get(SceneRecord, scene)
        return _code(record) if record is not None and record.kind == UNIT else None


def _batch_record(batch: UnitCodeBatch):
    from chalicelib.db.records import UnitCodeBatchRecord

    return UnitCodeBatchRecord(batch_id=batch.batch_id, sku=batch.sku, brand_id=batch.brand_id,
                               code_count=batch.count, status=batch.status, created_at=batch.created_at,
                               created_by=batch.created_by, completed_at=batch.completed_at)


def _batch(r) -> UnitCodeBatch:
    return UnitCodeBatch(batch_id=r.batch_id, sku=r.sku, brand_id=r.brand_id, count=int(r.code_count),
                         created_at=float(r.created_at), created_by=r.created_by, status=r.status,
                         completed_at=float(r.completed_at) if r.completed_at is not None else None)


def _code(r) -> UnitCode:
    def number(value):
        return float(value) if value is not None else None

    return UnitCode(scene=r.scene, brand_id=r.brand_id, sku=r.sku, batch_id=r.batch_id,
                    created_at=float(r.created_at), status=r.status, scan_count=int(r.unit_scan_count or 0),
                    first_seen_at=number(r.unit_first_seen_at), first_seen_area=r.unit_first_seen_area,
                    areas=frozenset(r.unit_areas or ()), last_seen_at=number(r.unit_last_seen_at))
