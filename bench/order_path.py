"""DynamoDB cost of the money path against DynamoDB Local: round trips and consumed
read/write units per operation (ReturnConsumedCapacity), for placing an order and
for applying a payment callback (first delivery and a duplicate). Latencies are
printed against a baseline measured in the same run (one GetItem).

Targets (issue M4): order <= 3 round trips, callback <= 2.

    python bench/order_path.py [--orders 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAPACITY_OPERATIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem",
                       "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}


class Meter:
    """Counts every DynamoDB call and the capacity it consumed (botocore-level hook)."""

    def __init__(self):
        self.calls, self.read, self.write = Counter(), 0.0, 0.0

    def install(self):
        import botocore.client

        original = botocore.client.BaseClient._make_api_call
        meter = self

        def metered(client, operation, params):
            if client.meta.service_model.service_name == "dynamodb":
                if operation in CAPACITY_OPERATIONS:
                    params = {**params, "ReturnConsumedCapacity": "TOTAL"}
                meter.calls[operation] += 1
                response = original(client, operation, params)
                consumed = response.get("ConsumedCapacity") or []
                for entry in consumed if isinstance(consumed, list) else [consumed]:
                    meter.read += entry.get("ReadCapacityUnits", 0) or 0
                    meter.write += entry.get("WriteCapacityUnits", 0) or 0
                    if not entry.get("ReadCapacityUnits") and not entry.get("WriteCapacityUnits"):
                        # DynamoDB Local reports only the total for some operations
                        unit = entry.get("CapacityUnits", 0) or 0
                        if operation in ("GetItem", "Query", "BatchGetItem", "TransactGetItems"):
                            meter.read += unit
                        else:
                            meter.write += unit
                return response
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = metered

    def snapshot(self):
        return sum(self.calls.values()), self.read, self.write


def measure(meter, label, runs, action):
    trips, reads, writes, latencies = [], [], [], []
    for _ in range(runs):
        before = meter.snapshot()
        started = time.perf_counter()
        action()
        latencies.append(time.perf_counter() - started)
        after = meter.snapshot()
        trips.append(after[0] - before[0])
        reads.append(after[1] - before[1])
        writes.append(after[2] - before[2])
    return {"label": label, "round_trips": statistics.mean(trips), "max_round_trips": max(trips),
            "rcu": statistics.mean(reads), "wcu": statistics.mean(writes),
            "latency_ms": statistics.median(latencies) * 1000}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=50)
    args = parser.parse_args()

    from infra.local import dynamodb
    from infra.local.environment import StackPorts, local_environment
    from infra.local.keys import ensure_local_keys
    from infra.local.stack import free_port

    data = Path(tempfile.mkdtemp(prefix="storelink-bench-"))
    ensure_local_keys(data)
    port = free_port()
    env = local_environment(data, StackPorts(api=free_port(), dynamodb=port, sandbox=free_port()))
    engine = dynamodb.start(data, port, env)
    try:
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"
        from chalicelib.db.schema import ensure_tables
        from infra.local.seed import seed_demo_data

        ensure_tables()
        seed_demo_data(time.time())
        from chalicelib.db.records import StockRecord
        from chalicelib.domain.orders import RequestedLine
        from chalicelib.services import orders as uc
        from chalicelib.services import payments as pay
        from chalicelib.services import sessions, wiring
        from tests.helpers import FakeMiniProgram, FakePayments

        customer_id = sessions.start_session("sandbox-bench", wechat=FakeMiniProgram(), customers=wiring.customers(),
                                             now=time.time(), signing_key="k" * 32).customer_id
        StockRecord("warehouse:cloud", "LM-MS-WL").update(actions=[
            StockRecord.on_hand.set(100_000), StockRecord.available.set(100_000), StockRecord.reserved.set(0)])
        meter = Meter()
        meter.install()
        repository, fake_pay, records = wiring.orders(), FakePayments(), wiring.payment_records()
        delivery = {"type": "warehouse", "address": {"recipient": "R", "phone": "13800000000", "city": "C",
                                                     "detail": "D"}}
        placed = []
        counter = iter(range(10**9))

        def place():
            n = next(counter)
            answer = uc.place_order(uc.PlaceOrder(customer_id, "store-cd-chunxi", [RequestedLine("LM-MS-WL", 1),
                                                                                    RequestedLine("LM-PWR-65", 1)],
                                                  delivery, f"bench-{n}", str(n)),
                                    orders=repository, payments=fake_pay, now=time.time(),
                                    notify_url="http://127.0.0.1:9/")
            placed.append(answer.body)

        def transaction(order):
            return {"sp_mchid": os.environ["SP_MCHID"], "sp_appid": os.environ["SP_APPID"], "sub_mchid": "1900001001",
                    "out_trade_no": order["order_id"], "transaction_id": "42" + order["order_id"][2:],
                    "trade_state": "SUCCESS", "amount": {"total": order["amounts"]["payable_fen"], "currency": "CNY"}}

        paid = iter(range(10**9))

        def apply_first():
            pay.apply_payment(transaction(placed[next(paid)]), payments=records, now=time.time(),
                              sp_mchid=os.environ["SP_MCHID"], sp_appid=os.environ["SP_APPID"])

        again = iter(range(10**9))

        def apply_duplicate():
            pay.apply_payment(transaction(placed[next(again)]), payments=records, now=time.time(),
                              sp_mchid=os.environ["SP_MCHID"], sp_appid=os.environ["SP_APPID"])

        from chalicelib.db.records import ProductRecord, SceneRecord
        from chalicelib.services.scans import scan as scan_scene

        from chalicelib.domain.scenes import Scene, store_card

        chunxi = wiring.network().get_store("store-cd-chunxi")
        wiring.scenes().add(Scene(scene="s.bench", kind="store", brand_id="brand-lumen", store_id=chunxi.store_id,
                                  dealer_id=chunxi.dealer_id, store_card=store_card(chunxi), created_at=time.time()))
        from chalicelib.db.records import CustomerRecord

        newcomers = [f"cu_bench_new_{n}" for n in range(args.orders)]
        for newcomer in newcomers:     # made before measuring: only the scan is counted
            CustomerRecord(newcomer, openid=f"o_{newcomer}", first_seen_at=time.time(),
                           last_seen_at=time.time()).save()
        arriving = iter(newcomers)

        def scan_new_customer():
            scan_scene(next(arriving), "s.bench", None, None, scans=wiring.scans(), now=time.time())
        baseline = measure(meter, "baseline: one GetItem", args.orders,
                           lambda: ProductRecord.get("LM-MS-WL", consistent_read=True))
        def scan_common():
            scan_scene(customer_id, "s.bench", None, None, scans=wiring.scans(), now=time.time())

        rows = [baseline,
                measure(meter, "place an order (2 lines)", args.orders, place),
                measure(meter, "scan (bound customer, repeat)", args.orders, scan_common),
                measure(meter, "apply a payment callback", args.orders, apply_first),
                measure(meter, "apply a duplicate callback", args.orders, apply_duplicate),
                measure(meter, "scan (new customer, binds)", args.orders, scan_new_customer)]
        print(f"{'operation':30s} {'round trips':>11s} {'max':>4s} {'RCU':>6s} {'WCU':>6s} {'latency ms':>10s} {'x baseline':>10s}")
        for row in rows:
            print(f"{row['label']:30s} {row['round_trips']:11.2f} {row['max_round_trips']:4d} {row['rcu']:6.1f} "
                  f"{row['wcu']:6.1f} {row['latency_ms']:10.2f} {row['latency_ms'] / baseline['latency_ms']:10.1f}")
        print(f"targets: order <= 3 round trips -> {'OK' if rows[1]['max_round_trips'] <= 3 else 'OVER'}; "
              f"scan <= 2 -> {'OK' if max(rows[2]['max_round_trips'], rows[5]['max_round_trips']) <= 2 else 'OVER'}; "
              f"callback <= 2 -> {'OK' if rows[3]['max_round_trips'] <= 2 else 'OVER'}")
        print("calls by operation:", dict(meter.calls))
    finally:
        dynamodb.stop(data, engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
