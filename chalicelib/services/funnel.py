"""The funnel (M7): counting funnel events from the outbox, and reading the counters in
the back office.

Counting: the outbox consumer hands each SCAN_RECORDED, CUSTOMER_BOUND and ORDER_PAID
to ``on_scan_recorded``/``on_customer_bound``/``on_order_paid``, which add what
``chalicelib.domain.funnel.increments`` says, once per outbox item (the marker and
the counters are one transaction), so a replayed stream record counts once.

Reading, by role (``chalicelib.domain.tenancy``; anything out of reach is 404):

    store   its own store, its staff, the campaigns bound to it (a campaign's first store)
    dealer  itself, its stores, their staff, its campaigns
    brand   any dealer, store, staff member or campaign of its brand, but only where that
            dealer's switch shares aggregates (AGGREGATES_ONLY or FULL); otherwise 403
            NOT_SHARED_BY_DEALER. The brand-wide daily view lists every dealer, with
            counts only for the ones that share them.
"""
from __future__ import annotations

from chalicelib.domain import events
from chalicelib.domain import funnel as rules
from chalicelib.domain import sharing, tenancy
from chalicelib.domain.tenancy import BRAND
from chalicelib.errors import NotFound
from chalicelib.log import get_logger


# --- counting (the outbox consumer's handlers) -------------------------------------------

def count(kind: str, outbox_id: str, payload: dict, *, counters, now: float) -> str:
    """COUNTED, ALREADY_COUNTED, NOTHING_TO_COUNT or MALFORMED (reported, not retried:
    a retry cannot repair a payload)."""
    log = get_logger("storelink.funnel")
    try:
        found = rules.increments(kind, payload)
    except rules.MalformedEvent as exc:
        log.error("funnel event not counted", extra={"fields": {
            "outbox_id": outbox_id, "kind": kind, "problem": str(exc)}})
        return "MALFORMED"
    if not found:
        return "NOTHING_TO_COUNT"
    if not counters.apply(outbox_id, kind, found, now):
        log.info("funnel event already counted", extra={"fields": {"outbox_id": outbox_id, "kind": kind}})
        return "ALREADY_COUNTED"
    return "COUNTED"


def _count_now(kind: str, outbox_id: str, payload: dict) -> None:
    from chalicelib.services import wiring

    count(kind, outbox_id, payload, counters=wiring.funnel(), now=wiring.now())


def on_scan_recorded(outbox_id: str, payload: dict) -> None:
    _count_now(events.SCAN_RECORDED, outbox_id, payload)


def on_customer_bound(outbox_id: str, payload: dict) -> None:
    _count_now(events.CUSTOMER_BOUND, outbox_id, payload)


def on_order_paid(outbox_id: str, payload: dict) -> None:
    _count_now(events.ORDER_PAID, outbox_id, payload)


# --- reading --------------------------------------------------------------------------

def read_funnel(principal, scope: str, ident: str, first_day: str, last_day: str, *,
                counters, network, scenes) -> dict:
    """One scope's daily counts from ``first_day`` to ``last_day`` (both included, every
    day listed, zeros included) and their totals: one Query."""
    start, end = rules.day_range(first_day, last_day)
    dealer_id = _reachable(principal, scope, ident, network=network, scenes=scenes)
    if principal.role == BRAND and dealer_id is not None:
        dealer = network.get_dealer(dealer_id)
        if not sharing.brand_sees_aggregates(dealer.brand_access if dealer else None):
            raise sharing.NotShared(dealer_id=dealer_id)
    rows = counters.days(rules.scope_key(scope, ident), start.isoformat(), end.isoformat())
    return {"scope": scope, "id": ident, **rules.daily_series(rows, start, end)}


def _reachable(principal, scope: str, ident: str, *, network, scenes) -> str | None:
    """The dealer whose counters these are (None for a campaign without one), once the
    principal may see the scope at all; NotFound otherwise."""
    if scope == rules.STORE:
        store = network.get_store(ident)
        return tenancy.visible(store, store is not None and tenancy.can_see_store(principal, store),
                               "store", ident).dealer_id
    if scope == rules.STAFF:
        from chalicelib.services.network_admin import read_staff

        return read_staff(principal, ident, network=network).dealer_id
    if scope == rules.CAMPAIGN:
        from chalicelib.domain.scenes import CAMPAIGN
        from chalicelib.services.scenes import can_see_scene

        scene = scenes.get(ident)
        if scene is None or scene.kind != CAMPAIGN or not can_see_scene(principal, scene):
            raise NotFound(f"No campaign {ident}.", campaign=ident)
        return scene.dealer_id
    dealer = network.get_dealer(ident)
    return tenancy.visible(dealer, dealer is not None and tenancy.can_see_dealer(principal, dealer),
                           "dealer", ident).dealer_id


def dealers_on_day(principal, day: str, limit: int, start, *, counters, network):
    """The brand's dealers, one page, each with its counts of ``day`` — or None where the
    dealer does not share aggregates. One Query on the dealers' ``by_brand`` index, one
    BatchGetItem for the counters of the dealers that share (nothing is read for the rest)."""
    tenancy.require_role(principal, BRAND, action="read the brand-wide funnel")
    day = rules.parse_day(day, "day").isoformat()
    dealers, last = network.dealers_of_brand(principal.tenant_id, limit, start)
    shared = [d for d in dealers if sharing.brand_sees_aggregates(d.brand_access)]
    found = counters.on_day([rules.scope_key(rules.DEALER, d.dealer_id) for d in shared], day)
    items = [{"dealer_id": d.dealer_id, "name": d.name, "brand_access": d.brand_access,
              "counts": (found.get(rules.scope_key(rules.DEALER, d.dealer_id)) or rules.zeros())
              if sharing.brand_sees_aggregates(d.brand_access) else None}
             for d in dealers]
    return items, last
