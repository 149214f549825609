"""Who in the back office may see and change what.

A brand token reaches everything of its brand; a dealer token only its own dealer,
stores, staff and stock; a store token only its own store. Something out of reach is
reported as not found (404), so a tenant cannot learn what others have; an action a
role may never take is forbidden (403).
"""
from __future__ import annotations

from chalicelib.errors import Forbidden, NotFound

BRAND, DEALER, STORE = "brand", "dealer", "store"


def require_role(principal, *roles: str, action: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"A {principal.role} token may not {action}.", role=principal.role)


def can_see_dealer(principal, dealer) -> bool:
    if principal.role == BRAND:
        return dealer.brand_id == principal.tenant_id
    if principal.role == DEALER:
        return dealer.dealer_id == principal.tenant_id
    return False


def can_see_store(principal, store) -> bool:
    if principal.role == BRAND:
        return store.brand_id == principal.tenant_id
    if principal.role == DEALER:
        return store.dealer_id == principal.tenant_id
    return store.store_id == principal.tenant_id


def visible(found, allowed: bool, what: str, ident: str):
    """The record, or NotFound when it is absent or belongs to another tenant."""
    if found is None or not allowed:
        raise NotFound(f"No {what} {ident}.", **{f"{what}_id" if what != "product" else "sku": ident})
    return found
