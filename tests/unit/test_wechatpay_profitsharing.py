"""The profit-sharing half of the WeChat Pay adapter, with the SDK's HTTP replaced by a
fake WeChat that checks our request signature and signs its answers with the local
platform key (so the SDK's response verification runs for real)."""
from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

import pytest
import requests

from chalicelib.wechat.pay import (MERCHANT_ID, PERSONAL_OPENID, ProviderRefused, ProviderUnavailable, Receiver,
                                   SplitNotReady, SplitReceiver, SplitReceiverResult, SplitRefused)
from tests.wechatpay_notifications import sign

GATEWAY = "https://wechatpay.invalid"
SP_MCHID, SP_APPID = "1900000100", "wx5f0c0ffee5a1d001"
SUB_MCHID = "1900001001"
BRAND_MCHID = "1900002002"
TRANSACTION_ID = "4200000000202501010000000001"
LEGAL_NAME = "成都示例品牌管理有限公司"


@dataclass
class Sent:
    method: str
    path: str
    headers: dict
    body: dict | None
    timeout: object


class _Reply:
    def __init__(self, status: int, text: str, headers: dict):
        self.status_code, self.text, self.headers = status, text, headers
        self.content = text.encode()


class FakeWeChat:
    """Stands in for ``requests.get`` / ``requests.post`` as the SDK calls them."""

    def __init__(self, folder):
        from cryptography.hazmat.primitives import serialization

        self.folder = folder
        self.platform_private_key = (folder / "platform_private_key.pem").read_text()
        self.public_key_id = (folder / "public_key_id").read_text().strip()
        self.merchant_public_key = serialization.load_pem_public_key((folder / "merchant_public_key.pem").read_bytes())
        self.replies: list = []
        self.sent: list[Sent] = []

    def answer(self, status: int = 200, body: dict | None = None, *, signed_with: str | None = None,
               signed: bool = True) -> None:
        self.replies.append((status, body or {}, signed_with or self.platform_private_key, signed))

    def refuse(self, status: int, code: str, message: str = "") -> None:
        self.answer(status, {"code": code, "message": message})

    def fail(self, exc: Exception) -> None:
        self.replies.append(exc)

    def get(self, url, **kwargs):
        return self._exchange("GET", url, kwargs)

    def post(self, url, **kwargs):
        return self._exchange("POST", url, kwargs)

    def _exchange(self, method, url, kwargs):
        assert url.startswith(GATEWAY + "/v3/profitsharing/"), url
        assert kwargs["timeout"] is not None, "every call has a timeout"
        path, body = url[len(GATEWAY):], kwargs.get("json")
        self._check_our_signature(method, path, "" if body is None else json.dumps(body),
                                  kwargs["headers"]["Authorization"])
        self.sent.append(Sent(method, path, dict(kwargs["headers"]), body, kwargs["timeout"]))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        status, payload, key, signed = reply
        text = json.dumps(payload, ensure_ascii=False)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signed and 200 <= status < 300:
            ts, nonce = str(int(time.time())), secrets.token_hex(16)
            headers.update({"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                            "Wechatpay-Signature": sign(key, ts, nonce, text.encode()),
                            "Wechatpay-Serial": self.public_key_id,
                            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"})
        return _Reply(status, text, headers)

    def _check_our_signature(self, method, path, body, authorization):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        scheme, _, params = authorization.partition(" ")
        fields = dict(item.split("=", 1) for item in params.split(","))
        fields = {k: v.strip('"') for k, v in fields.items()}
        assert scheme == "WECHATPAY2-SHA256-RSA2048" and fields["mchid"] == SP_MCHID
        message = f"{method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n".encode()
        self.merchant_public_key.verify(base64.b64decode(fields["signature"]), message, padding.PKCS1v15(),
                                        hashes.SHA256())

    def decrypt(self, ciphertext: str) -> str:
        """What WeChat does with an encrypted field: RSAES-OAEP (SHA-1) with the platform private key."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        key = serialization.load_pem_private_key(self.platform_private_key.encode(), password=None)
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        return key.decrypt(base64.b64decode(ciphertext), oaep).decode()


@pytest.fixture
def wechat(test_env, monkeypatch):
    fake = FakeWeChat(test_env / "wechatpay")
    monkeypatch.setattr(requests, "get", fake.get)
    monkeypatch.setattr(requests, "post", fake.post)
    return fake


@pytest.fixture
def client(wechat):
    from chalicelib.wechat.keys import PayKeys
    from chalicelib.wechat.pay import WeChatPayClient

    read = lambda name: (wechat.folder / name).read_text().strip()  # noqa: E731
    keys = PayKeys(merchant_private_key=read("merchant_private_key.pem"), merchant_serial_no=read("merchant_serial_no"),
                   platform_public_key=read("platform_public_key.pem"), public_key_id=read("public_key_id"),
                   apiv3_key=read("apiv3_key"))
    return WeChatPayClient(gateway=GATEWAY + "/", sp_mchid=SP_MCHID, sp_appid=SP_APPID, keys=keys, timeout_s=3)


def canonical(value) -> str:
    """JSON as sent, key order aside: 300 and 300.0, or true and 1, stay different."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def split_answer(state: str, *receivers: dict, out_order_no: str = "PS_O1_1") -> dict:
    return {"sub_mchid": SUB_MCHID, "transaction_id": TRANSACTION_ID, "out_order_no": out_order_no,
            "order_id": "3008450740201411110007820472", "state": state, "receivers": list(receivers)}


def line(account: str, amount: int, result: str, kind: str = MERCHANT_ID, **extra) -> dict:
    return {"amount": amount, "description": "brand share", "type": kind, "account": account, "result": result,
            "detail_id": f"D-{account}", "create_time": "2025-01-02T10:00:00+08:00",
            "finish_time": "2025-01-02T10:01:00+08:00", **extra}


BRAND = SplitReceiver(MERCHANT_ID, BRAND_MCHID, 300, "brand share")
PROMOTER = SplitReceiver(PERSONAL_OPENID, "o_promoter_1", 45, "commission")


# --- receivers

def test_adding_a_merchant_receiver_sends_its_legal_name_encrypted_for_the_wechatpay_public_key(client, wechat):
    wechat.answer(200, {"sub_mchid": SUB_MCHID, "type": MERCHANT_ID, "account": BRAND_MCHID, "relation_type": "BRAND"})

    client.add_receiver(SUB_MCHID, Receiver(MERCHANT_ID, BRAND_MCHID, LEGAL_NAME, "BRAND"))

    [sent] = wechat.sent
    assert (sent.method, sent.path) == ("POST", "/v3/profitsharing/receivers/add")
    name = sent.body.pop("name")
    assert canonical(sent.body) == canonical({"sub_mchid": SUB_MCHID, "appid": SP_APPID, "type": MERCHANT_ID,
                                              "account": BRAND_MCHID, "relation_type": "BRAND"})
    assert LEGAL_NAME not in name and wechat.decrypt(name) == LEGAL_NAME
    # the key the name was encrypted with is named in the request (public-key mode)
    assert sent.headers["Wechatpay-Serial"] == wechat.public_key_id


@pytest.mark.parametrize("receiver, expected", [
    (Receiver(PERSONAL_OPENID, "o_promoter_1", None, "DISTRIBUTOR"),
     {"type": PERSONAL_OPENID, "account": "o_promoter_1", "relation_type": "DISTRIBUTOR"}),
    (Receiver(PERSONAL_OPENID, "o_promoter_2", None, "CUSTOM", custom_relation="推广员"),
     {"type": PERSONAL_OPENID, "account": "o_promoter_2", "relation_type": "CUSTOM", "custom_relation": "推广员"}),
])
def test_adding_a_personal_receiver_names_the_sp_appid_its_openid_belongs_to(client, wechat, receiver, expected):
    wechat.answer(200, {"sub_mchid": SUB_MCHID, **expected})

    client.add_receiver(SUB_MCHID, receiver)

    assert canonical(wechat.sent[0].body) == canonical({"sub_mchid": SUB_MCHID, "appid": SP_APPID, **expected})


def test_a_personal_receivers_real_name_is_encrypted_too(client, wechat):
    wechat.answer(200, {})

    client.add_receiver(SUB_MCHID, Receiver(PERSONAL_OPENID, "o_promoter_1", "张三", "DISTRIBUTOR"))

    assert wechat.decrypt(wechat.sent[0].body["name"]) == "张三"


@pytest.mark.parametrize("kwargs", [
    {"type": MERCHANT_ID, "account": BRAND_MCHID, "name": None, "relation_type": "BRAND"},
    {"type": "PERSONAL_SUB_OPENID", "account": "o_x", "name": None, "relation_type": "USER"},
    {"type": PERSONAL_OPENID, "account": "o_x", "name": None, "relation_type": "CUSTOM"},
    {"type": PERSONAL_OPENID, "account": "o_x", "name": None, "relation_type": "CUSTOM",
     "custom_relation": "一个超过十个字的自定义关系名称"},
    {"type": PERSONAL_OPENID, "account": "o_x", "name": None, "relation_type": "FRIEND"},
])
def test_a_receiver_wechat_would_refuse_cannot_be_built(kwargs):
    with pytest.raises(ValueError):
        Receiver(**kwargs)


def test_a_receivers_name_stays_out_of_its_repr_and_the_logs(client, wechat, caplog):
    receiver = Receiver(PERSONAL_OPENID, "o_promoter_1", "张三", "DISTRIBUTOR")
    wechat.answer(200, {})

    with caplog.at_level("INFO", logger="storelink.wechatpay"):
        client.add_receiver(SUB_MCHID, receiver)

    [record] = [r for r in caplog.records if r.name == "storelink.wechatpay"]
    assert (record.fields["api"], record.fields["key"], record.fields["status"]) == \
        ("add_receiver", f"{SUB_MCHID}:{PERSONAL_OPENID}", 200)
    logged = json.dumps(record.fields, ensure_ascii=False) + record.getMessage()
    for secret in ("张三", "o_promoter_1", wechat.sent[0].body["name"]):
        assert secret not in logged
    assert "张三" not in repr(receiver)


# --- splits

@pytest.mark.parametrize("unfreeze_unsplit", [True, False])
def test_a_split_sends_the_body_wechat_documents(client, wechat, unfreeze_unsplit):
    wechat.answer(200, split_answer("PROCESSING", line(BRAND_MCHID, 300, "PENDING"),
                                    line("o_promoter_1", 45, "PENDING", PERSONAL_OPENID)))

    result = client.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND, PROMOTER], unfreeze_unsplit)

    [sent] = wechat.sent
    assert (sent.method, sent.path) == ("POST", "/v3/profitsharing/orders")
    assert canonical(sent.body) == canonical({
        "sub_mchid": SUB_MCHID, "appid": SP_APPID, "transaction_id": TRANSACTION_ID, "out_order_no": "PS_O1_1",
        "unfreeze_unsplit": unfreeze_unsplit,
        "receivers": [{"type": MERCHANT_ID, "account": BRAND_MCHID, "amount": 300, "description": "brand share"},
                      {"type": PERSONAL_OPENID, "account": "o_promoter_1", "amount": 45,
                       "description": "commission"}]})
    assert (result.state, result.out_order_no, result.order_id) == \
        ("PROCESSING", "PS_O1_1", "3008450740201411110007820472")
    assert [(r.account, r.amount_fen, r.result) for r in result.receivers] == \
        [(BRAND_MCHID, 300, "PENDING"), ("o_promoter_1", 45, "PENDING")]


