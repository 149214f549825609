"""The back office in-process on moto: tenancy, validation, paging."""
import json

import pytest
from chalice.test import Client

from chalicelib import auth
from chalicelib.services import wiring
from infra.local import demo_data
from tests.openapi import ValidatingClient

SHU, CHU = "dealer-shu", "dealer-chu"
SHU_STORE, SHU_STORE_2, CHU_STORE = "store-cd-chunxi", "store-cd-tianfu", "store-wh-jianghan"
BRAND = demo_data.BRAND["brand_id"]


class Office:
    def __init__(self, client):
        self.client = client

    def __call__(self, role, tenant, method, path, body=None, raw=None):
        token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client.http, method.lower())(path, headers=headers, body=data)
        response.json = json.loads(response.body) if response.body else None
        return response


@pytest.fixture
def office(dynamodb):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def test_a_dealer_sees_its_own_stores_and_nobody_elses(office):
    listed = office("dealer", SHU, "GET", "/v1/admin/stores?limit=100")
    assert listed.status_code == 200
    assert {s["store_id"] for s in listed.json["items"]} == {
        s["store_id"] for s in demo_data.STORES if s["dealer_id"] == SHU}
    assert office("dealer", SHU, "GET", f"/v1/admin/stores/{SHU_STORE}").status_code == 200
    for method, path, body in [
        ("GET", f"/v1/admin/stores/{CHU_STORE}", None),
        ("PATCH", f"/v1/admin/stores/{CHU_STORE}", {"name": "mine now"}),
        ("GET", f"/v1/admin/stores/{CHU_STORE}/staff", None),
        ("POST", f"/v1/admin/stores/{CHU_STORE}/staff", {"name": "Spy"}),
        ("GET", f"/v1/admin/stock/store:{CHU_STORE}", None),
        ("GET", f"/v1/admin/stock/store:{CHU_STORE}/LM-MS-WL", None),
        ("PUT", f"/v1/admin/stock/store:{CHU_STORE}/LM-MS-WL", {"on_hand": 0}),
        ("GET", "/v1/admin/stock/warehouse:cloud", None),
        ("GET", f"/v1/admin/dealers/{CHU}", None),
        ("GET", f"/v1/admin/stores?dealer_id={CHU}", None),
        ("POST", "/v1/admin/stores", {"dealer_id": CHU, "name": "x", "city": "Wuhan", "lat": 30.5, "lng": 114.3}),
    ]:
        response = office("dealer", SHU, method, path, body)
        assert response.status_code == 404, (method, path, response.json)
        assert response.json["error"]["code"] == "NOT_FOUND"
    untouched = office("brand", BRAND, "GET", f"/v1/admin/stores/{CHU_STORE}").json
    assert untouched["name"] == "Jianghan Road"


def test_a_dealer_cannot_see_another_dealers_staff(office):
    member = office("dealer", CHU, "POST", f"/v1/admin/stores/{CHU_STORE}/staff", {"name": "Li Na"})
    assert member.status_code == 201
    staff_id = member.json["staff_id"]
    assert office("dealer", SHU, "GET", f"/v1/admin/staff/{staff_id}").status_code == 404
    assert office("dealer", SHU, "PATCH", f"/v1/admin/staff/{staff_id}", {"name": "x"}).status_code == 404
    assert office("dealer", CHU, "GET", f"/v1/admin/staff/{staff_id}").json["name"] == "Li Na"


def test_a_dealer_cannot_change_a_price_or_create_products_or_dealers(office):
    for method, path, body in [
        ("PATCH", "/v1/admin/products/LM-MS-WL", {"price_fen": 1}),
        ("POST", "/v1/admin/products", {"sku": "X-1", "name": "x", "price_fen": 100, "cost_fen": 50}),
        ("POST", "/v1/admin/dealers", {"name": "x", "sub_mchid": "1900009999"}),
        ("PATCH", f"/v1/admin/dealers/{SHU}", {"name": "x"}),
    ]:
        response = office("dealer", SHU, method, path, body)
        assert response.status_code == 403, (path, response.json)
        assert response.json["error"]["code"] == "FORBIDDEN"
    assert office("brand", BRAND, "GET", "/v1/admin/products/LM-MS-WL").json["price_fen"] == 9900
    assert office("dealer", SHU, "GET", "/v1/admin/products/LM-MS-WL").json["price_fen"] == 9900


