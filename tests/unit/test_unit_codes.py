"""Unit codes (一物一码) in the back office: batches, their codes, one unit's report;
in-process on moto with the demo data, plus the pure rules."""
import pytest
from chalice.test import Client

from chalicelib import auth
from chalicelib.db import items
from chalicelib.domain import scenes as scene_rules
from chalicelib.domain.time import rfc3339
from chalicelib.domain.unit_codes import (
    MAX_PLAUSIBLE_AREAS,
    UnitCode,
    check_batch_size,
    new_unit_tokens,
    unit_report,
)
from chalicelib.errors import ValidationFailed
from chalicelib.services import unit_codes as uc
from chalicelib.services import wiring
from infra.local import demo_data
from tests.openapi import ValidatingClient
from tests.unit.test_scenes import Office

BRAND = demo_data.BRAND["brand_id"]
SKU = "LM-NB14-I5"
SHU, SHU_STORE = "dealer-shu", "store-cd-chunxi"
# 2026-11-22T10:00:00+08:00
FIRST_SEEN = 1_795_312_800


@pytest.fixture
def office(dynamodb):
    from infra.local.seed import seed_demo_data

    seed_demo_data(wiring.now())
    import app as app_module

    with Client(app_module.app, stage_name="test") as client:
        yield Office(ValidatingClient(client))


def make_batch(office, count, sku=SKU):
    made = office("brand", BRAND, "POST", f"/v1/admin/products/{sku}/unit-code-batches", {"count": count})
    assert made.status_code == 201, made.json
    return made.json


def codes_of(office, batch_id, limit=100):
    listed = office("brand", BRAND, "GET", f"/v1/admin/unit-code-batches/{batch_id}/codes?limit={limit}")
    assert listed.status_code == 200, listed.json
    return listed.json


def scanned(scene, count, first_seen_at, areas):
    """What the scan side leaves on a unit scene (it owns those writes)."""
    from chalicelib.db.records import SceneRecord

    SceneRecord(scene).update(actions=[SceneRecord.unit_scan_count.set(count),
                                       SceneRecord.unit_first_seen_at.set(first_seen_at),
                                       SceneRecord.unit_first_seen_area.set(sorted(areas)[0]),
                                       SceneRecord.unit_areas.set(set(areas)),
                                       SceneRecord.unit_last_seen_at.set(first_seen_at + 3600)])


# --- the pure rules

@pytest.mark.parametrize("count, first_seen_at, areas, expected", [
    (None, None, None, {"scan_count": 0, "first_seen_at": None, "areas_seen": 0, "suspicious": False}),
    (0, None, set(), {"scan_count": 0, "first_seen_at": None, "areas_seen": 0, "suspicious": False}),
    (2, FIRST_SEEN, {"a"}, {"scan_count": 2, "first_seen_at": "2026-11-22T10:00:00+08:00", "areas_seen": 1,
                            "suspicious": False}),
    (9, FIRST_SEEN, ["a", "b", "c"], {"scan_count": 9, "first_seen_at": "2026-11-22T10:00:00+08:00",
                                      "areas_seen": 3, "suspicious": False}),
    (9, FIRST_SEEN, {"a", "b", "c", "d"}, {"scan_count": 9, "first_seen_at": "2026-11-22T10:00:00+08:00",
                                           "areas_seen": 4, "suspicious": True}),
    (3, FIRST_SEEN, ["a", "a", None, ""], {"scan_count": 3, "first_seen_at": "2026-11-22T10:00:00+08:00",
                                           "areas_seen": 1, "suspicious": False}),
])
def test_unit_report_counts_areas_and_flags_more_than_three(count, first_seen_at, areas, expected):
    assert unit_report(count, first_seen_at, areas) == expected


def test_first_seen_is_written_in_beijing_time_to_the_second():
    assert unit_report(1, 1_795_276_799.9, None)["first_seen_at"] == "2026-11-21T23:59:59+08:00"
    assert MAX_PLAUSIBLE_AREAS == 3


def test_unit_report_refuses_a_lone_string_for_areas():
    with pytest.raises(TypeError):
        unit_report(1, FIRST_SEEN, "8540a0fffffffff")


@pytest.mark.parametrize("value", [0, 1001, -1, "x", "3", 2.5, True, None])
def test_a_batch_size_outside_1_to_1000_is_refused(value):
    with pytest.raises(ValidationFailed):
        check_batch_size(value)


