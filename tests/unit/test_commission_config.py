"""The brand's commission configuration (M8 item 4): the pure rules, and the back office
in-process on moto with the demo data."""
import pytest
from chalice.test import Client

from chalicelib.domain.catalogue import Product
from chalicelib.domain.commission_config import (
    CommissionSettings,
    check_max_ratio,
    check_rates,
    check_settings,
    effective_rates,
)
from chalicelib.errors import Conflict, ValidationFailed
from chalicelib.services import commission_config as uc
from chalicelib.services import wiring
from infra.local import demo_data
from tests.openapi import ValidatingClient
from tests.unit.test_scenes import Office

BRAND = demo_data.BRAND["brand_id"]
SHU, CHU = "dealer-shu", "dealer-chu"
SETTINGS = "/v1/admin/brand/commission-settings"
DEFAULTS = {"depth": 1, "default_rates_bps": [0], "category_rates_bps": {}, "after_sale_days": 7,
            "self_purchase_commission": False, "promoter_binding_rule": "FIRST_TOUCH"}


def demo_products(category=None):
    """(sku, price, cost) of the demo catalogue, in the brands index's (SKU) order."""
    return sorted((sku, price, cost) for sku, _, cat, price, cost in demo_data.PRODUCTS
                  if category is None or cat == category)


def first_above_price(rate_bps, category=None):
    return next(sku for sku, price, cost in demo_products(category) if cost * 10000 + price * rate_bps > price * 10000)


@pytest.fixture
def office(dynamodb):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def put_settings(office, body, role="brand", tenant=BRAND):
    return office(role, tenant, "PUT", SETTINGS, body)


# --- the pure rules -----------------------------------------------------------

@pytest.mark.parametrize("depth, rates, expected", [
    (1, (500,), (500,)),
    (1, (500, 300, 100), (500,)),          # levels beyond the depth earn nothing
    (2, (500, 300, 100), (500, 300)),
    (3, (500, 300, 100), (500, 300, 100)),
    (3, (500,), (500, 0, 0)),              # levels the rates do not name earn 0
    (2, (500,), (500, 0)),
    (3, (500, 300), (500, 300, 0)),
])
def test_effective_rates_are_cut_or_padded_to_the_depth(depth, rates, expected):
    settings = CommissionSettings(depth=depth, default_rates_bps=rates)
    assert effective_rates(settings, "laptop", None) == expected
    assert effective_rates(CommissionSettings(depth=depth), "laptop", rates) == expected


SETTINGS_2 = CommissionSettings(depth=2, default_rates_bps=(100,), category_rates_bps={"laptop": (300, 200)})


@pytest.mark.parametrize("category, own, expected", [
    ("laptop", (700, 50, 10), (700, 50)),   # the product's own rates come first
    ("laptop", None, (300, 200)),           # then its category's
    ("tablet", None, (100, 0)),             # then the default
    ("", None, (100, 0)),
    ("tablet", (0,), (0, 0)),               # an own rate of 0 is still its own
])
def test_a_product_s_own_rates_beat_its_category_s_which_beat_the_default(category, own, expected):
    product = Product(sku="X-1", brand_id=BRAND, name="x", price_fen=1000, cost_fen=500, category=category,
                      commission_rates_bps=own)
    assert uc.rates_for_product(SETTINGS_2, product) == expected


def test_rates_for_product_reads_a_product_record_too():
    from chalicelib.db.records import ProductRecord

    record = ProductRecord(sku="X-1", brand_id=BRAND, name="x", category="laptop", price_fen=1000, cost_fen=500,
                           created_at=0, commission_rates_bps=[900])
    assert uc.rates_for_product(SETTINGS_2, record) == (900, 0)
    record.commission_rates_bps = None
    assert uc.rates_for_product(SETTINGS_2, record) == (300, 200)


def test_a_configuration_left_out_takes_the_defaults():
    assert check_settings({}) == CommissionSettings()
    assert CommissionSettings().to_json() == DEFAULTS
    full = {"depth": 3, "default_rates_bps": [500, 200, 100], "category_rates_bps": {"laptop": [300]},
            "after_sale_days": 14, "self_purchase_commission": True, "promoter_binding_rule": "LAST_TOUCH"}
    assert check_settings(full).to_json() == full


