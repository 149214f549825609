"""The geo index kept with the stores (one transaction) and the nearest-store search
over it, on moto: what is listed, what never is, and parity with brute force."""
from __future__ import annotations

import bisect
import heapq
import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import routing
from chalicelib.domain.network import WEEKDAYS, Store

WEDNESDAY_3PM = datetime(2026, 6, 10, 15, 0, tzinfo=timezone(timedelta(hours=8))).timestamp()
SUNDAY_3PM = WEDNESDAY_3PM + 4 * 86400
ALL_DAY = {d: [["10:00", "22:00"]] for d in WEEKDAYS}
WEEKDAYS_ONLY = {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]}
CHUNXI = (30.6570, 104.0807)


def _store(store_id, lat, lng, services=("pickup",), hours=ALL_DAY, **extra) -> Store:
    return Store(store_id=store_id, dealer_id=extra.pop("dealer_id", "dl_a"), brand_id="brand-1",
                 name=f"Store {store_id}", city="Chengdu", lat=lat, lng=lng, services=list(services),
                 opening_hours=hours, **extra)


def _offset(lat, lng, north_m, east_m):
    return lat + north_m / 111_195, lng + east_m / (111_195 * math.cos(math.radians(lat)))


@pytest.fixture
def network(dynamodb):
    from chalicelib.db.network import NetworkRepository

    return NetworkRepository()


@pytest.fixture
def finder(dynamodb):
    from chalicelib.db.store_geo import StoreGeoIndex
    from chalicelib.services.store_finder import StoreFinder

    index = StoreGeoIndex(clock=lambda: 0.0)
    finder = StoreFinder(index)
    finder.fresh = index.forget_density     # the tests change stores between lookups
    return finder


def _ids(finder, service="pickup", at=CHUNXI, k=10, now=WEDNESDAY_3PM, **kw):
    finder.fresh()
    return [e.store_id for e in finder.nearest(*at, service=service, k=k, now_ts=now, **kw).stores]


def _geo_items():
    from chalicelib.db.records import StoreGeoRecord

    return {(r.geo_key, r.spot): r for r in StoreGeoRecord.scan()}     # test only


def test_a_new_store_is_indexed_with_its_counts_in_the_same_write(network):
    from chalicelib.db import items
    from chalicelib.db.records import StoreRecord
    from chalicelib.db.store_geo import density_key
    from chalicelib.domain.store_geo import index_entries

    network.add_store(_store("st_1", *CHUNXI, services=("pickup", "repair")))
    entries = index_entries("st_1", *CHUNXI, ["pickup", "repair"], True)
    stored = _geo_items()
    for entry in entries:
        item = stored[(entry.partition, entry.sort)]
        assert (item.store_id, item.name, float(item.lat), item.services) == ("st_1", "Store st_1", CHUNXI[0],
                                                                              {"pickup", "repair"})
    counts = {(k, s): int(r.stores) for (k, s), r in stored.items() if k.startswith("density#")}
    assert counts == {(density_key(s), entries[0].count_cell): 1 for s in ("*", "pickup", "repair")}
    assert sorted(items.get(StoreRecord, "st_1").geo_keys) == sorted(e.key for e in entries)


def test_moves_service_changes_and_deactivation_keep_index_and_counts_exact(network):
    from chalicelib.domain.store_geo import index_entries

    network.add_store(_store("st_1", *CHUNXI, services=("pickup",)))
    network.update_store("st_1", {"lat": 39.9, "lng": 116.4})
    network.update_store("st_1", {"services": ["trial"]})
    network.update_store("st_1", {"name": "Renamed"})
    expected = index_entries("st_1", 39.9, 116.4, ["trial"], True)
    stored = _geo_items()
    entries = {k for k in stored if not k[0].startswith("density#")}
    assert entries == {(e.partition, e.sort) for e in expected}
    assert {stored[(e.partition, e.sort)].name for e in expected} == {"Renamed"}
    counts = {k: int(r.stores) for k, r in stored.items() if k[0].startswith("density#")}
    assert sorted(n for n in counts.values() if n) == [1, 1]           # "*" and "trial" at the new place
    assert all(n == 0 for (key, _), n in counts.items() if key.endswith("pickup"))

    network.update_store("st_1", {"status": "DEACTIVATED"})
    stored = _geo_items()
    assert [k for k in stored if not k[0].startswith("density#")] == []
    assert all(int(r.stores) == 0 for r in stored.values())

    network.update_store("st_1", {"status": "ACTIVE"})
    assert len([k for k in _geo_items() if not k[0].startswith("density#")]) == 2


