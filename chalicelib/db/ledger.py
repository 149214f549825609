"""The money ledger's records: domain LedgerEntry objects as items, put inside the
transaction of the state change that causes them (the ledger is append-only)."""
from __future__ import annotations

LEDGER_DAY_SHARDS = 10


def ledger_day_shard(order_id: str, at: float) -> str:
    """``<Beijing day>#<n>``: the nightly check reads one day's orders in ten Queries."""
    import zlib

    from chalicelib.domain.time import beijing_date

    return f"{beijing_date(at).isoformat()}#{zlib.crc32(order_id.encode()) % LEDGER_DAY_SHARDS}"


def ledger_record(order_id: str, key: str, entry, at: float, dealer_id: str | None = None):
    """A LedgerEntryRecord from a domain LedgerEntry; ``key`` is unique per entry of one
    cause (a replayed cause puts the same keys: nothing new). A RECEIVABLE memo entry
    names its ``dealer_id`` (it goes on that dealer's statement)."""
    from chalicelib.db.records import LedgerEntryRecord
    from chalicelib.domain.splits import RECEIVABLE

    if entry.cause == RECEIVABLE and not dealer_id:
        raise ValueError("a receivable entry names the dealer whose statement it goes on")
    return LedgerEntryRecord(order_id, key, debit=entry.debit, credit=entry.credit, amount_fen=int(entry.amount_fen),
                             cause=entry.cause, at=at, receivable_dealer=dealer_id if entry.cause == RECEIVABLE else None,
                             day_shard=ledger_day_shard(order_id, at))
