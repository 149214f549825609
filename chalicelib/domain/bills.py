"""WeChat Pay's bills, read (wechatpay-v3.md §6 and §7). Pure: lines of text in, rows out.

A bill file is::

    line 1           detail header: column names joined by "," (no backticks)
    one line a row   every field prefixed with "`" (Excel would otherwise show ids as 4.2E+27)
    second-to-last   summary header (no backticks)
    last             summary values, backtick-prefixed

Columns are found BY HEADER NAME, through one table per bill (``TRADE_COLUMNS``,
``SHARING_COLUMNS``; the summaries' in ``TRADE_SUMMARY``, ``SHARING_SUMMARY``): the trade
bill's ALL, SUCCESS and REFUND layouts, and the older layout without 应结订单金额 /
代金券金额, all read through the same table; adjusting to a renamed column is one edit there.

Free text (商品名称, 商户数据包, 描述) may hold commas, unquoted: a row is split on ",`"
(after its leading backtick), never on a bare ",". A row whose fields do not all carry
the backtick (WeChat's profit-sharing bills lacked some until 2025-01-15) is read field
by field on "," instead, if that gives the header's number of fields.

Money: amounts are yuan text, turned into int fen by ``yuan_to_fen`` (integer arithmetic,
never float; a digit beyond the fen that is not 0 is an error). The parsers are generators:
nothing is kept per row, the summary is checked against running sums when the last line
is read (count and every total), and a generator's return value is the ``BillTotals``.
A bill that does not read (wrong number of fields, a bad amount, an unknown status, a
summary that does not add up, no summary) raises ``BillMalformed`` naming the line and,
where there is one, the column — after the rows before it were yielded, so a caller that
must not act on a bad bill reads it through once first (``check``), as the bills use case does.

Speed: a million-row ALL bill parses at a few hundred thousand rows a second in CPython
(``bench/bill_parse.py``): one ``str.split`` per line, one ``itemgetter`` for the columns
used, amounts converted once per distinct text (a bounded memo: a national price recurs
on every order), no dict per row.
"""
from __future__ import annotations

import re
from calendar import timegm
from collections import deque
from operator import itemgetter
from typing import Iterable, Iterator, NamedTuple

from chalicelib.errors import StoreLinkError

# Kinds of rows
PAYMENT = "PAYMENT"     # trade bill, 交易状态 SUCCESS: a payment, on the day it succeeded
REFUND = "REFUND"       # trade bill, 交易状态 REFUND: a refund, on the day it was asked for (not when it succeeded)
SPLIT = "SPLIT"         # profit-sharing bill, 业务类型 分账: one receiver's line of a split order
RETURN = "RETURN"       # profit-sharing bill, 业务类型 回退: a return (分账回退)

# 交易状态 -> kind. REVOKED (a payment cancelled after success, V2 micropay) is money going back.
TRADE_KINDS = {"SUCCESS": PAYMENT, "REFUND": REFUND, "REVOKED": REFUND}
SHARING_KINDS = {"分账": SPLIT, "回退": RETURN, "SPLIT": SPLIT, "RETURN": RETURN}

_BEIJING_OFFSET_S = 8 * 3600


class BillMalformed(StoreLinkError):
    """The bill file cannot be read as WeChat Pay's bill: nothing in it may be used."""
    status, code = 502, "BILL_MALFORMED"
    default_message = "WeChat Pay's bill file does not read as a bill."

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None, **details):
        where = ", ".join(part for part in (line and f"line {line}", column and f"column {column}") if part)
        super().__init__(f"{message} ({where})" if where else message,
                         **{k: v for k, v in {"line": line, "column": column, **details}.items() if v is not None})
        self.line, self.column = line, column


# --- money --------------------------------------------------------------------------------------------

