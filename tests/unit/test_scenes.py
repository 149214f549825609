"""QR scenes in the back office, in-process on moto with the demo data."""
import io
import json

import pytest
from chalice.test import Client

from chalicelib import auth
from chalicelib.domain import scenes as rules
from chalicelib.errors import UpstreamUnavailable
from chalicelib.services import wiring
from infra.local import demo_data
from tests.openapi import ValidatingClient

SHU, CHU = "dealer-shu", "dealer-chu"
SHU_STORE, SHU_STORE_2, CHU_STORE = "store-cd-chunxi", "store-cd-tianfu", "store-wh-jianghan"
BRAND = demo_data.BRAND["brand_id"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAMPAIGN = {"name": "Back to school", "store_ids": [SHU_STORE, SHU_STORE_2],
            "starts_at": "2026-09-01T00:00:00+08:00", "ends_at": "2026-09-15T00:00:00+08:00"}


class Office:
    def __init__(self, client):
        self.client = client

    def __call__(self, role, tenant, method, path, body=None, accept=None):
        token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if accept:
            headers["Accept"] = accept
        data = json.dumps(body) if body is not None else None
        response = getattr(self.client.http, method.lower())(path, headers=headers, body=data)
        is_json = response.headers.get("Content-Type", "application/json").startswith("application/json")
        response.json = json.loads(response.body) if response.body and is_json else None
        return response

    def scene(self, role, tenant, body):
        made = self(role, tenant, "POST", "/v1/admin/scenes", body)
        assert made.status_code == 201, made.json
        return made.json


class FakeWeChat:
    def __init__(self):
        self.calls = []
        self.fail = False

    def wxacode(self, scene, page, width):
        self.calls.append((scene, page, width))
        if self.fail:
            raise UpstreamUnavailable("WeChat did not make the mini-program code.", wechat_errcode=45009)
        return PNG_MAGIC + b"fake"


@pytest.fixture
def wechat(monkeypatch):
    fake = FakeWeChat()
    monkeypatch.setattr(wiring, "miniprogram", lambda: fake)
    return fake


@pytest.fixture
def office(dynamodb, wechat):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def staff(office, store_id, name="Li Na", role="dealer", tenant=None):
    tenant = tenant or next(s["dealer_id"] for s in demo_data.STORES if s["store_id"] == store_id)
    made = office(role, tenant, "POST", f"/v1/admin/stores/{store_id}/staff", {"name": name})
    assert made.status_code == 201
    return made.json["staff_id"]


# --- making scenes

def test_a_brand_makes_a_store_scene_with_a_welcome(office):
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE,
                                          "welcome": {"title": "Welcome!", "featured_skus": ["LM-MS-WL"]}})
    assert scene["scene"].startswith("s.") and len(scene["scene"]) == 12
    assert (scene["kind"], scene["store_id"], scene["dealer_id"], scene["brand_id"], scene["status"]) == (
        "store", SHU_STORE, SHU, BRAND, "ACTIVE")
    assert scene["welcome"] == {"title": "Welcome!", "message": "", "featured_skus": ["LM-MS-WL"]}
    assert office("brand", BRAND, "GET", f"/v1/admin/scenes/{scene['scene']}").json == scene


def test_every_back_office_kind_gets_its_letter(office):
    member = staff(office, SHU_STORE)
    made = [office.scene("dealer", SHU, body) for body in (
        {"kind": "store", "store_id": SHU_STORE},
        {"kind": "staff", "staff_id": member},
        {"kind": "campaign", "campaign": CAMPAIGN},
        {"kind": "product", "sku": "LM-TAB11", "store_id": SHU_STORE_2},
    )]
    assert [m["scene"][:2] for m in made] == ["s.", "f.", "c.", "p."]
    assert made[1]["staff_id"] == member and made[1]["store_id"] == SHU_STORE
    assert made[2]["store_id"] == SHU_STORE and made[2]["campaign"] == CAMPAIGN
    assert made[3]["sku"] == "LM-TAB11" and made[3]["store_id"] == SHU_STORE_2
    assert all(m["dealer_id"] == SHU for m in made)