@pytest.mark.parametrize("body, field", [
    ({"depth": 0}, "depth"),
    ({"depth": 4}, "depth"),
    ({"depth": "2"}, "depth"),
    ({"depth": True}, "depth"),
    ({"default_rates_bps": [10001]}, "default_rates_bps"),
    ({"default_rates_bps": [-1]}, "default_rates_bps"),
    ({"default_rates_bps": []}, "default_rates_bps"),
    ({"default_rates_bps": [1, 2, 3, 4]}, "default_rates_bps"),
    ({"default_rates_bps": [1.5]}, "default_rates_bps"),
    ({"default_rates_bps": 500}, "default_rates_bps"),
    ({"category_rates_bps": {"laptop": [10001]}}, "category_rates_bps.laptop"),
    ({"category_rates_bps": {" laptop": [1]}}, "category_rates_bps"),
    ({"category_rates_bps": [1]}, "category_rates_bps"),
    ({"after_sale_days": 0}, "after_sale_days"),
    ({"after_sale_days": 31}, "after_sale_days"),
    ({"self_purchase_commission": "yes"}, "self_purchase_commission"),
    ({"promoter_binding_rule": "SECOND_TOUCH"}, "promoter_binding_rule"),
    ({"depth": 1, "levels": 2}, "levels"),
])
def test_a_wrong_setting_is_refused_naming_its_field(body, field):
    with pytest.raises(ValidationFailed) as refused:
        check_settings(body)
    assert refused.value.details["field"] == field


def test_rates_and_caps_are_whole_basis_points():
    assert check_rates([0, 10000]) == (0, 10000)
    assert check_max_ratio(0) == 0 and check_max_ratio(10000) == 10000
    for wrong in (-1, 10001, 3000.0, True, None):
        with pytest.raises(ValidationFailed):
            check_max_ratio(wrong)


def test_settings_are_values_nobody_changes_underneath():
    categories = {"laptop": [300]}
    settings = CommissionSettings(category_rates_bps=categories)
    categories["laptop"].append(1)
    assert settings.category_rates_bps["laptop"] == (300,)
    with pytest.raises(TypeError):
        settings.category_rates_bps["tablet"] = (1,)


# --- the back office ----------------------------------------------------------

def test_the_defaults_are_read_until_the_brand_sets_anything(office):
    read = office("brand", BRAND, "GET", SETTINGS)
    assert read.status_code == 200 and read.json == DEFAULTS
    product = office("brand", BRAND, "GET", "/v1/admin/products/LM-MS-WL").json
    assert product["commission_rates_bps"] is None
    dealer = office("brand", BRAND, "GET", f"/v1/admin/dealers/{SHU}").json
    assert dealer["max_ratio_bps"] == 3000


def test_a_valid_configuration_is_stored_and_read_back(office):
    body = {"depth": 2, "default_rates_bps": [500, 200], "category_rates_bps": {"laptop": [800, 300]},
            "after_sale_days": 10, "self_purchase_commission": True, "promoter_binding_rule": "NEW_CUSTOMERS_ONLY"}
    stored = put_settings(office, body)
    assert stored.status_code == 200, stored.json
    assert stored.json == body
    assert office("brand", BRAND, "GET", SETTINGS).json == body
    # What the split planner reads
    settings = uc.settings_for_brand(BRAND, commission_config=wiring.commission_config())
    laptop = wiring.catalogue().get_product("LM-NB14-I5")
    assert uc.rates_for_product(settings, laptop) == (800, 300)
    # The whole object is replaced: what is left out goes back to its default
    assert put_settings(office, {"default_rates_bps": [100]}).json == {**DEFAULTS, "default_rates_bps": [100]}


def test_rates_that_leave_no_room_for_a_product_s_cost_are_refused_naming_it(office):
    rate = 1390   # above the margin of some laptops, below the cap
    refused = put_settings(office, {"category_rates_bps": {"laptop": [rate]}})
    assert refused.status_code == 422, refused.json
    error = refused.json["error"]
    assert error["code"] == "COST_AND_COMMISSION_ABOVE_PRICE"
    assert error["details"]["sku"] == first_above_price(rate, "laptop") and error["details"]["commission_bps"] == rate
    assert error["details"]["sku"] in error["message"]
    assert office("brand", BRAND, "GET", SETTINGS).json == DEFAULTS
    # Depth counts: the same rate as a third level is refused only once three levels earn
    assert put_settings(office, {"category_rates_bps": {"laptop": [0, 0, rate]}}).status_code == 200
    assert put_settings(office, {"depth": 3, "category_rates_bps": {"laptop": [0, 0, rate]}}).status_code == 422