_YUAN = re.compile(r"(-?[0-9]+)(?:\.([0-9]{1,2})0*)?", re.ASCII)   # the digits beyond the fen must be 0
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def yuan_to_fen(text: str) -> int:
    """A bill's amount in yuan -> int fen, exactly: ``"19.90"`` -> 1990, ``"0.12000"`` -> 12
    (the fee column has five decimals), ``"-0.18000"`` -> -18, ``"0.5"`` -> 50, ``"3"`` -> 300.
    Integer arithmetic only. ValueError for anything else: a part of a fen (``"0.123"``),
    a sign other than a leading "-", spaces, an empty field, or a float's ``"1e3"``."""
    match = _YUAN.fullmatch(text) if type(text) is str else None
    if match is None:
        if type(text) is str and _DECIMAL.fullmatch(text):
            raise ValueError(f"{text!r} holds a part of a fen")
        raise ValueError(f"{text!r} is not an amount in yuan")
    whole, cents = match.groups()
    if cents is None:
        return int(whole) * 100
    return int(whole + cents) if len(cents) == 2 else int(whole + cents + "0")   # "-0" + "05" -> -5


def fen_to_yuan(fen: int, decimals: int = 2) -> str:
    """int fen -> yuan text as bills write it (``1990`` -> ``"19.90"``; ``decimals=5`` for the fee)."""
    if type(fen) is not int or decimals < 2:
        raise ValueError("fen_to_yuan takes an int of fen and at least 2 decimals")
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}" + "0" * (decimals - 2)


def beijing_epoch(text: str) -> int:
    """A bill's Beijing ``yyyy-MM-dd HH:mm:ss`` (no zone) -> Unix seconds."""
    try:
        if len(text) != 19 or text[4] != "-" or text[7] != "-" or text[10] != " " or text[13] != ":" \
                or text[16] != ":":
            raise ValueError
        parts = (int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                 int(text[17:19]))
        if not (1 <= parts[1] <= 12 and 1 <= parts[2] <= 31 and parts[3] < 24 and parts[4] < 60 and parts[5] < 61):
            raise ValueError
    except (ValueError, TypeError, IndexError):
        raise ValueError(f"{text!r} is not a bill time (yyyy-MM-dd HH:mm:ss)") from None
    return timegm(parts) - _BEIJING_OFFSET_S


# --- when a day's bill can be had ----------------------------------------------------------------------

AVAILABLE_HOUR = 10          # bills of day D are made from 09:00 on D+1 (Beijing); fetched after 10:00
RETRY_CREATING_S = 30 * 60   # WeChat's advice while a bill is STATEMENT_CREATING: ask again every ~30 minutes


def available_at(bill_date) -> int:
    """When the bill of Beijing day ``bill_date`` may be fetched: 10:00 Beijing on the day after."""
    return timegm((bill_date.year, bill_date.month, bill_date.day, AVAILABLE_HOUR, 0, 0)) + 86400 - _BEIJING_OFFSET_S


def retry_at(bill_date, now: float) -> int:
    """When to ask again for a bill that is not there yet: at 10:00 D+1 while it is earlier
    than that; otherwise (WeChat still making it) ~30 minutes after ``now``."""
    opens = available_at(bill_date)
    return opens if now < opens else int(now) + RETRY_CREATING_S


# --- rows -----------------------------------------------------------------------------------------------

class TradeRow(NamedTuple):
    """One row of a trade bill (a NamedTuple: no __dict__, built without a per-row dict)."""
    kind: str                   # PAYMENT or REFUND
    trade_time: str             # 交易时间, Beijing: the payment's success, or the refund's request (``trade_ts``)
    sub_mchid: str              # 特约商户号 (0 for a direct merchant)
    transaction_id: str         # 微信订单号
    out_trade_no: str           # 商户订单号
    refund_id: str              # 微信退款单号 ("" on a payment: the bill writes 0)
    out_refund_no: str          # 商户退款单号 ("" on a payment)
    status: str                 # 交易状态: SUCCESS, REFUND (REVOKED)
    refund_status: str          # 退款状态 of a refund as the bill was written (SUCCESS, PROCESSING, ...); "" on a payment
    settlement_total_fen: int   # 应结订单金额 (the order total in the older layout); 0 on a refund row
    order_total_fen: int        # 订单金额; 0 on a refund row
    refund_fen: int             # 退款金额; 0 on a payment
    requested_refund_fen: int   # 申请退款金额 (the refund itself where the bill has no such column)
    fee_fen: int                # 手续费: the provider's fee on a payment; on a refund what it gives back, NEGATIVE
    attach: str                 # 商户数据包 (StoreLink writes store=<store_id>)
    line: int                   # line number in the file (the header is line 1)

    @property
    def trade_ts(self) -> int:
        return beijing_epoch(self.trade_time)


