"""Funnel events on moto: a paid order writes ORDER_PAID, a purchase that moves the owner
writes CUSTOMER_BOUND, each once, and the consumer leaves them for M7 without alarm."""
import logging
from types import SimpleNamespace

import pytest

from chalicelib.domain import events
from chalicelib.domain.payments import follow_up_on_payment
from chalicelib.services import payments as pay
from chalicelib.services import wiring
from chalicelib.services.attribution import on_attribute_purchase
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import DELIVERY, STORE, shop  # noqa: F401 - the fixture
from tests.helpers import FakeOutboxMarks

SP = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001"}


def outbox_of(kind):
    from chalicelib.db.records import OutboxRecord

    return [o for o in OutboxRecord.scan() if o.kind == kind]  # test only


def transaction(order, transaction_id="4200000000202611230000000042"):
    return {**SP, "sub_mchid": "1900001001", "out_trade_no": order["order_id"], "transaction_id": transaction_id,
            "trade_state": "SUCCESS",
            "amount": {"total": order["amounts"]["payable_fen"], "payer_total": order["amounts"]["payable_fen"],
                       "currency": "CNY"}}


# --- ORDER_PAID

def test_the_follow_up_of_a_payment_is_the_work_then_one_order_paid_event():
    order = SimpleNamespace(order_id="SL1", customer_id="c1", store_id="s1", dealer_id="d1",
                            amounts=SimpleNamespace(payable_fen=34700),
                            lines=[SimpleNamespace(sku="A", quantity=2), SimpleNamespace(sku="B", quantity=1)])
    follow_up = follow_up_on_payment(order, "4200", paid_at=1700000000.5)
    assert [kind for kind, _ in follow_up] == ["PLAN_SPLIT", "AWARD_POINTS", "ATTRIBUTE_PURCHASE", "ORDER_PAID"]
    assert follow_up[0][1] == {"order_id": "SL1", "transaction_id": "4200"}
    assert follow_up[-1][1] == {"order_id": "SL1", "customer_id": "c1", "store_id": "s1", "dealer_id": "d1",
                                "payable_fen": 34700, "paid_at": 1700000000.5,
                                "lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]}


def test_a_paid_order_writes_one_order_paid_event_with_what_the_funnel_counts(shop):  # noqa: F811
    placed = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 2},
                                                      {"sku": "LM-PWR-65", "quantity": 1}],
                         "fulfillment": DELIVERY}).json
    paid_at = wiring.now()
    assert pay.apply_payment(transaction(placed), payments=wiring.payment_records(), now=paid_at, **SP) == "APPLY"

    customer_id = shop.get("/v1/me").json["customer_id"]
    [item] = outbox_of(events.ORDER_PAID)
    assert item.payload == {
        "order_id": placed["order_id"], "customer_id": customer_id, "store_id": "store-cd-chunxi",
        "dealer_id": "dealer-shu", "payable_fen": 2 * 9900 + 14900, "paid_at": paid_at,
        "lines": [{"sku": "LM-MS-WL", "quantity": 2}, {"sku": "LM-PWR-65", "quantity": 1}]}
    assert isinstance(item.payload["payable_fen"], int)
    assert item.created_at == paid_at and item.consumed_at is None


def test_a_redelivered_payment_notification_writes_no_second_order_paid(shop, test_env):  # noqa: F811
    from tests.wechatpay_notifications import NotificationFactory

    placed = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}],
                         "fulfillment": DELIVERY}).json
    headers, body = NotificationFactory(test_env).build(transaction(placed))
    for _ in range(3):
        assert shop.client.http.post("/v1/callbacks/wechatpay", headers=headers, body=body).status_code == 204

    [item] = outbox_of(events.ORDER_PAID)
    assert (item.payload["order_id"], item.payload["payable_fen"]) == (placed["order_id"], 9900)


def test_a_payment_that_lost_the_race_writes_no_order_paid(shop):  # noqa: F811
    """mark_paid on an order that is no longer pending is OrderChanged (the order update
    is found after the event and every outbox put), and nothing of it is written."""
    from chalicelib.db.orders import OrderChanged

    placed = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}],
                         "fulfillment": DELIVERY}).json
    assert pay.apply_payment(transaction(placed), payments=wiring.payment_records(), now=wiring.now(),
                             **SP) == "APPLY"
    order = wiring.orders().get(placed["order_id"])
    with pytest.raises(OrderChanged):
        wiring.payment_records().mark_paid(order.order_id, "4200000000000000000000000777", 9900,
                                           paid_at=wiring.now(), now=wiring.now(),
                                           follow_up=follow_up_on_payment(order, "4200000000000000000000000777",
                                                                          wiring.now()))
    assert len(outbox_of(events.ORDER_PAID)) == 1


# --- CUSTOMER_BOUND

