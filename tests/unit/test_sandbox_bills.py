"""The sandbox's bills (wechatpay-v3.md §6-7): the files' exact format from the pure
writers (backticks, yuan by integer arithmetic, summary sums, free text), and what a
Beijing day's bill holds when made from the sandbox's own state — day boundaries,
statuses as of 09:00 the next day, availability on the business clock, and the bill
faults, which survive a restart."""
import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.time import BEIJING
from infra.local.sandbox.bill_files import (PROFITSHARING_BILL_HEADER, PROFITSHARING_SUMMARY_HEADER, RETURN, SPLIT,
                                            TRADE_BILL_HEADERS, TRADE_SUMMARY_HEADERS, ProfitSharingBillRow,
                                            TradeBillRow, bill_time, encode, fee_yuan, free_text,
                                            profitsharing_bill_lines, trade_bill_lines, yuan)
from infra.local.sandbox.bills import Bills, availability, corrupt_hash, months_before, sha1_hex, status_as_of
from infra.local.sandbox.faults import Faults
from infra.local.sandbox.http import Request
from infra.local.sandbox.merchants import Merchants
from infra.local.sandbox.pay import Payments
from infra.local.sandbox.profitsharing import ProfitSharing
from infra.local.sandbox.refunds import Refunds
from infra.local.sandbox.requests_log import RequestLog
from infra.local.sandbox.state import SandboxState

APPID, SP, SUB, BRAND = "wx5f0c0ffee5a1d001", "1900000100", "1900000109", "1900000200"
TID = "4200000123202603011234567890"
RID = "50300002026030112345678901234"


def beijing(text: str) -> float:
    """'2026-03-01 10:00:05' (Beijing) -> Unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


def fields(line: str) -> list[str]:
    """A detail or summary line -> its values: drop the first backtick, split on ',`'."""
    assert line.startswith("`"), line
    return line[1:].split(",`")


def parse(text: str) -> tuple[list[dict], dict]:
    """A bill file -> (rows as {header: value}, summary as {header: value}), by header NAME."""
    lines = text.split("\n")
    assert lines[-1] == "" and "`" not in lines[0] and "`" not in lines[-3]
    lines = lines[:-1]
    header, summary_header = lines[0].split(","), lines[-2].split(",")
    rows = []
    for line in lines[1:-2]:
        values = fields(line)
        assert len(values) == len(header), line
        rows.append(dict(zip(header, values)))
    summary = fields(lines[-1])
    assert len(summary) == len(summary_header)
    return rows, dict(zip(summary_header, summary))


def payment(**changes) -> TradeBillRow:
    row = dict(trade_time="2026-03-01 10:00:05", appid=APPID, mchid=SP, sub_mchid=SUB, transaction_id=TID,
               out_trade_no="O1", openid="o_alice", trade_state="SUCCESS", settlement_total_fen=1990,
               total_fen=1990, fee_fen=12, description="Course A", attach="shop=7")
    row.update(changes)
    return TradeBillRow(**row)


def refund(**changes) -> TradeBillRow:
    row = dict(trade_time="2026-03-01 11:00:00", appid=APPID, mchid=SP, sub_mchid=SUB, transaction_id=TID,
               out_trade_no="O1", openid="o_alice", trade_state="REFUND", settlement_total_fen=0, total_fen=0,
               fee_fen=-6, description="Course A", attach="shop=7", refund_id=RID, out_refund_no="R1",
               refund_fen=995, refund_requested_fen=995, refund_type="ORIGINAL", refund_status="SUCCESS",
               refund_requested_time="2026-03-01 11:00:00", refund_success_time="2026-03-01 11:00:05")
    row.update(changes)
    return TradeBillRow(**row)


def bill(rows, bill_type="ALL") -> str:
    return "".join(trade_bill_lines(rows, bill_type))


# -- amounts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fen, text, fee", [
    (0, "0.00", "0.00000"), (1, "0.01", "0.01000"), (9, "0.09", "0.09000"), (10, "0.10", "0.10000"),
    (99, "0.99", "0.99000"), (100, "1.00", "1.00000"), (1990, "19.90", "19.90000"),
    (12345, "123.45", "123.45000"), (99_999, "999.99", "999.99000"), (100_000, "1000.00", "1000.00000"),
    (123_456_789_012_345_678, "1234567890123456.78", "1234567890123456.78000"),
    (-1, "-0.01", "-0.01000"), (-18, "-0.18", "-0.18000"), (-100_001, "-1000.01", "-1000.01000"),
])
def test_fen_become_yuan_exactly(fen, text, fee):
    assert yuan(fen) == text and fee_yuan(fen) == fee


@given(st.integers(-10 ** 15, 10 ** 15))
def test_yuan_is_the_exact_decimal_of_the_fen(fen):
    assert Decimal(yuan(fen)) * 100 == fen and Decimal(fee_yuan(fen)) * 100 == fen
    assert len(yuan(fen).split(".")[1]) == 2 and len(fee_yuan(fen).split(".")[1]) == 5


@given(st.integers(-10 ** 7, 10 ** 7))
def test_the_writer_formats_every_amount_exactly_whether_remembered_or_not(fen):
    """The writer remembers small amounts' text: twice in a row, big or small, it is exact."""
    for _ in range(2):
        rows, summary = parse(bill([payment(settlement_total_fen=fen, total_fen=fen, fee_fen=-fen)]))
        assert rows[0]["应结订单金额"] == yuan(fen) and rows[0]["手续费"] == fee_yuan(-fen)
        assert summary["订单总金额"] == yuan(fen)


