"""The sandbox speaks WeChat Pay's profit-sharing returns (分账回退, wechatpay-v3.md §6
"Return"): the real wechatpayv3 SDK, as the service provider, takes back money the brand got
from a finished split — synchronously, moving the merchants' balances exactly, once per
out_return_no — and the sandbox refuses what WeChat refuses, in WeChat's codes. The adapter
(``WeChatPayClient.create_return`` / ``query_return``) cannot tell the sandbox from WeChat."""
from contextlib import contextmanager

import pytest

from tests.integration.sandbox_helpers import advance, control, new_no  # noqa: F401
from tests.integration.test_sandbox_pay import client, no_faults_left, pay_keys  # noqa: F401
from tests.integration.test_sandbox_profitsharing import (  # noqa: F401
    RESULT_WAIT_S, add_brand, answer, balance, brand, counts, fault, query, split, splittable, to, unsplit, view)

pytestmark = pytest.mark.integration

SPLIT_FEN = 3000


@pytest.fixture
def finished(stack, client, brand):
    """(sub_mchid, transaction_id, the split order) of 3000 fen split to the brand, FINISHED with SUCCESS."""
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    status, order = split(client, tid, sub, [to(brand, SPLIT_FEN)])
    assert status == 200, order
    advance(stack, RESULT_WAIT_S)
    status, order = query(client, tid, sub, order["out_order_no"])
    assert status == 200 and order["state"] == "FINISHED" and order["receivers"][0]["result"] == "SUCCESS", order
    return sub, tid, order


def give_back(client, sub, order, mchid, amount, out_return_no=None, description="用户退款", by_order_id=False):
    keys = {"order_id": order["order_id"]} if by_order_id else {"out_order_no": order["out_order_no"]}
    return answer(client.profitsharing_return(out_return_no=out_return_no or new_no("RT"), return_mchid=mchid,
                                              amount=amount, description=description, sub_mchid=sub, **keys))


def look_up(client, sub, out_order_no, out_return_no):
    return answer(client.profitsharing_return_query(out_order_no=out_order_no, out_return_no=out_return_no,
                                                    sub_mchid=sub))


@contextmanager
def merchant_settings(stack, mchid, **changes):
    """The brand merchant is shared by every test: what is changed here is put back."""
    before = control(stack, "GET", f"/sandbox/merchants/{mchid}").json()
    reply = control(stack, "PUT", f"/sandbox/merchants/{mchid}", changes)
    assert reply.status == 200, reply.body
    try:
        yield
    finally:
        reply = control(stack, "PUT", f"/sandbox/merchants/{mchid}", {name: before[name] for name in changes})
        assert reply.status == 200, reply.body


@pytest.fixture
def adapter(stack):
    from chalicelib.wechat.keys import PayKeys
    from chalicelib.wechat.pay import WeChatPayClient

    folder = stack.data_dir / "wechatpay"
    read = lambda name: (folder / name).read_text().strip()  # noqa: E731
    keys = PayKeys(merchant_private_key=read("merchant_private_key.pem"), merchant_serial_no=read("merchant_serial_no"),
                   platform_public_key=read("platform_public_key.pem"), public_key_id=read("public_key_id"),
                   apiv3_key=read("apiv3_key"))
    return WeChatPayClient(gateway=stack.urls["sandbox"], sp_mchid=stack.env["SP_MCHID"],
                           sp_appid=stack.env["SP_APPID"], keys=keys, timeout_s=5)


# -- carrying a return out ---------------------------------------------------------------------------

def test_a_return_moves_the_money_from_the_brand_back_to_the_sub_merchant_exactly(stack, client, brand, finished):
    sub, tid, order = finished
    brand_before, sub_before, unsplit_before = balance(stack, brand), balance(stack, sub), unsplit(client, tid)
    rtn = new_no("RT")

    status, done = give_back(client, sub, order, brand, 1000, rtn)

    assert status == 200, done
    assert {k: done[k] for k in ("sub_mchid", "order_id", "out_order_no", "out_return_no", "return_mchid", "amount",
                                 "description", "result")} == {
        "sub_mchid": sub, "order_id": order["order_id"], "out_order_no": order["out_order_no"], "out_return_no": rtn,
        "return_mchid": brand, "amount": 1000, "description": "用户退款", "result": "SUCCESS"}
    assert "fail_reason" not in done and len(done["return_id"]) == 28 and done["return_id"].isdigit()
    assert done["create_time"].endswith("+08:00") and done["finish_time"].endswith("+08:00")
    assert balance(stack, brand) == brand_before - 1000
    assert balance(stack, sub) == sub_before + 1000
    assert unsplit(client, tid) == unsplit_before          # returned money does not become splittable again
    assert look_up(client, sub, order["out_order_no"], rtn) == (200, done)

    held = view(stack, tid)
    [split_view] = [o for o in held["orders"] if o["out_order_no"] == order["out_order_no"]]
    assert split_view["returns"] == [done] and split_view["returned"] == {brand: 1000}
    assert held["returned"] == {brand: 1000} and held["received"] == {brand: SPLIT_FEN}


