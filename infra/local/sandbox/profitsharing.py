"""Profit sharing (分账, ``wechatpay-v3.md`` §6) in partner mode, as the service provider
sees it: receivers, split orders, their query, unfreezing what is left, the remaining
splittable amount, the sub-merchant's max ratio — plus the controls tests read
(``GET /sandbox/profitsharing``, ``GET /sandbox/profitsharing/receivers``).

Receivers (``/v3/profitsharing/receivers/add|delete``) are kept per sub-merchant, at most
``MAX_RECEIVERS_PER_MERCHANT``; adding one again changes nothing (no overwrite). A
MERCHANT_ID receiver needs ``name`` (the merchant's full name) encrypted with the
platform public key (RSA-OAEP/SHA-1, as wechatpayv3 encrypts it) and the request's
``Wechatpay-Serial`` naming that key; the sandbox decrypts it with the platform private
key it holds and accepts any non-empty name (it keeps no legal names).

A split (``POST /v3/profitsharing/orders``) is only for a paid transaction of that
sub-merchant placed with ``profit_sharing=true``, at least ``EARLIEST_AFTER_PAYMENT_S``
after payment and only once the payment is settled (``Payments.is_settled``: receipt
confirmed, by the buyer or automatically 10 days after shipping) — else INVALID_REQUEST
"订单处理中，请稍后重试". Money (integer fen), cumulatively over the transaction's splits
(receivers not CLOSED)::

    split + asked <= unsplit            = total - fee - refunded_net - split   (else 403 NOT_ENOUGH)
    split + asked <= ratio_cap          = floor((total - refunded) * max_ratio / 10000)
                                                                      (else 400 INVALID_REQUEST)

where ``refunded`` counts refunds not CLOSED and ``refunded_net`` is that less the fee
they gave back (a refund takes its money from the frozen remainder first; WeChat's own
message says the ratio cap is reduced in proportion with refunds). At most
``MAX_SPLITS_PER_ORDER`` split orders per transaction, ``MAX_RECEIVERS_PER_ORDER``
receivers each. ``out_order_no`` is the idempotency key: the same number with the same
transaction and receivers answers the order as it stands (not a second operation); with
other receivers PARAM_ERROR "分账接收方与原请求不一致".

A split is accepted PROCESSING with its receivers PENDING and gets its result
``RESULT_AFTER_S`` (10-30 s, drawn per order) of business time later — when the due work
runs (each clock move, every second) or when anything reads the transaction after that:
state FINISHED, each receiver SUCCESS, or CLOSED with a ``fail_reason`` (NO_RELATION when
the receiver is not — or no longer — added for the sub-merchant; an injected fault
``split_receiver_fails`` / ``receiver_fails``, decided when the split is accepted). A
CLOSED receiver's money goes back to the unsplit amount. SUCCESS moves the money in the
merchants' balances (``merchants.py``): the sub-merchant's goes down, a MERCHANT_ID
receiver's up.

Unfreezing (``POST /v3/profitsharing/orders/unfreeze``, or a split with
``unfreeze_unsplit=true``) closes the transaction to further splits at once and, when the
order finishes, gives the sub-merchant everything left: the unsplit amount is 0 from
then on. Reusing a split's out_order_no for an unfreeze answers that split and does
nothing (§6). A transaction nobody unfroze is unfrozen automatically ``FROZEN_FOR_S``
(30 days) after payment — lazily, like expiry and settlement: by the due work, or when
the transaction is next read — and can no longer be split.

Faults (``faults.py``): ``split_receiver_fails`` / ``receiver_fails`` (a receiver of the
next split(s) ends CLOSED with the given reason), ``profitsharing_error`` (answer an
error, optionally after carrying the operation out — a lost answer),
``profitsharing_slow`` (answer late: a client timeout); ``response_bad_signature``
applies as to every /v3 answer.

Returns of split orders (分账回退) are ``returns.py``; ``GET /sandbox/profitsharing`` shows
them per split order (``returns``, ``returned``) and ``returned`` per account overall.
"""
from __future__ import annotations

import base64
import re
import secrets
import time
from datetime import datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib.domain.time import BEIJING, rfc3339
from infra.local.sandbox import fields
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.merchants import is_merchant
from infra.local.sandbox.pay import canonical
from infra.local.sandbox.returns import returns_of
from infra.local.sandbox.v3 import V3Error, json_body, ok, param_error

OUT_ORDER_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
RECEIVER_TYPES = ("MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID")
RELATION_TYPES = ("SERVICE_PROVIDER", "STORE", "STAFF", "STORE_OWNER", "PARTNER", "HEADQUARTER", "BRAND",
                  "DISTRIBUTOR", "USER", "SUPPLIER", "CUSTOM")
FAIL_REASONS = ("ACCOUNT_ABNORMAL", "NO_RELATION", "RECEIVER_HIGH_RISK", "RECEIVER_REAL_NAME_NOT_VERIFIED",
                "NO_AUTH", "RECEIVER_RECEIPT_LIMIT", "PAYER_ACCOUNT_ABNORMAL", "INVALID_REQUEST")
