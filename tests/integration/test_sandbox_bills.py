"""The sandbox serves WeChat Pay's bills (wechatpay-v3.md §6-7) over real HTTP: the real
wechatpayv3 SDK, as the service provider, applies for a day's trade and profit-sharing
bills (signed answers), downloads the file (unsigned raw bytes, gzip or text), checks
its SHA1 and reads it by header name — rows made from what happened on that Beijing
day, available from 10:00 the next day on the business clock, with every bill fault
visible in the file or in the hash.

One scenario is played on one business day D (module fixture ``day``); the tests read
its bills. The last test waits out the download URL's 30 wall seconds."""
import gzip
import hashlib
import json
import math
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from wechatpayv3.utils import build_authorization

from chalicelib.domain.time import BEIJING
from tests.integration.conftest import http
from tests.integration.sandbox_helpers import advance, control, new_no, new_sub_mchid
from tests.integration.test_sandbox_pay import Receiver, pay_keys, sdk_client  # noqa: F401
from tests.integration.test_sandbox_profitsharing import RESULT_WAIT_S, add_brand, split, splittable, to
from tests.integration.test_sandbox_returns import give_back

pytestmark = pytest.mark.integration

DESCRIPTION = "LM-KB 机械键盘, 黑色"          # a comma in 商品名称: left in, unquoted
URL_TTL_S = 30


# -- the merchant's side ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(stack, pay_keys):  # noqa: F811 - the module-scoped keys of test_sandbox_pay
    return sdk_client(stack.env, stack.urls["sandbox"], pay_keys)


def signed_get(client, url: str) -> requests.Response:
    """A merchant GET signed over the URL's path and query, as WeChat wants a download signed;
    the raw response (headers included), nothing verified."""
    base = client._core._gate_way
    path = url[len(base):] if url.startswith(base) else url
    authorization = build_authorization(path, "GET", client._core._mchid, client._core._cert_serial_no,
                                        client._core._private_key)
    return requests.get(base + path, headers={"Authorization": authorization, "Accept": "application/json"},
                        timeout=10)


def apply_trade(client, day, bill_type="ALL", sub=None, tar_type="GZIP"):
    """(status, body) of applying for a trade bill; the SDK verifies the answer's signature."""
    if tar_type == "GZIP":
        status, text = client.trade_bill(bill_date=str(day), bill_type=bill_type, tar_type="GZIP", sub_mchid=sub)
    else:
        path = f"/v3/bill/tradebill?bill_date={day}&bill_type={bill_type}" + (f"&sub_mchid={sub}" if sub else "")
        status, text = client._core.request(path)
    return status, json.loads(text)


def apply_profitsharing(client, day, sub=None):
    status, text = client.profitsharing_bill(bill_date=str(day), tar_type="GZIP", sub_mchid=sub)
    return status, json.loads(text)


def parse(content: bytes) -> tuple[list[dict], dict]:
    """A bill file -> (rows {header: value}, summary {header: value}): header lines split on
    ',', values lines on ',`' after their leading backtick."""
    lines = content.decode("utf-8").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    header, summary_header = lines[0].split(","), lines[-2].split(",")
    assert "`" not in lines[0] and "`" not in lines[-2]

    def values(line):
        assert line.startswith("`"), line
        return line[1:].split(",`")

    rows = [dict(zip(header, values(line))) for line in lines[1:-2]]
    assert all(len(row) == len(header) for row in rows)
    return rows, dict(zip(summary_header, values(lines[-1])))


def download(client, answer: dict, zipped=True) -> bytes:
    """The file behind an apply answer: raw, unsigned, its SHA1 the answer's hash_value."""
    reply = signed_get(client, answer["download_url"])
    assert reply.status_code == 200, reply.text
    assert not any(name.lower().startswith("wechatpay-") for name in reply.headers)      # WeChat's quirk
    assert reply.headers["Content-Type"] == ("application/x-gzip" if zipped else "text/plain; charset=utf-8")
    content = gzip.decompress(reply.content) if zipped else reply.content
    return content


def fen(text: str) -> int:
    return int(Decimal(text) * 100)


def wechat_error(status_body, status, code):
    got_status, body = status_body
    assert (got_status, body["code"]) == (status, code), body
    assert body["message"]
    return body


def business_now(stack) -> float:
    return control(stack, "GET", "/sandbox/clock").json()["timestamp"]


def beijing_date(timestamp) -> date:
    return datetime.fromtimestamp(timestamp, BEIJING).date()


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BEIJING).timestamp()


