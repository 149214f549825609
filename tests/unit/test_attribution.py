"""The last purchase moves ownership, once per order, with its history."""
import json

from chalicelib.services import wiring
from chalicelib.services.attribution import attribute_purchase, on_attribute_purchase
from tests.unit.test_fulfilment import paid_order
from tests.unit.test_orders import DELIVERY, shop  # noqa: F401 - the fixture


def history(shop, customer_id, role="brand", tenant="brand-lumen"):  # noqa: F811
    from chalicelib import auth

    token = auth.issue_backoffice_token(role, tenant, wiring.now(), wiring.token_signing_key())
    response = shop.client.http.get(f"/v1/admin/customers/{customer_id}/ownership",
                                    headers={"Authorization": f"Bearer {token}"})
    return response.status_code, json.loads(response.body)


def test_a_paid_order_moves_the_owner_to_its_store_and_the_history_says_why(shop):  # noqa: F811
    order = paid_order(shop, "own1")
    on_attribute_purchase("ob_1", {"order_id": order["order_id"]})
    me = json.loads(shop.client.http.get("/v1/me", headers={"Authorization": f"Bearer {shop.token()}"}).body)
    assert me["owning_store"] == {"store_id": "store-cd-chunxi", "dealer_id": "dealer-shu"}
    second = shop.order({"store_id": "store-wh-optics", "lines": [{"sku": "LM-MS-WL", "quantity": 1}],
                         "fulfillment": DELIVERY}, key="own2").json
    from chalicelib.services import payments as pay

    pay.apply_payment({"sp_mchid": "1900000100", "sp_appid": "wx5f0c0ffee5a1d001", "sub_mchid": "1900001002",
                       "out_trade_no": second["order_id"], "transaction_id": "4200000000000000000000000999",
                       "trade_state": "SUCCESS", "amount": {"total": second["amounts"]["payable_fen"], "currency": "CNY"}},
                      payments=wiring.payment_records(), now=wiring.now() + 5, sp_mchid="1900000100",
                      sp_appid="wx5f0c0ffee5a1d001")
    on_attribute_purchase("ob_2", {"order_id": second["order_id"]})
    on_attribute_purchase("ob_2", {"order_id": second["order_id"]})       # redelivered: nothing twice
    status, body = history(shop, me["customer_id"], "dealer", "dealer-chu")     # the owner's dealer reads it
    assert status == 200
    assert history(shop, me["customer_id"])[0] == 404       # the brand: dealer-chu shares nothing (default NONE)
    assert [(c["from_store_id"], c["to_store_id"], c["reason"]) for c in body["changes"]] == [
        (None, "store-cd-chunxi", "LAST_PURCHASE"), ("store-cd-chunxi", "store-wh-optics", "LAST_PURCHASE")]
    # The customer is now dealer-chu's asset: dealer-shu no longer sees them.
    assert history(shop, me["customer_id"], "dealer", "dealer-chu")[0] == 200
    assert history(shop, me["customer_id"], "dealer", "dealer-shu")[0] == 404


def test_a_repeat_purchase_at_the_same_store_changes_nothing(shop):  # noqa: F811
    first, second = paid_order(shop, "r1"), paid_order(shop, "r2")
    orders = wiring.orders()
    assert attribute_purchase(orders.get(first["order_id"]), ownership=wiring.ownership(), now=wiring.now()) == \
        "LAST_PURCHASE"
    assert attribute_purchase(orders.get(second["order_id"]), ownership=wiring.ownership(), now=wiring.now()) == \
        "REPEAT_PURCHASE"
    customer_id = orders.get(first["order_id"]).customer_id
    assert len(wiring.ownership().history(customer_id)) == 1
    from chalicelib.db.records import OutboxRecord

    bound = [o.payload for o in OutboxRecord.scan() if o.kind == "CUSTOMER_BOUND"]  # test only
    assert [(b["from_store_id"], b["to_store_id"], b["reason"], b["cause"]) for b in bound] == [
        (None, "store-cd-chunxi", "LAST_PURCHASE", f"purchase#{first['order_id']}")]