def test_bill_times_are_beijing_local_without_zone():
    assert bill_time(beijing("2026-03-01 00:00:00")) == "2026-03-01 00:00:00"
    assert bill_time(beijing("2026-02-28 23:59:59") + 0.9) == "2026-02-28 23:59:59"


# -- the trade bill, exactly -------------------------------------------------------------------------

ALL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
              "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
              "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
FULL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"


def test_the_all_bill_is_wechats_layout_to_the_byte():
    assert bill([payment(), refund()]) == (
        ALL_HEADER + "\n"
        f"`2026-03-01 10:00:05,`{APPID},`{SP},`{SUB},`,`{TID},`O1,`o_alice,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.90,"
        "`0.00,`0,`0,`0.00,`0.00,`,`,`Course A,`shop=7,`0.12000,`0.60%,`19.90,`0.00,`\n"
        f"`2026-03-01 11:00:00,`{APPID},`{SP},`{SUB},`,`{TID},`O1,`o_alice,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,"
        f"`0.00,`{RID},`R1,`9.95,`0.00,`ORIGINAL,`SUCCESS,`Course A,`shop=7,`-0.06000,`0.60%,`0.00,`9.95,`\n"
        + FULL_SUMMARY + "\n"
        "`2,`19.90,`9.95,`0.00,`0.06000,`19.90,`9.95\n")


def test_the_success_bill_keeps_the_payments_only():
    assert bill([payment(), refund()], "SUCCESS") == (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注\n"
        f"`2026-03-01 10:00:05,`{APPID},`{SP},`{SUB},`,`{TID},`O1,`o_alice,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.90,"
        "`0.00,`Course A,`shop=7,`0.12000,`0.60%,`19.90,`\n"
        "总交易单数,应结订单总金额,手续费总金额,订单总金额\n"
        "`1,`19.90,`0.12000,`19.90\n")


