"""Split plans, commissions and the money ledger: each change written in one
transaction with its ledger entries and the promoters' running totals."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.db.binding import bind_records, transaction_connection
from chalicelib.db.ledger import ledger_record
from chalicelib.db.orders import _failed_condition

COMMISSION_SHARDS = 10


class AlreadyPlanned(Exception):
    """This order has its split plan already (a redelivered PLAN_SPLIT)."""


def commission_shard(order_id: str) -> str:
    import zlib

    return f"C{zlib.crc32(order_id.encode()) % COMMISSION_SHARDS}"


class SplitRepository:
    def __init__(self) -> None:
        bind_records()

    def record_plan(self, plan_record, entries: list, commissions: list, now: float) -> None:
        """The plan (once per order), its planned ledger entries and the PENDING
        commissions, with each promoter's pending total, all or nothing."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import PromoterRecord, SplitPlanRecord

        pending: dict[str, int] = {}
        for commission in commissions:
            pending[commission.promoter_id] = pending.get(commission.promoter_id, 0) + int(commission.amount_fen)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.save(plan_record, condition=SplitPlanRecord.order_id.does_not_exist())          # put 0
                for n, entry in enumerate(entries):
                    tx.save(ledger_record(plan_record.order_id, f"plan#{entry.cause}#{n}", entry, now,
                                         dealer_id=plan_record.dealer_id))
                for commission in commissions:
                    tx.save(commission)
                for promoter_id, amount in sorted(pending.items()):
                    tx.update(PromoterRecord(promoter_id), actions=[PromoterRecord.pending_fen.add(amount)],
                              condition=PromoterRecord.customer_id.exists())
        except TransactWriteError as exc:
            if _failed_condition(list(exc.cancellation_reasons or []), 0):
                raise AlreadyPlanned(plan_record.order_id) from exc
            raise

    def plan(self, order_id: str):
        from chalicelib.db.records import SplitPlanRecord

        return items.get(SplitPlanRecord, order_id)

    def ledger(self, order_id: str) -> list:
        from chalicelib.db.records import LedgerEntryRecord

        return list(LedgerEntryRecord.query(order_id, consistent_read=True))

    def commissions_of_order(self, order_id: str) -> list:
        from chalicelib.db.records import CommissionRecord

        return list(CommissionRecord.by_order.query(order_id))

    def commission(self, promoter_id: str, commission_id: str):
        from chalicelib.db.records import CommissionRecord

        return items.get(CommissionRecord, promoter_id, commission_id)

    def commissions_of_promoter(self, promoter_id: str, limit: int) -> list:
        """The newest ``limit`` commissions of one promoter."""
        from chalicelib.db.records import CommissionRecord

        # Commission ids start with the payment's time in digits; clawbacks ("clawback#...") sort after them.
        return list(CommissionRecord.query(promoter_id, CommissionRecord.commission_id < "a", scan_index_forward=False,
                                           limit=limit))

    def clawbacks_of_promoter(self, promoter_id: str, limit: int) -> list:
        """The newest ``limit`` clawbacks of one promoter (M10)."""
        from chalicelib.db.records import CommissionRecord

        return list(CommissionRecord.query(promoter_id, CommissionRecord.commission_id.startswith("clawback#"),
                                           scan_index_forward=False, limit=limit))

    def promoter(self, customer_id: str):
        from chalicelib.db.records import PromoterRecord

        return items.get(PromoterRecord, customer_id)

    def bring_forward(self, commission, due_at: float) -> bool:
        """An earlier earning date (the after-sale window closed first); False if it is
        no longer pending or already due sooner."""
        from chalicelib.db.records import CommissionRecord

        try:
            items.update(CommissionRecord, (commission.promoter_id, commission.commission_id),
                         [CommissionRecord.earn_due_at.set(due_at)],
                         (CommissionRecord.status == "PENDING") & (CommissionRecord.earn_due_at > due_at),
                         _Unchanged())
        except _Unchanged:
            return False
        return True

    def due_commissions(self, now: float, limit: int = 100) -> list:
        """PENDING commissions whose earning date has come (one Query per shard)."""
        from chalicelib.db.records import CommissionRecord

        bind_records()
        found = []
        for shard in range(COMMISSION_SHARDS):
            found += list(CommissionRecord.pending_by_due.query(f"C{shard}", CommissionRecord.earn_due_at <= now,
                                                                limit=limit))
        return found

    def due_clawbacks(self, now: float, limit: int = 100) -> list:
        """OWED clawbacks whose 90 days are up (one Query per W shard of the same index)."""
        from chalicelib.db.records import CommissionRecord

        bind_records()
        found = []
        for shard in range(COMMISSION_SHARDS):
            found += list(CommissionRecord.pending_by_due.query(f"W{shard}", CommissionRecord.earn_due_at <= now,
                                                                limit=limit))
        return found

    def write_off(self, clawback, now: float) -> bool:
        """OWED -> WRITTEN_OFF with the promoter's owed total down; False if it moved first."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CommissionRecord, PromoterRecord

        owed = int(clawback.owed_fen or 0)
        if owed == 0:        # all of it is being kept back from a final split under way
            return False
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(CommissionRecord(clawback.promoter_id, clawback.commission_id),
                          actions=[CommissionRecord.status.set("WRITTEN_OFF"), CommissionRecord.pending_shard.remove()],
                          condition=(CommissionRecord.status == "OWED") & (CommissionRecord.owed_fen == owed))
                tx.update(PromoterRecord(clawback.promoter_id), actions=[PromoterRecord.clawback_owed_fen.add(-owed)])
        except TransactWriteError as exc:
            if _failed_condition(list(exc.cancellation_reasons or []), 0):
                return False
            raise
        return True

    def earn(self, commission, now: float) -> bool:
        """PENDING -> EARNED with the promoter's totals moved; False if it moved first."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.records import CommissionRecord, PromoterRecord

        amount = int(commission.amount_fen)
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(CommissionRecord(commission.promoter_id, commission.commission_id),
                          actions=[CommissionRecord.status.set("EARNED"), CommissionRecord.earned_at.set(now),
                                   CommissionRecord.pending_shard.remove()],
                          condition=CommissionRecord.status == "PENDING")
                tx.update(PromoterRecord(commission.promoter_id),
                          actions=[PromoterRecord.pending_fen.add(-amount), PromoterRecord.earned_fen.add(amount)])
        except TransactWriteError as exc:
            if _failed_condition(list(exc.cancellation_reasons or []), 0):
                return False
            raise
        return True


class _Unchanged(Exception):
    pass
