"""The route-traffic job (issue M11) at scale, against a DynamoDB Local it starts itself
(in memory): customers routed per second, DynamoDB calls per customer, and proof that
every customer was assigned exactly once — and that a second run assigns nobody.

The world (fixed seeds): bench/routing_parity.py's stores (default 10,000: half uniform
over China, half around 30 big-city centres; services drawn per store, 5 % deactivated,
mixed opening hours), written to the geo index (``infra/local/geo_load.py``) and to the
stores table (each store's ``city`` is its nearest city centre's name within 50 km, else
"Elsewhere"). Customers (default 100,000): 95 % located by coordinates around the same
city centres (Gaussian, σ 8 km), coarsened as ``PUT /v1/me/location`` stores them; 5 %
city-only. Everything is loaded with BatchWriteItem, as the location write leaves it
(``awaiting_route`` and ``route_due_at`` set).

The run is the production path: ``route_traffic`` with the real ``StoreFinder`` over
the geo index, the brand's default settings except the daily cap (none by default, so
that everyone can be assigned; ``--cap`` to see caps at work), writes in transactions of
25 customers spread over ``--writers`` threads. Every DynamoDB call is counted at the
botocore level. Then, by Scan (a benchmark may; the job never does): each customer has
exactly one ownership change and one CUSTOMER_BOUND event, owner basis ROUTED, and no
queue entry left — or, with a cap, is still queued for tomorrow and has none.

    python bench/route_traffic.py [--customers 100000] [--stores 10000] [--writers 8] [--cap N]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from routing_parity import CITIES, make_world  # noqa: E402

from chalicelib.domain import routing  # noqa: E402

# Business time: now (wall clock). DynamoDB Local does delete items whose TTL attribute is in
# the past (the outbox's expires_at = 14 days after its event), so the run must not be dated
# months back.
NOW = float(int(time.time()))
CUSTOMER_SIGMA_M = 8_000.0
CITY_ONLY_SHARE = 0.05
CITY_REACH_M = 50_000.0


class CallMeter:
    """Every DynamoDB call this process makes, by operation (thread-safe)."""

    def __init__(self):
        self.calls = Counter()
        self.seconds = Counter()           # time spent waiting on each operation, all threads
        self._lock = threading.Lock()

    def install(self):
        import botocore.client

        original = botocore.client.BaseClient._make_api_call
        meter = self

        def counted(client, operation, params):
            if client.meta.service_model.service_name != "dynamodb":
                return original(client, operation, params)
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                with meter._lock:
                    meter.calls[operation] += 1
                    meter.seconds[operation] += time.perf_counter() - started

        botocore.client.BaseClient._make_api_call = counted

    def take(self) -> tuple[Counter, Counter]:
        with self._lock:
            taken, self.calls, seconds, self.seconds = self.calls, Counter(), self.seconds, Counter()
        return taken, seconds


def city_of(store) -> str:
    best = min(range(len(CITIES)), key=lambda i: routing.haversine_m(store.lat, store.lng, *CITIES[i]))
    return f"City{best:02d}" if routing.haversine_m(store.lat, store.lng, *CITIES[best]) <= CITY_REACH_M \
        else "Elsewhere"


def load_store_records(stores) -> None:
    from chalicelib.db.items import batch_write
    from chalicelib.db.records import StoreRecord

    batch_write([StoreRecord(s.store_id, dealer_id=s.dealer_id, brand_id="brand-bench", name=f"Store {s.store_id}",
                             city=city_of(s), lat=s.lat, lng=s.lng, services=set(s.services) or None,
                             opening_hours=s.opening_hours, status=s.status, created_at=NOW) for s in stores])


def load_customers(n: int) -> list[str]:
    from chalicelib.db.items import batch_write
    from chalicelib.db.records import CustomerRecord
    from chalicelib.domain import locations

    rng = random.Random(20261122)
    at = NOW - 600
    records, ids = [], []
    for i in range(n):
        customer_id = f"cu_bench{i:07d}"
        city = rng.randrange(len(CITIES))
        if rng.random() < CITY_ONLY_SHARE:
            place = locations.in_city(f"City{city:02d}", source=locations.STATED, at=at)
        else:
            lat, lng = CITIES[city]
            sigma = CUSTOMER_SIGMA_M / 111_195
            place = locations.coarsen(rng.gauss(lat, sigma), rng.gauss(lng, sigma / math.cos(math.radians(lat))),
                                      source=locations.STATED, at=at)
        records.append(CustomerRecord(customer_id, first_seen_at=at, last_seen_at=at, location_kind=place.kind,
                                      location_cell=place.cell, location_lat=place.lat, location_lng=place.lng,
                                      location_city=place.city, location_source=place.source, located_at=at,
                                      awaiting_route=locations.route_shard(customer_id), route_due_at=at))
        ids.append(customer_id)
    for first in range(0, n, 5_000):
        batch_write(records[first:first + 5_000])
    return ids


def scan_all(client, table: str, projection: str | None = None) -> list[dict]:
    items, start = [], None
    while True:
        kwargs = {"TableName": table}
        if projection:
            kwargs["ProjectionExpression"] = projection
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.scan(**kwargs)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def check_exactly_once(client, ids: set[str], run_id: str, capped: bool) -> tuple[int, int, list[str]]:
    """(assigned, still queued, problems) from the tables themselves."""
    from chalicelib.config import settings

    names = settings().table_name
    problems = []
    customers = {c["customer_id"]["S"]: c for c in scan_all(
        client, names("customers"), "customer_id, owning_store_id, owner_basis, route_run_id, awaiting_route")}
    changes = Counter(c["customer_id"]["S"] for c in scan_all(client, names("ownership_changes"), "customer_id"))
    bound = Counter()
    for item in scan_all(client, names("outbox"), "kind, payload"):
        if item["kind"]["S"] == "CUSTOMER_BOUND":
            import json

            bound[json.loads(item["payload"]["S"])["customer_id"]] += 1
    assigned = queued = 0
    for customer_id in ids:
        c = customers.get(customer_id)
        if c is None:
            problems.append(f"{customer_id}: missing")
        elif "owning_store_id" in c:
            assigned += 1
            if (c["owner_basis"]["S"], c.get("route_run_id", {}).get("S")) != ("ROUTED", run_id):
                problems.append(f"{customer_id}: owner basis/run {c['owner_basis']['S']}")
            if changes[customer_id] != 1 or bound[customer_id] != 1:
                problems.append(f"{customer_id}: {changes[customer_id]} ownership changes, {bound[customer_id]} events")
            if "awaiting_route" in c:
                problems.append(f"{customer_id}: routed and still queued")
        else:
            queued += 1
            if "awaiting_route" not in c or changes[customer_id] or bound[customer_id]:
                problems.append(f"{customer_id}: neither routed nor queued")
    if not capped and queued:
        problems.append(f"{queued} customers left unassigned without a cap")
    return assigned, queued, problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--cap", type=int, default=None, help="daily cap per store (default: none)")
    args = parser.parse_args()

    from infra.local import dynamodb
    from infra.local.environment import StackPorts, local_environment
    from infra.local.keys import ensure_local_keys
    from infra.local.stack import free_port

    data = Path(tempfile.mkdtemp(prefix="storelink-bench-route-"))
    ensure_local_keys(data)
    port = free_port()
    env = local_environment(data, StackPorts(api=free_port(), dynamodb=port, sandbox=free_port()))
    engine = dynamodb.start(data, port, env, in_memory=True)
    try:
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"
        import boto3

        from chalicelib.config import settings
        from chalicelib.db.routing import RoutingRepository
        from chalicelib.db.schema import ensure_tables
        from chalicelib.db.store_geo import StoreGeoIndex
        from chalicelib.domain.routing_config import RoutingSettings
        from chalicelib.services.route_traffic import route_traffic
        from chalicelib.services.store_finder import StoreFinder
        from infra.local.geo_load import load_stores

        ensure_tables()
        client = boto3.client("dynamodb", endpoint_url=settings().dynamodb_endpoint, region_name=settings().region)
        started = time.perf_counter()
        stores, _ = make_world(args.stores, 0)
        load_stores(stores, client, settings().table_name("store_geo"))
        load_store_records(stores)
        ids = load_customers(args.customers)
        print(f"DynamoDB Local (in memory) on port {port}: {args.stores:,} stores and {args.customers:,} pending "
              f"customers loaded in {time.perf_counter() - started:.0f} s "
              f"({CITY_ONLY_SHARE:.0%} city-only, the rest at coarse cell centres)", flush=True)

        meter = CallMeter()
        meter.install()
        config = RoutingSettings(daily_cap_per_store=args.cap)
        finder, repository = StoreFinder(StoreGeoIndex()), RoutingRepository()
        clock = {"now": NOW}
        t0 = time.perf_counter()
        first = route_traffic(finder=finder, routing_db=repository, settings=config, now=NOW,
                              clock=lambda: clock["now"], writers=args.writers)
        seconds = time.perf_counter() - t0
        calls, waited = meter.take()
        total_calls = sum(calls.values())
        print(f"run 1: {first['outcome']}: read {first['read']:,}, assigned {first['assigned']:,}, "
              f"deferred {first['deferred_capped'] + first['deferred_no_candidates']:,} "
              f"(capped {first['deferred_capped']:,}, nothing in reach {first['deferred_no_candidates']:,}), "
              f"lost to an owner {first['lost_to_owner']:,} in {seconds:.1f} s")
        print(f"  {first['assigned'] / seconds:,.0f} customers routed per second "
              f"({args.writers} writers; DynamoDB Local runs transactions one at a time)")
        print(f"  finder lookups {first['finder_lookups']:,} (one per distinct cell centre), city lookups "
              f"{first['city_lookups']}, pages {first['pages']}")
        print(f"  DynamoDB calls: {total_calls:,} ({total_calls / max(1, first['read']):.3f} per customer): "
              + ", ".join(f"{op} {n:,} ({waited[op] / n * 1000:.1f} ms each)" for op, n in calls.most_common()))
        print(f"  reasons: {first['by_reason']}")
        shares = sorted(first["dealer_share"].values(), reverse=True)
        if shares:
            print(f"  dealers routed to: {len(shares)}, largest share {shares[0]:.2%}, smallest {shares[-1]:.3%}")

        clock["now"] = NOW + 900
        t0 = time.perf_counter()
        second = route_traffic(finder=finder, routing_db=repository, settings=config, now=NOW + 900,
                               clock=lambda: clock["now"], writers=args.writers)
        calls, _ = meter.take()
        print(f"run 2 (15 minutes later): read {second['read']:,}, assigned {second['assigned']:,} in "
              f"{time.perf_counter() - t0:.2f} s, {sum(calls.values())} DynamoDB calls: "
              + ", ".join(f"{op} {n}" for op, n in calls.most_common()))

        assigned, queued, problems = check_exactly_once(client, set(ids), first["run_id"], args.cap is not None)
        print(f"check (Scan of customers, ownership_changes, outbox): {assigned:,} assigned exactly once, "
              f"{queued:,} still queued, {len(problems)} problems")
        for problem in problems[:10]:
            print(f"  {problem}")
        failed = bool(problems) or second["assigned"] != 0 or second["read"] != 0 \
            or assigned != first["assigned"] or first["outcome"] != "DONE"
        print("FAILED" if failed else "OK: every customer assigned exactly once; the second run assigned nobody")
        return 1 if failed else 0
    finally:
        dynamodb.stop(data, engine)


if __name__ == "__main__":
    sys.exit(main())