def test_the_refund_bill_keeps_the_refunds_with_their_request_and_success_times():
    assert bill([payment(), refund(), refund(out_refund_no="R2", refund_status="PROCESSING", refund_success_time="",
                                            refund_fen=5, refund_requested_fen=5, fee_fen=0)], "REFUND") == (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,"
        "退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n"
        f"`2026-03-01 11:00:00,`{APPID},`{SP},`{SUB},`,`{TID},`O1,`o_alice,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
        f"`2026-03-01 11:00:00,`2026-03-01 11:00:05,`{RID},`R1,`9.95,`0.00,`ORIGINAL,`SUCCESS,`Course A,`shop=7,"
        "`-0.06000,`0.60%,`0.00,`9.95,`\n"
        f"`2026-03-01 11:00:00,`{APPID},`{SP},`{SUB},`,`{TID},`O1,`o_alice,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
        f"`2026-03-01 11:00:00,`,`{RID},`R2,`0.05,`0.00,`ORIGINAL,`PROCESSING,`Course A,`shop=7,"
        "`0.00000,`0.60%,`0.00,`0.05,`\n"
        + FULL_SUMMARY + "\n"
        "`2,`0.00,`10.00,`0.00,`-0.06000,`0.00,`10.00\n")


@pytest.mark.parametrize("bill_type", ["ALL", "SUCCESS", "REFUND"])
def test_headers_carry_no_backticks_and_every_value_starts_with_one(bill_type):
    lines = bill([payment(), refund(), payment(out_trade_no="O2", attach="")], bill_type).splitlines()
    assert lines[0] == ",".join(TRADE_BILL_HEADERS[bill_type]) and "`" not in lines[0]
    assert lines[-2] == ",".join(TRADE_SUMMARY_HEADERS[bill_type]) and "`" not in lines[-2]
    for line in lines[1:-2] + lines[-1:]:
        assert line.startswith("`") and line.count(",") == line.count(",`")      # empty values too: ",`,"
    assert len(TRADE_BILL_HEADERS[bill_type]) == {"ALL": 27, "SUCCESS": 20, "REFUND": 29}[bill_type]


def test_an_empty_row_list_is_headers_and_a_zero_summary():
    assert bill([]) == ALL_HEADER + "\n" + FULL_SUMMARY + "\n`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00\n"


def test_an_unknown_bill_type_is_a_bug():
    with pytest.raises(ValueError):
        bill([payment()], "RECHARGE_REFUND")


def test_commas_stay_unquoted_in_free_text_and_a_reader_splits_on_comma_backtick():
    """WeChat leaves commas in 商品名称 / 商户数据包 as they are: no CSV quoting."""
    text = bill([payment(description="键盘, 黑色,104键", attach='{"shop":7,"pos":"A"}')])
    line = text.splitlines()[1]
    assert ",`键盘, 黑色,104键,`" in line and '"' not in line.replace('{"shop":7,"pos":"A"}', "")
    assert len(line.split(",")) > len(TRADE_BILL_HEADERS["ALL"])          # a naive CSV split breaks
    rows, _ = parse(text)
    assert rows[0]["商品名称"] == "键盘, 黑色,104键" and rows[0]["商户数据包"] == '{"shop":7,"pos":"A"}'


def test_line_breaks_and_backticks_in_free_text_cannot_break_a_line_or_a_field():
    assert free_text("a`b\r\nc\nd\re, f") == "a'b c d e, f"
    assert free_text("plain, text") == "plain, text"
    rows, _ = parse(bill([payment(description="x,`y\nz", attach="`")]))
    assert rows[0]["商品名称"] == "x,'y z" and rows[0]["商户数据包"] == "'"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10 ** 9), st.integers(0, 10 ** 6)), max_size=30))
def test_the_summary_is_the_sum_of_the_rows_written(specs):
    rows = [payment(out_trade_no=f"O{i}", settlement_total_fen=a, total_fen=a, fee_fen=b) if is_payment
            else refund(out_refund_no=f"R{i}", refund_fen=a, refund_requested_fen=a, fee_fen=-b)
            for i, (is_payment, a, b) in enumerate(specs)]
    for bill_type in ("ALL", "SUCCESS", "REFUND"):
        written, summary = parse(bill(rows, bill_type))
        fen = lambda name: sum(int(Decimal(r[name]) * 100) for r in written)   # noqa: E731
        assert summary["总交易单数"] == str(len(written))
        assert summary["应结订单总金额"] == yuan(fen("应结订单金额"))
        assert summary["手续费总金额"] == fee_yuan(fen("手续费"))
        assert summary["订单总金额"] == yuan(fen("订单金额"))
        if bill_type != "SUCCESS":
            assert summary["退款总金额"] == yuan(fen("退款金额"))
            assert summary["申请退款总金额"] == yuan(fen("申请退款金额"))
        expected = {"ALL": len(rows), "SUCCESS": sum(s[0] for s in specs), "REFUND": sum(not s[0] for s in specs)}
        assert len(written) == expected[bill_type]


