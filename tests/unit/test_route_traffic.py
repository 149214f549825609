"""The route-traffic job (M11) on moto: pending customers get the nearest suitable store
as a provisional ROUTED owner, fairly, under daily caps; a scan or purchase that got
there first is never overwritten; a re-run changes nothing; a second run at the same
time exits on the lease. The store finder is the real ring search over stores held in
memory (``FakeFinder``): the job takes its finder as a parameter, wiring gives the
geo index's."""
import json
import math
import random
from datetime import datetime

import pytest
from chalice.test import Client

from chalicelib.domain import locations, routing
from chalicelib.domain.routing_config import RoutingSettings, retry_at
from chalicelib.domain.time import BEIJING
from chalicelib.services import wiring
from chalicelib.services.route_traffic import LEASE_HELD, LEASE_LOST, OUT_OF_TIME, route_traffic
from tests.openapi import ValidatingClient

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=BEIJING).timestamp()     # a Monday, 10:00 Beijing
DAY = "2026-11-23"
FAIR_N = 1000
ALL_DAY = {d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CHUNXI = (30.6570, 104.0807)
M_PER_DEG_LAT = 111_320.0


@pytest.fixture(autouse=True)
def one_backup_per_table_and_transaction(monkeypatch):
    """moto backs a transaction up by deep-copying each item's whole table once per item
    (moto 5.2: ``transact_write_items``), so a run writing 25 customers per transaction
    costs 75 table copies each. Nothing changes while it copies: one copy per table and
    transaction is the same backup, and keeps the 1,000-customer proof in seconds."""
    import copy
    from types import SimpleNamespace

    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        copies = {}

        def deepcopy_once(value):
            if id(value) not in copies:
                copies[id(value)] = copy.deepcopy(value)
            return copies[id(value)]

        models.copy = SimpleNamespace(deepcopy=deepcopy_once)     # the module's own name only
        try:
            return original(self, transact_items)
        finally:
            models.copy = copy

    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", transact_write_items)


def east_of(point, metres):
    lat, lng = point
    return lat, lng + metres / (M_PER_DEG_LAT * math.cos(math.radians(lat)))


class FakeFinder:
    """``wiring.store_finder()``'s interface over stores in memory: the real ring search
    (``fetch`` hands it every store; extra stores do no harm). ``hooks`` run one by one
    on the next calls, to play what happens while the job runs."""

    def __init__(self, stores=()):
        self.stores = list(stores)
        self.calls = []
        self.hooks = []

    def nearest(self, lat, lng, *, service, k, now_ts, include_closed=False, open_first=True):
        self.calls.append({"lat": lat, "lng": lng, "service": service, "k": k, "include_closed": include_closed,
                           "open_first": open_first})
        if self.hooks:
            self.hooks.pop(0)()
        return routing.nearest_stores(lat, lng, k, lambda cells: self.stores, service=service, now_ts=now_ts,
                                      include_closed=include_closed, open_first=open_first)


def given_store(store_id, point, *, dealer_id, city="Chengdu", services=("pickup",), status="ACTIVE",
                hours=ALL_DAY) -> routing.Candidate:
    from chalicelib.db.records import StoreRecord

    StoreRecord(store_id, dealer_id=dealer_id, brand_id="brand-lumen", name=f"Store {store_id}", city=city,
                lat=point[0], lng=point[1], services=set(services), opening_hours=hours, status=status,
                created_at=NOW).save()
    return routing.Candidate(store_id, point[0], point[1], frozenset(services), hours, status, 0.0, dealer_id,
                             f"Store {store_id}")


def given_customer(customer_id, point=None, *, city=None, at=NOW - 60) -> str:
    """A customer nobody owns, located (through the real write) and so queued."""
    from chalicelib.db.records import CustomerRecord

    CustomerRecord(customer_id, first_seen_at=at, last_seen_at=at).save()
    place = (locations.in_city(city, source=locations.STATED, at=at) if city
             else locations.coarsen(*point, source=locations.STATED, at=at))
    assert wiring.locations().save(customer_id, place, queue_for_routing=True)
    return customer_id


def same_shard(n, prefix="cu_"):
    """n customer ids in one shard of the queue (so one page holds them all)."""
    ids, k = [], 0
    while len(ids) < n:
        if locations.route_shard(f"{prefix}{k}") == "R0":
            ids.append(f"{prefix}{k}")
        k += 1
    return ids


def given_customers(points: dict, at=NOW - 60) -> list[str]:
    """Many located customers at once (BatchWriteItem), as the location write leaves them."""
    from chalicelib.db.items import batch_write
    from chalicelib.db.records import CustomerRecord

    records = []
    for customer_id, point in points.items():
        place = locations.coarsen(*point, source=locations.STATED, at=at)
        records.append(CustomerRecord(customer_id, first_seen_at=at, last_seen_at=at, location_kind=place.kind,
                                      location_cell=place.cell, location_lat=place.lat, location_lng=place.lng,
                                      location_source=place.source, located_at=at,
                                      awaiting_route=locations.route_shard(customer_id), route_due_at=at))
    batch_write(records)
    return list(points)


def customer(customer_id):
    from chalicelib.db.records import CustomerRecord

    return CustomerRecord.get(customer_id, consistent_read=True)


def run(finder, settings=RoutingSettings(), now=NOW, **kwargs):
    return route_traffic(finder=finder, routing_db=wiring.routing(), settings=settings, now=now,
                         writers=kwargs.pop("writers", 1), **kwargs)   # moto is not thread-safe


def counts(day=DAY):
    return wiring.routing().assigned_on(day)


def table_items(record):
    """Every item of a table (a test may Scan; the code never does)."""
    client = record._get_connection().connection.client
    found, start = [], {}
    while True:
        page = client.scan(TableName=record.Meta.table_name, ConsistentRead=True, **start)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(found, key=lambda item: json.dumps(item, sort_keys=True))
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def snapshot():
    """Everything a run may change: customers, ownership history, events, counts."""
    from chalicelib.db.records import CustomerRecord, OutboxRecord, OwnershipChangeRecord, RoutingCountRecord

    return [table_items(r) for r in (CustomerRecord, OwnershipChangeRecord, OutboxRecord, RoutingCountRecord)]


def outbox_kinds():
    from chalicelib.db.records import OutboxRecord

    return sorted(item["kind"]["S"] for item in table_items(OutboxRecord))


# --- assigning ----------------------------------------------------------------

def test_a_pending_customer_gets_the_nearest_store_as_a_routed_owner_with_the_reason(dynamodb):
    near = given_store("st-near", CHUNXI, dealer_id="dl-a")
    far = given_store("st-far", east_of(CHUNXI, 30_000), dealer_id="dl-b")
    finder = FakeFinder([near, far])
    given_customer("cu_1", east_of(CHUNXI, 300))

    result = run(finder)

    assert (result["outcome"], result["read"], result["assigned"]) == ("DONE", 1, 1)
    assert result["by_dealer"] == {"dl-a": 1} and result["by_reason"] == {"NEAREST": 1}
    assert finder.calls == [{"lat": customer("cu_1").location_lat, "lng": customer("cu_1").location_lng,
                             "service": None, "k": 8, "include_closed": True, "open_first": False}]
    item = customer("cu_1")
    assert (item.owning_store_id, item.owning_dealer_id, item.owner_basis, item.owned_since) == (
        "st-near", "dl-a", "ROUTED", NOW)
    assert item.route_reason == routing.NEAREST and item.route_run_id == result["run_id"]
    centre = (item.location_lat, item.location_lng)
    assert item.route_distance_m == pytest.approx(routing.haversine_m(*centre, *CHUNXI), abs=0.1)
    assert item.awaiting_route is None and item.route_due_at is None
    [change] = wiring.ownership().history("cu_1")
    assert (change.from_store_id, change.to_store_id, change.basis, change.reason) == (
        None, "st-near", "ROUTED", "ROUTED_TO_NEAREST")
    assert outbox_kinds() == ["CUSTOMER_BOUND"]
    assert counts() == {"st-near": 1}
    [stored] = wiring.routing().runs_on(DAY)
    assert stored.run_id == result["run_id"] and stored.report["by_store"] == {"st-near": 1}


def test_a_closed_store_is_still_the_nearest_and_deactivated_ones_never_are(dynamodb):
    closed = given_store("st-closed", CHUNXI, dealer_id="dl-a", hours={})
    gone = given_store("st-gone", east_of(CHUNXI, 100), dealer_id="dl-a", status="DEACTIVATED")
    open_far = given_store("st-open", east_of(CHUNXI, 9_000), dealer_id="dl-b")
    given_customer("cu_1", CHUNXI)

    run(FakeFinder([closed, gone, open_far]))

    assert customer("cu_1").owning_store_id == "st-closed"


def test_the_configured_service_and_k_reach_the_finder(dynamodb):
    pickup = given_store("st-pickup", CHUNXI, dealer_id="dl-a", services=("pickup",))
    repair = given_store("st-repair", east_of(CHUNXI, 4_000), dealer_id="dl-b", services=("pickup", "repair"))
    finder = FakeFinder([pickup, repair])
    given_customer("cu_1", CHUNXI)

    run(finder, RoutingSettings(service="repair", k=3))

    assert (finder.calls[0]["service"], finder.calls[0]["k"]) == ("repair", 3)
    assert customer("cu_1").owning_store_id == "st-repair"


def test_one_lookup_per_district_however_many_customers_are_in_it(dynamodb):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    for n in range(20):
        given_customer(f"cu_{n}", east_of(CHUNXI, 10 * n))

    result = run(finder)

    assert result["assigned"] == 20 and len(finder.calls) == result["finder_lookups"] == 1


def test_a_scan_afterwards_overrides_the_routed_owner(dynamodb):
    from chalicelib.services.scans import scan
    from tests.unit.test_scans import make_scene

    near = given_store("st-near", CHUNXI, dealer_id="dl-a")
    other = given_store("st-other", east_of(CHUNXI, 20_000), dealer_id="dl-b")
    given_customer("cu_1", CHUNXI)
    run(FakeFinder([near, other]))
    assert (customer("cu_1").owning_store_id, customer("cu_1").owner_basis) == ("st-near", "ROUTED")

    make_scene("s.other", "st-other")
    answer = scan("cu_1", "s.other", None, None, scans=wiring.scans(), now=NOW + 600)

    assert (answer["binding"], answer["bound_store_id"]) == ("SCAN_OVERRIDES_ROUTING", "st-other")
    item = customer("cu_1")
    assert (item.owning_store_id, item.owning_dealer_id, item.owner_basis) == ("st-other", "dl-b", "SCANNED")
    assert [c.reason for c in wiring.ownership().history("cu_1")] == ["ROUTED_TO_NEAREST", "SCAN_OVERRIDES_ROUTING"]


def test_a_customer_bound_while_the_run_decides_is_not_touched(dynamodb):
    near = given_store("st-near", CHUNXI, dealer_id="dl-a")
    scanned = given_store("st-scanned", east_of(CHUNXI, 20_000), dealer_id="dl-b")
    bound, other = same_shard(2)
    given_customer(bound, CHUNXI)
    given_customer(other, CHUNXI)
    finder = FakeFinder([near, scanned])
    # While the run looks for stores, one of them scans st-scanned (the scan's own transaction).
    finder.hooks.append(lambda: wiring.ownership().change(bound, None, "st-scanned", "dl-b", "SCANNED",
                                                          "FIRST_SCAN", "scan#sc_1", NOW + 1))

    result = run(finder)

    assert (result["read"], result["assigned"], result["lost_to_owner"]) == (2, 1, 1)
    item = customer(bound)
    assert (item.owning_store_id, item.owner_basis, item.route_reason) == ("st-scanned", "SCANNED", None)
    assert [c.reason for c in wiring.ownership().history(bound)] == ["FIRST_SCAN"]
    assert customer(other).owning_store_id == "st-near"
    assert counts() == {"st-near": 1}            # the lost choice is not counted


def test_an_owned_customer_left_in_the_queue_is_dropped_from_it_untouched(dynamodb):
    from chalicelib.db.records import CustomerRecord

    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", CHUNXI)
    # A writer that set an owner without ending the wait (what the job must survive).
    CustomerRecord("cu_1").update(actions=[CustomerRecord.owning_store_id.set("st-elsewhere"),
                                           CustomerRecord.owner_basis.set("PURCHASED")])

    result = run(finder)

    assert (result["read"], result["already_owned"], result["assigned"]) == (1, 1, 0)
    item = customer("cu_1")
    assert (item.owning_store_id, item.owner_basis, item.awaiting_route) == ("st-elsewhere", "PURCHASED", None)
    assert finder.calls == []


def test_a_second_run_changes_nothing(dynamodb):
    a = given_store("st-a", CHUNXI, dealer_id="dl-a")
    b = given_store("st-b", east_of(CHUNXI, 50), dealer_id="dl-b")
    ids = [given_customer(f"cu_{n}", east_of(CHUNXI, 40 * n)) for n in range(12)]
    ids.append(given_customer("cu_far", east_of(CHUNXI, 200_000)))        # nothing in reach: deferred
    first = run(FakeFinder([a, b]), RoutingSettings(daily_cap_per_store=5))
    assert (first["assigned"], first["deferred_capped"], first["deferred_no_candidates"]) == (10, 2, 1)
    before = snapshot()

    second = run(FakeFinder([a, b]), RoutingSettings(daily_cap_per_store=5), now=NOW + 900)

    assert (second["read"], second["assigned"]) == (0, 0)
    assert snapshot() == before
    assert len(wiring.routing().runs_on(DAY)) == 1          # a run that read nobody stores no report


# --- fairness and caps -------------------------------------------------------

def test_fairness_two_stores_50_m_apart_share_1000_customers_evenly_and_a_rerun_changes_nothing(dynamodb):
    a = given_store("st-a", CHUNXI, dealer_id="dl-a")
    b = given_store("st-b", east_of(CHUNXI, 50), dealer_id="dl-b")
    rng = random.Random(11)
    points = {}
    for n in range(FAIR_N):
        bearing, distance = rng.uniform(0, 2 * math.pi), 3_000 * math.sqrt(rng.random())   # within 3 km
        points[f"cu_{n:04d}"] = (CHUNXI[0] + distance * math.cos(bearing) / M_PER_DEG_LAT,
                                 east_of(CHUNXI, distance * math.sin(bearing))[1])
    ids = given_customers(points)
    settings = RoutingSettings(daily_cap_per_store=None)      # no cap: the split is the rotation's alone

    first = run(FakeFinder([a, b]), settings)

    assert (first["read"], first["assigned"]) == (1000, 1000)
    assert counts() == {"st-a": 500, "st-b": 500}
    assert first["by_dealer"] == {"dl-a": 500, "dl-b": 500} and first["dealer_share"] == {"dl-a": 0.5, "dl-b": 0.5}
    assert first["by_reason"] == {routing.ROTATED_WITHIN_TOLERANCE: 1000}
    before = snapshot()
    owners = [item["owning_store_id"]["S"] for item in before[0]]
    assert owners.count("st-a") == owners.count("st-b") == 500 and len(owners) == len(ids)
    assert all("awaiting_route" not in item and item["owner_basis"]["S"] == "ROUTED" for item in before[0])

    second = run(FakeFinder([a, b]), settings, now=NOW + 900)

    assert (second["read"], second["assigned"]) == (0, 0)
    assert snapshot() == before


def test_daily_caps_hold_across_runs_and_capped_customers_wait_for_the_next_beijing_day(dynamodb):
    a = given_store("st-a", CHUNXI, dealer_id="dl-a")
    b = given_store("st-b", east_of(CHUNXI, 50), dealer_id="dl-b")
    finder = FakeFinder([a, b])
    settings = RoutingSettings(daily_cap_per_store=3)
    for n in range(4):
        given_customer(f"cu_{n}", CHUNXI)
    assert run(finder, settings)["assigned"] == 4
    assert counts() == {"st-a": 2, "st-b": 2}

    for n in range(4, 8):
        given_customer(f"cu_{n}", CHUNXI, at=NOW + 100)
    later = run(finder, settings, now=NOW + 900)

    assert (later["assigned"], later["deferred_capped"]) == (2, 2)
    assert counts() == {"st-a": 3, "st-b": 3}
    waiting = [customer(f"cu_{n}") for n in range(4, 8) if customer(f"cu_{n}").owning_store_id is None]
    midnight = datetime(2026, 11, 24, tzinfo=BEIJING).timestamp()
    assert [(w.route_reason, w.route_due_at) for w in waiting] == [(routing.ALL_CAPPED, midnight)] * 2
    assert retry_at(routing.ALL_CAPPED, NOW) == midnight
    assert run(finder, settings, now=NOW + 1800)["read"] == 0          # not again today

    next_day = run(finder, settings, now=midnight + 60)
    assert (next_day["read"], next_day["assigned"]) == (2, 2)
    assert counts("2026-11-24") == {"st-a": 1, "st-b": 1}


def test_a_stores_own_cap_overrides_the_default(dynamodb):
    a = given_store("st-a", CHUNXI, dealer_id="dl-a")
    b = given_store("st-b", east_of(CHUNXI, 50), dealer_id="dl-b")
    for n in range(6):
        given_customer(f"cu_{n}", CHUNXI)
    centre = (customer("cu_0").location_lat, customer("cu_0").location_lng)
    nearest, other = sorted((a, b), key=lambda s: routing.haversine_m(*centre, s.lat, s.lng))

    result = run(FakeFinder([a, b]), RoutingSettings(store_daily_caps={nearest.store_id: 0}))

    assert counts() == {other.store_id: 6} and result["by_reason"] == {routing.NEAREST_UNCAPPED: 6}


def test_nothing_in_reach_waits_a_day(dynamodb):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_far", (39.9042, 116.4074))        # Beijing: 1,500 km away

    result = run(finder)

    assert (result["assigned"], result["deferred_no_candidates"]) == (0, 1)
    item = customer("cu_far")
    assert (item.route_reason, item.route_due_at, item.owning_store_id) == (routing.NO_CANDIDATES, NOW + 86400, None)


def test_a_new_location_ends_a_deferral(dynamodb):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", (39.9042, 116.4074))
    run(finder)
    wiring.locations().save("cu_1", locations.coarsen(*CHUNXI, source=locations.STATED, at=NOW + 100),
                            queue_for_routing=True)

    assert run(finder, now=NOW + 900)["assigned"] == 1
    assert customer("cu_1").owning_store_id == "st-a"


# --- city-only customers -------------------------------------------------------

def test_city_only_customers_take_turns_among_the_citys_suitable_stores(dynamodb):
    given_store("st-a", CHUNXI, dealer_id="dl-a")
    given_store("st-b", east_of(CHUNXI, 8_000), dealer_id="dl-b")
    given_store("st-closed-for-good", east_of(CHUNXI, 100), dealer_id="dl-a", status="DEACTIVATED")
    given_store("st-repair-only", east_of(CHUNXI, 200), dealer_id="dl-b", services=("repair",))
    given_store("st-wuhan", (30.58, 114.287), dealer_id="dl-c", city="Wuhan")
    ids = [given_customer(f"cu_{n}", city="Chengdu") for n in range(40)]
    finder = FakeFinder()

    result = run(finder, RoutingSettings(service="pickup"))

    assert finder.calls == [] and result["city_lookups"] == 1
    assert counts() == {"st-a": 20, "st-b": 20}
    assert result["by_reason"] == {routing.ROTATED_WITHIN_TOLERANCE: 40}
    assert {customer(c).route_distance_m for c in ids} == {None}


# --- the lease -----------------------------------------------------------------

def test_a_run_started_while_another_runs_exits_at_once_and_says_so(dynamodb):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", CHUNXI)
    concurrent = []
    finder.hooks.append(lambda: concurrent.append(run(FakeFinder(finder.stores), now=NOW + 5)))

    first = run(finder)

    [second] = concurrent
    assert second["outcome"] == LEASE_HELD and second["lease_holder"] == first["run_id"]
    assert first["outcome"] == "DONE" and first["assigned"] == 1
    assert [c.reason for c in wiring.ownership().history("cu_1")] == ["ROUTED_TO_NEAREST"]
    assert run(finder, now=NOW + 10)["outcome"] == "DONE"           # given back at the end


def test_a_lease_left_by_a_crashed_run_is_taken_once_it_ran_out(dynamodb):
    from chalicelib.db.records import JobLeaseRecord

    JobLeaseRecord("route-traffic", holder="rt_crashed", lease_until=NOW + 30, acquired_at=NOW - 270).save()
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", CHUNXI)

    assert run(finder)["outcome"] == LEASE_HELD
    assert customer("cu_1").owning_store_id is None
    assert run(finder, now=NOW + 31)["assigned"] == 1


def test_a_run_that_loses_its_lease_stops_after_the_page(dynamodb):
    from chalicelib.db.records import JobLeaseRecord

    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    ids = [given_customer(f"cu_{n}", CHUNXI) for n in range(40)]      # spread over the ten shards
    finder.hooks.append(lambda: JobLeaseRecord("route-traffic").update(
        actions=[JobLeaseRecord.holder.set("rt_other")]))

    result = run(finder)

    assert result["outcome"] == LEASE_LOST and result["pages"] == 1
    assert 0 < result["assigned"] < 40
    assert sum(customer(c).owning_store_id is not None for c in ids) == result["assigned"]


def test_a_run_out_of_time_leaves_the_rest_for_the_next(dynamodb):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", CHUNXI)
    ticks = iter([0.0, 100.0])

    result = run(finder, time_budget_s=10, monotonic=lambda: next(ticks, 200.0))

    assert (result["outcome"], result["read"]) == (OUT_OF_TIME, 0)
    assert run(finder, now=NOW + 900)["assigned"] == 1


# --- the scheduled job, the brand's settings and the report ---------------------

@pytest.fixture
def office(dynamodb):
    from infra.local.seed import seed_demo_data
    from tests.unit.test_scenes import Office

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def test_the_job_is_scheduled_every_15_minutes_and_runnable_by_name():
    import app as app_module
    from chalice.app import ScheduledEventConfig

    jobs = {s.name: s for s in app_module.app.event_sources if isinstance(s, ScheduledEventConfig)}
    assert jobs["route-traffic"].schedule_expression.to_string() == "rate(15 minutes)"
    assert jobs["route-traffic"].handler_string == "app.route_traffic"


def test_the_brand_edits_its_routing_settings_in_the_back_office(office):
    defaults = {"service": None, "tolerance_m": 500.0, "tolerance_ratio": 0.1, "daily_cap_per_store": 500, "k": 8,
                "store_daily_caps": {}, "version": 0}
    assert office("brand", "brand-lumen", "GET", "/v1/admin/brand/routing-settings").json == defaults
    put = office("brand", "brand-lumen", "PUT", "/v1/admin/brand/routing-settings",
                 {"service": "repair", "tolerance_m": 800, "daily_cap_per_store": None,
                  "store_daily_caps": {"store-cd-chunxi": 10}})
    assert put.status_code == 200, put.json
    assert put.json == {**defaults, "service": "repair", "tolerance_m": 800.0, "daily_cap_per_store": None,
                        "store_daily_caps": {"store-cd-chunxi": 10}, "version": 1}
    assert office("brand", "brand-lumen", "GET", "/v1/admin/brand/routing-settings").json == put.json
    assert wiring.routing_config().get_settings("brand-lumen").service == "repair"


@pytest.mark.parametrize("body, field", [
    ({"service": "massage"}, "service"), ({"tolerance_m": -1}, "tolerance_m"), ({"tolerance_m": True}, "tolerance_m"),
    ({"tolerance_ratio": 1.5}, "tolerance_ratio"), ({"daily_cap_per_store": 0}, "daily_cap_per_store"),
    ({"k": 21}, "k"), ({"k": 2.5}, "k"), ({"store_daily_caps": {"a|b": 3}}, "store_daily_caps"),
    ({"store_daily_caps": {"st-a": -1}}, "st-a"), ({"store_daily_caps": []}, "store_daily_caps"),
])
def test_bad_routing_settings_are_400_naming_the_field(office, body, field):
    response = office("brand", "brand-lumen", "PUT", "/v1/admin/brand/routing-settings", body)
    assert response.status_code == 400 and response.json["error"]["details"].get("field") == field, response.json


def test_only_the_brand_configures_routing_and_reads_the_report(office):
    for role, tenant in (("dealer", "dealer-shu"), ("store", "store-cd-chunxi")):
        for method, path, body in (("GET", "/v1/admin/brand/routing-settings", None),
                                   ("PUT", "/v1/admin/brand/routing-settings", {}),
                                   ("GET", "/v1/admin/routing/report", None)):
            assert office(role, tenant, method, path, body).status_code == 403


def test_two_changes_read_apart_cannot_both_land(office):
    from chalicelib.domain.routing_config import RoutingSettings as S
    from chalicelib.errors import Conflict

    repository = wiring.routing_config()
    _, version = repository.settings_and_version("brand-lumen")
    repository.put_settings("brand-lumen", S(k=4), expected_version=version)
    with pytest.raises(Conflict):
        repository.put_settings("brand-lumen", S(k=5), expected_version=version)
    assert repository.get_settings("brand-lumen").k == 4


def test_the_scheduled_job_routes_with_the_real_finder_and_the_brands_settings(office, monkeypatch):
    from chalicelib.jobs import route_traffic as job

    office("brand", "brand-lumen", "PUT", "/v1/admin/brand/routing-settings", {"service": "repair"})
    given_customer("cu_job", CHUNXI, at=wiring.now() - 60)
    given_customer("cu_city", city="Wuhan", at=wiring.now() - 60)

    result = job.run()

    assert (result["outcome"], result["assigned"]) == ("DONE", 2), result
    # repair in Chengdu: the flagship or the software park; in Wuhan: three stores offer it
    assert customer("cu_job").owning_store_id in ("store-cd-chunxi", "store-cd-softpark")
    assert customer("cu_city").owning_store_id in ("store-wh-jianghan", "store-wh-optics", "store-wh-chuhe")
    assert job.run()["read"] == 0


def test_the_routing_report_of_a_day(office):
    a = given_store("st-a", CHUNXI, dealer_id="dl-a")
    b = given_store("st-b", east_of(CHUNXI, 50), dealer_id="dl-b")
    for n in range(6):
        given_customer(f"cu_{n}", CHUNXI)
    result = run(FakeFinder([a, b]))

    report = office("brand", "brand-lumen", "GET", f"/v1/admin/routing/report?date={DAY}")

    assert report.status_code == 200, report.json
    assert {k: report.json[k] for k in ("date", "assigned", "by_dealer", "dealer_share", "by_store")} == {
        "date": DAY, "assigned": 6, "by_dealer": {"dl-a": 3, "dl-b": 3}, "dealer_share": {"dl-a": 0.5, "dl-b": 0.5},
        "by_store": {"st-a": 3, "st-b": 3}}
    [run_entry] = report.json["runs"]
    assert (run_entry["run_id"], run_entry["assigned"], run_entry["read"]) == (result["run_id"], 6, 6)
    empty = office("brand", "brand-lumen", "GET", "/v1/admin/routing/report?date=2026-01-01").json
    assert (empty["assigned"], empty["runs"]) == (0, [])
    assert office("brand", "brand-lumen", "GET", "/v1/admin/routing/report?date=23-11-2026").status_code == 400


def test_the_run_is_logged_as_one_json_line(dynamodb, capsys):
    finder = FakeFinder([given_store("st-a", CHUNXI, dealer_id="dl-a")])
    given_customer("cu_1", CHUNXI)

    result = run(finder)

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [entry] = [line for line in lines if line.get("message") == "route-traffic"]
    assert entry["run_id"] == result["run_id"] and entry["by_store"] == {"st-a": 1} and entry["assigned"] == 1