def test_a_finished_split_reports_each_receiver_including_the_one_that_failed(client, wechat):
    wechat.answer(200, split_answer("FINISHED", line(BRAND_MCHID, 300, "SUCCESS"),
                                    line("o_promoter_1", 45, "CLOSED", PERSONAL_OPENID, fail_reason="NO_RELATION")))

    result = client.query_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1")

    [sent] = wechat.sent
    assert (sent.method, sent.path, sent.body) == \
        ("GET", f"/v3/profitsharing/orders/PS_O1_1?transaction_id={TRANSACTION_ID}&sub_mchid={SUB_MCHID}", None)
    assert result.state == "FINISHED" and result.transaction_id == TRANSACTION_ID
    assert result.receivers == (
        SplitReceiverResult(MERCHANT_ID, BRAND_MCHID, 300, "brand share", "SUCCESS", None, f"D-{BRAND_MCHID}",
                            "2025-01-02T10:01:00+08:00"),
        SplitReceiverResult(PERSONAL_OPENID, "o_promoter_1", 45, "brand share", "CLOSED", "NO_RELATION",
                            "D-o_promoter_1", "2025-01-02T10:01:00+08:00"))


def test_an_unfreeze_sends_its_own_number_and_reports_what_went_back_to_the_sub_merchant(client, wechat):
    wechat.answer(200, split_answer("PROCESSING", line(SUB_MCHID, 9655, "PENDING", description="解冻给分账方"),
                                    out_order_no="PS_O1_END"))

    result = client.unfreeze(SUB_MCHID, TRANSACTION_ID, "PS_O1_END", "order finished")

    [sent] = wechat.sent
    assert (sent.method, sent.path) == ("POST", "/v3/profitsharing/orders/unfreeze")
    assert canonical(sent.body) == canonical({"sub_mchid": SUB_MCHID, "transaction_id": TRANSACTION_ID,
                                              "out_order_no": "PS_O1_END", "description": "order finished"})
    assert result.out_order_no == "PS_O1_END"
    assert [(r.account, r.amount_fen, r.result) for r in result.receivers] == [(SUB_MCHID, 9655, "PENDING")]


