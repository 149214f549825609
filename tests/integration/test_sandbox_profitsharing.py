"""The sandbox speaks WeChat Pay's partner profit sharing (分账, wechatpay-v3.md §6): the
real wechatpayv3 SDK, as the service provider, adds receivers (names encrypted with the
platform key), splits settled payments within the max ratio and what is left unsplit,
reads results that come 10-30 s later on the business clock, unfreezes the rest — and
the sandbox refuses what WeChat refuses, in WeChat's codes."""
import json
from urllib.parse import urlencode

import pytest
import requests
from wechatpayv3.type import RequestType

from tests.integration.conftest import http
from tests.integration.sandbox_helpers import advance, control, new_no, new_sub_mchid  # noqa: F401
from tests.integration.test_sandbox_pay import client, no_faults_left, pay_keys, sdk_client  # noqa: F401
from tests.integration.test_sandbox_shipping import fresh_token, upload_body, wxa

pytestmark = pytest.mark.integration

DAY_S = 86400
RESULT_WAIT_S = 31          # results come 10-30 s after a split is accepted
PROCESSING = "订单处理中，请稍后重试"
BRAND_NAME = "StoreLink 品牌管理有限公司"


# -- the merchant's side ----------------------------------------------------------------------------

@pytest.fixture
def brand(stack):
    return stack.env["BRAND_MCHID"]


def answer(call):
    status, text = call
    return status, json.loads(text) if text else None


def paid(stack, client, total=10000, profit_sharing=True, sub=None):
    """(out_trade_no, sub_mchid, transaction_id) of an order the buyer has paid."""
    otn, sub = new_no("PS"), sub or new_sub_mchid()
    status, text = client.pay(description="LM-KB-MECH 机械键盘", out_trade_no=otn,
                              amount={"total": total, "currency": "CNY"}, payer={"sp_openid": "o_alice"},
                              notify_url="http://127.0.0.1:9/notify", sub_mchid=sub,
                              settle_info={"profit_sharing": profit_sharing})
    assert status == 200, text
    reply = control(stack, "POST", "/sandbox/pay", {"out_trade_no": otn, "notify": "none"})
    assert reply.status == 200, reply.body
    return otn, sub, reply.json()["transaction_id"]


def settle(stack, otn, tid):
    """The merchant uploads shipping information and the buyer confirms receipt: settled."""
    assert wxa(stack, fresh_token(stack), "upload_shipping_info", upload_body(tid))["errcode"] == 0
    reply = control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt")
    assert reply.status == 200 and reply.json()["settled_at"], reply.body


def splittable(stack, client, total=10000, sub=None):
    """A paid, settled order a minute old: ready to split."""
    otn, sub, tid = paid(stack, client, total, sub=sub)
    settle(stack, otn, tid)
    advance(stack, 60)
    return otn, sub, tid


def add_brand(client, sub, brand):
    status, body = answer(client.profitsharing_add_receiver(
        account_type="MERCHANT_ID", account=brand, relation_type="BRAND", name=BRAND_NAME, sub_mchid=sub))
    assert status == 200, body
    return body


def add_person(client, sub, openid):
    status, body = answer(client.profitsharing_add_receiver(
        account_type="PERSONAL_OPENID", account=openid, relation_type="DISTRIBUTOR", sub_mchid=sub))
    assert status == 200, body
    return body


def to(account, amount, kind="MERCHANT_ID", description="品牌方货款"):
    return {"type": kind, "account": account, "amount": amount, "description": description}


def split(client, tid, sub, receivers, out_order_no=None, unfreeze_unsplit=False):
    return answer(client.profitsharing_order(transaction_id=tid, out_order_no=out_order_no or new_no("SO"),
                                             receivers=receivers, unfreeze_unsplit=unfreeze_unsplit, sub_mchid=sub))


def query(client, tid, sub, out_order_no):
    return answer(client.profitsharing_order_query(transaction_id=tid, out_order_no=out_order_no, sub_mchid=sub))


