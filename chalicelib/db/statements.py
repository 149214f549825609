"""Statements: a dealer's receivable memo entries (the ledger's sparse index
``receivables_by_dealer``) and the settlements the brand recorded (``statement_settlements``)."""
from __future__ import annotations

from collections.abc import Iterator

from chalicelib.db import items
from chalicelib.db.binding import bind_records
from chalicelib.domain.statements import Movement, Settlement


class StatementRepository:
    def receivables(self, dealer_id: str, before: float, since: float | None = None) -> Iterator[Movement]:
        """The dealer's RECEIVABLE entries with ``since ≤ at < before`` (all before ``before``
        when ``since`` is None: the dealer's whole history, for an opening balance), in time
        order, every page of one Query on the index (eventually consistent)."""
        from chalicelib.db.records import LedgerEntryRecord

        bind_records()
        if since is None:
            condition = LedgerEntryRecord.at < before
        else:
            condition = LedgerEntryRecord.at.between(since, before)   # inclusive: ``at == before`` dropped below
        for record in LedgerEntryRecord.receivables_by_dealer.query(dealer_id, range_key_condition=condition):
            if record.at < before:
                yield Movement(record.order_id, record.entry_id, record.debit, record.credit,
                               int(record.amount_fen), float(record.at))   # ``at``: a timestamp, not money

    def settlements(self, dealer_id: str) -> list[Settlement]:
        """Every settlement recorded for the dealer (a few a month: one partition, read whole)."""
        from chalicelib.db.records import StatementSettlementRecord

        bind_records()
        return [_settlement(r) for r in StatementSettlementRecord.query(dealer_id, consistent_read=True)]

    def get_settlement(self, dealer_id: str, reference: str) -> Settlement | None:
        from chalicelib.db.records import StatementSettlementRecord

        record = items.get(StatementSettlementRecord, dealer_id, reference)
        return _settlement(record) if record else None

    def add_settlement(self, settlement: Settlement) -> Settlement | None:
        """Put the settlement unless its reference is recorded for the dealer already: None
        when it is new, else the one stored (for the caller to compare)."""
        from chalicelib.db.records import StatementSettlementRecord
        from chalicelib.errors import Conflict

        record = StatementSettlementRecord(settlement.dealer_id, settlement.reference, month=settlement.month,
                                           amount_fen=settlement.amount_fen, direction=settlement.direction,
                                           note=settlement.note, recorded_by=settlement.recorded_by,
                                           recorded_at=settlement.recorded_at)
        try:
            items.create(record, Conflict("recorded already"))
        except Conflict:
            stored = self.get_settlement(settlement.dealer_id, settlement.reference)
            if stored is None:   # cannot happen: settlements are never deleted
                raise
            return stored
        return None


def _settlement(record) -> Settlement:
    return Settlement(dealer_id=record.dealer_id, month=record.month, reference=record.reference,
                      amount_fen=int(record.amount_fen), direction=record.direction, note=record.note,
                      recorded_at=float(record.recorded_at), recorded_by=record.recorded_by)
