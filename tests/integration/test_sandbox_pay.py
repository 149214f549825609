"""The sandbox speaks WeChat Pay API v3: the real wechatpayv3 SDK, as the service
provider, talks to it as to WeChat — signed requests and responses, partner-mode
JSAPI orders, refunds, the provider's fee, encrypted signed notifications retried on
WeChat's schedule (business clock), and the controls tests use to play the customer."""
import base64
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.domain.time import rfc3339
from tests.integration.conftest import assert_contract_error, http

pytestmark = pytest.mark.integration


# -- the merchant's side ----------------------------------------------------------------------------

def read_pay_keys(data_dir) -> dict:
    """The key files the contract names, as anyone holding the data folder reads them."""
    folder = Path(data_dir) / "wechatpay"
    return {name: (folder / name).read_text().strip() for name in (
        "merchant_private_key.pem", "merchant_serial_no", "platform_public_key.pem", "public_key_id", "apiv3_key")}


def sdk_client(env: dict, sandbox_url: str, keys: dict):
    """The real SDK as the service provider: public-key mode, partner mode, gateway = the sandbox."""
    from wechatpayv3 import WeChatPay, WeChatPayType

    wxpay = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=env["SP_MCHID"],
                      private_key=keys["merchant_private_key.pem"], cert_serial_no=keys["merchant_serial_no"],
                      appid=env["SP_APPID"], apiv3_key=keys["apiv3_key"], partner_mode=True,
                      public_key=keys["platform_public_key.pem"], public_key_id=keys["public_key_id"],
                      timeout=(3, 10))
    wxpay._core._gate_way = sandbox_url
    return wxpay


@pytest.fixture(scope="module")
def pay_keys(stack):
    return read_pay_keys(stack.data_dir)


@pytest.fixture(scope="module")
def client(stack, pay_keys):
    return sdk_client(stack.env, stack.urls["sandbox"], pay_keys)


@pytest.fixture(autouse=True)
def no_faults_left(stack):
    yield
    http("DELETE", f"{stack.urls['sandbox']}/sandbox/faults")


