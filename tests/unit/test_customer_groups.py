"""Store groups and the dealer's data-sharing switch (moto, in-process, demo data)."""
import json

import pytest

from chalicelib import auth
from chalicelib.services import wiring
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import shop  # noqa: F401 - the fixture
from tests.unit.test_scans import make_scene, scan

BRAND, SHU, CHU = "brand-lumen", "dealer-shu", "dealer-chu"
CHUNXI, TIANFU, OPTICS = "store-cd-chunxi", "store-cd-tianfu", "store-wh-optics"   # shu, shu, chu


def office(shop, role, tenant, method, path, body=None):  # noqa: F811
    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    response = getattr(shop.client.http, method.lower())(
        path, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps(body) if body is not None else None)
    is_json = response.headers.get("Content-Type", "application/json").startswith("application/json")
    response.json = json.loads(response.body) if is_json and response.body else None
    return response


def share(shop, dealer, level):  # noqa: F811
    answer = office(shop, "dealer", dealer, "PUT", f"/v1/admin/dealers/{dealer}/data-sharing", {"brand_access": level})
    assert answer.status_code == 200, answer.json
    return answer.json


@pytest.fixture
def groups(shop, monkeypatch):  # noqa: F811
    """alice and bob scan Chunxi (bob later), cat scans Tianfu, dan scans Optics (another dealer)."""
    times = iter(range(10**9))
    start = wiring.now()
    monkeypatch.setattr(wiring, "now", lambda: start + next(times))
    for scene, store in (("s.chunxi", CHUNXI), ("s.tianfu", TIANFU), ("s.optics", OPTICS)):
        make_scene(scene, store)
    for who, scene in (("alice", "s.chunxi"), ("bob", "s.chunxi"), ("cat", "s.tianfu"), ("dan", "s.optics")):
        assert scan(shop, {"scene": scene}, who=who)[0] == 201
    shop.ids = {who: shop.get("/v1/me", who=who).json["customer_id"] for who in ("alice", "bob", "cat", "dan")}
    return shop


def ids(answer):
    return [row["customer_id"] for row in answer.json["items"]]


def test_a_store_lists_its_own_customers_newest_first_with_their_last_scan(groups):
    answer = office(groups, "store", CHUNXI, "GET", "/v1/admin/customers")
    assert answer.status_code == 200 and ids(answer) == [groups.ids["bob"], groups.ids["alice"]]
    row = answer.json["items"][0]
    assert row["last_scan"]["store_id"] == CHUNXI and row["last_purchase"] is None
    assert row["openid_masked"] == "o***" and row["owner_basis"] == "SCANNED"
    assert office(groups, "store", CHUNXI, "GET", f"/v1/admin/customers?store_id={TIANFU}").status_code == 404
    assert office(groups, "store", CHUNXI, "GET", f"/v1/admin/customers?dealer_id={SHU}").status_code == 403


def test_a_dealer_lists_its_network_or_one_store_and_nothing_of_others(groups):
    mine = office(groups, "dealer", SHU, "GET", "/v1/admin/customers")
    assert sorted(ids(mine)) == sorted(groups.ids[w] for w in ("alice", "bob", "cat"))
    assert ids(mine)[0] == groups.ids["cat"]                       # newest owner first
    assert ids(office(groups, "dealer", SHU, "GET", f"/v1/admin/customers?store_id={TIANFU}")) == [groups.ids["cat"]]
    assert office(groups, "dealer", SHU, "GET", f"/v1/admin/customers?store_id={OPTICS}").status_code == 404
    assert office(groups, "dealer", SHU, "GET", f"/v1/admin/customers?dealer_id={CHU}").status_code == 404
    paged = office(groups, "dealer", SHU, "GET", "/v1/admin/customers?limit=2")
    rest = office(groups, "dealer", SHU, "GET", f"/v1/admin/customers?limit=2&cursor={paged.json['next_cursor']}")
    assert ids(paged) + ids(rest) == ids(mine)


