"""Nearest-store lookups on the DynamoDB geo index (issue M11), against DynamoDB Local:
Queries and read units per lookup, parity with brute force, latency — beside the same
figures for a brute-force baseline (a full Scan of the index per lookup).

The world is bench/routing_parity.py's (fixed seeds): 100,000 stores across China (half
uniform, half around 30 cities, σ 5 km; services drawn per store, 5 % deactivated,
opening hours mixed, searched on a Wednesday at 15:00 Beijing) and 2,000 points (same
mix). Each point asks for the 5 best open stores offering ``pickup`` (90 % of stores
offer it) and ``trial`` (10 %: a rare service) within 50 km.

The stores are written to the ``store_geo`` table with the keys the store repository
writes (``infra/local/geo_load.py``; batch writes, the repository's transaction per
store would take minutes at this size). Lookups run through the production path:
``StoreFinder`` over ``StoreGeoIndex`` (raw Queries with ReturnConsumedCapacity=TOTAL;
DynamoDB Local computes the units as DynamoDB does: 0.5 per 4 KB per eventually
consistent Query page). The density counts are read once per service and cached, as
a Lambda does for 5 minutes; their one-off cost is printed separately.

Parity: the search's top 5 against an exact oracle (a haversine to every suitable store
in the latitude band that can hold anything within reach; the same answer as a full
scan). Targets: parity 100 %, p95 ≤ 7 queries and ≤ 10 RRU per lookup.

    python bench/geo_lookup.py [--stores 100000] [--points 2000]
"""
from __future__ import annotations

import argparse
import bisect
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from routing_parity import K, NOW, RADIUS_M, make_world, percentile, top_k  # noqa: E402

from chalicelib.domain import routing  # noqa: E402

SERVICES = ("pickup", "trial")


def oracle_for(stores, service):
    suitable = sorted((s for s in stores if s.status == "ACTIVE" and service in s.services
                       and routing.is_open(s.opening_hours, NOW)), key=lambda s: s.lat)
    lats = [s.lat for s in suitable]

    def oracle(lat, lng, reach_m):
        half = math.degrees(reach_m / routing.EARTH_RADIUS_M) + 1e-9
        band = suitable[bisect.bisect_left(lats, lat - half):bisect.bisect_right(lats, lat + half)]
        return top_k([routing.Ranked(s, d, True) for s in band
                      if (d := routing.haversine_m(lat, lng, s.lat, s.lng)) <= reach_m])
    return oracle


def brute_force_scan(client, table):
    """What a lookup without an index costs: every item of the table, every time."""
    pages, units, items, start = 0, 0.0, 0, None
    started = time.perf_counter()
    while True:
        kwargs = {"TableName": table, "ReturnConsumedCapacity": "TOTAL"}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = client.scan(**kwargs)
        pages += 1
        units += page["ConsumedCapacity"]["CapacityUnits"]
        items += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages, units, items, time.perf_counter() - started


def fmt(values, digits=1):
    return f"{statistics.median(values):.{digits}f} / {percentile(values, 95):.{digits}f} / {max(values):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=2_000)
    args = parser.parse_args()

    from infra.local import dynamodb
    from infra.local.environment import StackPorts, local_environment
    from infra.local.keys import ensure_local_keys
    from infra.local.stack import free_port

    data = Path(tempfile.mkdtemp(prefix="storelink-bench-geo-"))
    ensure_local_keys(data)
    port = free_port()
    env = local_environment(data, StackPorts(api=free_port(), dynamodb=port, sandbox=free_port()))
    engine = dynamodb.start(data, port, env, in_memory=True)
    try:
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"
        import boto3

        from chalicelib.config import settings
        from chalicelib.db.schema import ensure_tables
        from chalicelib.db.store_geo import ReadMeter, StoreGeoIndex
        from chalicelib.services.store_finder import StoreFinder
        from infra.local.geo_load import load_stores

        ensure_tables()
        stores, points = make_world(args.stores, args.points)
        print(f"DynamoDB Local (in memory) on port {port}; loading {args.stores:,} stores...", flush=True)
        by_id = {s.store_id: s for s in stores}
        table = settings().table_name("store_geo")
        client = boto3.client("dynamodb", endpoint_url=settings().dynamodb_endpoint, region_name=settings().region)
        started = time.perf_counter()
        written = load_stores(stores, client, table)
        print(f"world: {args.stores:,} stores, {args.points:,} points, k = {K}, radius {RADIUS_M / 1000:.0f} km; "
              f"{written:,} index items loaded into DynamoDB Local in {time.perf_counter() - started:.0f} s")

        pages, scan_units, scan_items, scan_s = brute_force_scan(client, table)
        print(f"brute force (full Scan of the index, every lookup): {pages} queries, {scan_units:,.1f} RRU, "
              f"{scan_items:,} items, {scan_s * 1000:.0f} ms, then a haversine to each")
        print()
        print(f"{'service':8} {'queries p50/p95/max':>22} {'RRU p50/p95/max':>22} {'ms p50/p95':>12} "
              f"{'parity':>8} {'density (once per 5 min)':>28}")
        failed = False
        for service in SERVICES:
            index = StoreGeoIndex()
            warm = ReadMeter()
            index.density(service, warm)
            finder = StoreFinder(index)
            oracle = oracle_for(stores, service)
            queries, units, latencies, same = [], [], [], 0
            for lat, lng, _kind in points:
                meter = ReadMeter()
                t0 = time.perf_counter()
                result = finder.nearest(lat, lng, service=service, k=K, now_ts=NOW, meter=meter)
                latencies.append((time.perf_counter() - t0) * 1000)
                queries.append(meter.queries)
                units.append(meter.read_units)
                reach = max([RADIUS_M] + [e.distance_m for e in result.stores]) + 10
                expected = oracle(lat, lng, reach)
                if not result.complete:
                    expected = [sid for sid in expected
                                if routing.haversine_m(lat, lng, by_id[sid].lat, by_id[sid].lng) <= RADIUS_M]
                same += [e.store_id for e in result.stores] == expected
            parity = same / len(points)
            print(f"{service:8} {fmt(queries, 0):>22} {fmt(units):>22} "
                  f"{statistics.median(latencies):5.1f}/{percentile(latencies, 95):5.1f} {parity:8.2%} "
                  f"{warm.queries:>10} queries, {warm.read_units:,.1f} RRU")
            print(f"{'':8} vs brute force: queries p95 {percentile(queries, 95) / pages:.2f}×, "
                  f"RRU p95 {percentile(units, 95) / scan_units:.5f}× "
                  f"(targets: p95 ≤ 7 queries, ≤ 10 RRU, parity 100 %)")
            failed |= parity < 1 or percentile(queries, 95) > 7 or percentile(units, 95) > 10
        return 1 if failed else 0
    finally:
        dynamodb.stop(data, engine)


if __name__ == "__main__":
    sys.exit(main())
