"""A store's (or a dealer's) customers, newest first: the store group lists."""
from __future__ import annotations

from chalicelib.db import items


class CustomerGroupRepository:
    def of_store(self, store_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import CustomerRecord

        return items.query_page(CustomerRecord.by_owning_store, store_id, limit, start, newest_first=True)

    def of_dealer(self, dealer_id: str, limit: int, start: dict | None):
        from chalicelib.db.records import CustomerRecord

        return items.query_page(CustomerRecord.by_owning_dealer, dealer_id, limit, start, newest_first=True)

    def customer(self, customer_id: str):
        from chalicelib.db.records import CustomerRecord

        return items.get(CustomerRecord, customer_id)
