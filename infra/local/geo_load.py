"""Load many stores into the geo index at once, with batch writes (benchmarks and tests
that need tens of thousands of stores; a store written through the back office goes
through ``NetworkRepository`` instead, one transaction per store).

Only the ``store_geo`` table is written (index entries and density counts), with the
same keys ``NetworkRepository`` writes; the stores table is left alone.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterable

from chalicelib.domain.routing import Candidate
from chalicelib.domain.store_geo import index_entries


def geo_items(stores: Iterable[Candidate]) -> tuple[list[dict], Counter]:
    """The raw DynamoDB items of the index and the density counts they add up to."""
    items, counts = [], Counter()
    for store in stores:
        for entry in index_entries(store.store_id, store.lat, store.lng, store.services, store.status == "ACTIVE"):
            item = {"geo_key": {"S": entry.partition}, "spot": {"S": entry.sort},
                    "store_id": {"S": store.store_id}, "lat": {"N": repr(store.lat)}, "lng": {"N": repr(store.lng)}}
            if store.dealer_id:
                item["dealer_id"] = {"S": store.dealer_id}
            if store.name:
                item["name"] = {"S": store.name}
            if store.services:
                item["services"] = {"SS": sorted(store.services)}
            if store.opening_hours:
                item["opening_hours"] = {"S": json.dumps(store.opening_hours, separators=(",", ":"))}
            if store.score:
                item["service_score"] = {"N": repr(store.score)}
            items.append(item)
            counts[(entry.service, entry.count_cell)] += 1
    return items, counts


def load_stores(stores: Iterable[Candidate], client, table: str) -> int:
    """Write the stores' index entries and set the density counts; returns items written."""
    from chalicelib.db.store_geo import density_key

    items, counts = geo_items(stores)
    items += [{"geo_key": {"S": density_key(service)}, "spot": {"S": cell}, "stores": {"N": str(n)}}
              for (service, cell), n in counts.items()]
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        while requests:
            answer = client.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])
    return len(items)