class SharingRow(NamedTuple):
    """One row of a profit-sharing bill: a receiver's line of a split, or a return."""
    kind: str                   # SPLIT or RETURN
    time: str                   # 分账发起时间, Beijing (``ts``)
    sub_mchid: str              # 分账方商户号: whose money was split
    transaction_id: str         # 微信订单号
    order_id: str               # 微信分账/回退单号: WeChat's split order id, or its return id
    detail_id: str              # 分账明细单号 of the receiver's line ("" on a return)
    out_no: str                 # 商户分账/回退单号: our out_order_no, or out_return_no (``out_order_no``, ``out_return_no``)
    receiver_type: str          # 分账接收方类型: MERCHANT_ID, PERSONAL_OPENID, ...
    receiver: str               # 分账接收方: the receiver's account (on a return: who gives back)
    amount_fen: int             # 动账金额, positive: ``kind`` says which way it moved
    status: str                 # 处理状态: PENDING/SUCCESS/CLOSED (split), PROCESSING/SUCCESS/FAILED (return)
    description: str            # 描述
    line: int

    @property
    def ts(self) -> int:
        return beijing_epoch(self.time)

    @property
    def out_order_no(self) -> str:
        return self.out_no if self.kind == SPLIT else ""

    @property
    def out_return_no(self) -> str:
        return self.out_no if self.kind == RETURN else ""


class BillTotals(NamedTuple):
    """What a bill's summary said, once checked: its row count and each summary column (fen)."""
    rows: int
    summary: dict               # summary column name -> int (fen, or a count), each checked against the rows
    unchecked: tuple = ()       # summary columns this reader does not know (not in the table): not checked


# --- the tables: header names -> fields ------------------------------------------------------------------
# A field: (the header names it may go by, first found wins; what a bill without any of them means:
# REQUIRED, a constant, or ("same as", other field)). Text fields first, then amounts, in the row's order.
REQUIRED = object()
TEXT, FEN = "text", "fen"

TRADE_COLUMNS: dict[str, tuple[tuple[str, ...], str, object]] = {
    "trade_time": (("交易时间",), TEXT, REQUIRED),
    "sub_mchid": (("特约商户号", "子商户号"), TEXT, REQUIRED),
    "transaction_id": (("微信订单号",), TEXT, REQUIRED),
    "out_trade_no": (("商户订单号",), TEXT, REQUIRED),
    "status": (("交易状态",), TEXT, REQUIRED),
    "refund_id": (("微信退款单号",), TEXT, "0"),
    "out_refund_no": (("商户退款单号",), TEXT, "0"),
    "refund_status": (("退款状态",), TEXT, ""),
    "attach": (("商户数据包",), TEXT, ""),
    # The older layout has neither 应结订单金额 nor 代金券金额 (its 总金额 is the settlement total).
    "settlement_total_fen": (("应结订单金额", "总金额"), FEN, ("same as", "order_total_fen")),
    "order_total_fen": (("订单金额", "总金额"), FEN, ("same as", "settlement_total_fen")),
    "refund_fen": (("退款金额",), FEN, "0.00"),
    "recharge_refund_fen": (("充值券退款金额", "企业红包退款金额", "代金券或立减优惠退款金额"), FEN, "0.00"),
    "requested_refund_fen": (("申请退款金额",), FEN, ("same as", "refund_fen")),
    "fee_fen": (("手续费",), FEN, REQUIRED),
}
# Summary column -> (what it adds up: a field, or COUNT; over which kind of rows, None: all).
# The sums are plain column sums over every row (a refund row's order totals are 0.00, its fee negative).
COUNT = "count"
TRADE_SUMMARY: dict[str, tuple[str, str | None]] = {
    "总交易单数": (COUNT, None),
    "应结订单总金额": ("settlement_total_fen", None), "总交易额": ("settlement_total_fen", None),
    "退款总金额": ("refund_fen", None), "总退款金额": ("refund_fen", None),
    "充值券退款总金额": ("recharge_refund_fen", None), "总代金券或立减优惠退款金额": ("recharge_refund_fen", None),
    "企业红包退款总金额": ("recharge_refund_fen", None),
    "手续费总金额": ("fee_fen", None),
    "订单总金额": ("order_total_fen", None),
    "申请退款总金额": ("requested_refund_fen", None),
}

