"""Partner-mode JSAPI payments (``wechatpay-v3.md`` §4), as the service provider sees them:
prepay, query by out_trade_no or transaction_id, close — plus the controls that play
the customer: ``POST /sandbox/pay`` (pay in the payment sheet) and
``POST /sandbox/orders/{out_trade_no}/confirm-receipt``.

An order is NOTPAY from prepay until paid (SUCCESS), closed (CLOSED: by the merchant,
or when its time_expire passes on the business clock) or refunded (REFUND). Expiry is
applied whenever an order is read, and by the due work (``expire_due``).

Settlement (a trade mini-program's payment, ``wechatpay-v3.md`` §8.x): a paid order is
shipped when the merchant uploads its shipping information (``shipping.py`` calls
``mark_shipped``); it is received when the buyer confirms receipt (the control
``confirm-receipt``) or, failing that, ``AUTO_CONFIRM_AFTER_S`` (10 days) of business
time after the upload; it settles — becomes splittable — at the moment it is received.
So ``received_at == settled_at`` always here, and get_order goes from 2 (shipped)
straight to 4 (done); 3 (receipt confirmed, not yet settled) never shows. An order
refunded in full before it falls due for automatic confirmation is not settled.
Automatic confirmation is applied whenever an order is read and by the due work
(``settle_due``); ``is_settled`` is what profit sharing asks.
"""
from __future__ import annotations

import json
import re
import secrets
from datetime import datetime

from chalicelib.domain.time import BEIJING, rfc3339
from infra.local.sandbox import fields
from infra.local.sandbox.fees import payment_fee
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.merchants import is_merchant
from infra.local.sandbox.v3 import V3Error, json_body, no_content, ok, param_error

OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
DEFAULT_VALIDITY_S = 7 * 86400   # an order without time_expire can be paid for 7 days
MIN_VALIDITY_S = 60              # an earlier time_expire is raised to one minute
PAID_STATES = ("SUCCESS", "REFUND")
TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "订单已关闭"}
NOTIFY_COPIES = {"none": 0, "once": 1, "twice": 2}
AUTO_CONFIRM_AFTER_S = 10 * 86400   # WeChat confirms receipt itself 10 days after the shipping upload


