"""Reading WeChat Pay's bills (chalicelib/domain/bills.py): pure, exact to the fen."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.bills import (PAYMENT, REFUND, RETURN, SPLIT, BillMalformed, available_at, beijing_epoch,
                                     check, fen_to_yuan, parse_sharing_bill, parse_trade_bill, retry_at, yuan_to_fen)

ALL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
              "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
              "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
ALL_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
PAYMENT_LINE = ("`2025-01-01 10:00:05,`wx0000000000000001,`1900000001,`1900000109,`,`4200000000202501010000000001,"
                "`O20250101000001,`oUser,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.90,`0.00,`0,`0,`0.00,`0.00,`,`,"
                "`键盘, 黑色 x1,`store=st-1,`0.12000,`0.60%,`19.90,`0.00,`")
SECOND_PAYMENT = ("`2025-01-01 11:30:00,`wx0000000000000001,`1900000001,`1900000110,`,`4200000000202501010000000002,"
                  "`O20250101000002,`oUser2,`JSAPI,`SUCCESS,`OTHERS,`CNY,`1234.56,`0.00,`0,`0,`0.00,`0.00,`,`,"
                  "`Sofa,`store=st-2,`7.41000,`0.60%,`1234.56,`0.00,`")
REFUND_LINE = ("`2025-01-01 20:15:00,`wx0000000000000001,`1900000001,`1900000109,`,`4200000000202501010000000001,"
               "`O20250101000001,`oUser,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000002025010100000001,"
               "`O20250101000001-R1,`5.00,`0.00,`ORIGINAL,`PROCESSING,`键盘, 黑色 x1,`,`-0.03000,`0.60%,`0.00,`5.00,`")
ALL_TOTALS = "`3,`1254.46,`5.00,`0.00,`7.50000,`1254.46,`5.00"


def bill(*lines: str) -> list[str]:
    """A file's lines as a text file yields them."""
    return [line + "\n" for line in lines]


def all_bill(totals: str = ALL_TOTALS, rows=(PAYMENT_LINE, SECOND_PAYMENT, REFUND_LINE)) -> list[str]:
    return bill(ALL_HEADER, *rows, ALL_SUMMARY, totals)


def read(parser, lines):
    rows = parser(lines)
    out = []
    while True:
        try:
            out.append(next(rows))
        except StopIteration as done:
            return out, done.value


# --- yuan -> fen

@pytest.mark.parametrize("text, fen", [
    ("19.90", 1990), ("0.12000", 12), ("0.00000", 0), ("-0.18000", -18), ("-0.05", -5), ("1234.56", 123456),
    ("0.0", 0), ("0.5", 50), ("3", 300), ("-0.00", 0), ("007.50", 750), ("99999999999.99", 9999999999999),
])
def test_yuan_to_fen_is_exact(text, fen):
    assert yuan_to_fen(text) == fen
    assert type(yuan_to_fen(text)) is int


@pytest.mark.parametrize("text", ["0.123", "0.12300", "0.00001", "-0.18001"])
def test_a_digit_beyond_the_fen_is_an_error(text):
    with pytest.raises(ValueError, match="part of a fen"):
        yuan_to_fen(text)


@pytest.mark.parametrize("text", ["", " 1.00", "1.00 ", "+1.00", "1.", ".5", "1e3", "1,000.00", "1_000.00",
                                  "１.00", "--1.00", "1.2.3", "NaN", "¥1.00", None, 1.5, 100])
