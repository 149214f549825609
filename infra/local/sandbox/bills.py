"""Bills (对账单, ``wechatpay-v3.md`` §6 "Profit-sharing bill" and §7): the trade bill and
the profit-sharing bill of a Beijing day, in WeChat's real format (``bill_files.py``),
generated from the sandbox's own record of that day.

Step 1, apply (signed like every /v3 call, answered signed)::

    GET /v3/bill/tradebill?bill_date=YYYY-MM-DD[&bill_type=ALL|SUCCESS|REFUND][&tar_type=GZIP][&sub_mchid=]
    GET /v3/profitsharing/bills?bill_date=YYYY-MM-DD[&tar_type=GZIP][&sub_mchid=]
    -> 200 {"hash_type": "SHA1", "hash_value": <sha1 hex of the DECOMPRESSED file>,
            "download_url": "<sandbox>/v3/billdownload/file?token=...[&tartype=gzip]"}

``bill_type`` defaults to ALL; without ``sub_mchid`` the file holds every sub-merchant.
The file is made when it is applied for and kept with its token; the URL's base is
the Host the request came to (the gateway the caller uses).

Step 2, download: ``GET <download_url>``, a signed merchant GET like the others (401
SIGN_ERROR otherwise), answered with the raw file — ``application/x-gzip`` (gzip of
the file) or ``text/plain; charset=utf-8`` — and NO Wechatpay-* signature headers (real
WeChat does the same: check the SHA1 instead). The URL lives ``DOWNLOAD_URL_TTL_S`` (30)
seconds of WALL time, like WeChat's older pages say; after that 400 INVALID_REQUEST
(404 RESOURCE_NOT_EXISTS for a token the sandbox never gave, or gave before a restart).
Error answers are JSON and signed, as WeChat's are.

When a day's bill exists, on the BUSINESS clock (``chalicelib.clock``), in this order::

    bill_date malformed / not a date, bill_type / tar_type / sub_mchid invalid
                                                 400 PARAM_ERROR
    bill_date after today (Beijing)              400 PARAM_ERROR
    bill_date more than 3 months back            400 NO_STATEMENT_EXIST "请求的账单文件不存在"
        (WeChat documents the 3-month limit but no code for it; the sandbox answers the
        final "no such file", with detail.issue saying why)
    before 10:00 Beijing on D+1 (today included) 400 STATEMENT_CREATING "账单生成中"
    no detail row for that bill type / sub_mchid 400 NO_STATEMENT_EXIST "请求的账单文件不存在"

What is on day D (Beijing calendar day, [00:00, 24:00) +08:00):

* a payment: a SUCCESS row on the day of its success_time (交易时间 = success time), with
  the provider's fee (0.6 %, ``fees.py``) in 手续费;
* a refund: its own REFUND row on the day it was REQUESTED (交易时间 = 退款申请时间 =
  request time), 退款金额 = 申请退款金额 = the refund, 手续费 = minus the fee it gives back
  (0.00000 for a refund that ended CLOSED: nothing was given back), 退款成功时间 when it
  had succeeded;
* a split: one row per receiver on the day the split order was ACCEPTED (分账发起时间);
  unfreeze orders (解冻) are not listed; a return (分账回退): one row on the day it was
  accepted.

Statuses are as WeChat generates the bill: as of 09:00 Beijing on D+1 (``GENERATED_AT``),
worked out from the recorded times, so the same day's file reads the same whenever it is
applied for (a refund that succeeded at 09:30 D+1 reads PROCESSING; a refund that went
ABNORMAL and later ended otherwise reads PROCESSING until that end). Before making a
file the due results (refunds, split results) are brought up to date.

Faults for the bills of ``{"date"}`` (``faults.py``, ``POST /sandbox/faults``):

* ``unknown_payment`` ``{"out_trade_no"?, "total_fen"?, "sub_mchid"?}`` — done AT
  INJECTION, for real: a paid transaction nobody told StoreLink of. With
  ``out_trade_no`` naming a sandbox order not paid (NOTPAY, or CLOSED by StoreLink or by
  expiry) that order becomes SUCCESS — transaction_id, success_time on that date, fee,
  the sub-merchant's balance — and NO notification is sent; the query and refund APIs see
  it paid. Without ``out_trade_no`` the sandbox invents such a payment
  (``UNKNOWN<yyyymmdd><hex>``, ``total_fen`` default 100, ``sub_mchid`` default the
  sub-merchant of the latest order, else 1900000109). The answer's fault carries
  ``out_trade_no``, ``transaction_id``, ``success_time``. The success time is 12:00 on that
  date, or now if that is earlier (today), and not before the order was created.
* ``missed_refund`` ``{"out_trade_no", "amount_fen"}`` — done AT INJECTION, for real: a
  refund the provider made on that date (at 12:00, or now, never before the payment)
  WITHOUT a notification: SUCCESS at once, balance and fee moved like any refund, shown
  by the refund query API (its ``out_refund_no`` = ``MISSED<yyyymmdd><hex>`` is in the
  answer's fault) and as a REFUND row of that day.
* ``amount_differs`` ``{"out_trade_no", "total_fen"}`` — only the bill changes: that
  payment's SUCCESS row (if on that date) shows 应结订单金额 = 订单金额 = ``total_fen``
  (fee unchanged); the summary sums what the rows show.
* ``split_differs`` ``{"out_order_no"}`` — every receiver row of that split order in that
  date's profit-sharing bill shows 动账金额 ONE FEN MORE than was split.
* ``bill_hash_corrupt`` — the hash_value answered for any bill of that date is not the
  file's SHA1 (the file itself is right).

The injected effects of ``unknown_payment`` / ``missed_refund`` live in the sandbox's
state and stay after ``DELETE /sandbox/faults``; the bill-only kinds act while the fault
stands (a ``"once"`` one: on the first bill it changes). All are in SQLite, so they
hold across a restart. The fund-flow bill (``/v3/bill/fundflowbill``) is not served.
"""
from __future__ import annotations