def test_a_brand_product_code_needs_no_store_and_only_the_brand_sees_it(office):
    scene = office.scene("brand", BRAND, {"kind": "product", "sku": "LM-NB14-I5"})
    assert scene["store_id"] is None and scene["dealer_id"] is None
    assert office("dealer", SHU, "GET", f"/v1/admin/scenes/{scene['scene']}").status_code == 404


def test_a_dealer_reaches_only_its_own_stores(office):
    chu_member = staff(office, CHU_STORE)
    for body in ({"kind": "store", "store_id": CHU_STORE},
                 {"kind": "staff", "staff_id": chu_member},
                 {"kind": "product", "sku": "LM-MS-WL", "store_id": CHU_STORE},
                 {"kind": "campaign", "campaign": {**CAMPAIGN, "store_ids": [SHU_STORE, CHU_STORE]}}):
        refused = office("dealer", SHU, "POST", "/v1/admin/scenes", body)
        assert refused.status_code == 404, (body, refused.json)
        assert refused.json["error"]["code"] == "NOT_FOUND"
    chu_scene = office.scene("dealer", CHU, {"kind": "store", "store_id": CHU_STORE})["scene"]
    for method, path in [("GET", f"/v1/admin/scenes/{chu_scene}"), ("POST", f"/v1/admin/scenes/{chu_scene}/retire"),
                         ("GET", f"/v1/admin/scenes?store_id={CHU_STORE}"),
                         ("POST", f"/v1/admin/stores/{CHU_STORE}/staff-codes")]:
        assert office("dealer", SHU, method, path).status_code == 404, (method, path)
    for path in (f"/v1/admin/scenes/{chu_scene}/wxacode", f"/v1/admin/scenes/{chu_scene}/qr"):
        assert office("dealer", SHU, "GET", path, accept="image/png").status_code == 404
    assert office("brand", BRAND, "GET", f"/v1/admin/scenes/{chu_scene}").json["status"] == "ACTIVE"


def test_a_store_token_makes_scenes_for_itself_only(office):
    own = office.scene("store", SHU_STORE, {"kind": "product", "sku": "LM-MS-WL"})
    assert own["store_id"] == SHU_STORE
    assert office.scene("store", SHU_STORE, {"kind": "store", "store_id": SHU_STORE})["store_id"] == SHU_STORE
    for body in ({"kind": "store", "store_id": SHU_STORE_2},
                 {"kind": "campaign", "campaign": CAMPAIGN}):
        assert office("store", SHU_STORE, "POST", "/v1/admin/scenes", body).status_code == 404
    listed = office("store", SHU_STORE, "GET", "/v1/admin/scenes")
    assert listed.status_code == 200 and len(listed.json["items"]) == 2


def test_promoter_scenes_are_refused_here(office):
    refused = office("brand", BRAND, "POST", "/v1/admin/scenes", {"kind": "promoter"})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "PROMOTER_SCENE_REFUSED"


def test_a_staff_scene_needs_an_active_member_of_that_store(office):
    member = staff(office, SHU_STORE)
    wrong_store = office("brand", BRAND, "POST", "/v1/admin/scenes",
                         {"kind": "staff", "staff_id": member, "store_id": SHU_STORE_2})
    assert wrong_store.status_code == 400
    assert office("brand", BRAND, "POST", "/v1/admin/scenes",
                  {"kind": "staff", "staff_id": "sf_nobody"}).status_code == 404
    assert office("dealer", SHU, "PATCH", f"/v1/admin/staff/{member}", {"status": "DEACTIVATED"}).status_code == 200
    gone = office("brand", BRAND, "POST", "/v1/admin/scenes", {"kind": "staff", "staff_id": member})
    assert gone.status_code == 422 and gone.json["error"]["code"] == "STAFF_NOT_ACTIVE"