def advance_to(stack, moment: float) -> None:
    seconds = math.ceil(moment - business_now(stack))
    if seconds > 0:
        advance(stack, seconds)


def prepay(client, sub, total, notify_url="http://127.0.0.1:9/notify", description=DESCRIPTION) -> str:
    otn = new_no("B")
    status, text = client.pay(description=description, out_trade_no=otn, attach=f"store=S1,sub={sub[-4:]}",
                              amount={"total": total, "currency": "CNY"}, payer={"sp_openid": "o_alice"},
                              notify_url=notify_url, sub_mchid=sub, settle_info={"profit_sharing": False})
    assert status == 200, text
    return otn


def pay(stack, otn) -> str:
    reply = control(stack, "POST", "/sandbox/pay", {"out_trade_no": otn, "notify": "none"})
    assert reply.status == 200, reply.body
    return reply.json()["transaction_id"]


def refund(client, otn, sub, amount, total):
    orn = new_no("R")
    status, text = client.refund(out_refund_no=orn, out_trade_no=otn, sub_mchid=sub, reason="不想要了",
                                 amount={"refund": amount, "total": total, "currency": "CNY"})
    assert status == 200, text
    return orn


def inject(stack, **body) -> dict:
    reply = control(stack, "POST", "/sandbox/faults", body)
    assert reply.status == 201, reply.body
    return reply.json()["fault"]


# -- one business day ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def day(stack, client):
    """Day D: payments, refunds, a closed order paid behind StoreLink's back, splits and a
    return on sub-merchant A, one payment on B, and a fault of every bill kind; then the
    clock is moved to 10:00:01 on D+1, when D's bills exist."""
    now = business_now(stack)
    if datetime.fromtimestamp(now, BEIJING).hour >= 20:            # everything below must stay on one day
        advance_to(stack, at(beijing_date(now) + timedelta(days=1), 8))
    d = beijing_date(business_now(stack))
    a, b = new_sub_mchid(), new_sub_mchid()
    brand = stack.env["BRAND_MCHID"]
    receiver = Receiver()
    s = {"d": d, "a": a, "b": b, "brand": brand}
    try:
        s["p1"] = prepay(client, a, 10000)
        pay(stack, s["p1"])
        s["p2"] = prepay(client, a, 1)
        pay(stack, s["p2"])
        s["r1"] = refund(client, s["p1"], a, 3000, 10000)                       # succeeds 5 s later
        inject(stack, kind="refunds_hold", once=True)
        s["r2"] = refund(client, s["p2"], a, 1, 1)                              # stays PROCESSING
        s["p3"] = prepay(client, b, 5000)
        pay(stack, s["p3"])
        s["closed"] = prepay(client, a, 2000, notify_url=receiver.url)           # closed by "StoreLink"
        status, _ = client.close(out_trade_no=s["closed"], sub_mchid=a)
        assert status == 204

        s["split_otn"], _, s["split_tid"] = splittable(stack, client, sub=a)   # paid 10000, settled, a minute on
        add_brand(client, a, brand)
        status, so1 = split(client, s["split_tid"], a, [to(brand, 1000)])
        assert status == 200, so1
        status, so2 = split(client, s["split_tid"], a, [to(brand, 500, description="品牌方货款, 二期")])
        assert status == 200, so2
        advance(stack, RESULT_WAIT_S)
        status, returned = give_back(client, a, so2, brand, 300)
        assert status == 200 and returned["result"] == "SUCCESS", returned
        s.update(so1=so1["out_order_no"], so2=so2["out_order_no"], rt=returned["out_return_no"])

        s["unknown"] = inject(stack, kind="unknown_payment", date=str(d), out_trade_no=s["closed"])
        s["invented"] = inject(stack, kind="unknown_payment", date=str(d), total_fen=777, sub_mchid=a)
        inject(stack, kind="amount_differs", date=str(d), out_trade_no=s["p3"], total_fen=4999)
        s["missed"] = inject(stack, kind="missed_refund", date=str(d), out_trade_no=s["p1"], amount_fen=1000)
        inject(stack, kind="split_differs", date=str(d), out_order_no=s["so1"])
        s["yesterday"] = d - timedelta(days=1)
        s["yesterday_payment"] = inject(stack, kind="unknown_payment", date=str(s["yesterday"]), total_fen=555,
                                        sub_mchid=a)
        inject(stack, kind="bill_hash_corrupt", date=str(s["yesterday"]))

        s["creating"] = [apply_trade(client, d, sub=a), apply_profitsharing(client, d, sub=a)]
        advance_to(stack, at(d + timedelta(days=1), 9, 59))
        s["creating"] += [apply_trade(client, d, sub=a), apply_profitsharing(client, d, sub=a)]
        advance_to(stack, at(d + timedelta(days=1), 10, 0, 1))

        status, s["expiring"] = apply_trade(client, d, sub=a)                 # for the last test
        assert status == 200, s["expiring"]
        s["expiring_at"] = time.time() + URL_TTL_S
        s["receiver"] = receiver
        yield s
    finally:
        http("DELETE", f"{stack.urls['sandbox']}/sandbox/faults")
        receiver.server.shutdown()
        receiver.server.server_close()


