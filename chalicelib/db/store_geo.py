"""Reading the geo index of stores (table ``store_geo``; keys in
chalicelib/domain/store_geo.py). Writing it is the store repository's job, in the same
transaction as the store (chalicelib/db/network.py).

Reads go through the table connection's raw Query (not model iteration): a lookup reads
tens of small items, and the raw answer also says what it cost (ConsumedCapacity), which
``ReadMeter`` adds up for the benchmark and the logs.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from chalicelib.domain.routing import Candidate
from chalicelib.domain.store_geo import Density, RangeRead

DENSITY_PREFIX = "density#"
# How long a process trusts its density counts: a stale map changes a search's cost,
# never its answer, so minutes are fine
DENSITY_TTL_S = 300.0


@dataclass
class ReadMeter:
    queries: int = 0
    read_units: float = 0.0
    items: int = 0


def density_key(service: str) -> str:
    return f"{DENSITY_PREFIX}{service}"


def candidate_from_item(item: dict) -> Candidate:
    """An index item, as DynamoDB returns it, as the search sees it."""
    import json

    hours = item.get("opening_hours", {}).get("S")
    score = item.get("service_score", {}).get("N")
    return Candidate(store_id=item["store_id"]["S"], lat=float(item["lat"]["N"]), lng=float(item["lng"]["N"]),
                     services=frozenset(item.get("services", {}).get("SS", ())),
                     opening_hours=json.loads(hours) if hours else {},
                     score=float(score) if score else 0.0, dealer_id=item.get("dealer_id", {}).get("S", ""),
                     name=item.get("name", {}).get("S", ""))


class StoreGeoIndex:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._density: dict[str, tuple[float, Density]] = {}
        self._lock = threading.Lock()

    def _query(self, partition: str, low: str | None, high: str | None, meter: ReadMeter | None):
        from chalicelib.db.binding import bind_records
        from chalicelib.db.records import StoreGeoRecord

        bind_records()
        connection = StoreGeoRecord._get_connection()
        condition = StoreGeoRecord.spot.between(low, high) if low is not None else None
        start = None
        while True:
            page = connection.query(partition, range_key_condition=condition, exclusive_start_key=start,
                                    return_consumed_capacity="TOTAL")
            if meter is not None:
                meter.queries += 1
                meter.read_units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0))
                meter.items += len(page.get("Items", ()))
            yield from page.get("Items", ())
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def read(self, reads: list[RangeRead], meter: ReadMeter | None = None) -> list[Candidate]:
        """Every indexed store in the given key ranges (one Query per range)."""
        return [candidate_from_item(item) for r in reads for item in self._query(r.partition, r.low, r.high, meter)]

    def density(self, service: str, meter: ReadMeter | None = None) -> Density:
        """Store counts per res-6 cell for ``service``, cached for ``DENSITY_TTL_S``."""
        now = self._clock()
        cached = self._density.get(service)
        if cached and now - cached[0] < DENSITY_TTL_S:
            return cached[1]
        with self._lock:
            counts = {item["spot"]["S"]: int(item["stores"]["N"])
                      for item in self._query(density_key(service), None, None, meter)}
            density = Density(counts)
            self._density[service] = (now, density)
            return density

    def forget_density(self) -> None:
        self._density.clear()