# -- the profit-sharing bill, exactly ----------------------------------------------------------------

def share(**changes) -> ProfitSharingBillRow:
    row = dict(time="2026-03-01 12:00:00", sub_mchid=SUB, sp_mchid=SP, transaction_id=TID,
               order_id="3008000001202603010000000001", detail_id="36202603010000000000001", out_no="SO1",
               receiver_type="MERCHANT_ID", receiver=BRAND, amount_fen=3000, business_type=SPLIT, status="SUCCESS",
               description="品牌方货款")
    row.update(changes)
    return ProfitSharingBillRow(**row)


def test_the_profitsharing_bill_has_one_row_per_receiver_and_return_and_sums_per_business_type():
    rows = [share(), share(detail_id="36202603010000000000002", receiver_type="PERSONAL_OPENID", receiver="o_bob",
                           amount_fen=1, status="CLOSED", description="推广佣金, 一级"),
            share(time="2026-03-01 15:00:00", order_id="3008000002202603010000000002", detail_id="", out_no="RT1",
                  amount_fen=500, business_type=RETURN, description="用户退款")]
    assert "".join(profitsharing_bill_lines(rows)) == (
        "分账发起时间,分账方商户号,分账发起方,微信订单号,微信分账/回退单号,分账明细单号,商户分账/回退单号,分账接收方类型,"
        "分账接收方,动账金额,业务类型,处理状态,描述\n"
        f"`2026-03-01 12:00:00,`{SUB},`{SP},`{TID},`3008000001202603010000000001,`36202603010000000000001,`SO1,"
        f"`MERCHANT_ID,`{BRAND},`30.00,`分账,`SUCCESS,`品牌方货款\n"
        f"`2026-03-01 12:00:00,`{SUB},`{SP},`{TID},`3008000001202603010000000001,`36202603010000000000002,`SO1,"
        "`PERSONAL_OPENID,`o_bob,`0.01,`分账,`CLOSED,`推广佣金, 一级\n"
        f"`2026-03-01 15:00:00,`{SUB},`{SP},`{TID},`3008000002202603010000000002,`,`RT1,"
        f"`MERCHANT_ID,`{BRAND},`5.00,`回退,`SUCCESS,`用户退款\n"
        "总笔数,分账笔数,分账总金额,回退笔数,回退总金额\n"
        "`3,`2,`30.01,`1,`5.00\n")
    parsed, summary = parse("".join(profitsharing_bill_lines(rows)))
    assert tuple(parsed[0]) == PROFITSHARING_BILL_HEADER and tuple(summary) == PROFITSHARING_SUMMARY_HEADER
    assert parsed[1]["描述"] == "推广佣金, 一级"


def test_an_empty_profitsharing_bill_is_headers_and_zeros():
    assert "".join(profitsharing_bill_lines([])).splitlines()[-1] == "`0,`0,`0.00,`0,`0.00"


def test_encode_is_utf8_of_the_lines_joined():
    assert encode(["交易\n", "`1\n"]) == "交易\n`1\n".encode()


# -- availability on the business clock --------------------------------------------------------------

def test_a_days_bill_exists_from_10_00_beijing_the_next_day():
    day = date(2026, 3, 1)
    assert availability(day, beijing("2026-03-01 23:00:00"))[0] == "STATEMENT_CREATING"    # today
    assert availability(day, beijing("2026-03-02 09:59:59"))[0] == "STATEMENT_CREATING"
    assert availability(day, beijing("2026-03-02 10:00:00")) is None
    assert availability(day, beijing("2026-02-28 23:59:59"))[0] == "PARAM_ERROR"          # the future
    assert availability(day, beijing("2026-06-01 12:00:00")) is None                      # 3 months back
    assert availability(day, beijing("2026-06-02 00:00:00")) == ("NO_STATEMENT_EXIST", "请求的账单文件不存在")


