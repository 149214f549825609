"""The brand's commission configuration (domain rule 7, issue M8 item 4), as plain values.

What the brand sets in its back office:

* ``depth``: how many promoter levels earn a commission, 1 to 3 (1 by default: "no
  cross-level commission" keeps a brand clear of pyramid-selling law);
* rates in basis points, level 1 (the direct promoter) first: a default for every
  product, one per category, and (stored on the product) one per product; the most
  specific wins: product, then category, then default;
* ``after_sale_days``: how long after an order completes a return may still come, so
  a commission is earned only once it closes (7 by default);
* ``self_purchase_commission``: whether a promoter earns on their own purchases (no by
  default);
* ``promoter_binding_rule``: which share code binds a friend (M6; FIRST_TOUCH by default).

Whether a configuration can be paid out of each product's price and under the dealers'
split caps is ``chalicelib.domain.splits.check_commission_configuration``; the use
cases (``chalicelib.services.commission_config``) hold every product to it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from chalicelib.domain.attribution import PROMOTER_FIRST_TOUCH, PROMOTER_RULES
from chalicelib.domain.splits import BPS, DEFAULT_DEPTH, MAX_LEVELS
from chalicelib.errors import ValidationFailed

DEFAULT_AFTER_SALE_DAYS = 7
AFTER_SALE_DAYS_MIN, AFTER_SALE_DAYS_MAX = 1, 30
CATEGORY_MAX_CHARS = 50        # as a product's category (chalicelib/api/admin/catalogue.py)
CATEGORIES_MAX = 200

SETTINGS_FIELDS = ("depth", "default_rates_bps", "category_rates_bps", "after_sale_days",
                   "self_purchase_commission", "promoter_binding_rule")

__all__ = ["CommissionSettings", "check_settings", "check_rates", "check_max_ratio", "effective_rates"]


@dataclass(frozen=True)
class CommissionSettings:
    depth: int = DEFAULT_DEPTH
    default_rates_bps: tuple[int, ...] = (0,)
    # category -> rates; read-only once made (a frozen value should not change underneath)
    category_rates_bps: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    after_sale_days: int = DEFAULT_AFTER_SALE_DAYS
    self_purchase_commission: bool = False
    promoter_binding_rule: str = PROMOTER_FIRST_TOUCH

    def __post_init__(self):
        object.__setattr__(self, "default_rates_bps", tuple(self.default_rates_bps))
        object.__setattr__(self, "category_rates_bps", MappingProxyType(
            {category: tuple(rates) for category, rates in dict(self.category_rates_bps).items()}))

    def to_json(self) -> dict:
        return {"depth": self.depth, "default_rates_bps": list(self.default_rates_bps),
                "category_rates_bps": {c: list(r) for c, r in sorted(self.category_rates_bps.items())},
                "after_sale_days": self.after_sale_days,
                "self_purchase_commission": self.self_purchase_commission,
                "promoter_binding_rule": self.promoter_binding_rule}


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_rates(value: object, field: str = "rates_bps") -> tuple[int, ...]:
    """1 to 3 rates, level 1 first, each a whole number of basis points from 0 to 10000."""
    if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_LEVELS
            or not all(_whole(rate) and 0 <= rate <= BPS for rate in value)):
        raise ValidationFailed(
            f"'{field}' must list 1 to {MAX_LEVELS} rates, level 1 first, each a whole number of basis "
            f"points from 0 to {BPS}.", field=field)
    return tuple(value)


def check_max_ratio(value: object, field: str = "max_ratio_bps") -> int:
    """A sub-merchant's split cap as WeChat reports it: 0 to 10000 basis points."""
    if not _whole(value) or not 0 <= value <= BPS:
        raise ValidationFailed(f"'{field}' must be a whole number of basis points from 0 to {BPS}.", field=field)
    return value


def _integer(body: dict, name: str, minimum: int, maximum: int, default: int) -> int:
    value = body.get(name, default)
    if not _whole(value) or not minimum <= value <= maximum:
        raise ValidationFailed(f"'{name}' must be a whole number from {minimum} to {maximum}.", field=name)
    return value


def _categories(value: object) -> dict[str, tuple[int, ...]]:
    name = "category_rates_bps"
    if not isinstance(value, dict) or len(value) > CATEGORIES_MAX:
        raise ValidationFailed(f"'{name}' must be an object of at most {CATEGORIES_MAX} categories.", field=name)
    rates = {}
    for category, category_rates in value.items():
        if (not isinstance(category, str) or not 1 <= len(category) <= CATEGORY_MAX_CHARS
                or category != category.strip() or not category.isprintable()):
            raise ValidationFailed(f"'{name}' names a category that is not 1 to {CATEGORY_MAX_CHARS} printable "
                                   f"characters without surrounding spaces.", field=name)
        rates[category] = check_rates(category_rates, f"{name}.{category}")
    return rates


def check_settings(body: object) -> CommissionSettings:
    """The whole configuration (a setting left out takes its default), or a 400 naming
    the first field that is wrong."""
    if not isinstance(body, dict):
        raise ValidationFailed("The commission settings must be an object.")
    unknown = sorted(set(body) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationFailed(f"Unknown commission setting(s): {', '.join(unknown)}.", field=unknown[0])
    self_purchase = body.get("self_purchase_commission", False)
    if not isinstance(self_purchase, bool):
        raise ValidationFailed("'self_purchase_commission' must be true or false.", field="self_purchase_commission")
    rule = body.get("promoter_binding_rule", PROMOTER_FIRST_TOUCH)
    if rule not in PROMOTER_RULES:
        raise ValidationFailed(f"'promoter_binding_rule' must be one of {', '.join(PROMOTER_RULES)}.",
                               field="promoter_binding_rule")
    return CommissionSettings(
        depth=_integer(body, "depth", 1, MAX_LEVELS, DEFAULT_DEPTH),
        default_rates_bps=check_rates(body.get("default_rates_bps", [0]), "default_rates_bps"),
        category_rates_bps=_categories(body.get("category_rates_bps", {})),
        after_sale_days=_integer(body, "after_sale_days", AFTER_SALE_DAYS_MIN, AFTER_SALE_DAYS_MAX,
                                 DEFAULT_AFTER_SALE_DAYS),
        self_purchase_commission=self_purchase,
        promoter_binding_rule=rule)


def effective_rates(settings: CommissionSettings, category: str,
                    product_rates_bps: tuple[int, ...] | None) -> tuple[int, ...]:
    """The rates a product earns, one per level up to ``settings.depth``: its own, else
    its category's, else the default; levels beyond the depth are dropped, levels the
    chosen rates do not name earn 0."""
    if product_rates_bps:
        chosen = tuple(product_rates_bps)
    else:
        chosen = settings.category_rates_bps.get(category or "", settings.default_rates_bps)
    levels = tuple(chosen[:settings.depth])
    return levels + (0,) * (settings.depth - len(levels))
