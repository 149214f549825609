"""The funnel (M7 item 2): what each event counts (pure), counting once per outbox item
(moto), and the back-office endpoints: a scripted day's numbers equal a recount from
the raw records, also after every stream record is replayed, and each role reads only
what it may (a brand only what each dealer shares)."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import auth
from chalicelib.domain import events
from chalicelib.domain.funnel import (
    FIELDS,
    Increment,
    MalformedEvent,
    by_counter,
    daily_series,
    day_range,
    increments,
)
from chalicelib.errors import ValidationFailed
from chalicelib.services import wiring
from tests.unit.test_orders import DELIVERY, shop  # noqa: F401 - the fixture
from tests.unit.test_scans import scan

BEIJING = timezone(timedelta(hours=8))
# 2026-11-23 09:30 in Beijing
AT = datetime(2026, 11, 23, 9, 30, tzinfo=BEIJING).timestamp()
DAY = "2026-11-23"


# --- what each event counts (pure) -----------------------------------------------------

def scan_recorded(**changes):
    return {"scan_id": "sc_1", "customer_id": "cu_1", "scene": "s.abc", "kind": "store", "store_id": "st1",
            "dealer_id": "dl1", "staff_id": None, "campaign": None, "sku": None, "outcome": "FIRST_SCAN",
            "points_awarded": 10, "channel": "MINI_PROGRAM", "customer_first_seen_at": AT - 60, "at": AT,
            **changes}


def customer_bound(**changes):
    return {"customer_id": "cu_1", "from_store_id": None, "to_store_id": "st1", "to_dealer_id": "dl1",
            "basis": "SCANNED", "reason": "FIRST_SCAN", "cause": "scan#sc_1", "at": AT, **changes}


def order_paid(**changes):
    return {"order_id": "SL1", "customer_id": "cu_1", "store_id": "st1", "dealer_id": "dl1",
            "payable_fen": 34700, "paid_at": AT, "lines": [{"sku": "A", "quantity": 2}], **changes}


def counted(kind, payload) -> set[tuple[str, str, str, int]]:
    return {(i.scope, i.day, i.field, i.amount) for i in increments(kind, payload)}


@pytest.mark.parametrize("kind, payload, expected", [
    # a store code scanned in the mini-program: the store and its dealer
    (events.SCAN_RECORDED, scan_recorded(),
     {("store#st1", DAY, "scans", 1), ("dealer#dl1", DAY, "scans", 1)}),
    # a visit counts as a scan as well
    (events.SCAN_RECORDED, scan_recorded(outcome="VISIT_RECORDED", points_awarded=0),
     {("store#st1", DAY, "scans", 1), ("dealer#dl1", DAY, "scans", 1)}),
    # a guide's badge followed through the official account: a scan and a follower, credited to the guide
    (events.SCAN_RECORDED, scan_recorded(kind="staff", staff_id="sf1", channel="OA_SUBSCRIBE"),
     {(scope, DAY, field, 1) for scope in ("store#st1", "dealer#dl1", "staff#sf1")
      for field in ("scans", "followers")}),
    # an existing follower scanning in the official account is no new follower
    (events.SCAN_RECORDED, scan_recorded(channel="OA_SCAN"),
     {("store#st1", DAY, "scans", 1), ("dealer#dl1", DAY, "scans", 1)}),
    # a campaign poster: its scene is the campaign
    (events.SCAN_RECORDED, scan_recorded(kind="campaign", scene="c.poster", campaign="Double 11"),
     {("store#st1", DAY, "scans", 1), ("dealer#dl1", DAY, "scans", 1), ("campaign#c.poster", DAY, "scans", 1)}),
    # no store behind the scan: unknown or retired scene, brand-wide product code, closed store
    (events.SCAN_RECORDED, scan_recorded(kind=None, store_id=None, dealer_id=None, outcome="SCENE_NOT_FOUND"), set()),
    (events.SCAN_RECORDED, scan_recorded(kind="product", sku="LM-MS-WL", store_id=None, dealer_id=None,
                                         outcome="NO_STORE"), set()),
    # a first owner through a guide's badge: a new customer and a binding for store, dealer and guide
    (events.CUSTOMER_BOUND, customer_bound(staff_id="sf1", scene="f.badge", scene_kind="staff"),
     {(scope, DAY, field, 1) for scope in ("store#st1", "dealer#dl1", "staff#sf1")
      for field in ("bindings", "new_customers")}),
    # a first owner through a campaign poster
    (events.CUSTOMER_BOUND, customer_bound(staff_id=None, scene="c.poster", scene_kind="campaign", campaign="D11"),
     {(scope, DAY, field, 1) for scope in ("store#st1", "dealer#dl1", "campaign#c.poster")
      for field in ("bindings", "new_customers")}),
    # the last purchase moves a customer: a binding of the new store, nobody new
    (events.CUSTOMER_BOUND, customer_bound(from_store_id="st0", to_store_id="st2", to_dealer_id="dl2",
                                           basis="PURCHASED", reason="LAST_PURCHASE", cause="purchase#SL1"),
     {("store#st2", DAY, "bindings", 1), ("dealer#dl2", DAY, "bindings", 1)}),
    # a first purchase makes a new customer too
    (events.CUSTOMER_BOUND, customer_bound(basis="PURCHASED", reason="LAST_PURCHASE", cause="purchase#SL1"),
     {(scope, DAY, field, 1) for scope in ("store#st1", "dealer#dl1") for field in ("bindings", "new_customers")}),
    # an order: its store and dealer only (no staff, no campaign)
    (events.ORDER_PAID, order_paid(),
     {("store#st1", DAY, "orders", 1), ("store#st1", DAY, "gmv_fen", 34700),
      ("dealer#dl1", DAY, "orders", 1), ("dealer#dl1", DAY, "gmv_fen", 34700)}),
    # not counted by the funnel
    (events.PROMOTER_BOUND, {"customer_id": "cu_1", "promoter_id": "cu_2", "chain": ["cu_2"], "at": AT}, set()),
    ("PLAN_SPLIT", {"order_id": "SL1"}, set()),
], ids=["store-scan", "visit", "staff-follow", "oa-scan", "campaign-scan", "scene-not-found", "no-store",
        "first-owner-by-staff", "first-owner-by-campaign", "purchase-moves", "first-purchase", "order",
        "promoter-bound", "other-kind"])
def test_each_event_counts_where_and_what_the_rules_say(kind, payload, expected):
    assert counted(kind, payload) == expected


def test_the_day_is_the_beijing_day_of_the_event():
    midnight = datetime(2026, 11, 24, 0, 0, tzinfo=BEIJING).timestamp()   # 2026-11-23 16:00 UTC
    assert {i.day for i in increments(events.SCAN_RECORDED, scan_recorded(at=midnight - 1))} == {"2026-11-23"}
    assert {i.day for i in increments(events.SCAN_RECORDED, scan_recorded(at=midnight))} == {"2026-11-24"}
    # an order counts on the day it was paid
    assert {i.day for i in increments(events.ORDER_PAID, order_paid(paid_at=midnight))} == {"2026-11-24"}


@pytest.mark.parametrize("kind, payload", [
    (events.ORDER_PAID, order_paid(payable_fen="34700")),
    (events.ORDER_PAID, order_paid(payable_fen=347.0)),
    (events.ORDER_PAID, order_paid(payable_fen=-1)),
    (events.ORDER_PAID, order_paid(store_id=None)),
    (events.ORDER_PAID, {k: v for k, v in order_paid().items() if k != "paid_at"}),
    (events.SCAN_RECORDED, scan_recorded(at="yesterday")),
    (events.CUSTOMER_BOUND, customer_bound(to_store_id=None)),
])
def test_a_payload_that_cannot_be_counted_is_malformed(kind, payload):
    with pytest.raises(MalformedEvent):
        increments(kind, payload)


def test_increments_group_into_one_write_per_counter_item():
    found = increments(events.SCAN_RECORDED, scan_recorded(channel="OA_SUBSCRIBE"))
    assert by_counter(found + [Increment("store#st1", DAY, "scans", 2)]) == {
        ("store#st1", DAY): {"scans": 3, "followers": 1}, ("dealer#dl1", DAY): {"scans": 1, "followers": 1}}


@pytest.mark.parametrize("first, last, field", [
    ("2026-11-01", "2026-10-31", "to"),            # backwards
    ("2026-01-01", "2026-04-03", "to"),            # 93 days
    ("2026-02-30", "2026-03-01", "from"),          # no such day
    ("20261101", "2026-11-02", "from"),
    ("2026-11-01", "2026-11-2", "to"),
    (None, "2026-11-02", "from"),
])
def test_a_bad_range_of_days_is_refused_naming_the_field(first, last, field):
    with pytest.raises(ValidationFailed) as refused:
        day_range(first, last)
    assert refused.value.details["field"] == field


def test_the_series_lists_every_day_with_zeros_and_the_totals():
    start, end = day_range("2026-01-01", "2026-04-02")       # 92 days: the most at once
    assert (end - start).days + 1 == 92
    start, end = day_range("2026-11-22", "2026-11-24")
    series = daily_series({"2026-11-23": {"scans": 3, "gmv_fen": 100}}, start, end)
    zero = {name: 0 for name in FIELDS}
    assert series["days"] == [{"day": "2026-11-22", **zero}, {"day": "2026-11-23", **zero, "scans": 3, "gmv_fen": 100},
                              {"day": "2026-11-24", **zero}]
    assert series["totals"] == {**zero, "scans": 3, "gmv_fen": 100}


# --- counting once (moto) ----------------------------------------------------------------

def test_an_event_counts_once_however_often_it_is_applied(dynamodb):
    from chalicelib.db.funnel import FunnelRepository

    counters = FunnelRepository()
    found = increments(events.ORDER_PAID, order_paid())
    assert counters.apply("ob_1", events.ORDER_PAID, found, AT) is True
    assert counters.apply("ob_1", events.ORDER_PAID, found, AT + 5) is False
    assert counters.apply("ob_2", events.ORDER_PAID, increments(events.ORDER_PAID, order_paid(payable_fen=100)),
                          AT) is True
    assert counters.days("store#st1", DAY, DAY) == {DAY: {**{f: 0 for f in FIELDS}, "orders": 2, "gmv_fen": 34800}}
    assert counters.on_day(["dealer#dl1", "dealer#nobody"], DAY) == {
        "dealer#dl1": {**{f: 0 for f in FIELDS}, "orders": 2, "gmv_fen": 34800}}
    assert counters.is_counted("ob_1") and not counters.is_counted("ob_3")


def test_a_conflicting_transaction_is_retried_and_still_counts_once(dynamodb, monkeypatch):
    """Real DynamoDB cancels a transaction that meets another on the same counter item
    (DynamoDB Local serialises them and never says so): the write is tried again."""
    from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
    from pynamodb.transactions import TransactWrite

    from chalicelib.db.funnel import FunnelRepository

    real_commit, commits = TransactWrite._commit, []

    def conflicting_once(self):
        commits.append(1)
        if len(commits) == 1:
            cause = VerboseClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}}, "TransactWriteItems",
                cancellation_reasons=[None, CancellationReason(code="TransactionConflict", message="conflict")])
            raise TransactWriteError("conflict", cause=cause)
        return real_commit(self)

    monkeypatch.setattr(TransactWrite, "_commit", conflicting_once)
    counters = FunnelRepository()
    assert counters.apply("ob_1", events.SCAN_RECORDED, increments(events.SCAN_RECORDED, scan_recorded()), AT)
    assert len(commits) == 2
    assert counters.days("store#st1", DAY, DAY)[DAY]["scans"] == 1


def test_a_malformed_event_is_reported_and_not_retried(dynamodb):
    from chalicelib.services.funnel import count

    assert count(events.ORDER_PAID, "ob_1", order_paid(payable_fen="lots"), counters=wiring.funnel(),
                 now=AT) == "MALFORMED"
    assert count(events.SCAN_RECORDED, "ob_2", scan_recorded(store_id=None), counters=wiring.funnel(),
                 now=AT) == "NOTHING_TO_COUNT"
    assert count(events.SCAN_RECORDED, "ob_3", scan_recorded(), counters=wiring.funnel(), now=AT) == "COUNTED"
    assert count(events.SCAN_RECORDED, "ob_3", scan_recorded(), counters=wiring.funnel(), now=AT) == \
        "ALREADY_COUNTED"


# --- a scripted day, through the outbox stream and the endpoints ---------------------------

BRAND = "brand-lumen"
SHU, CHU, YANGTZE = "dealer-shu", "dealer-chu", "dealer-yangtze"
CHUNXI, OPTICS = "store-cd-chunxi", "store-wh-optics"     # dealer-shu's, dealer-chu's
SUB_MCHID = {SHU: "1900001001", CHU: "1900001002"}
SP = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001"}


def office(shop, role, tenant, method, path, body=None):  # noqa: F811
    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    call = getattr(shop.client.http, method.lower())
    response = call(path, headers=headers, body=json.dumps(body) if body is not None else None) \
        if method != "GET" else call(path, headers=headers)
    response.json = json.loads(response.body)
    return response


def funnel(shop, role, tenant, scope, ident, first, last=None):  # noqa: F811
    query = f"scope={scope}&id={ident}&from={first}&to={last or first}"
    return office(shop, role, tenant, "GET", f"/v1/admin/funnel?{query}")


def make_scene(shop, body):  # noqa: F811
    made = office(shop, "brand", BRAND, "POST", "/v1/admin/scenes", body)
    assert made.status_code == 201, made.json
    return made.json["scene"]


def pay(shop, who, store_id, dealer_id, key, quantity=1):  # noqa: F811
    from chalicelib.services import payments

    placed = shop.order({"store_id": store_id, "lines": [{"sku": "LM-MS-WL", "quantity": quantity}],
                         "fulfillment": DELIVERY}, key=key, who=who).json
    assert payments.apply_payment({**SP, "sub_mchid": SUB_MCHID[dealer_id], "out_trade_no": placed["order_id"],
                                   "transaction_id": "42" + placed["order_id"][2:], "trade_state": "SUCCESS",
                                   "amount": {"total": placed["amounts"]["payable_fen"], "currency": "CNY"}},
                                  payments=wiring.payment_records(), now=wiring.now(), **SP) == "APPLY"
    return placed


def stream_records(outbox_items) -> list[dict]:
    """What the outbox table's stream delivers for each new item (NEW_IMAGE)."""
    return [{"eventName": "INSERT", "eventSource": "aws:dynamodb",
             "dynamodb": {"Keys": {"outbox_id": {"S": item.outbox_id}}, "NewImage": item.serialize(),
                          "StreamViewType": "NEW_IMAGE"}} for item in outbox_items]