def unsplit(client, tid) -> int:
    status, body = answer(client.profitsharing_amount_query(transaction_id=tid))
    assert status == 200 and body["transaction_id"] == tid, body
    return body["unsplit_amount"]


def unfreeze(client, tid, sub, out_order_no=None):
    return answer(client.profitsharing_unfreeze(transaction_id=tid, out_order_no=out_order_no or new_no("UF"),
                                                description="解冻全部剩余资金", sub_mchid=sub))


def view(stack, tid) -> dict:
    reply = control(stack, "GET", f"/sandbox/profitsharing?transaction_id={tid}")
    assert reply.status == 200, reply.body
    return reply.json()


def counts(stack, api, key) -> tuple[int, int]:
    found = control(stack, "GET", f"/sandbox/requests?{urlencode({'api': api, 'key': key})}").json()
    return found["received"], found["accepted"]


def balance(stack, mchid) -> int:
    return control(stack, "GET", f"/sandbox/merchants/{mchid}").json()["balance_fen"]


def fault(stack, **body):
    reply = control(stack, "POST", "/sandbox/faults", body)
    assert reply.status == 201, reply.body


# -- receivers --------------------------------------------------------------------------------------

def test_receivers_are_added_once_per_sub_merchant_with_the_name_decrypted_and_can_be_deleted(
        stack, client, brand):
    sub = new_sub_mchid()
    first = add_brand(client, sub, brand)
    assert first == {"sub_mchid": sub, "type": "MERCHANT_ID", "account": brand, "relation_type": "BRAND"}
    assert add_brand(client, sub, brand) == first                           # idempotent, no second relation
    assert counts(stack, "receivers_add", f"{sub}#{brand}") == (2, 1)
    add_person(client, sub, "o_bob")

    held = control(stack, "GET", f"/sandbox/profitsharing/receivers?sub_mchid={sub}").json()["receivers"]
    assert [(r["type"], r["account"], r["name"], r["relation_type"]) for r in held] == [
        ("MERCHANT_ID", brand, BRAND_NAME, "BRAND"), ("PERSONAL_OPENID", "o_bob", None, "DISTRIBUTOR")]
    assert control(stack, "GET", f"/sandbox/profitsharing/receivers?sub_mchid={new_sub_mchid()}").json()[
        "receivers"] == []                                                  # per sub-merchant

    status, body = answer(client.profitsharing_delete_receiver(account_type="PERSONAL_OPENID", account="o_bob",
                                                               sub_mchid=sub))
    assert status == 200 and body == {"sub_mchid": sub, "type": "PERSONAL_OPENID", "account": "o_bob"}
    held = control(stack, "GET", f"/sandbox/profitsharing/receivers?sub_mchid={sub}").json()["receivers"]
    assert [r["account"] for r in held] == [brand]


def test_a_merchant_receiver_needs_its_name_encrypted_with_the_platform_key(client, brand):
    sub = new_sub_mchid()
    status, error = answer(client.profitsharing_add_receiver(account_type="MERCHANT_ID", account=brand,
                                                             relation_type="BRAND", sub_mchid=sub))
    assert status == 400 and error["code"] == "PARAM_ERROR"                 # no name
    plain = {"sub_mchid": sub, "appid": client._appid, "type": "MERCHANT_ID", "account": brand,
             "name": BRAND_NAME, "relation_type": "BRAND"}
    status, error = answer(client._core.request("/v3/profitsharing/receivers/add", method=RequestType.POST,
                                                data=plain))
    assert status == 400 and error["code"] == "PARAM_ERROR" and "解密" in error["message"]
    status, error = answer(client.profitsharing_add_receiver(account_type="MERCHANT_ID", account="not-a-mchid",
                                                             relation_type="BRAND", name="x", sub_mchid=sub))
    assert status == 400 and error["code"] == "PARAM_ERROR"
    custom = {"sub_mchid": sub, "appid": client._appid, "type": "PERSONAL_OPENID", "account": "o_x",
              "relation_type": "CUSTOM"}
    status, error = answer(client._core.request("/v3/profitsharing/receivers/add", method=RequestType.POST,
                                                data=custom))
    assert status == 400 and error["code"] == "PARAM_ERROR"                 # CUSTOM needs custom_relation