def test_the_same_out_return_no_is_one_operation_and_other_fields_under_it_are_refused(
        stack, client, brand, finished):
    sub, tid, order = finished
    brand_before, sub_before = balance(stack, brand), balance(stack, sub)
    rtn = new_no("RT")
    first = give_back(client, sub, order, brand, 700, rtn)
    again = give_back(client, sub, order, brand, 700, rtn)
    by_id = give_back(client, sub, order, brand, 700, rtn, by_order_id=True)   # the same split order named otherwise
    assert first[0] == again[0] == by_id[0] == 200 and first[1] == again[1] == by_id[1]
    assert counts(stack, "profitsharing_return", rtn) == (3, 1)
    assert (balance(stack, brand), balance(stack, sub)) == (brand_before - 700, sub_before + 700)

    status, error = give_back(client, sub, order, brand, 701, rtn)
    assert (status, error["code"]) == (400, "PARAM_ERROR")
    assert counts(stack, "profitsharing_return", rtn) == (4, 1)
    assert view(stack, tid)["returned"] == {brand: 700}


def test_no_more_than_what_the_brand_got_from_that_split_order_and_has_not_returned_comes_back(
        stack, client, brand, finished):
    sub, tid, order = finished
    status, error = give_back(client, sub, order, brand, SPLIT_FEN + 1)
    assert (status, error["code"]) == (400, "INVALID_REQUEST") and "回退金额" in error["message"]
    assert give_back(client, sub, order, brand, 1000)[1]["result"] == "SUCCESS"
    refused = new_no("RT")
    status, error = give_back(client, sub, order, brand, SPLIT_FEN - 1000 + 1, refused)
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    assert counts(stack, "profitsharing_return", refused) == (1, 0)
    assert give_back(client, sub, order, brand, SPLIT_FEN - 1000)[1]["result"] == "SUCCESS"
    status, error = give_back(client, sub, order, brand, 1)
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    assert view(stack, tid)["returned"] == {brand: SPLIT_FEN}


def test_a_brand_without_the_balance_gets_a_failed_return_and_nothing_moves(stack, client, brand, finished):
    sub, tid, order = finished
    rtn = new_no("RT")
    with merchant_settings(stack, brand, balance_fen=50):
        sub_before = balance(stack, sub)
        status, failed = give_back(client, sub, order, brand, 100, rtn)
        assert status == 200, failed
        assert (failed["result"], failed["fail_reason"], failed["amount"]) == ("FAILED", "BALANCE_NOT_ENOUGH", 100)
        assert (balance(stack, brand), balance(stack, sub)) == (50, sub_before)
        assert counts(stack, "profitsharing_return", rtn) == (1, 1)        # an operation carried out
        assert give_back(client, sub, order, brand, 100, rtn) == (200, failed)   # the same number: the same result
        assert counts(stack, "profitsharing_return", rtn) == (2, 1)
        assert look_up(client, sub, order["out_order_no"], rtn) == (200, failed)
    assert view(stack, tid)["returned"] == {}
    assert give_back(client, sub, order, brand, 100)[1]["result"] == "SUCCESS"   # a new number, with the balance


def test_a_brand_that_has_not_agreed_to_returns_is_no_auth(stack, client, brand, finished):
    sub, tid, order = finished
    rtn = new_no("RT")
    brand_before = balance(stack, brand)
    with merchant_settings(stack, brand, return_opt_in=False):
        status, error = give_back(client, sub, order, brand, 100, rtn)
        assert (status, error["code"]) == (403, "NO_AUTH") and "未开通分账回退" in error["message"]
    assert counts(stack, "profitsharing_return", rtn) == (1, 0) and balance(stack, brand) == brand_before
    assert control(stack, "GET", f"/sandbox/merchants/{brand}").json()["return_opt_in"] is True


# -- what cannot be returned -------------------------------------------------------------------------

