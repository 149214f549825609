"""A store's shelf: the brand's catalogue at the national price, and where each item
can ship from (this store's stock, or the cloud warehouse)."""
from __future__ import annotations

from chalicelib.domain.catalogue import CLOUD_WAREHOUSE_ID, store_location
from chalicelib.domain.network import ACTIVE
from chalicelib.errors import NotFound


def store_shelf(store_id: str, limit: int, start, *, network, catalogue) -> tuple[dict, list[dict], dict | None]:
    store = network.get_store(store_id)
    if store is None or store.status != ACTIVE:
        raise NotFound(f"No store {store_id}.", store_id=store_id)
    products, last = catalogue.products_of_brand(store.brand_id, limit, start)
    products = [p for p in products if p.status == ACTIVE]
    skus = [p.sku for p in products]
    at_store = catalogue.stock_levels(store_location(store_id), skus)
    in_warehouse = catalogue.stock_levels(CLOUD_WAREHOUSE_ID, skus)
    items = []
    for product in products:
        here = at_store.get(product.sku, 0)
        warehouse = in_warehouse.get(product.sku, 0)
        ships_from = [{"type": kind, "available": count} for kind, count in
                      (("store", here), ("warehouse", warehouse)) if count > 0]
        items.append({"sku": product.sku, "name": product.name, "category": product.category,
                      "price_fen": product.price_fen, "available": here + warehouse > 0,
                      "ships_from": ships_from,
                      "fulfillment": [t for t, ok in (("store_pickup", here > 0), ("store_delivery", here > 0),
                                                      ("warehouse", warehouse > 0)) if ok]})
    summary = {"store_id": store.store_id, "name": store.name, "city": store.city, "services": store.services,
               "campaigns": []}
    return summary, items, last
