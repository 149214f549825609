"""Back-office use cases for the brand's commission configuration (M8 item 4).

Only the brand configures commissions (dealer and store tokens: 403). Every change of
the settings or of a product's own rates is held, before it is stored, to rule 7 for
every product it touches (``chalicelib.domain.splits.check_commission_configuration``):
cost plus all levels of commission within the price, all levels within the smallest
split cap among the brand's dealers. A dealer's split cap is different: it is a fact
WeChat reports, recorded even when it breaks the configuration, and answered with a
warning for each SKU whose commissions no longer fit (the split planner then cuts them).

The split planner reads the configuration through ``settings_for_brand`` and
``rates_for_product``.
"""
from __future__ import annotations

from dataclasses import replace

from chalicelib.domain import tenancy
from chalicelib.domain.catalogue import Product
from chalicelib.domain.commission_config import (
    CommissionSettings,
    check_max_ratio,
    check_rates,
    check_settings,
    effective_rates,
)
from chalicelib.domain.tenancy import BRAND
from chalicelib.errors import BusinessRuleViolated


# --- for the split planner ---------------------------------------------------

def settings_for_brand(brand_id: str, *, commission_config) -> CommissionSettings:
    """The brand's commission settings (the defaults when it never set any)."""
    return commission_config.get_settings(brand_id)


def rates_for_product(settings: CommissionSettings, product) -> tuple[int, ...]:
    """A product's rates, one per level up to the depth: its own, else its category's,
    else the default. ``product``: a domain ``Product`` or a ``ProductRecord``."""
    own = getattr(product, "commission_rates_bps", None)
    return effective_rates(settings, getattr(product, "category", "") or "",
                           tuple(int(rate) for rate in own) if own else None)


# --- the back office ---------------------------------------------------------

def read_settings(principal, *, commission_config) -> CommissionSettings:
    tenancy.require_role(principal, BRAND, action="read the commission configuration")
    return commission_config.get_settings(principal.tenant_id)


def update_settings(principal, body: dict, *, commission_config) -> CommissionSettings:
    """Replace the whole configuration (a setting left out takes its default), once every
    product of the brand passes rule 7 with it; the 422 names the first that does not."""
    tenancy.require_role(principal, BRAND, action="configure commissions")
    settings = check_settings(body)
    brand_id = principal.tenant_id
    _, version = commission_config.settings_and_version(brand_id)
    cap = commission_config.smallest_max_ratio(brand_id)
    for product in commission_config.products_of_brand(brand_id):
        _check_product(product, rates_for_product(settings, product), cap)
    _check_unused_rates(settings, cap)
    commission_config.put_settings(brand_id, settings, expected_version=version)
    return settings


def set_product_rates(principal, sku: str, rates_bps, *, commission_config, catalogue) -> Product:
    """Give a product its own rates (``None``: back to its category's or the default)."""
    tenancy.require_role(principal, BRAND, action="set commission rates")
    rates = None if rates_bps is None else check_rates(rates_bps)
    brand_id = principal.tenant_id
    product = catalogue.get_product(sku)
    tenancy.visible(product, product is not None and product.brand_id == brand_id, "product", sku)
    settings, version = commission_config.settings_and_version(brand_id)
    changed = replace(product, commission_rates_bps=rates)
    _check_product(changed, rates_for_product(settings, changed), commission_config.smallest_max_ratio(brand_id))
    return commission_config.set_product_rates(brand_id, sku, rates, expected_version=version)


def set_dealer_max_ratio(principal, dealer_id: str, max_ratio_bps, *, commission_config, network) -> dict:
    """Record the split cap a dealer granted at WeChat; always stored (it is a fact), with
    a warning for each SKU whose commissions it leaves without room."""
    from chalicelib.services.network_admin import read_dealer

    tenancy.require_role(principal, BRAND, action="record a dealer's split cap")
    bps = check_max_ratio(max_ratio_bps)
    read_dealer(principal, dealer_id, network=network)      # 404 outside the brand
    dealer = network.update_dealer(dealer_id, {"max_ratio_bps": bps})
    # The dealers' index may not show this write yet: the new cap is taken as recorded.
    cap = min({**commission_config.max_ratios(dealer.brand_id), dealer_id: bps}.values())
    settings = commission_config.get_settings(dealer.brand_id)
    warnings = []
    for product in commission_config.products_of_brand(dealer.brand_id):
        rates = rates_for_product(settings, product)
        try:
            _check_product(product, rates, cap)
        except BusinessRuleViolated as refused:
            warnings.append({"sku": product.sku, "code": refused.code, "message": refused.message,
                             "rates_bps": list(rates)})
    return {"dealer": dealer.to_json(), "smallest_max_ratio_bps": cap, "warnings": warnings}


def check_product_commissions(product: Product, *, commission_config) -> None:
    """Rule 7 for a product about to be created or repriced: its cost plus its commissions
    (as the brand's settings give them) stay within its price, and within every dealer's cap."""
    settings = commission_config.get_settings(product.brand_id)
    _check_product(product, rates_for_product(settings, product), commission_config.smallest_max_ratio(product.brand_id))


# --- rule 7 ------------------------------------------------------------------

def _check_product(product: Product, rates: tuple[int, ...], smallest_max_ratio_bps: int) -> None:
    """Rule 7 for one product, its refusal naming the SKU."""
    from chalicelib.domain.splits import check_commission_configuration

    try:
        check_commission_configuration(product.price_fen, product.cost_fen, rates, smallest_max_ratio_bps)
    except BusinessRuleViolated as refused:
        refused.message = f"{product.sku}: {refused.message}"
        refused.args = (refused.message,)
        refused.details = {"sku": product.sku, **refused.details}
        raise


def _check_unused_rates(settings: CommissionSettings, smallest_max_ratio_bps: int) -> None:
    """The default and every category's rates fit under the cap even when no product uses
    them yet: a product added later takes them. (Against a price of 0 only the cap applies.)"""
    from chalicelib.domain.splits import check_commission_configuration

    configured = {"default_rates_bps": settings.default_rates_bps,
                  **{f"category_rates_bps.{c}": r for c, r in sorted(settings.category_rates_bps.items())}}
    for field, rates in configured.items():
        try:
            check_commission_configuration(0, 0, rates[:settings.depth], smallest_max_ratio_bps)
        except BusinessRuleViolated as refused:
            refused.details = {"field": field, **refused.details}
            raise
