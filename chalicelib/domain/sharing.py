"""What a dealer lets the brand see of its customers (domain rule 3).

Customers are the dealer's asset. Each dealer sets one switch, and only the dealer
may change it; every change is recorded:

    NONE             the brand sees nothing of the dealer's customers (the default)
    AGGREGATES_ONLY  the brand sees counts (the funnel), never a customer
    FULL             the brand also lists and reads the dealer's customers

Whatever the switch, lists and exports mask phone numbers and openids.
"""
from __future__ import annotations

from chalicelib.errors import Forbidden, ValidationFailed

NONE, AGGREGATES_ONLY, FULL = "NONE", "AGGREGATES_ONLY", "FULL"
LEVELS = (NONE, AGGREGATES_ONLY, FULL)
DEFAULT = NONE


class NotShared(Forbidden):
    code = "NOT_SHARED_BY_DEALER"
    default_message = "The dealer does not share this with the brand."


def check_level(value: object) -> str:
    if value not in LEVELS:
        raise ValidationFailed(f"'brand_access' must be one of {', '.join(LEVELS)}.", field="brand_access")
    return value


def brand_sees_aggregates(level: str | None) -> bool:
    return (level or DEFAULT) in (AGGREGATES_ONLY, FULL)


def brand_sees_customers(level: str | None) -> bool:
    return (level or DEFAULT) == FULL


def mask_openid(openid: str | None) -> str | None:
    """Enough to tell two customers apart on a screen, never enough to address them."""
    if not openid:
        return None
    if len(openid) <= 6:
        return openid[:1] + "***"
    return f"{openid[:3]}***{openid[-2:]}"


def mask_phone(phone: str | None) -> str | None:
    """138****5678: the mainland convention (first three, last four)."""
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]       # +86: the mainland's country code
    if len(digits) < 7:
        return "***"
    return f"{digits[:3]}****{digits[-4:]}"