# Names as the sandbox writes them (infra/local/sandbox/bill_files.py); WeChat's own list is not
# in our reference, hence a few likely spellings each.
SHARING_COLUMNS: dict[str, tuple[tuple[str, ...], str, object]] = {
    "time": (("分账发起时间", "分账时间"), TEXT, REQUIRED),
    "sub_mchid": (("分账方商户号", "分账方", "特约商户号"), TEXT, REQUIRED),
    "transaction_id": (("微信订单号",), TEXT, REQUIRED),
    "order_id": (("微信分账/回退单号", "微信分账单号"), TEXT, REQUIRED),
    "detail_id": (("分账明细单号",), TEXT, ""),
    "out_no": (("商户分账/回退单号", "商户分账单号"), TEXT, REQUIRED),
    "receiver_type": (("分账接收方类型",), TEXT, ""),
    "receiver": (("分账接收方", "分账接收方账号"), TEXT, REQUIRED),
    "business_type": (("业务类型",), TEXT, REQUIRED),
    "status": (("处理状态",), TEXT, ""),
    "description": (("描述", "分账描述"), TEXT, ""),
    "amount_fen": (("动账金额", "分账金额", "金额"), FEN, REQUIRED),
}
SHARING_SUMMARY: dict[str, tuple[str, str | None]] = {
    "总笔数": (COUNT, None),
    "分账笔数": (COUNT, SPLIT), "分账总金额": ("amount_fen", SPLIT),
    "回退笔数": (COUNT, RETURN), "回退总金额": ("amount_fen", RETURN),
}

_MEMO_LIMIT = 1 << 15   # distinct amount texts remembered (bounded: memory does not grow with the file)


# --- parsers ----------------------------------------------------------------------------------------------

def parse_trade_bill(lines: Iterable[str]) -> Iterator[TradeRow]:
    """The rows of a trade bill (ALL, SUCCESS or REFUND; partner or older layout), as a
    generator; returns the checked ``BillTotals``. Raises ``BillMalformed``."""
    it = _Lines(lines)
    layout = _Layout(it.header(), TRADE_COLUMNS, TRADE_SUMMARY)
    width, pad, pick = layout.width, layout.pad, layout.pick
    kinds, memo, fen, loose = TRADE_KINDS, {}, _fen_of, _loose_fields
    count = settled = ordered = refunded = recharged = asked = fees = 0
    lineno = it.number
    for line in it.source:
        lineno += 1
        if line[:1] == "`":
            fields = line[1:].rstrip("\r\n").split(",`")
            if len(fields) != width:
                fields = loose(line, width, lineno)
        else:
            fields = it.not_a_row(line, lineno, layout)
            if fields is None:
                break
        fields += pad
        (when, sub, tx, otn, status, rid, orid, rstatus, attach,
         settle, order, refund, recharge, ask, fee) = pick(fields)
        kind = kinds.get(status)
        if kind is None:
            raise BillMalformed(f"unknown 交易状态 {status!r}", line=lineno, column="交易状态")
        try:
            settle = memo[settle] if settle in memo else fen(settle, memo)
            order = memo[order] if order in memo else fen(order, memo)
            refund = memo[refund] if refund in memo else fen(refund, memo)
            recharge = memo[recharge] if recharge in memo else fen(recharge, memo)
            ask = memo[ask] if ask in memo else fen(ask, memo)
            fee = memo[fee] if fee in memo else fen(fee, memo)
        except ValueError as exc:
            raise layout.bad_amount(fields, lineno, exc) from None
        count += 1
        settled += settle
        ordered += order
        refunded += refund
        recharged += recharge
        asked += ask
        fees += fee
        if kind is PAYMENT:
            rid = orid = ""
        yield _new(TradeRow, (kind, when, sub, tx, otn, rid, orid, status, rstatus, settle, order, refund, ask, fee,
                              attach, lineno))
    else:
        raise BillMalformed("the bill ends without its summary lines", line=lineno)
    sums = {(COUNT, None): count, ("settlement_total_fen", None): settled, ("order_total_fen", None): ordered,
            ("refund_fen", None): refunded, ("recharge_refund_fen", None): recharged,
            ("requested_refund_fen", None): asked, ("fee_fen", None): fees}
    return it.check_summary(layout, sums)