def test_reindexing_twice_counts_nothing_twice(network):
    network.add_store(_store("st_1", *CHUNXI))
    network.reindex_store("st_1")
    network.reindex_store("st_1")
    assert sorted(int(r.stores) for k, r in _geo_items().items() if k[0].startswith("density#")) == [1, 1]


def test_a_change_that_lost_a_race_reads_again_and_keeps_the_other_writers_change(network, monkeypatch):
    from chalicelib.db import items
    from chalicelib.db.records import StoreRecord

    network.add_store(_store("st_1", *CHUNXI))
    real_get = items.get
    calls = {"n": 0}

    def get_then_someone_renames(cls, *key):
        record = real_get(cls, *key)
        calls["n"] += 1
        if calls["n"] == 1:       # between our read and our write, another writer changes the store
            StoreRecord("st_1").update(actions=[StoreRecord.address.set("New address"), StoreRecord.version.add(1)])
        return record

    monkeypatch.setattr(items, "get", get_then_someone_renames)
    network.update_store("st_1", {"services": ["pickup", "trial"]})
    monkeypatch.undo()
    record = items.get(StoreRecord, "st_1")
    assert (record.address, record.services, int(record.version)) == ("New address", {"pickup", "trial"}, 2)
    assert calls["n"] == 2


def test_the_search_never_lists_deactivated_closed_or_unsuitable_stores(network, finder):
    near = [_offset(*CHUNXI, 100 * i, 0) for i in range(1, 6)]
    network.add_store(_store("st_open", *near[0]))
    network.add_store(_store("st_gone", *near[1]))
    network.add_store(_store("st_weekdays", *near[2], hours=WEEKDAYS_ONLY))
    network.add_store(_store("st_repair_only", *near[3], services=("repair",)))
    network.add_store(_store("st_far_open", *near[4]))
    network.update_store("st_gone", {"status": "DEACTIVATED"})

    assert _ids(finder) == ["st_open", "st_weekdays", "st_far_open"]
    assert _ids(finder, now=SUNDAY_3PM) == ["st_open", "st_far_open"]
    assert _ids(finder, now=SUNDAY_3PM, include_closed=True) == ["st_open", "st_far_open", "st_weekdays"]
    assert _ids(finder, service="repair") == ["st_repair_only"]
    assert _ids(finder, service=None) == ["st_open", "st_weekdays", "st_repair_only", "st_far_open"]
    assert _ids(finder, service="trial") == []


def test_a_new_store_is_found_at_once_and_gone_once_deactivated(network, finder):
    network.add_store(_store("st_old", *_offset(*CHUNXI, 2000, 0)))
    assert _ids(finder) == ["st_old"]
    network.add_store(_store("st_new", *_offset(*CHUNXI, 50, 0)))
    assert _ids(finder, k=1) == ["st_new"]
    network.update_store("st_new", {"status": "DEACTIVATED"})
    assert _ids(finder, k=1) == ["st_old"]


def test_a_store_just_outside_the_first_cells_is_not_missed(network, finder):
    import h3

    from chalicelib.domain.store_geo import choose_resolution

    # a crowd far enough to make the search fine, and one store just across a cell edge
    for i in range(40):
        network.add_store(_store(f"st_crowd{i:02d}", *_offset(*CHUNXI, 3000 + 20 * i, 0)))
    finder.fresh()
    res = choose_resolution(*CHUNXI, finder._index.density("pickup"), want=1)
    cell = h3.latlng_to_cell(*CHUNXI, res)
    edge = h3.cell_to_boundary(cell)[0]
    just_out = _offset(*edge, *(0.5 * (e - c) * 111_195 for e, c in zip(edge, CHUNXI)))
    assert h3.latlng_to_cell(*just_out, res) != cell
    network.add_store(_store("st_across", *just_out))
    assert _ids(finder, k=1) == ["st_across"]