def test_the_unsplit_amount_and_the_max_ratio_are_ints(client, wechat):
    wechat.answer(200, {"transaction_id": TRANSACTION_ID, "unsplit_amount": 9940})
    wechat.answer(200, {"sub_mchid": SUB_MCHID, "max_ratio": 2000})

    assert client.unsplit_amount(TRANSACTION_ID) == 9940
    assert client.max_ratio(SUB_MCHID) == 2000
    assert [(s.method, s.path) for s in wechat.sent] == [
        ("GET", f"/v3/profitsharing/transactions/{TRANSACTION_ID}/amounts"),
        ("GET", f"/v3/profitsharing/merchant-configs/{SUB_MCHID}")]


def test_a_retry_after_a_timeout_sends_the_callers_out_order_no_again(client, wechat):
    wechat.fail(requests.ReadTimeout("slow"))
    wechat.answer(200, split_answer("PROCESSING", line(BRAND_MCHID, 300, "PENDING")))

    with pytest.raises(ProviderUnavailable):
        client.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND], False)
    client.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND], False)

    first, second = wechat.sent
    assert first.body == second.body and first.body["out_order_no"] == "PS_O1_1"


@pytest.mark.parametrize("call", [
    lambda c: c.request_split(SUB_MCHID, TRANSACTION_ID, "PS|O1|1", [BRAND], False),
    lambda c: c.query_split(SUB_MCHID, TRANSACTION_ID, "PS|O1|1"),
    lambda c: c.request_split(SUB_MCHID, TRANSACTION_ID, "", [BRAND], False),
    lambda c: c.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [], False),
    lambda c: c.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND, BRAND], False),
    lambda c: c.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND], None),
    lambda c: c.unfreeze(SUB_MCHID, TRANSACTION_ID, "PS_O1_END", ""),
    lambda c: c.unsplit_amount(""),
    lambda c: c.max_ratio(""),
], ids=["pipe", "pipe-query", "no-number", "no-receivers", "twice", "unfreeze-unsplit-none",
        "no-description", "no-transaction", "no-sub-mchid"])
