"""Products and stock levels."""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.domain.catalogue import CostAbovePrice, Product, StockBelowReserved, StockLevel
from chalicelib.errors import Conflict, NotFound


class CatalogueRepository:
    def get_product(self, sku: str) -> Product | None:
        from chalicelib.db.records import ProductRecord

        record = items.get(ProductRecord, sku)
        return _product(record) if record else None

    def add_product(self, product: Product) -> None:
        from chalicelib.db.records import ProductRecord

        items.create(ProductRecord(**product.to_json()), Conflict(f"SKU {product.sku} already exists.",
                                                                  sku=product.sku))

    def update_product(self, sku: str, changes: dict) -> Product:
        """Cost never above price, checked by the write itself against the stored values."""
        from chalicelib.db.records import ProductRecord

        condition = ProductRecord.sku.exists()
        price, cost = changes.get("price_fen"), changes.get("cost_fen")
        if price is not None and cost is None:
            condition &= ProductRecord.cost_fen <= price
        elif cost is not None and price is None:
            condition &= ProductRecord.price_fen >= cost
        actions = [getattr(ProductRecord, name).set(value) for name, value in changes.items()]
        try:
            record = items.update(ProductRecord, (sku,), actions, condition, _ConditionFailed())
        except _ConditionFailed:
            if self.get_product(sku) is None:
                raise NotFound(f"No product {sku}.", sku=sku) from None
            raise CostAbovePrice(sku=sku) from None
        return _product(record)

    def products_of_brand(self, brand_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import ProductRecord

        records, last = items.query_page(ProductRecord.by_brand, brand_id, limit, start)
        return [_product(r) for r in records], last

    def get_stock(self, location_id: str, sku: str) -> StockLevel | None:
        from chalicelib.db.records import StockRecord

        record = items.get(StockRecord, location_id, sku)
        return _stock(record) if record else None

    def set_on_hand(self, level: StockLevel, on_hand: int, now: float) -> StockLevel:
        """Count the shelf: set on_hand, never below what unpaid orders reserved."""
        from chalicelib.db.records import StockRecord

        actions = [StockRecord.on_hand.set(on_hand), StockRecord.version.add(1),
                   StockRecord.updated_at.set(now), StockRecord.location_type.set(level.location_type),
                   StockRecord.reserved.set(StockRecord.reserved | 0),
                   StockRecord.available.set(on_hand - (StockRecord.reserved | 0))]
        if level.dealer_id:
            actions.append(StockRecord.dealer_id.set(level.dealer_id))
        condition = StockRecord.reserved.does_not_exist() | (StockRecord.reserved <= on_hand)
        record = items.update(StockRecord, (level.location_id, level.sku), actions, condition,
                              StockBelowReserved(location_id=level.location_id, sku=level.sku))
        return _stock(record)

    def stock_levels(self, location_id: str, skus: list[str]) -> dict[str, int]:
        """{sku: available} at one location, for a page of SKUs (one BatchGetItem per 100)."""
        from chalicelib.db.binding import bind_records
        from chalicelib.db.records import StockRecord

        bind_records()
        levels = {}
        for first in range(0, len(skus), 100):
            keys = [(location_id, sku) for sku in skus[first:first + 100]]
            for record in StockRecord.batch_get(keys, consistent_read=False):
                levels[record.sku] = max(int(record.available or 0), 0)
        return levels

    def stock_at(self, location_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import StockRecord

        records, last = items.query_page(StockRecord, location_id, limit, start)
        return [_stock(r) for r in records], last


class _ConditionFailed(Exception):
    pass


def _product(r) -> Product:
    return Product(sku=r.sku, brand_id=r.brand_id, name=r.name, price_fen=int(r.price_fen),
                   cost_fen=int(r.cost_fen), category=r.category or "", status=r.status,
                   created_at=float(r.created_at),
                   commission_rates_bps=tuple(int(x) for x in r.commission_rates_bps)
                   if r.commission_rates_bps else None)


def _stock(r) -> StockLevel:
    return StockLevel(location_id=r.location_id, sku=r.sku, location_type=r.location_type,
                      on_hand=int(r.on_hand or 0), reserved=int(r.reserved or 0), dealer_id=r.dealer_id,
                      version=int(r.version or 0), updated_at=float(r.updated_at or 0))