def test_ranked_by_distance_then_service_score(network, finder):
    network.add_store(_store("st_b", *_offset(*CHUNXI, 300, 0), service_score=10))
    network.add_store(_store("st_a", *_offset(*CHUNXI, -300, 0), service_score=90))
    network.add_store(_store("st_c", *_offset(*CHUNXI, 100, 0), service_score=0))
    assert _ids(finder) == ["st_c", "st_a", "st_b"]


class InMemoryGeoIndex:
    """The index's two reads over the items ``infra/local/geo_load`` would write (same
    keys, same ranges), without DynamoDB: the parity test's lookups are the search's
    logic, and moto is too slow for thousands of them (DynamoDB Local runs the full
    size in bench/geo_lookup.py)."""

    def __init__(self, stores):
        import bisect

        from chalicelib.db.store_geo import candidate_from_item
        from chalicelib.domain.store_geo import Density
        from infra.local.geo_load import geo_items

        items, counts = geo_items(stores)
        self.partitions = {}
        for item in sorted(items, key=lambda i: i["spot"]["S"]):
            self.partitions.setdefault(item["geo_key"]["S"], []).append((item["spot"]["S"], candidate_from_item(item)))
        self.keys = {p: [k for k, _ in rows] for p, rows in self.partitions.items()}
        self.densities = {}
        for (service, cell), n in counts.items():
            self.densities.setdefault(service, {})[cell] = n
        built = {service: Density(counts) for service, counts in self.densities.items()}
        self.density = lambda service, meter=None: built.get(service) or Density({})
        self.bisect = bisect
        self.queries = 0

    def read(self, reads, meter=None):
        out = []
        for r in reads:
            self.queries += 1
            keys = self.keys.get(r.partition, [])
            lo, hi = self.bisect.bisect_left(keys, r.low), self.bisect.bisect_right(keys, r.high)
            out += [c for _, c in self.partitions.get(r.partition, [])[lo:hi]]
        return out


def test_parity_with_brute_force_on_a_small_world():
    """The fast-suite size of bench/geo_lookup.py: 5,000 stores (cities and countryside),
    150 points, the 5 best of two services and of any; brute force is a haversine to
    every store."""
    from chalicelib.services.store_finder import StoreFinder

    rng = random.Random(11)
    cities = [(30.657, 104.081), (31.230, 121.474), (39.904, 116.407)]

    def place():
        if rng.random() < 0.3:
            return rng.uniform(25, 45), rng.uniform(100, 122)
        lat, lng = rng.choice(cities)
        return _offset(lat, lng, rng.gauss(0, 4000), rng.gauss(0, 4000))

    stores = [routing.Candidate(f"st{i:05d}", *place(), tuple(s for s in ("pickup", "trial") if rng.random() < 0.6),
                                ALL_DAY if rng.random() < 0.9 else WEEKDAYS_ONLY,
                                "ACTIVE" if rng.random() < 0.95 else "DEACTIVATED", rng.choice([0.0, 50.0]),
                                f"dl{i % 7}") for i in range(5000)]
    index = InMemoryGeoIndex(stores)
    finder = StoreFinder(index)
    points = [place() for _ in range(150)]
    checked = 0
    for service in ("pickup", "trial", None):
        suitable = sorted((s for s in stores if s.status == "ACTIVE" and (service is None or service in s.services)
                           and routing.is_open(s.opening_hours, SUNDAY_3PM)), key=lambda s: s.lat)
        lats = [s.lat for s in suitable]
        for lat, lng in points:
            result = finder.nearest(lat, lng, service=service, k=5, now_ts=SUNDAY_3PM)
            # brute force over the latitude band that can hold anything within reach (no
            # store outside it is nearer than the 50 km radius or the search's 5th store)
            reach = max([routing.DEFAULT_MAX_RADIUS_M] + [e.distance_m for e in result.stores]) + 10
            half = math.degrees(reach / routing.EARTH_RADIUS_M)
            band = suitable[bisect.bisect_left(lats, lat - half):bisect.bisect_right(lats, lat + half)]
            brute = heapq.nsmallest(5, (routing.Ranked(s, routing.haversine_m(lat, lng, s.lat, s.lng), True)
                                        for s in band), key=routing.rank_key)
            if not result.complete:      # fewer than 5 within 50 km: exactly those
                brute = [e for e in brute if e.distance_m <= routing.DEFAULT_MAX_RADIUS_M]
            assert [e.store_id for e in result.stores] == [e.store_id for e in brute], (service, lat, lng)
            checked += 1
    assert checked == 450 and index.queries < 450 * 8