def test_the_brand_sees_a_dealers_customers_only_with_full_access(groups):
    dan = groups.ids["dan"]
    for level, list_status, history_status in (("NONE", 403, 404), ("AGGREGATES_ONLY", 403, 404),
                                               ("FULL", 200, 200)):
        if level != "NONE":
            share(groups, CHU, level)
        listed = office(groups, "brand", BRAND, "GET", f"/v1/admin/customers?dealer_id={CHU}")
        assert listed.status_code == list_status, level
        if list_status == 403:
            assert listed.json["error"]["code"] == "NOT_SHARED_BY_DEALER"
        else:
            assert ids(listed) == [dan]
        by_store = office(groups, "brand", BRAND, "GET", f"/v1/admin/customers?store_id={OPTICS}")
        assert by_store.status_code == list_status
        history = office(groups, "brand", BRAND, "GET", f"/v1/admin/customers/{dan}/ownership")
        assert history.status_code == history_status, level
    # Shu still shares nothing: its customers stay out of the brand's sight.
    assert office(groups, "brand", BRAND, "GET", f"/v1/admin/customers?dealer_id={SHU}").status_code == 403
    assert office(groups, "brand", BRAND, "GET", "/v1/admin/customers").status_code == 400


def test_only_the_dealer_flips_its_switch_and_every_change_is_recorded(groups):
    assert share(groups, SHU, "FULL")["brand_access"] == "FULL"
    after = share(groups, SHU, "AGGREGATES_ONLY")
    assert [(c["from"], c["to"], c["changed_by"]) for c in after["changes"]] == [
        ("NONE", "FULL", "dealer:dealer-shu"), ("FULL", "AGGREGATES_ONLY", "dealer:dealer-shu")]
    assert len(share(groups, SHU, "AGGREGATES_ONLY")["changes"]) == 2      # no change, nothing recorded
    by_brand = office(groups, "brand", BRAND, "PUT", f"/v1/admin/dealers/{SHU}/data-sharing", {"brand_access": "FULL"})
    assert by_brand.status_code == 403
    assert office(groups, "brand", BRAND, "GET", f"/v1/admin/dealers/{SHU}/data-sharing").json["brand_access"] == \
        "AGGREGATES_ONLY"
    assert office(groups, "dealer", CHU, "GET", f"/v1/admin/dealers/{SHU}/data-sharing").status_code == 404
    assert office(groups, "store", CHUNXI, "PUT", f"/v1/admin/dealers/{SHU}/data-sharing",
                  {"brand_access": "FULL"}).status_code == 403          # a store never reads dealers
    for bad in ({"brand_access": "ALL"}, {"brand_access": None}, {}, {"brand_access": "FULL", "x": 1}):
        answer = office(groups, "dealer", SHU, "PUT", f"/v1/admin/dealers/{SHU}/data-sharing", bad)
        assert answer.status_code == 400, bad
    assert office(groups, "dealer", SHU, "GET", f"/v1/admin/dealers/{SHU}").json["brand_access"] == "AGGREGATES_ONLY"


def test_the_last_purchase_shows_in_the_group(groups):
    from chalicelib.services.attribution import on_attribute_purchase

    order = paid_order(groups, "alice-buys")
    on_attribute_purchase("ob", {"order_id": order["order_id"]})
    on_attribute_purchase("ob", {"order_id": order["order_id"]})          # redelivered: nothing changes
    row = next(r for r in office(groups, "store", CHUNXI, "GET", "/v1/admin/customers").json["items"]
               if r["customer_id"] == groups.ids["alice"])
    assert row["last_purchase"]["order_id"] == order["order_id"] and row["last_purchase"]["store_id"] == CHUNXI
    assert row["owner_basis"] == "PURCHASED"


def test_the_export_is_masked_csv_in_pages(groups, monkeypatch):
    import csv
    import io

    from chalicelib.services import customer_groups

    answer = office(groups, "dealer", SHU, "GET", "/v1/admin/customers/export")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert sorted(r["customer_id"] for r in rows) == sorted(groups.ids[w] for w in ("alice", "bob", "cat"))
    assert {r["openid_masked"] for r in rows} == {"o_a***ce", "o***"}
    assert "X-Next-Cursor" not in answer.headers
    monkeypatch.setattr(customer_groups, "EXPORT_ROWS", 2)
    first = office(groups, "dealer", SHU, "GET", "/v1/admin/customers/export")
    rest = office(groups, "dealer", SHU, "GET", f"/v1/admin/customers/export?cursor={first.headers['X-Next-Cursor']}")
    assert len(first.body.decode().splitlines()) == 3 and len(rest.body.decode().splitlines()) == 2
    assert office(groups, "brand", BRAND, "GET", f"/v1/admin/customers/export?dealer_id={SHU}").status_code == 403


def test_a_spreadsheet_never_runs_a_cell():
    from chalicelib.services.customer_groups import _cell

    assert [_cell(v) for v in ("=1+1", "+x", "-2", "@a", "ok", None, 3)] == ["'=1+1", "'+x", "'-2", "'@a", "ok", "", "3"]