def parse_sharing_bill(lines: Iterable[str]) -> Iterator[SharingRow]:
    """The rows of a profit-sharing bill, as a generator; returns the checked ``BillTotals``.
    Raises ``BillMalformed``."""
    it = _Lines(lines)
    layout = _Layout(it.header(), SHARING_COLUMNS, SHARING_SUMMARY)
    width, pad, pick = layout.width, layout.pad, layout.pick
    kinds, memo, fen, loose = SHARING_KINDS, {}, _fen_of, _loose_fields
    sums = {(COUNT, None): 0, (COUNT, SPLIT): 0, (COUNT, RETURN): 0, ("amount_fen", SPLIT): 0,
            ("amount_fen", RETURN): 0, ("amount_fen", None): 0}
    lineno = it.number
    for line in it.source:
        lineno += 1
        if line[:1] == "`":
            fields = line[1:].rstrip("\r\n").split(",`")
            if len(fields) != width:
                fields = loose(line, width, lineno)
        else:
            fields = it.not_a_row(line, lineno, layout)
            if fields is None:
                break
        fields += pad
        when, sub, tx, order_id, detail_id, out_no, rtype, receiver, business, status, description, amount = \
            pick(fields)
        kind = kinds.get(business)
        if kind is None:
            raise BillMalformed(f"unknown 业务类型 {business!r}", line=lineno, column="业务类型")
        try:
            amount = memo[amount] if amount in memo else fen(amount, memo)
        except ValueError as exc:
            raise layout.bad_amount(fields, lineno, exc) from None
        sums[(COUNT, None)] += 1
        sums[(COUNT, kind)] += 1
        sums[("amount_fen", kind)] += amount
        sums[("amount_fen", None)] += amount
        yield _new(SharingRow, (kind, when, sub, tx, order_id, detail_id, out_no, rtype, receiver, amount, status,
                                description, lineno))
    else:
        raise BillMalformed("the bill ends without its summary lines", line=lineno)
    return it.check_summary(layout, sums)


def check(rows: Iterator) -> BillTotals:
    """Read a parser through to its end, keeping nothing: its ``BillTotals``, or ``BillMalformed``."""
    totals = []

    def through():
        totals.append((yield from rows))

    deque(through(), maxlen=0)      # consumed in C: no Python-level step per row
    return totals[0]


# --- the machinery ---------------------------------------------------------------------------------------

_new = tuple.__new__


def _fen_of(text: str, memo: dict) -> int:
    """An amount not in the memo: converted, and remembered (the memo starts over when full,
    so it holds the recent amounts and never grows past ``_MEMO_LIMIT``)."""
    fen = yuan_to_fen(text)
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[text] = fen
    return fen


def _strip(field: str) -> str:
    return field[1:] if field[:1] == "`" else field


def _loose_fields(line: str, width: int, lineno: int) -> list[str]:
    """A row that did not split into ``width`` fields on ",`": some fields lack the backtick.
    Read it on "," (no free text with commas then), if that gives ``width`` fields."""
    text = line.rstrip("\r\n")
    strict = len(text[1:].split(",`")) if text[:1] == "`" else None
    fields = [_strip(f) for f in text.split(",")]
    if len(fields) != width:
        raise BillMalformed(f"a row has {strict if strict is not None else len(fields)} fields where the header "
                            f"has {width}", line=lineno)
    return fields


