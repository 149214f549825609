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