def test_all_levels_above_the_smallest_dealer_cap_are_refused(office):
    assert office("brand", BRAND, "PUT", f"/v1/admin/dealers/{CHU}/max-ratio", {"max_ratio_bps": 1000}).json[
        "warnings"] == []
    refused = put_settings(office, {"depth": 2, "default_rates_bps": [600, 500]})
    assert refused.status_code == 422, refused.json
    error = refused.json["error"]
    assert error["code"] == "COMMISSION_ABOVE_SPLIT_CAP"
    assert error["details"]["sku"] == demo_products()[0][0]
    assert (error["details"]["commission_bps"], error["details"]["smallest_max_ratio_bps"]) == (1100, 1000)
    # One level of them fits
    assert put_settings(office, {"depth": 1, "default_rates_bps": [600, 500]}).status_code == 200
    # A category no product uses yet is held to the cap too
    refused = put_settings(office, {"category_rates_bps": {"drones": [1001]}})
    assert refused.status_code == 422 and refused.json["error"]["details"]["field"] == "category_rates_bps.drones"


@pytest.mark.parametrize("body", [
    {"depth": 4},
    {"default_rates_bps": [10001]},
    {"default_rates_bps": [100], "commission_cap": 5},
    {"category_rates_bps": {"laptop": [1, 2, 3, 4]}},
])
def test_a_malformed_configuration_is_a_400(office, body):
    answer = put_settings(office, body)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("role, tenant", [("dealer", SHU), ("store", "store-cd-chunxi")])
def test_only_the_brand_configures_commissions(office, role, tenant):
    for method, path, body in [("GET", SETTINGS, None), ("PUT", SETTINGS, {"default_rates_bps": [100]}),
                               ("PUT", "/v1/admin/products/LM-MS-WL/commission-rates", {"rates_bps": [100]}),
                               ("PUT", f"/v1/admin/dealers/{SHU}/max-ratio", {"max_ratio_bps": 1000})]:
        answer = office(role, tenant, method, path, body)
        assert answer.status_code == 403, (method, path, answer.json)
    assert office("brand", BRAND, "GET", f"/v1/admin/dealers/{SHU}").json["max_ratio_bps"] == 3000


def test_a_product_s_own_rates_are_checked_shown_and_take_precedence(office):
    put_settings(office, {"default_rates_bps": [100], "category_rates_bps": {"accessory": [200]}})
    path = "/v1/admin/products/LM-MS-WL/commission-rates"   # accessory: price 9900, cost 7500
    own = office("brand", BRAND, "PUT", path, {"rates_bps": [1500]})
    assert own.status_code == 200, own.json
    assert own.json["commission_rates_bps"] == [1500]
    assert office("brand", BRAND, "GET", "/v1/admin/products/LM-MS-WL").json["commission_rates_bps"] == [1500]
    listed = office("brand", BRAND, "GET", "/v1/admin/products?limit=100").json["items"]
    assert {p["sku"]: p["commission_rates_bps"] for p in listed}["LM-MS-WL"] == [1500]
    settings = uc.settings_for_brand(BRAND, commission_config=wiring.commission_config())
    catalogue = wiring.catalogue()
    assert uc.rates_for_product(settings, catalogue.get_product("LM-MS-WL")) == (1500,)
    assert uc.rates_for_product(settings, catalogue.get_product("LM-PWR-65")) == (200,)
    assert uc.rates_for_product(settings, catalogue.get_product("LM-TAB11")) == (100,)

    # 9900 × 25 % + 7500 > 9900: refused, naming the SKU, nothing stored
    refused = office("brand", BRAND, "PUT", path, {"rates_bps": [2500]})
    assert refused.status_code == 422 and refused.json["error"]["details"]["sku"] == "LM-MS-WL"
    assert refused.json["error"]["code"] == "COST_AND_COMMISSION_ABOVE_PRICE"
    assert catalogue.get_product("LM-MS-WL").commission_rates_bps == (1500,)

    back = office("brand", BRAND, "PUT", path, {"rates_bps": None})
    assert back.status_code == 200 and back.json["commission_rates_bps"] is None
    assert uc.rates_for_product(settings, catalogue.get_product("LM-MS-WL")) == (200,)


