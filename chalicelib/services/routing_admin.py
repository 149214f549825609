"""Back-office use cases for routing (issue M11): the brand's routing settings and the
day's routing report. Brand tokens only (dealer and store tokens: 403): the settings
are the brand's, and the report compares every dealer's share.
"""
from __future__ import annotations

from chalicelib.domain import tenancy
from chalicelib.domain.routing_config import check_settings
from chalicelib.domain.tenancy import BRAND
from chalicelib.errors import ValidationFailed


def read_settings(principal, *, routing_config) -> dict:
    tenancy.require_role(principal, BRAND, action="read the routing configuration")
    settings, version = routing_config.settings_and_version(principal.tenant_id)
    return {**settings.to_json(), "version": version}


def update_settings(principal, body: dict, *, routing_config) -> dict:
    """Replace the whole configuration (a setting left out takes its default); 409 when it
    changed between our read and our write."""
    tenancy.require_role(principal, BRAND, action="configure routing")
    settings = check_settings(body)
    _, version = routing_config.settings_and_version(principal.tenant_id)
    new_version = routing_config.put_settings(principal.tenant_id, settings, expected_version=version)
    return {**settings.to_json(), "version": new_version}


def check_day(text: str | None, now: float) -> str:
    """``YYYY-MM-DD`` (a Beijing day); today when absent."""
    from datetime import date

    from chalicelib.domain.attribution import beijing_day

    if text is None:
        return beijing_day(now)
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValidationFailed("'date' must be a day as YYYY-MM-DD.", field="date") from None


def routing_report(principal, day_text: str | None, *, routing_db, now: float) -> dict:
    """The day's routed customers per dealer and store (from the counts every run adds
    to) and each run's own figures."""
    from chalicelib.domain.time import rfc3339

    tenancy.require_role(principal, BRAND, action="read the routing report")
    day = check_day(day_text, now)
    by_store: dict[str, int] = {}
    by_dealer: dict[str, int] = {}
    for row in routing_db.count_rows(day):
        assigned = int(row.assigned or 0)
        by_store[row.store_id] = assigned
        by_dealer[row.dealer_id or ""] = by_dealer.get(row.dealer_id or "", 0) + assigned
    total = sum(by_store.values())

    def ordered(counts: dict[str, int]) -> dict[str, int]:
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    runs = [{"run_id": r.run_id, "outcome": r.outcome, "started_at": rfc3339(r.started_at),
             "finished_at": rfc3339(r.finished_at) if r.finished_at is not None else None,
             "read": int((r.stats or {}).get("read", 0)), "assigned": int((r.stats or {}).get("assigned", 0)),
             "lost_to_owner": int((r.stats or {}).get("lost_to_owner", 0)),
             "deferred": int((r.stats or {}).get("deferred_capped", 0))
             + int((r.stats or {}).get("deferred_no_candidates", 0)),
             "by_reason": dict((r.report or {}).get("by_reason", {})),
             "by_dealer": dict((r.report or {}).get("by_dealer", {}))}
            for r in routing_db.runs_on(day)]
    return {"date": day, "assigned": total, "by_dealer": ordered(by_dealer),
            "dealer_share": {d: round(n / total, 4) for d, n in ordered(by_dealer).items()} if total else {},
            "by_store": ordered(by_store), "runs": runs}