def test_anything_but_yuan_text_is_an_error(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


@given(st.integers(-10**13, 10**13), st.integers(2, 6))
def test_yuan_written_from_any_fen_reads_back_exactly(fen, decimals):
    assert yuan_to_fen(fen_to_yuan(fen, decimals)) == fen


@given(st.integers(0, 10**12), st.integers(1, 9), st.integers(0, 3))
def test_any_non_zero_digit_beyond_the_fen_is_refused(fen, digit, zeros):
    with pytest.raises(ValueError):
        yuan_to_fen(fen_to_yuan(fen) + "0" * zeros + str(digit))


def test_a_memo_of_amounts_stays_bounded_and_gives_the_same_fen():
    from chalicelib.domain import bills

    memo = {}
    for fen in range(bills._MEMO_LIMIT + 10):
        assert bills._fen_of(fen_to_yuan(fen), memo) == fen
        assert len(memo) <= bills._MEMO_LIMIT


def test_fen_to_yuan_writes_as_bills_do():
    assert [fen_to_yuan(1990), fen_to_yuan(12, 5), fen_to_yuan(-18, 5), fen_to_yuan(0), fen_to_yuan(1)] == \
        ["19.90", "0.12000", "-0.18000", "0.00", "0.01"]


# --- the trade bill

def test_an_all_bill_reads_fen_for_fen():
    rows, totals = read(parse_trade_bill, all_bill())

    payment, second, refund = rows
    assert payment._asdict() == {
        "kind": PAYMENT, "trade_time": "2025-01-01 10:00:05", "sub_mchid": "1900000109",
        "transaction_id": "4200000000202501010000000001", "out_trade_no": "O20250101000001", "refund_id": "",
        "out_refund_no": "", "status": "SUCCESS", "refund_status": "", "settlement_total_fen": 1990,
        "order_total_fen": 1990, "refund_fen": 0, "requested_refund_fen": 0, "fee_fen": 12, "attach": "store=st-1",
        "line": 2}
    assert (second.sub_mchid, second.settlement_total_fen, second.fee_fen, second.line) == \
        ("1900000110", 123456, 741, 3)
    assert refund._asdict() == {
        "kind": REFUND, "trade_time": "2025-01-01 20:15:00", "sub_mchid": "1900000109",
        "transaction_id": "4200000000202501010000000001", "out_trade_no": "O20250101000001",
        "refund_id": "50300000002025010100000001", "out_refund_no": "O20250101000001-R1", "status": "REFUND",
        "refund_status": "PROCESSING", "settlement_total_fen": 0, "order_total_fen": 0, "refund_fen": 500,
        "requested_refund_fen": 500, "fee_fen": -3, "attach": "", "line": 4}
    assert totals.rows == 3
    assert totals.summary == {"总交易单数": 3, "应结订单总金额": 125446, "退款总金额": 500, "充值券退款总金额": 0,
                              "手续费总金额": 750, "订单总金额": 125446, "申请退款总金额": 500}
    assert check(parse_trade_bill(all_bill())) == totals


def test_rows_are_small_immutable_tuples_without_a_dict_and_with_times_as_epoch():
    row = next(parse_trade_bill(all_bill()))
    assert not hasattr(row, "__dict__")
    with pytest.raises(AttributeError):
        row.fee_fen = 0
    assert row.trade_ts == int(datetime(2025, 1, 1, 2, 0, 5, tzinfo=timezone.utc).timestamp())


def test_a_comma_in_free_text_stays_in_its_field_and_backticks_are_stripped():
    payment = next(parse_trade_bill(all_bill()))
    assert payment.attach == "store=st-1" and "`" not in "".join(str(v) for v in payment)


def test_success_and_refund_bills_read_through_the_same_table():
    success_header = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
                      "货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注")
    success = bill(success_header,
                   "`2025-01-01 10:00:05,`wx1,`1900000001,`1900000109,`,`4200000001,`O1,`oU,`JSAPI,`SUCCESS,`OTHERS,"
                   "`CNY,`19.90,`0.00,`Desk,`store=st-1,`0.12000,`0.60%,`19.90,`",
                   "总交易单数,应结订单总金额,手续费总金额,订单总金额", "`1,`19.90,`0.12000,`19.90")
    [row], totals = read(parse_trade_bill, success)
    assert (row.kind, row.settlement_total_fen, row.order_total_fen, row.fee_fen, row.refund_fen, row.attach) == \
        (PAYMENT, 1990, 1990, 12, 0, "store=st-1")
    assert totals.summary == {"总交易单数": 1, "应结订单总金额": 1990, "手续费总金额": 12, "订单总金额": 1990}

    refund_header = ALL_HEADER.replace("代金券金额,", "代金券金额,退款申请时间,退款成功时间,")
    refund = bill(refund_header,
                  "`2025-01-01 20:15:00,`wx1,`1900000001,`1900000109,`,`4200000001,`O1,`oU,`JSAPI,`REFUND,`OTHERS,"
                  "`CNY,`0.00,`0.00,`2025-01-01 20:15:00,`2025-01-01 20:15:09,`5030001,`O1-R1,`19.90,`0.00,"
                  "`ORIGINAL,`SUCCESS,`Desk,`,`-0.12000,`0.60%,`0.00,`19.90,`",
                  ALL_SUMMARY, "`1,`0.00,`19.90,`0.00,`-0.12000,`0.00,`19.90")
    [row], _ = read(parse_trade_bill, refund)
    assert (row.kind, row.refund_id, row.out_refund_no, row.refund_fen, row.requested_refund_fen, row.fee_fen,
            row.refund_status) == (REFUND, "5030001", "O1-R1", 1990, 1990, -12, "SUCCESS")


