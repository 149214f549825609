"""The dealer network: dealers, their stores and staff, as the back office sees them."""
from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field

from chalicelib.domain.splits import DEFAULT_MAX_RATIO_BPS
from chalicelib.errors import ValidationFailed

# Store and staff statuses
ACTIVE = "ACTIVE"            # listed, routed to, can sell
DEACTIVATED = "DEACTIVATED"  # never listed to customers, never routed to
STATUSES = (ACTIVE, DEACTIVATED)

# What a store may offer (the nearest-store search filters on these)
SERVICES = ("pickup", "delivery_3h", "repair", "installation", "trial")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_PER_DAY = 4
SUB_MCHID = re.compile(r"^\d{8,12}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
STAFF_ROLES = ("GUIDE", "MANAGER")


def new_id(prefix: str) -> str:
    """prefix + 16 URL-safe random characters: opaque, 6-32 chars, WeChat-safe."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def check_sub_mchid(value: str) -> str:
    if not SUB_MCHID.match(value):
        raise ValidationFailed("'sub_mchid' must be the 8 to 12 digit WeChat Pay sub-merchant id.",
                               field="sub_mchid")
    return value


def check_services(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValidationFailed("'services' must be a list of strings.", field="services")
    unknown = sorted(set(value) - set(SERVICES))
    if unknown:
        raise ValidationFailed(f"Unknown service(s): {', '.join(unknown)}; known: {', '.join(SERVICES)}.",
                               field="services")
    return sorted(set(value))


def check_opening_hours(value: object) -> dict[str, list[list[str]]]:
    """{"mon": [["09:00", "21:00"]], ...} in Beijing time; a day left out is closed."""
    if not isinstance(value, dict):
        raise ValidationFailed("'opening_hours' must be an object of weekdays.", field="opening_hours")
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValidationFailed(f"Unknown weekday(s): {', '.join(unknown)}; use {', '.join(WEEKDAYS)}.",
                               field="opening_hours")
    hours: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        intervals = value.get(day)
        if intervals is None:
            continue
        if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS_PER_DAY:
            raise ValidationFailed(
                f"'opening_hours.{day}' must be a list of at most {MAX_INTERVALS_PER_DAY} [open, close] pairs.",
                field="opening_hours")
        previous_close = ""
        for interval in intervals:
            if (not isinstance(interval, list) or len(interval) != 2
                    or not all(isinstance(t, str) and _HHMM.match(t) for t in interval)):
                raise ValidationFailed(f"'opening_hours.{day}' needs pairs like [\"09:00\", \"21:00\"].",
                                       field="opening_hours")
            opens, closes = interval
            if not opens < closes or opens < previous_close or opens == "24:00":
                raise ValidationFailed(
                    f"'opening_hours.{day}' intervals must open before they close, in order, without overlap.",
                    field="opening_hours")
            previous_close = closes
        if intervals:
            hours[day] = [list(i) for i in intervals]
    return hours


@dataclass
class Dealer:
    dealer_id: str
    brand_id: str
    name: str
    sub_mchid: str
    status: str = ACTIVE
    created_at: float = 0.0
    brand_access: str = "NONE"    # what the brand sees of its customers (domain/sharing.py)
    # The split cap the sub-merchant granted at WeChat, in bps (domain/splits.py)
    max_ratio_bps: int = DEFAULT_MAX_RATIO_BPS

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Store:
    store_id: str
    dealer_id: str
    brand_id: str
    name: str
    city: str
    lat: float
    lng: float
    address: str = ""
    services: list[str] = field(default_factory=list)
    opening_hours: dict = field(default_factory=dict)
    status: str = ACTIVE
    created_at: float = 0.0
    sub_mchid: str | None = None   # the owning dealer's, copied for the order path
    # Service quality 0-100, set by the brand: ranks equally near stores (higher first)
    service_score: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class StaffMember:
    staff_id: str
    store_id: str
    dealer_id: str
    name: str
    role: str = "GUIDE"
    status: str = ACTIVE
    created_at: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)