def test_only_a_finished_split_of_that_sub_merchant_and_a_receiver_that_got_money_in_it(stack, client, brand):
    otn, sub, tid = splittable(stack, client)
    add_brand(client, sub, brand)
    status, order = split(client, tid, sub, [to(brand, 1000)])
    assert status == 200
    status, error = give_back(client, sub, order, brand, 100)
    assert (status, error["code"]) == (400, "INVALID_REQUEST")            # still PROCESSING
    advance(stack, RESULT_WAIT_S)
    status, error = give_back(client, sub, order, "1900009999", 100)      # not a receiver of this split
    assert (status, error["code"]) == (400, "INVALID_REQUEST")
    status, error = give_back(client, "1900009998", order, brand, 100)    # not that sub-merchant's split
    assert (status, error["code"]) == (404, "RESOURCE_NOT_EXISTS")
    status, error = give_back(client, sub, {"out_order_no": new_no("SO")}, brand, 100)
    assert (status, error["code"]) == (404, "RESOURCE_NOT_EXISTS")
    status, error = give_back(client, sub, order, brand, 100, out_return_no="退款1")
    assert (status, error["code"]) == (400, "PARAM_ERROR")
    status, error = look_up(client, sub, order["out_order_no"], new_no("RT"))
    assert (status, error["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert give_back(client, sub, order, brand, 100, by_order_id=True)[1]["result"] == "SUCCESS"


def test_a_lost_answer_was_still_carried_out_and_the_retry_gets_the_return(stack, client, brand, finished):
    sub, tid, order = finished
    brand_before = balance(stack, brand)
    fault(stack, kind="profitsharing_error", api="profitsharing_return", code="SYSTEM_ERROR", carried_out=True,
          once=True)
    rtn = new_no("RT")
    status, error = give_back(client, sub, order, brand, 400, rtn)
    assert (status, error["code"]) == (500, "SYSTEM_ERROR")
    assert counts(stack, "profitsharing_return", rtn) == (1, 1) and balance(stack, brand) == brand_before - 400
    status, done = give_back(client, sub, order, brand, 400, rtn)
    assert status == 200 and done["result"] == "SUCCESS"
    assert counts(stack, "profitsharing_return", rtn) == (2, 1) and balance(stack, brand) == brand_before - 400


# -- the adapter ---------------------------------------------------------------------------------------

def test_the_adapter_returns_queries_and_maps_refusals(stack, brand, finished, adapter):
    from chalicelib.wechat.pay import RETURN_FAILED, RETURN_SUCCESS, ProviderRefused, ProviderUnavailable

    sub, tid, order = finished
    oon, rtn = order["out_order_no"], new_no("RT")
    brand_before = balance(stack, brand)

    done = adapter.create_return(sub, oon, rtn, brand, 500, "用户退款")
    assert (done.out_return_no, done.out_order_no, done.return_mchid, done.amount_fen, done.result,
            done.fail_reason) == (rtn, oon, brand, 500, RETURN_SUCCESS, None)
    assert adapter.create_return(sub, oon, rtn, brand, 500, "用户退款") == done
    assert adapter.query_return(sub, oon, rtn) == done
    assert balance(stack, brand) == brand_before - 500

    with pytest.raises(ProviderRefused) as refused:
        adapter.create_return(sub, oon, new_no("RT"), brand, SPLIT_FEN, "用户退款")
    assert (refused.value.provider_code, refused.value.http_status) == ("INVALID_REQUEST", 400)
    with pytest.raises(ProviderRefused) as refused:
        adapter.query_return(sub, oon, new_no("RT"))
    assert refused.value.provider_code == "RESOURCE_NOT_EXISTS"
    with merchant_settings(stack, brand, return_opt_in=False):
        with pytest.raises(ProviderRefused) as refused:
            adapter.create_return(sub, oon, new_no("RT"), brand, 1, "用户退款")
        assert (refused.value.provider_code, refused.value.http_status) == ("NO_AUTH", 403)
    with merchant_settings(stack, brand, balance_fen=0):
        failed = adapter.create_return(sub, oon, new_no("RT"), brand, 1, "用户退款")
        assert (failed.result, failed.fail_reason) == (RETURN_FAILED, "BALANCE_NOT_ENOUGH")
    fault(stack, kind="profitsharing_error", api="profitsharing_return", code="FREQUENCY_LIMITED", once=True)
    with pytest.raises(ProviderUnavailable):
        adapter.create_return(sub, oon, new_no("RT"), brand, 1, "用户退款")