def test_columns_are_found_by_their_header_name_not_their_place():
    header = ALL_HEADER.split(",")
    order = list(reversed(range(len(header))))

    def reorder(line: str) -> str:
        fields = line[1:].split(",`")
        return "`" + ",`".join(fields[i] for i in order)

    shuffled = bill(",".join(header[i] for i in order), *(reorder(r) for r in (PAYMENT_LINE, SECOND_PAYMENT,
                                                                               REFUND_LINE)),
                    ALL_SUMMARY, ALL_TOTALS)
    assert [r._replace(line=0) for r in parse_trade_bill(shuffled)] == \
        [r._replace(line=0) for r in parse_trade_bill(all_bill())]


def test_the_older_layout_without_settlement_and_coupon_columns_reads_the_order_total_as_settled():
    def old(line: str) -> str:   # drop 应结订单金额 (index 12) and 代金券金额 (13)
        fields = line[1:].split(",`")
        return "`" + ",`".join(fields[:12] + fields[14:])

    header = ALL_HEADER.replace("应结订单金额,代金券金额,", "")
    rows, totals = read(parse_trade_bill, bill(header, old(PAYMENT_LINE), old(REFUND_LINE),
                                               "总交易单数,退款总金额,手续费总金额,订单总金额", "`2,`5.00,`0.09000,`19.90"))
    assert [(r.kind, r.settlement_total_fen, r.order_total_fen, r.refund_fen, r.fee_fen) for r in rows] == \
        [(PAYMENT, 1990, 1990, 0, 12), (REFUND, 0, 0, 500, -3)]
    assert totals.summary == {"总交易单数": 2, "退款总金额": 500, "手续费总金额": 9, "订单总金额": 1990}


def test_the_v2_layout_with_a_single_total_column_reads_it_as_both_totals():
    header = ("交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
              "总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,"
              "商户数据包,手续费,费率")
    line = ("`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,"
            "`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,"
            "`订单额外描述,`0,`0.60%")
    [row], totals = read(parse_trade_bill, bill(header, line, "总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额",
                                                "`1,`0.01,`0.0,`0.0,`0"))
    assert (row.sub_mchid, row.settlement_total_fen, row.order_total_fen, row.requested_refund_fen) == ("0", 1, 1, 0)
    assert totals.rows == 1


# --- the summary is checked

@pytest.mark.parametrize("position, column", [(1, "应结订单总金额"), (2, "退款总金额"), (3, "充值券退款总金额"),
                                              (4, "手续费总金额"), (5, "订单总金额"), (6, "申请退款总金额")])
def test_a_changed_summary_total_is_caught_and_named(position, column):
    values = ALL_TOTALS.split(",")
    values[position] = "`" + fen_to_yuan(yuan_to_fen(values[position][1:]) + 1)
    rows = parse_trade_bill(all_bill(",".join(values)))
    with pytest.raises(BillMalformed) as caught:
        check(rows)
    assert caught.value.column == column and caught.value.line == 6
    assert column in caught.value.message and "add up" in caught.value.message


def test_a_missing_row_is_caught_by_the_count():
    with pytest.raises(BillMalformed, match="总交易单数 is 3 but the rows add up to 2"):
        check(parse_trade_bill(all_bill(rows=(PAYMENT_LINE, REFUND_LINE))))


