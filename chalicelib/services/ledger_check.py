"""The nightly ledger check (M10): every order whose ledger moved on one Beijing day
is read whole and must still account for every fen (``check_invariant`` of M8, with
``paid`` = what its PAYMENT entries took from the customer). An order that does not
balance is an alert ``LEDGER_OUT_OF_BALANCE`` (once per order; the check is read-only
and may run again for the same day). M13's reconciliation will take this in later.

Orders are found through the ``by_day`` index, so a refund, a split or a fee booked
days after the payment puts the order on that later day's check as well.
"""
from __future__ import annotations

from datetime import date, timedelta

from chalicelib.domain import splits as rules
from chalicelib.domain.time import beijing_date
from chalicelib.log import get_logger

ALERT_KIND = "LEDGER_OUT_OF_BALANCE"


def day_to_check(now: float, requested: str | None = None) -> date:
    """The given ``YYYY-MM-DD``, else the Beijing day before ``now`` (the job runs at
    02:30 Beijing, when yesterday's writes are in)."""
    if requested:
        try:
            return date.fromisoformat(requested)
        except ValueError as exc:
            raise ValueError(f"date {requested!r} is not YYYY-MM-DD") from exc
    return beijing_date(now) - timedelta(days=1)


def order_problem(order_id: str, records: list) -> dict | None:
    """None when the order's ledger balances; else what is off (for the alert)."""
    try:
        entries = [rules.LedgerEntry(order_id, r.debit, r.credit, int(r.amount_fen), r.cause) for r in records]
    except ValueError as exc:   # an entry the ledger could never hold (0 fen, unknown cause, ...)
        return {"problem": str(exc), "entries": len(records)}
    paid_fen = sum(e.amount_fen for e in entries if e.cause == rules.PAYMENT)
    try:
        rules.check_invariant(entries, paid_fen)
    except rules.LedgerOutOfBalance as exc:
        return {"problem": exc.message, "paid_fen": paid_fen, "entries": len(entries),
                **{k: v for k, v in exc.details.items() if k != "paid_fen"}}
    return None


def check_ledgers(day: date, *, ledger_days, splits, orders, alerts, network, now: float) -> dict:
    """Check every order with a ledger entry on ``day``; returns ``{"day", "orders",
    "broken", "new_alerts"}`` (an order already alerted is counted broken, not new)."""
    from chalicelib.services.alerts import raise_alert

    log = get_logger("storelink.ledger_check")
    order_ids = ledger_days.orders_of_day(day)
    broken = new_alerts = 0
    for order_id in order_ids:
        problem = order_problem(order_id, splits.ledger(order_id))
        if problem is None:
            continue
        broken += 1
        if raise_alert(ALERT_KIND, order_id, f"The ledger of order {order_id} does not account for every fen: "
                       f"{problem['problem']}", order=orders.get(order_id), detail={"day": day.isoformat(), **problem},
                       alerts=alerts, network=network, now=now):
            new_alerts += 1
    counts = {"day": day.isoformat(), "orders": len(order_ids), "broken": broken, "new_alerts": new_alerts}
    (log.warning if broken else log.info)("check-ledgers", extra={"fields": counts})
    return counts