# -- availability -------------------------------------------------------------------------------------

def test_before_10_00_the_next_day_the_bill_is_still_being_made(day):
    for answer in day["creating"]:             # on day D itself, and at 09:59 on D+1
        assert wechat_error(answer, 400, "STATEMENT_CREATING")["message"] == "账单生成中"


def test_a_day_or_sub_merchant_without_rows_has_no_bill_and_three_months_back_is_the_limit(stack, client, day):
    no_file = {"code": "NO_STATEMENT_EXIST", "message": "请求的账单文件不存在"}
    assert apply_trade(client, day["d"], sub=new_sub_mchid()) == (400, no_file)
    assert apply_profitsharing(client, day["d"], sub=day["b"]) == (400, no_file)      # B split nothing
    status, body = apply_trade(client, day["d"], "REFUND", sub=day["b"])               # B refunded nothing
    assert (status, body["code"]) == (400, "NO_STATEMENT_EXIST")
    today = beijing_date(business_now(stack))
    status, body = apply_trade(client, today - timedelta(days=100))
    assert (status, body["code"], body["message"]) == (400, "NO_STATEMENT_EXIST", "请求的账单文件不存在")
    assert "三个月" in body["detail"]["issue"]
    quiet = beijing_date(time.time()) - timedelta(days=3)    # before this stack's first business day
    if quiet >= today - timedelta(days=85):
        assert apply_trade(client, quiet) == (400, no_file)


@pytest.mark.parametrize("query", [
    "bill_date={tomorrow}", "bill_date=2026-13-01", "bill_date=20260301", "bill_date=2026-02-30", "bill_type=ALL",
    "bill_date={d}&bill_type=RECHARGE_REFUND", "bill_date={d}&tar_type=ZIP", "bill_date={d}&sub_mchid=abc",
])
def test_wechat_refuses_malformed_or_future_requests_with_param_error(stack, client, day, query):
    tomorrow = beijing_date(business_now(stack)) + timedelta(days=1)
    status, text = client._core.request("/v3/bill/tradebill?" + query.format(tomorrow=tomorrow, d=day["d"]))
    body = json.loads(text)
    assert (status, body["code"]) == (400, "PARAM_ERROR"), body
    assert body["message"] and body["detail"]["location"] == "query"


# -- the trade bill -----------------------------------------------------------------------------------

