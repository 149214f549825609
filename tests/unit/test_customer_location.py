"""Where customers are (M11): PUT /v1/me/location and scans store a coarse location
(never the coordinates given), newest wins, and a customer nobody owns joins the
route-traffic queue until anyone gives them an owner."""
import json

import h3
import pytest

from chalicelib.domain import locations
from chalicelib.domain.customers import Customer
from chalicelib.services import wiring
from chalicelib.services.customer_location import set_location
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_scans import make_scene, scan

CHUNXI = (30.65712, 104.08068)      # a few metres from the Chunxi Road store: a precise point


def put_location(shop, body, who="alice", raw=None):  # noqa: F811
    response = shop.client.http.put("/v1/me/location", body=raw if raw is not None else json.dumps(body), headers={
        "Authorization": f"Bearer {shop.token(who)}", "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def customer_item(shop, who="alice"):  # noqa: F811
    from chalicelib.db.records import CustomerRecord

    me = json.loads(shop.client.http.get("/v1/me", headers={"Authorization": f"Bearer {shop.token(who)}"}).body)
    return CustomerRecord.get(me["customer_id"], consistent_read=True)


def stored_numbers(record) -> list[float]:
    """Every number on the item (to prove the raw coordinates are not among them)."""
    return [float(v["N"]) for v in record.serialize().values() if "N" in v]


# --- the pure rules ----------------------------------------------------------

def test_locations_are_as_coarse_as_a_scans_area():
    from chalicelib.services.scans import AREA_CELL_RESOLUTION

    assert locations.LOCATION_CELL_RESOLUTION == AREA_CELL_RESOLUTION == 5


def test_coarsening_keeps_the_cell_and_its_centre_only():
    place = locations.coarsen(*CHUNXI, source=locations.STATED, at=1.0)
    assert place.cell == h3.latlng_to_cell(*CHUNXI, 5)
    assert (place.lat, place.lng) == tuple(round(x, 6) for x in h3.cell_to_latlng(place.cell))
    assert (place.lat, place.lng) != CHUNXI
    # every point of the district gives the same answer
    neighbour = h3.cell_to_latlng(h3.cell_to_children(place.cell, 9)[17])
    assert locations.coarsen(*neighbour, source=locations.STATED, at=1.0) == place


def test_route_shards_are_stable_and_spread():
    shards = [locations.route_shard(f"cu_{n}") for n in range(1000)]
    assert shards[:3] == [locations.route_shard(f"cu_{n}") for n in range(3)]
    assert set(shards) == {f"R{n}" for n in range(10)}
    assert max(shards.count(s) for s in set(shards)) < 140


# --- PUT /v1/me/location -----------------------------------------------------

def test_coordinates_are_stored_coarsened_and_an_unowned_customer_joins_the_queue(shop):  # noqa: F811
    status, body = put_location(shop, {"lat": CHUNXI[0], "lng": CHUNXI[1]})
    cell = h3.latlng_to_cell(*CHUNXI, 5)
    centre = tuple(round(x, 6) for x in h3.cell_to_latlng(cell))
    assert status == 200, body
    assert body["awaiting_route"] is True
    assert body["location"] | {"located_at": None} == {
        "kind": "CELL", "cell": cell, "lat": centre[0], "lng": centre[1], "city": None, "resolution": 5,
        "source": "STATED", "located_at": None}

    item = customer_item(shop)
    assert (item.location_kind, item.location_cell, item.location_lat, item.location_lng) == ("CELL", cell, *centre)
    assert CHUNXI[0] not in stored_numbers(item) and CHUNXI[1] not in stored_numbers(item)
    assert item.awaiting_route == locations.route_shard(item.customer_id)
    assert item.route_due_at == item.located_at


def test_a_city_replaces_coordinates_and_the_cell_is_removed(shop):  # noqa: F811
    put_location(shop, {"lat": CHUNXI[0], "lng": CHUNXI[1]})
    status, body = put_location(shop, {"city": "  Chengdu "})
    assert status == 200 and body["location"]["kind"] == "CITY" and body["location"]["city"] == "Chengdu"
    assert body["location"]["cell"] is None and body["location"]["resolution"] is None
    item = customer_item(shop)
    assert (item.location_kind, item.location_city) == ("CITY", "Chengdu")
    assert item.location_cell is None and item.location_lat is None and item.location_lng is None


@pytest.mark.parametrize("body, raw, message", [
    ({"lat": 30.6, "lng": 104.0, "city": "Chengdu"}, None, "not both"),
    ({}, None, "Send 'lat' and 'lng', or 'city'."),
    ({"lat": 30.6}, None, "'lng' must be a number of degrees."),
    ({"lng": 104.0}, None, "'lat' must be a number of degrees."),
    ({"lat": 91, "lng": 104.0}, None, "'lat' must be between -90 and 90."),
    ({"lat": 30.6, "lng": -181}, None, "'lng' must be between -180 and 180."),
    ({"lat": True, "lng": 104.0}, None, "'lat' must be a number of degrees."),
    ({"lat": "30.6", "lng": 104.0}, None, "'lat' must be a number of degrees."),
    ({"city": ""}, None, "'city' must be 1 to 40 printable characters."),
    ({"city": "   "}, None, "'city' must be 1 to 40 printable characters."),
    ({"city": "C" * 41}, None, "'city' must be 1 to 40 printable characters."),
    ({"city": "Cheng\ndu"}, None, "'city' must be 1 to 40 printable characters."),
    ({"city": 5}, None, "'city' must be a string."),
    ({"city": "Atlantis"}, None, "'city' must be a city where the brand has a store"),
    ({"city": "chengdu"}, None, "'city' must be a city where the brand has a store"),
    ({"lat": 30.6, "lng": 104.0, "accuracy": 5}, None, "Unknown field(s): accuracy."),
    (None, "[30.6, 104.0]", "The body must be a JSON object."),
])
def test_malformed_locations_are_400_with_a_message(shop, body, raw, message):  # noqa: F811
    status, answer = put_location(shop, body, raw=raw)
    assert status == 400, answer
    assert answer["error"]["code"] in ("VALIDATION_FAILED", "MALFORMED_JSON")
    assert message in answer["error"]["message"]
    assert customer_item(shop).location_kind is None          # nothing stored


def test_a_location_needs_a_session(shop):  # noqa: F811
    response = shop.client.http.put("/v1/me/location", body=json.dumps({"city": "Chengdu"}),
                                    headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_an_owned_customer_is_located_but_not_queued(shop):  # noqa: F811
    make_scene("s.loc-own", "store-cd-chunxi")
    scan(shop, {"scene": "s.loc-own"})
    status, body = put_location(shop, {"city": "Wuhan"})
    assert status == 200 and body["awaiting_route"] is False
    item = customer_item(shop)
    assert item.location_city == "Wuhan" and item.awaiting_route is None and item.route_due_at is None


def test_the_newest_location_wins(shop, monkeypatch):  # noqa: F811
    from chalicelib.db.records import CustomerRecord

    put_location(shop, {"city": "Wuhan"})
    item = customer_item(shop)
    later = item.located_at + 60
    CustomerRecord(item.customer_id).update(actions=[CustomerRecord.located_at.set(later)])   # stored "later"
    status, body = put_location(shop, {"city": "Chengdu"})
    assert status == 200 and body["location"]["city"] == "Wuhan"      # what is stored, not what was sent
    assert customer_item(shop).location_city == "Wuhan"


def test_an_owner_that_appears_meanwhile_keeps_the_customer_out_of_the_queue(shop):  # noqa: F811
    """The session read the customer without an owner; a scan binds them before the write."""
    make_scene("s.loc-race", "store-cd-tianfu")
    item = customer_item(shop)
    stale = Customer(item.customer_id, item.openid, item.unionid, item.first_seen_at, item.last_seen_at)
    scan(shop, {"scene": "s.loc-race"})
    answer = set_location(stale, {"city": "Chengdu"}, locations=wiring.locations(), now=wiring.now())
    assert answer["awaiting_route"] is False and answer["location"]["city"] == "Chengdu"
    item = customer_item(shop)
    assert item.owning_store_id == "store-cd-tianfu" and item.awaiting_route is None


# --- scans -------------------------------------------------------------------

def test_a_scan_with_coordinates_stores_the_location_and_a_binding_ends_the_wait(shop):  # noqa: F811
    put_location(shop, {"city": "Chengdu"})
    assert customer_item(shop).awaiting_route is not None
    make_scene("s.loc-bind", "store-cd-chunxi")
    status, answer = scan(shop, {"scene": "s.loc-bind", "lat": CHUNXI[0], "lng": CHUNXI[1]})
    assert status == 201 and answer["binding"] == "FIRST_SCAN"
    item = customer_item(shop)
    assert (item.location_kind, item.location_source, item.location_cell) == (
        "CELL", "SCAN", h3.latlng_to_cell(*CHUNXI, 5))
    assert item.location_city is None and CHUNXI[0] not in stored_numbers(item)
    assert item.awaiting_route is None and item.route_due_at is None


def test_a_scan_that_binds_nobody_queues_the_customer(shop):  # noqa: F811
    make_scene("s.loc-product", None, kind="product")
    status, answer = scan(shop, {"scene": "s.loc-product", "lat": CHUNXI[0], "lng": CHUNXI[1]})
    assert status == 201 and answer["bound_store_id"] is None
    item = customer_item(shop)
    assert item.location_source == "SCAN" and item.awaiting_route == locations.route_shard(item.customer_id)


def test_a_scan_never_overwrites_a_newer_location(shop):  # noqa: F811
    from chalicelib.db.records import CustomerRecord

    put_location(shop, {"city": "Wuhan"})
    item = customer_item(shop)
    CustomerRecord(item.customer_id).update(actions=[CustomerRecord.located_at.set(item.located_at + 3600)])
    make_scene("s.loc-old", None, kind="product")
    status, _ = scan(shop, {"scene": "s.loc-old", "lat": CHUNXI[0], "lng": CHUNXI[1]})
    assert status == 201                                   # the scan is recorded all the same
    item = customer_item(shop)
    assert (item.location_kind, item.location_city, item.location_source) == ("CITY", "Wuhan", "STATED")


def test_a_purchase_that_gives_an_owner_ends_the_wait(shop):  # noqa: F811
    put_location(shop, {"city": "Chengdu"})
    item = customer_item(shop)
    wiring.ownership().change(item.customer_id, None, "store-cd-chunxi", "dealer-shu", "PURCHASED", "LAST_PURCHASE",
                              "purchase#o1", wiring.now())
    item = customer_item(shop)
    assert item.owning_store_id == "store-cd-chunxi" and item.awaiting_route is None and item.route_due_at is None
