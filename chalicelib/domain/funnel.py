"""The funnel (domain rule 9): scan -> follower -> customer -> buyer, counted per store,
staff member, campaign and dealer, per Beijing day.

Counters grow only from the funnel events of ``chalicelib.domain.events``, read from the
outbox stream after the fact (never inside the scan's or the payment's transaction).
``increments`` says, as plain values, what one event adds and where; applying them once
per outbox item is the repository's job.

A counter lives under a *scope* and a *day*:

    store#<store_id>      the store the event happened at (a scan's scene store, the
                          store a customer was bound to, the order's store)
    staff#<staff_id>      the guide whose badge was scanned (credited with the scan and
                          with the binding it caused)
    campaign#<scene>      a campaign poster's scene token (a campaign is its scene)
    dealer#<dealer_id>    the dealer owning that store: its stores summed

    day                   the Beijing calendar day of the event's ``at`` (``paid_at`` for
                          an order), YYYY-MM-DD

and counts:

    scans          SCAN_RECORDED whose scene led to an active store (any outcome, so
                   a customer's repeat scans and visits count each time)
    followers      of those, the ones that followed the official account through the
                   code (channel OA_SUBSCRIBE)
    new_customers  CUSTOMER_BOUND with no previous owner (from_store_id null): the
                   customer's first store, by scan or by purchase
    bindings       every CUSTOMER_BOUND (first owner, a scan overriding routing or
                   rebinding, a purchase moving the customer; a routed customer
                   confirming their store by scanning it is a binding too)
    orders         ORDER_PAID, once per order
    gmv_fen        ORDER_PAID's ``payable_fen`` (what the customer paid, int fen; refunds
                   are not taken off: this is the funnel, not the books)

Orders count for their store and its dealer only: an order carries no staff or
campaign attribution (the customer may have scanned many codes before buying), so a
staff or campaign scope never has orders or GMV.

A scan with no store behind it counts nowhere: an unknown or retired scene
(outcome SCENE_NOT_FOUND), a brand-wide product code, a scene of a deactivated store.
The scan itself is still kept in ``scans``; the funnel is about stores and the people
and posters that bring customers to them. PROMOTER_BOUND is not counted here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib.domain import events
from chalicelib.domain.attribution import beijing_day
from chalicelib.domain.scenes import CAMPAIGN
from chalicelib.errors import ValidationFailed

STORE, STAFF, DEALER = "store", "staff", "dealer"
SCOPES = (STORE, STAFF, CAMPAIGN, DEALER)

FIELDS = ("scans", "followers", "new_customers", "bindings", "orders", "gmv_fen")
COUNTED_KINDS = (events.SCAN_RECORDED, events.CUSTOMER_BOUND, events.ORDER_PAID)

# The channel of a scan that made the customer follow the official account
FOLLOWED = "OA_SUBSCRIBE"

MAX_DAYS = 92            # one read: about a quarter
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MalformedEvent(ValueError):
    """An event whose payload lacks what counting needs (a retry cannot fix it)."""


@dataclass(frozen=True)
class Increment:
    scope: str     # e.g. "store#store-cd-chunxi"
    day: str       # Beijing day, YYYY-MM-DD
    field: str     # one of FIELDS
    amount: int


def scope_key(scope: str, ident: str) -> str:
    return f"{scope}#{ident}"


def increments(kind: str, payload: dict) -> list[Increment]:
    """What one funnel event adds, and where. Empty when it counts nowhere (another kind,
    or a scan without a store). Raises MalformedEvent when the payload cannot be counted."""
    if kind == events.SCAN_RECORDED:
        return _scan(payload)
    if kind == events.CUSTOMER_BOUND:
        return _binding(payload)
    if kind == events.ORDER_PAID:
        return _order(payload)
    return []


def _scan(p: dict) -> list[Increment]:
    store_id = p.get("store_id")
    if not store_id:
        return []
    scopes = _scopes(store_id, p.get("dealer_id"), p.get("staff_id"),
                     p.get("scene") if p.get("kind") == CAMPAIGN else None)
    day = _day(p, "at")
    fields = {"scans": 1, **({"followers": 1} if p.get("channel") == FOLLOWED else {})}
    return [Increment(scope, day, field, amount) for scope in scopes for field, amount in fields.items()]


def _binding(p: dict) -> list[Increment]:
    store_id = p.get("to_store_id")
    if not store_id:
        raise MalformedEvent("CUSTOMER_BOUND without to_store_id")
    scopes = _scopes(store_id, p.get("to_dealer_id"), p.get("staff_id"),
                     p.get("scene") if p.get("scene_kind") == CAMPAIGN else None)
    day = _day(p, "at")
    fields = {"bindings": 1, **({"new_customers": 1} if p.get("from_store_id") is None else {})}
    return [Increment(scope, day, field, amount) for scope in scopes for field, amount in fields.items()]


def _order(p: dict) -> list[Increment]:
    store_id, fen = p.get("store_id"), p.get("payable_fen")
    if not store_id:
        raise MalformedEvent("ORDER_PAID without store_id")
    if isinstance(fen, bool) or not isinstance(fen, int) or fen < 0:
        raise MalformedEvent("ORDER_PAID's payable_fen must be a whole number of fen")
    day = _day(p, "paid_at")
    return [Increment(scope, day, field, amount) for scope in _scopes(store_id, p.get("dealer_id"))
            for field, amount in (("orders", 1), ("gmv_fen", fen))]


def _scopes(store_id: str, dealer_id: str | None, staff_id: str | None = None,
            campaign_scene: str | None = None) -> list[str]:
    scopes = [scope_key(STORE, store_id)]
    if dealer_id:
        scopes.append(scope_key(DEALER, dealer_id))
    if staff_id:
        scopes.append(scope_key(STAFF, staff_id))
    if campaign_scene:
        scopes.append(scope_key(CAMPAIGN, campaign_scene))
    return scopes


def _day(payload: dict, name: str) -> str:
    at = payload.get(name)
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise MalformedEvent(f"the event has no numeric {name!r}")
    return beijing_day(float(at))


def by_counter(found: list[Increment]) -> dict[tuple[str, str], dict[str, int]]:
    """{(scope, day): {field: amount}}: one write per counter item, whatever the fields."""
    grouped: dict[tuple[str, str], dict[str, int]] = {}
    for inc in found:
        fields = grouped.setdefault((inc.scope, inc.day), {})
        fields[inc.field] = fields.get(inc.field, 0) + inc.amount
    return grouped


# --- reading ------------------------------------------------------------------------

def zeros() -> dict[str, int]:
    return {name: 0 for name in FIELDS}


def parse_day(text: object, field: str) -> date:
    if not isinstance(text, str) or not _DAY.match(text):
        raise ValidationFailed(f"'{field}' must be a day as YYYY-MM-DD.", field=field)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"'{field}' is not a calendar day.", field=field) from None


def day_range(first: object, last: object) -> tuple[date, date]:
    """``from`` and ``to`` (both included), at most MAX_DAYS days, in order."""
    start, end = parse_day(first, "from"), parse_day(last, "to")
    if end < start:
        raise ValidationFailed("'to' must not be before 'from'.", field="to")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"Ask for at most {MAX_DAYS} days at once.", field="to")
    return start, end


def daily_series(rows: dict[str, dict[str, int]], start: date, end: date) -> dict:
    """Every day from ``start`` to ``end`` (zeros where nothing happened) and the totals."""
    days, totals = [], zeros()
    for offset in range((end - start).days + 1):
        day = (start + timedelta(days=offset)).isoformat()
        counts = {**zeros(), **rows.get(day, {})}
        days.append({"day": day, **counts})
        for name in FIELDS:
            totals[name] += counts[name]
    return {"days": days, "totals": totals}