def test_a_purchase_that_moves_the_owner_writes_one_customer_bound_event(shop):  # noqa: F811
    first = paid_order(shop, "fb1")
    on_attribute_purchase("ob_1", {"order_id": first["order_id"]})
    customer_id = shop.get("/v1/me").json["customer_id"]
    paid_at = wiring.orders().get(first["order_id"]).paid_at

    [bound] = outbox_of(events.CUSTOMER_BOUND)
    assert bound.payload == {
        "customer_id": customer_id, "from_store_id": None, "to_store_id": "store-cd-chunxi",
        "to_dealer_id": "dealer-shu", "basis": bound.payload["basis"], "reason": "LAST_PURCHASE",
        "cause": f"purchase#{first['order_id']}", "at": paid_at}
    [change] = wiring.ownership().history(customer_id)
    assert bound.payload["basis"] == change.basis

    second = shop.order({"store_id": "store-wh-optics", "lines": [{"sku": "LM-MS-WL", "quantity": 1}],
                         "fulfillment": DELIVERY}, key="fb2").json
    pay.apply_payment({**transaction(second, "4200000000000000000000000998"), "sub_mchid": "1900001002"},
                      payments=wiring.payment_records(), now=wiring.now() + 5, **SP)
    on_attribute_purchase("ob_2", {"order_id": second["order_id"]})
    moved = [o.payload for o in outbox_of(events.CUSTOMER_BOUND) if o.payload["cause"] == f"purchase#{second['order_id']}"]
    assert [(m["from_store_id"], m["to_store_id"], m["to_dealer_id"], m["reason"]) for m in moved] == [
        ("store-cd-chunxi", "store-wh-optics", "dealer-chu", "LAST_PURCHASE")]


def test_a_replayed_attribute_purchase_writes_no_second_customer_bound(shop):  # noqa: F811
    order = paid_order(shop, "fb3")
    for _ in range(3):
        on_attribute_purchase("ob_3", {"order_id": order["order_id"]})
    assert [o.payload["cause"] for o in outbox_of(events.CUSTOMER_BOUND)] == [f"purchase#{order['order_id']}"]


def test_a_change_already_recorded_or_raced_writes_no_customer_bound(shop):  # noqa: F811
    """The cancellation reasons are [change, outbox, customer]: each failure keeps its meaning."""
    from chalicelib.db.ownership import AlreadyRecorded, OwnerChanged

    order = paid_order(shop, "fb4")
    on_attribute_purchase("ob_4", {"order_id": order["order_id"]})
    ownership = wiring.ownership()
    customer_id = wiring.orders().get(order["order_id"]).customer_id
    [change] = ownership.history(customer_id)
    with pytest.raises(AlreadyRecorded):   # same cause, same time: the history entry exists
        ownership.change(customer_id, "store-cd-chunxi", "store-cd-chunxi", "dealer-shu", change.basis,
                         "LAST_PURCHASE", f"purchase#{order['order_id']}", float(change.at))
    with pytest.raises(OwnerChanged):      # the owner is not the one expected
        ownership.change(customer_id, "store-wh-optics", "store-cd-chunxi", "dealer-shu", change.basis,
                         "LAST_PURCHASE", "purchase#another", wiring.now() + 1)
    assert len(outbox_of(events.CUSTOMER_BOUND)) == 1
    assert ownership.customer(customer_id).owning_store_id == "store-cd-chunxi"


# --- the consumer

class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def outbox_log():
    from chalicelib.log import get_logger

    logger = get_logger("storelink.outbox")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


def _insert(outbox_id, kind):
    return {"eventName": "INSERT", "dynamodb": {"NewImage": {
        "outbox_id": {"S": outbox_id}, "kind": {"S": kind}, "payload": {"S": '{"order_id": "o1"}'}}}}


def test_the_consumer_leaves_funnel_events_for_later_quietly(outbox_log):
    from chalicelib.jobs import outbox

    # M7 counts SCAN_RECORDED, CUSTOMER_BOUND and ORDER_PAID (tests/unit/test_funnel.py)
    assert outbox.EVENTS_FOR_LATER == {"PROMOTER_BOUND"}
    kinds = ["PROMOTER_BOUND", "PROMOTER_BOUND"]
    marks = FakeOutboxMarks()
    event = {"Records": [_insert(f"ob_{i}", kind) for i, kind in enumerate(kinds)]}
    assert outbox.consume(event, outbox=marks, now=lambda: 1.0) == {"handled": 0, "skipped": 2}
    assert marks.done == set()                       # left unconsumed for later
    assert [r for r in outbox_log if r.levelno >= logging.WARNING] == []
    assert sorted(r.fields["kind"] for r in outbox_log) == sorted(kinds)


def test_the_consumer_still_reports_an_unknown_kind_as_an_error(outbox_log):
    from chalicelib.jobs import outbox

    marks = FakeOutboxMarks()
    event = {"Records": [_insert("ob_1", "PROMOTER_BOUND"), _insert("ob_2", "MYSTERY")]}
    assert outbox.consume(event, outbox=marks, now=lambda: 1.0) == {"handled": 0, "skipped": 2}
    errors = [r for r in outbox_log if r.levelno == logging.ERROR]
    assert [(r.getMessage(), r.fields["kind"], r.fields["outbox_id"]) for r in errors] == [
        ("outbox item of unknown kind", "MYSTERY", "ob_2")]
    assert marks.done == set()


def test_a_handler_for_a_funnel_event_takes_it_over(monkeypatch, outbox_log):
    """When M7 registers its counter, the event is handled and marked consumed."""
    from chalicelib.jobs import outbox

    seen = []
    monkeypatch.setitem(outbox.HANDLERS, "ORDER_PAID", lambda oid, payload: seen.append((oid, payload)))
    marks = FakeOutboxMarks()
    assert outbox.consume({"Records": [_insert("ob_1", "ORDER_PAID")]}, outbox=marks, now=lambda: 1.0) == {
        "handled": 1, "skipped": 0}
    assert seen == [("ob_1", {"order_id": "o1"})] and marks.done == {"ob_1"}
