"""WeChat Pay's bill files (对账单, ``wechatpay-v3.md`` §6-7), written exactly as WeChat
writes them: PURE functions — rows in, lines of text out; no I/O, no sandbox state.
``bills.py`` feeds them from the sandbox's record of each Beijing day.

Every writer yields the file's lines one by one, EACH ENDING WITH ``"\\n"``, so
``"".join(lines)`` is the file (UTF-8, no BOM, ``\\n`` line ends)::

    line 1              detail header, column names separated by "," (no backticks)
    one line per row    every field prefixed with "`" (also empty ones: ",`,")
    second-to-last      summary header (no backticks)
    last                summary values, every field prefixed with "`"

Money is integer fen in, yuan text out, by integer arithmetic only: ``yuan(1) ==
"0.01"``, ``yuan(-18) == "-0.18"``; the trade bill's fee column has five decimals
(``fee_yuan(60) == "0.60000"``) and the rate reads ``0.60%``.

Free text (商品名称, 商户数据包, 描述) is written as WeChat writes it: commas are
LEFT IN, unquoted (no CSV quoting), so "键盘, 黑色" puts a comma inside a field. A
reader therefore splits a detail or summary line on ``",`"`` (after dropping the
line's leading backtick), never on a bare ","; the header lines carry no backticks
and no free text, so they split on ",". To keep that split safe, a line break
(``\\r``, ``\\n``) in free text becomes a space and a backtick becomes ``'`` — the only
changes a writer makes to a value.

Trade bill (交易账单, partner layout; ``trade_bill_lines``). Columns in order:

    ALL      交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,
             交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,
             充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注
    SUCCESS  交易时间,...,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注
    REFUND   as ALL with 退款申请时间,退款成功时间 inserted after 代金券金额

    summary ALL / REFUND  总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
    summary SUCCESS       总交易单数,应结订单总金额,手续费总金额,订单总金额

A payment is a row with 交易状态 ``SUCCESS``: 应结订单金额 = 订单金额 = its total,
微信退款单号 = 商户退款单号 = ``0``, refund amounts ``0.00``, 退款类型/退款状态 empty,
手续费 = the provider's fee. A refund is its own row with 交易状态 ``REFUND``:
应结订单金额 = 订单金额 = ``0.00``, 退款金额 = 申请退款金额 = the refund, 退款类型
``ORIGINAL``, 退款状态 the refund's status, and 手续费 = the part of the fee it gives back,
NEGATIVE (``-0.18000``), as in WeChat's bills, so 手续费总金额 is the fee net of refunds.
The SUCCESS bill keeps the payment rows only, the REFUND bill the refund rows only
(the writer filters ``rows`` by ``trade_state``). Summary values are the column sums
over the rows written; 总交易单数 counts them.

Profit-sharing bill (分账账单; ``profitsharing_bill_lines``). WeChat's own column list
is not captured in our reference (§6 says: parse by header NAME), so the sandbox uses
these realistic names, in this order:

    分账发起时间        when the split (or return) was accepted, Beijing yyyy-MM-dd HH:mm:ss
    分账方商户号        the sub-merchant whose money is split (sub_mchid)
    分账发起方          the service provider that asked (sp_mchid)
    微信订单号          transaction_id
    微信分账/回退单号   WeChat's order_id of the split, or return_id of the return
    分账明细单号        detail_id of the receiver line (empty on a return)
    商户分账/回退单号   out_order_no, or out_return_no
    分账接收方类型      MERCHANT_ID / PERSONAL_OPENID / PERSONAL_SUB_OPENID
    分账接收方          the receiver's account (on a return: return_mchid, who gives back)
    动账金额            yuan, always positive: 业务类型 says which way it moved
    业务类型            分账 or 回退
    处理状态            a split receiver's result PENDING / SUCCESS / CLOSED,
                        a return's result PROCESSING / SUCCESS / FAILED
    描述                the receiver's description, or the return's

    summary  总笔数,分账笔数,分账总金额,回退笔数,回退总金额

One row per split receiver and one per return; the summary sums 动账金额 over the rows
written, per 业务类型, whatever their 处理状态.

All times are Beijing local time without a zone, as WeChat writes them; the rows
carry them already formatted (``bill_time``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
SPLIT = "分账"       # 业务类型 of a split receiver row
RETURN = "回退"      # 业务类型 of a return row
_BEIJING = timezone(timedelta(hours=8))

_ALL_HEAD = ("交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
             "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额")
_REFUND_COLUMNS = ("微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态")
_TAIL = ("商品名称", "商户数据包", "手续费", "费率", "订单金额")

TRADE_BILL_HEADERS: dict[str, tuple[str, ...]] = {
    "ALL": _ALL_HEAD + _REFUND_COLUMNS + _TAIL + ("申请退款金额", "费率备注"),
    "SUCCESS": _ALL_HEAD + _TAIL + ("费率备注",),
    "REFUND": _ALL_HEAD + ("退款申请时间", "退款成功时间") + _REFUND_COLUMNS + _TAIL + ("申请退款金额", "费率备注"),
}
_FULL_SUMMARY = ("总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
                 "申请退款总金额")
TRADE_SUMMARY_HEADERS: dict[str, tuple[str, ...]] = {
    "ALL": _FULL_SUMMARY,
    "SUCCESS": ("总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"),
    "REFUND": _FULL_SUMMARY,
}
PROFITSHARING_BILL_HEADER = ("分账发起时间", "分账方商户号", "分账发起方", "微信订单号", "微信分账/回退单号",
                             "分账明细单号", "商户分账/回退单号", "分账接收方类型", "分账接收方", "动账金额",
                             "业务类型", "处理状态", "描述")
PROFITSHARING_SUMMARY_HEADER = ("总笔数", "分账笔数", "分账总金额", "回退笔数", "回退总金额")


@dataclass(frozen=True, slots=True)
class TradeBillRow:
    """One line of a trade bill. Amounts are integer fen; times Beijing
    ``yyyy-MM-dd HH:mm:ss`` strings (``bill_time``); ``fee_fen`` is signed (negative
    on a refund row: the fee it gives back)."""
    trade_time: str                      # 交易时间: payment success time, or refund request time
    appid: str                           # 公众账号ID
    mchid: str                           # 商户号 (the service provider)
    sub_mchid: str                       # 特约商户号
    transaction_id: str                  # 微信订单号
    out_trade_no: str                    # 商户订单号
    openid: str                          # 用户标识
    trade_state: str                     # 交易状态: SUCCESS (a payment) or REFUND (a refund)
    settlement_total_fen: int            # 应结订单金额 (0 on a refund row)
    total_fen: int                       # 订单金额 (0 on a refund row)
    fee_fen: int                         # 手续费, signed
    description: str = ""                # 商品名称
    attach: str = ""                     # 商户数据包
    refund_id: str = "0"                 # 微信退款单号 ("0" on a payment row)
    out_refund_no: str = "0"             # 商户退款单号
    refund_fen: int = 0                  # 退款金额
    refund_requested_fen: int = 0        # 申请退款金额
    refund_type: str = ""                # 退款类型: ORIGINAL on a refund row
    refund_status: str = ""              # 退款状态: SUCCESS / PROCESSING / ABNORMAL / CLOSED
    refund_requested_time: str = ""      # 退款申请时间 (REFUND bill)
    refund_success_time: str = ""        # 退款成功时间 (REFUND bill; empty until it succeeded)
    device_info: str = ""                # 设备号
    trade_type: str = "JSAPI"            # 交易类型
    bank_type: str = "OTHERS"            # 付款银行
    currency: str = "CNY"                # 货币种类
    coupon_fen: int = 0                  # 代金券金额
    recharge_coupon_refund_fen: int = 0  # 充值券退款金额
    rate: str = "0.60%"                  # 费率
    rate_note: str = ""                  # 费率备注


@dataclass(frozen=True, slots=True)
class ProfitSharingBillRow:
    """One line of a profit-sharing bill: a split receiver (业务类型 分账) or a return (回退)."""
    time: str                  # 分账发起时间
    sub_mchid: str             # 分账方商户号
    sp_mchid: str              # 分账发起方
    transaction_id: str        # 微信订单号
    order_id: str              # 微信分账/回退单号 (order_id, or return_id)
    detail_id: str             # 分账明细单号 ("" on a return)
    out_no: str                # 商户分账/回退单号 (out_order_no, or out_return_no)
    receiver_type: str         # 分账接收方类型
    receiver: str              # 分账接收方
    amount_fen: int            # 动账金额, positive
    business_type: str         # 业务类型: SPLIT (分账) or RETURN (回退)
    status: str                # 处理状态
    description: str = ""      # 描述


# -- formatting ------------------------------------------------------------------------------------

def yuan(fen: int) -> str:
    """Integer fen -> yuan with two decimals, exactly: 1 -> 0.01, -18 -> -0.18."""
    if fen >= 0:
        return f"{fen // 100}.{fen % 100:02d}"
    fen = -fen
    return f"-{fen // 100}.{fen % 100:02d}"


def fee_yuan(fen: int) -> str:
    """The trade bill's fee column: yuan with five decimals, 60 -> 0.60000, -18 -> -0.18000."""
    if fen >= 0:
        return f"{fen // 100}.{fen % 100:02d}000"
    fen = -fen
    return f"-{fen // 100}.{fen % 100:02d}000"