def test_product_and_featured_skus_must_exist(office):
    for body in ({"kind": "product", "sku": "LM-NOPE"},
                 {"kind": "store", "store_id": SHU_STORE, "welcome": {"featured_skus": ["LM-MS-WL", "LM-NOPE"]}}):
        refused = office("brand", BRAND, "POST", "/v1/admin/scenes", body)
        assert refused.status_code == 404 and refused.json["error"]["details"] == {"sku": "LM-NOPE"}


@pytest.mark.parametrize("body", [
    {},
    {"kind": "poster", "store_id": SHU_STORE},
    {"kind": "store"},
    {"kind": "store", "store_id": SHU_STORE, "sku": "LM-MS-WL"},
    {"kind": "store", "store_id": "bad id"},
    {"kind": "store", "store_id": SHU_STORE, "scene": "s.mine"},
    {"kind": "product", "sku": "bad sku"},
    {"kind": "campaign", "campaign": {**CAMPAIGN, "ends_at": CAMPAIGN["starts_at"]}},
    {"kind": "campaign", "campaign": {**CAMPAIGN, "name": "x" * 51}},
    {"kind": "campaign", "campaign": {**CAMPAIGN, "store_ids": []}},
    {"kind": "store", "store_id": SHU_STORE, "welcome": {"title": "x" * 31}},
    {"kind": "store", "store_id": SHU_STORE, "welcome": {"featured_skus": [f"LM-{i}" for i in range(7)]}},
])
def test_malformed_scenes_are_400(office, body):
    refused = office("brand", BRAND, "POST", "/v1/admin/scenes", body)
    assert refused.status_code == 400, refused.json
    assert refused.json["error"]["code"] in ("VALIDATION_FAILED", "MALFORMED_JSON")


def test_a_dealer_product_code_must_name_its_store(office):
    refused = office("dealer", SHU, "POST", "/v1/admin/scenes", {"kind": "product", "sku": "LM-MS-WL"})
    assert refused.status_code == 400 and refused.json["error"]["details"]["field"] == "store_id"


def test_a_campaign_store_that_does_not_exist_is_404(office):
    refused = office("brand", BRAND, "POST", "/v1/admin/scenes",
                     {"kind": "campaign", "campaign": {**CAMPAIGN, "store_ids": [SHU_STORE, "store-nowhere"]}})
    assert refused.status_code == 404


def test_a_token_collision_is_retried_not_overwritten(office, monkeypatch):
    first = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    tokens = iter([first, "s.0000000000"])
    monkeypatch.setattr(rules, "new_scene_token", lambda kind: next(tokens))
    second = office.scene("brand", BRAND, {"kind": "store", "store_id": CHU_STORE})
    assert second["scene"] == "s.0000000000"
    assert office("brand", BRAND, "GET", f"/v1/admin/scenes/{first}").json["store_id"] == SHU_STORE


# --- reading, listing, retiring

def test_unknown_and_malformed_scenes(office):
    assert office("brand", BRAND, "GET", "/v1/admin/scenes/s.nothingHere").status_code == 404
    assert office("brand", BRAND, "GET", "/v1/admin/scenes/" + "a" * 33).status_code == 400
    assert office("brand", BRAND, "POST", "/v1/admin/scenes/s.nothingHere/retire").status_code == 404


def test_retired_scenes_stay_readable_but_retire_once(office):
    scene = office.scene("dealer", SHU, {"kind": "store", "store_id": SHU_STORE})["scene"]
    retired = office("dealer", SHU, "POST", f"/v1/admin/scenes/{scene}/retire")
    assert retired.status_code == 200 and retired.json["status"] == "RETIRED" and retired.json["retired_at"]
    again = office("brand", BRAND, "POST", f"/v1/admin/scenes/{scene}/retire")
    assert again.status_code == 409 and again.json["error"]["code"] == "SCENE_RETIRED"
    assert office("store", SHU_STORE, "GET", f"/v1/admin/scenes/{scene}").json["status"] == "RETIRED"
    for path in (f"/v1/admin/scenes/{scene}/wxacode", f"/v1/admin/scenes/{scene}/qr"):
        refused = office("brand", BRAND, "GET", path, accept="image/png")
        assert refused.status_code == 409 and refused.json["error"]["code"] == "SCENE_RETIRED"


