"""The back office over real HTTP, with tokens minted by ./storelink."""
import subprocess

import pytest

from infra.local.environment import PROJECT_DIR
from tests.integration.conftest import assert_contract_error, http
from tests.openapi import check_response

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tokens(stack):
    def mint(role, tenant):
        out = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "token",
                              "--role", role, "--tenant", tenant], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    return {"brand": mint("brand", "brand-lumen"), "shu": mint("dealer", "dealer-shu"),
            "chu": mint("dealer", "dealer-chu"), "chunxi": mint("store", "store-cd-chunxi")}


def call(api, token, method, path, body=None):
    reply = http(method, api + path, body, {"Authorization": f"Bearer {token}"})
    check_response(method, path, reply.status, reply.body)
    return reply


def test_tenancy_holds_over_http(api, tokens):
    assert call(api, tokens["shu"], "GET", "/v1/admin/stores/store-cd-chunxi").status == 200
    assert_contract_error(call(api, tokens["shu"], "GET", "/v1/admin/stores/store-wh-jianghan"), 404, "NOT_FOUND")
    assert_contract_error(call(api, tokens["shu"], "PUT", "/v1/admin/stock/store:store-wh-jianghan/LM-MS-WL",
                               {"on_hand": 0}), 404, "NOT_FOUND")
    assert_contract_error(call(api, tokens["shu"], "PATCH", "/v1/admin/products/LM-MS-WL", {"price_fen": 1}),
                          403, "FORBIDDEN")
    assert_contract_error(call(api, tokens["chunxi"], "GET", "/v1/admin/stores/store-cd-tianfu"), 404, "NOT_FOUND")
    mine = call(api, tokens["chu"], "GET", "/v1/admin/stores?limit=100").json()["items"]
    assert {s["dealer_id"] for s in mine} == {"dealer-chu"} and len(mine) == 4


def test_a_store_is_opened_staffed_and_stocked(api, tokens):
    store = call(api, tokens["shu"], "POST", "/v1/admin/stores", {
        "name": "Taikoo Li", "city": "Chengdu", "lat": 30.6525, "lng": 104.0836, "services": ["pickup"],
        "opening_hours": {"sun": [["10:00", "22:00"]]}})
    assert store.status == 201 and store.json()["dealer_id"] == "dealer-shu"
    store_id = store.json()["store_id"]
    staff = call(api, tokens["shu"], "POST", f"/v1/admin/stores/{store_id}/staff", {"name": "Wang Fang"})
    assert staff.status == 201
    counted = call(api, tokens["shu"], "PUT", f"/v1/admin/stock/store:{store_id}/LM-TAB11", {"on_hand": 6})
    assert counted.status == 200 and counted.json()["available"] == 6
    listed = call(api, tokens["shu"], "GET", f"/v1/admin/stores/{store_id}/staff").json()["items"]
    assert [s["name"] for s in listed] == ["Wang Fang"]


@pytest.mark.parametrize("body", [{"name": "x" * 10_000, "city": "C", "lat": 30, "lng": 104},
                                  {"name": "x", "city": "C", "lat": 95, "lng": 104},
                                  {"name": "x", "city": "C", "lat": 30, "lng": 104, "evil": 1}])
def test_bad_store_inputs_are_400_over_http(api, tokens, body):
    assert_contract_error(call(api, tokens["shu"], "POST", "/v1/admin/stores", body), 400, "VALIDATION_FAILED")


def test_an_unknown_admin_path_is_404(api, tokens):
    assert_contract_error(http("GET", f"{api}/v1/admin/nothing", headers={"Authorization": f"Bearer {tokens['brand']}"}),
                          404, "NOT_FOUND")
