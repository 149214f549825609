"""Profit-sharing returns (分账回退, ``wechatpay-v3.md`` §6 "Return") in partner mode, as
the service provider asks for them: ``POST /v3/profitsharing/return-orders`` (synchronous)
and its query ``GET /v3/profitsharing/return-orders/{out_return_no}?sub_mchid=&out_order_no=``.

A return takes money a MERCHANT_ID receiver got from one split order back to the
sub-merchant that split it. The split order (named by ``out_order_no`` or WeChat's
``order_id``) must be the sub-merchant's, FINISHED, with ``return_mchid`` among its
receivers with result SUCCESS. Then, in this order::

    the receiver agreed to returns (return_opt_in)      else 403 NO_AUTH
    within RETURN_WINDOW_S (180 days) of the split      else 400 INVALID_REQUEST
    fewer than MAX_RETURNS_PER_ORDER returns so far     else 400 INVALID_REQUEST
    amount <= received - returned (SUCCESS returns)     else 400 INVALID_REQUEST

and the return is carried out at once: when the receiver's available balance
(``merchants.py``) covers the amount it is SUCCESS — the receiver's balance goes down, the
sub-merchant's up — otherwise it is FAILED with ``fail_reason`` BALANCE_NOT_ENOUGH and
nothing moves. (WeChat may instead leave such a return PROCESSING until the receiver tops
up; the sandbox answers the final FAILED.) Returned money does not restore the split
order's or the transaction's unsplit amount.

``out_return_no`` is the idempotency key: the same number with the same fields answers the
return as it stands (FAILED stays FAILED) and is not a second operation; with any other
field PARAM_ERROR. ``/sandbox/requests`` counts api ``profitsharing_return`` per
out_return_no: received on every create call, accepted once per return carried out
(FAILED included). The faults ``profitsharing_error`` / ``profitsharing_slow`` apply with
``api`` ``profitsharing_return`` / ``profitsharing_return_query`` (or none).
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from chalicelib.domain.time import BEIJING, rfc3339
from infra.local.sandbox import fields
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.merchants import is_merchant
from infra.local.sandbox.pay import canonical
from infra.local.sandbox.v3 import V3Error, json_body, ok, param_error

OUT_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
ORDER_ID = re.compile(r"^[0-9]{1,64}$")
MAX_RETURNS_PER_ORDER = 50
RETURN_WINDOW_S = 180 * 86400
DESCRIPTION_MAX = 80
FAIL_REASONS = ("ACCOUNT_ABNORMAL", "BALANCE_NOT_ENOUGH", "TIME_OUT_CLOSED", "PAYER_ACCOUNT_ABNORMAL",
                "INVALID_REQUEST")

NOT_FOUND_MESSAGE = "分账单不存在"
NOT_FINISHED_MESSAGE = "分账单处理中，请分账完成后再回退"
NOT_RECEIVER_MESSAGE = "回退商户号不是该分账单中分账成功的商户类型分账接收方"
NO_AUTH_MESSAGE = "回退方未开通分账回退功能(同意分账回退)，请回退方在商户平台开启后再试"
TOO_LATE_MESSAGE = "分账单已超过180天，不能再回退"
TOO_MANY_MESSAGE = f"对同一笔分账单最多能发起{MAX_RETURNS_PER_ORDER}次回退请求"
TOO_MUCH_MESSAGE = "回退金额超过分账接收方可回退金额(该分账单分给它的金额减去已回退金额)"
REPEAT_MESSAGE = "商户回退单号已使用，请求参数与原请求不一致"


# -- pure rules -------------------------------------------------------------------------------------

def new_return_id(now: float) -> str:
    """28 digits like WeChat's 回退单号."""
    day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"3008{secrets.randbelow(10 ** 6):06d}{day}{secrets.randbelow(10 ** 10):010d}"


