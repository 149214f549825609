"""Scanning a QR scene: binding, visits, points once per Beijing day, bad inputs."""
import json

import pytest

from chalicelib.services import wiring
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import shop  # noqa: F401 - the fixture


def make_scene(scene, store_id, kind="store", status="ACTIVE", staff_id=None):
    from chalicelib.db.records import SceneRecord

    SceneRecord(scene, kind=kind, brand_id="brand-lumen", store_id=store_id, dealer_id=None, staff_id=staff_id,
                status=status, created_at=wiring.now()).save()


def scan(shop, body, who="alice", raw=None):  # noqa: F811
    response = shop.client.http.post("/v1/scans", body=raw if raw is not None else json.dumps(body), headers={
        "Authorization": f"Bearer {shop.token(who)}", "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def test_a_store_scan_binds_a_new_customer_and_a_second_store_is_only_a_visit(shop):  # noqa: F811
    make_scene("s.chunxi", "store-cd-chunxi")
    make_scene("s.optics", "store-wh-optics")
    status, first = scan(shop, {"scene": "s.chunxi", "lat": 30.6571, "lng": 104.0806})
    assert status == 201 and first["binding"] == "FIRST_SCAN" and first["bound_store_id"] == "store-cd-chunxi"
    assert first["store"]["name"] == "Chunxi Road flagship" and first["points_awarded"] == 10
    status, second = scan(shop, {"scene": "s.optics"})
    assert second["binding"] == "VISIT_RECORDED" and second["bound_store_id"] == "store-cd-chunxi"
    me = json.loads(shop.client.http.get("/v1/me", headers={"Authorization": f"Bearer {shop.token()}"}).body)
    assert me["owning_store"]["store_id"] == "store-cd-chunxi" and me["points_balance"] == 20
    from chalicelib.db.records import ScanRecord

    kept = ScanRecord.get(first["scan_id"])
    assert kept.area_cell and not hasattr(kept, "lat")          # coarsened, no coordinates kept


def test_points_for_one_scene_once_per_beijing_day(shop, monkeypatch):  # noqa: F811
    make_scene("s.tianfu", "store-cd-tianfu")
    assert [scan(shop, {"scene": "s.tianfu"})[1]["points_awarded"] for _ in range(2)] == [10, 0]
    later = wiring.now() + 86400
    monkeypatch.setattr(wiring, "now", lambda: later)
    assert scan(shop, {"scene": "s.tianfu"})[1]["points_awarded"] == 10
    me = json.loads(shop.client.http.get("/v1/me", headers={"Authorization": f"Bearer {shop.token()}"}).body)
    assert me["points_balance"] == 20


def test_a_purchase_elsewhere_then_moves_the_owner_and_history_has_both(shop):  # noqa: F811
    from chalicelib.services.attribution import on_attribute_purchase

    make_scene("s.optics2", "store-wh-optics")
    scan(shop, {"scene": "s.optics2"})
    order = paid_order(shop, "moved")          # at store-cd-chunxi
    on_attribute_purchase("ob", {"order_id": order["order_id"]})
    customer_id = wiring.orders().get(order["order_id"]).customer_id
    changes = [(c.from_store_id, c.to_store_id, c.reason) for c in wiring.ownership().history(customer_id)]
    assert changes == [(None, "store-wh-optics", "FIRST_SCAN"), ("store-wh-optics", "store-cd-chunxi", "LAST_PURCHASE")]


def test_unknown_and_retired_scenes_are_404_and_still_recorded(shop):  # noqa: F811
    make_scene("s.old", "store-cd-chunxi", status="RETIRED")
    for scene in ("s.nothing", "s.old"):
        status, body = scan(shop, {"scene": scene})
        assert status == 404 and body["error"]["code"] == "SCENE_NOT_FOUND"
        from chalicelib.db.records import ScanRecord

        assert ScanRecord.get(body["error"]["details"]["scan_id"]).outcome == "SCENE_NOT_FOUND"


@pytest.mark.parametrize("body, raw", [
    ({"scene": "x" * 33}, None), ({"scene": "a|b"}, None), ({"scene": "s.x", "lat": 91, "lng": 1}, None),
    ({"scene": "s.x", "lat": 30, "lng": "x"}, None), ({}, None), ({"scene": ""}, None), ({"scene": 5}, None),
    ({"scene": "s.x", "lat": 30}, None), (None, '{"scene": "' + "a" * (1024 * 1024) + '"}'), (None, "{"),
])
def test_malformed_scans_are_4xx(shop, body, raw):  # noqa: F811
    status, response = scan(shop, body, raw=raw)
    assert 400 <= status < 500 and response["error"]["code"] in ("VALIDATION_FAILED", "MALFORMED_JSON")


def card_scene(scene, store_id):
    """A scene as the back office makes it: with a copy of its store's card."""
    from chalicelib.domain.scenes import Scene, store_card

    store = wiring.network().get_store(store_id)
    wiring.scenes().add(Scene(scene=scene, kind="store", brand_id="brand-lumen", store_id=store_id,
                              dealer_id=store.dealer_id, store_card=store_card(store), created_at=wiring.now()))


def test_a_scan_reads_the_store_card_from_the_scene_and_a_store_change_refreshes_it(shop, monkeypatch):  # noqa: F811
    from chalicelib import auth
    from chalicelib.db.scans import ScanRepository
    from chalicelib.services.network_admin import update_store

    card_scene("s.card", "store-cd-tianfu")
    monkeypatch.setattr(ScanRepository, "store", lambda self, store_id: pytest.fail("read the store item"))
    assert scan(shop, {"scene": "s.card"}, who="cara")[1]["store"]["name"] == "Tianfu Square"

    brand = auth.BackOfficePrincipal("brand", "brand-lumen")
    update_store(brand, "store-cd-tianfu", {"name": "Tianfu Park (new)"}, network=wiring.network(),
                 scenes=wiring.scenes())
    assert scan(shop, {"scene": "s.card"}, who="dan")[1]["store"]["name"] == "Tianfu Park (new)"

    update_store(brand, "store-cd-tianfu", {"status": "DEACTIVATED"}, network=wiring.network(),
                 scenes=wiring.scenes())
    status, answer = scan(shop, {"scene": "s.card"}, who="eve")
    assert status == 201 and answer["binding"] == "NO_STORE" and answer["store"] is None
    assert answer["bound_store_id"] is None


def test_an_older_card_never_overwrites_a_newer_one(shop):  # noqa: F811
    from chalicelib.db.records import SceneRecord, StoreRecord

    card_scene("s.race", "store-cd-tianfu")
    StoreRecord("store-cd-tianfu").update(actions=[StoreRecord.name.set("Newest"), StoreRecord.version.set(7)])
    assert wiring.scenes().refresh_store_card("store-cd-tianfu") == 1
    StoreRecord("store-cd-tianfu").update(actions=[StoreRecord.name.set("Stale"), StoreRecord.version.set(6)])
    assert wiring.scenes().refresh_store_card("store-cd-tianfu") == 0      # a slower refresh of version 6
    scene = SceneRecord.get("s.race")
    assert (scene.store_card["name"], scene.store_card_version) == ("Newest", 7)


def test_a_campaign_welcome_shows_only_while_the_campaign_runs():
    from chalicelib.domain.scenes import welcome_for
    from chalicelib.domain.time import parse_rfc3339

    campaign = {"name": "Back to school", "store_ids": ["s1"], "starts_at": "2026-09-01T00:00:00+08:00",
                "ends_at": "2026-09-15T00:00:00+08:00"}
    welcome = {"title": "Back to school!", "message": "10 days only", "featured_skus": []}
    card = {"name": "Chunxi"}
    at = lambda text: parse_rfc3339(text).timestamp()  # noqa: E731
    assert welcome_for(welcome, campaign, card, at("2026-09-01T00:00:00+08:00")) == welcome
    assert welcome_for(welcome, campaign, card, at("2026-09-14T23:59:59+08:00")) == welcome
    assert welcome_for(welcome, campaign, card, at("2026-09-15T00:00:00+08:00"))["title"] == "Welcome to Chunxi"
    assert welcome_for(welcome, campaign, card, at("2026-08-31T23:59:59+08:00"))["title"] == "Welcome to Chunxi"
    assert welcome_for(welcome, None, card, 0) == welcome and welcome_for(None, None, None, 0)["title"] == "Welcome"


def test_a_staff_badge_binds_to_the_store_and_credits_the_staff_member(shop):  # noqa: F811
    from chalicelib.db.records import OutboxRecord

    make_scene("f.guide", "store-cd-chunxi", kind="staff", staff_id="staff-chunxi-1")
    status, answer = scan(shop, {"scene": "f.guide"}, who="fay")
    assert status == 201 and answer["binding"] == "FIRST_SCAN" and answer["scene"]["staff_id"] == "staff-chunxi-1"
    customer_id = shop.get("/v1/me", who="fay").json["customer_id"]
    [change] = wiring.ownership().history(customer_id)
    assert (change.to_store_id, change.staff_id, change.reason) == ("store-cd-chunxi", "staff-chunxi-1", "FIRST_SCAN")
    kinds = sorted((o.kind, o.payload.get("staff_id")) for o in OutboxRecord.scan()
                   if o.payload.get("customer_id") == customer_id)
    assert kinds == [("CUSTOMER_BOUND", "staff-chunxi-1"), ("SCAN_RECORDED", "staff-chunxi-1")]


def test_a_unit_code_scanned_twice_reports_count_two_and_when_it_was_first_seen(shop, monkeypatch):  # noqa: F811
    from chalicelib.db.records import SceneRecord
    from chalicelib.domain.time import rfc3339

    SceneRecord("u.unit0000000001", kind="unit", brand_id="brand-lumen", sku="LM-MS-WL", batch_id="ub_1",
                unit_scan_count=0, status="ACTIVE", created_at=wiring.now()).save()
    first_at = wiring.now()
    monkeypatch.setattr(wiring, "now", lambda: first_at)
    status, first = scan(shop, {"scene": "u.unit0000000001", "lat": 30.6571, "lng": 104.0806}, who="gus")
    assert status == 201 and first["unit"] == {"sku": "LM-MS-WL", "scan_count": 1, "first_seen_at": rfc3339(first_at),
                                               "areas_seen": 1, "suspicious": False}
    assert first["binding"] == "NO_STORE" and first["scene"]["kind"] == "unit"
    later = first_at + 3600
    monkeypatch.setattr(wiring, "now", lambda: later)
    status, second = scan(shop, {"scene": "u.unit0000000001"}, who="hal")
    assert second["unit"]["scan_count"] == 2 and second["unit"]["first_seen_at"] == rfc3339(first_at)
    # Seen in four far-apart places: more than one real unit travels.
    for who, (lat, lng) in zip(("i1", "i2", "i3"), ((39.9, 116.4), (31.2, 121.5), (23.1, 113.3))):
        status, answer = scan(shop, {"scene": "u.unit0000000001", "lat": lat, "lng": lng}, who=who)
    assert answer["unit"]["scan_count"] == 5 and answer["unit"]["areas_seen"] == 4 and answer["unit"]["suspicious"]
    kept = SceneRecord.get("u.unit0000000001")
    assert (kept.unit_scan_count, float(kept.unit_first_seen_at)) == (5, first_at)


def test_a_unit_count_raced_by_another_scan_is_decided_again(shop, monkeypatch):  # noqa: F811
    from chalicelib.db.records import SceneRecord
    from chalicelib.db.scans import ScanRepository

    SceneRecord("u.unit0000000002", kind="unit", brand_id="brand-lumen", sku="LM-MS-WL", batch_id="ub_1",
                unit_scan_count=0, status="ACTIVE", created_at=wiring.now()).save()
    original, raced = ScanRepository.record, []

    def record_after_a_rival(self, write):
        if write.unit and not raced:
            raced.append(1)
            SceneRecord("u.unit0000000002").update(actions=[SceneRecord.unit_scan_count.set(1),
                                                            SceneRecord.unit_first_seen_at.set(1.0)])
        return original(self, write)

    monkeypatch.setattr(ScanRepository, "record", record_after_a_rival)
    status, answer = scan(shop, {"scene": "u.unit0000000002"}, who="jo")
    assert status == 201 and answer["unit"]["scan_count"] == 2
    assert SceneRecord.get("u.unit0000000002").unit_scan_count == 2