def test_product_rates_are_validated_and_kept_to_the_brand(office):
    path = "/v1/admin/products/LM-MS-WL/commission-rates"
    for body in ({"rates_bps": [10001]}, {"rates_bps": []}, {"rates_bps": "100"}, {}, {"rates_bps": [1], "x": 1}):
        assert office("brand", BRAND, "PUT", path, body).status_code == 400, body
    assert office("brand", BRAND, "PUT", "/v1/admin/products/NO-SUCH/commission-rates",
                  {"rates_bps": [1]}).status_code == 404
    assert office("brand", "brand-other", "PUT", path, {"rates_bps": [1]}).status_code == 404
    assert office("brand", "brand-other", "PUT", f"/v1/admin/dealers/{SHU}/max-ratio",
                  {"max_ratio_bps": 1}).status_code == 404


def test_lowering_a_dealer_s_cap_is_recorded_and_warns_of_what_no_longer_fits(office):
    assert put_settings(office, {"category_rates_bps": {"accessory": [2000]}}).status_code == 200
    lowered = office("brand", BRAND, "PUT", f"/v1/admin/dealers/{SHU}/max-ratio", {"max_ratio_bps": 1500})
    assert lowered.status_code == 200, lowered.json
    assert lowered.json["dealer"]["max_ratio_bps"] == 1500 and lowered.json["smallest_max_ratio_bps"] == 1500
    warned = lowered.json["warnings"]
    assert [w["sku"] for w in warned] == [sku for sku, _, _ in demo_products("accessory")]
    assert {w["code"] for w in warned} == {"COMMISSION_ABOVE_SPLIT_CAP"} and warned[0]["rates_bps"] == [2000]
    assert office("brand", BRAND, "GET", f"/v1/admin/dealers/{SHU}").json["max_ratio_bps"] == 1500
    # The configuration it broke can no longer be stored again as it is
    assert put_settings(office, {"category_rates_bps": {"accessory": [2000]}}).status_code == 422
    # Raising it back: no warning
    raised = office("brand", BRAND, "PUT", f"/v1/admin/dealers/{SHU}/max-ratio", {"max_ratio_bps": 3000})
    assert raised.json["warnings"] == [] and raised.json["smallest_max_ratio_bps"] == 3000
    for wrong in (-1, 10001, "1500", None):
        assert office("brand", BRAND, "PUT", f"/v1/admin/dealers/{SHU}/max-ratio",
                      {"max_ratio_bps": wrong}).status_code == 400


# --- the repository -----------------------------------------------------------

def test_a_change_checked_against_a_configuration_that_moved_on_is_refused(dynamodb):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    repo = wiring.commission_config()
    settings, version = repo.settings_and_version(BRAND)
    assert (settings, version) == (CommissionSettings(), 0)
    assert repo.put_settings(BRAND, CommissionSettings(default_rates_bps=(100,)), expected_version=0) == 1
    with pytest.raises(Conflict):
        repo.put_settings(BRAND, CommissionSettings(default_rates_bps=(200,)), expected_version=0)
    with pytest.raises(Conflict):
        repo.set_product_rates(BRAND, "LM-MS-WL", (300,), expected_version=0)
    assert repo.set_product_rates(BRAND, "LM-MS-WL", (300,), expected_version=1).commission_rates_bps == (300,)
    assert repo.get_product_rates("LM-MS-WL") == (300,)
    assert repo.settings_and_version(BRAND) == (CommissionSettings(default_rates_bps=(100,)), 2)
    assert repo.get_settings("brand-unknown") == CommissionSettings()
    assert repo.smallest_max_ratio(BRAND) == 3000 and repo.smallest_max_ratio("brand-unknown") == 3000
    assert len(list(repo.products_of_brand(BRAND))) == len(demo_data.PRODUCTS)