# The APIs a profitsharing_error / profitsharing_slow fault can name.
FAULT_APIS = ("receivers_add", "receivers_delete", "profitsharing_order", "profitsharing_unfreeze",
              "profitsharing_query", "profitsharing_amounts", "profitsharing_config",
              "profitsharing_return", "profitsharing_return_query")   # the last two: returns.py
# Codes a profitsharing_error fault can answer, with their HTTP status.
FAULT_CODES = {"SYSTEM_ERROR": 500, "FREQUENCY_LIMITED": 429, "NO_AUTH": 403, "INVALID_REQUEST": 400}
FAULT_MESSAGES = {"SYSTEM_ERROR": "系统错误，请使用相同参数稍后重新调用",
                  "FREQUENCY_LIMITED": "对同笔订单分账频率过高，请降低频率后重试",
                  "NO_AUTH": "商户无权限，请开通商户号分账权限",
                  "INVALID_REQUEST": "无效请求，请稍后重试"}

MAX_RECEIVERS_PER_MERCHANT = 20000
MAX_RECEIVERS_PER_ORDER = 50
MAX_SPLITS_PER_ORDER = 50
EARLIEST_AFTER_PAYMENT_S = 60
FROZEN_FOR_S = 30 * 86400
RESULT_AFTER_S = (10, 30)
BPS = 10000

PROCESSING_MESSAGE = "订单处理中，请稍后重试"
RATIO_MESSAGE = "分账金额超出最大分账比例，最大可分账金额需等比例扣除退款与补差回退等逆向交易金额"


# -- pure rules -------------------------------------------------------------------------------------