def test_the_all_bill_of_a_sub_merchant_holds_the_days_payments_and_refunds(stack, client, day):
    status, answer = apply_trade(client, day["d"], "ALL", sub=day["a"])
    assert status == 200 and answer["hash_type"] == "SHA1", answer
    assert answer["download_url"].startswith(f"{stack.urls['sandbox']}/v3/billdownload/file?token=")
    assert answer["download_url"].endswith("&tartype=gzip")
    content = download(client, answer)
    assert hashlib.sha1(content).hexdigest() == answer["hash_value"]
    status, raw = client.download_bill(answer["download_url"])              # the SDK's own download, too
    assert status == 200 and gzip.decompress(raw) == content

    rows, summary = parse(content)
    by_key = {(r["商户订单号"], r["交易状态"], r["商户退款单号"]): r for r in rows}
    p1, p2, closed, invented, split_otn = (day["p1"], day["p2"], day["closed"], day["invented"]["out_trade_no"],
                                           day["split_otn"])
    missed = day["missed"]["out_refund_no"]
    r1, r2 = day["r1"], day["r2"]
    assert set(by_key) == {(p1, "SUCCESS", "0"), (p2, "SUCCESS", "0"), (closed, "SUCCESS", "0"),
                           (invented, "SUCCESS", "0"), (split_otn, "SUCCESS", "0"),
                           (p1, "REFUND", r1), (p2, "REFUND", r2), (p1, "REFUND", missed)}
    first = by_key[(p1, "SUCCESS", "0")]
    assert (first["应结订单金额"], first["订单金额"], first["手续费"], first["费率"]) == ("100.00", "100.00", "0.60000", "0.60%")
    assert (first["特约商户号"], first["商户号"], first["公众账号ID"]) == (day["a"], stack.env["SP_MCHID"], stack.env["SP_APPID"])
    assert (first["商品名称"], first["商户数据包"], first["用户标识"]) == (DESCRIPTION, f"store=S1,sub={day['a'][-4:]}", "o_alice")
    assert (first["交易类型"], first["付款银行"], first["货币种类"], first["微信退款单号"]) == ("JSAPI", "OTHERS", "CNY", "0")
    assert first["交易时间"][:10] == str(day["d"])
    assert by_key[(p2, "SUCCESS", "0")]["订单金额"] == "0.01" and by_key[(p2, "SUCCESS", "0")]["手续费"] == "0.00000"
    refunded = by_key[(p1, "REFUND", r1)]
    assert (refunded["退款金额"], refunded["申请退款金额"], refunded["手续费"], refunded["退款状态"], refunded["退款类型"],
            refunded["应结订单金额"], refunded["订单金额"]) == ("30.00", "30.00", "-0.18000", "SUCCESS", "ORIGINAL",
                                                            "0.00", "0.00")
    assert by_key[(p2, "REFUND", r2)]["退款状态"] == "PROCESSING"                         # held: as of 09:00 D+1
    assert (by_key[(p1, "REFUND", missed)]["退款金额"], by_key[(p1, "REFUND", missed)]["退款状态"]) == ("10.00", "SUCCESS")
    assert by_key[(closed, "SUCCESS", "0")]["微信订单号"] == day["unknown"]["transaction_id"]
    assert by_key[(invented, "SUCCESS", "0")]["订单金额"] == "7.77"
    assert summary == {"总交易单数": "8", "应结订单总金额": "227.78", "退款总金额": "40.01", "充值券退款总金额": "0.00",
                       "手续费总金额": "1.13000", "订单总金额": "227.78", "申请退款总金额": "40.01"}
    assert sum(fen(r["订单金额"]) for r in rows) == fen(summary["订单总金额"])


def test_the_success_and_refund_bills_uncompressed(client, day):
    for bill_type, states in (("SUCCESS", {"SUCCESS"}), ("REFUND", {"REFUND"})):
        status, answer = apply_trade(client, day["d"], bill_type, sub=day["a"], tar_type=None)
        assert status == 200 and "tartype" not in answer["download_url"], answer
        content = download(client, answer, zipped=False)
        assert hashlib.sha1(content).hexdigest() == answer["hash_value"]
        rows, summary = parse(content)
        assert {r["交易状态"] for r in rows} == states
        if bill_type == "SUCCESS":
            assert len(rows) == 5 and "商户退款单号" not in rows[0]
            assert summary == {"总交易单数": "5", "应结订单总金额": "227.78", "手续费总金额": "1.37000", "订单总金额": "227.78"}
        else:
            times = {r["商户退款单号"]: (r["交易时间"], r["退款申请时间"], r["退款成功时间"]) for r in rows}
            assert set(times) == {day["r1"], day["r2"], day["missed"]["out_refund_no"]}
            assert times[day["r1"]][0] == times[day["r1"]][1] and times[day["r1"]][2] > times[day["r1"]][1]
            assert times[day["r2"]][2] == ""                                                   # not succeeded
            assert summary["总交易单数"] == "3" and summary["退款总金额"] == "40.01"


def test_without_sub_mchid_one_file_holds_every_sub_merchant_and_amount_differs_shows_only_there(
        client, day):
    status, answer = apply_trade(client, day["d"])
    assert status == 200, answer
    rows, _ = parse(download(client, answer))
    subs = {r["商户订单号"]: r["特约商户号"] for r in rows}
    assert subs[day["p1"]] == day["a"] and subs[day["p3"]] == day["b"]
    differs = next(r for r in rows if r["商户订单号"] == day["p3"])
    assert (differs["应结订单金额"], differs["订单金额"], differs["手续费"]) == ("49.99", "49.99", "0.30000")
    status, order = client.query(out_trade_no=day["p3"], sub_mchid=day["b"])
    assert status == 200 and json.loads(order)["amount"]["total"] == 5000                # only the bill differs


def test_unknown_payment_made_the_closed_order_paid_without_a_notification(stack, client, day):
    status, text = client.query(out_trade_no=day["closed"], sub_mchid=day["a"])
    order = json.loads(text)
    assert status == 200 and order["trade_state"] == "SUCCESS"
    assert order["transaction_id"] == day["unknown"]["transaction_id"]
    assert order["success_time"][:10] == str(day["d"]) and order["amount"]["total"] == 2000
    assert control(stack, "GET", f"/sandbox/notifications?subject={day['closed']}").json()["deliveries"] == []
    assert day["receiver"].count() == 0
    orn = refund(client, day["closed"], day["a"], 500, 2000)                  # the refund API takes it as paid
    status, text = client.query_refund(out_refund_no=orn, sub_mchid=day["a"])
    assert status == 200 and json.loads(text)["amount"]["refund"] == 500


