"""Routing over real HTTP (M11): customers say where they are, the route-traffic job gives
each the nearest store (run by hand with `./storelink job route-traffic`, and by the local
scheduler when the business clock passes its time), GET /v1/me shows it, and the
customer's own scan then overrides it.

The stores stand in Kashgar, far from every other test's stores and the demo's; each
test makes its own customers (the stack is shared by the whole session)."""
from __future__ import annotations

import json
import math
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from infra.local.environment import PROJECT_DIR
from infra.local.tokens import mint_backoffice_token
from tests.integration.conftest import assert_contract_error, http, login
from tests.openapi import check_response

pytestmark = pytest.mark.integration

KASHGAR = (39.4704, 75.9898)
ALL_WEEK = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
JOB_EVERY_S = 15 * 60 + 5


def offset(point, north_m, east_m):
    lat, lng = point
    return lat + north_m / 111_195, lng + east_m / (111_195 * math.cos(math.radians(lat)))


def token(stack, role, tenant) -> dict:
    """A fresh back-office token (they live 12 business hours; other tests move the clock)."""
    return {"Authorization": f"Bearer {mint_backoffice_token(Path(stack.data_dir), role, tenant)}"}


def call(stack, method, path, body=None, headers=None):
    reply = http(method, stack.urls["api"] + path, body, headers)
    check_response(method, path, reply.status, reply.body)
    return reply


def customer(stack, name) -> tuple[str, dict]:
    reply = login(stack.urls["api"], f"sandbox-m11rt{name}-{uuid.uuid4().hex[:10]}")
    assert reply.status == 200, reply.body
    return reply.json()["customer_id"], {"Authorization": f"Bearer {reply.json()['token']}"}


def owner(stack, headers) -> str | None:
    reply = call(stack, "GET", "/v1/me", headers=headers)
    assert reply.status == 200, reply.body
    return (reply.json()["owning_store"] or {}).get("store_id")


def run_job(stack) -> dict:
    """`./storelink job route-traffic`; a run of the scheduler holding the lease at that
    moment makes this one exit at once (LEASE_HELD): then again, once it is done."""
    for _ in range(20):
        done = subprocess.run([str(PROJECT_DIR / "storelink"), "--data-dir", str(stack.data_dir), "job",
                               "route-traffic"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])["result"]
        if result["outcome"] != "LEASE_HELD":
            return result
        time.sleep(0.5)
    raise AssertionError("the route-traffic lease stayed held")


@pytest.fixture(scope="module")
def kashgar(stack):
    """Two stores 50 m apart, of two dealers, both offering pickup, open all week."""
    made = []
    for dealer, east_m in (("dealer-shu", 0), ("dealer-chu", 50)):
        lat, lng = offset(KASHGAR, 0, east_m)
        reply = call(stack, "POST", "/v1/admin/stores", {
            "name": f"Kashgar {dealer}", "city": "Kashgar", "lat": lat, "lng": lng, "services": ["pickup"],
            "opening_hours": ALL_WEEK}, token(stack, "dealer", dealer))
        assert reply.status == 201, reply.body
        made.append(reply.json()["store_id"])
    return made


def test_customers_located_by_coordinates_or_city_are_routed_fairly_and_a_scan_overrides_it(stack, kashgar):
    store_a, store_b = kashgar
    people = []
    for n in range(6):
        customer_id, headers = customer(stack, f"pt{n}")
        point = offset(KASHGAR, 150 * n - 300, 100)
        reply = call(stack, "PUT", "/v1/me/location", {"lat": point[0], "lng": point[1]}, headers)
        assert reply.status == 200, reply.body
        stored = reply.json()
        assert stored["awaiting_route"] is True and stored["location"]["kind"] == "CELL"
        assert (stored["location"]["lat"], stored["location"]["lng"]) != point       # coarsened
        people.append((customer_id, headers))
    for n in range(2):
        customer_id, headers = customer(stack, f"city{n}")
        reply = call(stack, "PUT", "/v1/me/location", {"city": "Kashgar"}, headers)
        assert reply.status == 200 and reply.json()["location"] | {"located_at": None} == {
            "kind": "CITY", "cell": None, "lat": None, "lng": None, "city": "Kashgar", "resolution": None,
            "source": "STATED", "located_at": None}, reply.body
        people.append((customer_id, headers))
    _, stranger = customer(stack, "nowhere")
    assert_contract_error(call(stack, "PUT", "/v1/me/location", {"city": "Atlantis"}, stranger), 400,
                          "VALIDATION_FAILED")
    assert_contract_error(call(stack, "PUT", "/v1/me/location", {"lat": 39.4, "lng": 75.9, "city": "Kashgar"},
                               stranger), 400, "VALIDATION_FAILED")

    result = run_job(stack)
    assert result["outcome"] == "DONE", result

    owners = [owner(stack, headers) for _, headers in people]
    assert set(owners) == {store_a, store_b}, owners
    assert sorted(owners.count(s) for s in (store_a, store_b)) == [4, 4]     # 50 m apart: they take turns
    first_id, first_headers = people[0]
    routed_to = owners[0]
    dealer = "dealer-shu" if routed_to == store_a else "dealer-chu"
    history = call(stack, "GET", f"/v1/admin/customers/{first_id}/ownership", headers=token(stack, "dealer", dealer))
    assert history.status == 200, history.body
    assert [(c["to_store_id"], c["basis"], c["reason"]) for c in history.json()["changes"]] == [
        (routed_to, "ROUTED", "ROUTED_TO_NEAREST")]

    again = run_job(stack)                       # nobody is routed twice
    assert [owner(stack, headers) for _, headers in people] == owners
    assert again["outcome"] == "DONE"

    report = call(stack, "GET", "/v1/admin/routing/report", headers=token(stack, "brand", "brand-lumen"))
    assert report.status == 200, report.body
    assert report.json()["by_store"].get(store_a, 0) >= 1 and report.json()["by_store"].get(store_b, 0) >= 1

    # The customer's own scan of the other store overrides the routed one.
    other = store_b if routed_to == store_a else store_a
    scene = call(stack, "POST", "/v1/admin/scenes", {"kind": "store", "store_id": other},
                 token(stack, "brand", "brand-lumen"))
    assert scene.status == 201, scene.body
    scanned = call(stack, "POST", "/v1/scans", {"scene": scene.json()["scene"]}, first_headers)
    assert scanned.status == 201, scanned.body
    assert (scanned.json()["binding"], scanned.json()["bound_store_id"]) == ("SCAN_OVERRIDES_ROUTING", other)
    assert owner(stack, first_headers) == other
    run_job(stack)
    assert owner(stack, first_headers) == other


def test_the_scheduler_routes_a_located_customer_when_the_clock_passes_the_jobs_time(stack, kashgar):
    _, headers = customer(stack, "sched")
    reply = call(stack, "PUT", "/v1/me/location", {"lat": KASHGAR[0], "lng": KASHGAR[1]}, headers)
    assert reply.status == 200 and reply.json()["awaiting_route"] is True, reply.body

    moved = http("POST", f"{stack.urls['sandbox']}/sandbox/clock", {"advance_s": JOB_EVERY_S})
    assert moved.status == 200 and "due_work_errors" not in moved.json(), moved.body

    assert owner(stack, headers) in kashgar
