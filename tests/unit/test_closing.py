"""Closing unpaid orders: stock back exactly once, payments found, never lost."""
import json

import pytest

from chalicelib.services import wiring
from chalicelib.services.closing import close_expired_orders
from tests.unit.test_orders import DELIVERY, STORE, shop, stock  # noqa: F401 - the fixture

SP = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001"}


def run_job(shop, now):  # noqa: F811
    from chalicelib.services.refunds import refund_late_payment

    def late(transaction, record):
        refund_late_payment(transaction, record, refunds=wiring.refunds(), payments=shop.payments, now=now,
                            notify_url="http://127.0.0.1:9/")

    return close_expired_orders(orders=wiring.orders(), payment_records=wiring.payment_records(),
                                payments=shop.payments, now=now, on_late_payment=late, **SP)


def place(shop, key):  # noqa: F811
    return shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 3}], "fulfillment": DELIVERY},
                      key=key).json


def status(order_id):
    return wiring.orders().get(order_id).status


def test_an_expired_order_is_closed_and_its_stock_comes_back_once(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = place(shop, "e1")
    assert stock("warehouse:cloud", "LM-MS-WL")[2] == before[2] - 3
    assert run_job(shop, wiring.now())["closed"] == 0          # not yet expired
    later = wiring.now() + 16 * 60
    assert run_job(shop, later)["closed"] == 1
    assert status(order["order_id"]) == "CLOSED" and order["order_id"] in shop.payments.closed
    assert stock("warehouse:cloud", "LM-MS-WL") == before
    assert run_job(shop, later) == {"closed": 0, "paid": 0, "provider_closed": 0, "retry_later": 0}
    assert stock("warehouse:cloud", "LM-MS-WL") == before


def test_a_payment_nobody_told_us_of_is_found_and_applied(shop):  # noqa: F811
    order = place(shop, "e2")
    shop.payments.pay(order["order_id"])
    assert run_job(shop, wiring.now() + 16 * 60)["paid"] == 1
    assert status(order["order_id"]) == "PAID"
    assert order["order_id"] not in shop.payments.closed


def test_cancel_closes_at_once_and_the_job_retries_a_provider_that_refused(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = place(shop, "c1")
    shop.payments.refuse_close = 1      # WeChat: too early to close
    response = shop.client.http.post(f"/v1/orders/{order['order_id']}/cancel",
                                      headers={"Authorization": f"Bearer {shop.token()}"})
    assert response.status_code == 200 and json.loads(response.body)["status"] == "CLOSED"
    assert stock("warehouse:cloud", "LM-MS-WL") == before
    assert order["order_id"] not in shop.payments.closed
    assert run_job(shop, wiring.now() + 16 * 60)["provider_closed"] == 1
    assert order["order_id"] in shop.payments.closed
    assert stock("warehouse:cloud", "LM-MS-WL") == before
    again = shop.client.http.post(f"/v1/orders/{order['order_id']}/cancel",
                                  headers={"Authorization": f"Bearer {shop.token()}"})
    assert again.status_code == 409


def test_a_payment_after_cancelling_is_kept_and_recorded(shop):  # noqa: F811
    order = place(shop, "c2")
    shop.payments.refuse_close = 1
    shop.client.http.post(f"/v1/orders/{order['order_id']}/cancel", headers={"Authorization": f"Bearer {shop.token()}"})
    shop.payments.pay(order["order_id"])
    assert run_job(shop, wiring.now() + 16 * 60)["paid"] == 1
    kinds = [e.kind for e in wiring.payment_records().events(order["order_id"])]
    assert kinds[-3:] == ["PAYMENT_REFUSED", "REFUND_ASKED", "LATE_PAYMENT_FOUND"]
    refunds = wiring.refunds().of_order(order["order_id"])
    assert [(r.status, int(r.amount_fen)) for r in refunds] == [("PROCESSING", order["amounts"]["payable_fen"])]
    assert run_job(shop, wiring.now() + 17 * 60)["paid"] == 0       # looked at once, not forever


def test_cancelling_someone_elses_order_is_404(shop):  # noqa: F811
    order = place(shop, "c3")
    response = shop.client.http.post(f"/v1/orders/{order['order_id']}/cancel",
                                     headers={"Authorization": f"Bearer {shop.token('bob')}"})
    assert response.status_code == 404
    assert status(order["order_id"]) == "PENDING_PAYMENT"