def test_unit_tokens_are_distinct_longer_and_fit_wechat():
    tokens = new_unit_tokens(500)
    assert len(set(tokens)) == 500
    for token in tokens:
        assert token.startswith("u.") and len(token) == 16
        assert scene_rules.check_scene(token) == token
    assert scene_rules.UNIT in scene_rules.KINDS and scene_rules.UNIT not in scene_rules.BACK_OFFICE_KINDS


# --- making a batch

def test_a_batch_of_three_makes_three_distinct_unit_scenes_listed_in_the_batch(office):
    batch = make_batch(office, 3)
    assert (batch["sku"], batch["brand_id"], batch["count"], batch["status"], batch["created_by"]) == (
        SKU, BRAND, 3, "COMPLETE", f"brand:{BRAND}")
    assert batch["batch_id"].startswith("ub_") and batch["completed_at"] is not None
    assert office("brand", BRAND, "GET", f"/v1/admin/unit-code-batches/{batch['batch_id']}").json == batch

    codes = codes_of(office, batch["batch_id"])
    assert codes["next_cursor"] is None
    tokens = [c["scene"] for c in codes["items"]]
    assert len(set(tokens)) == 3
    for code in codes["items"]:
        assert code["scene"].startswith("u.") and len(code["scene"]) <= 32
        assert code["print_url"] == "https://mall.storelink.invalid/s/" + code["scene"]
        assert (code["status"], code["scan_count"], code["first_seen_at"]) == ("ACTIVE", 0, None)
        scene = office("brand", BRAND, "GET", f"/v1/admin/scenes/{code['scene']}").json
        assert (scene["kind"], scene["sku"], scene["brand_id"], scene["store_id"], scene["status"]) == (
            "unit", SKU, BRAND, None, "ACTIVE")
        report = office("brand", BRAND, "GET", f"/v1/admin/unit-codes/{code['scene']}").json
        assert report == {"scene": code["scene"], "sku": SKU, "batch_id": batch["batch_id"], "status": "ACTIVE",
                          "scan_count": 0, "first_seen_at": None, "areas_seen": 0, "suspicious": False,
                          "first_seen_area": None, "last_seen_at": None}


def test_a_unit_code_scanned_twice_reports_count_two_and_the_first_seen_time(office):
    scene = codes_of(office, make_batch(office, 1)["batch_id"])["items"][0]["scene"]
    scanned(scene, 2, FIRST_SEEN, {"8540a0fffffffff"})

    report = office("brand", BRAND, "GET", f"/v1/admin/unit-codes/{scene}").json
    assert (report["scan_count"], report["first_seen_at"]) == (2, "2026-11-22T10:00:00+08:00")
    assert (report["areas_seen"], report["suspicious"], report["first_seen_area"]) == (1, False, "8540a0fffffffff")
    assert report["last_seen_at"] == rfc3339(FIRST_SEEN + 3600)
    listed = codes_of(office, report["batch_id"])["items"][0]
    assert (listed["scan_count"], listed["first_seen_at"]) == (2, "2026-11-22T10:00:00+08:00")


def test_a_unit_code_seen_in_four_areas_is_suspicious(office):
    scene = codes_of(office, make_batch(office, 1)["batch_id"])["items"][0]["scene"]
    scanned(scene, 7, FIRST_SEEN, {"cell-a", "cell-b", "cell-c", "cell-d"})

    report = office("brand", BRAND, "GET", f"/v1/admin/unit-codes/{scene}").json
    assert (report["areas_seen"], report["suspicious"]) == (4, True)


