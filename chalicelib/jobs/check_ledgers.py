"""The check-ledgers job (daily at 02:30 Beijing): a thin entry point. It checks the
Beijing day before, or the day an operator names (``./storelink job check-ledgers
--date YYYY-MM-DD`` puts ``{"date": ...}`` in the event's detail)."""
from __future__ import annotations


def run(requested_date: str | None = None) -> dict:
    from chalicelib.db.ledger_days import LedgerDayRepository
    from chalicelib.services import wiring
    from chalicelib.services.ledger_check import check_ledgers, day_to_check

    now = wiring.now()
    return check_ledgers(day_to_check(now, requested_date), ledger_days=LedgerDayRepository(),
                         splits=wiring.splits(), orders=wiring.orders(), alerts=wiring.alerts(),
                         network=wiring.network(), now=now)
