"""Shipping, pick-up and receipt on moto: every paid order reaches an end."""
import json

import pytest

from chalicelib import auth
from chalicelib.services import payments as pay
from chalicelib.services import wiring
from chalicelib.services.fulfilment import complete_long_shipped
from tests.unit.test_orders import DELIVERY, STORE, shop, stock  # noqa: F401 - the fixture

SP = {"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001"}


def paid_order(shop, key, fulfillment=DELIVERY, sku="LM-MS-WL", quantity=2):  # noqa: F811
    order = shop.order({"store_id": STORE, "lines": [{"sku": sku, "quantity": quantity}], "fulfillment": fulfillment},
                       key=key).json
    pay.apply_payment({**SP, "sub_mchid": "1900001001", "out_trade_no": order["order_id"],
                       "transaction_id": "42" + order["order_id"][2:], "trade_state": "SUCCESS",
                       "amount": {"total": order["amounts"]["payable_fen"], "currency": "CNY"}},
                      payments=wiring.payment_records(), now=wiring.now(), **SP)
    return order


def office(shop, role, tenant, path, body=None):  # noqa: F811
    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    response = shop.client.http.post(path, headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/json"},
                                     body=json.dumps(body) if body is not None else None)
    return response.status_code, json.loads(response.body)


def outbox_kinds(order_id):
    from chalicelib.db.records import OutboxRecord

    return sorted(o.kind for o in OutboxRecord.scan() if o.payload.get("order_id") == order_id)  # test only


def test_shipping_moves_the_order_and_takes_the_units_off_the_shelf(shop):  # noqa: F811
    before = stock("warehouse:cloud", "LM-MS-WL")
    order = paid_order(shop, "s1")
    status, shipped = office(shop, "dealer", "dealer-shu", f"/v1/admin/orders/{order['order_id']}/ship",
                             {"carrier": "SF Express", "tracking_no": "SF1234567890"})
    assert status == 200 and shipped["status"] == "FULFILLING"
    assert shipped["shipping"]["tracking_no"] == "SF1234567890" and shipped["shipped_at"]
    assert stock("warehouse:cloud", "LM-MS-WL") == (before[0] - 2, before[1], before[2] - 2)
    assert "UPLOAD_SHIPPING_INFO" in outbox_kinds(order["order_id"])
    again, body = office(shop, "dealer", "dealer-shu", f"/v1/admin/orders/{order['order_id']}/ship",
                         {"carrier": "SF", "tracking_no": "X"})
    assert again == 409 and body["error"]["code"] == "INVALID_STATE_TRANSITION"


def test_another_dealer_cannot_ship_or_see_the_order(shop):  # noqa: F811
    order = paid_order(shop, "s2")
    status, body = office(shop, "dealer", "dealer-chu", f"/v1/admin/orders/{order['order_id']}/ship",
                          {"carrier": "SF", "tracking_no": "1"})
    assert status == 404
    assert wiring.orders().get(order["order_id"]).status == "PAID"


def test_an_unpaid_order_cannot_be_shipped(shop):  # noqa: F811
    order = shop.order({"store_id": STORE, "lines": [{"sku": "LM-MS-WL", "quantity": 1}], "fulfillment": DELIVERY},
                       key="s3").json
    status, body = office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship",
                          {"carrier": "SF", "tracking_no": "1"})
    assert status == 409


def test_the_customer_confirms_receipt_and_the_order_completes(shop):  # noqa: F811
    order = paid_order(shop, "s4")
    office(shop, "store", STORE, f"/v1/admin/orders/{order['order_id']}/ship", {"carrier": "SF", "tracking_no": "9"})
    response = shop.client.http.post(f"/v1/orders/{order['order_id']}/confirm-receipt",
                                     headers={"Authorization": f"Bearer {shop.token()}"})
    assert response.status_code == 200 and json.loads(response.body)["status"] == "COMPLETED"
    again = shop.client.http.post(f"/v1/orders/{order['order_id']}/confirm-receipt",
                                  headers={"Authorization": f"Bearer {shop.token()}"})
    assert again.status_code == 409