@pytest.mark.parametrize("day, months, earlier", [
    (date(2026, 5, 31), 3, date(2026, 2, 28)), (date(2028, 5, 31), 3, date(2028, 2, 29)),
    (date(2026, 1, 15), 3, date(2025, 10, 15)), (date(2026, 3, 1), 0, date(2026, 3, 1)),
])
def test_three_months_back_is_a_calendar_rule(day, months, earlier):
    assert months_before(day, months) == earlier


def test_a_status_reads_as_it_stood_when_the_bill_was_made():
    assert status_as_of("SUCCESS", 100.0, 100.0, "PROCESSING") == "SUCCESS"
    assert status_as_of("SUCCESS", 101.0, 100.0, "PROCESSING") == "PROCESSING"
    assert status_as_of("PROCESSING", None, 100.0, "PROCESSING") == "PROCESSING"


def test_a_corrupt_hash_is_a_well_formed_sha1_of_something_else():
    content = b"abc"
    assert sha1_hex(content) == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert len(corrupt_hash(content)) == 40 and corrupt_hash(content) != sha1_hex(content)


# -- a day's bill from the sandbox's state -----------------------------------------------------------

class Clock:
    def __init__(self, at: float):
        self.at = at

    def timestamp(self) -> float:
        return self.at


class SilentNotifier:
    def enqueue(self, *args, **kwargs):
        return []

    def deliver(self, deliveries):
        assert deliveries == []


def build(path, clock):
    state = SandboxState(path)
    faults = Faults(state, clock)
    merchants = Merchants(state, clock, BRAND)
    log = RequestLog(state)
    payments = Payments(state, clock, merchants, SilentNotifier(), log, SP, APPID)
    refunds = Refunds(state, clock, payments, merchants, SilentNotifier(), log, faults)
    sharing = ProfitSharing(state, clock, payments, merchants, log, faults, None, APPID)
    bills = Bills(state, clock, payments, refunds, sharing, merchants, faults, None, SP, APPID)
    return bills, payments, refunds, faults, merchants


def post(handler, body, **params):
    return handler(Request("POST", "/", {}, {}, json.dumps(body).encode(), params=params))


@pytest.fixture
def sandbox(tmp_path):
    clock = Clock(beijing("2026-03-01 08:00:00"))
    bills, payments, refunds, faults, merchants = build(tmp_path / "sandbox.db", clock)
    return {"clock": clock, "bills": bills, "payments": payments, "refunds": refunds, "faults": faults,
            "merchants": merchants, "path": tmp_path / "sandbox.db"}


def pay_at(sandbox, at: str, out_trade_no: str, total: int = 10000, description="LM-KB 键盘, 黑色") -> str:
    sandbox["clock"].at = beijing(at)
    post(sandbox["payments"].prepay, {
        "sp_appid": APPID, "sp_mchid": SP, "sub_mchid": SUB, "out_trade_no": out_trade_no,
        "description": description, "attach": "store=S1", "notify_url": "https://example.com/notify",
        "amount": {"total": total, "currency": "CNY"}, "payer": {"sp_openid": "o_alice"}})
    reply = post(sandbox["payments"].pay, {"out_trade_no": out_trade_no, "notify": "none"})
    assert reply.status == 200, reply.body
    return json.loads(reply.body)["transaction_id"]


def refund_at(sandbox, at: str, out_trade_no: str, out_refund_no: str, amount: int, total: int = 10000):
    sandbox["clock"].at = beijing(at)
    reply = post(sandbox["refunds"].create, {
        "sub_mchid": SUB, "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
        "amount": {"refund": amount, "total": total, "currency": "CNY"}})
    assert reply.status == 200, reply.body