# --- GET /v1/stores/nearest -----------------------------------------------------------

@pytest.fixture
def client(dynamodb):
    from chalice.test import Client

    import app as app_module
    from tests.openapi import ValidatingClient

    with Client(app_module.app, stage_name="test") as client:
        yield ValidatingClient(client)


@pytest.mark.parametrize("query, field", [
    ("lng=104.08", "lat"), ("lat=30.6", "lng"), ("lat=91&lng=104", "lat"), ("lat=30&lng=-181", "lng"),
    ("lat=abc&lng=104", "lat"), ("lat=nan&lng=104", "lat"), ("lat=30&lng=104&limit=0", "limit"),
    ("lat=30&lng=104&limit=51", "limit"), ("lat=30&lng=104&limit=2.5", "limit"),
    ("lat=30&lng=104&service=massage", "service"), ("lat=30&lng=104&include_closed=yes", "include_closed"),
    ("lat=30&lng=104&radius=5", "radius"),
])
def test_bad_queries_are_refused_with_the_field_named(client, query, field):
    import json

    response = client.http.get(f"/v1/stores/nearest?{query}")
    assert response.status_code == 400, response.body
    body = json.loads(response.body)["error"]
    assert body["code"] == "VALIDATION_FAILED" and body["details"].get("field") == field, body


def test_the_nearest_open_stores_with_their_distances(client, monkeypatch):
    import json

    from chalicelib.db.network import NetworkRepository
    from chalicelib.services import wiring

    network = NetworkRepository()
    network.add_store(_store("st_near", *_offset(*CHUNXI, 120, 0), services=("pickup", "trial"), service_score=40))
    network.add_store(_store("st_weekdays", *_offset(*CHUNXI, 60, 0), hours=WEEKDAYS_ONLY))
    network.add_store(_store("st_far", *_offset(*CHUNXI, 0, 900)))
    monkeypatch.setattr(wiring, "now", lambda: SUNDAY_3PM)
    response = client.http.get(f"/v1/stores/nearest?lat={CHUNXI[0]}&lng={CHUNXI[1]}&service=pickup&limit=5")
    assert response.status_code == 200, response.body
    body = json.loads(response.body)
    assert [(s["store_id"], s["distance_m"], s["open_now"]) for s in body["stores"]] == [
        ("st_near", 120, True), ("st_far", 900, True)]
    assert body["stores"][0]["services"] == ["pickup", "trial"] and body["stores"][0]["service_score"] == 40
    assert body["complete"] is False and body["radius_m"] == 50000

    closed_too = json.loads(client.http.get(
        f"/v1/stores/nearest?lat={CHUNXI[0]}&lng={CHUNXI[1]}&service=pickup&limit=2&include_closed=true").body)
    assert [s["store_id"] for s in closed_too["stores"]] == ["st_near", "st_far"]
    all_three = json.loads(client.http.get(
        f"/v1/stores/nearest?lat={CHUNXI[0]}&lng={CHUNXI[1]}&include_closed=true").body)
    assert [(s["store_id"], s["open_now"]) for s in all_three["stores"]] == [
        ("st_near", True), ("st_far", True), ("st_weekdays", False)]
