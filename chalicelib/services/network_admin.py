"""Back-office use cases for the dealer network: dealers, stores, staff.

Every function receives the caller's principal and applies the tenancy rules of
``chalicelib.domain.tenancy`` before it reads or writes anything for them.
"""
from __future__ import annotations

from chalicelib.domain import tenancy
from chalicelib.domain.network import Dealer, StaffMember, Store, new_id
from chalicelib.domain.tenancy import BRAND, DEALER, STORE
from chalicelib.errors import Forbidden, NotFound


def principal_brand(principal, network) -> str:
    """The brand a principal works for (a dealer's or store's own record says)."""
    if principal.role == BRAND:
        return principal.tenant_id
    if principal.role == DEALER:
        dealer = network.get_dealer(principal.tenant_id)
        if dealer is None:
            raise NotFound(f"No dealer {principal.tenant_id}.")
        return dealer.brand_id
    store = network.get_store(principal.tenant_id)
    if store is None:
        raise NotFound(f"No store {principal.tenant_id}.")
    return store.brand_id


# --- dealers ---------------------------------------------------------------

def create_dealer(principal, fields: dict, *, network, now: float) -> Dealer:
    tenancy.require_role(principal, BRAND, action="create dealers")
    dealer = Dealer(dealer_id=new_id("dl"), brand_id=principal.tenant_id, created_at=now, **fields)
    network.add_dealer(dealer)
    return dealer


def read_dealer(principal, dealer_id: str, *, network) -> Dealer:
    tenancy.require_role(principal, BRAND, DEALER, action="read dealers")
    dealer = network.get_dealer(dealer_id)
    return tenancy.visible(dealer, dealer is not None and tenancy.can_see_dealer(principal, dealer),
                           "dealer", dealer_id)


def update_dealer(principal, dealer_id: str, changes: dict, *, network) -> Dealer:
    read_dealer(principal, dealer_id, network=network)
    tenancy.require_role(principal, BRAND, action="change a dealer's account")
    dealer = network.update_dealer(dealer_id, changes)
    if "sub_mchid" in changes:
        # Stores carry a copy for the order path: keep every one in step.
        start = None
        while True:
            stores, start = network.stores_of_dealer(dealer_id, 100, start)
            for store in stores:
                network.update_store(store.store_id, {"sub_mchid": dealer.sub_mchid})
            if not start:
                break
    return dealer


def set_data_sharing(principal, dealer_id: str, level: str, *, network, now: float) -> Dealer:
    """Only the dealer itself decides what the brand sees of its customers."""
    from chalicelib.domain.sharing import check_level

    dealer = read_dealer(principal, dealer_id, network=network)
    tenancy.require_role(principal, DEALER, action="change what a dealer shares (only the dealer may)")
    check_level(level)
    if dealer.brand_access == level:
        return dealer   # nothing changes, nothing is recorded
    return network.set_brand_access(dealer_id, dealer.brand_access, level,
                                    f"{principal.role}:{principal.tenant_id}", now)


def data_sharing(principal, dealer_id: str, *, network) -> dict:
    """The switch and every change of it (the brand and the dealer may read it)."""
    from chalicelib.domain.time import rfc3339

    dealer = read_dealer(principal, dealer_id, network=network)
    return {"dealer_id": dealer.dealer_id, "brand_access": dealer.brand_access,
            "changes": [{"from": c.from_access, "to": c.to_access, "changed_by": c.changed_by, "at": rfc3339(c.at)}
                        for c in network.sharing_history(dealer_id)]}


def list_dealers(principal, limit: int, start, *, network):
    tenancy.require_role(principal, BRAND, DEALER, action="list dealers")
    if principal.role == DEALER:
        return [read_dealer(principal, principal.tenant_id, network=network)], None
    return network.dealers_of_brand(principal.tenant_id, limit, start)


# --- stores ----------------------------------------------------------------

def create_store(principal, fields: dict, *, network, now: float) -> Store:
    tenancy.require_role(principal, BRAND, DEALER, action="open stores")
    dealer_id = fields.pop("dealer_id", None) or (principal.tenant_id if principal.role == DEALER else None)
    if dealer_id is None:
        from chalicelib.errors import ValidationFailed

        raise ValidationFailed("'dealer_id' is required: which dealer owns the store?", field="dealer_id")
    dealer = read_dealer(principal, dealer_id, network=network)
    store = Store(store_id=new_id("st"), dealer_id=dealer.dealer_id, brand_id=dealer.brand_id,
                  created_at=now, sub_mchid=dealer.sub_mchid, **fields)
    network.add_store(store)
    return store


def read_store(principal, store_id: str, *, network) -> Store:
    store = network.get_store(store_id)
    return tenancy.visible(store, store is not None and tenancy.can_see_store(principal, store),
                           "store", store_id)


def update_store(principal, store_id: str, changes: dict, *, network, scenes=None) -> Store:
    """``scenes``: when given, the store's scenes get its new card (what a scan shows and
    binds by, including a deactivation) before this returns."""
    store = read_store(principal, store_id, network=network)
    if principal.role == STORE and "status" in changes:
        raise Forbidden("A store token may not open or close its own store.", role=STORE)
    merged = {"lat": store.lat, "lng": store.lng}
    if "lat" in changes or "lng" in changes:
        changes = {**merged, **changes}
    updated = network.update_store(store_id, changes)
    if scenes is not None:
        scenes.refresh_store_card(store_id)
    return updated


def list_stores(principal, dealer_id: str | None, limit: int, start, *, network):
    if principal.role == STORE:
        return [read_store(principal, principal.tenant_id, network=network)], None
    if dealer_id is not None:
        read_dealer(principal, dealer_id, network=network)
        return network.stores_of_dealer(dealer_id, limit, start)
    if principal.role == DEALER:
        return network.stores_of_dealer(principal.tenant_id, limit, start)
    return network.stores_of_brand(principal.tenant_id, limit, start)


# --- staff -----------------------------------------------------------------

def create_staff(principal, store_id: str, fields: dict, *, network, now: float) -> StaffMember:
    store = read_store(principal, store_id, network=network)
    member = StaffMember(staff_id=new_id("sf"), store_id=store.store_id, dealer_id=store.dealer_id,
                         created_at=now, **fields)
    network.add_staff(member)
    return member


def read_staff(principal, staff_id: str, *, network) -> StaffMember:
    member = network.get_staff(staff_id)
    if member is not None:
        store = network.get_store(member.store_id)
        if store is not None and tenancy.can_see_store(principal, store):
            return member
    raise NotFound(f"No staff {staff_id}.", staff_id=staff_id)


def update_staff(principal, staff_id: str, changes: dict, *, network) -> StaffMember:
    read_staff(principal, staff_id, network=network)
    return network.update_staff(staff_id, changes)


def list_staff(principal, store_id: str, limit: int, start, *, network):
    read_store(principal, store_id, network=network)
    return network.staff_of_store(store_id, limit, start)