def test_a_row_whose_amount_changed_is_caught():
    changed = PAYMENT_LINE.replace("`19.90,`0.00,`0,", "`19.80,`0.00,`0,")
    with pytest.raises(BillMalformed, match="应结订单总金额"):
        check(parse_trade_bill(all_bill(rows=(changed, SECOND_PAYMENT, REFUND_LINE))))


@pytest.mark.parametrize("lines, line, column, message", [
    (bill(ALL_HEADER, PAYMENT_LINE + ",`extra", ALL_SUMMARY, ALL_TOTALS), 2, None, "28 fields where the header has 27"),
    (bill(ALL_HEADER, PAYMENT_LINE.replace(",`0.12000,", ",`0.12300,"), ALL_SUMMARY, ALL_TOTALS), 2, "手续费",
     "part of a fen"),
    (bill(ALL_HEADER, SECOND_PAYMENT, PAYMENT_LINE.replace("`19.90,`0.00,`0,", "`19.9O,`0.00,`0,"), ALL_SUMMARY,
          ALL_TOTALS), 3, "应结订单金额", "not an amount"),
    (bill(ALL_HEADER, PAYMENT_LINE.replace("`SUCCESS,", "`CLOSED,"), ALL_SUMMARY, ALL_TOTALS), 2, "交易状态",
     "unknown 交易状态"),
    (bill(ALL_HEADER, PAYMENT_LINE, "", REFUND_LINE, ALL_SUMMARY, ALL_TOTALS), 3, None, "empty line"),
    (bill(ALL_HEADER, PAYMENT_LINE, SECOND_PAYMENT), 3, None, "without its summary"),
    (bill(ALL_HEADER, PAYMENT_LINE, ALL_SUMMARY), 3, None, "no values"),
    (bill(ALL_HEADER, PAYMENT_LINE, ALL_SUMMARY, "`1,`19.90", ""), 4, None, "2 values for 7 columns"),
    (bill(ALL_HEADER, PAYMENT_LINE, ALL_SUMMARY, "`1,`19.90,`0.00,`0.00,`0.12000,`19.90,`0.00", "`1"), 5, None,
     "after the summary"),
    (bill(ALL_HEADER, PAYMENT_LINE, ALL_SUMMARY, "`one,`19.90,`0.00,`0.00,`0.12000,`19.90,`0.00"), 4, "总交易单数",
     "bad summary count"),
    (bill(ALL_HEADER.replace("手续费,", "服务费,"), PAYMENT_LINE), 1, "手续费", "no column 手续费"),
    (bill("", ALL_HEADER), 1, None, "starts with an empty line"),
])
def test_a_malformed_bill_raises_naming_the_line(lines, line, column, message):
    with pytest.raises(BillMalformed) as caught:
        check(parse_trade_bill(lines))
    assert caught.value.line == line and caught.value.column == column
    assert message in caught.value.message and f"line {line}" in caught.value.message
    assert caught.value.code == "BILL_MALFORMED"


def test_an_empty_file_is_malformed():
    with pytest.raises(BillMalformed, match="empty"):
        check(parse_trade_bill([]))


def test_a_day_with_no_rows_but_its_summary_reads():
    assert check(parse_trade_bill(bill(ALL_HEADER, ALL_SUMMARY, "`0,`0.00,`0.00,`0.00,`0.00000,`0.00,`0.00"))).rows == 0


def test_fields_that_lack_their_backtick_are_tolerated_when_the_row_still_splits_right():
    bare = PAYMENT_LINE.replace("`键盘, 黑色 x1", "`Desk").replace(",`wx0000000000000001", ",wx0000000000000001")
    no_first = PAYMENT_LINE.replace("`键盘, 黑色 x1", "`Desk")[1:]
    for line in (bare, no_first):
        [row], _ = read(parse_trade_bill, bill(ALL_HEADER, line, ALL_SUMMARY,
                                               "`1,`19.90,`0.00,`0.00,`0.12000,`19.90,`0.00"))
        assert (row.transaction_id, row.settlement_total_fen, row.fee_fen) == ("4200000000202501010000000001", 1990, 12)