def all_outbox():
    from chalicelib.db.records import OutboxRecord

    return sorted(OutboxRecord.scan(), key=lambda o: (o.created_at, o.outbox_id))  # test only


def drain(fed: dict) -> list[dict]:
    """Feed the consumer every outbox item it has not been fed yet, until consuming
    writes no new ones (ATTRIBUTE_PURCHASE writes CUSTOMER_BOUND); returns all records fed."""
    from chalicelib.jobs.outbox import consume

    while True:
        new = [o for o in all_outbox() if o.outbox_id not in fed]
        if not new:
            return list(fed.values())
        records = stream_records(new)
        consume({"Records": records})
        fed.update({r["dynamodb"]["NewImage"]["outbox_id"]["S"]: r for r in records})


def beijing_day(ts) -> str:
    return datetime.fromtimestamp(float(ts), tz=BEIJING).date().isoformat()


def recount() -> dict[tuple[str, str], dict[str, int]]:
    """The funnel recomputed from the raw records (scans, ownership changes, orders) with
    the rules written out again here, not through chalicelib.domain.funnel."""
    from chalicelib.db.records import OrderRecord, OwnershipChangeRecord, ScanRecord, StoreRecord

    dealer_of = {s.store_id: s.dealer_id for s in StoreRecord.scan()}           # test only
    scans = {s.scan_id: s for s in ScanRecord.scan()}                           # test only
    totals: dict[tuple[str, str], dict[str, int]] = {}

    def add(scope, day, field, amount=1):
        row = totals.setdefault((scope, day), {name: 0 for name in FIELDS})
        row[field] += amount

    for s in scans.values():
        if s.outcome == "SCENE_NOT_FOUND" or not s.store_id:
            continue
        day = beijing_day(s.at)
        scopes = [f"store#{s.store_id}", f"dealer#{dealer_of[s.store_id]}"]
        scopes += [f"staff#{s.staff_id}"] if s.staff_id else []
        scopes += [f"campaign#{s.scene}"] if s.kind == "campaign" else []
        for scope in scopes:
            add(scope, day, "scans")
            if s.channel == "OA_SUBSCRIBE":
                add(scope, day, "followers")
    for c in OwnershipChangeRecord.scan():                                      # test only
        day = beijing_day(c.at)
        scopes = [f"store#{c.to_store_id}", f"dealer#{c.to_dealer_id}"]
        scopes += [f"staff#{c.staff_id}"] if c.staff_id else []
        _, _, cause = c.change_id.partition("#")
        if cause.startswith("scan#") and scans[cause[len("scan#"):]].kind == "campaign":
            scopes.append(f"campaign#{scans[cause[len('scan#'):]].scene}")
        for scope in scopes:
            add(scope, day, "bindings")
            if c.from_store_id is None:
                add(scope, day, "new_customers")
    for o in OrderRecord.scan():                                                # test only
        if o.paid_at is None:
            continue
        for scope in (f"store#{o.store_id}", f"dealer#{o.dealer_id}"):
            add(scope, beijing_day(o.paid_at), "orders")
            add(scope, beijing_day(o.paid_at), "gmv_fen", int(o.payable_fen))
    return totals


