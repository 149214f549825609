"""The money ledger's records: domain LedgerEntry objects as items, put inside the
transaction of the state change that causes them (the ledger is append-only)."""
from __future__ import annotations


def ledger_record(order_id: str, key: str, entry, at: float):
    """A LedgerEntryRecord from a domain LedgerEntry; ``key`` is unique per entry of one
    cause (a replayed cause puts the same keys: nothing new)."""
    from chalicelib.db.records import LedgerEntryRecord

    return LedgerEntryRecord(order_id, key, debit=entry.debit, credit=entry.credit, amount_fen=int(entry.amount_fen),
                             cause=entry.cause, at=at)