def validate_return(body: dict) -> dict:
    """A return-orders body -> its fields, or PARAM_ERROR naming the field at fault."""
    sub_mchid = fields.text(body, "sub_mchid", 32)
    if not is_merchant(sub_mchid):
        raise param_error("sub_mchid 不是有效的子商户号", "sub_mchid")
    order_id = fields.text(body, "order_id", 64, required=False)
    out_order_no = body.get("out_order_no")
    if order_id is None and out_order_no is None:
        raise param_error("order_id 与 out_order_no 必须填一个", "out_order_no")
    if order_id is not None and not ORDER_ID.match(order_id):
        raise param_error("order_id 必须是微信分账单号(数字)", "order_id")
    if out_order_no is not None and (not isinstance(out_order_no, str) or not OUT_NO.match(out_order_no)):
        raise param_error("out_order_no 必须是1-64个字符(数字、大小写字母、_-|*@)", "out_order_no")
    out_return_no = body.get("out_return_no")
    if not isinstance(out_return_no, str) or not OUT_NO.match(out_return_no):
        raise param_error("out_return_no 必须是1-64个字符(数字、大小写字母、_-|*@)", "out_return_no")
    return_mchid = fields.text(body, "return_mchid", 32)
    if not is_merchant(return_mchid):
        raise param_error("return_mchid 必须是商户号", "return_mchid")
    return {"sub_mchid": sub_mchid, "order_id": order_id, "out_order_no": out_order_no,
            "out_return_no": out_return_no, "return_mchid": return_mchid,
            "amount": fields.fen(body.get("amount"), "amount"),
            "description": fields.text(body, "description", DESCRIPTION_MAX)}


def returnable(received_fen: int, returned_fen: int) -> int:
    """What a receiver may still return from one split order: what it got (SUCCESS) less
    what SUCCESS returns took back, never below 0."""
    if received_fen < 0 or returned_fen < 0:
        raise ValueError("amounts are non-negative fen")
    return max(0, received_fen - returned_fen)


def outcome(balance_fen: int, amount_fen: int) -> tuple[str, str | None]:
    """(result, fail_reason) of a return the receiver's available balance must cover."""
    return ("SUCCESS", None) if balance_fen >= amount_fen else ("FAILED", "BALANCE_NOT_ENOUGH")


def same_return(stored: dict, asked: dict, order: dict) -> bool:
    """Whether a repeat of an out_return_no asks for the same return (the split order named
    either way: ``asked`` may give order_id, out_order_no or both)."""
    names_order = (asked["out_order_no"] in (None, order["out_order_no"])
                   and asked["order_id"] in (None, order["order_id"]))
    return (names_order and stored["sub_mchid"] == asked["sub_mchid"]
            and stored["return_mchid"] == asked["return_mchid"] and stored["amount_fen"] == asked["amount"]
            and stored["description"] == asked["description"])


def return_json(row: dict) -> dict:
    """A return as WeChat's create and query answer it."""
    data = {"sub_mchid": row["sub_mchid"], "order_id": row["order_id"], "out_order_no": row["out_order_no"],
            "out_return_no": row["out_return_no"], "return_id": row["return_id"],
            "return_mchid": row["return_mchid"], "amount": row["amount_fen"], "description": row["description"],
            "result": row["result"], "create_time": rfc3339(row["created_at"])}
    if row["fail_reason"]:
        data["fail_reason"] = row["fail_reason"]
    if row["finished_at"] is not None:
        data["finish_time"] = rfc3339(row["finished_at"])
    return data


# -- the APIs ---------------------------------------------------------------------------------------