def ratio_cap(total_fen: int, refunded_fen: int, max_ratio: int) -> int:
    """What all splits of a transaction may add up to under the max ratio (1/10000):
    floor((total - refunded) * max_ratio / 10000), never below 0."""
    if total_fen < 0 or refunded_fen < 0 or not 0 <= max_ratio <= BPS:
        raise ValueError("amounts are non-negative fen and max_ratio lies in 0..10000")
    return max(0, (total_fen - refunded_fen) * max_ratio // BPS)


def unsplit_amount(total_fen: int, fee_fen: int, refunded_net_fen: int, split_fen: int) -> int:
    """What is still frozen for splitting: total - fee - refunds (net of the fee they gave
    back) - what splits took or hold (receivers not CLOSED), never below 0."""
    return max(0, total_fen - fee_fen - refunded_net_fen - split_fen)


def new_order_id(now: float) -> str:
    """28 digits like WeChat's 分账单号."""
    day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"3008{secrets.randbelow(10 ** 6):06d}{day}{secrets.randbelow(10 ** 10):010d}"


def new_detail_id(now: float) -> str:
    """23 digits like WeChat's 分账明细单号."""
    day = datetime.fromtimestamp(now, BEIJING).strftime("%Y%m%d")
    return f"36{day}{secrets.randbelow(10 ** 13):013d}"


def _bool(body: dict, name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise param_error(f"{name} 必填，且必须是布尔值", name)
    return value


def _choice(body: dict, name: str, allowed: tuple[str, ...], field: str | None = None) -> str:
    value = body.get(name)
    if value not in allowed:
        raise param_error(f"{field or name} 必须是 {', '.join(allowed)} 之一", field or name)
    return value


def _out_order_no(body: dict) -> str:
    value = body.get("out_order_no")
    if not isinstance(value, str) or not OUT_ORDER_NO.match(value):
        raise param_error("out_order_no 必须是1-64个字符(数字、大小写字母、_-|*@)", "out_order_no")
    return value


def _sub_mchid(body: dict) -> str:
    value = fields.text(body, "sub_mchid", 32)
    if not is_merchant(value):
        raise param_error("sub_mchid 不是有效的子商户号", "sub_mchid")
    return value


def _app(body: dict, sp_appid: str, required: bool) -> str | None:
    appid = fields.text(body, "appid", 32, required=required)
    if appid is not None and appid != sp_appid:
        raise param_error("appid 与服务商商户号不匹配(须是服务商的appid)", "appid")
    return appid


def validate_receiver(body: dict, sp_appid: str, adding: bool) -> dict:
    """A receivers/add (or delete) body -> its fields (``name`` still encrypted)."""
    sub_mchid = _sub_mchid(body)
    appid = _app(body, sp_appid, required=True)
    sub_appid = fields.text(body, "sub_appid", 32, required=False)
    kind = _choice(body, "type", RECEIVER_TYPES)
    account = fields.text(body, "account", 64)
    if kind == "MERCHANT_ID" and not is_merchant(account):
        raise param_error("MERCHANT_ID 类型的 account 必须是商户号", "account")
    if kind == "PERSONAL_SUB_OPENID" and not sub_appid:
        raise param_error("分账接收方类型为 PERSONAL_SUB_OPENID 时 sub_appid 必填", "sub_appid")
    found = {"sub_mchid": sub_mchid, "appid": appid, "sub_appid": sub_appid, "type": kind, "account": account}
    if not adding:
        return found
    name = fields.text(body, "name", 1024, required=kind == "MERCHANT_ID")
    relation_type = _choice(body, "relation_type", RELATION_TYPES)
    custom_relation = fields.text(body, "custom_relation", 10, required=relation_type == "CUSTOM")
    if custom_relation is not None and relation_type != "CUSTOM":
        raise param_error("relation_type 不是 CUSTOM 时无需填写 custom_relation", "custom_relation")
    return {**found, "name": name, "relation_type": relation_type, "custom_relation": custom_relation}


def validate_split(body: dict, sp_appid: str) -> dict:
    """A split order body -> its fields (receivers' ``name`` still encrypted)."""
    sub_mchid = _sub_mchid(body)
    raw = body.get("receivers")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_RECEIVERS_PER_ORDER:
        raise param_error(f"receivers 必须是1-{MAX_RECEIVERS_PER_ORDER}个分账接收方的列表", "receivers")
    receivers, seen = [], set()
    for index, item in enumerate(raw):
        where = f"receivers[{index}]"
        if not isinstance(item, dict):
            raise param_error(f"{where} 必须是对象", where)
        kind = _choice(item, "type", RECEIVER_TYPES, f"{where}.type")
        account = fields.text(item, "account", 64, field=f"{where}.account")
        amount = fields.fen(item.get("amount"), f"{where}.amount")
        description = fields.text(item, "description", 80, field=f"{where}.description")
        name = fields.text(item, "name", 1024, required=False, field=f"{where}.name")
        if (kind, account) in seen:
            raise param_error("同一个分账接收方在一次请求中只能出现一次", where)
        seen.add((kind, account))
        receivers.append({"type": kind, "account": account, "amount": amount, "description": description,
                          "name": name})
    kinds = {r["type"] for r in receivers}
    appid = _app(body, sp_appid, required="PERSONAL_OPENID" in kinds)
    sub_appid = fields.text(body, "sub_appid", 32, required="PERSONAL_SUB_OPENID" in kinds)
    return {"sub_mchid": sub_mchid, "appid": appid, "sub_appid": sub_appid,
            "transaction_id": fields.text(body, "transaction_id", 32), "out_order_no": _out_order_no(body),
            "receivers": receivers, "unfreeze_unsplit": _bool(body, "unfreeze_unsplit")}


def validate_unfreeze(body: dict) -> dict:
    return {"sub_mchid": _sub_mchid(body), "transaction_id": fields.text(body, "transaction_id", 32),
            "out_order_no": _out_order_no(body), "description": fields.text(body, "description", 80)}


def same_receivers(stored: list[dict], asked: list[dict]) -> bool:
    """Whether a repeat names the same receivers and amounts (names are encrypted anew
    each time, so they are not compared)."""
    def spelled(receivers):
        return sorted((r["type"], r["account"], r["amount"], r["description"]) for r in receivers)

    return spelled(stored) == spelled(asked)


def receiver_json(row: dict) -> dict:
    data = {"amount": row["amount_fen"], "description": row["description"], "type": row["type"],
            "account": row["account"], "result": row["result"], "detail_id": row["detail_id"],
            "create_time": rfc3339(row["created_at"])}
    if row["finished_at"] is not None:
        data["finish_time"] = rfc3339(row["finished_at"])
    if row["fail_reason"]:
        data["fail_reason"] = row["fail_reason"]
    return data


def order_json(order: dict, receivers: list[dict]) -> dict:
    """A split (or unfreeze) order as WeChat's create and query answer it."""
    return {"sub_mchid": order["sub_mchid"], "transaction_id": order["transaction_id"],
            "out_order_no": order["out_order_no"], "order_id": order["order_id"], "state": order["state"],
            "receivers": [receiver_json(r) for r in receivers]}


# -- the APIs ---------------------------------------------------------------------------------------

class ProfitSharing:
    def __init__(self, state, clock, payments, merchants, request_log, faults, keys, sp_appid: str,
                 sleep=time.sleep):
        self._state = state
        self._clock = clock
        self._payments = payments
        self._merchants = merchants
        self._requests = request_log
        self._faults = faults
        self._keys = keys
        self._sp_appid = sp_appid
        self._sleep = sleep

    def routes(self, router, gateway) -> None:
        base = "/v3/profitsharing"
        gateway.route(router, "POST", f"{base}/receivers/add", self.add_receiver)
        gateway.route(router, "POST", f"{base}/receivers/delete", self.delete_receiver)
        gateway.route(router, "POST", f"{base}/orders", self.create_split)
        gateway.route(router, "POST", f"{base}/orders/unfreeze", self.unfreeze)
        gateway.route(router, "GET", f"{base}/orders/{{out_order_no}}", self.query_order)
        gateway.route(router, "GET", f"{base}/transactions/{{transaction_id}}/amounts", self.amounts)
        gateway.route(router, "GET", f"{base}/merchant-configs/{{sub_mchid}}", self.merchant_config)
        router.add("GET", "/sandbox/profitsharing", self.get_transaction_view)
        router.add("GET", "/sandbox/profitsharing/receivers", self.get_receivers_view)

    # -- faults -----------------------------------------------------------------------------------

    def _faulted(self, api: str, work):
        """Runs the operation under the faults that name this API (or any): a
        ``profitsharing_error`` answers its error instead (after carrying the operation out
        when ``carried_out``), a ``profitsharing_slow`` answers ``delay_s`` wall seconds late."""
        def applies(params):
            return params.get("api") in (None, api)

        error = self._faults.take_matching("profitsharing_error", applies)
        slow = self._faults.take_matching("profitsharing_slow", applies)
        reply = None
        try:
            if error is None or error.get("carried_out"):
                try:
                    reply = work()
                except V3Error:
                    if error is None:
                        raise  # WeChat's own answer, late if slow
        finally:
            if slow is not None:
                self._sleep(slow["delay_s"])
        if error is not None:
            code = error.get("code", "SYSTEM_ERROR")
            raise V3Error(FAULT_CODES[code], code, FAULT_MESSAGES[code])
        return reply

    faulted = _faulted   # returns.py runs its APIs under the same faults

    def _planned_failure(self, account: str) -> str | None:
        """The fail_reason an injected fault gives this receiver of a split being accepted."""
        def applies(params):
            return params.get("account") in (None, account)

        for kind, reason_field in (("split_receiver_fails", "fail_reason"), ("receiver_fails", "reason")):
            fault = self._faults.take_matching(kind, applies)
            if fault is not None:
                return fault.get(reason_field) or "NO_RELATION"
        return None

    # -- encrypted names --------------------------------------------------------------------------

    def _decrypt_names(self, request: Request, names: dict[str, str]) -> dict[str, str]:
        """field -> ciphertext  ->  field -> plaintext, as WeChat reads sensitive fields:
        RSA-OAEP (SHA-1) under the key the request's Wechatpay-Serial names."""
        if not names:
            return {}
        serial = request.headers.get("wechatpay-serial")
        if serial != self._keys.public_key_id:
            raise V3Error(400, "PARAM_ERROR", "请求头 Wechatpay-Serial 缺失或不是加密敏感信息所用的微信支付公钥ID",
                          {"location": "header", "field": "Wechatpay-Serial"})
        plain = {}
        for field, ciphertext in names.items():
            try:
                data = self._keys.platform_private_key.decrypt(
                    base64.b64decode(ciphertext, validate=True),
                    padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
                text = data.decode("utf-8").strip()
            except (ValueError, UnicodeDecodeError):
                raise param_error(f"{field} 解密失败：请用微信支付公钥(RSA-OAEP)加密", field) from None
            if not text:
                raise param_error(f"{field} 不能为空", field)
            plain[field] = text
        return plain

    # -- storage ----------------------------------------------------------------------------------

    def _order(self, out_order_no: str) -> dict | None:
        return self._state.row("SELECT * FROM ps_orders WHERE out_order_no = ?", (out_order_no,))

    def _order_receivers(self, out_order_no: str) -> list[dict]:
        return self._state.rows("SELECT * FROM ps_order_receivers WHERE out_order_no = ? ORDER BY position",
                                (out_order_no,))

    def _order_answer(self, out_order_no: str) -> dict:
        return order_json(self._order(out_order_no), self._order_receivers(out_order_no))

    def _relation(self, sub_mchid: str, kind: str, account: str) -> dict | None:
        return self._state.row("SELECT * FROM ps_receivers WHERE sub_mchid = ? AND type = ? AND account = ?",
                               (sub_mchid, kind, account))

    def _unfrozen(self, transaction_id: str) -> dict | None:
        return self._state.row("SELECT * FROM ps_unfrozen WHERE transaction_id = ?", (transaction_id,))

    def _split_fen(self, transaction_id: str) -> int:
        """What splits of the transaction took or hold (receivers not CLOSED)."""
        return self._state.row(
            "SELECT COALESCE(SUM(r.amount_fen), 0) AS fen FROM ps_order_receivers r JOIN ps_orders o"
            " ON o.out_order_no = r.out_order_no WHERE o.transaction_id = ? AND o.kind = 'SPLIT'"
            " AND r.result != 'CLOSED'", (transaction_id,))["fen"]

    def _refunded(self, trade: dict) -> tuple[int, int]:
        """(refunded, refunded net of the fee given back), over refunds not CLOSED."""
        found = self._state.row(
            "SELECT COALESCE(SUM(refund_fen), 0) AS fen, COALESCE(SUM(fee_refund_fen), 0) AS fee"
            " FROM pay_refunds WHERE out_trade_no = ? AND status != 'CLOSED'", (trade["out_trade_no"],))
        return found["fen"], found["fen"] - found["fee"]

    def unsplit(self, trade: dict) -> int:
        if self._unfrozen(trade["transaction_id"]) is not None:
            return 0
        _, refunded_net = self._refunded(trade)
        return unsplit_amount(trade["total_fen"], trade["fee_fen"], refunded_net,
                              self._split_fen(trade["transaction_id"]))

    def _closing_order(self, transaction_id: str) -> dict | None:
        """An accepted order that unfreezes the transaction (an unfreeze, or a split with
        unfreeze_unsplit), finished or not."""
        return self._state.row("SELECT * FROM ps_orders WHERE transaction_id = ? AND (kind = 'UNFREEZE'"
                               " OR unfreeze_unsplit = 1) ORDER BY created_at LIMIT 1", (transaction_id,))

    # -- results and the day-30 unfreeze (due work, and lazily on every read) ---------------------

    def bring_up_to_date(self, transaction_id: str) -> None:
        """Whatever fell due for this transaction happens before it is read."""
        with self._state.transaction():
            self.finish_due(transaction_id)
            self.unfreeze_due(transaction_id)

    def finish_due(self, transaction_id: str | None = None) -> int:
        """Due work: split and unfreeze orders whose processing time has passed get their results."""
        due = self._state.rows(
            "SELECT out_order_no FROM ps_orders WHERE state = 'PROCESSING' AND finish_at <= ?"
            " AND (? IS NULL OR transaction_id = ?) ORDER BY finish_at, created_at",
            (self._clock.timestamp(), transaction_id, transaction_id))
        return sum(self._finish(row["out_order_no"]) for row in due)

    def _finish(self, out_order_no: str) -> bool:
        with self._state.transaction() as db:
            order = self._order(out_order_no)
            if order is None or order["state"] != "PROCESSING":
                return False
            at = order["finish_at"]
            already_unfrozen = self._unfrozen(order["transaction_id"])
            for receiver in self._order_receivers(out_order_no):
                if order["kind"] == "UNFREEZE":
                    reason = None
                elif receiver["planned_fail_reason"]:
                    reason = receiver["planned_fail_reason"]
                elif self._relation(order["sub_mchid"], receiver["type"], receiver["account"]) is None:
                    reason = "NO_RELATION"
                else:
                    reason = None
                db.execute("UPDATE ps_order_receivers SET result = ?, fail_reason = ?, finished_at = ?"
                           " WHERE out_order_no = ? AND position = ?",
                           ("CLOSED" if reason else "SUCCESS", reason, at, out_order_no, receiver["position"]))
                if order["kind"] == "UNFREEZE":
                    continue
                if reason is None:
                    self._merchants.add_balance(order["sub_mchid"], -receiver["amount_fen"])
                    if receiver["type"] == "MERCHANT_ID":
                        self._merchants.add_balance(receiver["account"], receiver["amount_fen"])
                elif already_unfrozen is not None:
                    # the transaction was unfrozen meanwhile: the money goes with the rest
                    db.execute("UPDATE ps_unfrozen SET amount_fen = amount_fen + ? WHERE transaction_id = ?",
                               (receiver["amount_fen"], order["transaction_id"]))
            db.execute("UPDATE ps_orders SET state = 'FINISHED', finished_at = ? WHERE out_order_no = ?",
                       (at, out_order_no))
            if order["kind"] == "UNFREEZE" or order["unfreeze_unsplit"]:
                trade = self._payments.find(order["out_trade_no"])
                self._mark_unfrozen(trade, at, order["kind"], out_order_no)
        return True

    def _mark_unfrozen(self, trade: dict, at: float, cause: str, out_order_no: str | None) -> bool:
        with self._state.transaction() as db:
            if self._unfrozen(trade["transaction_id"]) is not None:
                return False
            amount = self.unsplit(trade)
            db.execute("INSERT INTO ps_unfrozen (transaction_id, out_trade_no, unfrozen_at, cause, out_order_no,"
                       " amount_fen) VALUES (?, ?, ?, ?, ?, ?)",
                       (trade["transaction_id"], trade["out_trade_no"], at, cause, out_order_no, amount))
        return True

    def unfreeze_due(self, transaction_id: str | None = None) -> int:
        """Due work: what nobody split or unfroze within 30 days of payment is unfrozen (at
        that moment, not whenever this runs); the transaction can no longer be split."""
        due = self._state.rows(
            "SELECT * FROM pay_transactions t WHERE profit_sharing = 1 AND transaction_id IS NOT NULL"
            " AND success_at <= ? AND (? IS NULL OR transaction_id = ?)"
            " AND NOT EXISTS (SELECT 1 FROM ps_unfrozen u WHERE u.transaction_id = t.transaction_id)",
            (self._clock.timestamp() - FROZEN_FOR_S, transaction_id, transaction_id))
        return sum(self._mark_unfrozen(trade, trade["success_at"] + FROZEN_FOR_S, "AUTO", None) for trade in due)

    # -- receivers --------------------------------------------------------------------------------

    def add_receiver(self, request: Request) -> Reply:
        body = json_body(request)
        key = _receiver_key(body)
        if key:
            self._requests.received("receivers_add", key)
        return self._faulted("receivers_add", lambda: self._add_receiver(request, body, key))

    def _add_receiver(self, request: Request, body: dict, key: str) -> Reply:
        asked = validate_receiver(body, self._sp_appid, adding=True)
        name = self._decrypt_names(request, {"name": asked["name"]} if asked["name"] else {}).get("name")
        with self._state.transaction() as db:
            existing = self._relation(asked["sub_mchid"], asked["type"], asked["account"])
            if existing is None:
                count = self._state.row("SELECT COUNT(*) AS n FROM ps_receivers WHERE sub_mchid = ?",
                                        (asked["sub_mchid"],))["n"]
                if count >= MAX_RECEIVERS_PER_MERCHANT:
                    raise V3Error(400, "INVALID_REQUEST",
                                  f"分账接收方数量已达上限({MAX_RECEIVERS_PER_MERCHANT}个)，请删除不再使用的接收方")
                db.execute("INSERT INTO ps_receivers (sub_mchid, type, account, appid, sub_appid, name,"
                           " relation_type, custom_relation, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (asked["sub_mchid"], asked["type"], asked["account"], asked["appid"],
                            asked["sub_appid"], name, asked["relation_type"], asked["custom_relation"],
                            self._clock.timestamp()))
                self._requests.accepted("receivers_add", key)
                existing = self._relation(asked["sub_mchid"], asked["type"], asked["account"])
        answer = {"sub_mchid": existing["sub_mchid"], "type": existing["type"], "account": existing["account"],
                  "relation_type": existing["relation_type"]}
        if existing["custom_relation"]:
            answer["custom_relation"] = existing["custom_relation"]
        return ok(answer)

    def delete_receiver(self, request: Request) -> Reply:
        body = json_body(request)
        key = _receiver_key(body)
        if key:
            self._requests.received("receivers_delete", key)
        return self._faulted("receivers_delete", lambda: self._delete_receiver(body, key))

    def _delete_receiver(self, body: dict, key: str) -> Reply:
        asked = validate_receiver(body, self._sp_appid, adding=False)
        with self._state.transaction() as db:
            deleted = db.execute("DELETE FROM ps_receivers WHERE sub_mchid = ? AND type = ? AND account = ?",
                                 (asked["sub_mchid"], asked["type"], asked["account"])).rowcount
            if deleted:
                self._requests.accepted("receivers_delete", key)
        return ok({"sub_mchid": asked["sub_mchid"], "type": asked["type"], "account": asked["account"]})

    # -- split and unfreeze orders ----------------------------------------------------------------

    def _trade(self, transaction_id: str, sub_mchid: str) -> dict:
        trade = self._payments.find(transaction_id=transaction_id)
        if trade is None:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "微信订单号不存在")
        if trade["sub_mchid"] != sub_mchid:
            raise V3Error(400, "INVALID_REQUEST", "非本商户的订单不支持分账")
        if not trade["profit_sharing"]:
            raise V3Error(400, "INVALID_REQUEST", "非分账订单不支持分账")
        self.bring_up_to_date(transaction_id)
        return trade

    def _check_open(self, trade: dict) -> None:
        """The transaction takes a new split or unfreeze now, or V3Error as WeChat answers."""
        now = self._clock.timestamp()
        if now < trade["success_at"] + EARLIEST_AFTER_PAYMENT_S or not self._payments.is_settled(trade["out_trade_no"]):
            raise V3Error(400, "INVALID_REQUEST", PROCESSING_MESSAGE)
        unfrozen = self._unfrozen(trade["transaction_id"])
        if unfrozen is not None and unfrozen["cause"] == "AUTO":
            raise V3Error(400, "INVALID_REQUEST", "订单已超过分账期限(30天)，剩余资金已自动解冻，不能再分账")
        if unfrozen is not None or self._closing_order(trade["transaction_id"]) is not None:
            raise V3Error(400, "INVALID_REQUEST", "订单剩余资金已解冻(完结分账)，不能再分账")

    def create_split(self, request: Request) -> Reply:
        body = json_body(request)
        if isinstance(body.get("out_order_no"), str):
            self._requests.received("profitsharing_order", body["out_order_no"])
        return self._faulted("profitsharing_order", lambda: self._create_split(request, body))

    def _create_split(self, request: Request, body: dict) -> Reply:
        asked = validate_split(body, self._sp_appid)
        self._decrypt_names(request, {f"receivers[{i}].name": r["name"]
                                      for i, r in enumerate(asked["receivers"]) if r["name"]})
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            existing = self._order(asked["out_order_no"])
            if existing is not None:
                self.bring_up_to_date(existing["transaction_id"])
                self._check_repeat(existing, asked["sub_mchid"], asked["transaction_id"])
                stored = [{"type": r["type"], "account": r["account"], "amount": r["amount_fen"],
                           "description": r["description"]} for r in self._order_receivers(existing["out_order_no"])]
                if existing["kind"] != "SPLIT" or not same_receivers(stored, asked["receivers"]):
                    raise param_error("分账接收方与原请求不一致", "receivers")
                return ok(self._order_answer(existing["out_order_no"]))
            trade = self._trade(asked["transaction_id"], asked["sub_mchid"])
            self._check_open(trade)
            splits = self._state.row("SELECT COUNT(*) AS n FROM ps_orders WHERE transaction_id = ? AND kind = 'SPLIT'",
                                     (trade["transaction_id"],))["n"]
            if splits >= MAX_SPLITS_PER_ORDER:
                raise V3Error(400, "INVALID_REQUEST", f"对同一笔订单最多能发起{MAX_SPLITS_PER_ORDER}次分账请求")
            wanted = sum(r["amount"] for r in asked["receivers"])
            if wanted > self.unsplit(trade):
                raise V3Error(403, "NOT_ENOUGH", "分账金额不足：超过订单剩余待分金额")
            refunded, _ = self._refunded(trade)
            max_ratio = self._merchants.settings(trade["sub_mchid"])["max_ratio"]
            if self._split_fen(trade["transaction_id"]) + wanted > ratio_cap(trade["total_fen"], refunded, max_ratio):
                raise V3Error(400, "INVALID_REQUEST", RATIO_MESSAGE)
            self._insert_order(db, "SPLIT", asked["out_order_no"], trade, canonical(body), asked["unfreeze_unsplit"],
                               None, [{**r, "planned_fail_reason": self._planned_failure(r["account"])}
                                      for r in asked["receivers"]], now)
            self._requests.accepted("profitsharing_order", asked["out_order_no"])
            return ok(self._order_answer(asked["out_order_no"]))

    @staticmethod
    def _check_repeat(existing: dict, sub_mchid: str, transaction_id: str) -> None:
        if existing["transaction_id"] != transaction_id:
            raise param_error("微信支付订单号与原请求不一致", "transaction_id")
        if existing["sub_mchid"] != sub_mchid:
            raise param_error("子商户号与原请求不一致", "sub_mchid")

    def _insert_order(self, db, kind: str, out_order_no: str, trade: dict, request: str, unfreeze_unsplit: bool,
                      description: str | None, receivers: list[dict], now: float) -> None:
        low, high = RESULT_AFTER_S
        finish_at = now + low + secrets.randbelow(high - low + 1)
        db.execute("INSERT INTO ps_orders (out_order_no, order_id, kind, sub_mchid, transaction_id, out_trade_no,"
                   " request, unfreeze_unsplit, description, state, created_at, finish_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'PROCESSING', ?, ?)",
                   (out_order_no, new_order_id(now), kind, trade["sub_mchid"], trade["transaction_id"],
                    trade["out_trade_no"], request, int(unfreeze_unsplit), description, now, finish_at))
        for position, receiver in enumerate(receivers):
            db.execute("INSERT INTO ps_order_receivers (out_order_no, position, type, account, amount_fen,"
                       " description, detail_id, result, planned_fail_reason, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, 'PENDING', ?, ?)",
                       (out_order_no, position, receiver["type"], receiver["account"], receiver["amount"],
                        receiver["description"], new_detail_id(now), receiver.get("planned_fail_reason"), now))

    def unfreeze(self, request: Request) -> Reply:
        body = json_body(request)
        if isinstance(body.get("out_order_no"), str):
            self._requests.received("profitsharing_unfreeze", body["out_order_no"])
        return self._faulted("profitsharing_unfreeze", lambda: self._unfreeze(body))

    def _unfreeze(self, body: dict) -> Reply:
        asked = validate_unfreeze(body)
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            existing = self._order(asked["out_order_no"])
            if existing is not None:
                # the same unfreeze again, or a split's number reused: answered, nothing done
                self.bring_up_to_date(existing["transaction_id"])
                self._check_repeat(existing, asked["sub_mchid"], asked["transaction_id"])
                return ok(self._order_answer(existing["out_order_no"]))
            trade = self._trade(asked["transaction_id"], asked["sub_mchid"])
            self._check_open(trade)
            left = self.unsplit(trade)
            receivers = [{"type": "MERCHANT_ID", "account": trade["sub_mchid"], "amount": left,
                          "description": asked["description"]}] if left else []
            self._insert_order(db, "UNFREEZE", asked["out_order_no"], trade, canonical(body), True,
                               asked["description"], receivers, now)
            self._requests.accepted("profitsharing_unfreeze", asked["out_order_no"])
            return ok(self._order_answer(asked["out_order_no"]))

    def query_order(self, request: Request) -> Reply:
        return self._faulted("profitsharing_query", lambda: self._query_order(request))

    def _query_order(self, request: Request) -> Reply:
        sub_mchid, transaction_id = request.query.get("sub_mchid"), request.query.get("transaction_id")
        if not sub_mchid:
            raise V3Error(400, "PARAM_ERROR", "服务商模式下 sub_mchid 必填", {"location": "query", "field": "sub_mchid"})
        if not transaction_id:
            raise V3Error(400, "PARAM_ERROR", "transaction_id 必填", {"location": "query", "field": "transaction_id"})
        order = self._order(request.params["out_order_no"])
        if order is None or order["sub_mchid"] != sub_mchid or order["transaction_id"] != transaction_id:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        self.bring_up_to_date(transaction_id)
        return ok(self._order_answer(order["out_order_no"]))

    def amounts(self, request: Request) -> Reply:
        return self._faulted("profitsharing_amounts", lambda: self._amounts(request))

    def _amounts(self, request: Request) -> Reply:
        transaction_id = request.params["transaction_id"]
        trade = self._payments.find(transaction_id=transaction_id)
        if trade is None:
            raise V3Error(404, "RESOURCE_NOT_EXISTS", "记录不存在")
        if not trade["profit_sharing"]:
            raise V3Error(400, "INVALID_REQUEST", "非分账订单不支持此查询")
        self.bring_up_to_date(transaction_id)
        return ok({"transaction_id": transaction_id, "unsplit_amount": self.unsplit(trade)})

    def merchant_config(self, request: Request) -> Reply:
        return self._faulted("profitsharing_config", lambda: self._merchant_config(request))

    def _merchant_config(self, request: Request) -> Reply:
        sub_mchid = request.params["sub_mchid"]
        if not is_merchant(sub_mchid):
            raise V3Error(400, "PARAM_ERROR", "sub_mchid 不是有效的子商户号", {"location": "path", "field": "sub_mchid"})
        return ok({"sub_mchid": sub_mchid, "max_ratio": self._merchants.settings(sub_mchid)["max_ratio"]})

    # -- controls ---------------------------------------------------------------------------------

    def get_transaction_view(self, request: Request) -> Reply:
        """Everything the provider holds on one transaction's profit sharing."""
        transaction_id, out_trade_no = request.query.get("transaction_id"), request.query.get("out_trade_no")
        if not transaction_id and not out_trade_no:
            return Reply.error(400, "INVALID_QUERY", "give transaction_id or out_trade_no")
        trade = self._payments.find(out_trade_no, transaction_id)
        if trade is None or trade["transaction_id"] is None:
            return Reply.error(404, "TRANSACTION_NOT_FOUND", "no paid transaction with this number")
        self.bring_up_to_date(trade["transaction_id"])
        trade = self._payments.find(trade["out_trade_no"])
        orders = self._state.rows("SELECT * FROM ps_orders WHERE transaction_id = ? ORDER BY created_at, rowid",
                                  (trade["transaction_id"],))
        received: dict[str, int] = {}
        returned: dict[str, int] = {}           # account -> fen taken back by SUCCESS returns (returns.py)
        views = []
        for order in orders:
            receivers = self._order_receivers(order["out_order_no"])
            if order["kind"] == "SPLIT":
                for r in receivers:
                    if r["result"] == "SUCCESS":
                        received[r["account"]] = received.get(r["account"], 0) + r["amount_fen"]
            returns = returns_of(self._state, order["out_order_no"])
            order_returned: dict[str, int] = {}
            for r in returns:
                if r["result"] == "SUCCESS":
                    order_returned[r["return_mchid"]] = order_returned.get(r["return_mchid"], 0) + r["amount"]
                    returned[r["return_mchid"]] = returned.get(r["return_mchid"], 0) + r["amount"]
            views.append({**order_json(order, receivers), "kind": order["kind"],
                          "returns": returns, "returned": order_returned,
                          "unfreeze_unsplit": bool(order["unfreeze_unsplit"]),
                          "created_at": rfc3339(order["created_at"]), "result_due_at": rfc3339(order["finish_at"]),
                          "finished_at": rfc3339(order["finished_at"]) if order["finished_at"] else None,
                          "injected_failures": {r["account"]: r["planned_fail_reason"] for r in receivers
                                                if r["planned_fail_reason"]}})
        refunded, refunded_net = self._refunded(trade)
        max_ratio = self._merchants.settings(trade["sub_mchid"])["max_ratio"]
        unfrozen = self._unfrozen(trade["transaction_id"])
        return Reply.json({
            "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
            "sub_mchid": trade["sub_mchid"], "profit_sharing": bool(trade["profit_sharing"]),
            "total_fen": trade["total_fen"], "fee_fen": trade["fee_fen"], "refunded_fen": refunded,
            "refunded_net_fen": refunded_net, "max_ratio": max_ratio,
            "ratio_cap_fen": ratio_cap(trade["total_fen"], refunded, max_ratio),
            "split_fen": self._split_fen(trade["transaction_id"]), "unsplit_amount": self.unsplit(trade),
            "paid_at": rfc3339(trade["success_at"]),
            "splittable_from": rfc3339(trade["success_at"] + EARLIEST_AFTER_PAYMENT_S),
            "settled_at": rfc3339(trade["settled_at"]) if trade["settled_at"] else None,
            "auto_unfreeze_at": rfc3339(trade["success_at"] + FROZEN_FOR_S),
            "unfrozen": None if unfrozen is None else {
                "at": rfc3339(unfrozen["unfrozen_at"]), "cause": unfrozen["cause"],
                "out_order_no": unfrozen["out_order_no"], "amount_fen": unfrozen["amount_fen"]},
            "split_orders": sum(order["kind"] == "SPLIT" for order in orders),
            "received": received, "returned": returned, "orders": views})

    def get_receivers_view(self, request: Request) -> Reply:
        sub_mchid = request.query.get("sub_mchid")
        if not is_merchant(sub_mchid):
            return Reply.error(400, "INVALID_QUERY", "sub_mchid (8 to 12 digits) is required")
        rows = self._state.rows("SELECT * FROM ps_receivers WHERE sub_mchid = ? ORDER BY added_at, type, account",
                                (sub_mchid,))
        return Reply.json({"sub_mchid": sub_mchid, "receivers": [
            {"type": r["type"], "account": r["account"], "name": r["name"], "appid": r["appid"],
             "sub_appid": r["sub_appid"], "relation_type": r["relation_type"],
             "custom_relation": r["custom_relation"], "added_at": rfc3339(r["added_at"])} for r in rows]})


def _receiver_key(body: dict) -> str | None:
    """The /sandbox/requests key of a receivers call: ``<sub_mchid>#<account>``."""
    sub_mchid, account = body.get("sub_mchid"), body.get("account")
    if isinstance(sub_mchid, str) and isinstance(account, str):
        return f"{sub_mchid}#{account}"
    return None