def test_missed_refund_is_a_real_refund_nobody_was_told_of(stack, client, day):
    orn = day["missed"]["out_refund_no"]
    status, text = client.query_refund(out_refund_no=orn, sub_mchid=day["a"])
    found = json.loads(text)
    assert status == 200 and found["status"] == "SUCCESS" and found["out_trade_no"] == day["p1"]
    assert found["amount"]["refund"] == 1000 and found["amount"]["refund_fee"] == 6
    assert found["success_time"][:10] == str(day["d"])
    assert control(stack, "GET", f"/sandbox/notifications?subject={orn}").json()["deliveries"] == []


def test_bill_hash_corrupt_gives_a_hash_that_is_not_the_files(client, day):
    status, answer = apply_trade(client, day["yesterday"], sub=day["a"])
    assert status == 200, answer
    content = download(client, answer)
    assert len(answer["hash_value"]) == 40 and hashlib.sha1(content).hexdigest() != answer["hash_value"]
    rows, _ = parse(content)                                                   # the file itself is right
    assert [(r["商户订单号"], r["订单金额"]) for r in rows] == [(day["yesterday_payment"]["out_trade_no"], "5.55")]
    assert rows[0]["交易时间"] == f"{day['yesterday']} 12:00:00"


# -- the profit-sharing bill ---------------------------------------------------------------------------

def test_the_profitsharing_bill_lists_each_receiver_and_return_and_split_differs_adds_a_fen(client, day):
    status, answer = apply_profitsharing(client, day["d"], sub=day["a"])
    assert status == 200 and answer["download_url"].endswith("&tartype=gzip"), answer
    content = download(client, answer)
    assert hashlib.sha1(content).hexdigest() == answer["hash_value"]
    rows, summary = parse(content)
    assert [(r["商户分账/回退单号"], r["业务类型"], r["动账金额"], r["处理状态"], r["分账接收方"], r["分账接收方类型"])
            for r in rows] == [(day["so1"], "分账", "10.01", "SUCCESS", day["brand"], "MERCHANT_ID"),   # +1 fen
                               (day["so2"], "分账", "5.00", "SUCCESS", day["brand"], "MERCHANT_ID"),
                               (day["rt"], "回退", "3.00", "SUCCESS", day["brand"], "MERCHANT_ID")]
    assert {r["微信订单号"] for r in rows} == {day["split_tid"]} and {r["分账方商户号"] for r in rows} == {day["a"]}
    assert rows[1]["描述"] == "品牌方货款, 二期" and rows[0]["分账明细单号"] and rows[2]["分账明细单号"] == ""
    assert all(r["分账发起时间"][:10] == str(day["d"]) for r in rows)
    assert summary == {"总笔数": "3", "分账笔数": "2", "分账总金额": "15.01", "回退笔数": "1", "回退总金额": "3.00"}


# -- the download URL ----------------------------------------------------------------------------------

def test_the_download_needs_a_merchant_signature_and_a_token_the_sandbox_gave(stack, client, day):
    status, answer = apply_trade(client, day["d"], sub=day["a"])
    assert status == 200
    unsigned = requests.get(answer["download_url"], timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "SIGN_ERROR"
    assert unsigned.headers["Wechatpay-Signature"]                          # an error answer is signed
    made_up = signed_get(client, f"{stack.urls['sandbox']}/v3/billdownload/file?token=not-a-token")
    assert made_up.status_code == 404 and made_up.json()["code"] == "RESOURCE_NOT_EXISTS"


def test_a_download_url_is_refused_30_wall_seconds_after_it_was_given(client, day):
    """Last in the module: the URL applied for when the fixture ended has had most of its time."""
    time.sleep(max(0.0, day["expiring_at"] + 1 - time.time()))
    expired = signed_get(client, day["expiring"]["download_url"])
    assert expired.status_code == 400 and expired.headers["Content-Type"].startswith("application/json")
    assert expired.json()["code"] == "INVALID_REQUEST" and "过期" in expired.json()["message"]
    status, fresh = apply_trade(client, day["d"], sub=day["a"])               # apply again: a new URL works
    assert status == 200 and hashlib.sha1(download(client, fresh)).hexdigest() == fresh["hash_value"]
