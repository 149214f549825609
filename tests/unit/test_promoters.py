"""Promoters: applying, approval, share scenes, binding rules and the chain (moto, in-process)."""
import json

import pytest

from chalicelib import auth
from chalicelib.config import reset_settings
from chalicelib.domain import attribution as rules
from chalicelib.services import wiring
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_scans import make_scene, scan

BRAND = "brand-lumen"


def post(shop, path, who, body=None):  # noqa: F811
    response = shop.client.http.post(path, body=json.dumps(body) if body is not None else None, headers={
        "Authorization": f"Bearer {shop.token(who)}", "Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def office(shop, method, path, role="brand", tenant=BRAND):  # noqa: F811
    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    response = getattr(shop.client.http, method.lower())(path, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, json.loads(response.body)


def customer_id(shop, who):  # noqa: F811
    return shop.get("/v1/me", who=who).json["customer_id"]


def promoter(shop, who, store_scene="s.chunxi"):  # noqa: F811
    """``who`` scans a store (so they belong to one) and becomes a promoter: their share scene."""
    scan(shop, {"scene": store_scene}, who=who)
    status, body = post(shop, "/v1/promoters", who)
    assert status == 201 and body["status"] == "APPROVED", body
    return body["scene"]


@pytest.fixture
def stores(shop):  # noqa: F811
    make_scene("s.chunxi", "store-cd-chunxi")
    make_scene("s.optics", "store-wh-optics")
    return shop


def test_a_customer_becomes_a_promoter_once_with_a_share_scene_for_their_store(stores):
    share = promoter(stores, "amy")
    assert share.startswith("m.") and len(share) <= 32
    again = post(stores, "/v1/promoters", "amy", {})
    assert again[0] == 200 and again[1]["scene"] == share
    assert stores.get("/v1/promoters/me", who="amy").json["store_id"] == "store-cd-chunxi"
    assert stores.get("/v1/me", who="amy").json["promoter"] == {"status": "APPROVED"}
    from chalicelib.db.records import SceneRecord

    scene = SceneRecord.get(share)
    assert (scene.kind, scene.promoter_customer_id, scene.store_id) == ("promoter", customer_id(stores, "amy"),
                                                                        "store-cd-chunxi")
    assert scene.store_card["name"] == "Chunxi Road flagship"


def test_a_customer_without_a_store_cannot_promote_and_a_body_is_checked(stores):
    status, body = post(stores, "/v1/promoters", "nobody")
    assert status == 422 and body["error"]["code"] == "PROMOTER_NEEDS_STORE"
    status, body = post(stores, "/v1/promoters", "nobody", {"level": 3})
    assert status == 400 and body["error"]["code"] == "VALIDATION_FAILED"
    assert stores.get("/v1/promoters/me", who="nobody").json["error"]["code"] == "NOT_A_PROMOTER"


def test_the_chain_a_b_c_is_kept_and_a_second_promoter_does_not_rebind_b(stores):
    a_share = promoter(stores, "a")
    status, b_scan = scan(stores, {"scene": a_share}, who="b")
    assert status == 201 and b_scan["promoter"]["outcome"] == "PROMOTER_BOUND"
    assert b_scan["bound_store_id"] == "store-cd-chunxi"          # sent to A's store, as a first scan
    b_share = post(stores, "/v1/promoters", "b")[1]["scene"]
    scan(stores, {"scene": b_share}, who="c")
    a, b, c = (customer_id(stores, w) for w in "abc")
    from chalicelib.db.records import CustomerRecord

    assert CustomerRecord.get(b).promoter_chain == [a]
    assert CustomerRecord.get(c).promoter_chain == [b, a]
    z_share = promoter(stores, "z", "s.optics")
    status, again = scan(stores, {"scene": z_share}, who="b")
    assert again["promoter"]["outcome"] == "PROMOTER_KEPT" and CustomerRecord.get(b).promoter_id == a

    status, detail = office(stores, "GET", f"/v1/admin/promoters/{b}")
    assert status == 200 and detail["upline"] == [a]
    status, friends = office(stores, "GET", f"/v1/admin/promoters/{a}/friends")
    assert [(f["customer_id"], f["chain"]) for f in friends["items"]] == [(b, [a])]


def test_the_chain_stops_at_three_levels_and_never_loops(stores):
    shares = [promoter(stores, "p1")]
    for n in range(2, 6):
        scan(stores, {"scene": shares[-1]}, who=f"p{n}")
        shares.append(post(stores, "/v1/promoters", f"p{n}")[1]["scene"])
    ids = [customer_id(stores, f"p{n}") for n in range(1, 6)]
    from chalicelib.db.records import CustomerRecord

    assert CustomerRecord.get(ids[4]).promoter_chain == [ids[3], ids[2], ids[1]]
    # p1 (no promoter of their own) arrives through p3's code: p3's upline holds p1.
    status, body = scan(stores, {"scene": shares[2]}, who="p1")
    assert body["promoter"]["outcome"] == "WOULD_LOOP" and CustomerRecord.get(ids[0]).promoter_id is None
    status, own = scan(stores, {"scene": shares[0]}, who="p1")
    assert own["promoter"]["outcome"] == "OWN_SHARE_CODE"


def test_binding_under_a_promoter_emits_a_promoter_bound_event(stores):
    from chalicelib.db.records import OutboxRecord

    share = promoter(stores, "amy")
    scan(stores, {"scene": share}, who="ben")
    bound = [o.payload for o in OutboxRecord.scan() if o.kind == "PROMOTER_BOUND"]
    assert bound == [{"customer_id": customer_id(stores, "ben"), "promoter_id": customer_id(stores, "amy"),
                      "chain": [customer_id(stores, "amy")], "previous_promoter_id": None, "rule": "FIRST_TOUCH",
                      "scene": share, "at": bound[0]["at"]}]


def test_last_touch_moves_the_customer_and_ends_the_old_referral(stores, monkeypatch):
    from chalicelib.db.records import CustomerRecord, ReferralRecord
    from chalicelib.services.scans import ScanPolicy
    from chalicelib.services.scans import scan as scan_use_case

    first, second = promoter(stores, "amy"), promoter(stores, "zed", "s.optics")
    ben = customer_id(stores, "ben")
    policy = ScanPolicy(promoter_rule=rules.PROMOTER_LAST_TOUCH)
    scan_use_case(ben, first, None, None, scans=wiring.scans(), now=wiring.now(), policy=policy)
    moved = scan_use_case(ben, second, None, None, scans=wiring.scans(), now=wiring.now() + 1, policy=policy)
    amy, zed = customer_id(stores, "amy"), customer_id(stores, "zed")
    assert moved["promoter"]["outcome"] == "PROMOTER_BOUND" and CustomerRecord.get(ben).promoter_chain == [zed]
    assert ReferralRecord.get(amy, ben).ended_at is not None and ReferralRecord.get(zed, ben).ended_at is None


def test_new_customers_only_leaves_an_old_customer_unbound(stores):
    from chalicelib.db.records import CustomerRecord
    from chalicelib.services.scans import ScanPolicy
    from chalicelib.services.scans import scan as scan_use_case

    share = promoter(stores, "amy")
    ben = customer_id(stores, "ben")
    CustomerRecord(ben).update(actions=[CustomerRecord.first_seen_at.set(wiring.now() - 2 * 86400)])
    answer = scan_use_case(ben, share, None, None, scans=wiring.scans(), now=wiring.now(),
                           policy=ScanPolicy(promoter_rule=rules.PROMOTER_NEW_CUSTOMERS_ONLY))
    assert answer["promoter"]["outcome"] == "NOT_A_NEW_CUSTOMER" and CustomerRecord.get(ben).promoter_id is None


def test_brand_approval_queues_the_application_until_the_brand_decides(stores, monkeypatch):
    monkeypatch.setenv("PROMOTER_APPROVAL", "BRAND")
    reset_settings()
    try:
        scan(stores, {"scene": "s.chunxi"}, who="amy")
        status, applied = post(stores, "/v1/promoters", "amy")
        assert status == 201 and applied["status"] == "PENDING" and applied["scene"] is None
        code = stores.client.http.get("/v1/promoters/me/wxacode", headers={
            "Authorization": f"Bearer {stores.token('amy')}", "Accept": "image/png"})
        assert code.status_code == 409 and json.loads(code.body)["error"]["code"] == "PROMOTER_NOT_APPROVED"
        amy = customer_id(stores, "amy")
        assert [p["customer_id"] for p in office(stores, "GET", "/v1/admin/promoters")[1]["items"]] == [amy]
        assert office(stores, "GET", "/v1/admin/promoters", role="dealer", tenant="dealer-shu")[0] == 403
        assert office(stores, "POST", f"/v1/admin/promoters/{amy}/approve", tenant="brand-other")[0] == 404
        status, approved = office(stores, "POST", f"/v1/admin/promoters/{amy}/approve")
        assert status == 200 and approved["status"] == "APPROVED" and approved["scene"].startswith("m.")
        status, twice = office(stores, "POST", f"/v1/admin/promoters/{amy}/reject")
        assert status == 409 and twice["error"]["code"] == "PROMOTER_NOT_PENDING"
        assert office(stores, "GET", "/v1/admin/promoters")[1]["items"] == []

        scan(stores, {"scene": "s.chunxi"}, who="ben")
        post(stores, "/v1/promoters", "ben")
        ben = customer_id(stores, "ben")
        assert office(stores, "POST", f"/v1/admin/promoters/{ben}/reject")[1]["status"] == "REJECTED"
        assert stores.get("/v1/me", who="ben").json["promoter"] == {"status": "REJECTED"}
        status, again = post(stores, "/v1/promoters", "ben")
        assert status == 201 and again["status"] == "PENDING"
    finally:
        monkeypatch.delenv("PROMOTER_APPROVAL")
        reset_settings()


def test_the_share_code_is_a_png_of_the_share_scene(stores):
    share = promoter(stores, "amy")
    code = stores.client.http.get("/v1/promoters/me/wxacode?width=280", headers={
        "Authorization": f"Bearer {stores.token('amy')}", "Accept": "image/png"})
    assert code.status_code == 200 and code.body.startswith(b"\x89PNG")
    import zxingcpp
    from PIL import Image
    import io

    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(code.body)))
    assert decoded and share in decoded[0].text


@pytest.mark.parametrize("name, value", [("PROMOTER_APPROVAL", "sometimes"), ("PROMOTER_BINDING_RULE", "RANDOM"),
                                         ("REBIND_ON_SCAN", "maybe")])
def test_a_bad_setting_stops_the_process_with_its_name(test_env, monkeypatch, name, value):
    from chalicelib.config import ConfigurationError, settings

    monkeypatch.setenv(name, value)
    reset_settings()
    try:
        with pytest.raises(ConfigurationError, match=name):
            settings()
    finally:
        monkeypatch.delenv(name)
        reset_settings()


def test_the_brands_stored_binding_rule_governs_scans(stores):
    from chalicelib.db.records import CustomerRecord

    token = auth.issue_backoffice_token("brand", BRAND, wiring.now(), wiring.token_signing_key())
    put = stores.client.http.put("/v1/admin/brand/commission-settings", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps({"promoter_binding_rule": "LAST_TOUCH"}))
    assert put.status_code == 200, put.body
    first, second = promoter(stores, "amy"), promoter(stores, "zed", "s.optics")
    scan(stores, {"scene": first}, who="ben")
    status, moved = scan(stores, {"scene": second}, who="ben")
    assert moved["promoter"]["outcome"] == "PROMOTER_BOUND"
    assert CustomerRecord.get(customer_id(stores, "ben")).promoter_id == customer_id(stores, "zed")
