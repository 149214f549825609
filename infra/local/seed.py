"""Write the demo world into the stage's tables, idempotently."""
from __future__ import annotations

from chalicelib.db.binding import bind_records
from chalicelib.domain.network import Store
from infra.local import demo_data as demo


def _put_if_absent(record) -> bool:
    from pynamodb.exceptions import PutError

    hash_attr = type(record)._hash_keyname
    try:
        record.save(condition=getattr(type(record), hash_attr).does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _add_store_if_absent(store: Store) -> bool:
    """Through the repository, so the store's geo index entries are written with it; a
    store seeded before the index existed gets its entries now."""
    from chalicelib.db import items
    from chalicelib.db.network import NetworkRepository
    from chalicelib.db.records import StoreRecord

    existing = items.get(StoreRecord, store.store_id)
    if existing is None:
        NetworkRepository().add_store(store)
        return True
    if existing.geo_keys is None and existing.status == "ACTIVE":
        NetworkRepository().reindex_store(store.store_id)
    return False


def seed_demo_data(now: float) -> dict[str, int]:
    """Returns how many items of each kind were newly written."""
    from chalicelib.db.records import (
        BrandRecord,
        DealerRecord,
        ProductRecord,
        StockRecord,
    )

    bind_records()
    created = {"brands": 0, "dealers": 0, "stores": 0, "products": 0, "stock": 0}
    brand_id = demo.BRAND["brand_id"]
    created["brands"] += _put_if_absent(BrandRecord(**demo.BRAND, created_at=now))
    for dealer in demo.DEALERS:
        created["dealers"] += _put_if_absent(DealerRecord(**dealer, brand_id=brand_id, created_at=now))
    sub_mchids = {d["dealer_id"]: d["sub_mchid"] for d in demo.DEALERS}
    for store in demo.STORES:
        created["stores"] += _add_store_if_absent(Store(
            **store, brand_id=brand_id, sub_mchid=sub_mchids[store["dealer_id"]], created_at=now))
    for sku, name, category, price, cost in demo.PRODUCTS:
        created["products"] += _put_if_absent(ProductRecord(
            sku=sku, brand_id=brand_id, name=name, category=category, price_fen=price,
            cost_fen=cost, created_at=now))
    stock_rows = [(demo.WAREHOUSE_LOCATION, "WAREHOUSE", None, sku, demo.warehouse_stock(sku))
                  for sku, *_ in demo.PRODUCTS]
    for s_index, store in enumerate(demo.STORES):
        for p_index, (sku, *_) in enumerate(demo.PRODUCTS):
            quantity = demo.store_stock(s_index, p_index)
            if quantity:
                stock_rows.append((f"store:{store['store_id']}", "STORE", store["dealer_id"], sku, quantity))
    for location_id, location_type, dealer_id, sku, quantity in stock_rows:
        item = StockRecord(location_id=location_id, sku=sku, location_type=location_type,
                           dealer_id=dealer_id, on_hand=quantity, reserved=0, available=quantity, version=0,
                           updated_at=now)
        created["stock"] += _put_if_absent(item)
    _backfill_older_data(stock_rows, sub_mchids)
    return created


def _backfill_older_data(stock_rows, sub_mchids) -> None:
    """Attributes added after a data folder was first seeded (each written only if absent)."""
    from pynamodb.exceptions import UpdateError

    from chalicelib.db.records import StockRecord, StoreRecord

    updates = [(StoreRecord(store["store_id"]), [StoreRecord.sub_mchid.set(sub_mchids[store["dealer_id"]])],
                StoreRecord.store_id.exists() & StoreRecord.sub_mchid.does_not_exist()) for store in demo.STORES]
    updates += [(StockRecord(location_id, sku),
                 [StockRecord.available.set(StockRecord.on_hand - StockRecord.reserved)],
                 StockRecord.location_id.exists() & StockRecord.available.does_not_exist())
                for location_id, _type, _dealer, sku, _qty in stock_rows]
    for record, actions, condition in updates:
        try:
            record.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise


def stack_summary() -> dict:
    """The demo tenants for stack.json."""
    return {
        "brand_id": demo.BRAND["brand_id"],
        "dealers": [
            {"dealer_id": d["dealer_id"], "name": d["name"], "sub_mchid": d["sub_mchid"],
             "store_ids": [s["store_id"] for s in demo.STORES if s["dealer_id"] == d["dealer_id"]]}
            for d in demo.DEALERS
        ],
        "warehouse_location_id": demo.WAREHOUSE_LOCATION,
        "skus": [p[0] for p in demo.PRODUCTS],
    }
