"""Applying payments: exactly once, only when every identifying field matches."""
import json

import pytest

from chalicelib.domain.payments import APPLY, DUPLICATE, REFUSE
from chalicelib.services import payments as uc
from chalicelib.services import wiring
from tests.unit.test_orders import DELIVERY, STORE, shop  # noqa: F401 - the fixture

SP = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001"}


@pytest.fixture
def pending(shop):  # noqa: F811
    placed = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY})
    return placed.json


def transaction(order, **changes):
    base = {**SP, "sub_mchid": "1900001001", "out_trade_no": order["order_id"],
            "transaction_id": "4200000000202611230000000001", "trade_state": "SUCCESS",
            "amount": {"total": order["amounts"]["payable_fen"], "payer_total": order["amounts"]["payable_fen"],
                       "currency": "CNY"}}
    base.update(changes)
    return base


def apply(tx):
    return uc.apply_payment(tx, payments=wiring.payment_records(), now=wiring.now(), **SP)


def order_state(order_id):
    from chalicelib.db.records import OrderEventRecord, OrderRecord, OutboxRecord

    record = OrderRecord.get(order_id, consistent_read=True)
    events = [(e.kind, e.detail) for e in OrderEventRecord.query(order_id, consistent_read=True)]
    outbox = sorted(o.kind for o in OutboxRecord.scan() if o.payload.get("order_id") == order_id)  # test only
    return record.status, events, outbox


def test_a_matching_payment_moves_the_order_to_paid_with_its_follow_up_work(pending):
    assert apply(transaction(pending)) == APPLY
    status, events, outbox = order_state(pending["order_id"])
    assert status == "PAID"
    assert [k for k, _ in events] == ["CREATED", "PAYMENT_APPLIED"]
    assert outbox == ["ATTRIBUTE_PURCHASE", "AWARD_POINTS", "ORDER_PAID", "PLAN_SPLIT"]


def test_the_same_payment_again_changes_nothing(pending):
    assert apply(transaction(pending)) == APPLY
    assert [apply(transaction(pending)) for _ in range(5)] == [DUPLICATE] * 5
    status, events, outbox = order_state(pending["order_id"])
    assert status == "PAID" and len(events) == 2
    assert outbox == ["ATTRIBUTE_PURCHASE", "AWARD_POINTS", "ORDER_PAID", "PLAN_SPLIT"]


@pytest.mark.parametrize("changes, cause", [
    ({"amount": {"total": None}}, "AMOUNT_MISMATCH"),
    ({"sub_mchid": "1900001002"}, "WRONG_SUB_MCHID"),
    ({"trade_state": "NOTPAY"}, "TRADE_STATE_NOTPAY"),
    ({"sp_mchid": "1900000999"}, "WRONG_SP_MCHID"),
    ({"sp_appid": "wx_other"}, "WRONG_SP_APPID"),
])
def test_a_payment_that_does_not_match_changes_nothing_and_records_why(pending, changes, cause):
    if changes.get("amount") == {"total": None}:
        changes = {"amount": {"total": pending["amounts"]["payable_fen"] + 1, "currency": "CNY"}}
    assert apply(transaction(pending, **changes)) == REFUSE
    status, events, outbox = order_state(pending["order_id"])
    assert status == "PENDING_PAYMENT" and outbox == []
    assert events[-1][0] == "PAYMENT_REFUSED" and events[-1][1]["cause"] == cause


def test_one_fen_less_is_refused_too(pending):
    tx = transaction(pending, amount={"total": pending["amounts"]["payable_fen"] - 1, "currency": "CNY"})
    assert apply(tx) == REFUSE
    assert order_state(pending["order_id"])[0] == "PENDING_PAYMENT"


def test_a_payment_for_an_unknown_order_is_recorded_against_its_number(shop):  # noqa: F811
    tx = transaction({"order_id": "SLNOSUCHORDER0000000000000", "amounts": {"payable_fen": 100}})
    assert apply(tx) == REFUSE
    from chalicelib.db.records import OrderEventRecord

    events = list(OrderEventRecord.query("SLNOSUCHORDER0000000000000"))
    assert [(e.kind, e.detail["cause"]) for e in events] == [("PAYMENT_REFUSED", "UNKNOWN_ORDER")]


def test_a_transaction_conflict_is_retried_after_a_fresh_read_and_applies_once(pending, monkeypatch):
    from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError
    from pynamodb.transactions import TransactWrite

    real_commit = TransactWrite._commit
    calls = {"commits": 0}

    def conflicting_once(self):
        calls["commits"] += 1
        if calls["commits"] == 1:
            # What real DynamoDB says when another transaction holds the order item;
            # DynamoDB Local serialises transactions and never says it.
            cause = VerboseClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}}, "TransactWriteItems",
                # [event, 3 follow-up work items, ORDER_PAID, order]
                cancellation_reasons=[None, None, None, None, None,
                                      CancellationReason(code="TransactionConflict", message="conflict")])
            raise TransactWriteError("conflict", cause=cause)
        return real_commit(self)

    monkeypatch.setattr(TransactWrite, "_commit", conflicting_once)
    reads = []
    records = wiring.payment_records()
    real_get = records.get_order
    monkeypatch.setattr(records, "get_order", lambda oid: reads.append(oid) or real_get(oid))
    assert apply(transaction(pending)) == APPLY
    assert calls["commits"] == 2 and len(reads) == 2
    status, events, outbox = order_state(pending["order_id"])
    assert status == "PAID" and [k for k, _ in events].count("PAYMENT_APPLIED") == 1
    assert outbox == ["ATTRIBUTE_PURCHASE", "AWARD_POINTS", "ORDER_PAID", "PLAN_SPLIT"]


def test_the_callback_applies_a_verified_payment(shop, pending, test_env):  # noqa: F811
    from tests.wechatpay_notifications import NotificationFactory

    headers, body = NotificationFactory(test_env).build(transaction(pending))
    for _ in range(3):
        response = shop.client.http.post("/v1/callbacks/wechatpay", headers=headers, body=body)
        assert response.status_code == 204
    status, events, outbox = order_state(pending["order_id"])
    assert status == "PAID" and outbox == ["ATTRIBUTE_PURCHASE", "AWARD_POINTS", "ORDER_PAID", "PLAN_SPLIT"]
    assert json.loads(shop.client.http.get(f"/v1/orders/{pending['order_id']}", headers={
        "Authorization": f"Bearer {shop.token()}"}).body)["status"] == "PAID"
