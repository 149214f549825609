"""One of the processes racing for the last units (driven by test_order_race.py).

Reads "round <n> <sku>" lines on stdin; for each, 50 threads each try to order
2 units of <sku> from the cloud warehouse; prints one JSON line of outcomes. Orders are
placed on the stack's business clock, which other tests move forward: on the wall clock
they would look long expired to the stack's close job, which would release them.
"""
import json
import sys
import threading

from chalicelib.domain.orders import RequestedLine
from chalicelib.errors import StoreLinkError
from chalicelib.services import orders as uc
from chalicelib.services import wiring
from tests.helpers import FakePayments

THREADS = 50
DELIVERY = {"type": "warehouse", "address": {"recipient": "R", "phone": "13800000000", "city": "Chengdu",
                                             "detail": "somewhere"}}


def main() -> None:
    customer_id = sys.argv[1]
    repository, payments = wiring.orders(), FakePayments()
    for line in sys.stdin:
        _, round_no, sku = line.split()
        outcomes: list = []
        barrier = threading.Barrier(THREADS)

        def attempt(n: int) -> None:
            command = uc.PlaceOrder(customer_id=customer_id, store_id="store-cd-chunxi",
                                    lines=[RequestedLine(sku, 2)], fulfillment=DELIVERY,
                                    idempotency_key=f"race-{round_no}-{sys.argv[2]}-{n}", fingerprint=str(n))
            barrier.wait()
            try:
                answer = uc.place_order(command, orders=repository, payments=payments, now=wiring.now(),
                                        notify_url="http://127.0.0.1:9/notify")
                outcomes.append(("placed", answer.body["order_id"]))
            except StoreLinkError as exc:
                outcomes.append((exc.code, None))

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps(outcomes), flush=True)


if __name__ == "__main__":
    main()