def test_a_request_wechat_could_not_take_is_refused_before_it_is_sent(client, wechat, call):
    with pytest.raises(ValueError):
        call(client)
    assert wechat.sent == []


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "300"])
def test_a_split_amount_is_a_positive_int_of_fen(amount):
    with pytest.raises(ValueError):
        SplitReceiver(MERCHANT_ID, BRAND_MCHID, amount, "brand share")


# --- errors

# how WeChat has been seen to refuse a split above the cap once part of the order was refunded
OVER_RATIO_AFTER_REFUND = "分账金额超出最大分账比例，最大可分账金额需等比例扣除退款与补差回退等逆向交易金额"

@pytest.mark.parametrize("status, code, message, expected", [
    (400, "INVALID_REQUEST", "订单处理中，请稍后重试", SplitNotReady),
    (400, "INVALID_REQUEST", "订单处理中,暂时无法分账,请稍后重试", SplitNotReady),
    (400, "INVALID_REQUEST", "订单处理中,请在到达结算周期之后再请求分账", SplitNotReady),
    (403, "RULE_LIMIT", "分账金额超出最大分账比例", SplitRefused),
    (403, "NOT_ENOUGH", "分账金额不足", SplitRefused),
    (400, "INVALID_REQUEST", OVER_RATIO_AFTER_REFUND, SplitRefused),
    (400, "PARAM_ERROR", "receivers[0].account 无效", ProviderRefused),
    (400, "INVALID_REQUEST", "分账接收方与原请求不一致", ProviderRefused),
    (403, "NO_AUTH", "商户无权限", ProviderRefused),
    (429, "FREQUENCY_LIMITED", "对同笔订单分账频率过高", ProviderUnavailable),
    (500, "SYSTEM_ERROR", "系统错误", ProviderUnavailable),
    (502, "UNKNOWN", "", ProviderUnavailable),
])
def test_wechats_refusals_of_a_split_map_to_what_the_caller_can_do_next(client, wechat, status, code, message,
                                                                       expected):
    wechat.refuse(status, code, message)

    with pytest.raises(expected) as raised:
        client.request_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1", [BRAND], False)

    assert type(raised.value) is expected
    if expected is SplitRefused:
        assert (raised.value.provider_code, raised.value.details["provider_message"]) == (code, message)
    if expected is ProviderRefused:   # not retryable, and says why
        assert raised.value.provider_code == code and raised.value.http_status == status