@pytest.fixture
def day(shop):  # noqa: F811
    """A day of scans, bindings and paid orders at two stores of two dealers, every outbox
    item fed to the consumer as the stream delivers it."""
    from chalicelib.services.scans import scan as scan_use_case

    guide = office(shop, "brand", BRAND, "POST", f"/v1/admin/stores/{CHUNXI}/staff", {"name": "Li Na"}).json
    scenes = {
        "chunxi": make_scene(shop, {"kind": "store", "store_id": CHUNXI}),
        "optics": make_scene(shop, {"kind": "store", "store_id": OPTICS}),
        "badge": make_scene(shop, {"kind": "staff", "staff_id": guide["staff_id"]}),
        "poster": make_scene(shop, {"kind": "campaign", "campaign": {
            "name": "Double 11", "store_ids": [OPTICS], "starts_at": "2020-11-01T00:00:00+08:00",
            "ends_at": "2099-11-12T00:00:00+08:00"}}),
    }

    def scanned(who, scene):
        status, body = scan(shop, {"scene": scene}, who=who)
        assert status == 201, body
        return body

    assert scanned("alice", scenes["chunxi"])["binding"] == "FIRST_SCAN"       # new at Chunxi
    assert scanned("alice", scenes["optics"])["binding"] == "VISIT_RECORDED"   # a scan at Optics, no binding
    assert scanned("bob", scenes["badge"])["binding"] == "FIRST_SCAN"          # new at Chunxi, the guide's
    assert scanned("bob", scenes["badge"])["binding"] == "REPEAT_SCAN"         # the guide's second scan
    assert scanned("cara", scenes["poster"])["binding"] == "FIRST_SCAN"        # new at Optics, the campaign's
    assert scanned("dan", scenes["poster"])["binding"] == "FIRST_SCAN"
    assert scan(shop, {"scene": "s.nothing00"}, who="dan")[0] == 404            # counts nowhere
    # eve follows the official account through the guide's badge
    eve = shop.get("/v1/me", who="eve").json["customer_id"]
    scan_use_case(eve, scenes["badge"], None, None, scans=wiring.scans(), now=wiring.now(), channel="OA_SUBSCRIBE")

    orders = [pay(shop, "alice", CHUNXI, SHU, "d1", quantity=2),   # alice's store: a binding, nobody new
              pay(shop, "bob", OPTICS, CHU, "d2"),                 # bob moves to Optics
              pay(shop, "cara", OPTICS, CHU, "d3"),
              pay(shop, "fay", CHUNXI, SHU, "d4")]                 # fay never scanned: new by purchase
    fed: dict = {}
    records = drain(fed)
    return {"scenes": scenes, "guide": guide["staff_id"], "orders": orders, "records": records, "fed": fed}