def new_sub_mchid() -> str:
    """A sub-merchant of its own per test: balances are per merchant and the stack is shared."""
    return "19" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_no(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def prepay(client, out_trade_no, sub_mchid, total=10000, notify_url="http://127.0.0.1:9/notify", **extra):
    status, text = client.pay(description="LM-KB-MECH 机械键盘", out_trade_no=out_trade_no,
                              amount={"total": total, "currency": "CNY"}, payer={"sp_openid": "o_alice"},
                              notify_url=notify_url, sub_mchid=sub_mchid, settle_info={"profit_sharing": True},
                              **extra)
    return status, json.loads(text) if text else None


def query(client, out_trade_no, sub_mchid):
    status, text = client.query(out_trade_no=out_trade_no, sub_mchid=sub_mchid)
    return status, json.loads(text)


def refund(client, out_refund_no, out_trade_no, sub_mchid, amount, total=10000, notify_url=None):
    status, text = client.refund(out_refund_no=out_refund_no, out_trade_no=out_trade_no, sub_mchid=sub_mchid,
                                 amount={"refund": amount, "total": total, "currency": "CNY"}, reason="不想要了",
                                 notify_url=notify_url)
    return status, json.loads(text)


def query_refund(client, out_refund_no, sub_mchid):
    status, text = client.query_refund(out_refund_no=out_refund_no, sub_mchid=sub_mchid)
    return status, json.loads(text)


def control(stack, method, path, body=None):
    return http(method, f"{stack.urls['sandbox']}{path}", body)


def pay(stack, out_trade_no, notify="none"):
    reply = control(stack, "POST", "/sandbox/pay", {"out_trade_no": out_trade_no, "notify": notify})
    assert reply.status == 200, reply.body
    return reply.json()["transaction_id"]


def advance(stack, seconds):
    reply = control(stack, "POST", "/sandbox/clock", {"advance_s": seconds})
    assert reply.status == 200 and "due_work_errors" not in reply.json(), reply.body
    return reply.json()


def verify_wechat_signature(headers: dict, body: bytes, pay_keys) -> None:
    """What a merchant must do with every response and notification (raises if forged)."""
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["wechatpay-serial"] == pay_keys["public_key_id"]
    assert headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
    assert abs(int(headers["wechatpay-timestamp"]) - time.time()) < 60   # the WALL clock, whatever the offset
    public_key = serialization.load_pem_public_key(pay_keys["platform_public_key.pem"].encode())
    message = f"{headers['wechatpay-timestamp']}\n{headers['wechatpay-nonce']}\n".encode() + body + b"\n"
    public_key.verify(base64.b64decode(headers["wechatpay-signature"]), message, padding.PKCS1v15(),
                      hashes.SHA256())


def decrypt(resource: dict, apiv3_key: str) -> dict:
    plain = AESGCM(apiv3_key.encode()).decrypt(resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                                               resource["associated_data"].encode())
    return json.loads(plain)


# -- a notify_url of our own ------------------------------------------------------------------------

class Receiver:
    """The merchant's notify_url: answers 500 to the first ``fail_first`` deliveries."""

    def __init__(self):
        self.fail_first = 0
        self.received: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((dict(self.headers.items()), body))
                failing = len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/callbacks/wechatpay"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        return len(self.received)


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


# -- the order's life -------------------------------------------------------------------------------

def test_an_order_is_prepaid_paid_refunded_in_part_and_the_refund_succeeds_after_a_few_seconds(stack, client):
    otn, sub = new_no("L"), new_sub_mchid()
    status, body = prepay(client, otn, sub)
    assert status == 200 and body["prepay_id"].startswith("wx")

    status, order = query(client, otn, sub)
    assert status == 200 and order["trade_state"] == "NOTPAY" and order["out_trade_no"] == otn
    assert "transaction_id" not in order and order["amount"]["total"] == 10000

    transaction_id = pay(stack, otn)
    assert len(transaction_id) == 28 and transaction_id.startswith("4200000") and transaction_id.isdigit()

    status, order = query(client, otn, sub)
    assert status == 200
    assert order["trade_state"] == "SUCCESS" and order["transaction_id"] == transaction_id
    assert order["amount"] == {"total": 10000, "payer_total": 10000, "currency": "CNY", "payer_currency": "CNY"}
    assert order["payer"] == {"sp_openid": "o_alice"} and order["trade_type"] == "JSAPI"
    assert (order["sp_mchid"], order["sp_appid"], order["sub_mchid"]) == (
        stack.env["SP_MCHID"], stack.env["SP_APPID"], sub)
    assert order["success_time"].endswith("+08:00")
    status, by_id = client.query(transaction_id=transaction_id, sub_mchid=sub)
    assert status == 200 and json.loads(by_id)["out_trade_no"] == otn

    held = control(stack, "GET", f"/sandbox/transactions/{otn}").json()
    assert held["fee_fen"] == 60 and held["total_fen"] == 10000      # 0.6 % of 100.00 CNY
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 10000 - 60

    orn = new_no("R")
    status, accepted = refund(client, orn, otn, sub, 3000)
    assert status == 200 and accepted["status"] == "PROCESSING" and accepted["out_refund_no"] == orn
    assert accepted["amount"]["refund"] == 3000 and accepted["amount"]["total"] == 10000
    assert accepted["amount"]["refund_fee"] == 18                      # 30 % of the 60 fen fee
    assert accepted["transaction_id"] == transaction_id and "success_time" not in accepted
    status, processing = query_refund(client, orn, sub)
    assert status == 200 and processing["status"] == "PROCESSING"
    assert query(client, otn, sub)[1]["trade_state"] == "REFUND"

    advance(stack, 10)
    status, done = query_refund(client, orn, sub)
    assert status == 200 and done["status"] == "SUCCESS" and done["success_time"].endswith("+08:00")
    assert done["refund_id"] == accepted["refund_id"] and done["user_received_account"] == "支付用户零钱"
    assert done["amount"]["payer_refund"] == 3000
    held = control(stack, "GET", f"/sandbox/transactions/{otn}").json()
    assert (held["refunded_fen"], held["fee_refunded_fen"]) == (3000, 18)
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 10000 - 60 - (3000 - 18)

    # The rest of the order, refunded, gives back exactly the rest of the fee.
    status, rest = refund(client, new_no("R"), otn, sub, 7000)
    assert status == 200 and rest["amount"]["refund_fee"] == 60 - 18


def test_prepay_is_idempotent_and_an_out_trade_no_cannot_be_reused_with_other_parameters(stack, client):
    otn, sub = new_no("I"), new_sub_mchid()
    first, again = prepay(client, otn, sub), prepay(client, otn, sub)
    assert first[0] == again[0] == 200 and first[1]["prepay_id"] == again[1]["prepay_id"]

    status, error = prepay(client, otn, sub, total=9999)
    assert status == 400 and error["code"] == "INVALID_REQUEST" and "商户订单号重复" in error["message"]
    assert control(stack, "GET", f"/sandbox/requests?api=prepay&key={otn}").json() == {
        "api": "prepay", "key": otn, "received": 3, "accepted": 1}

    pay(stack, otn)
    status, error = prepay(client, otn, sub)
    assert status == 400 and error["code"] == "ORDERPAID"


@pytest.mark.parametrize("change, code", [
    ({"out_trade_no": "abc"}, "PARAM_ERROR"),                      # 6 to 32 characters
    ({"total": 0}, "PARAM_ERROR"),
    ({"notify_url": "http://127.0.0.1:9/n?x=1"}, "PARAM_ERROR"),   # no query string
    ({"sub_mchid": "12"}, "MCH_NOT_EXISTS"),
])
def test_invalid_prepays_are_refused_as_wechat_refuses_them(client, change, code):
    args = {"out_trade_no": new_no("P"), "sub_mchid": new_sub_mchid(), **change}
    status, error = prepay(client, args.pop("out_trade_no"), args.pop("sub_mchid"), **args)
    assert status == 400 and error["code"] == code and error["message"]


def test_closing_an_unpaid_order_closes_it_and_a_paid_one_is_orderpaid(stack, client):
    sub = new_sub_mchid()
    unpaid, paid = new_no("C"), new_no("C")
    prepay(client, unpaid, sub)
    prepay(client, paid, sub)
    pay(stack, paid)

    status, text = client.close(out_trade_no=unpaid, sub_mchid=sub)
    assert status == 204 and not text
    assert query(client, unpaid, sub)[1]["trade_state"] == "CLOSED"
    assert_contract_error(control(stack, "POST", "/sandbox/pay", {"out_trade_no": unpaid}), 409, "ORDER_NOT_PAYABLE")

    status, text = client.close(out_trade_no=paid, sub_mchid=sub)
    assert status == 400 and json.loads(text)["code"] == "ORDERPAID"
    assert query(client, paid, sub)[1]["trade_state"] == "SUCCESS"


def test_an_unpaid_order_closes_when_its_time_expire_passes_on_the_business_clock(stack, client):
    otn, sub = new_no("E"), new_sub_mchid()
    now = control(stack, "GET", "/sandbox/clock").json()["timestamp"]
    prepay(client, otn, sub, time_expire=rfc3339(now + 120))
    assert query(client, otn, sub)[1]["trade_state"] == "NOTPAY"
    advance(stack, 180)
    assert query(client, otn, sub)[1]["trade_state"] == "CLOSED"
    assert_contract_error(control(stack, "POST", "/sandbox/pay", {"out_trade_no": otn}), 409, "ORDER_NOT_PAYABLE")


def test_unknown_orders_and_refunds_are_404_in_wechats_words(stack, client):
    status, error = query(client, new_no("U"), new_sub_mchid())
    assert status == 404 and error["code"] == "ORDER_NOT_EXIST"
    status, error = query_refund(client, new_no("U"), new_sub_mchid())
    assert status == 404 and error["code"] == "RESOURCE_NOT_EXISTS"
    assert_contract_error(control(stack, "POST", "/sandbox/pay", {"out_trade_no": new_no("U")}), 404,
                          "ORDER_NOT_FOUND")


# -- refunds' rules ---------------------------------------------------------------------------------

def test_refunds_never_exceed_what_was_paid_nor_the_balance_and_repeat_by_out_refund_no(stack, client):
    otn, sub = new_no("F"), new_sub_mchid()
    prepay(client, otn, sub)
    pay(stack, otn)

    orn = new_no("R")
    first, repeat = refund(client, orn, otn, sub, 6000), refund(client, orn, otn, sub, 6000)
    assert first[0] == repeat[0] == 200 and first[1]["refund_id"] == repeat[1]["refund_id"]
    assert control(stack, "GET", f"/sandbox/requests?api=refund&key={orn}").json() == {
        "api": "refund", "key": orn, "received": 2, "accepted": 1}

    status, error = refund(client, orn, otn, sub, 5000)            # same number, other amount
    assert status == 400 and error["code"] == "PARAM_ERROR"
    status, error = refund(client, new_no("R"), otn, sub, 4001)    # 6000 + 4001 > 10000
    assert status == 400 and error["code"] == "INVALID_REQUEST"

    assert control(stack, "PUT", f"/sandbox/merchants/{sub}", {"balance_fen": 100}).status == 200
    status, error = refund(client, new_no("R"), otn, sub, 4000)
    assert status == 403 and error["code"] == "NOT_ENOUGH"
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 100   # nothing taken


def test_a_held_refund_stays_processing_until_finished_and_a_closed_one_gives_the_money_back(
        stack, client, receiver, pay_keys):
    otn, sub = new_no("H"), new_sub_mchid()
    prepay(client, otn, sub)
    pay(stack, otn)
    assert control(stack, "POST", "/sandbox/faults", {"kind": "refunds_hold"}).status == 201
    orn = new_no("R")
    assert refund(client, orn, otn, sub, 10000, notify_url=receiver.url)[1]["status"] == "PROCESSING"
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 0   # 9940 - (10000 - 60)
    advance(stack, 60)
    assert query_refund(client, orn, sub)[1]["status"] == "PROCESSING"
    assert receiver.count() == 0

    finished = control(stack, "POST", f"/sandbox/refunds/{orn}/finish", {"status": "CLOSED", "notify": "once"})
    assert finished.status == 200 and finished.json()["status"] == "CLOSED"
    assert query_refund(client, orn, sub)[1]["status"] == "CLOSED"
    assert receiver.count() == 1                                      # delivered before the control answered
    headers, body = receiver.received[0]
    verify_wechat_signature(headers, body, pay_keys)
    envelope = json.loads(body)
    assert envelope["event_type"] == "REFUND.CLOSED" and envelope["resource"]["original_type"] == "refund"
    notice = decrypt(envelope["resource"], pay_keys["apiv3_key"])
    assert notice["refund_status"] == "CLOSED" and notice["out_refund_no"] == orn
    assert notice["amount"]["refund"] == 10000 and notice["sub_mchid"] == sub
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 9940
    assert_contract_error(control(stack, "POST", f"/sandbox/refunds/{orn}/finish", {"status": "SUCCESS"}),
                          409, "REFUND_ALREADY_FINISHED")

    # A closed refund is retried with a new out_refund_no; with the hold lifted it succeeds by itself.
    control(stack, "DELETE", "/sandbox/faults")
    again = new_no("R")
    assert refund(client, again, otn, sub, 10000)[0] == 200
    advance(stack, 6)
    assert query_refund(client, again, sub)[1]["status"] == "SUCCESS"


def test_a_refund_notification_is_sent_when_the_refund_succeeds(stack, client, receiver, pay_keys):
    otn, sub = new_no("N"), new_sub_mchid()
    prepay(client, otn, sub)
    pay(stack, otn)
    orn = new_no("R")
    refund(client, orn, otn, sub, 2500, notify_url=receiver.url)
    advance(stack, 10)
    assert receiver.count() == 1
    headers, body = receiver.received[0]
    verify_wechat_signature(headers, body, pay_keys)
    envelope = json.loads(body)
    assert envelope["event_type"] == "REFUND.SUCCESS" and envelope["summary"] == "退款成功"
    notice = decrypt(envelope["resource"], pay_keys["apiv3_key"])
    assert (notice["out_refund_no"], notice["out_trade_no"], notice["refund_status"]) == (orn, otn, "SUCCESS")
    assert notice["amount"] == {"total": 10000, "refund": 2500, "payer_total": 10000, "payer_refund": 2500}


# -- signatures -------------------------------------------------------------------------------------

def signed_call(stack, pay_keys, method, target, body=b"", timestamp=None, key_pem=None, serial=None,
                send_to=None):
    """A request signed by hand, as the SDK would sign it (or not quite: ``send_to`` sends
    it to another target than the one signed)."""
    key = serialization.load_pem_private_key((key_pem or pay_keys["merchant_private_key.pem"]).encode(), None)
    ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(16)
    message = f"{method}\n{target}\n{ts}\n{nonce}\n".encode() + body + b"\n"
    signature = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    authorization = (f'WECHATPAY2-SHA256-RSA2048 mchid="{stack.env["SP_MCHID"]}",nonce_str="{nonce}",'
                     f'signature="{signature}",timestamp="{ts}",serial_no="{serial or pay_keys["merchant_serial_no"]}"')
    return http(method, stack.urls["sandbox"] + (send_to or target), body or None,
                headers={"Authorization": authorization, "Accept": "application/json"})


def test_requests_with_a_bad_signature_or_a_stale_timestamp_are_refused_401_and_the_refusal_is_signed(
        stack, client, pay_keys):
    otn, sub = new_no("S"), new_sub_mchid()
    prepay(client, otn, sub)
    target = f"/v3/pay/partner/transactions/out-trade-no/{otn}?sp_mchid={stack.env['SP_MCHID']}&sub_mchid={sub}"

    good = signed_call(stack, pay_keys, "GET", target, timestamp=int(time.time()) - 200)
    assert good.status == 200 and good.json()["trade_state"] == "NOTPAY"
    verify_wechat_signature(good.headers, good.body, pay_keys)
    assert good.headers["Request-ID"]

    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    refusals = {
        "stale": signed_call(stack, pay_keys, "GET", target, timestamp=int(time.time()) - 301),
        "wrong key": signed_call(stack, pay_keys, "GET", target, key_pem=stranger),
        "unknown serial": signed_call(stack, pay_keys, "GET", target, serial="0123ABCD"),
        "other query": signed_call(stack, pay_keys, "GET", target, send_to=target + "&x=1"),
        "no header": http("GET", stack.urls["sandbox"] + target),
    }
    for why, reply in refusals.items():
        assert reply.status == 401, why
        assert reply.json()["code"] == "SIGN_ERROR" and reply.json()["message"], why
        verify_wechat_signature(reply.headers, reply.body, pay_keys)


def test_a_body_signed_differently_from_what_is_sent_is_refused(stack, pay_keys):
    body = json.dumps({"sp_mchid": stack.env["SP_MCHID"], "sub_mchid": "1900001001"}).encode()
    target = f"/v3/pay/partner/transactions/out-trade-no/{new_no('S')}/close"
    key = serialization.load_pem_private_key(pay_keys["merchant_private_key.pem"].encode(), None)
    ts, nonce = str(int(time.time())), "N" * 32
    signed_body = body.replace(b"1900001001", b"1900001002")
    signature = base64.b64encode(key.sign(f"POST\n{target}\n{ts}\n{nonce}\n".encode() + signed_body + b"\n",
                                          padding.PKCS1v15(), hashes.SHA256())).decode()
    reply = http("POST", stack.urls["sandbox"] + target, body, headers={
        "Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{stack.env["SP_MCHID"]}",nonce_str="{nonce}",'
                         f'signature="{signature}",timestamp="{ts}",serial_no="{pay_keys["merchant_serial_no"]}"'})
    assert reply.status == 401 and reply.json()["code"] == "SIGN_ERROR"


def test_under_response_bad_signature_the_sdk_refuses_the_answer_though_the_operation_happened(stack, client):
    otn, sub = new_no("B"), new_sub_mchid()
    fault = control(stack, "POST", "/sandbox/faults", {"kind": "response_bad_signature", "once": True})
    assert fault.status == 201 and fault.json()["fault"]["kind"] == "response_bad_signature"
    with pytest.raises(Exception, match="verify the signature"):
        prepay(client, otn, sub)
    assert control(stack, "GET", f"/sandbox/requests?api=prepay&key={otn}").json()["accepted"] == 1
    # Once only: the retry verifies, and gets the order the first call created.
    status, body = prepay(client, otn, sub)
    assert status == 200 and body["prepay_id"].startswith("wx")
    assert control(stack, "GET", f"/sandbox/requests?api=prepay&key={otn}").json()["accepted"] == 1
    assert query(client, otn, sub)[1]["trade_state"] == "NOTPAY"


# -- notifications ----------------------------------------------------------------------------------

def test_a_payment_notification_is_signed_encrypted_and_retried_on_wechats_schedule(
        stack, client, receiver, pay_keys):
    receiver.fail_first = 2
    otn, sub = new_no("N"), new_sub_mchid()
    prepay(client, otn, sub, total=2345, notify_url=receiver.url, attach="store=7")
    transaction_id = pay(stack, otn, notify="once")
    assert receiver.count() == 1                       # the first attempt, before /sandbox/pay answered (500)

    # 15 s later on the business clock. The business clock also ticks with the wall clock, so the
    # "not yet" step leaves a 5 s margin for a slow machine rather than stopping at 14 s.
    advance(stack, 10)
    assert receiver.count() == 1
    advance(stack, 5)
    assert receiver.count() == 2                       # failed again: the next one 15 s after this
    advance(stack, 10)
    assert receiver.count() == 2
    advance(stack, 5)
    assert receiver.count() == 3                       # answered 204: done
    advance(stack, 3600)
    assert receiver.count() == 3

    deliveries = control(stack, "GET", f"/sandbox/notifications?subject={otn}").json()["deliveries"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("DELIVERED", 3)]

    envelopes = [json.loads(body) for _, body in receiver.received]
    assert len({e["id"] for e in envelopes}) == 1      # one notification, delivered three times
    nonces = set()
    for headers, body in receiver.received:            # each delivery signed afresh, on the wall clock
        verify_wechat_signature(headers, body, pay_keys)
        nonces.add(headers["Wechatpay-Nonce"])
    assert len(nonces) == 3

    envelope = envelopes[0]
    assert envelope["event_type"] == "TRANSACTION.SUCCESS" and envelope["resource_type"] == "encrypt-resource"
    resource = envelope["resource"]
    assert resource["algorithm"] == "AEAD_AES_256_GCM" and resource["original_type"] == "transaction"
    assert len(resource["nonce"]) == 12
    paid = decrypt(resource, pay_keys["apiv3_key"])
    assert paid["amount"] == {"total": 2345, "payer_total": 2345, "currency": "CNY", "payer_currency": "CNY"}
    assert (paid["out_trade_no"], paid["transaction_id"], paid["trade_state"]) == (otn, transaction_id, "SUCCESS")
    assert (paid["sp_mchid"], paid["sub_mchid"], paid["sp_appid"]) == (stack.env["SP_MCHID"], sub,
                                                                       stack.env["SP_APPID"])
    assert paid["attach"] == "store=7" and paid["payer"] == {"sp_openid": "o_alice"}

    # The SDK's own callback handling accepts it too.
    headers, body = receiver.received[-1]
    assert client.callback(headers, body)["resource"]["transaction_id"] == transaction_id


def test_a_long_clock_move_delivers_a_failing_notification_once_and_reschedules_from_the_new_now(
        stack, client, receiver):
    receiver.fail_first = 100
    otn, sub = new_no("M"), new_sub_mchid()
    prepay(client, otn, sub, notify_url=receiver.url)
    pay(stack, otn, notify="once")
    assert receiver.count() == 1
    advance(stack, 15 + 15 + 30 + 180)                 # four intervals' worth, one move: one delivery
    assert receiver.count() == 2
    advance(stack, 10)                                 # margins for wall time, as above
    assert receiver.count() == 2
    advance(stack, 5)                                  # 15 s after the new now (its 2nd failure)
    assert receiver.count() == 3
    advance(stack, 24)
    assert receiver.count() == 3
    advance(stack, 6)                                  # then 30 s
    assert receiver.count() == 4
    deliveries = control(stack, "GET", f"/sandbox/notifications?subject={otn}").json()["deliveries"]
    assert deliveries[0]["status"] == "PENDING" and deliveries[0]["attempts"] == 4
    assert deliveries[0]["last_result"] == "HTTP 500"


def test_notify_twice_delivers_the_same_notification_twice_and_none_not_at_all(stack, client, receiver):
    sub = new_sub_mchid()
    twice, silent = new_no("T"), new_no("T")
    prepay(client, twice, sub, notify_url=receiver.url)
    prepay(client, silent, sub, notify_url=receiver.url)
    pay(stack, twice, notify="twice")
    assert receiver.count() == 2
    assert len({json.loads(body)["id"] for _, body in receiver.received}) == 1
    pay(stack, silent, notify="none")
    advance(stack, 60)
    assert receiver.count() == 2


def test_notify_fail_drops_a_delivery_which_counts_as_a_failed_attempt(stack, client, receiver):
    otn, sub = new_no("D"), new_sub_mchid()
    prepay(client, otn, sub, notify_url=receiver.url)
    assert control(stack, "POST", "/sandbox/faults", {"kind": "notify_fail", "once": True}).status == 201
    pay(stack, otn, notify="once")
    assert receiver.count() == 0
    delivery = control(stack, "GET", f"/sandbox/notifications?subject={otn}").json()["deliveries"][0]
    assert (delivery["status"], delivery["attempts"]) == ("PENDING", 1) and "notify_fail" in delivery["last_result"]
    advance(stack, 15)
    assert receiver.count() == 1


# -- the other controls -----------------------------------------------------------------------------

def test_merchant_settings_have_the_contracts_defaults_and_can_be_changed(stack):
    sub = new_sub_mchid()
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json() == {
        "mchid": sub, "max_ratio": 3000, "balance_fen": 0, "return_opt_in": True}
    brand = control(stack, "GET", f"/sandbox/merchants/{stack.env['BRAND_MCHID']}").json()
    # 10,000,000 fen until the first split reaches it (other tests of the session split to it)
    assert brand["balance_fen"] >= 0 and brand["return_opt_in"] is True

    changed = control(stack, "PUT", f"/sandbox/merchants/{sub}", {"max_ratio": 2000, "return_opt_in": False})
    assert changed.status == 200
    assert control(stack, "GET", f"/sandbox/merchants/{sub}").json() == {
        "mchid": sub, "max_ratio": 2000, "balance_fen": 0, "return_opt_in": False}
    assert_contract_error(control(stack, "PUT", f"/sandbox/merchants/{sub}", {"max_ratio": 10001}), 400,
                          "INVALID_MERCHANT_SETTINGS")
    assert_contract_error(control(stack, "PUT", f"/sandbox/merchants/{sub}", {"balance_fen": 1.5}), 400,
                          "INVALID_MERCHANT_SETTINGS")
    assert_contract_error(control(stack, "GET", "/sandbox/merchants/abc"), 404, "MERCHANT_NOT_FOUND")


def test_faults_of_every_listed_kind_are_accepted_and_unknown_ones_refused(stack):
    assert_contract_error(control(stack, "POST", "/sandbox/faults", {"kind": "meteor_strike"}), 400, "INVALID_FAULT")
    assert_contract_error(control(stack, "POST", "/sandbox/faults", {"kind": "bill_hash_corrupt"}), 400,
                          "INVALID_FAULT")   # a bill fault needs its date
    # (missed_refund and unknown_payment are carried out when injected: test_sandbox_bills.py)
    stored = control(stack, "POST", "/sandbox/faults", {"kind": "amount_differs", "date": "2026-11-22",
                                                        "out_trade_no": "o_123456", "total_fen": 500})
    assert stored.status == 201
    control(stack, "POST", "/sandbox/faults", {"kind": "receiver_fails", "account": "o_bob",
                                               "reason": "RECEIVER_HIGH_RISK"})
    kinds = {f["kind"]: f for f in control(stack, "GET", "/sandbox/faults").json()["faults"]}
    assert kinds["amount_differs"]["total_fen"] == 500 and kinds["receiver_fails"]["reason"] == "RECEIVER_HIGH_RISK"
    assert control(stack, "DELETE", "/sandbox/faults").json()["cleared"] == 2
    assert control(stack, "GET", "/sandbox/faults").json()["faults"] == []


def _upload_shipping(stack, transaction_id):
    secret = (stack.data_dir / "secrets" / "miniprogram_appsecret").read_text().strip()
    token = http("POST", f"{stack.urls['sandbox']}/cgi-bin/stable_token", {
        "grant_type": "client_credential", "appid": stack.env["SP_APPID"], "secret": secret}).json()["access_token"]
    reply = http("POST", f"{stack.urls['sandbox']}/wxa/sec/order/upload_shipping_info?access_token={token}", {
        "order_key": {"order_number_type": 2, "transaction_id": transaction_id}, "logistics_type": 1,
        "delivery_mode": 1, "shipping_list": [{"tracking_no": "SF1", "express_company": "SF", "item_desc": "mouse"}],
        "upload_time": "2026-11-23T10:00:00+08:00", "payer": {"openid": "o_alice"}})
    assert reply.json()["errcode"] == 0, reply.body


def test_confirm_receipt_records_when_the_buyer_confirmed(stack, client):
    otn, sub = new_no("G"), new_sub_mchid()
    prepay(client, otn, sub)
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt"), 409, "ORDER_NOT_PAID")
    transaction_id = pay(stack, otn)
    # Receipt can only be confirmed once the shipping information is uploaded.
    assert control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt").status == 409
    _upload_shipping(stack, transaction_id)
    first = control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt")
    assert first.status == 200 and first.json()["receipt_confirmed_at"].endswith("+08:00")
    advance(stack, 60)
    again = control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt").json()
    assert again["receipt_confirmed_at"] == first.json()["receipt_confirmed_at"]
    assert control(stack, "GET", f"/sandbox/transactions/{otn}").json()["receipt_confirmed_at"] == \
        first.json()["receipt_confirmed_at"]


def test_an_unknown_v3_path_is_answered_signed_in_wechats_dialect(stack, pay_keys):
    reply = signed_call(stack, pay_keys, "GET", "/v3/no/such/api")
    assert reply.status == 404 and reply.json()["code"] == "NOT_FOUND"
    verify_wechat_signature(reply.headers, reply.body, pay_keys)


# -- a restart --------------------------------------------------------------------------------------

def test_a_pending_delivery_and_the_orders_survive_a_restart_of_the_sandbox(tmp_path, receiver):
    """Its own sandbox process on its own data folder (the shared stack is not restarted)."""
    import sys

    from infra.local.environment import PROJECT_DIR, StackPorts, local_environment
    from infra.local.keys import ensure_local_keys
    from infra.local.processes import spawn, stop_group, wait_http
    from infra.local.stack import free_port

    ensure_local_keys(tmp_path)
    port = free_port()
    env = local_environment(tmp_path, StackPorts(api=free_port(), dynamodb=free_port(), sandbox=port))
    url = f"http://127.0.0.1:{port}"

    def start():
        process = spawn([sys.executable, "-m", "infra.local.sandbox", "--port", str(port), "--data-dir", str(tmp_path)],
                        env, tmp_path / "sandbox.log", cwd=PROJECT_DIR)
        wait_http(f"{url}/sandbox/health", 30, process)
        return process

    class Alone:  # what the helpers above need of a stack
        urls = {"sandbox": url}

    sandbox = start()
    try:
        wxpay = sdk_client(env, url, read_pay_keys(tmp_path))
        receiver.fail_first = 1
        otn, sub = new_no("X"), new_sub_mchid()
        assert prepay(wxpay, otn, sub, notify_url=receiver.url)[0] == 200
        pay(Alone, otn, notify="once")
        assert receiver.count() == 1                   # failed: due again in 15 s
        stop_group(sandbox.pid)
        sandbox.wait(timeout=10)

        sandbox = start()
        assert query(wxpay, otn, sub)[1]["trade_state"] == "SUCCESS"
        assert control(Alone, "GET", f"/sandbox/merchants/{sub}").json()["balance_fen"] == 10000 - 60
        advance(Alone, 15)
        assert receiver.count() == 2
        deliveries = control(Alone, "GET", f"/sandbox/notifications?subject={otn}").json()["deliveries"]
        assert [(d["status"], d["attempts"]) for d in deliveries] == [("DELIVERED", 2)]
    finally:
        stop_group(sandbox.pid)