def test_an_unfreeze_before_settlement_is_not_ready_either(client, wechat):
    wechat.refuse(400, "INVALID_REQUEST", "订单处理中，请稍后重试")

    with pytest.raises(SplitNotReady):
        client.unfreeze(SUB_MCHID, TRANSACTION_ID, "PS_O1_END", "order finished")


def test_not_ready_is_neither_a_refusal_nor_unavailability():
    assert not issubclass(SplitNotReady, (ProviderRefused, ProviderUnavailable))
    assert issubclass(SplitRefused, ProviderRefused) and not issubclass(SplitRefused, ProviderUnavailable)


def test_a_split_that_was_never_received_reads_as_not_found_at_wechat(client, wechat):
    wechat.refuse(404, "RESOURCE_NOT_EXISTS", "记录不存在")

    with pytest.raises(ProviderRefused) as raised:
        client.query_split(SUB_MCHID, TRANSACTION_ID, "PS_O1_1")

    assert (raised.value.provider_code, raised.value.http_status) == ("RESOURCE_NOT_EXISTS", 404)


@pytest.mark.parametrize("trouble", [
    lambda w: w.fail(requests.ConnectTimeout("no route")),
    lambda w: w.fail(requests.ReadTimeout("slow")),
    lambda w: w.fail(requests.ConnectionError("reset")),
    lambda w: w.answer(200, {"transaction_id": TRANSACTION_ID, "unsplit_amount": 9940},
                       signed_with=(w.folder / "merchant_private_key.pem").read_text()),
    lambda w: w.answer(200, {"transaction_id": TRANSACTION_ID, "unsplit_amount": 9940}, signed=False),
    lambda w: w.answer(200, {"transaction_id": TRANSACTION_ID}),
    lambda w: w.answer(200, {"transaction_id": TRANSACTION_ID, "unsplit_amount": "9940"}),
], ids=["connect-timeout", "read-timeout", "connection-error", "wrong-signature", "unsigned", "no-amount",
        "amount-as-text"])
def test_no_trustworthy_answer_is_provider_unavailable(client, wechat, trouble):
    trouble(wechat)

    with pytest.raises(ProviderUnavailable):
        client.unsplit_amount(TRANSACTION_ID)