def test_a_store_token_sees_only_its_store(office):
    assert office("store", SHU_STORE, "GET", f"/v1/admin/stores/{SHU_STORE}").status_code == 200
    assert office("store", SHU_STORE, "GET", f"/v1/admin/stores/{SHU_STORE_2}").status_code == 404
    assert office("store", SHU_STORE, "GET", f"/v1/admin/stock/store:{SHU_STORE_2}").status_code == 404
    listed = office("store", SHU_STORE, "GET", "/v1/admin/stores").json["items"]
    assert [s["store_id"] for s in listed] == [SHU_STORE]
    assert office("store", SHU_STORE, "GET", "/v1/admin/dealers").status_code == 403
    assert office("store", SHU_STORE, "PATCH", f"/v1/admin/stores/{SHU_STORE}",
                  {"status": "DEACTIVATED"}).status_code == 403
    changed = office("store", SHU_STORE, "PATCH", f"/v1/admin/stores/{SHU_STORE}",
                     {"opening_hours": {"mon": [["09:00", "12:00"], ["13:00", "20:00"]]}})
    assert changed.status_code == 200 and changed.json["opening_hours"] == {
        "mon": [["09:00", "12:00"], ["13:00", "20:00"]]}


def test_the_brand_runs_the_whole_network(office):
    dealer = office("brand", BRAND, "POST", "/v1/admin/dealers", {"name": "Ba Shu Trading", "sub_mchid": "1900002001"})
    assert dealer.status_code == 201 and dealer.json["brand_id"] == BRAND
    store = office("brand", BRAND, "POST", "/v1/admin/stores", {
        "dealer_id": dealer.json["dealer_id"], "name": "Kuanzhai Alley", "city": "Chengdu",
        "lat": 30.6705, "lng": 104.0560, "services": ["pickup", "repair"],
        "opening_hours": {"sat": [["10:00", "24:00"]]}})
    assert store.status_code == 201, store.json
    assert store.json["services"] == ["pickup", "repair"] and store.json["dealer_id"] == dealer.json["dealer_id"]
    moved = office("brand", BRAND, "PATCH", f"/v1/admin/stores/{store.json['store_id']}",
                   {"lat": 30.6600, "lng": 104.0600, "status": "DEACTIVATED"})
    assert moved.json["lat"] == 30.66 and moved.json["status"] == "DEACTIVATED"
    product = office("brand", BRAND, "POST", "/v1/admin/products",
                     {"sku": "LM-NEW-1", "name": "New thing", "price_fen": 1000, "cost_fen": 800})
    assert product.status_code == 201
    assert office("brand", BRAND, "POST", "/v1/admin/products",
                  {"sku": "LM-NEW-1", "name": "Again", "price_fen": 1000, "cost_fen": 800}).status_code == 409


def test_cost_never_goes_above_price(office):
    assert office("brand", BRAND, "POST", "/v1/admin/products",
                  {"sku": "LM-BAD", "name": "x", "price_fen": 100, "cost_fen": 101}).json["error"]["code"] == \
        "COST_ABOVE_PRICE"
    lowered = office("brand", BRAND, "PATCH", "/v1/admin/products/LM-MS-WL", {"price_fen": 7000})
    assert lowered.status_code == 422 and lowered.json["error"]["code"] == "COST_ABOVE_PRICE"
    raised = office("brand", BRAND, "PATCH", "/v1/admin/products/LM-MS-WL", {"cost_fen": 9901})
    assert raised.status_code == 422
    both = office("brand", BRAND, "PATCH", "/v1/admin/products/LM-MS-WL", {"price_fen": 8000, "cost_fen": 7000})
    assert both.status_code == 200 and (both.json["price_fen"], both.json["cost_fen"]) == (8000, 7000)
    assert office("brand", BRAND, "PATCH", "/v1/admin/products/NOPE", {"price_fen": 1}).status_code == 404


def test_stock_is_counted_per_location_and_never_below_reserved(office):
    counted = office("dealer", SHU, "PUT", f"/v1/admin/stock/store:{SHU_STORE}/LM-MS-WL", {"on_hand": 7})
    assert counted.status_code == 200
    assert (counted.json["on_hand"], counted.json["available"], counted.json["dealer_id"]) == (7, 7, SHU)
    again = office("store", SHU_STORE, "PUT", f"/v1/admin/stock/store:{SHU_STORE}/LM-MS-WL", {"on_hand": 9})
    assert again.json["version"] == counted.json["version"] + 1
    from chalicelib.db.records import StockRecord

    StockRecord(f"store:{SHU_STORE}", "LM-MS-WL").update(actions=[StockRecord.reserved.set(5)])
    below = office("dealer", SHU, "PUT", f"/v1/admin/stock/store:{SHU_STORE}/LM-MS-WL", {"on_hand": 4})
    assert below.status_code == 422 and below.json["error"]["code"] == "STOCK_BELOW_RESERVED"
    assert office("brand", BRAND, "PUT", "/v1/admin/stock/warehouse:cloud/NOPE", {"on_hand": 1}).status_code == 404
    warehouse = office("brand", BRAND, "GET", "/v1/admin/stock/warehouse:cloud?limit=100").json["items"]
    assert len(warehouse) == 20