class _Layout:
    """Where each field is in this bill's rows, from its header line (by the table's names)."""

    def __init__(self, header: list[str], columns: dict, summary: dict):
        self.summary_names = summary
        self.width = len(header)
        where: dict[str, int] = {}
        for index, name in enumerate(header):
            where.setdefault(name, index)
        found = {field: next((where[n] for n in names if n in where), None)
                 for field, (names, _, _) in columns.items()}
        pad: list[str] = []          # constants for absent columns, appended to each row's fields

        def index_of(field: str) -> int:
            names, _, missing = columns[field]
            if found[field] is not None:
                return found[field]
            if isinstance(missing, tuple):                 # ("same as", another field)
                if found[missing[1]] is not None:
                    return found[missing[1]]
                missing = columns[missing[1]][2]           # neither: what the other one's absence means
            if missing is REQUIRED or isinstance(missing, tuple):
                raise BillMalformed(f"the header has no column {' / '.join(names)}", line=1, column=names[0])
            pad.append(missing)
            return self.width + len(pad) - 1

        indices = [index_of(field) for field in columns]
        self.pad = tuple(pad)
        self.pick = itemgetter(*indices)
        self.column_name = {field: header[i] if i < self.width else columns[field][0][0]
                            for field, i in zip(columns, indices)}
        self.amounts = [(field, i) for field, i in zip(columns, indices) if columns[field][1] == FEN]

    def bad_amount(self, fields: list[str], lineno: int, exc: ValueError) -> BillMalformed:
        for field, index in self.amounts:
            try:
                yuan_to_fen(fields[index])
            except ValueError as bad:
                return BillMalformed(f"bad amount: {bad}", line=lineno, column=self.column_name[field])
        return BillMalformed(f"bad amount: {exc}", line=lineno)


class _Lines:
    """The file's lines with their numbers: the header, the rows, then the summary."""

    def __init__(self, lines: Iterable[str]):
        self.source = iter(lines)
        self.number = 0
        self.summary_header: list[str] | None = None

    def header(self) -> list[str]:
        for line in self.source:
            self.number += 1
            text = line.rstrip("\r\n").lstrip("\ufeff")
            if text.strip():
                return [name.strip() for name in text.split(",")]
            raise BillMalformed("the bill starts with an empty line", line=self.number)
        raise BillMalformed("the bill is empty")

    def not_a_row(self, line: str, lineno: int, layout: _Layout) -> list[str] | None:
        """A line that does not start with a backtick: the summary header (None), or a row
        whose first field lacks its backtick."""
        text = line.rstrip("\r\n")
        if not text.strip():
            raise BillMalformed("an empty line among the rows", line=lineno)
        names = [name.strip() for name in text.split(",")]
        if names[0] in layout.summary_names:
            self.summary_header, self.number = names, lineno
            return None
        return _loose_fields(line, layout.width, lineno)

    def check_summary(self, layout: _Layout, sums: dict) -> BillTotals:
        names, lineno = self.summary_header, self.number
        values = None
        for line in self.source:
            lineno += 1
            text = line.rstrip("\r\n")
            if values is None:
                values = [_strip(v) for v in (text[1:].split(",`") if text[:1] == "`" else text.split(","))]
                values_line = lineno
            elif text.strip():
                raise BillMalformed("text after the summary", line=lineno)
        if values is None:
            raise BillMalformed("the summary header has no values after it", line=lineno)
        if len(values) != len(names):
            raise BillMalformed(f"the summary has {len(values)} values for {len(names)} columns", line=values_line)
        checked, unchecked = {}, []
        for name, value in zip(names, values):
            if name not in layout.summary_names:     # a column this reader does not know: said, not checked
                unchecked.append(name)
                continue
            what, kind = layout.summary_names[name]
            if what == COUNT:
                if not (value.isascii() and value.isdigit()):
                    raise BillMalformed(f"bad summary count {value!r}", line=values_line, column=name)
                said = int(value)
            else:
                try:
                    said = yuan_to_fen(value)
                except ValueError as exc:
                    raise BillMalformed(f"bad summary value: {exc}", line=values_line, column=name) from None
            added = sums[(what, kind)]
            if said != added:
                shown = (lambda v: str(v)) if what == COUNT else fen_to_yuan
                raise BillMalformed(f"the summary's {name} is {shown(said)} but the rows add up to {shown(added)}",
                                    line=values_line, column=name, summary=said, rows_sum=added)
            checked[name] = said
        if not any(layout.summary_names[n][0] == COUNT and layout.summary_names[n][1] is None for n in names):
            raise BillMalformed("the summary does not give the number of rows", line=self.number)
        return BillTotals(sums[(COUNT, None)], checked, tuple(unchecked))