def shared(shop, dealer_id, level="AGGREGATES_ONLY"):  # noqa: F811
    made = office(shop, "dealer", dealer_id, "PUT", f"/v1/admin/dealers/{dealer_id}/data-sharing",
                  {"brand_access": level})
    assert made.status_code == 200 and made.json["brand_access"] == level, made.json


def endpoint_numbers(shop, scopes, first, last):  # noqa: F811
    """{(scope#id, day): counts} as the funnel endpoint answers them (brand token)."""
    found = {}
    for scope_id in scopes:
        scope, _, ident = scope_id.partition("#")
        response = funnel(shop, "brand", BRAND, scope, ident, first, last)
        assert response.status_code == 200, response.json
        assert (response.json["scope"], response.json["id"]) == (scope, ident)
        for row in response.json["days"]:
            counts = {k: v for k, v in row.items() if k != "day"}
            if any(counts.values()):
                found[(scope_id, row["day"])] = counts
    return found


def test_the_funnel_equals_a_recount_of_the_raw_records_also_after_every_replay(shop, day):  # noqa: F811
    from chalicelib.db.records import OutboxRecord
    from chalicelib.jobs.outbox import consume

    for dealer_id in (SHU, CHU):
        shared(shop, dealer_id)
    expected = recount()
    days = sorted({d for _, d in expected})
    first, last = days[0], days[-1]
    scopes = sorted({scope for scope, _ in expected})
    # Every scope of the day is in the recount, with the numbers the script meant to make.
    guide, poster = f"staff#{day['guide']}", f"campaign#{day['scenes']['poster']}"
    assert set(scopes) == {f"store#{CHUNXI}", f"store#{OPTICS}", f"dealer#{SHU}", f"dealer#{CHU}", guide, poster}
    summed = {scope: {f: sum(expected[(s, d)][f] for s, d in expected if s == scope) for f in FIELDS}
              for scope in scopes}
    paid = sum(o["amounts"]["payable_fen"] for o in day["orders"])
    # Chunxi: alice, bob twice and eve scanned; alice, bob, eve (scans) and fay (purchase) are new;
    # alice's purchase there is a binding too; alice (2 units) and fay paid.
    assert summed[f"store#{CHUNXI}"] == {"scans": 4, "followers": 1, "new_customers": 4, "bindings": 5, "orders": 2,
                                         "gmv_fen": 3 * 9900}
    assert summed[guide] == {"scans": 3, "followers": 1, "new_customers": 2, "bindings": 2, "orders": 0,
                             "gmv_fen": 0}
    assert summed[poster] == {"scans": 2, "followers": 0, "new_customers": 2, "bindings": 2, "orders": 0,
                              "gmv_fen": 0}
    assert summed[f"dealer#{CHU}"]["orders"] == 2 and summed[f"dealer#{CHU}"]["bindings"] == 4
    assert sum(summed[f"dealer#{d}"]["gmv_fen"] for d in (SHU, CHU)) == paid

    assert endpoint_numbers(shop, scopes, first, last) == expected

    # The stream delivers everything again: every item is marked consumed, nothing counts twice.
    again = consume({"Records": day["records"]})
    assert again["handled"] == 0
    assert endpoint_numbers(shop, scopes, first, last) == expected

    # A crash between counting and marking: the items are not marked consumed, the stream
    # replays them, the handlers run again — and the markers keep the counters as they were.
    for item in OutboxRecord.scan():                                            # test only
        item.update(actions=[OutboxRecord.consumed_at.remove()])
    replayed = consume({"Records": day["records"]})
    assert replayed["handled"] >= len([r for r in day["records"]
                                       if r["dynamodb"]["NewImage"]["kind"]["S"] in
                                       (events.SCAN_RECORDED, events.CUSTOMER_BOUND, events.ORDER_PAID)])
    assert not [o for o in all_outbox() if o.outbox_id not in day["fed"]]     # nothing new was written
    assert endpoint_numbers(shop, scopes, first, last) == expected
    assert recount() == expected


