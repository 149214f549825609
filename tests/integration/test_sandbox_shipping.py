"""The sandbox speaks WeChat's shipping-information service (小程序发货信息管理服务): the
merchant uploads shipping information once, get_order reports the order's state, and
the payment settles when the buyer confirms receipt or 10 days (business time) after
the upload. The real wechatpayv3 SDK plays the service provider for the payments."""
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import assert_contract_error, http
from tests.integration.sandbox_helpers import advance, control, new_no, new_sub_mchid  # noqa: F401
from tests.integration.test_sandbox_pay import read_pay_keys, sdk_client

pytestmark = pytest.mark.integration

TEN_DAYS_S = 864000


# -- the merchant's side ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(stack):
    return sdk_client(stack.env, stack.urls["sandbox"], read_pay_keys(stack.data_dir))


@pytest.fixture
def token(stack):
    return fresh_token(stack)


def fresh_token(stack) -> str:
    """A stable access token, as the merchant's backend gets one (again after a clock move of
    two hours or more: a token lives 7200 s of business time)."""
    secret = (Path(stack.data_dir) / "secrets" / "miniprogram_appsecret").read_text().strip()
    reply = http("POST", f"{stack.urls['sandbox']}/cgi-bin/stable_token",
                 {"grant_type": "client_credential", "appid": stack.env["SP_APPID"], "secret": secret,
                  "force_refresh": False})
    assert reply.status == 200, reply.body
    return reply.json()["access_token"]


def business_now(stack) -> int:
    return control(stack, "GET", "/sandbox/clock").json()["timestamp"]


def prepay(client, otn, sub, openid="o_alice", total=10000, description="LM-KB-MECH 机械键盘"):
    status, text = client.pay(description=description, out_trade_no=otn,
                              amount={"total": total, "currency": "CNY"}, payer={"sp_openid": openid},
                              notify_url="http://127.0.0.1:9/notify", sub_mchid=sub,
                              settle_info={"profit_sharing": True})
    assert status == 200, text


def paid_order(stack, client, openid="o_alice", **prepay_args):
    """(out_trade_no, sub_mchid, transaction_id) of an order the buyer has paid."""
    otn, sub = new_no("S"), new_sub_mchid()
    prepay(client, otn, sub, openid, **prepay_args)
    reply = control(stack, "POST", "/sandbox/pay", {"out_trade_no": otn, "notify": "none"})
    assert reply.status == 200, reply.body
    return otn, sub, reply.json()["transaction_id"]


