"""Who a customer belongs to (domain rules 2, 3, 4 and 7), as pure decisions.

A customer belongs to the store of their last purchase. Before any purchase, the
first scanned store binds them; a routed assignment (brand traffic sent to the
nearest store) is provisional and gives way to the customer's own scan or purchase.
A bound customer scanning another store stays bound (the visit is still recorded)
unless the brand configures scans to rebind. Every change names its reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from chalicelib.domain.time import BEIJING

# How the current owner was decided (weakest first)
ROUTED = "ROUTED"          # provisional: the nearest suitable store, chosen for them
SCANNED = "SCANNED"        # the customer scanned the store's code
PURCHASED = "PURCHASED"    # the customer bought there (the strongest claim)

# Reasons recorded with each change of owner
FIRST_SCAN = "FIRST_SCAN"
SCAN_OVERRIDES_ROUTING = "SCAN_OVERRIDES_ROUTING"
SCAN_REBINDS = "SCAN_REBINDS"                  # only when the brand configures it
LAST_PURCHASE = "LAST_PURCHASE"
ROUTED_TO_NEAREST = "ROUTED_TO_NEAREST"

# Promoter binding rules (configuration; the first is the default)
PROMOTER_FIRST_TOUCH = "FIRST_TOUCH"           # bind only a customer with no promoter yet
PROMOTER_NEW_CUSTOMERS_ONLY = "NEW_CUSTOMERS_ONLY"
PROMOTER_LAST_TOUCH = "LAST_TOUCH"
MAX_PROMOTER_LEVELS = 3


@dataclass(frozen=True)
class Owner:
    store_id: str
    basis: str             # ROUTED | SCANNED | PURCHASED


@dataclass(frozen=True)
class Decision:
    bind_to: str | None    # the new owning store, or None to leave ownership as it is
    basis: str | None
    reason: str            # why (also when nothing changes: e.g. VISIT_RECORDED)


def on_scan(owner: Owner | None, scanned_store: str, rebind_on_scan: bool = False) -> Decision:
    if owner is None:
        return Decision(scanned_store, SCANNED, FIRST_SCAN)
    if owner.store_id == scanned_store:
        # A scan confirms a routed store as the customer's own choice.
        basis = SCANNED if owner.basis == ROUTED else owner.basis
        return Decision(None if basis == owner.basis else scanned_store, basis if basis != owner.basis else None,
                        "REPEAT_SCAN")
    if owner.basis == ROUTED:
        return Decision(scanned_store, SCANNED, SCAN_OVERRIDES_ROUTING)
    if rebind_on_scan:
        return Decision(scanned_store, SCANNED, SCAN_REBINDS)
    return Decision(None, None, "VISIT_RECORDED")


def on_purchase(owner: Owner | None, order_store: str) -> Decision:
    """The last purchase wins, whoever owned the customer before."""
    if owner is not None and owner.store_id == order_store and owner.basis == PURCHASED:
        return Decision(None, None, "REPEAT_PURCHASE")
    return Decision(order_store, PURCHASED, LAST_PURCHASE)


def on_routing(owner: Owner | None, nearest_store: str) -> Decision:
    """Routing only ever places a customer nobody owns yet."""
    if owner is None:
        return Decision(nearest_store, ROUTED, ROUTED_TO_NEAREST)
    return Decision(None, None, "ALREADY_OWNED")


def should_bind_promoter(current_promoter: str | None, new_promoter: str, customer_is_new: bool,
                         customer_id: str, rule: str = PROMOTER_FIRST_TOUCH) -> bool:
    if new_promoter == customer_id or current_promoter == new_promoter:
        return False  # nobody promotes themselves; the same promoter again changes nothing
    if rule == PROMOTER_FIRST_TOUCH:
        return current_promoter is None
    if rule == PROMOTER_NEW_CUSTOMERS_ONLY:
        return customer_is_new and current_promoter is None
    if rule == PROMOTER_LAST_TOUCH:
        return True
    raise ValueError(f"unknown promoter binding rule {rule!r}")


def promoter_chain(direct_promoter: str, promoters_chain: list[str], customer_id: str) -> list[str]:
    """The customer's upline, nearest first, at most three levels, never a loop."""
    chain = [direct_promoter] + [p for p in promoters_chain]
    result: list[str] = []
    for promoter in chain:
        if promoter == customer_id or promoter in result:
            break
        result.append(promoter)
        if len(result) == MAX_PROMOTER_LEVELS:
            break
    return result


def beijing_day(timestamp: float) -> str:
    """The business day (Beijing) of a moment: points are once per scene per day."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).astimezone(BEIJING).strftime("%Y-%m-%d")


# --- promoters (domain rule 7) ------------------------------------------------

NEW_CUSTOMER_WINDOW_S = 24 * 3600     # NEW_CUSTOMERS_ONLY: first seen within the last day
PROMOTER_RULES = (PROMOTER_FIRST_TOUCH, PROMOTER_NEW_CUSTOMERS_ONLY, PROMOTER_LAST_TOUCH)

# Outcomes of a promoter share scan, recorded with the scan
PROMOTER_BOUND = "PROMOTER_BOUND"
PROMOTER_KEPT = "PROMOTER_KEPT"             # the rule keeps the promoter they have
NOT_A_NEW_CUSTOMER = "NOT_A_NEW_CUSTOMER"
OWN_SHARE_CODE = "OWN_SHARE_CODE"
WOULD_LOOP = "WOULD_LOOP"                   # the promoter is in this customer's own downline


@dataclass(frozen=True)
class PromoterDecision:
    bind: bool
    chain: tuple[str, ...]     # the customer's new upline, nearest first (empty when not bound)
    reason: str


def is_new_customer(first_seen_at: float, owner_basis: str | None, now: float) -> bool:
    """New: first seen by StoreLink within the last day and never bought anything."""
    return owner_basis != PURCHASED and now - first_seen_at <= NEW_CUSTOMER_WINDOW_S


def decide_promoter(customer_id: str, current_promoter: str | None, promoter_id: str,
                    promoter_upline: list[str], customer_is_new: bool, rule: str) -> PromoterDecision:
    """Whether a customer arriving through ``promoter_id``'s share code is bound under
    them, and the chain kept if so (``promoter_upline``: the promoter's own, nearest first).

    A promoter whose upline already holds this customer would close a loop (B invited
    A, then B arrives through A's code): refused, whatever the rule."""
    if rule not in PROMOTER_RULES:
        raise ValueError(f"unknown promoter binding rule {rule!r}")
    if promoter_id == customer_id:
        return PromoterDecision(False, (), OWN_SHARE_CODE)
    if customer_id in promoter_upline:
        return PromoterDecision(False, (), WOULD_LOOP)
    if not should_bind_promoter(current_promoter, promoter_id, customer_is_new, customer_id, rule):
        reason = NOT_A_NEW_CUSTOMER if (rule == PROMOTER_NEW_CUSTOMERS_ONLY and current_promoter is None) \
            else PROMOTER_KEPT
        return PromoterDecision(False, (), reason)
    return PromoterDecision(True, tuple(promoter_chain(promoter_id, list(promoter_upline), customer_id)),
                            PROMOTER_BOUND)