def test_a_range_lists_every_day_with_zeros_and_totals(shop, day):  # noqa: F811
    today = beijing_day(wiring.now())
    start = (datetime.fromisoformat(today) - timedelta(days=2)).date().isoformat()
    response = funnel(shop, "dealer", SHU, "store", CHUNXI, start, today)
    assert response.status_code == 200, response.json
    body = response.json
    assert [d["day"] for d in body["days"]][0] == start and len(body["days"]) == 3
    assert body["days"][0] == {"day": start, **{f: 0 for f in FIELDS}}
    assert body["totals"] == {f: sum(d[f] for d in body["days"]) for f in FIELDS}
    assert body["totals"]["orders"] == 2


# --- who reads what --------------------------------------------------------------------------

def test_stores_and_dealers_read_only_their_own_scopes(shop, day):  # noqa: F811
    today = beijing_day(wiring.now())
    since = beijing_day(wiring.now() - 86400)     # a day either side of Beijing midnight
    guide, poster = day["guide"], day["scenes"]["poster"]
    allowed = [("store", CHUNXI, "store", CHUNXI), ("store", CHUNXI, "staff", guide),
               ("store", OPTICS, "campaign", poster),
               ("dealer", SHU, "dealer", SHU), ("dealer", SHU, "store", CHUNXI), ("dealer", SHU, "staff", guide),
               ("dealer", CHU, "campaign", poster), ("dealer", CHU, "store", OPTICS)]
    for role, tenant, scope, ident in allowed:
        response = funnel(shop, role, tenant, scope, ident, since, today)
        assert response.status_code == 200, (role, tenant, scope, ident, response.json)
        assert response.json["totals"]["scans"] > 0
    refused = [("store", CHUNXI, "store", OPTICS), ("store", CHUNXI, "campaign", poster),
               ("store", CHUNXI, "dealer", SHU), ("store", OPTICS, "staff", guide),
               ("dealer", SHU, "store", OPTICS), ("dealer", SHU, "dealer", CHU), ("dealer", SHU, "campaign", poster),
               ("dealer", CHU, "staff", guide), ("dealer", SHU, "store", "store-nowhere"),
               ("dealer", SHU, "campaign", day["scenes"]["chunxi"])]             # a store scene is no campaign
    for role, tenant, scope, ident in refused:
        response = funnel(shop, role, tenant, scope, ident, since, today)
        assert (response.status_code, response.json["error"]["code"]) == (404, "NOT_FOUND"), (role, scope, ident)