def test_a_pickup_order_is_made_ready_then_handed_over(shop):  # noqa: F811
    order = paid_order(shop, "p1", fulfillment={"type": "store_pickup"}, sku="LM-NB14-I5", quantity=1)
    wrong, _ = office(shop, "store", STORE, f"/v1/admin/orders/{order['order_id']}/ship",
                      {"carrier": "SF", "tracking_no": "1"})
    assert wrong == 422
    status, ready = office(shop, "store", STORE, f"/v1/admin/orders/{order['order_id']}/ready-for-pickup")
    assert status == 200 and ready["status"] == "FULFILLING"
    status, done = office(shop, "store", STORE, f"/v1/admin/orders/{order['order_id']}/picked-up")
    assert status == 200 and done["status"] == "COMPLETED"
    assert outbox_kinds(order["order_id"]).count("UPLOAD_SHIPPING_INFO") == 1


def test_orders_shipped_long_ago_complete_by_themselves(shop):  # noqa: F811
    order = paid_order(shop, "a1")
    office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship",
           {"carrier": "SF", "tracking_no": "7"})
    assert complete_long_shipped(fulfilment=wiring.fulfilment(), now=wiring.now() + 9 * 86400, after_days=10) == 0
    assert complete_long_shipped(fulfilment=wiring.fulfilment(), now=wiring.now() + 11 * 86400, after_days=10) == 1
    assert wiring.orders().get(order["order_id"]).status == "COMPLETED"
    assert complete_long_shipped(fulfilment=wiring.fulfilment(), now=wiring.now() + 12 * 86400, after_days=10) == 0


@pytest.mark.parametrize("body", [{}, {"carrier": "SF"}, {"carrier": "", "tracking_no": "1"},
                                  {"carrier": "SF", "tracking_no": "x" * 65}, {"carrier": 5, "tracking_no": "1"},
                                  {"carrier": "SF", "tracking_no": "1", "paid": True}])
def test_bad_shipping_inputs_are_400(shop, body):  # noqa: F811
    order = paid_order(shop, "b1")
    status, response = office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship", body)
    assert status == 400 and response["error"]["code"] == "VALIDATION_FAILED"


def test_a_store_lists_its_orders_and_not_its_siblings(shop):  # noqa: F811
    order = paid_order(shop, "l1")
    token = auth.issue_backoffice_token("store", STORE, wiring.now(), wiring.token_signing_key())
    mine = shop.client.http.get(f"/v1/admin/orders?store_id={STORE}", headers={"Authorization": f"Bearer {token}"})
    assert [o["order_id"] for o in json.loads(mine.body)["items"]] == [order["order_id"]]
    sibling = shop.client.http.get("/v1/admin/orders?store_id=store-cd-tianfu",
                                   headers={"Authorization": f"Bearer {token}"})
    assert sibling.status_code == 404


def test_the_shipping_upload_tells_wechat_what_was_shipped(shop, monkeypatch):  # noqa: F811
    from chalicelib.services.fulfilment import upload_shipping_info

    order = paid_order(shop, "u1")
    office(shop, "brand", "brand-lumen", f"/v1/admin/orders/{order['order_id']}/ship",
           {"carrier": "SF Express", "tracking_no": "SF42"})
    uploads = []
    monkeypatch.setattr(wiring.miniprogram(), "upload_shipping_info", lambda **kw: uploads.append(kw), raising=False)
    upload_shipping_info("ob_x", {"order_id": order["order_id"]})
    assert uploads[0]["transaction_id"] == "42" + order["order_id"][2:]
    assert uploads[0]["logistics_type"] == 1 and uploads[0]["payer_openid"] == "o_alice"
    assert uploads[0]["shipping_list"][0]["tracking_no"] == "SF42"
    assert uploads[0]["shipping_list"][0]["express_company"] == "SF Express"


def test_the_back_office_sees_the_phone_masked_and_only_the_delivering_side_reads_it_whole(shop):  # noqa: F811
    order = paid_order(shop, "contact")
    oid = order["order_id"]

    def get(role, tenant, path):
        token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
        answer = shop.client.http.get(path, headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, json.loads(answer.body)

    status, seen = get("store", STORE, f"/v1/admin/orders/{oid}")
    assert status == 200 and seen["fulfillment"]["address"]["phone"] == "138****5678"
    status, contact = get("store", STORE, f"/v1/admin/orders/{oid}/contact")
    assert status == 200 and contact["phone"] == "13812345678" and contact["recipient"] == "Alice"
    assert get("dealer", "dealer-shu", f"/v1/admin/orders/{oid}/contact")[0] == 200
    assert get("brand", "brand-lumen", f"/v1/admin/orders/{oid}/contact")[0] == 403
    assert get("store", "store-wh-optics", f"/v1/admin/orders/{oid}/contact")[0] == 404
