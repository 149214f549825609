"""Orders: one national price, the contract's state machine, and order lines.

Prices come from the catalogue on the server, never from the request; totals are
sums of integer fen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from chalicelib.errors import BusinessRuleViolated, Conflict, ValidationFailed

# Order statuses (the contract's words)
PENDING_PAYMENT = "PENDING_PAYMENT"  # stock reserved, waiting for the customer to pay
PAID = "PAID"                        # the provider confirmed the payment
FULFILLING = "FULFILLING"            # shipped, or ready for pick-up
COMPLETED = "COMPLETED"              # received or picked up (or confirmed automatically)
CLOSED = "CLOSED"                    # never paid: cancelled or expired; stock released
REFUNDED = "REFUNDED"                # paid, then refunded in full

# The contract's table of allowed moves; anything else is refused and recorded.
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({PAID, CLOSED}),
    PAID: frozenset({FULFILLING, REFUNDED}),
    FULFILLING: frozenset({COMPLETED, REFUNDED}),
    COMPLETED: frozenset({REFUNDED}),
    CLOSED: frozenset(),
    REFUNDED: frozenset(),
}

# Fulfilment types
WAREHOUSE = "warehouse"
STORE_PICKUP = "store_pickup"
STORE_DELIVERY = "store_delivery"
FULFILLMENT_TYPES = (WAREHOUSE, STORE_PICKUP, STORE_DELIVERY)

MAX_LINES = 50
MAX_QUANTITY_PER_LINE = 99
PAYMENT_WINDOW_S = 15 * 60


class TransitionRefused(Conflict):
    code = "INVALID_STATE_TRANSITION"
    default_message = "The order cannot move to that status from where it is."


class OutOfStock(BusinessRuleViolated):
    code = "OUT_OF_STOCK"
    default_message = "Not enough stock for this order."


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED_MOVES.get(current, frozenset())


def check_move(current: str, target: str) -> None:
    if not can_move(current, target):
        raise TransitionRefused(f"An order that is {current} cannot become {target}.",
                                current=current, target=target)


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int


@dataclass
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price_fen: int
    line_total_fen: int
    ship_from: str          # stock location: warehouse:cloud or store:<id>

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Amounts:
    subtotal_fen: int
    discount_fen: int
    payable_fen: int

    def to_json(self) -> dict:
        return asdict(self)


def price_lines(requested: list[RequestedLine], products: dict, ship_from: str) -> tuple[list[OrderLine], Amounts]:
    """The national price of each line and the order's totals (no discounts yet)."""
    lines = []
    for line in requested:
        product = products.get(line.sku)
        if product is None or product.status != "ACTIVE":
            raise ValidationFailed(f"Unknown SKU {line.sku}.", field="lines", sku=line.sku)
        lines.append(OrderLine(sku=line.sku, name=product.name, quantity=line.quantity,
                               unit_price_fen=product.price_fen,
                               line_total_fen=product.price_fen * line.quantity, ship_from=ship_from))
    subtotal = sum(l.line_total_fen for l in lines)
    return lines, Amounts(subtotal_fen=subtotal, discount_fen=0, payable_fen=subtotal)


def merge_lines(requested: list[RequestedLine]) -> list[RequestedLine]:
    """Two lines of one SKU are one line: a stock reservation names each item once."""
    totals: dict[str, int] = {}
    for line in requested:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    merged = [RequestedLine(sku, quantity) for sku, quantity in totals.items()]
    for line in merged:
        if line.quantity > MAX_QUANTITY_PER_LINE:
            raise ValidationFailed(f"At most {MAX_QUANTITY_PER_LINE} of one SKU per order.", field="lines",
                                   sku=line.sku)
    return merged


@dataclass
class Order:
    order_id: str
    customer_id: str
    store_id: str
    dealer_id: str
    sub_mchid: str
    status: str
    lines: list[OrderLine]
    amounts: Amounts
    fulfillment: dict
    created_at: float
    expires_at: float
    paid_at: float | None = None
    transaction_id: str | None = None
    refunded_fen: int = 0
    prepay_id: str | None = None
    shipping: dict | None = None
    shipped_at: float | None = None
    completed_at: float | None = None
    extra: dict = field(default_factory=dict)