import calendar
import gzip
import hashlib
import math
import re
import secrets
import sys
import threading
import time
import traceback
import uuid
from datetime import date, datetime, timedelta

from chalicelib.domain.time import BEIJING, beijing_date, rfc3339
from infra.local.sandbox.bill_files import (BILL_TYPES, RETURN, SPLIT, ProfitSharingBillRow, TradeBillRow,
                                            bill_time, encode, profitsharing_bill_lines, trade_bill_lines)
from infra.local.sandbox.faults import FaultError
from infra.local.sandbox.fees import fee_refund, payment_fee
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.merchants import is_merchant
from infra.local.sandbox.pay import canonical, new_prepay_id, new_transaction_id
from infra.local.sandbox.refunds import new_refund_id
from infra.local.sandbox.signing import AuthorizationError, verify_request
from infra.local.sandbox.v3 import V3Error, ok

DOWNLOAD_URL_TTL_S = 30           # wall seconds (WeChat's older pages: 30 s; newer: 5 min)
AVAILABLE_AFTER = timedelta(days=1, hours=10)   # D+1 10:00 Beijing
GENERATED_AT = timedelta(days=1, hours=9)       # statuses as of D+1 09:00 Beijing
HISTORY_MONTHS = 3
FAULT_HOUR = 12                   # injected payments and refunds happen at noon of their date
DEFAULT_UNKNOWN_TOTAL_FEN = 100
DEFAULT_SUB_MCHID = "1900000109"
GZIP_TYPE = "application/x-gzip"
TEXT_TYPE = "text/plain; charset=utf-8"
DOWNLOAD_PATH = "/v3/billdownload/file"

NO_STATEMENT = ("NO_STATEMENT_EXIST", "请求的账单文件不存在")
CREATING = ("STATEMENT_CREATING", "账单生成中")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- pure rules -------------------------------------------------------------------------------------

