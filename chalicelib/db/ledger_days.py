"""Which orders' ledgers moved on one Beijing day: the ``by_day`` index of
``ledger_entries`` (every entry carries ``day_shard`` = ``<YYYY-MM-DD>#<0-9>``, see
``chalicelib/db/ledger.py``), read by the nightly ledger check."""
from __future__ import annotations

from chalicelib.db.binding import bind_records
from chalicelib.db.ledger import LEDGER_DAY_SHARDS


class LedgerDayRepository:
    def __init__(self) -> None:
        bind_records()

    def orders_of_day(self, day) -> list[str]:
        """The distinct order ids with at least one ledger entry on ``day`` (a date), in
        one Query per shard (keys only; the index returns one row per entry)."""
        from chalicelib.db.records import LedgerEntryRecord

        found: dict[str, None] = {}
        for shard in range(LEDGER_DAY_SHARDS):
            for row in LedgerEntryRecord.by_day.query(f"{day.isoformat()}#{shard}", attributes_to_get=["order_id"]):
                found.setdefault(row.order_id, None)
        return list(found)