def test_windows_line_ends_and_a_byte_order_mark_are_read():
    lines = ["\ufeff" + ALL_HEADER + "\r\n"] + [line.replace("\n", "\r\n") for line in all_bill()[1:]]
    assert check(parse_trade_bill(lines)).rows == 3


def test_the_parser_streams_rows_before_the_file_ends():
    def endless():
        yield ALL_HEADER + "\n"
        for n in itertools.count():
            yield PAYMENT_LINE.replace("O20250101000001", f"O{n:014d}") + "\n"

    first = list(itertools.islice(parse_trade_bill(endless()), 1000))
    assert len(first) == 1000 and first[-1].out_trade_no == f"O{999:014d}"


def test_rows_before_a_malformed_line_are_yielded_then_it_raises():
    rows = parse_trade_bill(bill(ALL_HEADER, PAYMENT_LINE, PAYMENT_LINE + ",`x", ALL_SUMMARY, ALL_TOTALS))
    assert next(rows).line == 2
    with pytest.raises(BillMalformed):
        next(rows)


# --- the profit-sharing bill

SHARING_HEADER = ("分账发起时间,分账方商户号,分账发起方,微信订单号,微信分账/回退单号,分账明细单号,商户分账/回退单号,分账接收方类型,"
                  "分账接收方,动账金额,业务类型,处理状态,描述")
SHARING_SUMMARY = "总笔数,分账笔数,分账总金额,回退笔数,回退总金额"
SPLIT_LINES = (
    "`2025-01-02 10:01:00,`1900000109,`1900000001,`4200000001,`30000001,`D1,`O1-S1,`MERCHANT_ID,`1900002002,"
    "`3.00,`分账,`SUCCESS,`brand share, O1",
    "`2025-01-02 10:01:00,`1900000109,`1900000001,`4200000001,`30000001,`D2,`O1-S1,`PERSONAL_OPENID,`o_p1,"
    "`0.45,`分账,`CLOSED,`commission",
    "`2025-01-02 15:00:00,`1900000109,`1900000001,`4200000001,`R0001,`,`O1-R1,`MERCHANT_ID,`1900002002,"
    "`1.00,`回退,`SUCCESS,`refund O1",
)


def test_a_profit_sharing_bill_reads_splits_and_returns():
    rows, totals = read(parse_sharing_bill, bill(SHARING_HEADER, *SPLIT_LINES, SHARING_SUMMARY,
                                                 "`3,`2,`3.45,`1,`1.00"))
    brand, promoter, back = rows
    assert brand._asdict() == {
        "kind": SPLIT, "time": "2025-01-02 10:01:00", "sub_mchid": "1900000109", "transaction_id": "4200000001",
        "order_id": "30000001", "detail_id": "D1", "out_no": "O1-S1", "receiver_type": "MERCHANT_ID",
        "receiver": "1900002002", "amount_fen": 300, "status": "SUCCESS", "description": "brand share, O1", "line": 2}
    assert (promoter.kind, promoter.amount_fen, promoter.status, promoter.out_order_no) == \
        (SPLIT, 45, "CLOSED", "O1-S1")
    assert (back.kind, back.amount_fen, back.out_return_no, back.out_order_no, back.detail_id) == \
        (RETURN, 100, "O1-R1", "", "")
    assert back.ts == beijing_epoch("2025-01-02 15:00:00")
    assert totals.summary == {"总笔数": 3, "分账笔数": 2, "分账总金额": 345, "回退笔数": 1, "回退总金额": 100}


@pytest.mark.parametrize("summary, column", [("`3,`2,`3.46,`1,`1.00", "分账总金额"), ("`3,`3,`3.45,`1,`1.00", "分账笔数"),
                                             ("`3,`2,`3.45,`1,`0.99", "回退总金额"), ("`2,`2,`3.45,`1,`1.00", "总笔数")])
def test_a_profit_sharing_summary_that_does_not_add_up_is_caught(summary, column):
    with pytest.raises(BillMalformed) as caught:
        check(parse_sharing_bill(bill(SHARING_HEADER, *SPLIT_LINES, SHARING_SUMMARY, summary)))
    assert caught.value.column == column


