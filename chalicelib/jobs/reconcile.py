"""The reconcile job (daily at 10:30 Beijing, when WeChat Pay's bills of the day before
exist): a thin entry point. It reconciles the Beijing day before, or the day an operator
names (``./storelink job reconcile --date YYYY-MM-DD`` puts ``{"date": ...}`` in the
event's detail). Run by hand on a terminal it draws a progress bar (rows matched)."""
from __future__ import annotations


def run(requested_date: str | None = None) -> dict:
    from chalicelib.jobs.progress import ProgressBar
    from chalicelib.services import wiring
    from chalicelib.services.reconcile import collaborators, day_to_reconcile, reconcile

    now = wiring.now()
    day = day_to_reconcile(now, requested_date)
    bar = ProgressBar(f"reconcile {day}")
    try:
        return reconcile(day, collaborators(now), now, progress=bar)
    finally:
        bar.close()
