"""GET /v1/stores/nearest over real HTTP, against stores opened, changed and closed
through the back office: the geo index follows every change at once."""
from __future__ import annotations

import math
import subprocess

import pytest

from infra.local.environment import PROJECT_DIR
from tests.integration.conftest import assert_contract_error, http
from tests.openapi import check_response

pytestmark = pytest.mark.integration

DAY_S = 86_400
BEIJING_OFFSET_S = 8 * 3600
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LHASA = (29.6500, 91.1000)         # far from every other test's stores
ALL_WEEK = {d: [["00:00", "24:00"]] for d in WEEKDAYS}


@pytest.fixture(scope="module")
def dealer_token(stack):
    out = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "token",
                          "--role", "dealer", "--tenant", "dealer-shu"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _offset(lat, lng, north_m, east_m):
    return lat + north_m / 111_195, lng + east_m / (111_195 * math.cos(math.radians(lat)))


def _beijing_weekday(stack) -> int:
    reply = http("GET", f"{stack.urls['sandbox']}/sandbox/clock")
    assert reply.status == 200, reply.body
    return ((reply.json()["timestamp"] + BEIJING_OFFSET_S) // DAY_S + 3) % 7     # 1970-01-01 was a Thursday


def _admin(api, token, method, path, body=None):
    reply = http(method, api + path, body, {"Authorization": f"Bearer {token}"})
    check_response(method, path, reply.status, reply.body)
    assert reply.status in (200, 201), reply.body
    return reply.json()


def _open_store(api, token, name, north_m, services, hours=ALL_WEEK):
    lat, lng = _offset(*LHASA, north_m, 0)
    return _admin(api, token, "POST", "/v1/admin/stores", {
        "name": name, "city": "Lhasa", "lat": lat, "lng": lng, "services": services, "opening_hours": hours})["store_id"]


def _nearest(api, query=""):
    path = f"/v1/stores/nearest?lat={LHASA[0]}&lng={LHASA[1]}{query}"
    reply = http("GET", api + path)
    check_response("GET", "/v1/stores/nearest", reply.status, reply.body)
    assert reply.status == 200, reply.body
    return [(s["store_id"], s["distance_m"], s["open_now"]) for s in reply.json()["stores"]]


def test_only_active_open_stores_with_the_service_are_listed_and_changes_show_at_once(api, stack, dealer_token):
    not_today = WEEKDAYS[(_beijing_weekday(stack) + 3) % 7]
    # the business clock may move while this runs (other tests): "closed" = open only 3 days from now
    open_store = _open_store(api, dealer_token, "Lhasa Barkhor", 300, ["pickup", "repair"])
    closed_store = _open_store(api, dealer_token, "Lhasa Night", 100, ["pickup"], {not_today: [["10:00", "11:00"]]})
    repair_only = _open_store(api, dealer_token, "Lhasa Repairs", 200, ["repair"])
    gone = _open_store(api, dealer_token, "Lhasa Old Town", 50, ["pickup"])
    _admin(api, dealer_token, "PATCH", f"/v1/admin/stores/{gone}", {"status": "DEACTIVATED"})

    assert _nearest(api, "&service=pickup") == [(open_store, 300, True)]
    assert _nearest(api, "&service=pickup&include_closed=true") == [(open_store, 300, True), (closed_store, 100, False)]
    assert _nearest(api, "&service=repair") == [(repair_only, 200, True), (open_store, 300, True)]
    assert _nearest(api, "&service=trial") == []

    created = _open_store(api, dealer_token, "Lhasa Potala", 20, ["pickup"])
    assert _nearest(api, "&service=pickup&limit=1") == [(created, 20, True)]
    _admin(api, dealer_token, "PATCH", f"/v1/admin/stores/{created}", {"services": ["trial"]})
    assert _nearest(api, "&service=pickup&limit=1") == [(open_store, 300, True)]
    assert _nearest(api, "&service=trial") == [(created, 20, True)]
    moved = _offset(*LHASA, 0, 700)
    _admin(api, dealer_token, "PATCH", f"/v1/admin/stores/{created}", {"lat": moved[0], "lng": moved[1]})
    assert _nearest(api, "&service=trial") == [(created, 700, True)]
    _admin(api, dealer_token, "PATCH", f"/v1/admin/stores/{created}", {"status": "DEACTIVATED"})
    assert _nearest(api, "&service=trial") == []
    _admin(api, dealer_token, "PATCH", f"/v1/admin/stores/{gone}", {"status": "ACTIVE"})
    assert _nearest(api, "&service=pickup&limit=1") == [(gone, 50, True)]


@pytest.mark.parametrize("query", ["", "?lat=29.6", "?lat=29.6&lng=200", "?lat=29.6&lng=91&limit=0",
                                   "?lat=29.6&lng=91&limit=51", "?lat=29.6&lng=91&service=spa"])
def test_bad_queries_are_400(api, query):
    assert_contract_error(http("GET", f"{api}/v1/stores/nearest{query}"), 400, "VALIDATION_FAILED")