def test_a_stores_scenes_are_listed_in_pages(office):
    made = {office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"] for _ in range(5)}
    office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE_2})
    seen, cursor = [], None
    while True:
        path = "/v1/admin/scenes?store_id=" + SHU_STORE + "&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = office("dealer", SHU, "GET", path)
        assert page.status_code == 200 and len(page.json["items"]) <= 2
        seen += [s["scene"] for s in page.json["items"]]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    assert set(seen) == made and len(seen) == 5


def test_listing_needs_a_store_except_for_a_store_token(office):
    assert office("brand", BRAND, "GET", "/v1/admin/scenes").status_code == 400
    assert office("brand", BRAND, "GET", "/v1/admin/scenes?store_id=bad%20id").status_code == 400


# --- staff codes

def test_staff_codes_are_made_once_per_active_member(office):
    a, b = staff(office, SHU_STORE, "A"), staff(office, SHU_STORE, "B")
    gone = staff(office, SHU_STORE, "Gone")
    office("dealer", SHU, "PATCH", f"/v1/admin/staff/{gone}", {"status": "DEACTIVATED"})
    first = office("dealer", SHU, "POST", f"/v1/admin/stores/{SHU_STORE}/staff-codes")
    assert first.status_code == 200 and first.json["created"] == 2
    assert {s["staff_id"] for s in first.json["items"]} == {a, b}
    assert all(s["kind"] == "staff" and s["scene"].startswith("f.") for s in first.json["items"])
    again = office("store", SHU_STORE, "POST", f"/v1/admin/stores/{SHU_STORE}/staff-codes")
    assert again.json["created"] == 0
    assert sorted(s["scene"] for s in again.json["items"]) == sorted(s["scene"] for s in first.json["items"])
    # a retired badge is replaced; a new member gets one
    office("brand", BRAND, "POST", f"/v1/admin/scenes/{first.json['items'][0]['scene']}/retire")
    c = staff(office, SHU_STORE, "C")
    third = office("brand", BRAND, "POST", f"/v1/admin/stores/{SHU_STORE}/staff-codes")
    assert third.json["created"] == 2 and {s["staff_id"] for s in third.json["items"]} == {a, b, c}


def test_staff_codes_of_a_store_without_staff_is_empty(office):
    empty = office("brand", BRAND, "POST", f"/v1/admin/stores/{SHU_STORE_2}/staff-codes")
    assert empty.status_code == 200 and empty.json == {"store_id": SHU_STORE_2, "items": [], "created": 0}


# --- code images

def test_the_wxacode_comes_from_wechat_as_png(office, wechat):
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    image = office("store", SHU_STORE, "GET", f"/v1/admin/scenes/{scene}/wxacode?width=600", accept="image/png")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.body == PNG_MAGIC + b"fake"
    assert wechat.calls == [(scene, "pages/scan/index", 600)]
    office("brand", BRAND, "GET", f"/v1/admin/scenes/{scene}/wxacode", accept="image/png")
    assert wechat.calls[-1][2] == 430


@pytest.mark.parametrize("width", ["279", "1281", "wide", "-5"])
def test_a_wxacode_width_outside_wechats_range_is_400(office, width):
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    refused = office("brand", BRAND, "GET", f"/v1/admin/scenes/{scene}/wxacode?width={width}", accept="image/png")
    assert refused.status_code == 400 and refused.json["error"]["details"]["field"] == "width"