def validate_prepay(body: dict, sp_mchid: str, sp_appid: str) -> dict:
    """A partner JSAPI prepay body -> the order's fields, or V3Error as WeChat would answer."""
    appid = fields.text(body, "sp_appid", 32)
    mchid = fields.text(body, "sp_mchid", 32)
    sub_mchid = fields.text(body, "sub_mchid", 32)
    if mchid != sp_mchid:
        raise param_error("sp_mchid 与发起请求的商户号不一致", "sp_mchid")
    if appid != sp_appid:
        raise V3Error(400, "APPID_MCHID_NOT_MATCH", "sp_appid和sp_mchid不匹配")
    if not is_merchant(sub_mchid):
        raise V3Error(400, "MCH_NOT_EXISTS", "子商户号不存在")
    sub_appid = fields.text(body, "sub_appid", 32, required=False)
    out_trade_no = body.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no):
        raise param_error("out_trade_no 必须是6-32个字符(数字、大小写字母、_-|*)", "out_trade_no")
    description = fields.text(body, "description", 127)
    attach = fields.text(body, "attach", 128, required=False)
    fields.text(body, "goods_tag", 32, required=False)
    notify_url = fields.notify_url(body.get("notify_url"))
    time_expire = body.get("time_expire")
    expires_at = None
    if time_expire is not None:
        try:
            moment = datetime.fromisoformat(time_expire) if isinstance(time_expire, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or "T" not in time_expire:
            raise param_error("time_expire 格式错误, 应为 yyyy-MM-DDTHH:mm:ss+TIMEZONE", "time_expire")
        expires_at = moment.timestamp()
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("缺少参数 amount", "amount")
    total = fields.fen(amount.get("total"), "amount.total")
    currency = amount.get("currency", "CNY")
    if currency != "CNY":
        raise param_error("amount.currency 只支持CNY", "amount.currency")
    payer = body.get("payer")
    if not isinstance(payer, dict):
        raise param_error("缺少参数 payer", "payer")
    sp_openid = fields.text(payer, "sp_openid", 128, required=False, field="payer.sp_openid")
    sub_openid = fields.text(payer, "sub_openid", 128, required=False, field="payer.sub_openid")
    if not sp_openid and not sub_openid:
        raise param_error("payer.sp_openid 与 payer.sub_openid 必须填一个", "payer")
    if sub_openid and not sub_appid:
        raise param_error("传了 payer.sub_openid 时 sub_appid 必填", "sub_appid")
    settle_info = body.get("settle_info", {})
    if not isinstance(settle_info, dict) or not isinstance(settle_info.get("profit_sharing", False), bool):
        raise param_error("settle_info.profit_sharing 必须是布尔值", "settle_info.profit_sharing")
    return {"sp_mchid": mchid, "sp_appid": appid, "sub_mchid": sub_mchid, "sub_appid": sub_appid,
            "out_trade_no": out_trade_no, "description": description, "total_fen": total, "currency": currency,
            "payer_sp_openid": sp_openid, "payer_sub_openid": sub_openid, "attach": attach,
            "notify_url": notify_url, "profit_sharing": int(settle_info.get("profit_sharing", False)),
            "time_expire_at": expires_at}


def canonical(body: dict) -> str:
    """The body in one spelling, so a repeat with the same parameters is recognised."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def new_transaction_id(now: float) -> str:
    """28 digits like WeChat's: 4200000 + 3 + the Beijing date + 10."""
    day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"4200000{secrets.randbelow(1000):03d}{day}{secrets.randbelow(10 ** 10):010d}"


def new_prepay_id(now: float) -> str:
    return "wx" + datetime.fromtimestamp(now, BEIJING).strftime("%d%H%M%S") + secrets.token_hex(13)


def transaction_json(row: dict) -> dict:
    """The partner transaction as WeChat's query answers it (and a notification carries it)."""
    data = {"sp_appid": row["sp_appid"], "sp_mchid": row["sp_mchid"], "sub_mchid": row["sub_mchid"],
            "out_trade_no": row["out_trade_no"], "trade_state": row["trade_state"],
            "trade_state_desc": TRADE_STATE_DESC[row["trade_state"]]}
    if row["sub_appid"]:
        data["sub_appid"] = row["sub_appid"]
    if row["transaction_id"] is None:
        data["amount"] = {"total": row["total_fen"], "currency": row["currency"], "payer_currency": row["currency"]}
        return data
    payer = {"sp_openid": row["payer_sp_openid"]} if row["payer_sp_openid"] else {}
    if row["payer_sub_openid"]:
        payer["sub_openid"] = row["payer_sub_openid"]
    data.update({"transaction_id": row["transaction_id"], "trade_type": "JSAPI", "bank_type": "OTHERS",
                 "success_time": rfc3339(row["success_at"]), "payer": payer,
                 "amount": {"total": row["total_fen"], "payer_total": row["payer_total_fen"],
                            "currency": row["currency"], "payer_currency": row["currency"]},
                 "promotion_detail": []})
    if row["attach"]:
        data["attach"] = row["attach"]  # WeChat shows attach only once the order is paid
    return data


class Payments:
    def __init__(self, state, clock, merchants, notifier, request_log, sp_mchid: str, sp_appid: str):
        self._state = state
        self._clock = clock
        self._merchants = merchants
        self._notifier = notifier
        self._requests = request_log
        self._sp_mchid = sp_mchid
        self._sp_appid = sp_appid

    def routes(self, router, gateway) -> None:
        base = "/v3/pay/partner/transactions"
        gateway.route(router, "POST", f"{base}/jsapi", self.prepay)
        gateway.route(router, "GET", f"{base}/out-trade-no/{{out_trade_no}}", self.query_by_out_trade_no)
        gateway.route(router, "GET", f"{base}/id/{{transaction_id}}", self.query_by_transaction_id)
        gateway.route(router, "POST", f"{base}/out-trade-no/{{out_trade_no}}/close", self.close)
        router.add("POST", "/sandbox/pay", self.pay)
        router.add("POST", "/sandbox/orders/{out_trade_no}/confirm-receipt", self.confirm_receipt)
        router.add("GET", "/sandbox/transactions/{out_trade_no}", self.get_transaction)

    # -- storage ----------------------------------------------------------------------------------

    def find(self, out_trade_no: str | None = None, transaction_id: str | None = None) -> dict | None:
        """The order as it stands now (expired on the way if its time has passed)."""
        with self._state.transaction() as db:
            column, value = ("transaction_id", transaction_id) if transaction_id else ("out_trade_no", out_trade_no)
            row = self._state.row(f"SELECT * FROM pay_transactions WHERE {column} = ?", (value,))
            if row and row["trade_state"] == "NOTPAY" and row["expires_at"] <= self._clock.timestamp():
                db.execute("UPDATE pay_transactions SET trade_state = 'CLOSED', closed_at = expires_at"
                           " WHERE out_trade_no = ? AND trade_state = 'NOTPAY'", (row["out_trade_no"],))
                row = self._state.row("SELECT * FROM pay_transactions WHERE out_trade_no = ?",
                                      (row["out_trade_no"],))
            if row and row["shipped_at"] is not None and row["received_at"] is None \
                    and row["shipped_at"] + AUTO_CONFIRM_AFTER_S <= self._clock.timestamp():
                self._auto_confirm(row)
                row = self._state.row("SELECT * FROM pay_transactions WHERE out_trade_no = ?",
                                      (row["out_trade_no"],))
        return row

    def expire_due(self) -> int:
        """Due work: unpaid orders past their time_expire are CLOSED."""
        with self._state.transaction() as db:
            return db.execute("UPDATE pay_transactions SET trade_state = 'CLOSED', closed_at = expires_at"
                              " WHERE trade_state = 'NOTPAY' AND expires_at <= ?",
                              (self._clock.timestamp(),)).rowcount

    def mark_refunding(self, out_trade_no: str) -> None:
        with self._state.transaction() as db:
            db.execute("UPDATE pay_transactions SET trade_state = 'REFUND' WHERE out_trade_no = ?", (out_trade_no,))

    # -- shipping, receipt, settlement --------------------------------------------------------------

    def mark_shipped(self, out_trade_no: str, at: float) -> None:
        """The shipping information was uploaded (joins the caller's transaction)."""
        with self._state.transaction() as db:
            db.execute("UPDATE pay_transactions SET shipped_at = ? WHERE out_trade_no = ? AND shipped_at IS NULL",
                       (at, out_trade_no))

    def refunded_fen(self, out_trade_no: str, by: float | None = None) -> int:
        """What successful refunds have given back (those that succeeded by ``by``, if given)."""
        found = self._state.row("SELECT COALESCE(SUM(refund_fen), 0) AS fen FROM pay_refunds WHERE out_trade_no = ?"
                                " AND status = 'SUCCESS' AND (? IS NULL OR success_at <= ?)",
                                (out_trade_no, by, by))
        return found["fen"]

    def refunded_in_full(self, row: dict, by: float | None = None) -> bool:
        return row["transaction_id"] is not None and self.refunded_fen(row["out_trade_no"], by) >= row["total_fen"]

    def _auto_confirm(self, row: dict) -> bool:
        """WeChat confirms receipt of a shipped order itself once 10 days have passed since the
        upload, and the payment settles then (at that moment, not at whenever this runs)."""
        due = row["shipped_at"] + AUTO_CONFIRM_AFTER_S
        if self.refunded_in_full(row, by=due):
            return False  # nothing left to settle
        with self._state.transaction() as db:
            return db.execute("UPDATE pay_transactions SET received_at = ?, settled_at = COALESCE(settled_at, ?)"
                              " WHERE out_trade_no = ? AND received_at IS NULL",
                              (due, due, row["out_trade_no"])).rowcount == 1

    def settle_due(self) -> int:
        """Due work: shipped orders nobody confirmed within 10 days are received and settled."""
        with self._state.transaction():
            due = self._state.rows("SELECT * FROM pay_transactions WHERE received_at IS NULL"
                                   " AND shipped_at IS NOT NULL AND shipped_at <= ?",
                                   (self._clock.timestamp() - AUTO_CONFIRM_AFTER_S,))
            return sum(self._auto_confirm(row) for row in due)

    def is_settled(self, out_trade_no: str) -> bool:
        """True once the payment has settled (receipt confirmed by the buyer or automatically):
        profit sharing refuses an unsettled transaction."""
        row = self.find(out_trade_no)
        return row is not None and row["settled_at"] is not None

    # -- WeChat Pay API v3 ------------------------------------------------------------------------

    def prepay(self, request: Request) -> Reply:
        body = json_body(request)
        if isinstance(body.get("out_trade_no"), str):
            self._requests.received("prepay", body["out_trade_no"])
        order = validate_prepay(body, self._sp_mchid, self._sp_appid)
        spelled = canonical(body)
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            existing = self.find(order["out_trade_no"])
            if existing is not None:
                if existing["request"] != spelled:
                    raise V3Error(400, "INVALID_REQUEST", "201 商户订单号重复",
                                  {"issue": "parameters differ from the first request with this out_trade_no"})
                if existing["trade_state"] in PAID_STATES:
                    raise V3Error(400, "ORDERPAID", "该订单已支付")
                if existing["trade_state"] == "CLOSED":
                    raise V3Error(400, "ORDER_CLOSED", "该订单已关闭")
                return ok({"prepay_id": existing["prepay_id"]})
            expires_at = order.pop("time_expire_at")
            expires_at = now + DEFAULT_VALIDITY_S if expires_at is None else max(expires_at, now + MIN_VALIDITY_S)
            prepay_id = new_prepay_id(now)
            columns = {**order, "prepay_id": prepay_id, "request": spelled, "created_at": now,
                       "expires_at": expires_at, "trade_state": "NOTPAY"}
            db.execute(f"INSERT INTO pay_transactions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                       tuple(columns.values()))
            self._requests.accepted("prepay", order["out_trade_no"])
        return ok({"prepay_id": prepay_id})

    def _own_order(self, row: dict | None, sp_mchid: str | None, sub_mchid: str | None) -> dict:
        if not sp_mchid or not sub_mchid:
            raise V3Error(400, "PARAM_ERROR", "缺少参数 sp_mchid 或 sub_mchid", {"location": "query"})
        if sp_mchid != self._sp_mchid:
            raise V3Error(400, "PARAM_ERROR", "sp_mchid 与发起请求的商户号不一致", {"location": "query"})
        if row is None or row["sub_mchid"] != sub_mchid:
            raise V3Error(404, "ORDER_NOT_EXIST", "订单不存在")
        return row

    def query_by_out_trade_no(self, request: Request) -> Reply:
        row = self.find(request.params["out_trade_no"])
        return ok(transaction_json(self._own_order(row, request.query.get("sp_mchid"), request.query.get("sub_mchid"))))

    def query_by_transaction_id(self, request: Request) -> Reply:
        row = self.find(transaction_id=request.params["transaction_id"])
        return ok(transaction_json(self._own_order(row, request.query.get("sp_mchid"), request.query.get("sub_mchid"))))

    def close(self, request: Request) -> Reply:
        body = json_body(request)
        with self._state.transaction() as db:
            row = self._own_order(self.find(request.params["out_trade_no"]), body.get("sp_mchid"),
                                  body.get("sub_mchid"))
            if row["trade_state"] in PAID_STATES:
                raise V3Error(400, "ORDERPAID", "订单已支付")
            db.execute("UPDATE pay_transactions SET trade_state = 'CLOSED', closed_at = ?"
                       " WHERE out_trade_no = ? AND trade_state = 'NOTPAY'",
                       (self._clock.timestamp(), row["out_trade_no"]))
        return no_content()

    # -- controls (the customer's side) -----------------------------------------------------------

    def pay(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("out_trade_no"), str):
            return Reply.error(400, "MALFORMED_JSON", 'send {"out_trade_no", "notify": "once"|"twice"|"none"}')
        notify = body.get("notify", "once")
        if notify not in NOTIFY_COPIES:
            return Reply.error(400, "INVALID_NOTIFY", "notify is one of once, twice, none", {"notify": notify})
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            row = self.find(body["out_trade_no"])
            if row is None:
                return Reply.error(404, "ORDER_NOT_FOUND", "no prepaid order with this out_trade_no",
                                   {"out_trade_no": body["out_trade_no"]})
            if row["trade_state"] != "NOTPAY":
                return Reply.error(409, "ORDER_NOT_PAYABLE", f"the order is {row['trade_state']}, not NOTPAY",
                                   {"trade_state": row["trade_state"]})
            fee = payment_fee(row["total_fen"])
            transaction_id = new_transaction_id(now)
            db.execute("UPDATE pay_transactions SET trade_state = 'SUCCESS', transaction_id = ?, success_at = ?,"
                       " payer_total_fen = total_fen, fee_fen = ? WHERE out_trade_no = ?",
                       (transaction_id, now, fee, row["out_trade_no"]))
            self._merchants.add_balance(row["sub_mchid"], row["total_fen"] - fee)
            paid = self.find(row["out_trade_no"])
            deliveries = []
            if NOTIFY_COPIES[notify]:
                deliveries = self._notifier.enqueue(
                    row["out_trade_no"], row["notify_url"], "TRANSACTION.SUCCESS", "支付成功", transaction_json(paid),
                    "transaction", copies=NOTIFY_COPIES[notify], claim=True)
        self._notifier.deliver(deliveries)
        return Reply.json({"transaction_id": transaction_id})

    def confirm_receipt(self, request: Request) -> Reply:
        """The buyer confirms receipt in WeChat: only a shipped order; it settles at once.
        A repeat answers the first confirmation again."""
        out_trade_no = request.params["out_trade_no"]
        with self._state.transaction() as db:
            row = self.find(out_trade_no)
            if row is None:
                return Reply.error(404, "ORDER_NOT_FOUND", "no order with this out_trade_no")
            if row["transaction_id"] is None:
                return Reply.error(409, "ORDER_NOT_PAID", f"the order is {row['trade_state']}: nothing to receive",
                                   {"trade_state": row["trade_state"]})
            if row["receipt_confirmed_at"] is None:
                if row["shipped_at"] is None:
                    return Reply.error(409, "NOT_SHIPPED", "no shipping information was uploaded for this order:"
                                       " the buyer cannot confirm receipt yet", {"trade_state": row["trade_state"]})
                if row["received_at"] is not None:
                    return Reply.error(409, "RECEIPT_AUTO_CONFIRMED", "WeChat already confirmed receipt itself,"
                                       " 10 days after shipping", {"received_at": rfc3339(row["received_at"])})
                if self.refunded_in_full(row):
                    return Reply.error(409, "ORDER_REFUNDED", "the order was refunded in full: nothing to receive",
                                       {"trade_state": row["trade_state"]})
                now = self._clock.timestamp()
                db.execute("UPDATE pay_transactions SET receipt_confirmed_at = ?, received_at = ?,"
                           " settled_at = COALESCE(settled_at, ?) WHERE out_trade_no = ?"
                           " AND receipt_confirmed_at IS NULL", (now, now, now, out_trade_no))
                row = self.find(out_trade_no)
        return Reply.json({"out_trade_no": out_trade_no, "transaction_id": row["transaction_id"],
                           "receipt_confirmed_at": rfc3339(row["receipt_confirmed_at"]),
                           "received_at": rfc3339(row["received_at"]), "settled_at": rfc3339(row["settled_at"])})

    def _shipping_view(self, out_trade_no: str) -> dict | None:
        """The uploaded shipping information as the sandbox holds it (None before an upload)."""
        found = self._state.row("SELECT * FROM wxa_shipping WHERE out_trade_no = ?", (out_trade_no,))
        if found is None:
            return None
        return {"logistics_type": found["logistics_type"], "delivery_mode": found["delivery_mode"],
                "is_all_delivered": None if found["is_all_delivered"] is None else bool(found["is_all_delivered"]),
                "shipping_list": json.loads(found["shipping_list"]), "upload_time": found["upload_time"],
                "uploaded_at": rfc3339(found["uploaded_at"]), "reminders": found["reminders"]}

    def get_transaction(self, request: Request) -> Reply:
        """What the provider holds on an order, fee included (for tests and later the bills)."""
        row = self.find(request.params["out_trade_no"])
        if row is None:
            return Reply.error(404, "ORDER_NOT_FOUND", "no order with this out_trade_no")
        refunds = self._state.rows("SELECT out_refund_no, refund_id, status, refund_fen, fee_refund_fen, created_at"
                                   " FROM pay_refunds WHERE out_trade_no = ? ORDER BY created_at, out_refund_no",
                                   (row["out_trade_no"],))
        standing = [r for r in refunds if r["status"] != "CLOSED"]

        def when(value):
            return rfc3339(value) if value is not None else None

        return Reply.json({
            "out_trade_no": row["out_trade_no"], "sub_mchid": row["sub_mchid"], "trade_state": row["trade_state"],
            "transaction_id": row["transaction_id"], "total_fen": row["total_fen"],
            "payer_total_fen": row["payer_total_fen"], "fee_fen": row["fee_fen"],
            "profit_sharing": bool(row["profit_sharing"]), "created_at": when(row["created_at"]),
            "expires_at": when(row["expires_at"]), "success_time": when(row["success_at"]),
            "closed_at": when(row["closed_at"]), "receipt_confirmed_at": when(row["receipt_confirmed_at"]),
            "shipping": self._shipping_view(row["out_trade_no"]), "shipped_at": when(row["shipped_at"]),
            "received_at": when(row["received_at"]), "settled_at": when(row["settled_at"]),
            "refunded_fen": sum(r["refund_fen"] for r in standing),
            "fee_refunded_fen": sum(r["fee_refund_fen"] for r in standing),
            "refunds": [{"out_refund_no": r["out_refund_no"], "refund_id": r["refund_id"], "status": r["status"],
                         "refund_fen": r["refund_fen"], "fee_refund_fen": r["fee_refund_fen"]} for r in refunds]})
