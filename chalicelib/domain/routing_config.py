"""The brand's routing configuration (domain rule 4, issue M11), as plain values: how the
``route-traffic`` job shares customers nobody owns among the nearest stores.

What the brand sets in its back office (``/v1/admin/brand/routing-settings``):

* ``service``: the service a routed customer's store must offer (``pickup``, ``repair``,
  ...), or null for any active store (the default: brand followers have not said what
  they need yet);
* ``tolerance_m`` and ``tolerance_ratio``: stores within max(tolerance_m, ratio × d) of
  the nearest one (at distance d) count as equally near and take turns
  (``routing.assign_store``); 500 m and 10 % by default;
* ``daily_cap_per_store``: at most this many routed customers per store per Beijing day
  (null: no cap), 500 by default; ``store_daily_caps`` overrides it per store (0: the
  store takes no routed customers);
* ``k``: how many nearest stores each customer's choice looks at (8 by default): enough
  to find an uncapped store beyond a capped neighbourhood, few enough to stay cheap.

And when a customer nobody could take is looked at again (``retry_at``): those whose
nearby stores are all at their cap, from the next Beijing day (fresh counts); those with
no suitable store within reach, a day later (stores open rarely).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from chalicelib.domain import routing
from chalicelib.domain.network import SERVICES
from chalicelib.errors import ValidationFailed

DEFAULT_TOLERANCE_M = 500.0
DEFAULT_TOLERANCE_RATIO = 0.1
DEFAULT_DAILY_CAP = 500
DEFAULT_K = 8
TOLERANCE_M_MAX = 10_000.0
CAP_MAX = 1_000_000
K_MAX = 20                      # each candidate costs the finder reads: keep a lookup small
STORE_CAPS_MAX = 1_000
NO_CANDIDATES_RETRY_S = 86_400  # nothing suitable in reach: look again in a day

SETTINGS_FIELDS = ("service", "tolerance_m", "tolerance_ratio", "daily_cap_per_store", "k", "store_daily_caps")


@dataclass(frozen=True)
class RoutingSettings:
    service: str | None = None
    tolerance_m: float = DEFAULT_TOLERANCE_M
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO
    daily_cap_per_store: int | None = DEFAULT_DAILY_CAP
    k: int = DEFAULT_K
    # store_id -> its own daily cap; read-only once made
    store_daily_caps: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "store_daily_caps", MappingProxyType(dict(self.store_daily_caps)))

    def to_json(self) -> dict:
        return {"service": self.service, "tolerance_m": self.tolerance_m, "tolerance_ratio": self.tolerance_ratio,
                "daily_cap_per_store": self.daily_cap_per_store, "k": self.k,
                "store_daily_caps": dict(sorted(self.store_daily_caps.items()))}


def _number(body: dict, name: str, low: float, high: float, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValidationFailed(f"'{name}' must be a number from {low:g} to {high:g}.", field=name)
    return float(value)


def _whole(body: dict, name: str, low: int, high: int, default, nullable: bool = False):
    value = body.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        null = " or null" if nullable else ""
        raise ValidationFailed(f"'{name}' must be a whole number from {low} to {high}{null}.", field=name)
    return value


def _store_caps(value: object) -> dict[str, int]:
    import re

    name = "store_daily_caps"
    store_id = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
    if not isinstance(value, dict) or len(value) > STORE_CAPS_MAX:
        raise ValidationFailed(f"'{name}' must be an object of at most {STORE_CAPS_MAX} store ids.", field=name)
    caps = {}
    for key, cap in value.items():
        if not store_id.match(key):
            raise ValidationFailed(f"'{name}' names a store id that is not 1 to 64 characters of [A-Za-z0-9_-].",
                                   field=name)
        caps[key] = _whole({key: cap}, key, 0, CAP_MAX, None)
    return caps


def check_settings(body: object) -> RoutingSettings:
    """The whole configuration (a setting left out takes its default), or a 400 naming
    the first field that is wrong."""
    if not isinstance(body, dict):
        raise ValidationFailed("The routing settings must be an object.")
    unknown = sorted(set(body) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationFailed(f"Unknown routing setting(s): {', '.join(unknown)}.", field=unknown[0])
    service = body.get("service")
    if service is not None and service not in SERVICES:
        raise ValidationFailed(f"'service' must be one of {', '.join(SERVICES)}, or null for any store.",
                               field="service")
    return RoutingSettings(
        service=service,
        tolerance_m=_number(body, "tolerance_m", 0, TOLERANCE_M_MAX, DEFAULT_TOLERANCE_M),
        tolerance_ratio=_number(body, "tolerance_ratio", 0, 1, DEFAULT_TOLERANCE_RATIO),
        daily_cap_per_store=_whole(body, "daily_cap_per_store", 1, CAP_MAX, DEFAULT_DAILY_CAP, nullable=True),
        k=_whole(body, "k", 1, K_MAX, DEFAULT_K),
        store_daily_caps=_store_caps(body.get("store_daily_caps", {})))


def retry_at(reason: str, now: float) -> float:
    """When a customer nobody could take (``routing.ALL_CAPPED`` or ``NO_CANDIDATES``) is
    due again: the next Beijing midnight for caps (the counts start again), a day later
    when nothing suitable is in reach."""
    if reason == routing.ALL_CAPPED:
        local = now + routing.BEIJING_OFFSET_S
        return (math.floor(local / 86400) + 1) * 86400 - routing.BEIJING_OFFSET_S
    return now + NO_CANDIDATES_RETRY_S