def test_wechat_failing_is_a_503_in_the_contracts_shape(office, wechat):
    wechat.fail = True
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    refused = office("brand", BRAND, "GET", f"/v1/admin/scenes/{scene}/wxacode", accept="image/png")
    assert refused.status_code == 503 and refused.json["error"]["code"] == "UPSTREAM_UNAVAILABLE"


def test_a_png_without_accepting_one_is_a_contract_400(office):
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    refused = office("brand", BRAND, "GET", f"/v1/admin/scenes/{scene}/qr")
    assert refused.status_code == 400 and set(refused.json) == {"error"}


def test_the_printable_qr_carries_the_web_address(office):
    import zxingcpp
    from PIL import Image

    scene = office.scene("brand", BRAND, {"kind": "campaign", "campaign": CAMPAIGN})["scene"]
    image = office("dealer", SHU, "GET", f"/v1/admin/scenes/{scene}/qr", accept="image/png")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.body[:8] == PNG_MAGIC
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.body)))
    assert [d.text for d in decoded] == [f"https://mall.storelink.invalid/s/{scene}"]


def test_codes_need_a_back_office_token(office):
    scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    response = office.client.http.get(f"/v1/admin/scenes/{scene}/qr", headers={"Accept": "image/png"})
    assert response.status_code == 401


# --- the WeChat client

class _Reply:
    def __init__(self, status, content_type, content):
        self.status_code, self.headers, self.content = status, {"Content-Type": content_type}, content


def test_the_client_posts_wechats_body_and_returns_the_image(monkeypatch):
    import requests

    from chalicelib.wechat.miniprogram import MiniProgramClient

    client = MiniProgramClient("http://wx.invalid", "wxapp", "secret", 5)
    monkeypatch.setattr(client, "_access_token", lambda: "tok")
    sent = []

    def post(url, params=None, json=None, timeout=None):
        sent.append((url, params, json))
        return _Reply(200, "image/png", PNG_MAGIC)

    monkeypatch.setattr(requests, "post", post)
    assert client.wxacode("s.x", "pages/scan/index", 430) == PNG_MAGIC
    assert sent == [("http://wx.invalid/wxa/getwxacodeunlimit", {"access_token": "tok"},
                     {"scene": "s.x", "page": "pages/scan/index", "check_path": True, "width": 430})]


@pytest.mark.parametrize("replies, calls", [
    ([(200, "application/json; charset=utf-8", b'{"errcode": 41030, "errmsg": "invalid page"}')], 1),
    ([(200, "text/plain", b"garbage")], 1),
    ([(200, "application/json", b'{"errcode": 40001}'), (200, "application/json", b'{"errcode": 40001}')], 2),
])
def test_the_client_turns_wechat_errors_into_upstream_unavailable(monkeypatch, replies, calls):
    import requests

    from chalicelib.wechat.miniprogram import MiniProgramClient

    client = MiniProgramClient("http://wx.invalid", "wxapp", "secret", 5)
    monkeypatch.setattr(client, "_access_token", lambda: "tok")
    queue = [_Reply(*r) for r in replies]
    monkeypatch.setattr(requests, "post", lambda *a, **k: queue.pop(0))
    with pytest.raises(UpstreamUnavailable):
        client.wxacode("s.x", "pages/scan/index", 430)
    assert not queue and len(replies) == calls


def test_the_client_retries_once_with_a_fresh_token(monkeypatch):
    import requests

    from chalicelib.wechat.miniprogram import MiniProgramClient

    client = MiniProgramClient("http://wx.invalid", "wxapp", "secret", 5)
    monkeypatch.setattr(client, "_access_token", lambda: "tok")
    queue = [_Reply(200, "application/json", b'{"errcode": 42001}'), _Reply(200, "image/png", PNG_MAGIC)]
    monkeypatch.setattr(requests, "post", lambda *a, **k: queue.pop(0))
    assert client.wxacode("s.x", "pages/scan/index", 430) == PNG_MAGIC