def bill_time(timestamp: float) -> str:
    """A Unix time -> Beijing ``yyyy-MM-dd HH:mm:ss`` (bills carry no zone)."""
    return datetime.fromtimestamp(timestamp, _BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def free_text(value: str) -> str:
    """Free text as a bill field: line breaks -> space, backtick -> ' (commas stay)."""
    if "`" in value or "\n" in value or "\r" in value:
        return value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("`", "'")
    return value


class _Formatted(dict):
    """A memo of one formatter for the amounts that recur (|fen| < 100,000: at most 200,000
    short strings): a bill of a million rows formats each amount by one dict lookup."""
    __slots__ = ("_format",)

    def __init__(self, format_fen):
        super().__init__()
        self._format = format_fen

    def __missing__(self, fen: int) -> str:
        text = self._format(fen)
        if -100_000 < fen < 100_000:
            self[fen] = text
        return text


_YUAN = _Formatted(yuan)
_FEE = _Formatted(fee_yuan)


def _header(names: tuple[str, ...]) -> str:
    return ",".join(names) + "\n"


# -- trade bill --------------------------------------------------------------------------------------

def trade_bill_lines(rows: Iterable[TradeBillRow], bill_type: str = "ALL") -> Iterator[str]:
    """The trade bill of ``bill_type`` (ALL / SUCCESS / REFUND) for ``rows``, line by line
    (each line ends with a newline). SUCCESS keeps the payment rows, REFUND the refund rows."""
    if bill_type not in BILL_TYPES:
        raise ValueError(f"bill_type is one of {', '.join(BILL_TYPES)}, not {bill_type!r}")
    y, f, t = _YUAN, _FEE, free_text
    count = settled = refunded = coupon_refunded = fees = total = asked = 0
    yield _header(TRADE_BILL_HEADERS[bill_type])
    if bill_type == "ALL":
        for r in rows:
            count += 1
            settled += r.settlement_total_fen
            refunded += r.refund_fen
            coupon_refunded += r.recharge_coupon_refund_fen
            fees += r.fee_fen
            total += r.total_fen
            asked += r.refund_requested_fen
            yield (f"`{r.trade_time},`{r.appid},`{r.mchid},`{r.sub_mchid},`{r.device_info},`{r.transaction_id},"
                   f"`{r.out_trade_no},`{r.openid},`{r.trade_type},`{r.trade_state},`{r.bank_type},`{r.currency},"
                   f"`{y[r.settlement_total_fen]},`{y[r.coupon_fen]},`{r.refund_id},`{r.out_refund_no},"
                   f"`{y[r.refund_fen]},`{y[r.recharge_coupon_refund_fen]},`{r.refund_type},`{r.refund_status},"
                   f"`{t(r.description)},`{t(r.attach)},`{f[r.fee_fen]},`{r.rate},`{y[r.total_fen]},"
                   f"`{y[r.refund_requested_fen]},`{r.rate_note}\n")
    elif bill_type == "SUCCESS":
        for r in rows:
            if r.trade_state != "SUCCESS":
                continue
            count += 1
            settled += r.settlement_total_fen
            fees += r.fee_fen
            total += r.total_fen
            yield (f"`{r.trade_time},`{r.appid},`{r.mchid},`{r.sub_mchid},`{r.device_info},`{r.transaction_id},"
                   f"`{r.out_trade_no},`{r.openid},`{r.trade_type},`{r.trade_state},`{r.bank_type},`{r.currency},"
                   f"`{y[r.settlement_total_fen]},`{y[r.coupon_fen]},`{t(r.description)},`{t(r.attach)},"
                   f"`{f[r.fee_fen]},`{r.rate},`{y[r.total_fen]},`{r.rate_note}\n")
    else:
        for r in rows:
            if r.trade_state != "REFUND":
                continue
            count += 1
            settled += r.settlement_total_fen
            refunded += r.refund_fen
            coupon_refunded += r.recharge_coupon_refund_fen
            fees += r.fee_fen
            total += r.total_fen
            asked += r.refund_requested_fen
            yield (f"`{r.trade_time},`{r.appid},`{r.mchid},`{r.sub_mchid},`{r.device_info},`{r.transaction_id},"
                   f"`{r.out_trade_no},`{r.openid},`{r.trade_type},`{r.trade_state},`{r.bank_type},`{r.currency},"
                   f"`{y[r.settlement_total_fen]},`{y[r.coupon_fen]},`{r.refund_requested_time},"
                   f"`{r.refund_success_time},`{r.refund_id},`{r.out_refund_no},`{y[r.refund_fen]},"
                   f"`{y[r.recharge_coupon_refund_fen]},`{r.refund_type},`{r.refund_status},`{t(r.description)},"
                   f"`{t(r.attach)},`{f[r.fee_fen]},`{r.rate},`{y[r.total_fen]},`{y[r.refund_requested_fen]},"
                   f"`{r.rate_note}\n")
    yield _header(TRADE_SUMMARY_HEADERS[bill_type])
    if bill_type == "SUCCESS":
        yield f"`{count},`{y[settled]},`{f[fees]},`{y[total]}\n"
    else:
        yield (f"`{count},`{y[settled]},`{y[refunded]},`{y[coupon_refunded]},`{f[fees]},`{y[total]},"
               f"`{y[asked]}\n")


# -- profit-sharing bill -----------------------------------------------------------------------------

def profitsharing_bill_lines(rows: Iterable[ProfitSharingBillRow]) -> Iterator[str]:
    """The profit-sharing bill for ``rows``, line by line (each line ends with a newline)."""
    y, t = _YUAN, free_text
    count = splits = split_fen = returns = return_fen = 0
    yield _header(PROFITSHARING_BILL_HEADER)
    for r in rows:
        count += 1
        if r.business_type == RETURN:
            returns += 1
            return_fen += r.amount_fen
        else:
            splits += 1
            split_fen += r.amount_fen
        yield (f"`{r.time},`{r.sub_mchid},`{r.sp_mchid},`{r.transaction_id},`{r.order_id},`{r.detail_id},"
               f"`{r.out_no},`{r.receiver_type},`{r.receiver},`{y[r.amount_fen]},`{r.business_type},`{r.status},"
               f"`{t(r.description)}\n")
    yield _header(PROFITSHARING_SUMMARY_HEADER)
    yield f"`{count},`{splits},`{y[split_fen]},`{returns},`{y[return_fen]}\n"


def encode(lines: Iterable[str]) -> bytes:
    """The file's bytes: the lines joined, UTF-8."""
    return "".join(lines).encode("utf-8")