def test_the_brand_sees_a_dealers_numbers_only_as_far_as_the_dealer_shares(shop, day):  # noqa: F811
    today = beijing_day(wiring.now())
    since = beijing_day(wiring.now() - 86400)     # a day either side of Beijing midnight
    chu_scopes = [("dealer", CHU), ("store", OPTICS), ("campaign", day["scenes"]["poster"])]
    shu_scopes = [("dealer", SHU), ("store", CHUNXI), ("staff", day["guide"])]
    for scope, ident in chu_scopes + shu_scopes:          # NONE, the default: nothing
        response = funnel(shop, "brand", BRAND, scope, ident, since, today)
        assert (response.status_code, response.json["error"]["code"]) == (403, "NOT_SHARED_BY_DEALER")
        assert response.json["error"]["details"]["dealer_id"] in (SHU, CHU)

    shared(shop, CHU, "AGGREGATES_ONLY")
    for scope, ident in chu_scopes:
        response = funnel(shop, "brand", BRAND, scope, ident, since, today)
        assert response.status_code == 200, response.json
        assert response.json["totals"] == funnel(shop, "dealer", CHU, scope, ident, since, today).json["totals"]
    assert funnel(shop, "brand", BRAND, "dealer", CHU, since, today).json["totals"]["orders"] == 2
    # ... but still no list of its customers
    listed = office(shop, "brand", BRAND, "GET", f"/v1/admin/customers?dealer_id={CHU}")
    assert (listed.status_code, listed.json["error"]["code"]) == (403, "NOT_SHARED_BY_DEALER")
    for scope, ident in shu_scopes:
        assert funnel(shop, "brand", BRAND, scope, ident, since, today).status_code == 403

    view = office(shop, "brand", BRAND, "GET", f"/v1/admin/funnel/dealers?day={today}")
    assert view.status_code == 200, view.json
    rows = {row["dealer_id"]: row for row in view.json["items"]}
    assert set(rows) == {SHU, CHU, YANGTZE} and view.json["day"] == today and view.json["next_cursor"] is None
    assert rows[SHU]["counts"] is None and rows[YANGTZE]["counts"] is None and rows[SHU]["brand_access"] == "NONE"
    assert rows[CHU]["brand_access"] == "AGGREGATES_ONLY" and rows[CHU]["name"] == "Chu Tech (Wuhan)"
    assert rows[CHU]["counts"] == funnel(shop, "dealer", CHU, "dealer", CHU, today).json["totals"]
    assert rows[CHU]["counts"]["scans"] > 0

    shared(shop, SHU, "FULL")
    rows = {row["dealer_id"]: row for row in
            office(shop, "brand", BRAND, "GET", f"/v1/admin/funnel/dealers?day={today}").json["items"]}
    assert rows[SHU]["counts"] == funnel(shop, "dealer", SHU, "dealer", SHU, today).json["totals"]
    assert rows[SHU]["counts"]["scans"] > 0 and rows[YANGTZE]["counts"] is None
    assert funnel(shop, "brand", BRAND, "staff", day["guide"], since, today).json["totals"]["scans"] == 3
    # Switched back to NONE: gone again.
    shared(shop, SHU, "NONE")
    assert funnel(shop, "brand", BRAND, "store", CHUNXI, since, today).status_code == 403


