"""How a paid order reaches its customer, and when it counts as received."""
from __future__ import annotations

from chalicelib.domain.orders import STORE_DELIVERY, STORE_PICKUP, WAREHOUSE
from chalicelib.errors import BusinessRuleViolated, ValidationFailed

# WeChat's logistics types for upload_shipping_info
EXPRESS, SAME_CITY, BUYER_PICKUP = 1, 2, 4
AUTO_RECEIPT_DAYS = 10      # after shipping, an order completes by itself (configurable)
CARRIER_MAX, TRACKING_MAX = 50, 64


class WrongFulfilment(BusinessRuleViolated):
    code = "WRONG_FULFILLMENT_TYPE"
    default_message = "This step does not fit how the order is fulfilled."


def logistics_type(fulfillment_type: str) -> int:
    return {WAREHOUSE: EXPRESS, STORE_DELIVERY: SAME_CITY, STORE_PICKUP: BUYER_PICKUP}[fulfillment_type]


def check_ship(fulfillment_type: str) -> None:
    if fulfillment_type not in (WAREHOUSE, STORE_DELIVERY):
        raise WrongFulfilment("A pick-up order is made ready for pick-up, not shipped.")


def check_pickup(fulfillment_type: str) -> None:
    if fulfillment_type != STORE_PICKUP:
        raise WrongFulfilment("Only a pick-up order is made ready for or handed over at the store.")


def check_confirm_receipt(fulfillment_type: str) -> None:
    if fulfillment_type == STORE_PICKUP:
        raise WrongFulfilment("A pick-up order completes when the store hands it over.")


def check_tracking(carrier: object, tracking_no: object) -> tuple[str, str]:
    for name, value, limit in (("carrier", carrier, CARRIER_MAX), ("tracking_no", tracking_no, TRACKING_MAX)):
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit or not value.isprintable():
            raise ValidationFailed(f"'{name}' must be 1 to {limit} printable characters.", field=name)
    return carrier.strip(), tracking_no.strip()
