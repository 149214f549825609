"""The profit-sharing return (分账回退) half of the WeChat Pay adapter, against the fake
WeChat of ``test_wechatpay_profitsharing.py``: it checks our request signature and signs
its answers with the local platform key, so the SDK's response verification runs for real."""
from __future__ import annotations

import json

import pytest
import requests

from chalicelib.wechat.pay import (RETURN_FAILED, RETURN_SUCCESS, ProfitSharingProvider, ProviderRefused,
                                   ProviderUnavailable, ReturnResult, SplitNotReady, SplitRefused)
from tests.unit.test_wechatpay_profitsharing import (BRAND_MCHID, SUB_MCHID, canonical, client,  # noqa: F401
                                                     wechat)

OUT_ORDER_NO, OUT_RETURN_NO = "PS_O1_1", "PS_R1_1"
RETURN_ID = "3008450740201411110007820472"


def return_answer(result: str = RETURN_SUCCESS, amount: int = 300, **extra) -> dict:
    return {"sub_mchid": SUB_MCHID, "order_id": "3008450740201411110007820999", "out_order_no": OUT_ORDER_NO,
            "out_return_no": OUT_RETURN_NO, "return_id": RETURN_ID, "return_mchid": BRAND_MCHID, "amount": amount,
            "description": "用户退款", "result": result, "create_time": "2025-01-03T10:00:00+08:00",
            "finish_time": "2025-01-03T10:00:00+08:00", **extra}


def create(client, **changes):
    asked = {"sub_mchid": SUB_MCHID, "out_order_no": OUT_ORDER_NO, "out_return_no": OUT_RETURN_NO,
             "return_mchid": BRAND_MCHID, "amount_fen": 300, "description": "用户退款", **changes}
    return client.create_return(**asked)


# --- requests and results

def test_a_return_sends_the_body_wechat_documents_and_reads_its_result(client, wechat):
    wechat.answer(200, return_answer())

    result = create(client)

    [sent] = wechat.sent
    assert (sent.method, sent.path) == ("POST", "/v3/profitsharing/return-orders")
    assert canonical(sent.body) == canonical({"sub_mchid": SUB_MCHID, "out_order_no": OUT_ORDER_NO,
                                              "out_return_no": OUT_RETURN_NO, "return_mchid": BRAND_MCHID,
                                              "amount": 300, "description": "用户退款"})
    assert result == ReturnResult(out_return_no=OUT_RETURN_NO, return_id=RETURN_ID, out_order_no=OUT_ORDER_NO,
                                  return_mchid=BRAND_MCHID, amount_fen=300, result=RETURN_SUCCESS, fail_reason=None,
                                  raw=return_answer())


def test_a_failed_return_is_a_result_with_its_reason_not_an_error(client, wechat):
    wechat.answer(200, return_answer(RETURN_FAILED, fail_reason="BALANCE_NOT_ENOUGH"))

    result = create(client)

    assert (result.result, result.fail_reason, result.amount_fen) == (RETURN_FAILED, "BALANCE_NOT_ENOUGH", 300)


def test_a_query_names_the_return_in_the_path_and_the_split_order_and_sub_merchant_in_the_query(client, wechat):
    wechat.answer(200, return_answer(amount=120))

    result = client.query_return(SUB_MCHID, OUT_ORDER_NO, OUT_RETURN_NO)

    [sent] = wechat.sent
    assert (sent.method, sent.body) == ("GET", None)
    path, _, query = sent.path.partition("?")
    assert path == f"/v3/profitsharing/return-orders/{OUT_RETURN_NO}"
    assert sorted(p for p in query.split("&") if p) == sorted([f"out_order_no={OUT_ORDER_NO}",
                                                                f"sub_mchid={SUB_MCHID}"])
    assert (result.out_return_no, result.amount_fen, result.result) == (OUT_RETURN_NO, 120, RETURN_SUCCESS)


def test_a_retry_after_a_timeout_sends_the_callers_out_return_no_again(client, wechat):
    wechat.fail(requests.ReadTimeout("slow"))
    wechat.answer(200, return_answer())

    with pytest.raises(ProviderUnavailable):
        create(client)
    create(client)

    first, second = wechat.sent
    assert first.body == second.body and first.body["out_return_no"] == OUT_RETURN_NO


def test_the_call_is_logged_by_its_out_return_no(client, wechat, caplog):
    wechat.answer(200, return_answer())

    with caplog.at_level("INFO", logger="storelink.wechatpay"):
        create(client)

    [record] = [r for r in caplog.records if r.name == "storelink.wechatpay"]
    assert (record.fields["api"], record.fields["key"], record.fields["status"]) == \
        ("create_return", OUT_RETURN_NO, 200)


def test_the_provider_protocol_names_the_return_verbs():
    assert {"create_return", "query_return"} <= set(dir(ProfitSharingProvider))


# --- validation before anything is sent