def test_the_dealers_view_pages_and_is_the_brands_alone(shop, day):  # noqa: F811
    today = beijing_day(wiring.now())
    shared(shop, YANGTZE)
    first = office(shop, "brand", BRAND, "GET", f"/v1/admin/funnel/dealers?day={today}&limit=2")
    assert first.status_code == 200 and len(first.json["items"]) == 2 and first.json["next_cursor"]
    rest = office(shop, "brand", BRAND, "GET",
                  f"/v1/admin/funnel/dealers?day={today}&limit=2&cursor={first.json['next_cursor']}")
    ids = [r["dealer_id"] for r in first.json["items"] + rest.json["items"]]
    assert sorted(ids) == sorted([SHU, CHU, YANGTZE])
    yangtze = next(r for r in first.json["items"] + rest.json["items"] if r["dealer_id"] == YANGTZE)
    assert yangtze["counts"] == {f: 0 for f in FIELDS}          # shares, but nothing happened there
    for role, tenant in (("dealer", SHU), ("store", CHUNXI)):
        refused = office(shop, role, tenant, "GET", f"/v1/admin/funnel/dealers?day={today}")
        assert (refused.status_code, refused.json["error"]["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize("query, field", [
    ("scope=region&id=x&from=2026-11-01&to=2026-11-02", "scope"),
    ("id=store-cd-chunxi&from=2026-11-01&to=2026-11-02", "scope"),
    ("scope=store&from=2026-11-01&to=2026-11-02", "id"),
    ("scope=store&id=bad|id&from=2026-11-01&to=2026-11-02", "id"),
    ("scope=campaign&id=c.%25x&from=2026-11-01&to=2026-11-02", "id"),
    ("scope=store&id=store-cd-chunxi&to=2026-11-02", "from"),
    ("scope=store&id=store-cd-chunxi&from=2026-11-01", "to"),
    ("scope=store&id=store-cd-chunxi&from=2026-11-31&to=2026-12-01", "from"),
    ("scope=store&id=store-cd-chunxi&from=2026-11-02&to=2026-11-01", "to"),
    ("scope=store&id=store-cd-chunxi&from=2026-01-01&to=2026-12-31", "to"),
])
def test_bad_questions_are_400_naming_the_field(shop, query, field):  # noqa: F811
    response = office(shop, "dealer", SHU, "GET", f"/v1/admin/funnel?{query}")
    assert response.status_code == 400, response.json
    assert (response.json["error"]["code"], response.json["error"]["details"]["field"]) == ("VALIDATION_FAILED", field)


@pytest.mark.parametrize("query, field", [("", "day"), ("day=2026-11-31", "day"), ("day=2026-11-01&limit=0", "limit")])
def test_a_bad_day_for_the_dealers_view_is_400(shop, query, field):  # noqa: F811
    response = office(shop, "brand", BRAND, "GET", f"/v1/admin/funnel/dealers?{query}")
    assert response.status_code == 400 and response.json["error"]["details"]["field"] == field, response.json


def test_the_funnel_needs_a_back_office_token(shop):  # noqa: F811
    response = shop.client.http.get(f"/v1/admin/funnel?scope=store&id={CHUNXI}&from=2026-11-01&to=2026-11-01",
                                    headers={"Authorization": f"Bearer {shop.token()}"})
    assert response.status_code == 401
