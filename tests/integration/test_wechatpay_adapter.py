"""The adapter against the running sandbox: it cannot tell the sandbox from WeChat."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.conftest import http

pytestmark = pytest.mark.integration


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


def prepay_request(out_trade_no, total=12345):
    from chalicelib.wechat.pay import Prepay

    return Prepay(out_trade_no=out_trade_no, sub_mchid="1900001001", description="AirBook 14",
                  total_fen=total, payer_sp_openid="o_alice",
                  time_expire=datetime.now(timezone.utc) + timedelta(minutes=15),
                  notify_url="http://127.0.0.1:9/v1/callbacks/wechatpay")


def test_prepay_query_pay_refund_and_query_refund(adapter, stack):
    prepay_id = adapter.prepay(prepay_request("ADAPTER-0001"))
    assert prepay_id
    params = adapter.payment_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    assert adapter.query("ADAPTER-0001", "1900001001").trade_state == "NOTPAY"
    paid = http("POST", f"{stack.urls['sandbox']}/sandbox/pay", {"out_trade_no": "ADAPTER-0001", "notify": "none"})
    assert paid.status == 200
    transaction = adapter.query("ADAPTER-0001", "1900001001")
    assert (transaction.trade_state, transaction.total_fen) == ("SUCCESS", 12345)
    assert transaction.transaction_id == paid.json()["transaction_id"]
    refund = adapter.refund("ADAPTER-R-0001", "ADAPTER-0001", "1900001001", 345, 12345, "changed mind",
                            "http://127.0.0.1:9/v1/callbacks/wechatpay")
    assert refund.status in ("PROCESSING", "SUCCESS") and refund.refund_fen == 345
    assert adapter.query_refund("ADAPTER-R-0001", "1900001001").refund_fen == 345


def test_close_an_unpaid_order_and_refuse_to_close_a_paid_one(adapter, stack):
    from chalicelib.wechat.pay import ProviderRefused

    adapter.prepay(prepay_request("ADAPTER-0002"))
    adapter.close("ADAPTER-0002", "1900001001")
    assert adapter.query("ADAPTER-0002", "1900001001").trade_state == "CLOSED"
    adapter.prepay(prepay_request("ADAPTER-0003"))
    http("POST", f"{stack.urls['sandbox']}/sandbox/pay", {"out_trade_no": "ADAPTER-0003", "notify": "none"})
    with pytest.raises(ProviderRefused) as refused:
        adapter.close("ADAPTER-0003", "1900001001")
    assert refused.value.provider_code == "ORDERPAID"


def test_a_response_with_a_wrong_signature_is_refused(adapter, stack):
    from chalicelib.wechat.pay import ProviderUnavailable

    adapter.prepay(prepay_request("ADAPTER-0004"))
    assert http("POST", f"{stack.urls['sandbox']}/sandbox/faults",
                {"kind": "response_bad_signature", "once": True}).status in (200, 201, 204)
    with pytest.raises(ProviderUnavailable):
        adapter.query("ADAPTER-0004", "1900001001")
    assert adapter.query("ADAPTER-0004", "1900001001").trade_state == "NOTPAY"
