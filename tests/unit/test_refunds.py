"""Refunds and returns on moto, end to end through the API and the job."""
import json

import pytest

from chalicelib.services import wiring
from chalicelib.services.refunds import advance_open_refunds, apply_refund_result
from tests.unit.test_fulfilment import office, paid_order
from tests.unit.test_orders import DELIVERY, STORE, shop, stock  # noqa: F401 - the fixture


def ask(shop, order_id, body, key="r1", who="alice"):  # noqa: F811
    response = shop.client.http.post(f"/v1/orders/{order_id}/refunds", body=json.dumps(body), headers={
        "Authorization": f"Bearer {shop.token(who)}", "Content-Type": "application/json", "Idempotency-Key": key})
    return response.status_code, json.loads(response.body)


def order_of(shop, order_id):  # noqa: F811
    return json.loads(shop.client.http.get(f"/v1/orders/{order_id}",
                                           headers={"Authorization": f"Bearer {shop.token()}"}).body)


def settle(out_refund_no, order_id, status="SUCCESS"):
    return apply_refund_result({"out_refund_no": out_refund_no, "out_trade_no": order_id, "refund_status": status},
                               refunds=wiring.refunds(), now=wiring.now())


def run_job(shop, later=60):  # noqa: F811
    return advance_open_refunds(refunds=wiring.refunds(), payments=shop.payments, now=wiring.now() + later,
                                notify_url="http://127.0.0.1:9/")


def test_a_partial_refund_before_fulfilment_starts_at_once_and_puts_units_back(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = paid_order(shop, "o1", quantity=3)
    status, refund = ask(shop, order["order_id"], {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "too many"})
    assert status == 201 and refund["status"] == "PROCESSING" and refund["amount_fen"] == 9900
    assert shop.payments.refunds[refund["out_refund_no"]]["amount"] == 9900  # asked of the provider
    assert settle(refund["out_refund_no"], order["order_id"]) == "SUCCESS"
    after = order_of(shop, order["order_id"])
    assert after["status"] == "PAID" and after["refunded_fen"] == 9900
    assert after["refunds"][0]["status"] == "SUCCESS"
    assert stock("warehouse:cloud", "LM-MS-WL") == (before[0], before[1] + 2, before[2] - 2)
    assert settle(refund["out_refund_no"], order["order_id"]) == "DUPLICATE"
    assert order_of(shop, order["order_id"])["refunded_fen"] == 9900


def test_a_full_refund_ends_the_order_refunded_with_all_its_stock_back(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = paid_order(shop, "o2", quantity=2)
    status, refund = ask(shop, order["order_id"], {"amount_fen": order["amounts"]["payable_fen"], "reason": "x"})
    settle(refund["out_refund_no"], order["order_id"])
    after = order_of(shop, order["order_id"])
    assert after["status"] == "REFUNDED" and after["refunded_fen"] == order["amounts"]["payable_fen"]
    assert stock("warehouse:cloud", "LM-MS-WL") == before


def test_refunding_more_than_paid_the_same_lines_twice_or_a_closed_order_is_refused(shop):  # noqa: F811
    order = paid_order(shop, "o3", quantity=1)
    status, body = ask(shop, order["order_id"], {"amount_fen": order["amounts"]["payable_fen"] + 1, "reason": "x"})
    assert status == 422 and body["error"]["code"] == "REFUND_EXCEEDS_PAID"
    assert ask(shop, order["order_id"], {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "x"}, key="a")[0] == 201
    status, body = ask(shop, order["order_id"], {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "x"}, key="b")
    assert status == 422 and body["error"]["code"] == "LINES_ALREADY_REFUNDED"
    unpaid = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY},
                        key="u").json
    shop.client.http.post(f"/v1/orders/{unpaid['order_id']}/cancel", headers={"Authorization": f"Bearer {shop.token()}"})
    status, body = ask(shop, unpaid["order_id"], {"amount_fen": 1, "reason": "x"}, key="c")
    assert status == 409 and body["error"]["code"] == "ORDER_NOT_REFUNDABLE"
    assert ask(shop, order["order_id"], {"amount_fen": 1, "reason": "x"}, key="d", who="mallory")[0] == 404


def test_the_same_key_answers_the_first_refund_again(shop):  # noqa: F811
    order = paid_order(shop, "o4", quantity=2)
    first = ask(shop, order["order_id"], {"amount_fen": 100, "reason": "x"}, key="same")
    again = ask(shop, order["order_id"], {"amount_fen": 100, "reason": "x"}, key="same")
    assert first == again and first[0] == 201
    assert ask(shop, order["order_id"], {"amount_fen": 200, "reason": "x"}, key="same")[0] == 409
    assert len(order_of(shop, order["order_id"])["refunds"]) == 1