def test_lists_page_with_an_opaque_signed_cursor(office):
    seen, cursor = [], None
    for _ in range(10):
        suffix = f"&cursor={cursor}" if cursor else ""
        page = office("brand", BRAND, "GET", f"/v1/admin/products?limit=7{suffix}").json
        seen += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(p[0] for p in demo_data.PRODUCTS)
    first = office("brand", BRAND, "GET", "/v1/admin/products?limit=7").json["next_cursor"]
    forged = first[:-2] + ("AA" if not first.endswith("AA") else "BB")
    assert office("brand", BRAND, "GET", f"/v1/admin/products?cursor={forged}").json["error"]["code"] == \
        "VALIDATION_FAILED"


LONG = "x" * 10_000
BAD_INPUTS = [
    ("POST", "/v1/admin/dealers", {"name": LONG, "sub_mchid": "1900002001"}),
    ("POST", "/v1/admin/dealers", {"name": "x", "sub_mchid": "12ab"}),
    ("POST", "/v1/admin/dealers", {"name": 5, "sub_mchid": "1900002001"}),
    ("POST", "/v1/admin/dealers", {"name": "x", "sub_mchid": "1900002001", "vip": True}),
    ("PATCH", f"/v1/admin/dealers/{SHU}", {}),
    ("PATCH", f"/v1/admin/dealers/{SHU}", {"status": "CLOSED"}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "Chengdu", "lat": 91, "lng": 104}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "Chengdu", "lat": 30, "lng": -181}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "Chengdu", "lat": "30", "lng": 104}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": LONG, "city": "Chengdu", "lat": 30, "lng": 104}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "C", "lat": 30, "lng": 104,
                                  "services": ["teleport"]}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "C", "lat": 30, "lng": 104,
                                  "opening_hours": {"mon": [["21:00", "09:00"]]}}),
    ("POST", "/v1/admin/stores", {"dealer_id": SHU, "name": "x", "city": "C", "lat": 30, "lng": 104,
                                  "opening_hours": {"funday": []}}),
    ("POST", "/v1/admin/stores", {"dealer_id": "bad id!", "name": "x", "city": "C", "lat": 30, "lng": 104}),
    ("PATCH", f"/v1/admin/stores/{SHU_STORE}", {"lat": 30}),
    ("PATCH", f"/v1/admin/stores/{SHU_STORE}", {"dealer_id": CHU}),
    ("POST", f"/v1/admin/stores/{SHU_STORE}/staff", {"name": LONG}),
    ("POST", f"/v1/admin/stores/{SHU_STORE}/staff", {"name": "x", "role": "CEO"}),
    ("POST", "/v1/admin/products", {"sku": "bad sku", "name": "x", "price_fen": 1, "cost_fen": 0}),
    ("POST", "/v1/admin/products", {"sku": "OK", "name": "x", "price_fen": 1.5, "cost_fen": 0}),
    ("POST", "/v1/admin/products", {"sku": "OK", "name": "x", "price_fen": -1, "cost_fen": 0}),
    ("POST", "/v1/admin/products", {"sku": "OK", "name": "x", "price_fen": True, "cost_fen": 0}),
    ("POST", "/v1/admin/products", {"sku": "OK", "name": "x", "price_fen": 10**12, "cost_fen": 0}),
    ("PATCH", "/v1/admin/products/LM-MS-WL", {"sku": "NEW"}),
    ("PUT", "/v1/admin/stock/warehouse:cloud/LM-MS-WL", {"on_hand": -1}),
    ("PUT", "/v1/admin/stock/warehouse:cloud/LM-MS-WL", {"on_hand": "5"}),
    ("PUT", "/v1/admin/stock/warehouse:cloud/LM-MS-WL", {"on_hand": 2_000_000}),
    ("PUT", "/v1/admin/stock/nowhere/LM-MS-WL", {"on_hand": 1}),
    ("GET", "/v1/admin/stores?limit=0", None),
    ("GET", "/v1/admin/stores?limit=abc", None),
    ("GET", "/v1/admin/dealers?cursor=garbage", None),
]


@pytest.mark.parametrize("method, path, body", BAD_INPUTS)
def test_bad_inputs_are_4xx_with_the_contract_body(office, method, path, body):
    response = office("brand", BRAND, method, path, body)
    assert 400 <= response.status_code < 500, (response.status_code, response.json)
    assert response.json["error"]["code"] in ("VALIDATION_FAILED", "MALFORMED_JSON", "NOT_FOUND")


@pytest.mark.parametrize("raw", ["{", "[]", "null", '"x"', ""])
def test_malformed_bodies_on_admin_routes_are_400(office, raw):
    response = office("brand", BRAND, "POST", "/v1/admin/dealers", raw=raw)
    assert response.status_code == 400 and response.json["error"]["code"] == "MALFORMED_JSON"


def test_admin_routes_need_a_backoffice_token(office):
    customer = auth.issue_customer_token("cu_x", wiring.now(), wiring.token_signing_key())
    response = office.client.http.get("/v1/admin/stores", headers={"Authorization": f"Bearer {customer}"})
    assert response.status_code == 401
    assert office.client.http.get("/v1/admin/stores").status_code == 401