@pytest.mark.parametrize("changes", [
    {"out_return_no": "PS|R1"},             # "|" is WeChat's, but the SDK could never query it (path signing)
    {"out_return_no": ""},
    {"out_return_no": "R" * 65},
    {"out_order_no": "PS|O1"},
    {"out_order_no": ""},
    {"sub_mchid": ""},
    {"sub_mchid": "19000a"},
    {"return_mchid": "o_promoter_1"},       # only a MERCHANT_ID receiver can return
    {"return_mchid": ""},
    {"amount_fen": 0},
    {"amount_fen": -1},
    {"amount_fen": 1.5},
    {"amount_fen": True},
    {"amount_fen": "300"},
    {"description": ""},
    {"description": "退" * 81},
    {"description": None},
], ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:40])
def test_a_return_wechat_could_not_take_is_refused_before_it_is_sent(client, wechat, changes):
    with pytest.raises(ValueError):
        create(client, **changes)
    assert wechat.sent == []


@pytest.mark.parametrize("args", [
    ("", OUT_ORDER_NO, OUT_RETURN_NO), (SUB_MCHID, "", OUT_RETURN_NO), (SUB_MCHID, OUT_ORDER_NO, ""),
    (SUB_MCHID, OUT_ORDER_NO, "PS|R1"), (SUB_MCHID, "PS O1", OUT_RETURN_NO),
])
def test_a_query_wechat_could_not_take_is_refused_before_it_is_sent(client, wechat, args):
    with pytest.raises(ValueError):
        client.query_return(*args)
    assert wechat.sent == []


def test_an_80_character_description_is_fine(client, wechat):
    wechat.answer(200, return_answer(description="退" * 80))

    create(client, description="退" * 80)

    assert wechat.sent[0].body["description"] == "退" * 80


# --- errors

@pytest.mark.parametrize("status, code, message, expected", [
    (400, "INVALID_REQUEST", "回退金额超过分账接收方可回退金额", ProviderRefused),
    (400, "INVALID_REQUEST", "分账单处理中，请分账完成后再回退", ProviderRefused),
    (400, "INVALID_REQUEST", "余额不足", ProviderRefused),
    (400, "PARAM_ERROR", "商户回退单号已使用，请求参数与原请求不一致", ProviderRefused),
    (403, "NO_AUTH", "回退方未开通分账回退功能", ProviderRefused),
    (404, "RESOURCE_NOT_EXISTS", "分账单不存在", ProviderRefused),
    (429, "FREQUENCY_LIMITED", "请求频率过高", ProviderUnavailable),
    (400, "SYSTEM_ERROR", "系统错误", ProviderUnavailable),
    (500, "SYSTEM_ERROR", "系统错误", ProviderUnavailable),
    (502, "UNKNOWN", "", ProviderUnavailable),
])
def test_wechats_refusals_of_a_return_are_retryable_or_refused_as_they_are(client, wechat, status, code, message,
                                                                         expected):
    wechat.refuse(status, code, message)

    with pytest.raises(expected) as raised:
        create(client)

    assert type(raised.value) is expected          # never SplitNotReady / SplitRefused: those are about splits
    assert not isinstance(raised.value, (SplitNotReady, SplitRefused))
    if expected is ProviderRefused:
        assert (raised.value.provider_code, raised.value.http_status) == (code, status)
        assert raised.value.details["provider_message"] == message
    else:
        assert raised.value.details["provider_code"] == code


def test_a_return_that_was_never_taken_reads_as_not_found(client, wechat):
    wechat.refuse(404, "RESOURCE_NOT_EXISTS", "记录不存在")

    with pytest.raises(ProviderRefused) as raised:
        client.query_return(SUB_MCHID, OUT_ORDER_NO, OUT_RETURN_NO)

    assert (raised.value.provider_code, raised.value.http_status) == ("RESOURCE_NOT_EXISTS", 404)


@pytest.mark.parametrize("trouble", [
    lambda w: w.fail(requests.ConnectTimeout("no route")),
    lambda w: w.fail(requests.ConnectionError("reset")),
    lambda w: w.answer(200, return_answer(), signed_with=(w.folder / "merchant_private_key.pem").read_text()),
    lambda w: w.answer(200, return_answer(), signed=False),
    lambda w: w.answer(200, {k: v for k, v in return_answer().items() if k != "amount"}),
    lambda w: w.answer(200, return_answer(amount="300")),
], ids=["connect-timeout", "connection-error", "wrong-signature", "unsigned", "no-amount", "amount-as-text"])
@pytest.mark.parametrize("call", [create, lambda c: c.query_return(SUB_MCHID, OUT_ORDER_NO, OUT_RETURN_NO)],
                         ids=["create", "query"])
def test_no_trustworthy_answer_is_provider_unavailable(client, wechat, trouble, call):
    trouble(wechat)

    with pytest.raises(ProviderUnavailable):
        call(client)


def test_what_is_logged_carries_no_body(client, wechat, caplog):
    wechat.answer(200, return_answer())

    with caplog.at_level("INFO", logger="storelink.wechatpay"):
        create(client, description="张三的订单退款")

    logged = " ".join(json.dumps(r.fields, ensure_ascii=False) + r.getMessage() for r in caplog.records
                      if r.name == "storelink.wechatpay")
    assert "张三" not in logged