def day_start(day: date) -> float:
    """00:00 Beijing of a day, as a Unix time."""
    return datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier (the month's last day when shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def availability(day: date, now: float) -> tuple[str, str] | None:
    """Why the bill of ``day`` cannot be had at business time ``now`` ((code, message) of a
    400), or None when it can — apart from having rows, which the caller checks."""
    today = beijing_date(now)
    if day > today:
        return "PARAM_ERROR", "bill_date 不能晚于今天(账单日期是已经过去的北京时间自然日)"
    if day < months_before(today, HISTORY_MONTHS):
        return NO_STATEMENT
    if now < day_start(day) + AVAILABLE_AFTER.total_seconds():
        return CREATING
    return None


def status_as_of(status: str, finished_at: float | None, at: float, before: str) -> str:
    """A result as the bill generated at ``at`` saw it: the current one if it had been
    reached by then, ``before`` otherwise."""
    if finished_at is not None and finished_at <= at:
        return status
    return before


def sha1_hex(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()


def corrupt_hash(content: bytes) -> str:
    """A well-formed SHA1 that is not the file's (fault ``bill_hash_corrupt``)."""
    return hashlib.sha1(content + b"\x00bill_hash_corrupt").hexdigest()


def _fault_params(fault: dict) -> dict:
    return {k: v for k, v in fault.items() if k not in ("fault_id", "kind", "once")}


# -- the sandbox's bills ----------------------------------------------------------------------------

class Bills:
    def __init__(self, state, clock, payments, refunds, profitsharing, merchants, faults, keys,
                 sp_mchid: str, sp_appid: str, wall=time.time, log=sys.stderr):
        self._state = state
        self._clock = clock
        self._payments = payments
        self._refunds = refunds
        self._sharing = profitsharing
        self._merchants = merchants
        self._faults = faults
        self._keys = keys
        self._sp_mchid = sp_mchid
        self._sp_appid = sp_appid
        self._wall = wall
        self._log = log
        self._gateway = None
        self._files: dict[str, tuple[float, bytes, str]] = {}   # token -> (wall expiry, body, content type)
        self._files_lock = threading.Lock()
        faults.appliers["unknown_payment"] = self.inject_unknown_payment
        faults.appliers["missed_refund"] = self.inject_missed_refund

    def routes(self, router, gateway) -> None:
        self._gateway = gateway
        gateway.route(router, "GET", "/v3/bill/tradebill", self.apply_trade_bill)
        gateway.route(router, "GET", "/v3/profitsharing/bills", self.apply_profitsharing_bill)
        router.add("GET", DOWNLOAD_PATH, self.download)

    # -- faults -----------------------------------------------------------------------------------

    def _day_faults(self, kind: str, day: date) -> list[dict]:
        return [fault for fault in self._faults.active(kind) if fault.get("date") == day.isoformat()]

    def _use(self, fault: dict) -> None:
        """A one-time fault has acted: it is used up."""
        if fault["once"]:
            params = _fault_params(fault)
            self._faults.take_matching(fault["kind"], lambda p: p == params)

    def _fault_day(self, params: dict) -> date:
        try:
            day = date.fromisoformat(params["date"])
        except ValueError:
            raise FaultError(f"date {params['date']!r} is not a calendar date") from None
        if day > beijing_date(self._clock.timestamp()):
            raise FaultError("date lies in the future (Beijing, business clock): nothing happened there yet")
        return day

    def _moment_on(self, day: date, not_before: float | None = None) -> float:
        """When an injected payment or refund happens on ``day``: 12:00 Beijing, or now if
        that is earlier (whole seconds), never before ``not_before``."""
        now = self._clock.timestamp()
        target = float(math.floor(min(day_start(day) + FAULT_HOUR * 3600, now)))
        if not_before is not None and target < not_before:
            target = not_before                     # at that very moment, at the earliest
        if target >= day_start(day) + 86400 or target > now:
            raise FaultError(f"it cannot have happened on {day.isoformat()}: the order was created or paid later")
        return target

    def inject_unknown_payment(self, params: dict) -> dict:
        """Fault ``unknown_payment``: a payment made, without a notification (see the module)."""
        day = self._fault_day(params)
        with self._state.transaction() as db:
            if "out_trade_no" in params:
                row = self._payments.find(params["out_trade_no"])
                if row is None:
                    raise FaultError(f"no sandbox order {params['out_trade_no']!r}: leave out_trade_no out to"
                                     " invent a payment")
                if row["transaction_id"] is not None:
                    raise FaultError(f"order {row['out_trade_no']} is already paid ({row['trade_state']})")
                for name, column in (("total_fen", "total_fen"), ("sub_mchid", "sub_mchid")):
                    if name in params and params[name] != row[column]:
                        raise FaultError(f"{name} {params[name]!r} is not the order's ({row[column]!r})")
                at = self._moment_on(day, not_before=row["created_at"])
                out_trade_no, sub_mchid, total = row["out_trade_no"], row["sub_mchid"], row["total_fen"]
                fee, transaction_id = payment_fee(total), new_transaction_id(at)
                db.execute("UPDATE pay_transactions SET trade_state = 'SUCCESS', transaction_id = ?, success_at = ?,"
                           " payer_total_fen = total_fen, fee_fen = ? WHERE out_trade_no = ?"
                           " AND transaction_id IS NULL", (transaction_id, at, fee, out_trade_no))
            else:
                total = params.get("total_fen", DEFAULT_UNKNOWN_TOTAL_FEN)
                sub_mchid = params.get("sub_mchid") or self._latest_sub_mchid()
                at = self._moment_on(day)
                out_trade_no = f"UNKNOWN{day:%Y%m%d}{secrets.token_hex(5).upper()}"
                fee, transaction_id = payment_fee(total), new_transaction_id(at)
                body = {"sp_appid": self._sp_appid, "sp_mchid": self._sp_mchid, "sub_mchid": sub_mchid,
                        "out_trade_no": out_trade_no, "description": "sandbox unknown_payment",
                        "amount": {"total": total, "currency": "CNY"},
                        "payer": {"sp_openid": "o_sandbox_unknown"}}
                columns = {"out_trade_no": out_trade_no, "sp_mchid": self._sp_mchid, "sp_appid": self._sp_appid,
                           "sub_mchid": sub_mchid, "prepay_id": new_prepay_id(at), "request": canonical(body),
                           "description": body["description"], "total_fen": total, "currency": "CNY",
                           "payer_sp_openid": "o_sandbox_unknown", "notify_url": "", "profit_sharing": 0,
                           "created_at": at, "expires_at": at + 7 * 86400, "trade_state": "SUCCESS",
                           "transaction_id": transaction_id, "success_at": at, "payer_total_fen": total,
                           "fee_fen": fee}
                db.execute(f"INSERT INTO pay_transactions ({', '.join(columns)})"
                           f" VALUES ({', '.join('?' * len(columns))})", tuple(columns.values()))
            self._merchants.add_balance(sub_mchid, total - fee)
        return {**params, "out_trade_no": out_trade_no, "sub_mchid": sub_mchid, "total_fen": total,
                "transaction_id": transaction_id, "success_time": rfc3339(at)}

    def _latest_sub_mchid(self) -> str:
        row = self._state.row("SELECT sub_mchid FROM pay_transactions ORDER BY created_at DESC LIMIT 1")
        return row["sub_mchid"] if row else DEFAULT_SUB_MCHID

    def inject_missed_refund(self, params: dict) -> dict:
        """Fault ``missed_refund``: a refund made at the provider, without a notification."""
        day = self._fault_day(params)
        amount = params["amount_fen"]
        with self._state.transaction() as db:
            trade = self._payments.find(params["out_trade_no"])
            if trade is None or trade["transaction_id"] is None:
                raise FaultError(f"no paid sandbox order {params['out_trade_no']!r} to refund")
            at = self._moment_on(day, not_before=trade["success_at"])
            standing = self._state.rows("SELECT refund_fen, fee_refund_fen FROM pay_refunds WHERE out_trade_no = ?"
                                        " AND status != 'CLOSED'", (trade["out_trade_no"],))
            refunded_after = sum(r["refund_fen"] for r in standing) + amount
            if refunded_after > trade["total_fen"]:
                raise FaultError(f"amount_fen {amount} is more than the order has left to refund"
                                 f" ({trade['total_fen'] - refunded_after + amount})")
            fee_back = fee_refund(trade["fee_fen"], trade["total_fen"], refunded_after,
                                  sum(r["fee_refund_fen"] for r in standing))
            if self._merchants.settings(trade["sub_mchid"])["balance_fen"] < amount - fee_back:
                raise FaultError("the sub-merchant's balance cannot cover this refund: raise it with"
                                 f" PUT /sandbox/merchants/{trade['sub_mchid']}")
            self._merchants.add_balance(trade["sub_mchid"], -(amount - fee_back))
            out_refund_no = f"MISSED{day:%Y%m%d}{secrets.token_hex(5).upper()}"
            refund_id = new_refund_id(at)
            request = {"sub_mchid": trade["sub_mchid"], "out_trade_no": trade["out_trade_no"],
                       "out_refund_no": out_refund_no,
                       "amount": {"refund": amount, "total": trade["total_fen"], "currency": "CNY"}}
            db.execute(
                "INSERT INTO pay_refunds (out_refund_no, refund_id, out_trade_no, sub_mchid, request, refund_fen,"
                " total_fen, fee_refund_fen, reason, notify_url, status, held, created_at, complete_at,"
                " finished_at, success_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'SUCCESS', 0, ?, ?, ?, ?)",
                (out_refund_no, refund_id, trade["out_trade_no"], trade["sub_mchid"], canonical(request), amount,
                 trade["total_fen"], fee_back, "sandbox missed_refund", at, at, at, at))
            self._payments.mark_refunding(trade["out_trade_no"])
        return {**params, "out_refund_no": out_refund_no, "refund_id": refund_id, "success_time": rfc3339(at)}

    # -- what a day holds -------------------------------------------------------------------------

    def _bring_up_to_date(self) -> None:
        self._refunds.complete_due()
        self._sharing.finish_due()

    def trade_rows(self, day: date, sub_mchid: str | None = None, bill_type: str = "ALL") -> list[TradeBillRow]:
        """The trade bill rows of a Beijing day, by time, faults applied: payments and refunds
        (ALL), payments only (SUCCESS) or refunds only (REFUND)."""
        self._bring_up_to_date()
        start = day_start(day)
        end, generated = start + 86400, start + GENERATED_AT.total_seconds()
        differs = {}
        for fault in self._day_faults("amount_differs", day):
            differs.setdefault(fault["out_trade_no"], fault)
        rows: list[tuple[tuple, TradeBillRow]] = []
        payments, refunds = [], []
        if bill_type != "REFUND":
            payments = self._state.rows(
                "SELECT * FROM pay_transactions WHERE success_at >= ? AND success_at < ?"
                " AND (? IS NULL OR sub_mchid = ?)", (start, end, sub_mchid, sub_mchid))
        if bill_type != "SUCCESS":
            refunds = self._state.rows(
                "SELECT r.out_refund_no, r.refund_id, r.refund_fen, r.fee_refund_fen, r.status, r.created_at,"
                " r.finished_at, r.success_at, t.sp_appid, t.sp_mchid, t.sub_mchid, t.transaction_id,"
                " t.out_trade_no, t.payer_sp_openid, t.payer_sub_openid, t.description, t.attach"
                " FROM pay_refunds r JOIN pay_transactions t ON t.out_trade_no = r.out_trade_no"
                " WHERE r.created_at >= ? AND r.created_at < ? AND (? IS NULL OR r.sub_mchid = ?)",
                (start, end, sub_mchid, sub_mchid))
        for t in payments:
            total = t["total_fen"]
            fault = differs.get(t["out_trade_no"])
            if fault is not None:
                total = fault["total_fen"]
                self._use(fault)
            rows.append(((t["success_at"], 0, t["out_trade_no"]), TradeBillRow(
                trade_time=bill_time(t["success_at"]), appid=t["sp_appid"], mchid=t["sp_mchid"],
                sub_mchid=t["sub_mchid"], transaction_id=t["transaction_id"], out_trade_no=t["out_trade_no"],
                openid=t["payer_sp_openid"] or t["payer_sub_openid"] or "", trade_state="SUCCESS",
                settlement_total_fen=total, total_fen=total, fee_fen=t["fee_fen"],
                description=t["description"], attach=t["attach"] or "")))
        for r in refunds:
            status = status_as_of(r["status"], r["finished_at"], generated, "PROCESSING")
            success = r["success_at"] if status == "SUCCESS" else None
            rows.append(((r["created_at"], 1, r["out_refund_no"]), TradeBillRow(
                trade_time=bill_time(r["created_at"]), appid=r["sp_appid"], mchid=r["sp_mchid"],
                sub_mchid=r["sub_mchid"], transaction_id=r["transaction_id"], out_trade_no=r["out_trade_no"],
                openid=r["payer_sp_openid"] or r["payer_sub_openid"] or "", trade_state="REFUND",
                settlement_total_fen=0, total_fen=0,
                fee_fen=0 if status == "CLOSED" else -r["fee_refund_fen"],
                description=r["description"], attach=r["attach"] or "", refund_id=r["refund_id"],
                out_refund_no=r["out_refund_no"], refund_fen=r["refund_fen"], refund_requested_fen=r["refund_fen"],
                refund_type="ORIGINAL", refund_status=status, refund_requested_time=bill_time(r["created_at"]),
                refund_success_time=bill_time(success) if success is not None else "")))
        rows.sort(key=lambda pair: pair[0])
        return [row for _, row in rows]

    def profitsharing_rows(self, day: date, sub_mchid: str | None = None) -> list[ProfitSharingBillRow]:
        """The profit-sharing bill rows of a Beijing day (split receivers and returns), faults applied."""
        self._bring_up_to_date()
        start = day_start(day)
        end, generated = start + 86400, start + GENERATED_AT.total_seconds()
        differs = {}
        for fault in self._day_faults("split_differs", day):
            differs.setdefault(fault["out_order_no"], fault)
        used = set()
        rows: list[tuple[tuple, ProfitSharingBillRow]] = []
        for r in self._state.rows(
                "SELECT o.created_at, o.sub_mchid, o.transaction_id, o.order_id, o.out_order_no, r.position,"
                " r.detail_id, r.type, r.account, r.amount_fen, r.result, r.finished_at, r.description"
                " FROM ps_order_receivers r JOIN ps_orders o ON o.out_order_no = r.out_order_no"
                " WHERE o.kind = 'SPLIT' AND o.created_at >= ? AND o.created_at < ? AND (? IS NULL OR o.sub_mchid = ?)",
                (start, end, sub_mchid, sub_mchid)):
            amount = r["amount_fen"]
            if r["out_order_no"] in differs:
                amount += 1
                used.add(r["out_order_no"])
            rows.append(((r["created_at"], r["out_order_no"], r["position"]), ProfitSharingBillRow(
                time=bill_time(r["created_at"]), sub_mchid=r["sub_mchid"], sp_mchid=self._sp_mchid,
                transaction_id=r["transaction_id"], order_id=r["order_id"], detail_id=r["detail_id"],
                out_no=r["out_order_no"], receiver_type=r["type"], receiver=r["account"], amount_fen=amount,
                business_type=SPLIT, status=status_as_of(r["result"], r["finished_at"], generated, "PENDING"),
                description=r["description"])))
        for r in self._state.rows(
                "SELECT * FROM ps_returns WHERE created_at >= ? AND created_at < ? AND (? IS NULL OR sub_mchid = ?)",
                (start, end, sub_mchid, sub_mchid)):
            rows.append(((r["created_at"], r["out_return_no"], 0), ProfitSharingBillRow(
                time=bill_time(r["created_at"]), sub_mchid=r["sub_mchid"], sp_mchid=self._sp_mchid,
                transaction_id=r["transaction_id"], order_id=r["return_id"], detail_id="",
                out_no=r["out_return_no"], receiver_type="MERCHANT_ID", receiver=r["return_mchid"],
                amount_fen=r["amount_fen"], business_type=RETURN,
                status=status_as_of(r["result"], r["finished_at"], generated, "PROCESSING"),
                description=r["description"])))
        for out_order_no in used:
            self._use(differs[out_order_no])
        rows.sort(key=lambda pair: pair[0])
        return [row for _, row in rows]

    def trade_bill(self, day: date, bill_type: str = "ALL", sub_mchid: str | None = None) -> bytes | None:
        """The trade bill file of a day, or None when it would have no detail row."""
        rows = self.trade_rows(day, sub_mchid, bill_type)
        return encode(trade_bill_lines(rows, bill_type)) if rows else None

    def profitsharing_bill(self, day: date, sub_mchid: str | None = None) -> bytes | None:
        rows = self.profitsharing_rows(day, sub_mchid)
        return encode(profitsharing_bill_lines(rows)) if rows else None

    # -- WeChat Pay API v3: apply ------------------------------------------------------------------

    @staticmethod
    def _query_error(message: str, field: str) -> V3Error:
        return V3Error(400, "PARAM_ERROR", message, {"location": "query", "field": field})

    def _bill_date(self, query: dict) -> date:
        text = query.get("bill_date")
        if not text:
            raise self._query_error("缺少参数 bill_date", "bill_date")
        try:
            if not _DATE.match(text):
                raise ValueError
            day = date.fromisoformat(text)
        except ValueError:
            raise self._query_error(f"bill_date 格式错误, 应为 yyyy-MM-DD 且是有效日期: {text!r}", "bill_date") from None
        problem = availability(day, self._clock.timestamp())
        if problem is None:
            return day
        code, message = problem
        detail = {"PARAM_ERROR": {"location": "query", "field": "bill_date"},
                  "NO_STATEMENT_EXIST": {"issue": f"仅支持三个月内的账单下载申请 (older than {HISTORY_MONTHS} months)"},
                  }.get(code)
        raise V3Error(400, code, message, detail)

    def _options(self, query: dict) -> tuple[bool, str | None]:
        """(gzip?, sub_mchid) from the query, or PARAM_ERROR."""
        tar_type = query.get("tar_type")
        if tar_type is not None and tar_type != "GZIP":
            raise self._query_error("tar_type 只能是 GZIP(不填则不压缩)", "tar_type")
        sub_mchid = query.get("sub_mchid")
        if sub_mchid is not None and not is_merchant(sub_mchid):
            raise self._query_error("sub_mchid 不是有效的子商户号", "sub_mchid")
        return tar_type == "GZIP", sub_mchid

    def apply_trade_bill(self, request: Request) -> Reply:
        query = request.query
        bill_type = query.get("bill_type", "ALL")
        if bill_type not in BILL_TYPES:
            raise self._query_error(f"bill_type 只能是 {'/'.join(BILL_TYPES)}(沙箱不提供充值退款与个性化账单)",
                                    "bill_type")
        zipped, sub_mchid = self._options(query)
        day = self._bill_date(query)
        content = self.trade_bill(day, bill_type, sub_mchid)
        if content is None:
            raise V3Error(400, *NO_STATEMENT)
        return ok(self._offer(request, day, content, zipped))

    def apply_profitsharing_bill(self, request: Request) -> Reply:
        zipped, sub_mchid = self._options(request.query)
        day = self._bill_date(request.query)
        content = self.profitsharing_bill(day, sub_mchid)
        if content is None:
            raise V3Error(400, *NO_STATEMENT)
        return ok(self._offer(request, day, content, zipped))

    def _offer(self, request: Request, day: date, content: bytes, zipped: bool) -> dict:
        """Keeps the file under a new token for 30 wall seconds; the apply answer."""
        hash_value = sha1_hex(content)
        for fault in self._day_faults("bill_hash_corrupt", day):
            hash_value = corrupt_hash(content)
            self._use(fault)
            break
        body = gzip.compress(content, mtime=0) if zipped else content
        token = secrets.token_urlsafe(48)
        now = self._wall()
        with self._files_lock:
            for old in [t for t, (expires, _, _) in self._files.items() if expires <= now]:
                del self._files[old]
            self._files[token] = (now + DOWNLOAD_URL_TTL_S, body, GZIP_TYPE if zipped else TEXT_TYPE)
        base = f"http://{request.headers.get('host') or '127.0.0.1'}"
        url = f"{base}{DOWNLOAD_PATH}?token={token}" + ("&tartype=gzip" if zipped else "")
        return {"hash_type": "SHA1", "hash_value": hash_value, "download_url": url}

    # -- WeChat Pay API v3: download (authenticated, answered unsigned) -----------------------------

    def download(self, request: Request) -> Reply:
        try:
            try:
                verify_request(self._keys, self._sp_mchid, request.method, request.target, request.body,
                               request.headers.get("authorization"), self._wall())
            except AuthorizationError as exc:
                raise V3Error(401, "SIGN_ERROR", str(exc),
                              {"location": "authorization", "issue": "sign not match"}) from None
            reply = self._file(request)
        except V3Error as exc:
            return self._gateway.sign(ok(exc.body(), exc.status))
        except Exception:  # noqa: BLE001 - answered like every other /v3 failure
            traceback.print_exc(file=self._log)
            return self._gateway.sign(ok({"code": "SYSTEM_ERROR", "message": "系统错误 (sandbox error: see its log)"},
                                         500))
        reply.headers["Request-ID"] = uuid.uuid4().hex.upper()
        return reply

    def _file(self, request: Request) -> Reply:
        token = request.query.get("token")
        if not token:
            raise V3Error(400, "PARAM_ERROR", "缺少参数 token", {"location": "query", "field": "token"})
        with self._files_lock:
            found = self._files.get(token)
        if found is None:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "账单下载链接不存在，请重新申请账单")
        expires, body, content_type = found
        if self._wall() >= expires:
            raise V3Error(400, "INVALID_REQUEST",
                          f"账单下载链接已过期(有效期{DOWNLOAD_URL_TTL_S}秒)，请重新申请账单")
        return Reply(200, body, {"Content-Type": content_type})