def test_a_return_after_shipping_waits_for_its_dealer_and_another_dealer_cannot_approve(shop):  # noqa: F811
    order = paid_order(shop, "o5", quantity=2)
    office(shop, "dealer", "dealer-shu", f"/v1/admin/orders/{order['order_id']}/ship", {"carrier": "SF", "tracking_no": "1"})
    status, refund = ask(shop, order["order_id"], {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "broken"})
    assert status == 201 and refund["status"] == "REQUESTED"
    assert refund["out_refund_no"] not in getattr(shop.payments, "refunds", {})
    assert office(shop, "dealer", "dealer-chu", f"/v1/admin/refunds/{refund['refund_id']}/approve")[0] == 404
    before = stock("warehouse:cloud", "LM-MS-WL")
    status, approved = office(shop, "dealer", "dealer-shu", f"/v1/admin/refunds/{refund['refund_id']}/approve",
                              {"restock": True})
    assert status == 200 and approved["status"] == "PROCESSING"
    settle(approved["out_refund_no"], order["order_id"])
    assert order_of(shop, order["order_id"])["refunded_fen"] == 9900
    assert stock("warehouse:cloud", "LM-MS-WL") == (before[0] + 1, before[1], before[2] + 1)
    assert office(shop, "dealer", "dealer-shu", f"/v1/admin/refunds/{refund['refund_id']}/reject")[0] == 409


def test_a_rejected_return_gives_its_amount_back_to_the_order(shop):  # noqa: F811
    order = paid_order(shop, "o6", quantity=1)
    office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship", {"carrier": "SF", "tracking_no": "1"})
    _, refund = ask(shop, order["order_id"], {"amount_fen": order["amounts"]["payable_fen"], "reason": "meh"})
    status, rejected = office(shop, "store", STORE, f"/v1/admin/refunds/{refund['refund_id']}/reject", {"note": "used"})
    assert status == 200 and rejected["status"] == "REJECTED"
    assert ask(shop, order["order_id"], {"amount_fen": order["amounts"]["payable_fen"], "reason": "again"},
               key="r2")[0] == 201


def test_a_closed_refund_is_retried_with_a_new_out_refund_no_and_succeeds(shop):  # noqa: F811
    order = paid_order(shop, "o7", quantity=1)
    _, refund = ask(shop, order["order_id"], {"amount_fen": 500, "reason": "x"})
    first_no = refund["out_refund_no"]
    assert settle(first_no, order["order_id"], "CLOSED") == "CLOSED"
    assert order_of(shop, order["order_id"])["refunds"][0]["status"] == "CLOSED"
    assert run_job(shop)["retried"] == 1
    retried = order_of(shop, order["order_id"])["refunds"][0]
    assert retried["status"] == "PROCESSING" and retried["out_refund_no"] != first_no
    assert retried["out_refund_no"] in shop.payments.refunds
    shop.payments.finish_refund(retried["out_refund_no"], "SUCCESS")
    assert run_job(shop, later=120)["queried"] == 1
    final = order_of(shop, order["order_id"])
    assert final["refunds"][0]["status"] == "SUCCESS" and final["refunded_fen"] == 500