def day_bill(sandbox, day="2026-03-01", bill_type="ALL", sub=None):
    """A day's trade bill, read once it exists (10:00 the next day) or later."""
    available = beijing(f"{day} 10:00:00") + 86400
    sandbox["clock"].at = max(sandbox["clock"].at, available)
    content = sandbox["bills"].trade_bill(date.fromisoformat(day), bill_type, sub)
    return None if content is None else parse(content.decode())


def test_payments_and_refunds_land_on_their_own_beijing_days(sandbox):
    pay_at(sandbox, "2026-03-01 00:00:00", "O_FIRST")
    pay_at(sandbox, "2026-03-01 23:59:59", "O_LAST")
    pay_at(sandbox, "2026-03-02 00:00:00", "O_NEXT", total=1)
    refund_at(sandbox, "2026-03-02 08:00:00", "O_LAST", "R_NEXT_DAY", 2500)   # asked the next day
    rows, summary = day_bill(sandbox)
    assert [(r["商户订单号"], r["交易状态"], r["交易时间"]) for r in rows] == [
        ("O_FIRST", "SUCCESS", "2026-03-01 00:00:00"), ("O_LAST", "SUCCESS", "2026-03-01 23:59:59")]
    assert rows[1]["应结订单金额"] == "100.00" and rows[1]["手续费"] == "0.60000" and rows[1]["费率"] == "0.60%"
    assert rows[1]["商品名称"] == "LM-KB 键盘, 黑色" and rows[1]["商户数据包"] == "store=S1"
    assert (rows[1]["商户号"], rows[1]["特约商户号"], rows[1]["公众账号ID"], rows[1]["用户标识"]) == (SP, SUB, APPID, "o_alice")
    assert summary == {"总交易单数": "2", "应结订单总金额": "200.00", "退款总金额": "0.00", "充值券退款总金额": "0.00",
                       "手续费总金额": "1.20000", "订单总金额": "200.00", "申请退款总金额": "0.00"}
    rows, summary = day_bill(sandbox, "2026-03-02")
    assert [(r["商户订单号"], r["交易状态"], r["退款金额"], r["手续费"], r["退款状态"]) for r in rows] == [
        ("O_NEXT", "SUCCESS", "0.00", "0.00000", ""), ("O_LAST", "REFUND", "25.00", "-0.15000", "SUCCESS")]
    assert rows[1]["交易时间"] == "2026-03-02 08:00:00" and rows[1]["申请退款金额"] == "25.00"
    assert day_bill(sandbox, "2026-03-02", "REFUND")[0][0]["退款成功时间"] == "2026-03-02 08:00:05"
    assert day_bill(sandbox, "2026-03-03") is None                                         # nothing that day
    assert day_bill(sandbox, "2026-03-01", "REFUND") is None and day_bill(sandbox, sub="1900000999") is None


def test_a_refund_reads_as_it_stood_at_09_00_the_next_day(sandbox):
    pay_at(sandbox, "2026-03-01 10:00:00", "O_HELD")
    sandbox["faults"].add("refunds_hold", {}, True)
    refund_at(sandbox, "2026-03-01 11:00:00", "O_HELD", "R_HELD", 3000)
    refund_at(sandbox, "2026-03-01 11:05:00", "O_HELD", "R_CLOSED", 1000)
    sandbox["refunds"]._end("R_CLOSED", "CLOSED", beijing("2026-03-01 12:00:00"), ("PROCESSING",), copies=0)
    sandbox["clock"].at = beijing("2026-03-02 09:30:00")
    reply = post(sandbox["refunds"].finish, {"status": "SUCCESS", "notify": "none"}, out_refund_no="R_HELD")
    assert reply.status == 200
    rows, summary = day_bill(sandbox, bill_type="REFUND")
    assert [(r["商户退款单号"], r["退款状态"], r["退款成功时间"], r["手续费"]) for r in rows] == [
        ("R_HELD", "PROCESSING", "", "-0.18000"), ("R_CLOSED", "CLOSED", "", "0.00000")]
    assert summary["退款总金额"] == "40.00" and summary["手续费总金额"] == "-0.18000"


