"""A clock move returns only after what fell due has happened: here, the
close-expired-orders job through the local scheduler, against the whole stack."""
import pytest

from tests.integration.conftest import http, login

pytestmark = pytest.mark.integration

DELIVERY = {"type": "warehouse", "address": {"recipient": "Dan", "phone": "13900000000", "city": "Wuhan",
                                             "detail": "2 Jianghan Road"}}


def stock_available(stack, sku):
    import boto3

    client = boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    item = client.get_item(TableName=f"{stack.env['STORELINK_TABLE_PREFIX']}stock",
                           Key={"location_id": {"S": "warehouse:cloud"}, "sku": {"S": sku}}, ConsistentRead=True)
    return int(item["Item"]["available"]["N"])


def test_moving_the_clock_past_expiry_closes_unpaid_orders_and_applies_unnotified_payments(stack):
    api, sandbox = stack.urls["api"], stack.urls["sandbox"]
    token = {"Authorization": f"Bearer {login(api, 'sandbox-dan').json()['token']}"}
    before = stock_available(stack, "LM-DOCK-C")
    unpaid = http("POST", f"{api}/v1/orders", {"store_id": "store-wh-jianghan", "fulfillment": DELIVERY,
                                               "lines": [{"sku": "LM-DOCK-C", "quantity": 2}]},
                  {**token, "Idempotency-Key": "clock-1"}).json()
    silent = http("POST", f"{api}/v1/orders", {"store_id": "store-wh-jianghan", "fulfillment": DELIVERY,
                                               "lines": [{"sku": "LM-DOCK-C", "quantity": 1}]},
                  {**token, "Idempotency-Key": "clock-2"}).json()
    assert http("POST", f"{sandbox}/sandbox/pay", {"out_trade_no": silent["order_id"], "notify": "none"}).status == 200
    assert stock_available(stack, "LM-DOCK-C") == before - 3

    moved = http("POST", f"{sandbox}/sandbox/clock", {"advance_s": 16 * 60})
    assert moved.status == 200 and "due_work_errors" not in moved.json()

    def status(order):
        return http("GET", f"{api}/v1/orders/{order['order_id']}", headers=token).json()["status"]

    assert status(unpaid) == "CLOSED"
    assert status(silent) == "PAID"
    assert stock_available(stack, "LM-DOCK-C") == before - 1