def test_an_unknown_business_type_in_a_profit_sharing_bill_is_malformed():
    with pytest.raises(BillMalformed, match="业务类型") as caught:
        check(parse_sharing_bill(bill(SHARING_HEADER, SPLIT_LINES[0].replace("`分账,", "`转账,"), SHARING_SUMMARY,
                                      "`1,`1,`3.00,`0,`0.00")))
    assert caught.value.line == 2


# --- the bills the sandbox writes read back exactly

def test_the_sandboxs_bills_read_back_fen_for_fen():
    bill_files = pytest.importorskip("infra.local.sandbox.bill_files")
    rows = [bill_files.TradeBillRow("2025-01-01 10:00:05", "wx1", "1900000001", "1900000109", "4200000001", "O1",
                                    "oU", "SUCCESS", 1990, 1990, 12, description="键盘, 黑色`", attach="store=st-1"),
            bill_files.TradeBillRow("2025-01-01 11:00:00", "wx1", "1900000001", "1900000110", "4200000002", "O2",
                                    "oV", "SUCCESS", 5, 5, 0),
            bill_files.TradeBillRow("2025-01-01 20:00:00", "wx1", "1900000001", "1900000109", "4200000001", "O1",
                                    "oU", "REFUND", 0, 0, -3, refund_id="503001", out_refund_no="O1-R1",
                                    refund_fen=500, refund_requested_fen=500, refund_type="ORIGINAL",
                                    refund_status="SUCCESS")]
    for bill_type, kept in (("ALL", rows), ("SUCCESS", rows[:2]), ("REFUND", rows[2:])):
        parsed, totals = read(parse_trade_bill, list(bill_files.trade_bill_lines(rows, bill_type)))
        assert [(p.transaction_id, p.out_trade_no, p.sub_mchid, p.settlement_total_fen, p.order_total_fen,
                 p.refund_fen, p.requested_refund_fen, p.fee_fen, p.attach, p.refund_id or "0") for p in parsed] == \
            [(r.transaction_id, r.out_trade_no, r.sub_mchid, r.settlement_total_fen, r.total_fen, r.refund_fen,
              r.refund_requested_fen, r.fee_fen, r.attach, r.refund_id) for r in kept]
        assert totals.rows == len(kept)

    splits = [bill_files.ProfitSharingBillRow("2025-01-02 10:01:00", "1900000109", "1900000001", "4200000001",
                                              "30000001", "D1", "O1-S1", "MERCHANT_ID", "1900002002", 300, "分账",
                                              "SUCCESS", "brand, share"),
              bill_files.ProfitSharingBillRow("2025-01-02 15:00:00", "1900000109", "1900000001", "4200000001",
                                              "R1", "", "O1-R1", "MERCHANT_ID", "1900002002", 100, "回退", "SUCCESS")]
    parsed, totals = read(parse_sharing_bill, list(bill_files.profitsharing_bill_lines(splits)))
    assert [(p.kind, p.out_no, p.amount_fen, p.description) for p in parsed] == \
        [(SPLIT, "O1-S1", 300, "brand, share"), (RETURN, "O1-R1", 100, "")]
    assert totals.summary["分账总金额"] == 300 and totals.summary["回退总金额"] == 100


# --- when a bill can be had

def test_a_days_bill_opens_at_ten_beijing_the_day_after():
    opens = available_at(date(2025, 1, 1))
    assert datetime.fromtimestamp(opens, timezone.utc) == datetime(2025, 1, 2, 2, 0, tzinfo=timezone.utc)
    assert retry_at(date(2025, 1, 1), opens - 3600) == opens           # too early: come back at 10:00 D+1
    assert retry_at(date(2025, 1, 1), opens + 60) == opens + 60 + 1800  # still being made: in 30 minutes


@pytest.mark.parametrize("text", ["2025-01-01T10:00:05", "2025-13-01 10:00:05", "2025-01-01 10:00", "", None])
def test_bill_times_are_strict(text):
    with pytest.raises(ValueError):
        beijing_epoch(text)