def test_unknown_payment_pays_a_closed_order_for_real_without_a_notification(sandbox):
    sandbox["clock"].at = beijing("2026-03-01 09:00:00")
    post(sandbox["payments"].prepay, {
        "sp_appid": APPID, "sp_mchid": SP, "sub_mchid": SUB, "out_trade_no": "O_CLOSED", "description": "键盘",
        "notify_url": "https://example.com/notify", "amount": {"total": 2000, "currency": "CNY"},
        "payer": {"sp_openid": "o_alice"}})
    sandbox["clock"].at = beijing("2026-03-01 09:20:00")
    post(sandbox["payments"].close, {"sp_mchid": SP, "sub_mchid": SUB}, out_trade_no="O_CLOSED")
    sandbox["clock"].at = beijing("2026-03-01 18:00:00")
    reply = post(sandbox["faults"].post_fault, {"kind": "unknown_payment", "date": "2026-03-01",
                                                "out_trade_no": "O_CLOSED"})
    assert reply.status == 201, reply.body
    fault = json.loads(reply.body)["fault"]
    assert fault["success_time"] == "2026-03-01T12:00:00+08:00" and fault["total_fen"] == 2000
    order = sandbox["payments"].find("O_CLOSED")
    assert (order["trade_state"], order["transaction_id"], order["fee_fen"]) == ("SUCCESS", fault["transaction_id"], 12)
    assert sandbox["merchants"].settings(SUB)["balance_fen"] == 2000 - 12
    rows, _ = day_bill(sandbox)
    assert [(r["商户订单号"], r["微信订单号"], r["订单金额"]) for r in rows] == [("O_CLOSED", fault["transaction_id"], "20.00")]
    again = post(sandbox["faults"].post_fault, {"kind": "unknown_payment", "date": "2026-03-01",
                                                "out_trade_no": "O_CLOSED"})
    assert again.status == 400 and "already paid" in json.loads(again.body)["error"]["message"]
    assert [f["kind"] for f in sandbox["faults"].list()] == ["unknown_payment"]        # the refused one is not kept


def test_unknown_payment_refuses_the_future_a_missing_order_or_a_day_before_it_and_keeps_nothing(sandbox):
    post(sandbox["payments"].prepay, {
        "sp_appid": APPID, "sp_mchid": SP, "sub_mchid": SUB, "out_trade_no": "O_LATER", "description": "键盘",
        "notify_url": "https://example.com/notify", "amount": {"total": 2000, "currency": "CNY"},
        "payer": {"sp_openid": "o_alice"}})                                  # created 2026-03-01 08:00
    for body in ({"date": "2026-03-02"}, {"date": "2026-03-01", "out_trade_no": "NO_SUCH_ORDER"},
                 {"date": "2026-02-28", "out_trade_no": "O_LATER"},
                 {"date": "2026-03-01", "out_trade_no": "O_LATER", "total_fen": 1999}):
        reply = post(sandbox["faults"].post_fault, {"kind": "unknown_payment", **body})
        assert reply.status == 400 and json.loads(reply.body)["error"]["code"] == "INVALID_FAULT"
    assert sandbox["faults"].list() == [] and sandbox["payments"].find("O_LATER")["trade_state"] == "NOTPAY"


