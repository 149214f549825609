"""Store groups: who may list which customers (domain rule 3), and what a list shows.

A store lists its own customers; a dealer all of its stores' (or one of them); the
brand a dealer's or a store's only when that dealer shares FULL access (AGGREGATES_ONLY
and NONE: 403, the brand gets counts through the funnel at most). Whoever lists, the
openid and phone are masked, and nothing else identifies the person.
"""
from __future__ import annotations

from chalicelib.domain import sharing, tenancy
from chalicelib.domain.tenancy import BRAND, DEALER, STORE
from chalicelib.domain.time import rfc3339
from chalicelib.errors import ValidationFailed
from chalicelib.services.network_admin import read_dealer, read_store

EXPORT_ROWS = 5000       # per call: a CSV of 5 000 rows stays far below Lambda's 6 MB answer
EXPORT_COLUMNS = ("customer_id", "openid_masked", "phone_masked", "owning_store_id", "owning_dealer_id",
                  "owner_basis", "owned_since", "first_seen_at", "last_scan_at", "last_scan_store_id",
                  "last_purchase_at", "last_purchase_store_id", "points_balance", "promoter_status")


def _time(value) -> str | None:
    return rfc3339(float(value)) if value is not None else None


def customer_row(record) -> dict:
    """What a back-office list shows of a customer (masked: never a raw openid or phone)."""
    last_scan = ({"at": _time(record.last_scan_at), "store_id": record.last_scan_store_id}
                 if record.last_scan_at is not None else None)
    last_purchase = ({"at": _time(record.last_purchase_at), "store_id": record.last_purchase_store_id,
                      "order_id": record.last_order_id} if record.last_purchase_at is not None else None)
    return {"customer_id": record.customer_id, "openid_masked": sharing.mask_openid(record.openid),
            "phone_masked": sharing.mask_phone(getattr(record, "phone", None)),
            "owning_store_id": record.owning_store_id, "owning_dealer_id": record.owning_dealer_id,
            "owner_basis": record.owner_basis, "owned_since": _time(record.owned_since),
            "first_seen_at": _time(record.first_seen_at), "last_scan": last_scan, "last_purchase": last_purchase,
            "points_balance": int(record.points_balance or 0), "promoter_status": record.promoter_status}


def _brand_needs_full_access(principal, dealer_id: str, network) -> None:
    if principal.role == BRAND:
        dealer = network.get_dealer(dealer_id)
        if not sharing.brand_sees_customers(dealer.brand_access if dealer else None):
            raise sharing.NotShared(dealer_id=dealer_id, brand_access=dealer.brand_access if dealer else None)


def list_customers(principal, store_id: str | None, dealer_id: str | None, limit: int, start, *, groups,
                   network):
    """(rows, last key) of one store's or one dealer's customers, newest owner first."""
    tenancy.require_role(principal, BRAND, DEALER, STORE, action="list customers")
    if store_id and dealer_id:
        raise ValidationFailed("Give 'store_id' or 'dealer_id', not both.", field="store_id")
    if principal.role == STORE and not dealer_id:
        store_id = store_id or principal.tenant_id
    elif principal.role == DEALER and not store_id:
        dealer_id = dealer_id or principal.tenant_id
    if store_id:
        store = read_store(principal, store_id, network=network)        # 404 outside reach
        _brand_needs_full_access(principal, store.dealer_id, network)
        records, last = groups.of_store(store.store_id, limit, start)
    elif dealer_id:
        dealer = read_dealer(principal, dealer_id, network=network)     # 404 outside reach (a store: 404)
        _brand_needs_full_access(principal, dealer.dealer_id, network)
        records, last = groups.of_dealer(dealer.dealer_id, limit, start)
    else:
        raise ValidationFailed("'dealer_id' or 'store_id' is required: whose customers?", field="dealer_id")
    return [customer_row(r) for r in records], last


def export_rows(rows: list[dict]) -> str:
    """The CSV of an export (same masking as the lists; formulas neutralised for spreadsheets)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        flat = {**row, "last_scan_at": (row["last_scan"] or {}).get("at"),
                "last_scan_store_id": (row["last_scan"] or {}).get("store_id"),
                "last_purchase_at": (row["last_purchase"] or {}).get("at"),
                "last_purchase_store_id": (row["last_purchase"] or {}).get("store_id")}
        writer.writerow([_cell(flat.get(column)) for column in EXPORT_COLUMNS])
    return out.getvalue()


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is run as a formula by spreadsheet programs.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def can_read_customer(principal, customer, network) -> bool:
    """One customer's details: the store or dealer owning them now; the brand if that dealer
    shares FULL access (or nobody owns them yet: then they are the brand's own traffic)."""
    if customer is None:
        return False
    if principal.role == STORE:
        return customer.owning_store_id == principal.tenant_id
    if principal.role == DEALER:
        return customer.owning_dealer_id == principal.tenant_id
    if not customer.owning_dealer_id:
        return True
    dealer = network.get_dealer(customer.owning_dealer_id)
    return (dealer is not None and dealer.brand_id == principal.tenant_id
            and sharing.brand_sees_customers(dealer.brand_access))
