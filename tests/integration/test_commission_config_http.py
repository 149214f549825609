"""The brand's commission configuration over real HTTP against DynamoDB Local (the
product rates' transaction with the brand's version, the dealers' index)."""
import subprocess

import pytest

from infra.local.environment import PROJECT_DIR
from tests.integration.conftest import assert_contract_error, http
from tests.openapi import check_response

pytestmark = pytest.mark.integration
SETTINGS = "/v1/admin/brand/commission-settings"


@pytest.fixture(scope="module")
def brand(stack):
    out = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "token",
                          "--role", "brand", "--tenant", "brand-lumen"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def call(api, token, method, path, body=None):
    reply = http(method, api + path, body, {"Authorization": f"Bearer {token}"})
    check_response(method, path, reply.status, reply.body)
    return reply


def test_commissions_are_configured_checked_and_put_back(api, brand):
    try:
        stored = call(api, brand, "PUT", SETTINGS, {"category_rates_bps": {"accessory": [1000]}})
        assert stored.status == 200 and call(api, brand, "GET", SETTINGS).json() == stored.json()
        own = call(api, brand, "PUT", "/v1/admin/products/LM-MS-WL/commission-rates", {"rates_bps": [1500]})
        assert own.status == 200 and own.json()["commission_rates_bps"] == [1500]
        assert_contract_error(call(api, brand, "PUT", "/v1/admin/products/LM-MS-WL/commission-rates",
                                   {"rates_bps": [2500]}), 422, "COST_AND_COMMISSION_ABOVE_PRICE")
        lowered = call(api, brand, "PUT", "/v1/admin/dealers/dealer-chu/max-ratio", {"max_ratio_bps": 1200})
        assert lowered.status == 200 and [w["sku"] for w in lowered.json()["warnings"]] == ["LM-MS-WL"]
        assert_contract_error(call(api, brand, "PUT", SETTINGS, {"default_rates_bps": [1300]}),
                              422, "COMMISSION_ABOVE_SPLIT_CAP")
    finally:
        call(api, brand, "PUT", "/v1/admin/dealers/dealer-chu/max-ratio", {"max_ratio_bps": 3000})
        call(api, brand, "PUT", "/v1/admin/products/LM-MS-WL/commission-rates", {"rates_bps": None})
        call(api, brand, "PUT", SETTINGS, {})
    assert call(api, brand, "GET", "/v1/admin/products/LM-MS-WL").json()["commission_rates_bps"] is None