def test_an_abnormal_refund_is_never_retried_but_raised(shop, capsys):  # noqa: F811
    order = paid_order(shop, "o8", quantity=1)
    _, refund = ask(shop, order["order_id"], {"amount_fen": 500, "reason": "x"})
    assert settle(refund["out_refund_no"], order["order_id"], "ABNORMAL") == "ABNORMAL"
    assert run_job(shop) == {"called": 0, "queried": 0, "retried": 0}
    assert order_of(shop, order["order_id"])["refunds"][0]["status"] == "ABNORMAL"
    assert "ABNORMAL" in capsys.readouterr().out
    # Written down for a person: the order's dealer and store see it, another dealer does not.
    from chalicelib import auth

    def alerts(role, tenant, method="get", path="/v1/admin/alerts"):
        token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
        answer = getattr(shop.client.http, method)(path, headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, json.loads(answer.body)

    status, mine = alerts("dealer", "dealer-shu")
    assert status == 200 and [(a["kind"], a["order_id"]) for a in mine["items"]] == [
        ("REFUND_ABNORMAL", order["order_id"])]
    assert alerts("store", STORE)[1]["items"][0]["detail"]["refund_id"] == refund["refund_id"]
    assert alerts("dealer", "dealer-chu")[1]["items"] == []
    assert alerts("brand", "brand-lumen")[1]["items"][0]["status"] == "OPEN"
    alert_id = mine["items"][0]["alert_id"]
    assert settle(refund["out_refund_no"], order["order_id"], "ABNORMAL") == "DUPLICATE"
    assert len(alerts("brand", "brand-lumen")[1]["items"]) == 1                   # once per cause
    assert alerts("dealer", "dealer-chu", "post", f"/v1/admin/alerts/{alert_id}/acknowledge")[0] == 404
    status, seen = alerts("dealer", "dealer-shu", "post", f"/v1/admin/alerts/{alert_id}/acknowledge")
    assert status == 200 and seen["status"] == "ACKNOWLEDGED"
    assert alerts("dealer", "dealer-shu", "post", f"/v1/admin/alerts/{alert_id}/acknowledge")[0] == 409


@pytest.mark.parametrize("body", [{"reason": "x"}, {"amount_fen": 1, "lines": [{"sku": "LM-MS-WL", "quantity": 1}],
                                                    "reason": "x"},
                                  {"amount_fen": 0, "reason": "x"}, {"amount_fen": "1", "reason": "x"},
                                  {"amount_fen": 1, "reason": ""}, {"amount_fen": 1}, {"amount_fen": 1, "reason": "x" * 81},
                                  {"lines": [{"sku": "NOPE", "quantity": 1}], "reason": "x"}])
def test_bad_refund_requests_are_400(shop, body):  # noqa: F811
    order = paid_order(shop, "o9", quantity=1)
    status, response = ask(shop, order["order_id"], body, key="bad")
    assert status == 400, response


def test_a_payment_after_the_order_closed_is_refunded_in_full_and_shown_on_the_order(shop, test_env):  # noqa: F811
    from tests.wechatpay_notifications import NotificationFactory

    order = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY},
                       key="late").json
    shop.client.http.post(f"/v1/orders/{order['order_id']}/cancel", headers={"Authorization": f"Bearer {shop.token()}"})
    late = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001", "sub_mchid": "1900001001",
            "out_trade_no": order["order_id"], "transaction_id": "4200000000000000000000000777",
            "trade_state": "SUCCESS", "amount": {"total": order["amounts"]["payable_fen"], "currency": "CNY"}}
    headers, body = NotificationFactory(test_env).build(late)
    for _ in range(3):  # delivered again and again: one refund
        assert shop.client.http.post("/v1/callbacks/wechatpay", headers=headers, body=body).status_code == 204
    closed = order_of(shop, order["order_id"])
    assert closed["status"] == "CLOSED" and len(closed["refunds"]) == 1
    refund = closed["refunds"][0]
    assert refund["status"] == "PROCESSING" and refund["amount_fen"] == order["amounts"]["payable_fen"]
    assert shop.payments.refunds[refund["out_refund_no"]]["amount"] == order["amounts"]["payable_fen"]
    settle(refund["out_refund_no"], order["order_id"])
    final = order_of(shop, order["order_id"])
    assert final["status"] == "CLOSED" and final["refunded_fen"] == order["amounts"]["payable_fen"]
    assert final["refunds"][0]["status"] == "SUCCESS"


def test_an_order_partly_refunded_before_shipping_ships_only_what_is_left(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = paid_order(shop, "ps", quantity=3)
    _, refund = ask(shop, order["order_id"], {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "x"})
    status, body = office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship",
                          {"carrier": "SF", "tracking_no": "1"})
    assert status == 409 and body["error"]["code"] == "REFUND_IN_PROGRESS"
    settle(refund["out_refund_no"], order["order_id"])
    status, shipped = office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship",
                             {"carrier": "SF", "tracking_no": "1"})
    assert status == 200 and shipped["status"] == "FULFILLING"
    # 3 bought, 1 refunded back to the shelf, 2 shipped: on hand down by 2, nothing left reserved
    assert stock("warehouse:cloud", "LM-MS-WL") == (before[0] - 2, before[1], before[2] - 2)


def test_a_refund_enters_the_ledger_once_and_the_order_still_balances(shop):  # noqa: F811
    from chalicelib.domain import splits as rules
    from chalicelib.services.splits import on_plan_split

    order = paid_order(shop, "ledger", quantity=3)                 # 29700 fen
    oid = order["order_id"]
    on_plan_split("ob", {"order_id": oid})
    status, refund = ask(shop, oid, {"lines": [{"sku": "LM-MS-WL", "quantity": 1}], "reason": "one too many"})
    settle(refund["out_refund_no"], oid)
    settle(refund["out_refund_no"], oid)                           # a second notification: nothing twice
    entries = [rules.LedgerEntry(oid, e.debit, e.credit, int(e.amount_fen), e.cause)
               for e in wiring.splits().ledger(oid)]
    assert [e.amount_fen for e in entries if e.cause == "REFUND"] == [9900]
    breakdown = rules.check_invariant(entries, 29700)
    assert breakdown["refunded"] == 9900
    assert breakdown["brand"] + breakdown["commissions"] + breakdown["dealer"] + breakdown["refunded"] \
        + breakdown["fee"] == 29700