class ProfitSharingReturns:
    def __init__(self, state, clock, profitsharing, merchants, request_log):
        self._state = state
        self._clock = clock
        self._sharing = profitsharing     # bring_up_to_date, faulted
        self._merchants = merchants
        self._requests = request_log

    def routes(self, router, gateway) -> None:
        base = "/v3/profitsharing/return-orders"
        gateway.route(router, "POST", base, self.create)
        gateway.route(router, "GET", f"{base}/{{out_return_no}}", self.query)

    # -- storage ----------------------------------------------------------------------------------

    def _get(self, out_return_no: str) -> dict | None:
        return self._state.row("SELECT * FROM ps_returns WHERE out_return_no = ?", (out_return_no,))

    def _split_order(self, asked: dict) -> dict | None:
        """The split order the body names (both numbers, when given, must name the same one)."""
        if asked["out_order_no"] is not None:
            order = self._state.row("SELECT * FROM ps_orders WHERE out_order_no = ?", (asked["out_order_no"],))
            if order is not None and asked["order_id"] not in (None, order["order_id"]):
                return None
            return order
        return self._state.row("SELECT * FROM ps_orders WHERE order_id = ?", (asked["order_id"],))

    def returned_fen(self, out_order_no: str, account: str) -> int:
        return self._state.row("SELECT COALESCE(SUM(amount_fen), 0) AS fen FROM ps_returns WHERE out_order_no = ?"
                               " AND return_mchid = ? AND result = 'SUCCESS'", (out_order_no, account))["fen"]

    # -- WeChat Pay API v3 ------------------------------------------------------------------------

    def create(self, request: Request) -> Reply:
        body = json_body(request)
        if isinstance(body.get("out_return_no"), str):
            self._requests.received("profitsharing_return", body["out_return_no"])
        return self._sharing.faulted("profitsharing_return", lambda: self._create(body))

    def _create(self, body: dict) -> Reply:
        asked = validate_return(body)
        with self._state.transaction() as db:
            existing = self._get(asked["out_return_no"])
            if existing is not None:
                order = self._state.row("SELECT * FROM ps_orders WHERE out_order_no = ?", (existing["out_order_no"],))
                if not same_return(existing, asked, order):
                    raise param_error(REPEAT_MESSAGE, "out_return_no")
                return ok(return_json(existing))
            order = self._split_order(asked)
            if order is None or order["sub_mchid"] != asked["sub_mchid"] or order["kind"] != "SPLIT":
                raise V3Error(404, "RESOURCE_NOT_EXISTS", NOT_FOUND_MESSAGE)
            self._sharing.bring_up_to_date(order["transaction_id"])
            order = self._state.row("SELECT * FROM ps_orders WHERE out_order_no = ?", (order["out_order_no"],))
            if order["state"] != "FINISHED":
                raise V3Error(400, "INVALID_REQUEST", NOT_FINISHED_MESSAGE)
            received = self._state.row(
                "SELECT COALESCE(SUM(amount_fen), 0) AS fen, COUNT(*) AS n FROM ps_order_receivers"
                " WHERE out_order_no = ? AND type = 'MERCHANT_ID' AND account = ? AND result = 'SUCCESS'",
                (order["out_order_no"], asked["return_mchid"]))
            if not received["n"]:
                raise V3Error(400, "INVALID_REQUEST", NOT_RECEIVER_MESSAGE)
            returner = self._merchants.settings(asked["return_mchid"])
            if not returner["return_opt_in"]:
                raise V3Error(403, "NO_AUTH", NO_AUTH_MESSAGE)
            now = self._clock.timestamp()
            if now > order["created_at"] + RETURN_WINDOW_S:
                raise V3Error(400, "INVALID_REQUEST", TOO_LATE_MESSAGE)
            earlier = self._state.row("SELECT COUNT(*) AS n FROM ps_returns WHERE out_order_no = ?",
                                      (order["out_order_no"],))["n"]
            if earlier >= MAX_RETURNS_PER_ORDER:
                raise V3Error(400, "INVALID_REQUEST", TOO_MANY_MESSAGE)
            left = returnable(received["fen"], self.returned_fen(order["out_order_no"], asked["return_mchid"]))
            if asked["amount"] > left:
                raise V3Error(400, "INVALID_REQUEST", TOO_MUCH_MESSAGE)
            result, fail_reason = outcome(returner["balance_fen"], asked["amount"])
            if result == "SUCCESS":
                self._merchants.add_balance(asked["return_mchid"], -asked["amount"])
                self._merchants.add_balance(order["sub_mchid"], asked["amount"])
            db.execute("INSERT INTO ps_returns (out_return_no, return_id, sub_mchid, out_order_no, order_id,"
                       " transaction_id, return_mchid, amount_fen, description, request, result, fail_reason,"
                       " created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (asked["out_return_no"], new_return_id(now), order["sub_mchid"], order["out_order_no"],
                        order["order_id"], order["transaction_id"], asked["return_mchid"], asked["amount"],
                        asked["description"], canonical(body), result, fail_reason, now, now))
            self._requests.accepted("profitsharing_return", asked["out_return_no"])
            return ok(return_json(self._get(asked["out_return_no"])))

    def query(self, request: Request) -> Reply:
        return self._sharing.faulted("profitsharing_return_query", lambda: self._query(request))

    def _query(self, request: Request) -> Reply:
        sub_mchid, out_order_no = request.query.get("sub_mchid"), request.query.get("out_order_no")
        if not sub_mchid:
            raise V3Error(400, "PARAM_ERROR", "服务商模式下 sub_mchid 必填", {"location": "query", "field": "sub_mchid"})
        if not out_order_no:
            raise V3Error(400, "PARAM_ERROR", "out_order_no 必填", {"location": "query", "field": "out_order_no"})
        row = self._get(request.params["out_return_no"])
        if row is None or row["sub_mchid"] != sub_mchid or row["out_order_no"] != out_order_no:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        return ok(return_json(row))


def returns_of(state, out_order_no: str) -> list[dict]:
    """The returns of one split order, oldest first, as WeChat answers them (for the
    sandbox's own view, ``GET /sandbox/profitsharing``)."""
    return [return_json(row) for row in state.rows("SELECT * FROM ps_returns WHERE out_order_no = ?"
                                                   " ORDER BY created_at, rowid", (out_order_no,))]