# -- when a payment can be split --------------------------------------------------------------------

def test_a_payment_is_split_only_a_minute_after_payment_and_once_it_is_settled(stack, client, brand):
    otn, sub, tid = paid(stack, client)
    add_brand(client, sub, brand)
    status, error = split(client, tid, sub, [to(brand, 1000)])
    assert (status, error["code"], error["message"]) == (400, "INVALID_REQUEST", PROCESSING)   # paid just now
    advance(stack, 61)
    status, error = split(client, tid, sub, [to(brand, 1000)])
    assert (status, error["code"], error["message"]) == (400, "INVALID_REQUEST", PROCESSING)   # not settled
    assert view(stack, tid)["settled_at"] is None

    settle(stack, otn, tid)
    status, order = split(client, tid, sub, [to(brand, 1000)])
    assert status == 200 and order["state"] == "PROCESSING", order


def test_only_a_profit_sharing_payment_of_that_sub_merchant_can_be_split(stack, client, brand):
    otn, sub, tid = paid(stack, client, profit_sharing=False)
    settle(stack, otn, tid)
    advance(stack, 60)
    status, error = split(client, tid, sub, [to(brand, 100)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST") and "非分账订单" in error["message"]
    status, error = answer(client.profitsharing_amount_query(transaction_id=tid))
    assert (status, error["code"]) == (400, "INVALID_REQUEST")

    otn, sub, tid = paid(stack, client)
    status, error = split(client, tid, new_sub_mchid(), [to(brand, 100)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    status, error = split(client, "4200000000202601010000000000", sub, [to(brand, 100)])
    assert (status, error["code"]) == (404, "RESOURCE_NOT_EXISTS")
    status, error = query(client, tid, sub, new_no("SO"))
    assert (status, error["code"]) == (404, "RESOURCE_NOT_EXISTS")
    status, error = split(client, tid, sub, [to(brand, 1, description=f"d{i}") for i in range(51)])
    assert (status, error["code"]) == (400, "PARAM_ERROR")                  # at most 50 receivers


# -- splitting ---------------------------------------------------------------------------------------

def test_thirty_percent_is_split_its_result_comes_later_one_more_fen_is_refused_and_unfreeze_ends_it(
        stack, client):
    otn, sub, tid = splittable(stack, client)
    brand = new_sub_mchid()               # a receiving merchant of its own: its balance starts at 0
    add_brand(client, sub, brand)
    status, config = answer(client.profitsharing_config_query(sub_mchid=sub))
    assert status == 200 and config == {"sub_mchid": sub, "max_ratio": 3000}
    assert unsplit(client, tid) == 10000 - 60                                # total - the provider's fee

    oon = new_no("SO")
    status, order = split(client, tid, sub, [to(brand, 3000)], oon)
    assert status == 200, order
    assert (order["sub_mchid"], order["transaction_id"], order["out_order_no"], order["state"]) == (
        sub, tid, oon, "PROCESSING")
    assert len(order["order_id"]) == 28 and order["order_id"].isdigit()
    [receiver] = order["receivers"]
    assert (receiver["type"], receiver["account"], receiver["amount"], receiver["result"]) == (
        "MERCHANT_ID", brand, 3000, "PENDING")
    assert "finish_time" not in receiver and "fail_reason" not in receiver
    assert unsplit(client, tid) == 6940                                      # held while processing
    assert query(client, tid, sub, oon)[1]["state"] == "PROCESSING"

    advance(stack, RESULT_WAIT_S)
    status, done = query(client, tid, sub, oon)
    assert status == 200 and done["state"] == "FINISHED" and done["order_id"] == order["order_id"]
    assert done["receivers"][0]["result"] == "SUCCESS" and done["receivers"][0]["finish_time"].endswith("+08:00")
    assert done["receivers"][0]["detail_id"] == receiver["detail_id"]
    held = view(stack, tid)
    assert (held["received"], held["split_fen"], held["unsplit_amount"], held["ratio_cap_fen"]) == (
        {brand: 3000}, 3000, 6940, 3000)
    assert balance(stack, sub) == 9940 - 3000 and balance(stack, brand) == 3000

    refused = new_no("SO")
    status, error = split(client, tid, sub, [to(brand, 1)], refused)         # 3001 > floor(10000 x 30 %)
    assert (status, error["code"]) == (400, "INVALID_REQUEST") and "最大分账比例" in error["message"]
    assert counts(stack, "profitsharing_order", refused) == (1, 0)

    ufn = new_no("UF")
    status, unfrozen = unfreeze(client, tid, sub, ufn)
    assert status == 200 and unfrozen["state"] == "PROCESSING" and unfrozen["out_order_no"] == ufn
    assert [(r["account"], r["amount"]) for r in unfrozen["receivers"]] == [(sub, 6940)]
    status, error = split(client, tid, sub, [to(brand, 1)])                  # closed at once
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    advance(stack, RESULT_WAIT_S)
    assert query(client, tid, sub, ufn)[1]["state"] == "FINISHED"
    assert unsplit(client, tid) == 0
    assert view(stack, tid)["unfrozen"]["cause"] == "UNFREEZE"
    assert view(stack, tid)["unfrozen"]["amount_fen"] == 6940
    assert counts(stack, "profitsharing_unfreeze", ufn) == (1, 1)


def test_a_split_may_unfreeze_the_rest_itself(stack, client, brand):
    otn, sub, tid = splittable(stack, client, total=5000)
    add_brand(client, sub, brand)
    status, order = split(client, tid, sub, [to(brand, 1500)], unfreeze_unsplit=True)
    assert status == 200
    status, error = split(client, tid, sub, [to(brand, 1)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    assert unsplit(client, tid) == 5000 - 30 - 1500                          # until the result
    advance(stack, RESULT_WAIT_S)
    assert query(client, tid, sub, order["out_order_no"])[1]["receivers"][0]["result"] == "SUCCESS"
    assert unsplit(client, tid) == 0
    assert view(stack, tid)["unfrozen"]["cause"] == "SPLIT"


def test_the_same_out_order_no_is_one_operation_and_other_receivers_under_it_are_refused(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    oon = new_no("SO")
    first = split(client, tid, sub, [to(brand, 2000)], oon)
    again = split(client, tid, sub, [to(brand, 2000)], oon)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert counts(stack, "profitsharing_order", oon) == (2, 1)

    status, error = split(client, tid, sub, [to(brand, 2500)], oon)
    assert (status, error["code"], error["message"]) == (400, "PARAM_ERROR", "分账接收方与原请求不一致")
    assert counts(stack, "profitsharing_order", oon) == (3, 1)

    # a split's number reused for an unfreeze answers that split and does nothing
    status, body = unfreeze(client, tid, sub, oon)
    assert status == 200 and body["order_id"] == first[1]["order_id"]
    assert unsplit(client, tid) == 9940 - 2000 and view(stack, tid)["unfrozen"] is None

    advance(stack, RESULT_WAIT_S)
    status, finished = split(client, tid, sub, [to(brand, 2000)], oon)      # a late retry: the result
    assert status == 200 and finished["state"] == "FINISHED" and finished["receivers"][0]["result"] == "SUCCESS"
    assert counts(stack, "profitsharing_order", oon) == (4, 1)
    assert view(stack, tid)["split_orders"] == 1


def test_a_receiver_never_added_ends_closed_no_relation_and_its_money_goes_back_to_the_unsplit(
        stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_person(client, sub, "o_carol")
    status, order = split(client, tid, sub, [to(brand, 1000), to("o_carol", 500, "PERSONAL_OPENID", "佣金")])
    assert status == 200 and unsplit(client, tid) == 9940 - 1500
    advance(stack, RESULT_WAIT_S)
    done = query(client, tid, sub, order["out_order_no"])[1]
    assert done["state"] == "FINISHED"
    assert [(r["account"], r["result"], r.get("fail_reason")) for r in done["receivers"]] == [
        (brand, "CLOSED", "NO_RELATION"), ("o_carol", "SUCCESS", None)]
    assert unsplit(client, tid) == 9940 - 500
    assert view(stack, tid)["received"] == {"o_carol": 500}


def test_an_injected_receiver_failure_closes_that_receiver_once_and_the_money_returns(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    fault(stack, kind="split_receiver_fails", fail_reason="NO_RELATION", account=brand, once=True)
    status, failing = split(client, tid, sub, [to(brand, 1000)])
    assert status == 200 and failing["receivers"][0]["result"] == "PENDING"
    status, fine = split(client, tid, sub, [to(brand, 1000)])              # the fault was used up
    assert status == 200
    fault(stack, kind="receiver_fails", account=brand, reason="RECEIVER_HIGH_RISK")   # the contract's spelling
    status, risky = split(client, tid, sub, [to(brand, 500)])
    assert status == 200
    advance(stack, RESULT_WAIT_S)

    def outcome(order):
        receiver = query(client, tid, sub, order["out_order_no"])[1]["receivers"][0]
        return receiver["result"], receiver.get("fail_reason")

    assert outcome(failing) == ("CLOSED", "NO_RELATION")
    assert outcome(fine) == ("SUCCESS", None)
    assert outcome(risky) == ("CLOSED", "RECEIVER_HIGH_RISK")
    assert unsplit(client, tid) == 9940 - 1000
    held = view(stack, tid)
    assert held["received"] == {brand: 1000} and held["split_fen"] == 1000


def test_what_is_not_split_within_30_days_is_unfrozen_then_and_can_no_longer_be_split(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    paid_at = view(stack, tid)["paid_at"]
    advance(stack, 29 * DAY_S)
    status, order = split(client, tid, sub, [to(brand, 1000)])
    assert status == 200
    advance(stack, DAY_S)
    assert unsplit(client, tid) == 0
    held = view(stack, tid)
    assert held["unfrozen"]["cause"] == "AUTO" and held["unfrozen"]["at"] == held["auto_unfreeze_at"]
    assert held["unfrozen"]["amount_fen"] == 9940 - 1000 and held["paid_at"] == paid_at
    assert query(client, tid, sub, order["out_order_no"])[1]["state"] == "FINISHED"
    status, error = split(client, tid, sub, [to(brand, 1)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST") and "30天" in error["message"]
    status, error = unfreeze(client, tid, sub)
    assert (status, error["code"]) == (400, "INVALID_REQUEST")


def test_the_max_ratio_is_what_the_merchants_control_sets_and_the_unsplit_amount_caps_too(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    reply = control(stack, "PUT", f"/sandbox/merchants/{sub}", {"max_ratio": 1000})
    assert reply.status == 200 and reply.json()["max_ratio"] == 1000
    assert answer(client.profitsharing_config_query(sub_mchid=sub))[1]["max_ratio"] == 1000
    status, error = split(client, tid, sub, [to(brand, 1001)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    assert split(client, tid, sub, [to(brand, 1000)])[0] == 200

    control(stack, "PUT", f"/sandbox/merchants/{sub}", {"max_ratio": 10000})
    status, error = split(client, tid, sub, [to(brand, 9940 - 1000 + 1)])   # more than is left unsplit
    assert (status, error["code"]) == (403, "NOT_ENOUGH")
    assert split(client, tid, sub, [to(brand, 9940 - 1000)])[0] == 200
    assert unsplit(client, tid) == 0


def test_a_refund_takes_from_the_unsplit_amount_and_the_ratio_cap_in_proportion(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    status, text = client.refund(out_refund_no=new_no("R"), out_trade_no=otn, sub_mchid=sub,
                                 amount={"refund": 5000, "total": 10000, "currency": "CNY"})
    assert status == 200, text
    assert unsplit(client, tid) == 9940 - (5000 - 30)
    assert view(stack, tid)["ratio_cap_fen"] == 1500
    assert split(client, tid, sub, [to(brand, 1501)])[0] == 400
    assert split(client, tid, sub, [to(brand, 1500)])[0] == 200


def test_an_order_takes_at_most_50_splits(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    for _ in range(50):
        status, body = split(client, tid, sub, [to(brand, 1)])
        assert status == 200, body
    status, error = split(client, tid, sub, [to(brand, 1)])
    assert (status, error["code"]) == (400, "INVALID_REQUEST") and "50" in error["message"]
    assert unfreeze(client, tid, sub)[0] == 200                              # unfreezing is not a split


# -- the provider's odd behaviour -------------------------------------------------------------------

def test_injected_errors_answer_in_wechats_words_and_a_lost_answer_was_still_carried_out(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    fault(stack, kind="profitsharing_error", api="profitsharing_order", code="FREQUENCY_LIMITED", once=True)
    oon = new_no("SO")
    status, error = split(client, tid, sub, [to(brand, 1000)], oon)
    assert (status, error["code"]) == (429, "FREQUENCY_LIMITED")
    assert counts(stack, "profitsharing_order", oon) == (1, 0) and unsplit(client, tid) == 9940

    fault(stack, kind="profitsharing_error", code="SYSTEM_ERROR", carried_out=True, once=True)
    status, error = split(client, tid, sub, [to(brand, 1000)], oon)
    assert (status, error["code"]) == (500, "SYSTEM_ERROR")
    assert counts(stack, "profitsharing_order", oon) == (2, 1) and unsplit(client, tid) == 8940   # done anyway
    status, order = split(client, tid, sub, [to(brand, 1000)], oon)        # the retry gets the order
    assert status == 200 and order["out_order_no"] == oon
    assert counts(stack, "profitsharing_order", oon) == (3, 1)

    fault(stack, kind="response_bad_signature", once=True)
    with pytest.raises(Exception, match="verify the signature"):
        client.profitsharing_amount_query(transaction_id=tid)
    assert unsplit(client, tid) == 8940


def test_a_slow_answer_times_the_client_out_and_the_retry_finds_the_split(stack, client, pay_keys, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    impatient = sdk_client(stack.env, stack.urls["sandbox"], pay_keys)
    impatient._core._timeout = (3, 0.5)
    fault(stack, kind="profitsharing_slow", api="profitsharing_order", delay_s=1.5, once=True)
    oon = new_no("SO")
    with pytest.raises(requests.exceptions.Timeout):
        impatient.profitsharing_order(transaction_id=tid, out_order_no=oon, receivers=[to(brand, 1200)],
                                      unfreeze_unsplit=False, sub_mchid=sub)
    status, order = split(client, tid, sub, [to(brand, 1200)], oon)
    assert status == 200 and order["receivers"][0]["amount"] == 1200
    assert counts(stack, "profitsharing_order", oon) == (2, 1)


def test_faults_for_profit_sharing_are_validated(stack):
    for body in ({"kind": "split_receiver_fails", "fail_reason": "BAD_LUCK"},
                 {"kind": "profitsharing_error", "code": "TEAPOT"},
                 {"kind": "profitsharing_error", "api": "prepay"},
                 {"kind": "profitsharing_slow"}):
        assert control(stack, "POST", "/sandbox/faults", body).status == 400, body
