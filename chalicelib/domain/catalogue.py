"""The brand's catalogue: one national price per SKU, and what the brand is owed."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from chalicelib.errors import BusinessRuleViolated, ValidationFailed

SKU = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# ¥1,000,000.00: far above any SKU, far below integer trouble
MAX_PRICE_FEN = 100_000_000
MAX_STOCK_UNITS = 1_000_000

# Stock locations
WAREHOUSE = "WAREHOUSE"
STORE = "STORE"
CLOUD_WAREHOUSE_ID = "warehouse:cloud"


class CostAbovePrice(BusinessRuleViolated):
    code = "COST_ABOVE_PRICE"
    default_message = "A product's cost may never be above its price."


class StockBelowReserved(BusinessRuleViolated):
    code = "STOCK_BELOW_RESERVED"
    default_message = "Stock on hand cannot go below what unpaid orders have reserved."


def check_sku(value: object) -> str:
    if not isinstance(value, str) or not SKU.fullmatch(value):
        raise ValidationFailed("'sku' must be 1 to 32 characters of [A-Za-z0-9_-].", field="sku")
    return value


def check_price_and_cost(price_fen: int, cost_fen: int) -> None:
    """The rule both creation and every change must keep (the write re-checks it atomically)."""
    if cost_fen > price_fen:
        raise CostAbovePrice(price_fen=price_fen, cost_fen=cost_fen)


def store_location(store_id: str) -> str:
    return f"store:{store_id}"


def parse_location(location_id: str) -> tuple[str, str | None]:
    """'warehouse:cloud' -> (WAREHOUSE, None); 'store:<id>' -> (STORE, id)."""
    if location_id == CLOUD_WAREHOUSE_ID:
        return WAREHOUSE, None
    if location_id.startswith("store:") and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", location_id[6:]):
        return STORE, location_id[6:]
    raise ValidationFailed("A location is 'warehouse:cloud' or 'store:<store_id>'.", field="location_id")


@dataclass
class Product:
    sku: str
    brand_id: str
    name: str
    price_fen: int
    cost_fen: int
    category: str = ""
    status: str = "ACTIVE"
    created_at: float = 0.0
    # Its own commission rates in bps, level 1 first (domain/commission_config.py); None: none
    commission_rates_bps: tuple[int, ...] | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        if self.commission_rates_bps is not None:
            out["commission_rates_bps"] = list(self.commission_rates_bps)
        return out


@dataclass
class StockLevel:
    location_id: str
    sku: str
    location_type: str
    on_hand: int
    reserved: int
    dealer_id: str | None = None
    version: int = 0
    updated_at: float = 0.0

    @property
    def available(self) -> int:
        return max(self.on_hand - self.reserved, 0)

    def to_json(self) -> dict:
        return {**asdict(self), "available": self.available}
