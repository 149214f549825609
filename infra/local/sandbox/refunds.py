"""Domestic refunds (``wechatpay-v3.md`` §5) in partner mode, and the control that ends
a refund the way the provider would (``POST /sandbox/refunds/{out_refund_no}/finish``).

A refund is accepted as PROCESSING and succeeds by itself ``COMPLETE_AFTER_S`` seconds
of business time later — when the due work runs (each clock move, every second) or when
it is queried after that — unless it was asked for under the fault ``refunds_hold``:
then it waits for the control. Money: the sub-merchant's available balance must cover
the refund less the part of the fee it gives back; a CLOSED refund puts it back.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from chalicelib.domain.time import BEIJING, rfc3339
from infra.local.sandbox import fields
from infra.local.sandbox.fees import fee_refund
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.merchants import is_merchant
from infra.local.sandbox.pay import NOTIFY_COPIES, PAID_STATES, canonical
from infra.local.sandbox.v3 import V3Error, json_body, ok, param_error

OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
COMPLETE_AFTER_S = 5
MAX_REFUNDS_PER_ORDER = 50
REFUND_WINDOW_S = 365 * 86400
USER_RECEIVED_ACCOUNT = "支付用户零钱"
EVENTS = {"SUCCESS": ("REFUND.SUCCESS", "退款成功"), "CLOSED": ("REFUND.CLOSED", "退款关闭"),
          "ABNORMAL": ("REFUND.ABNORMAL", "退款异常")}


def new_refund_id(now: float) -> str:
    """29 digits like WeChat's refund ids."""
    day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"5030000{day}{secrets.randbelow(10 ** 14):014d}"


def validate_refund(body: dict) -> dict:
    sub_mchid = body.get("sub_mchid")
    if not isinstance(sub_mchid, str) or not sub_mchid:
        raise param_error("服务商模式下 sub_mchid 必填", "sub_mchid")
    if not is_merchant(sub_mchid):
        raise V3Error(404, "MCH_NOT_EXISTS", "子商户号不存在")
    out_refund_no = body.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.match(out_refund_no):
        raise param_error("out_refund_no 必须是1-64个字符(数字、大小写字母、_-|*@)", "out_refund_no")
    transaction_id = fields.text(body, "transaction_id", 32, required=False)
    out_trade_no = fields.text(body, "out_trade_no", 32, required=False)
    if not transaction_id and not out_trade_no:
        raise param_error("transaction_id 与 out_trade_no 必须填一个", "out_trade_no")
    fields.text(body, "reason", 80, required=False)
    notify_url = fields.notify_url(body["notify_url"]) if body.get("notify_url") is not None else None
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("缺少参数 amount", "amount")
    refund, total = fields.fen(amount.get("refund"), "amount.refund"), fields.fen(amount.get("total"), "amount.total")
    if amount.get("currency") != "CNY":
        raise param_error("amount.currency 必填, 只支持CNY", "amount.currency")
    if refund > total:
        raise param_error("退款金额不能大于订单金额", "amount.refund")
    return {"sub_mchid": sub_mchid, "out_refund_no": out_refund_no, "transaction_id": transaction_id,
            "out_trade_no": out_trade_no, "reason": body.get("reason"), "notify_url": notify_url,
            "refund_fen": refund, "total_fen": total}


def refund_json(row: dict, trade: dict) -> dict:
    """A refund as WeChat's refund and refund-query APIs answer it."""
    data = {"refund_id": row["refund_id"], "out_refund_no": row["out_refund_no"],
            "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
            "channel": "ORIGINAL", "user_received_account": USER_RECEIVED_ACCOUNT,
            "create_time": rfc3339(row["created_at"]), "status": row["status"], "funds_account": "AVAILABLE",
            "amount": {"total": row["total_fen"], "refund": row["refund_fen"], "from": [],
                       "payer_total": trade["payer_total_fen"], "payer_refund": row["refund_fen"],
                       "settlement_refund": row["refund_fen"], "settlement_total": row["total_fen"],
                       "discount_refund": 0, "currency": "CNY", "refund_fee": row["fee_refund_fen"]},
            "promotion_detail": []}
    if row["success_at"] is not None:
        data["success_time"] = rfc3339(row["success_at"])
    return data