def test_a_skus_batches_are_listed_newest_first_and_codes_page_by_cursor(office, monkeypatch):
    first = make_batch(office, 5)
    a_minute_later = wiring.now() + 60
    monkeypatch.setattr(wiring, "now", lambda: a_minute_later)
    second = make_batch(office, 1)
    listed = office("brand", BRAND, "GET", f"/v1/admin/products/{SKU}/unit-code-batches")
    assert [b["batch_id"] for b in listed.json["items"]] == [second["batch_id"], first["batch_id"]]
    assert office("brand", BRAND, "GET", "/v1/admin/products/LM-TAB11/unit-code-batches").json["items"] == []

    seen, cursor = [], None
    while True:
        path = f"/v1/admin/unit-code-batches/{first['batch_id']}/codes?limit=2"
        path += f"&cursor={cursor}" if cursor else ""
        page = office("brand", BRAND, "GET", path).json
        seen += [c["scene"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5


def test_the_printers_csv_lists_every_code_of_the_batch(office):
    batch = make_batch(office, 3)
    answer = office("brand", BRAND, "GET", f"/v1/admin/unit-code-batches/{batch['batch_id']}/codes.csv")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    lines = answer.body.decode().splitlines()
    assert lines[0] == "scene,print_url,sku,batch_id"
    tokens = {c["scene"] for c in codes_of(office, batch["batch_id"])["items"]}
    assert {line.split(",")[0] for line in lines[1:]} == tokens
    assert all(line.endswith(f",{SKU},{batch['batch_id']}") for line in lines[1:])


# --- who may, and what is refused

def test_dealers_and_stores_may_not_touch_unit_codes(office):
    batch_id = make_batch(office, 1)["batch_id"]
    scene = codes_of(office, batch_id)["items"][0]["scene"]
    for role, tenant in (("dealer", SHU), ("store", SHU_STORE)):
        for method, path, body in [
            ("POST", f"/v1/admin/products/{SKU}/unit-code-batches", {"count": 1}),
            ("GET", f"/v1/admin/products/{SKU}/unit-code-batches", None),
            ("GET", f"/v1/admin/unit-code-batches/{batch_id}", None),
            ("GET", f"/v1/admin/unit-code-batches/{batch_id}/codes", None),
            ("GET", f"/v1/admin/unit-code-batches/{batch_id}/codes.csv", None),
            ("GET", f"/v1/admin/unit-codes/{scene}", None),
        ]:
            refused = office(role, tenant, method, path, body)
            assert refused.status_code == 403, (role, method, path, refused.json)
            assert refused.json["error"]["code"] == "FORBIDDEN"


def test_an_unknown_or_another_brands_sku_batch_or_code_is_not_found(office):
    batch_id = make_batch(office, 1)["batch_id"]
    scene = codes_of(office, batch_id)["items"][0]["scene"]
    unknown = office("brand", BRAND, "POST", "/v1/admin/products/NO-SUCH-SKU/unit-code-batches", {"count": 1})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "NOT_FOUND"
    for method, path, body in [
        ("POST", f"/v1/admin/products/{SKU}/unit-code-batches", {"count": 1}),
        ("GET", f"/v1/admin/products/{SKU}/unit-code-batches", None),
        ("GET", f"/v1/admin/unit-code-batches/{batch_id}", None),
        ("GET", f"/v1/admin/unit-code-batches/{batch_id}/codes", None),
        ("GET", f"/v1/admin/unit-codes/{scene}", None),
    ]:
        assert office("brand", "brand-other", method, path, body).status_code == 404, (method, path)
    assert office("brand", BRAND, "GET", "/v1/admin/unit-code-batches/ub_nothing").status_code == 404
    store_scene = office.scene("brand", BRAND, {"kind": "store", "store_id": SHU_STORE})["scene"]
    assert office("brand", BRAND, "GET", f"/v1/admin/unit-codes/{store_scene}").status_code == 404


@pytest.mark.parametrize("body", [{"count": 0}, {"count": 1001}, {"count": "x"}, {"count": 2.5}, {},
                                  {"count": 1, "colour": "red"}])
def test_a_batch_needs_a_count_from_1_to_1000(office, body):
    refused = office("brand", BRAND, "POST", f"/v1/admin/products/{SKU}/unit-code-batches", body)
    assert refused.status_code == 400, refused.json
    assert refused.json["error"]["code"] == "VALIDATION_FAILED"


def test_unit_scenes_are_not_made_one_at_a_time(office):
    refused = office("brand", BRAND, "POST", "/v1/admin/scenes", {"kind": "unit", "sku": SKU})
    assert refused.status_code == 422 and refused.json["error"]["code"] == "UNIT_SCENE_REFUSED"


# --- writing: cut short, throttled

class Wrapped:
    """The real repository, with what a subclass changes."""

    def __init__(self):
        from chalicelib.db.unit_codes import UnitCodeRepository

        self.real = UnitCodeRepository()

    def __getattr__(self, name):
        return getattr(self.real, name)


class DyingRepository(Wrapped):
    """... whose process dies after writing some codes."""

    def __init__(self, written_before_dying):
        super().__init__()
        self.written_before_dying = written_before_dying

    def add_codes(self, codes):
        self.real.add_codes(codes[:self.written_before_dying])
        raise TimeoutError("the Lambda ran out of time")


def test_a_batch_cut_short_stays_creating_and_is_not_printed(office):
    brand = auth.BackOfficePrincipal(role="brand", tenant_id=BRAND)
    dying = DyingRepository(written_before_dying=2)
    with pytest.raises(TimeoutError):
        uc.create_batch(brand, SKU, 5, unit_codes=dying, catalogue=wiring.catalogue(), now=wiring.now())

    batches = office("brand", BRAND, "GET", f"/v1/admin/products/{SKU}/unit-code-batches").json["items"]
    assert [(b["status"], b["count"], b["completed_at"]) for b in batches] == [("CREATING", 5, None)]
    assert len(codes_of(office, batches[0]["batch_id"])["items"]) == 2
    refused = office("brand", BRAND, "GET", f"/v1/admin/unit-code-batches/{batches[0]['batch_id']}/codes.csv")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "UNIT_CODE_BATCH_INCOMPLETE"


class ThrottlingClient:
    """DynamoDB's client, except that the first ``throttled`` requests leave their last
    ``unprocessed`` items unwritten and hand them back as UnprocessedItems."""

    def __init__(self, client, throttled, unprocessed):
        self.client, self.throttled, self.unprocessed = client, throttled, unprocessed
        self.sent: list[int] = []

    def batch_write_item(self, RequestItems):
        [(table, puts)] = RequestItems.items()
        self.sent.append(len(puts))
        if len(self.sent) <= self.throttled:
            kept, left = puts[:-self.unprocessed], puts[-self.unprocessed:]
            if kept:
                self.client.batch_write_item(RequestItems={table: kept})
            return {"UnprocessedItems": {table: left}}
        return self.client.batch_write_item(RequestItems=RequestItems)


def _throttled(monkeypatch, throttled, unprocessed):
    from chalicelib.db import binding

    real = binding.transaction_connection()
    fake = ThrottlingClient(real.client, throttled, unprocessed)
    monkeypatch.setattr(binding, "transaction_connection", lambda: type("Connection", (), {"client": fake})())
    pauses: list[float] = []
    monkeypatch.setattr("time.sleep", pauses.append)
    return fake, pauses


def _unit_records(count):
    from chalicelib.db.records import SceneRecord

    return [SceneRecord(scene=token, kind="unit", brand_id=BRAND, sku=SKU, batch_id="ub_test",
                        unit_scan_count=0, status="ACTIVE", created_at=0) for token in new_unit_tokens(count)]


def test_batch_write_sends_25_at_a_time_and_retries_unprocessed_items_with_backoff(dynamodb, monkeypatch):
    from chalicelib.db.records import SceneRecord

    records = _unit_records(30)
    fake, pauses = _throttled(monkeypatch, throttled=2, unprocessed=5)
    items.batch_write(records)

    # 25 (5 handed back) -> those 5 (all 5 handed back again) -> 5 -> the last 5 of the 30
    assert fake.sent == [25, 5, 5, 5]
    assert pauses == [0.02, 0.04]
    assert all(items.get(SceneRecord, r.scene) is not None for r in records)


def test_batch_write_gives_up_when_dynamodb_keeps_items_unprocessed(dynamodb, monkeypatch):
    _, pauses = _throttled(monkeypatch, throttled=100, unprocessed=1)
    with pytest.raises(TimeoutError):
        items.batch_write(_unit_records(3))
    assert len(pauses) == 8


def test_a_unit_code_listing_carries_what_the_printer_needs():
    code = UnitCode(scene="u.abcdefghijklmn", brand_id=BRAND, sku=SKU, batch_id="ub_x", created_at=0)
    assert code.listing_json() == {"scene": "u.abcdefghijklmn",
                                   "print_url": "https://mall.storelink.invalid/s/u.abcdefghijklmn",
                                   "status": "ACTIVE", "scan_count": 0, "first_seen_at": None}


class LaggingIndex(Wrapped):
    """... whose index does not list a batch's last code yet."""

    def codes_of_batch(self, batch_id, limit, start):
        codes, last = self.real.codes_of_batch(batch_id, limit, start)
        return codes[:-1], last


def test_the_printers_csv_is_never_short_while_the_index_lags(office):
    brand = auth.BackOfficePrincipal(role="brand", tenant_id=BRAND)
    lagging = LaggingIndex()
    batch = uc.create_batch(brand, SKU, 3, unit_codes=lagging, catalogue=wiring.catalogue(), now=wiring.now())
    with pytest.raises(uc.BatchIncomplete, match="try again"):
        uc.all_codes(brand, batch.batch_id, unit_codes=lagging)
    assert len(uc.all_codes(brand, batch.batch_id, unit_codes=lagging.real)) == 3


def test_the_largest_batch_writes_all_1000_codes(office):
    batch = make_batch(office, 1000)
    answer = office("brand", BRAND, "GET", f"/v1/admin/unit-code-batches/{batch['batch_id']}/codes.csv")
    assert answer.status_code == 200
    assert len(set(answer.body.decode().splitlines()[1:])) == 1000
