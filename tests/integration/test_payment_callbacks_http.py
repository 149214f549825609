"""A paid order over real HTTP: the sandbox's own notifications plus 200 concurrent
replays of one valid callback make one transition and one set of follow-up work."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import http, login
from tests.wechatpay_notifications import NotificationFactory

pytestmark = pytest.mark.integration

DELIVERY = {"type": "warehouse", "address": {"recipient": "Alice", "phone": "13812345678", "city": "Chengdu",
                                             "detail": "1 Chunxi Road"}}


def dynamo(stack):
    import boto3

    return boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def history(stack, order_id):
    rows = dynamo(stack).query(TableName=f"{stack.env['STORELINK_TABLE_PREFIX']}order_events",
                               KeyConditionExpression="order_id = :o",
                               ExpressionAttributeValues={":o": {"S": order_id}}, ConsistentRead=True)["Items"]
    return [row["kind"]["S"] for row in rows]


def outbox_for(stack, order_id):
    # A Scan, in a test only: counting the follow-up work of one order.
    rows = dynamo(stack).scan(TableName=f"{stack.env['STORELINK_TABLE_PREFIX']}outbox", ConsistentRead=True)["Items"]
    return sorted(r["kind"]["S"] for r in rows if json.loads(r["payload"]["S"]).get("order_id") == order_id)


def test_one_payment_delivered_many_times_is_applied_once(stack):
    api, sandbox = stack.urls["api"], stack.urls["sandbox"]
    token = login(api, "sandbox-payer").json()["token"]
    placed = http("POST", f"{api}/v1/orders", {"store_id": "store-cd-chunxi", "lines": [{"sku": "LM-EB-TWS", "quantity": 1}],
                                               "fulfillment": DELIVERY},
                  {"Authorization": f"Bearer {token}", "Idempotency-Key": "pay-many"})
    assert placed.status == 201, placed.body
    order = placed.json()
    paid = http("POST", f"{sandbox}/sandbox/pay", {"out_trade_no": order["order_id"], "notify": "twice"})
    assert paid.status == 200
    transaction_id = paid.json()["transaction_id"]

    # The same payment, as WeChat would send it, replayed 200 times at once.
    resource = {"sp_mchid": stack.env["SP_MCHID"], "sp_appid": stack.env["SP_APPID"], "sub_mchid": "1900001001",
                "out_trade_no": order["order_id"], "transaction_id": transaction_id, "trade_type": "JSAPI",
                "trade_state": "SUCCESS", "payer": {"sp_openid": "o_payer"},
                "amount": {"total": order["amounts"]["payable_fen"], "payer_total": order["amounts"]["payable_fen"],
                           "currency": "CNY", "payer_currency": "CNY"}}
    headers, body = NotificationFactory(stack.data_dir).build(resource)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: http("POST", f"{api}/v1/callbacks/wechatpay", body, headers).status,
                                range(200)))
    assert answers == [204] * 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "PAYMENT_APPLIED" not in history(stack, order["order_id"]):
        time.sleep(0.1)
    assert history(stack, order["order_id"]).count("PAYMENT_APPLIED") == 1
    assert outbox_for(stack, order["order_id"]) == ["ATTRIBUTE_PURCHASE", "AWARD_POINTS", "ORDER_PAID", "PLAN_SPLIT"]
    mine = http("GET", f"{api}/v1/orders/{order['order_id']}", headers={"Authorization": f"Bearer {token}"}).json()
    assert mine["status"] == "PAID"