def test_an_invented_unknown_payment_and_a_missed_refund_are_real_and_on_their_day(sandbox):
    pay_at(sandbox, "2026-03-01 09:00:00", "O_PAID")
    sandbox["clock"].at = beijing("2026-03-02 15:00:00")
    invented = json.loads(post(sandbox["faults"].post_fault, {
        "kind": "unknown_payment", "date": "2026-03-01", "total_fen": 777, "sub_mchid": "1900000555"}).body)["fault"]
    missed = json.loads(post(sandbox["faults"].post_fault, {
        "kind": "missed_refund", "date": "2026-03-01", "out_trade_no": "O_PAID", "amount_fen": 1000}).body)["fault"]
    assert invented["out_trade_no"].startswith("UNKNOWN20260301") and missed["out_refund_no"].startswith("MISSED2026")
    refund = sandbox["refunds"]._get(missed["out_refund_no"])
    assert (refund["status"], refund["notify_url"], refund["fee_refund_fen"]) == ("SUCCESS", None, 6)
    assert sandbox["payments"].find("O_PAID")["trade_state"] == "REFUND"
    assert sandbox["merchants"].settings(SUB)["balance_fen"] == 10000 - 60 - (1000 - 6)
    rows, summary = day_bill(sandbox)
    assert [(r["商户订单号"], r["特约商户号"], r["交易状态"], r["订单金额"], r["退款金额"], r["交易时间"]) for r in rows] == [
        ("O_PAID", SUB, "SUCCESS", "100.00", "0.00", "2026-03-01 09:00:00"),
        (invented["out_trade_no"], "1900000555", "SUCCESS", "7.77", "0.00", "2026-03-01 12:00:00"),
        ("O_PAID", SUB, "REFUND", "0.00", "10.00", "2026-03-01 12:00:00")]
    assert rows[2]["商户退款单号"] == missed["out_refund_no"] and rows[2]["退款状态"] == "SUCCESS"
    too_much = post(sandbox["faults"].post_fault, {"kind": "missed_refund", "date": "2026-03-01",
                                                   "out_trade_no": "O_PAID", "amount_fen": 9001})
    assert too_much.status == 400


def test_bill_only_faults_change_the_file_and_hold_across_a_restart(sandbox, tmp_path):
    pay_at(sandbox, "2026-03-01 09:00:00", "O_AAAA")
    pay_at(sandbox, "2026-03-01 09:30:00", "O_BBBB", total=5000)
    for body in ({"kind": "amount_differs", "date": "2026-03-01", "out_trade_no": "O_BBBB", "total_fen": 4999},
                 {"kind": "amount_differs", "date": "2026-03-02", "out_trade_no": "O_AAAA", "total_fen": 1},
                 {"kind": "bill_hash_corrupt", "date": "2026-03-01"}):
        assert post(sandbox["faults"].post_fault, body).status == 201

    clock = Clock(beijing("2026-03-02 11:00:00"))
    restarted, *_ = build(sandbox["path"], clock)                      # a new process on the same data
    rows, summary = parse(restarted.trade_bill(date(2026, 3, 1)).decode())
    assert [(r["商户订单号"], r["应结订单金额"], r["订单金额"], r["手续费"]) for r in rows] == [
        ("O_AAAA", "100.00", "100.00", "0.60000"), ("O_BBBB", "49.99", "49.99", "0.30000")]
    assert summary["订单总金额"] == "149.99"
    assert restarted._day_faults("bill_hash_corrupt", date(2026, 3, 1))
    assert not restarted._day_faults("bill_hash_corrupt", date(2026, 3, 2))


def test_a_one_time_bill_fault_acts_on_one_bill(sandbox):
    pay_at(sandbox, "2026-03-01 09:00:00", "O_ONCE")
    sandbox["faults"].add("amount_differs", {"date": "2026-03-01", "out_trade_no": "O_ONCE", "total_fen": 1}, True)
    assert day_bill(sandbox)[0][0]["订单金额"] == "0.01"
    assert day_bill(sandbox)[0][0]["订单金额"] == "100.00"
    assert sandbox["faults"].list() == []


def test_a_one_time_fault_on_a_payment_is_not_used_up_by_a_refund_bill(sandbox):
    pay_at(sandbox, "2026-03-01 09:00:00", "O_TWICE")
    refund_at(sandbox, "2026-03-01 09:10:00", "O_TWICE", "R_TWICE", 100)
    sandbox["faults"].add("amount_differs", {"date": "2026-03-01", "out_trade_no": "O_TWICE", "total_fen": 2}, True)
    assert [r["商户订单号"] for r in day_bill(sandbox, bill_type="REFUND")[0]] == ["O_TWICE"]
    assert day_bill(sandbox, bill_type="SUCCESS")[0][0]["订单金额"] == "0.02"
    assert sandbox["faults"].list() == []
