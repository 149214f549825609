"""Back-office use cases for the catalogue and stock.

Only the brand sets prices and costs (one national price); dealers and stores read
the catalogue. Stock is counted per location: the cloud warehouse by the brand, a
store's shelf by the brand, its dealer or the store itself.
"""
from __future__ import annotations

from chalicelib.domain import tenancy
from chalicelib.domain.catalogue import (
    CLOUD_WAREHOUSE_ID,
    STORE as STORE_LOCATION,
    WAREHOUSE,
    Product,
    StockLevel,
    check_price_and_cost,
    parse_location,
)
from chalicelib.domain.tenancy import BRAND
from chalicelib.errors import NotFound
from chalicelib.services.network_admin import principal_brand, read_store


def create_product(principal, fields: dict, *, catalogue, now: float, commission_config=None) -> Product:
    """``commission_config``: when given, the brand's commissions must fit the new price (rule 7)."""
    tenancy.require_role(principal, BRAND, action="add products")
    check_price_and_cost(fields["price_fen"], fields["cost_fen"])
    product = Product(brand_id=principal.tenant_id, created_at=now, **fields)
    if commission_config is not None:
        from chalicelib.services.commission_config import check_product_commissions

        check_product_commissions(product, commission_config=commission_config)
    catalogue.add_product(product)
    return product


def read_product(principal, sku: str, *, catalogue, network) -> Product:
    product = catalogue.get_product(sku)
    allowed = product is not None and product.brand_id == principal_brand(principal, network)
    return tenancy.visible(product, allowed, "product", sku)


def update_product(principal, sku: str, changes: dict, *, catalogue, network, commission_config=None) -> Product:
    """``commission_config``: when given, a new price or cost must leave room for the
    brand's commissions (rule 7)."""
    tenancy.require_role(principal, BRAND, action="change products or prices (one national price)")
    current = read_product(principal, sku, catalogue=catalogue, network=network)
    if "price_fen" in changes and "cost_fen" in changes:
        check_price_and_cost(changes["price_fen"], changes["cost_fen"])
    if commission_config is not None and ("price_fen" in changes or "cost_fen" in changes):
        from dataclasses import replace

        from chalicelib.services.commission_config import check_product_commissions

        after = replace(current, **{k: v for k, v in changes.items() if k in ("price_fen", "cost_fen", "category")})
        check_price_and_cost(after.price_fen, after.cost_fen)
        check_product_commissions(after, commission_config=commission_config)
    return catalogue.update_product(sku, changes)


def list_products(principal, limit: int, start, *, catalogue, network):
    return catalogue.products_of_brand(principal_brand(principal, network), limit, start)


def _location_in_reach(principal, location_id: str, *, network) -> tuple[str, str | None]:
    """(location type, owning dealer) of a location the principal may see."""
    kind, store_id = parse_location(location_id)
    if kind == WAREHOUSE:
        if principal.role != BRAND:
            raise NotFound(f"No location {location_id}.", location_id=location_id)
        return WAREHOUSE, None
    store = read_store(principal, store_id, network=network)
    return STORE_LOCATION, store.dealer_id


def list_stock(principal, location_id: str, limit: int, start, *, catalogue, network):
    _location_in_reach(principal, location_id, network=network)
    return catalogue.stock_at(location_id, limit, start)


def read_stock(principal, location_id: str, sku: str, *, catalogue, network) -> StockLevel:
    _location_in_reach(principal, location_id, network=network)
    return tenancy.visible(catalogue.get_stock(location_id, sku), True, "stock", f"{location_id}/{sku}")


def count_stock(principal, location_id: str, sku: str, on_hand: int, *, catalogue, network,
                now: float) -> StockLevel:
    kind, dealer_id = _location_in_reach(principal, location_id, network=network)
    read_product(principal, sku, catalogue=catalogue, network=network)
    level = StockLevel(location_id=location_id, sku=sku, location_type=kind, on_hand=on_hand,
                       reserved=0, dealer_id=dealer_id)
    return catalogue.set_on_hand(level, on_hand, now)


__all__ = ["CLOUD_WAREHOUSE_ID", "create_product", "read_product", "update_product", "list_products",
           "list_stock", "read_stock", "count_stock"]
