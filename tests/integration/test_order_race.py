"""Two processes x 50 threads ordering the last 100 units of one SKU, twenty times:
exactly 100 units sold each time, stock never negative."""
import json
import subprocess
import sys

import pytest

from infra.local.environment import PROJECT_DIR

pytestmark = pytest.mark.integration
ROUNDS = 20


def _stock_client(stack):
    import boto3

    return boto3.client("dynamodb", endpoint_url=stack.urls["dynamodb"], region_name="cn-north-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def test_the_last_100_units_are_sold_exactly_once(stack):
    from tests.integration.conftest import login

    api = stack.urls["api"]
    customers = [login(api, f"sandbox-racer{n}").json()["customer_id"] for n in range(2)]
    client = _stock_client(stack)
    table = f"{stack.env['STORELINK_TABLE_PREFIX']}stock"
    products = f"{stack.env['STORELINK_TABLE_PREFIX']}products"
    env = {**stack.env, "PYTHONPATH": str(PROJECT_DIR), "LOG_LEVEL": "WARNING"}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.integration.order_race_worker", customer, str(n)],
                                cwd=PROJECT_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for n, customer in enumerate(customers)]
    try:
        for round_no in range(ROUNDS):
            sku = f"RACE-{round_no:02d}"
            client.put_item(TableName=products, Item={
                "sku": {"S": sku}, "brand_id": {"S": "brand-lumen"}, "name": {"S": sku}, "price_fen": {"N": "100"},
                "cost_fen": {"N": "50"}, "status": {"S": "ACTIVE"}, "created_at": {"N": "0"}, "category": {"S": ""}})
            client.put_item(TableName=table, Item={
                "location_id": {"S": "warehouse:cloud"}, "sku": {"S": sku}, "location_type": {"S": "WAREHOUSE"},
                "on_hand": {"N": "100"}, "reserved": {"N": "0"}, "available": {"N": "100"},
                "version": {"N": "0"}, "updated_at": {"N": "0"}})
            for worker in workers:
                worker.stdin.write(f"round {round_no} {sku}\n")
                worker.stdin.flush()
            outcomes = [o for worker in workers for o in json.loads(worker.stdout.readline())]
            placed = [o for o in outcomes if o[0] == "placed"]
            assert len(outcomes) == 100
            assert len(placed) == 50, f"round {round_no}: {len(placed)} orders of 2 units for 100 units"
            assert {code for code, _ in outcomes if code != "placed"} == {"OUT_OF_STOCK"}
            item = client.get_item(TableName=table, Key={"location_id": {"S": "warehouse:cloud"}, "sku": {"S": sku}},
                                   ConsistentRead=True)["Item"]
            assert (int(item["on_hand"]["N"]), int(item["reserved"]["N"]), int(item["available"]["N"])) == (100, 100, 0)
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(timeout=30)