def refund_notice(row: dict, trade: dict) -> dict:
    """The decrypted resource of a REFUND.* notification (partner mode)."""
    data = {"sp_mchid": trade["sp_mchid"], "sub_mchid": trade["sub_mchid"],
            "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
            "refund_id": row["refund_id"], "out_refund_no": row["out_refund_no"], "refund_status": row["status"],
            "user_received_account": USER_RECEIVED_ACCOUNT,
            "amount": {"total": row["total_fen"], "refund": row["refund_fen"],
                       "payer_total": trade["payer_total_fen"], "payer_refund": row["refund_fen"]}}
    if row["success_at"] is not None:
        data["success_time"] = rfc3339(row["success_at"])
    return data


class Refunds:
    def __init__(self, state, clock, payments, merchants, notifier, request_log, faults):
        self._state = state
        self._clock = clock
        self._payments = payments
        self._merchants = merchants
        self._notifier = notifier
        self._requests = request_log
        self._faults = faults

    def routes(self, router, gateway) -> None:
        gateway.route(router, "POST", "/v3/refund/domestic/refunds", self.create)
        gateway.route(router, "GET", "/v3/refund/domestic/refunds/{out_refund_no}", self.query)
        router.add("POST", "/sandbox/refunds/{out_refund_no}/finish", self.finish)

    def _get(self, out_refund_no: str) -> dict | None:
        return self._state.row("SELECT * FROM pay_refunds WHERE out_refund_no = ?", (out_refund_no,))

    # -- WeChat Pay API v3 ------------------------------------------------------------------------

    def create(self, request: Request) -> Reply:
        body = json_body(request)
        if isinstance(body.get("out_refund_no"), str):
            self._requests.received("refund", body["out_refund_no"])
        asked = validate_refund(body)
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            trade = self._payments.find(asked["out_trade_no"], asked["transaction_id"])
            if trade is not None and asked["transaction_id"] and asked["out_trade_no"] \
                    and trade["out_trade_no"] != asked["out_trade_no"]:
                trade = None  # the two numbers name different orders
            existing = self._get(asked["out_refund_no"])
            if existing is not None:
                same = (trade is not None and existing["out_trade_no"] == trade["out_trade_no"]
                        and existing["sub_mchid"] == asked["sub_mchid"]
                        and existing["refund_fen"] == asked["refund_fen"]
                        and existing["total_fen"] == asked["total_fen"])
                if not same:
                    raise param_error("订单金额或退款金额与之前请求不一致，请核实后再试", "out_refund_no")
                return ok(refund_json(self._complete_if_due(existing), trade))
            if trade is None or trade["sub_mchid"] != asked["sub_mchid"]:
                raise V3Error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            if trade["trade_state"] not in PAID_STATES:
                raise V3Error(400, "INVALID_REQUEST", f"订单状态为{trade['trade_state']}，未支付的订单不能退款")
            if asked["total_fen"] != trade["total_fen"]:
                raise V3Error(400, "INVALID_REQUEST", "amount.total 与原订单金额不一致")
            if now > trade["success_at"] + REFUND_WINDOW_S:
                raise V3Error(400, "INVALID_REQUEST", "订单已超过可退款的最大期限(1年)")
            earlier = self._state.rows("SELECT status, refund_fen, fee_refund_fen FROM pay_refunds"
                                       " WHERE out_trade_no = ?", (trade["out_trade_no"],))
            if len(earlier) >= MAX_REFUNDS_PER_ORDER:
                raise V3Error(400, "INVALID_REQUEST", f"一笔订单最多可退款{MAX_REFUNDS_PER_ORDER}次")
            standing = [r for r in earlier if r["status"] != "CLOSED"]
            refunded_after = sum(r["refund_fen"] for r in standing) + asked["refund_fen"]
            if refunded_after > trade["total_fen"]:
                raise V3Error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            fee_back = fee_refund(trade["fee_fen"], trade["total_fen"], refunded_after,
                                  sum(r["fee_refund_fen"] for r in standing))
            net = asked["refund_fen"] - fee_back
            if self._merchants.settings(asked["sub_mchid"])["balance_fen"] < net:
                raise V3Error(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
            self._merchants.add_balance(asked["sub_mchid"], -net)
            held = self._faults.take("refunds_hold") is not None
            db.execute(
                "INSERT INTO pay_refunds (out_refund_no, refund_id, out_trade_no, sub_mchid, request, refund_fen,"
                " total_fen, fee_refund_fen, reason, notify_url, status, held, created_at, complete_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', ?, ?, ?)",
                (asked["out_refund_no"], new_refund_id(now), trade["out_trade_no"], asked["sub_mchid"],
                 canonical(body), asked["refund_fen"], asked["total_fen"], fee_back, asked["reason"],
                 asked["notify_url"], int(held), now, now + COMPLETE_AFTER_S))
            self._payments.mark_refunding(trade["out_trade_no"])
            self._requests.accepted("refund", asked["out_refund_no"])
            created = self._get(asked["out_refund_no"])
        return ok(refund_json(created, self._payments.find(trade["out_trade_no"])))

    def query(self, request: Request) -> Reply:
        sub_mchid = request.query.get("sub_mchid")
        if not sub_mchid:
            raise V3Error(400, "PARAM_ERROR", "服务商模式下 sub_mchid 必填", {"location": "query"})
        row = self._get(request.params["out_refund_no"])
        if row is None or row["sub_mchid"] != sub_mchid:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        row = self._complete_if_due(row)
        return ok(refund_json(row, self._payments.find(row["out_trade_no"])))

    # -- ending refunds ---------------------------------------------------------------------------

    def _complete_if_due(self, row: dict) -> dict:
        if row["status"] == "PROCESSING" and not row["held"] and row["complete_at"] <= self._clock.timestamp():
            self._end(row["out_refund_no"], "SUCCESS", row["complete_at"], ("PROCESSING",))
            return self._get(row["out_refund_no"])
        return row

    def complete_due(self) -> int:
        """Due work: refunds whose few seconds have passed succeed (and are notified)."""
        due = self._state.rows("SELECT out_refund_no, complete_at FROM pay_refunds WHERE status = 'PROCESSING'"
                               " AND held = 0 AND complete_at <= ?", (self._clock.timestamp(),))
        return sum(self._end(r["out_refund_no"], "SUCCESS", r["complete_at"], ("PROCESSING",)) is not None
                   for r in due)

    def _end(self, out_refund_no: str, status: str, at: float, allowed_from: tuple[str, ...],
             copies: int = 1, claim: bool = False) -> list[int] | None:
        """Moves a refund to its result and queues its notification; None if it was no
        longer in one of ``allowed_from`` (someone else ended it first)."""
        with self._state.transaction() as db:
            row = self._get(out_refund_no)
            if row is None or row["status"] not in allowed_from:
                return None
            db.execute("UPDATE pay_refunds SET status = ?, finished_at = ?, success_at = ? WHERE out_refund_no = ?",
                       (status, at, at if status == "SUCCESS" else None, out_refund_no))
            if status == "CLOSED":  # the money never left: back to the sub-merchant
                self._merchants.add_balance(row["sub_mchid"], row["refund_fen"] - row["fee_refund_fen"])
            row = self._get(out_refund_no)
            if not row["notify_url"] or not copies:
                return []
            event_type, summary = EVENTS[status]
            return self._notifier.enqueue(out_refund_no, row["notify_url"], event_type, summary,
                                          refund_notice(row, self._payments.find(row["out_trade_no"])), "refund",
                                          copies=copies, claim=claim)

    # -- controls ---------------------------------------------------------------------------------

    def finish(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in EVENTS:
            return Reply.error(400, "INVALID_REFUND_RESULT",
                               'send {"status": "SUCCESS"|"CLOSED"|"ABNORMAL", "notify"?: "once"|"twice"|"none"}')
        notify = body.get("notify", "once")
        if notify not in NOTIFY_COPIES:
            return Reply.error(400, "INVALID_NOTIFY", "notify is one of once, twice, none", {"notify": notify})
        out_refund_no, status = request.params["out_refund_no"], body["status"]
        row = self._get(out_refund_no)
        if row is None:
            return Reply.error(404, "REFUND_NOT_FOUND", "no refund with this out_refund_no")
        # ABNORMAL is not final at WeChat: such a refund can still succeed or close.
        allowed_from = ("PROCESSING",) if status == "ABNORMAL" else ("PROCESSING", "ABNORMAL")
        deliveries = self._end(out_refund_no, status, self._clock.timestamp(), allowed_from,
                               copies=NOTIFY_COPIES[notify], claim=True)
        if deliveries is None:
            current = self._get(out_refund_no)["status"]
            return Reply.error(409, "REFUND_ALREADY_FINISHED", f"the refund is already {current}", {"status": current})
        self._notifier.deliver(deliveries)
        row = self._get(out_refund_no)
        return Reply.json(refund_json(row, self._payments.find(row["out_trade_no"])))