def wxa(stack, access_token, api, body) -> dict:
    """A call to /wxa/sec/order/<api>: WeChat answers HTTP 200 with an errcode, whatever happens."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False).encode()
    reply = http("POST", f"{stack.urls['sandbox']}/wxa/sec/order/{api}?access_token={access_token}", data)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json"), reply.body
    return reply.json()


def upload_body(transaction_id, openid="o_alice", **changes) -> dict:
    body = {"order_key": {"order_number_type": 2, "transaction_id": transaction_id},
            "logistics_type": 1, "delivery_mode": 1,
            "shipping_list": [{"tracking_no": "SF1234567890", "express_company": "SF",
                               "item_desc": "LM-KB-MECH 机械键盘 x1", "contact": {"receiver_contact": "189****1234"}}],
            "upload_time": "2026-11-22T10:00:00+08:00", "payer": {"openid": openid}}
    body.update(changes)
    return body


def get_order(stack, access_token, transaction_id) -> dict:
    answer = wxa(stack, access_token, "get_order", {"transaction_id": transaction_id})
    assert answer["errcode"] == 0, answer
    return answer["order"]


def held(stack, otn) -> dict:
    reply = control(stack, "GET", f"/sandbox/transactions/{otn}")
    assert reply.status == 200, reply.body
    return reply.json()


def seconds(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp())


OK = {"errcode": 0, "errmsg": "ok"}


# -- an order's way to settlement -------------------------------------------------------------------

def test_an_order_ships_once_and_settles_when_the_buyer_confirms_receipt(stack, client, token):
    otn, sub, tid = paid_order(stack, client)

    order = get_order(stack, token, tid)
    assert order["order_state"] == 1 and "shipping" not in order
    assert (order["transaction_id"], order["merchant_trade_no"], order["merchant_id"], order["sub_merchant_id"]) == (
        tid, otn, stack.env["SP_MCHID"], sub)
    assert (order["paid_amount"], order["openid"], order["in_complaint"]) == (10000, "o_alice", False)
    assert order["description"] == "LM-KB-MECH 机械键盘"
    assert order["pay_time"] == seconds(held(stack, otn)["success_time"])
    assert order["trade_create_time"] == seconds(held(stack, otn)["created_at"])

    before = business_now(stack)
    assert wxa(stack, token, "upload_shipping_info", upload_body(tid)) == OK

    by_numbers = wxa(stack, token, "get_order", {"merchant_id": stack.env["SP_MCHID"], "merchant_trade_no": otn})
    assert by_numbers["errcode"] == 0 and by_numbers["order"]["order_state"] == 2
    shipping = by_numbers["order"]["shipping"]
    assert (shipping["delivery_mode"], shipping["logistics_type"], shipping["finish_shipping"],
            shipping["finish_shipping_count"]) == (1, 1, True, 1)
    [entry] = shipping["shipping_list"]
    assert (entry["tracking_no"], entry["express_company"], entry["goods_desc"], entry["contact"]) == (
        "SF1234567890", "SF", "LM-KB-MECH 机械键盘 x1", {"receiver_contact": "189****1234"})
    assert before <= entry["upload_time"] <= business_now(stack)

    view = held(stack, otn)
    assert view["shipping"]["shipping_list"] == [{"tracking_no": "SF1234567890", "express_company": "SF",
                                                  "item_desc": "LM-KB-MECH 机械键盘 x1",
                                                  "contact": {"receiver_contact": "189****1234"}}]
    assert view["shipping"]["upload_time"] == "2026-11-22T10:00:00+08:00"
    assert view["shipping"]["logistics_type"] == 1 and seconds(view["shipped_at"]) == entry["upload_time"]
    assert (view["received_at"], view["settled_at"], view["receipt_confirmed_at"]) == (None, None, None)

    # The first upload is final: another (different or the same) is refused and changes nothing.
    changed = upload_body(tid, shipping_list=[{"tracking_no": "YT999", "express_company": "YTO", "item_desc": "x"}])
    assert wxa(stack, token, "upload_shipping_info", changed)["errcode"] == 10060003
    assert wxa(stack, token, "upload_shipping_info", upload_body(tid))["errcode"] == 10060003
    again = get_order(stack, token, tid)
    assert again == by_numbers["order"] and held(stack, otn)["shipping"] == view["shipping"]

    assert wxa(stack, token, "notify_confirm_receive",
               {"transaction_id": tid, "received_time": business_now(stack)}) == OK
    assert held(stack, otn)["shipping"]["reminders"] == 1

    advance(stack, 3600)
    token = fresh_token(stack)    # the one we had may have expired meanwhile
    confirmed = control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt")
    assert confirmed.status == 200, confirmed.body
    receipt = confirmed.json()
    # Receipt settles at once in the sandbox: received, confirmed and settled at the same moment.
    assert receipt["settled_at"] == receipt["received_at"] == receipt["receipt_confirmed_at"]
    assert seconds(receipt["settled_at"]) >= seconds(view["shipped_at"]) + 3600
    view = held(stack, otn)
    assert (view["settled_at"], view["received_at"]) == (receipt["settled_at"], receipt["received_at"])
    assert get_order(stack, token, tid)["order_state"] == 4

    advance(stack, 60)
    token = fresh_token(stack)
    assert control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt").json() == receipt
    assert wxa(stack, token, "notify_confirm_receive",
               {"transaction_id": tid, "received_time": business_now(stack)})["errcode"] == 10060018


def test_an_order_nobody_confirms_settles_ten_days_after_the_upload(stack, client, token):
    otn, sub, tid = paid_order(stack, client, openid="o_bob")
    body = upload_body(None, "o_bob", order_key={"order_number_type": 1, "mchid": sub, "out_trade_no": otn})
    assert wxa(stack, token, "upload_shipping_info", body) == OK
    shipped_at = seconds(held(stack, otn)["shipped_at"])

    advance(stack, TEN_DAYS_S - 120)
    token = fresh_token(stack)
    assert held(stack, otn)["settled_at"] is None and get_order(stack, token, tid)["order_state"] == 2
    advance(stack, 120)
    token = fresh_token(stack)
    view = held(stack, otn)
    assert seconds(view["settled_at"]) == seconds(view["received_at"]) == shipped_at + TEN_DAYS_S
    assert view["receipt_confirmed_at"] is None          # WeChat confirmed, not the buyer
    assert get_order(stack, token, tid)["order_state"] == 4
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt"), 409,
                          "RECEIPT_AUTO_CONFIRMED")


def test_the_clock_move_itself_settles_every_due_order(stack, client, token):
    """The settlement is due work: it happens during the move, before anyone reads the order."""
    orders = [paid_order(stack, client) for _ in range(2)]
    for _, _, tid in orders:
        assert wxa(stack, token, "upload_shipping_info", upload_body(tid)) == OK
    advance(stack, TEN_DAYS_S)
    db = sqlite3.connect(str(Path(stack.data_dir) / "sandbox" / "sandbox.db"))
    try:
        settled = [db.execute("SELECT settled_at FROM pay_transactions WHERE out_trade_no = ?", (otn,)).fetchone()[0]
                   for otn, _, _ in orders]
    finally:
        db.close()
    assert all(at is not None for at in settled)


def test_confirm_receipt_needs_a_paid_and_shipped_order(stack, client, token):
    otn, _, tid = paid_order(stack, client)
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{otn}/confirm-receipt"), 409, "NOT_SHIPPED")
    assert held(stack, otn)["settled_at"] is None and get_order(stack, token, tid)["order_state"] == 1

    unpaid, sub = new_no("U"), new_sub_mchid()
    prepay(client, unpaid, sub)
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{unpaid}/confirm-receipt"), 409, "ORDER_NOT_PAID")
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{new_no('N')}/confirm-receipt"), 404,
                          "ORDER_NOT_FOUND")


def refund_in_full(stack, client, otn, sub):
    status, text = client.refund(out_refund_no=new_no("R"), out_trade_no=otn, sub_mchid=sub,
                                 amount={"refund": 10000, "total": 10000, "currency": "CNY"}, reason="不要了")
    assert status == 200, text
    advance(stack, 10)   # refunds succeed a few seconds after they are asked for


def test_an_order_refunded_in_full_is_state_5_cannot_ship_and_never_settles(stack, client, token):
    otn, sub, tid = paid_order(stack, client)
    refund_in_full(stack, client, otn, sub)
    assert get_order(stack, token, tid)["order_state"] == 5
    assert wxa(stack, token, "upload_shipping_info", upload_body(tid))["errcode"] == 10060004
    assert held(stack, otn)["shipping"] is None

    shipped, sub, shipped_tid = paid_order(stack, client)
    assert wxa(stack, token, "upload_shipping_info", upload_body(shipped_tid)) == OK
    refund_in_full(stack, client, shipped, sub)
    assert get_order(stack, token, shipped_tid)["order_state"] == 5
    assert_contract_error(control(stack, "POST", f"/sandbox/orders/{shipped}/confirm-receipt"), 409, "ORDER_REFUNDED")
    assert wxa(stack, token, "notify_confirm_receive",
               {"transaction_id": shipped_tid, "received_time": business_now(stack)})["errcode"] == 10060004
    advance(stack, TEN_DAYS_S)
    token = fresh_token(stack)
    assert held(stack, shipped)["settled_at"] is None and get_order(stack, token, shipped_tid)["order_state"] == 5


def test_split_delivery_and_virtual_goods_are_taken(stack, client, token):
    _, _, tid = paid_order(stack, client)
    split = upload_body(tid, delivery_mode=2, is_all_delivered=False, shipping_list=[
        {"tracking_no": "SF1", "express_company": "SF", "item_desc": "键盘"},
        {"tracking_no": "SF2", "express_company": "SF", "item_desc": "鼠" * 120}])
    assert wxa(stack, token, "upload_shipping_info", split) == OK
    shipping = get_order(stack, token, tid)["shipping"]
    assert (shipping["delivery_mode"], shipping["finish_shipping"], shipping["finish_shipping_count"]) == (2, False, 0)
    assert [e["tracking_no"] for e in shipping["shipping_list"]] == ["SF1", "SF2"]

    _, _, virtual_tid = paid_order(stack, client)
    virtual = upload_body(virtual_tid, logistics_type=3, shipping_list=[{"item_desc": "电子礼品卡"}],
                          upload_time="2026-11-22T02:00:00Z")
    assert wxa(stack, token, "upload_shipping_info", virtual) == OK
    shipping = get_order(stack, token, virtual_tid)["shipping"]
    assert shipping["logistics_type"] == 3 and shipping["shipping_list"][0]["tracking_no"] == ""


# -- refusals ---------------------------------------------------------------------------------------

def entry(**changes) -> dict:
    return {"tracking_no": "SF1", "express_company": "SF", "item_desc": "键盘", **changes}


BAD_UPLOADS = [
    ("express without tracking_no", {"shipping_list": [{"express_company": "SF", "item_desc": "键盘"}]}, 10060014),
    ("express without express_company", {"shipping_list": [{"tracking_no": "SF1", "item_desc": "键盘"}]}, 10060014),
    ("11 entries", {"delivery_mode": 2, "is_all_delivered": True, "shipping_list": [entry()] * 11}, 10060024),
    ("item_desc of 121 characters", {"shipping_list": [entry(item_desc="键" * 121)]}, 10060009),
    ("item_desc missing", {"shipping_list": [{"tracking_no": "SF1", "express_company": "SF"}]}, 10060008),
    ("item_desc empty", {"shipping_list": [entry(item_desc="")]}, 10060008),
    ("tracking_no of 129 characters", {"shipping_list": [entry(tracking_no="1" * 129)]}, 10060026),
    ("express_company of 129 characters", {"shipping_list": [entry(express_company="S" * 129)]}, 10060025),
    ("logistics_type 9", {"logistics_type": 9}, 10060005),
    ("logistics_type as text", {"logistics_type": "1"}, 10060005),
    ("split without is_all_delivered", {"delivery_mode": 2}, 10060007),
    ("split for virtual goods", {"delivery_mode": 2, "is_all_delivered": True, "logistics_type": 3}, 10060006),
    ("delivery_mode 3", {"delivery_mode": 3}, 40097),
    ("unified with two entries", {"shipping_list": [entry(), entry()]}, 40097),
    ("empty shipping_list", {"shipping_list": []}, 40097),
    ("shipping_list not a list", {"shipping_list": entry()}, 40097),
    ("an entry not an object", {"shipping_list": ["SF1"]}, 40097),
    ("contact not an object", {"shipping_list": [entry(contact="189****1234")]}, 40097),
    ("order_number_type 3", {"order_key": {"order_number_type": 3}}, 40097),
    ("no order_key", {"order_key": None}, 40097),
    ("upload_time without offset", {"upload_time": "2026-11-22T10:00:00"}, 40097),
    ("upload_time not a date", {"upload_time": "yesterday"}, 40097),
    ("no payer", {"payer": None}, 40097),
    ("payer without openid", {"payer": {}}, 40097),
]


@pytest.mark.parametrize("case, changes, errcode", BAD_UPLOADS, ids=[case[0] for case in BAD_UPLOADS])
def test_bad_fields_are_refused_with_wechats_errcodes_and_nothing_ships(stack, client, token, case, changes, errcode):
    otn, _, tid = paid_order(stack, client)
    answer = wxa(stack, token, "upload_shipping_info", upload_body(tid, **changes))
    assert answer["errcode"] == errcode and answer["errmsg"], answer
    assert get_order(stack, token, tid)["order_state"] == 1 and held(stack, otn)["shipping"] is None


@pytest.mark.parametrize("body, errcode", [
    (b"not json", 47001), (b"[1, 2]", 47001), (b"", 47001), ("{\"order_key\": ", 47001),
])
def test_a_body_that_is_no_json_object_is_a_data_format_error(stack, token, body, errcode):
    for api in ("upload_shipping_info", "get_order", "notify_confirm_receive"):
        assert wxa(stack, token, api, body)["errcode"] == errcode


def test_an_upload_for_an_order_that_cannot_ship_is_refused(stack, client, token):
    otn, sub, tid = paid_order(stack, client)
    sp_mchid = stack.env["SP_MCHID"]

    unpaid, unpaid_sub = new_no("U"), new_sub_mchid()
    prepay(client, unpaid, unpaid_sub)
    by_numbers = {"order_number_type": 1, "mchid": sp_mchid, "out_trade_no": unpaid}
    assert wxa(stack, token, "upload_shipping_info", upload_body(None, order_key=by_numbers))["errcode"] == 10060004

    unknown_tid = "4200000" + "0" * 21
    assert wxa(stack, token, "upload_shipping_info", upload_body(unknown_tid))["errcode"] == 10060001
    unknown = {"order_number_type": 1, "mchid": sp_mchid, "out_trade_no": new_no("N")}
    assert wxa(stack, token, "upload_shipping_info", upload_body(None, order_key=unknown))["errcode"] == 10060001
    other_merchant = {"order_number_type": 1, "mchid": new_sub_mchid(), "out_trade_no": otn}
    assert wxa(stack, token, "upload_shipping_info", upload_body(None, order_key=other_merchant))["errcode"] == 10060001

    assert wxa(stack, token, "upload_shipping_info", upload_body(tid, "o_mallory"))["errcode"] == 10060031

    assert get_order(stack, token, tid)["order_state"] == 1 and held(stack, otn)["shipping"] is None
    assert held(stack, unpaid)["shipping"] is None
    # ... and the order still ships, by its provider's mchid and out_trade_no
    mine = {"order_number_type": 1, "mchid": sp_mchid, "out_trade_no": otn}
    assert wxa(stack, token, "upload_shipping_info", upload_body(None, order_key=mine)) == OK


def test_the_access_token_is_checked_like_every_wxa_api(stack, client, token):
    _, _, tid = paid_order(stack, client)
    for api in ("upload_shipping_info", "get_order", "notify_confirm_receive"):
        assert wxa(stack, "not-a-token", api, {"transaction_id": tid})["errcode"] == 40001
        missing = http("POST", f"{stack.urls['sandbox']}/wxa/sec/order/{api}", {"transaction_id": tid}).json()
        assert missing["errcode"] == 41001
    advance(stack, 7200)
    assert wxa(stack, token, "upload_shipping_info", upload_body(tid))["errcode"] == 42001
    assert wxa(stack, token, "get_order", {"transaction_id": tid})["errcode"] == 42001


def test_get_order_and_the_reminder_refuse_what_they_cannot_find(stack, client, token):
    otn, sub, tid = paid_order(stack, client)
    unpaid, unpaid_sub = new_no("U"), new_sub_mchid()
    prepay(client, unpaid, unpaid_sub)
    sp_mchid = stack.env["SP_MCHID"]
    now = business_now(stack)

    assert wxa(stack, token, "get_order", {})["errcode"] == 40097
    assert wxa(stack, token, "get_order", {"merchant_id": sp_mchid})["errcode"] == 40097
    for body in ({"transaction_id": "4200000" + "0" * 21},
                 {"merchant_id": sp_mchid, "merchant_trade_no": unpaid},          # not paid: no 支付单 yet
                 {"merchant_id": new_sub_mchid(), "merchant_trade_no": otn},      # someone else's numbers
                 {"merchant_id": sp_mchid, "sub_merchant_id": new_sub_mchid(), "merchant_trade_no": otn},
                 {"transaction_id": tid, "merchant_id": sp_mchid, "merchant_trade_no": unpaid}):
        assert wxa(stack, token, "get_order", body)["errcode"] == 10060001, body
    by_sub = wxa(stack, token, "get_order", {"merchant_id": sub, "sub_merchant_id": sub, "merchant_trade_no": otn})
    assert by_sub["order"]["transaction_id"] == tid

    assert wxa(stack, token, "notify_confirm_receive", {"transaction_id": tid, "received_time": now})["errcode"] \
        == 10060004   # not shipped
    assert wxa(stack, token, "notify_confirm_receive",
               {"transaction_id": "4200000" + "0" * 21, "received_time": now})["errcode"] == 10060001
    for received_time in (None, "2026-11-22T10:00:00+08:00", 0, True, now + 3600):
        assert wxa(stack, token, "notify_confirm_receive",
                   {"transaction_id": tid, "received_time": received_time})["errcode"] == 40097, received_time


# -- what profit sharing asks, and an older data folder ---------------------------------------------

def test_is_settled_follows_the_business_clock_without_a_server(tmp_path):
    from chalicelib.clock import BusinessClock
    from infra.local.sandbox.pay import Payments
    from infra.local.sandbox.state import SandboxState

    clock = BusinessClock(tmp_path / "clock", wall=lambda: 1_800_000_000.0)
    state = SandboxState(tmp_path / "sandbox.db")
    payments = Payments(state, clock, merchants=None, notifier=None, request_log=None, sp_mchid="1900000100",
                        sp_appid="wx5f0c0ffee5a1d001")
    now = clock.timestamp()
    with state.transaction() as db:
        db.execute("INSERT INTO pay_transactions (out_trade_no, sp_mchid, sp_appid, sub_mchid, prepay_id, request,"
                   " description, total_fen, currency, payer_sp_openid, notify_url, profit_sharing, created_at,"
                   " expires_at, trade_state, transaction_id, success_at, payer_total_fen, fee_fen) VALUES"
                   " ('T1', '1900000100', 'wx5f0c0ffee5a1d001', '1900000001', 'wx1', '{}', 'd', 100, 'CNY',"
                   " 'o_a', 'http://x/n', 1, ?, ?, 'SUCCESS', '4200000001', ?, 100, 1)", (now, now + 60, now))
    assert not payments.is_settled("T1") and not payments.is_settled("no-such-order")
    payments.mark_shipped("T1", now)
    clock.advance(TEN_DAYS_S - 1)
    assert not payments.is_settled("T1")
    clock.advance(1)
    assert payments.is_settled("T1")      # read after the due time: settled on the way, like expiry
    row = payments.find("T1")
    assert row["settled_at"] == row["received_at"] == now + TEN_DAYS_S and row["receipt_confirmed_at"] is None
    assert payments.settle_due() == 0


def test_an_older_sandbox_database_gets_the_settlement_columns(tmp_path):
    from infra.local.sandbox.state import SandboxState

    path = tmp_path / "sandbox.db"
    old = sqlite3.connect(str(path))
    old.execute(  # pay_transactions as the sandbox before shipping information created it
        "CREATE TABLE pay_transactions (out_trade_no TEXT PRIMARY KEY, sp_mchid TEXT NOT NULL,"
        " sp_appid TEXT NOT NULL, sub_mchid TEXT NOT NULL, sub_appid TEXT, prepay_id TEXT NOT NULL UNIQUE,"
        " request TEXT NOT NULL, description TEXT NOT NULL, total_fen INTEGER NOT NULL, currency TEXT NOT NULL,"
        " payer_sp_openid TEXT, payer_sub_openid TEXT, attach TEXT, notify_url TEXT NOT NULL,"
        " profit_sharing INTEGER NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,"
        " trade_state TEXT NOT NULL, transaction_id TEXT UNIQUE, success_at REAL, payer_total_fen INTEGER,"
        " fee_fen INTEGER, closed_at REAL, receipt_confirmed_at REAL)")
    old.execute("INSERT INTO pay_transactions (out_trade_no, sp_mchid, sp_appid, sub_mchid, prepay_id, request,"
                " description, total_fen, currency, notify_url, profit_sharing, created_at, expires_at,"
                " trade_state) VALUES ('T1', 'm', 'a', 's', 'p', '{}', 'd', 1, 'CNY', 'u', 0, 0, 0, 'NOTPAY')")
    old.commit()
    old.close()
    state = SandboxState(path)
    row = state.row("SELECT * FROM pay_transactions WHERE out_trade_no = 'T1'")
    assert {"shipped_at", "received_at", "settled_at"} <= set(row) and row["settled_at"] is None
    assert state.rows("SELECT * FROM wxa_shipping") == []
