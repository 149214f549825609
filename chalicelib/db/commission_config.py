"""The brand's commission configuration: its settings (on the brand's item), each
product's own rates (on the product) and each dealer's split cap (on the dealer).

Settings and product rates share the brand's ``commission_version``: every write of
either is conditional on the version its check read and adds one, so a change checked
against a configuration that has moved on meanwhile is refused (409), never combined.
"""
from __future__ import annotations

from collections.abc import Iterator

from chalicelib.db import items
from chalicelib.db.catalogue import CatalogueRepository
from chalicelib.domain.catalogue import Product
from chalicelib.domain.commission_config import CommissionSettings, check_settings
from chalicelib.domain.splits import DEFAULT_MAX_RATIO_BPS
from chalicelib.errors import Conflict, NotFound

PAGE = 100


class _ConditionFailed(Exception):
    pass


def _changed_meanwhile() -> Conflict:
    return Conflict("The commission configuration changed meanwhile; reload and try again.")


class CommissionConfigRepository:
    def __init__(self, catalogue: CatalogueRepository | None = None):
        self._catalogue = catalogue or CatalogueRepository()

    # --- the brand's settings
    def get_settings(self, brand_id: str) -> CommissionSettings:
        """The brand's settings; the defaults when it never set any (or is unknown)."""
        return self.settings_and_version(brand_id)[0]

    def settings_and_version(self, brand_id: str) -> tuple[CommissionSettings, int]:
        from chalicelib.db.records import BrandRecord

        record = items.get(BrandRecord, brand_id)
        if record is None or record.commission_settings is None:
            return CommissionSettings(), int(record.commission_version or 0) if record else 0
        return check_settings(record.commission_settings), int(record.commission_version or 0)

    def stored_binding_rule(self, brand_id: str) -> str | None:
        """The promoter binding rule the brand chose, or None when it never set one."""
        from chalicelib.db.records import BrandRecord

        record = items.get(BrandRecord, brand_id)
        if record is None or not record.commission_settings:
            return None
        return record.commission_settings.get("promoter_binding_rule")

    def put_settings(self, brand_id: str, settings: CommissionSettings, expected_version: int | None = None) -> int:
        """Store the settings (only over ``expected_version`` when given); the new version."""
        from chalicelib.db.records import BrandRecord

        condition = BrandRecord.brand_id.exists()
        if expected_version is not None:
            condition &= _version_is(BrandRecord, expected_version)
        actions = [BrandRecord.commission_settings.set(settings.to_json()),
                   BrandRecord.commission_version.add(1)]
        try:
            record = items.update(BrandRecord, (brand_id,), actions, condition, _ConditionFailed())
        except _ConditionFailed:
            if items.get(BrandRecord, brand_id) is None:
                raise NotFound(f"No brand {brand_id}.", brand_id=brand_id) from None
            raise _changed_meanwhile() from None
        return int(record.commission_version)

    # --- a product's own rates
    def get_product_rates(self, sku: str) -> tuple[int, ...] | None:
        product = self._catalogue.get_product(sku)
        return product.commission_rates_bps if product else None

    def set_product_rates(self, brand_id: str, sku: str, rates_bps: tuple[int, ...] | None,
                          expected_version: int) -> Product:
        """Set (or, with None, remove) a product's own rates and move the brand's version
        on, in one transaction, only if the version is still ``expected_version``."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        from chalicelib.db.binding import transaction_connection
        from chalicelib.db.records import BrandRecord, ProductRecord

        rates = (ProductRecord.commission_rates_bps.set(list(rates_bps)) if rates_bps is not None
                 else ProductRecord.commission_rates_bps.remove())
        try:
            with TransactWrite(connection=transaction_connection()) as tx:
                tx.update(ProductRecord(sku), actions=[rates],
                          condition=ProductRecord.sku.exists() & (ProductRecord.brand_id == brand_id))
                tx.update(BrandRecord(brand_id),
                          actions=[BrandRecord.commission_version.add(1)],
                          condition=BrandRecord.brand_id.exists() & _version_is(BrandRecord, expected_version))
        except TransactWriteError as exc:
            if items.is_condition_failure(exc):
                raise _changed_meanwhile() from exc
            raise
        return self._catalogue.get_product(sku)

    def products_of_brand(self, brand_id: str) -> Iterator[Product]:
        """Every product of the brand (any status), page by page from ``products.by_brand``."""
        start = None
        while True:
            products, start = self._catalogue.products_of_brand(brand_id, PAGE, start)
            yield from products
            if not start:
                return

    # --- the dealers' split caps
    def max_ratios(self, brand_id: str) -> dict[str, int]:
        """{dealer_id: max_ratio_bps} of every dealer of the brand (``dealers.by_brand``, paged)."""
        from chalicelib.db.records import DealerRecord

        ratios: dict[str, int] = {}
        start = None
        while True:
            records, start = items.query_page(DealerRecord.by_brand, brand_id, PAGE, start)
            for r in records:
                ratios[r.dealer_id] = DEFAULT_MAX_RATIO_BPS if r.max_ratio_bps is None else int(r.max_ratio_bps)
            if not start:
                return ratios

    def smallest_max_ratio(self, brand_id: str) -> int:
        """The smallest split cap among the brand's dealers (WeChat's default when it has none)."""
        return min(self.max_ratios(brand_id).values(), default=DEFAULT_MAX_RATIO_BPS)


def _version_is(record_cls, version: int):
    if version == 0:
        return record_cls.commission_version.does_not_exist() | (record_cls.commission_version == 0)
    return record_cls.commission_version == version
