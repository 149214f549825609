"""WeChat Pay (API v3, service-provider mode) behind the business's verbs.

``wechatpayv3`` (pinned at 2.0.4) signs every request and verifies every 2xx
response's signature with the WeChat Pay public key (public-key mode: no certificate
download at start-up). Its gateway is a private attribute, overridden here to point
the local stage at the sandbox. Every call has a timeout and is logged without
secrets; a response that does not verify is an error, never a result.

Profit sharing (partner mode, ``/v3/profitsharing/*`` with ``sub_mchid``) goes through the
SDK's own ``profitsharing_*`` methods: they build wechatpay-v3.md §6's bodies and paths,
encrypt receiver names with the WeChat Pay public key and, in public-key mode, send that
key's id as ``Wechatpay-Serial`` on every request. Every idempotency key
(``out_order_no``, a return's ``out_return_no``) comes from the caller; nothing here makes one up.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from chalicelib.errors import StoreLinkError
from chalicelib.log import get_logger


class ProviderUnavailable(StoreLinkError):
    """No trustworthy answer (timeout, network, unverifiable response): safe to retry
    with the same idempotency key."""
    status, code = 503, "PAYMENT_PROVIDER_UNAVAILABLE"
    default_message = "WeChat Pay did not answer in time: try again shortly."


class ProviderRefused(StoreLinkError):
    """WeChat Pay answered with an error code (ORDERPAID, NOT_ENOUGH, PARAM_ERROR, ...)."""
    status, code = 502, "PAYMENT_PROVIDER_REFUSED"
    default_message = "WeChat Pay refused the request."

    def __init__(self, provider_code: str, message: str, http_status: int):
        super().__init__(f"WeChat Pay refused: {provider_code}", provider_code=provider_code,
                         provider_message=message, provider_status=http_status)
        self.provider_code = provider_code
        self.http_status = http_status


class SplitNotReady(StoreLinkError):
    """WeChat Pay cannot split this payment yet (INVALID_REQUEST "订单处理中，请稍后重试"): less
    than a minute since payment, or not settled (a trade mini-program's order settles only
    after receipt is confirmed). Nothing happened; ask again later, not right away."""
    status, code = 409, "SPLIT_NOT_READY"
    default_message = "WeChat Pay has not settled this payment yet: split it later."


class SplitRefused(ProviderRefused):
    """WeChat Pay refused the amounts: above the order's cap (max ratio, or what is left after
    the fee and earlier splits) or not enough left. Nothing was split and the same amounts
    will be refused again: plan again from ``unsplit_amount`` / ``max_ratio`` and ask with a
    new out_order_no."""
    status, code = 422, "SPLIT_REFUSED"
    default_message = "WeChat Pay refused the split amounts."

    def __init__(self, provider_code: str, message: str, http_status: int = 403):
        super().__init__(provider_code, message, http_status)


@dataclass(frozen=True)
class Prepay:
    out_trade_no: str
    sub_mchid: str
    description: str
    total_fen: int
    payer_sp_openid: str
    time_expire: datetime
    notify_url: str
    profit_sharing: bool = True
    attach: str | None = None


@dataclass(frozen=True)
class ProviderTransaction:
    out_trade_no: str
    trade_state: str            # NOTPAY, SUCCESS, CLOSED, REFUND, PAYERROR, ...
    transaction_id: str | None
    total_fen: int | None
    payer_total_fen: int | None
    success_time: str | None
    raw: dict


@dataclass(frozen=True)
class ProviderRefund:
    out_refund_no: str
    refund_id: str | None
    status: str                 # PROCESSING, SUCCESS, CLOSED, ABNORMAL
    refund_fen: int | None
    success_time: str | None
    raw: dict


# Receiver types (the two StoreLink uses)
MERCHANT_ID = "MERCHANT_ID"              # account is a mchid; name is its full legal name, required
PERSONAL_OPENID = "PERSONAL_OPENID"      # account is an openid under sp_appid; name optional
RECEIVER_TYPES = (MERCHANT_ID, PERSONAL_OPENID)
RELATION_TYPES = ("SERVICE_PROVIDER", "STORE", "STAFF", "STORE_OWNER", "PARTNER", "HEADQUARTER", "BRAND",
                  "DISTRIBUTOR", "USER", "SUPPLIER", "CUSTOM")

# States of a split order (a request_split, or an unfreeze)
SPLIT_PROCESSING = "PROCESSING"          # WeChat is still working: poll query_split
SPLIT_FINISHED = "FINISHED"              # processing ended: each receiver's result says what happened
# Results of one receiver in it
RECEIVER_PENDING = "PENDING"             # not done yet
RECEIVER_SUCCESS = "SUCCESS"             # the money reached the receiver
RECEIVER_CLOSED = "CLOSED"               # failed for good (fail_reason); the money goes back to the sub-merchant

# Ids checked before the SDK sees them: it reports a missing one with a bare Exception, which
# _call could only take for an unverifiable answer. out_order_no also goes into a URL path
# (query_split): WeChat allows "|" too, but the SDK signs the raw "|" while requests sends
# "%7C" (wechatpay-v3.md §9), so such a split could never be queried.
_IDS = {"sub_mchid": re.compile(r"[0-9]{1,32}"), "transaction_id": re.compile(r"[0-9A-Za-z]{1,32}"),
        "out_order_no": re.compile(r"[0-9A-Za-z_*@-]{1,64}"),
        # returns (query_return puts out_return_no in the path and out_order_no in the query)
        "out_return_no": re.compile(r"[0-9A-Za-z_*@-]{1,64}"), "return_mchid": re.compile(r"[0-9]{1,32}")}


@dataclass(frozen=True)
class Receiver:
    """Someone a sub-merchant may split to, added once per (sub-merchant, receiver)."""
    type: str                   # MERCHANT_ID or PERSONAL_OPENID
    account: str
    name: str | None = field(repr=False)   # legal name (MERCHANT_ID) or real name; sent encrypted
    relation_type: str                     # BRAND, DISTRIBUTOR, ... or CUSTOM
    custom_relation: str | None = None     # required (<= 10 characters) iff CUSTOM

    def __post_init__(self):
        if self.type not in RECEIVER_TYPES or not self.account:
            raise ValueError(f"a receiver is {' or '.join(RECEIVER_TYPES)} with an account")
        if self.type == MERCHANT_ID and not self.name:
            raise ValueError("a MERCHANT_ID receiver needs the merchant's full legal name")
        if self.relation_type not in RELATION_TYPES:
            raise ValueError(f"unknown relation_type {self.relation_type!r}")
        if (self.relation_type == "CUSTOM") != bool(self.custom_relation) or len(self.custom_relation or "") > 10:
            raise ValueError("custom_relation (at most 10 characters) goes with relation_type CUSTOM, and only then")


@dataclass(frozen=True)
class SplitReceiver:
    """One receiver's part of one split request."""
    type: str                   # MERCHANT_ID or PERSONAL_OPENID (an added receiver)
    account: str
    amount_fen: int
    description: str            # shown to the receiver and in the profit-sharing bill (<= 80)

    def __post_init__(self):
        if self.type not in RECEIVER_TYPES or not self.account or not self.description:
            raise ValueError("a split receiver has a type, an account and a description")
        if type(self.amount_fen) is not int or self.amount_fen < 1:
            raise ValueError(f"amount_fen must be a positive int of fen, not {self.amount_fen!r}")


@dataclass(frozen=True)
class SplitReceiverResult:
    type: str
    account: str
    amount_fen: int
    description: str
    result: str                 # RECEIVER_PENDING, RECEIVER_SUCCESS, RECEIVER_CLOSED
    fail_reason: str | None     # when CLOSED: NO_RELATION, ACCOUNT_ABNORMAL, RECEIVER_HIGH_RISK, ...
    detail_id: str | None       # WeChat's id of this receiver's line (as in the profit-sharing bill)
    finish_time: str | None


@dataclass(frozen=True)
class SplitResult:
    """A split order as WeChat Pay sees it. FINISHED only means processing ended: a receiver
    may still be CLOSED (partial success)."""
    out_order_no: str
    transaction_id: str | None
    order_id: str | None        # WeChat's split order id
    state: str                  # SPLIT_PROCESSING, SPLIT_FINISHED
    receivers: tuple[SplitReceiverResult, ...]
    raw: dict


# Results of a return (分账回退)
RETURN_PROCESSING = "PROCESSING"         # not decided yet: query_return later (same out_return_no)
RETURN_SUCCESS = "SUCCESS"               # the money went back from the receiver to the sub-merchant
RETURN_FAILED = "FAILED"                 # nothing moved (fail_reason: BALANCE_NOT_ENOUGH, ...)


@dataclass(frozen=True)
class ReturnResult:
    """A return of money a MERCHANT_ID receiver got from one split order, as WeChat Pay sees it.
    FAILED is an answer, not an error: the operation was carried out and moved nothing."""
    out_return_no: str
    return_id: str | None       # WeChat's return id
    out_order_no: str | None    # the split order it returns from
    return_mchid: str
    amount_fen: int
    result: str                 # PROCESSING, SUCCESS or FAILED (the RETURN_* constants)
    fail_reason: str | None     # when FAILED: BALANCE_NOT_ENOUGH, ACCOUNT_ABNORMAL, TIME_OUT_CLOSED, ...
    raw: dict


class PaymentProvider(Protocol):
    def prepay(self, request: Prepay) -> str: ...
    def payment_params(self, prepay_id: str) -> dict: ...
    def query(self, out_trade_no: str, sub_mchid: str) -> ProviderTransaction: ...
    def close(self, out_trade_no: str, sub_mchid: str) -> None: ...
    def refund(self, out_refund_no: str, out_trade_no: str, sub_mchid: str, refund_fen: int,
               total_fen: int, reason: str, notify_url: str) -> ProviderRefund: ...
    def query_refund(self, out_refund_no: str, sub_mchid: str) -> ProviderRefund: ...


class ProfitSharingProvider(Protocol):
    def add_receiver(self, sub_mchid: str, receiver: Receiver) -> None: ...
    def request_split(self, sub_mchid: str, transaction_id: str, out_order_no: str,
                      receivers: list[SplitReceiver], unfreeze_unsplit: bool) -> SplitResult: ...
    def query_split(self, sub_mchid: str, transaction_id: str, out_order_no: str) -> SplitResult: ...
    def unfreeze(self, sub_mchid: str, transaction_id: str, out_order_no: str, description: str) -> SplitResult: ...
    def unsplit_amount(self, transaction_id: str) -> int: ...
    def max_ratio(self, sub_mchid: str) -> int: ...
    def create_return(self, sub_mchid: str, out_order_no: str, out_return_no: str, return_mchid: str,
                      amount_fen: int, description: str) -> ReturnResult: ...
    def query_return(self, sub_mchid: str, out_order_no: str, out_return_no: str) -> ReturnResult: ...


class WeChatPayClient:
    def __init__(self, *, gateway: str, sp_mchid: str, sp_appid: str, keys, timeout_s: float = 4.0):
        from wechatpayv3 import WeChatPay, WeChatPayType

        self._appid = sp_appid
        self._sdk = WeChatPay(
            wechatpay_type=WeChatPayType.MINIPROG, mchid=sp_mchid, private_key=keys.merchant_private_key,
            cert_serial_no=keys.merchant_serial_no, appid=sp_appid, apiv3_key=keys.apiv3_key,
            partner_mode=True, public_key=keys.platform_public_key, public_key_id=keys.public_key_id,
            timeout=(min(2.0, timeout_s), timeout_s), logger=None)  # the SDK's logger would print headers
        self._sdk._core._gate_way = gateway.rstrip("/")
        self._log = get_logger("storelink.wechatpay")

    def _call(self, api: str, key: str, send) -> tuple[int, dict]:
        import requests

        started = time.perf_counter()
        status, outcome = None, "ok"
        try:
            status, text = send()
        except requests.RequestException as exc:
            outcome = type(exc).__name__
            raise ProviderUnavailable(api=api) from exc
        except Exception as exc:  # the SDK raises a bare Exception when a response does not verify
            outcome = "unverified_response" if "verify" in str(exc) else type(exc).__name__
            raise ProviderUnavailable("WeChat Pay's answer could not be verified.", api=api) from exc
        finally:
            self._log.info("wechatpay call", extra={"fields": {
                "api": api, "key": key, "status": status, "outcome": outcome,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1)}})
        body = json.loads(text) if isinstance(text, str) and text else {}
        if not 200 <= status < 300:
            raise ProviderRefused(str(body.get("code", "UNKNOWN")), str(body.get("message", "")), status)
        return status, body

    def prepay(self, request: Prepay) -> str:
        from chalicelib.domain.time import rfc3339

        _, body = self._call("prepay", request.out_trade_no, lambda: self._sdk.pay(
            description=request.description, out_trade_no=request.out_trade_no,
            amount={"total": request.total_fen, "currency": "CNY"},
            payer={"sp_openid": request.payer_sp_openid}, time_expire=rfc3339(request.time_expire),
            attach=request.attach, settle_info={"profit_sharing": request.profit_sharing},
            notify_url=request.notify_url, sub_mchid=request.sub_mchid))
        return body["prepay_id"]

    def payment_params(self, prepay_id: str) -> dict:
        """What wx.requestPayment takes (signed with the wall clock, as WeChat checks it)."""
        import secrets

        timestamp, nonce, package = str(int(time.time())), secrets.token_hex(16), f"prepay_id={prepay_id}"
        return {"timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
                "paySign": self._sdk.sign([self._appid, timestamp, nonce, package])}

    def query(self, out_trade_no: str, sub_mchid: str) -> ProviderTransaction:
        _, body = self._call("query", out_trade_no,
                             lambda: self._sdk.query(out_trade_no=out_trade_no, sub_mchid=sub_mchid))
        amount = body.get("amount") or {}
        return ProviderTransaction(out_trade_no=body.get("out_trade_no", out_trade_no),
                                   trade_state=body.get("trade_state", ""),
                                   transaction_id=body.get("transaction_id"), total_fen=amount.get("total"),
                                   payer_total_fen=amount.get("payer_total"),
                                   success_time=body.get("success_time"), raw=body)

    def close(self, out_trade_no: str, sub_mchid: str) -> None:
        self._call("close", out_trade_no, lambda: self._sdk.close(out_trade_no=out_trade_no, sub_mchid=sub_mchid))

    def refund(self, out_refund_no: str, out_trade_no: str, sub_mchid: str, refund_fen: int, total_fen: int,
               reason: str, notify_url: str) -> ProviderRefund:
        _, body = self._call("refund", out_refund_no, lambda: self._sdk.refund(
            out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason, notify_url=notify_url,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"}, sub_mchid=sub_mchid))
        return _refund(body, out_refund_no)

    def query_refund(self, out_refund_no: str, sub_mchid: str) -> ProviderRefund:
        _, body = self._call("query_refund", out_refund_no,
                             lambda: self._sdk.query_refund(out_refund_no=out_refund_no, sub_mchid=sub_mchid))
        return _refund(body, out_refund_no)

    # --- profit sharing (wechatpay-v3.md §6), partner mode

    def _sharing(self, api: str, key: str, send, mapping=None) -> dict:
        """A profit-sharing call: WeChat's refusals mapped to what the caller can act on
        (``mapping``: ``_sharing_error`` by default, ``_return_error`` for returns)."""
        try:
            return self._call(api, key, send)[1]
        except ProviderRefused as refused:
            mapped = (mapping or _sharing_error)(api, refused)
            if mapped is refused:
                raise
            raise mapped from refused

    def add_receiver(self, sub_mchid: str, receiver: Receiver) -> None:
        """Idempotent at WeChat: adding the same receiver again changes nothing."""
        _check_ids(sub_mchid=sub_mchid)
        # Logged by sub-merchant and type: an openid or a person's name stays out of the logs.
        self._sharing("add_receiver", f"{sub_mchid}:{receiver.type}", lambda: self._sdk.profitsharing_add_receiver(
            account_type=receiver.type, account=receiver.account, relation_type=receiver.relation_type,
            name=receiver.name, custom_relation=receiver.custom_relation, appid=self._appid, sub_mchid=sub_mchid))

    def request_split(self, sub_mchid: str, transaction_id: str, out_order_no: str,
                      receivers: list[SplitReceiver], unfreeze_unsplit: bool) -> SplitResult:
        """Asynchronous at WeChat: usually PROCESSING, then poll query_split. Asking again with
        the same out_order_no is the same request."""
        _check_ids(sub_mchid=sub_mchid, transaction_id=transaction_id, out_order_no=out_order_no)
        if not 1 <= len(receivers) <= 50 or len({(r.type, r.account) for r in receivers}) != len(receivers):
            raise ValueError("a split has 1 to 50 receivers, each once")
        if not isinstance(unfreeze_unsplit, bool):
            raise ValueError("unfreeze_unsplit must be True or False")
        body = self._sharing("request_split", out_order_no, lambda: self._sdk.profitsharing_order(
            transaction_id=transaction_id, out_order_no=out_order_no, unfreeze_unsplit=unfreeze_unsplit,
            receivers=[{"type": r.type, "account": r.account, "amount": r.amount_fen, "description": r.description}
                       for r in receivers],
            appid=self._appid, sub_mchid=sub_mchid))
        return _split_result(body, out_order_no, "request_split")

    def query_split(self, sub_mchid: str, transaction_id: str, out_order_no: str) -> SplitResult:
        """Also the result of an unfreeze (same out_order_no space). Results are never pushed to
        the splitter: polling is the only way to learn them."""
        _check_ids(sub_mchid=sub_mchid, transaction_id=transaction_id, out_order_no=out_order_no)
        body = self._sharing("query_split", out_order_no, lambda: self._sdk.profitsharing_order_query(
            transaction_id=transaction_id, out_order_no=out_order_no, sub_mchid=sub_mchid))
        return _split_result(body, out_order_no, "query_split")

    def unfreeze(self, sub_mchid: str, transaction_id: str, out_order_no: str, description: str) -> SplitResult:
        """Give the sub-merchant whatever is left unsplit; no split is possible afterwards. Needs
        its own out_order_no: reusing a split's number answers success and does nothing."""
        _check_ids(sub_mchid=sub_mchid, transaction_id=transaction_id, out_order_no=out_order_no)
        if not description:
            raise ValueError("an unfreeze needs a description")
        body = self._sharing("unfreeze", out_order_no, lambda: self._sdk.profitsharing_unfreeze(
            transaction_id=transaction_id, out_order_no=out_order_no, description=description,
            sub_mchid=sub_mchid))
        return _split_result(body, out_order_no, "unfreeze")

    def unsplit_amount(self, transaction_id: str) -> int:
        """Fen still splittable from this payment (WeChat takes no sub_mchid here)."""
        _check_ids(transaction_id=transaction_id)
        body = self._sharing("unsplit_amount", transaction_id,
                             lambda: self._sdk.profitsharing_amount_query(transaction_id=transaction_id))
        return _fen(body.get("unsplit_amount"), "unsplit_amount")

    def max_ratio(self, sub_mchid: str) -> int:
        """The share of each payment the sub-merchant lets the service provider split, in 1/10000."""
        _check_ids(sub_mchid=sub_mchid)
        body = self._sharing("max_ratio", sub_mchid, lambda: self._sdk.profitsharing_config_query(sub_mchid=sub_mchid))
        return _fen(body.get("max_ratio"), "max_ratio")

    def create_return(self, sub_mchid: str, out_order_no: str, out_return_no: str, return_mchid: str,
                      amount_fen: int, description: str) -> ReturnResult:
        """Take ``amount_fen`` the MERCHANT_ID receiver ``return_mchid`` got from the split order
        ``out_order_no`` back to the sub-merchant (synchronous at WeChat). Asking again with the same
        out_return_no is the same request; a FAILED result comes back as a result, not raised."""
        _check_ids(sub_mchid=sub_mchid, out_order_no=out_order_no, out_return_no=out_return_no,
                   return_mchid=return_mchid)
        if type(amount_fen) is not int or amount_fen < 1:
            raise ValueError(f"amount_fen must be a positive int of fen, not {amount_fen!r}")
        if not isinstance(description, str) or not 1 <= len(description) <= 80:
            raise ValueError("a return needs a description of 1 to 80 characters")
        body = self._sharing("create_return", out_return_no, mapping=_return_error, send=lambda: self._sdk.profitsharing_return(
            out_return_no=out_return_no, return_mchid=return_mchid, amount=amount_fen, description=description,
            out_order_no=out_order_no, sub_mchid=sub_mchid))
        return _return_result(body, out_return_no, "create_return")

    def query_return(self, sub_mchid: str, out_order_no: str, out_return_no: str) -> ReturnResult:
        """A return as it stands (RESOURCE_NOT_EXISTS: WeChat never took it)."""
        _check_ids(sub_mchid=sub_mchid, out_order_no=out_order_no, out_return_no=out_return_no)
        body = self._sharing("query_return", out_return_no, mapping=_return_error, send=lambda: self._sdk.profitsharing_return_query(
            out_order_no=out_order_no, out_return_no=out_return_no, sub_mchid=sub_mchid))
        return _return_result(body, out_return_no, "query_return")


# WeChat's messages for "not settled yet" vary ("订单处理中，请稍后重试", "订单处理中,暂时无法分账",
# "订单正在处理中", "...请在到达结算周期之后再请求分账"); all say 处理中.
_NOT_READY_HINTS = ("处理中", "结算周期", "order processing")
# Over the cap arrives as 403 RULE_LIMIT / NOT_ENOUGH (the documented codes), or, as other
# integrators report, as 400 INVALID_REQUEST "分账金额超出最大分账比例，..."
_REFUSED_CODES = ("RULE_LIMIT", "NOT_ENOUGH")
_REFUSED_HINTS = ("最大分账比例", "金额不足", "余额不足", "max ratio", "not enough")
# Worth asking again with the same out_order_no a little later
_RETRYABLE_CODES = ("SYSTEM_ERROR", "FREQUENCY_LIMITED", "RATELIMIT_EXCEED")


def _sharing_error(api: str, refused: ProviderRefused) -> StoreLinkError:
    code, status = refused.provider_code, refused.http_status
    message = str(refused.details.get("provider_message", ""))
    mentions = lambda hints: any(h in message.lower() for h in hints)  # noqa: E731
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return ProviderUnavailable(api=api, provider_code=code, provider_status=status)
    if code == "INVALID_REQUEST" and mentions(_NOT_READY_HINTS):
        return SplitNotReady(api=api, provider_code=code, provider_message=message)
    if code in _REFUSED_CODES or (code == "INVALID_REQUEST" and mentions(_REFUSED_HINTS)):
        return SplitRefused(code, message, status)
    return refused             # PARAM_ERROR, NO_AUTH, SIGN_ERROR, RESOURCE_NOT_EXISTS, ...: not retryable


def _return_error(api: str, refused: ProviderRefused) -> StoreLinkError:
    """A refused return: worth asking again with the same out_return_no (ProviderUnavailable), or
    WeChat's refusal as it is (INVALID_REQUEST over what is left or the split not finished, NO_AUTH
    when the receiver has not agreed to returns, PARAM_ERROR, RESOURCE_NOT_EXISTS, ...)."""
    code, status = refused.provider_code, refused.http_status
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return ProviderUnavailable(api=api, provider_code=code, provider_status=status)
    return refused


def _check_ids(**ids: str) -> None:
    for name, value in ids.items():
        if not isinstance(value, str) or not _IDS[name].fullmatch(value):
            raise ValueError(f"{name} must match {_IDS[name].pattern}, not {value!r}")


def _fen(value, api: str) -> int:
    if type(value) is not int:   # a verified answer without the number is no answer
        raise ProviderUnavailable("WeChat Pay's answer lacked an amount.", api=api)
    return value


def _split_result(body: dict, out_order_no: str, api: str) -> SplitResult:
    receivers = tuple(
        SplitReceiverResult(type=r.get("type", ""), account=r.get("account", ""), amount_fen=_fen(r.get("amount"), api),
                            description=r.get("description", ""), result=r.get("result", ""),
                            fail_reason=r.get("fail_reason"), detail_id=r.get("detail_id"),
                            finish_time=r.get("finish_time"))
        for r in body.get("receivers") or ())
    return SplitResult(out_order_no=body.get("out_order_no", out_order_no), transaction_id=body.get("transaction_id"),
                       order_id=body.get("order_id"), state=body.get("state", ""), receivers=receivers, raw=body)


def _return_result(body: dict, out_return_no: str, api: str) -> ReturnResult:
    return ReturnResult(out_return_no=body.get("out_return_no", out_return_no), return_id=body.get("return_id"),
                        out_order_no=body.get("out_order_no"), return_mchid=body.get("return_mchid", ""),
                        amount_fen=_fen(body.get("amount"), api), result=body.get("result", ""),
                        fail_reason=body.get("fail_reason"), raw=body)


def _refund(body: dict, out_refund_no: str) -> ProviderRefund:
    return ProviderRefund(out_refund_no=body.get("out_refund_no", out_refund_no), refund_id=body.get("refund_id"),
                          status=body.get("status", ""), refund_fen=(body.get("amount") or {}).get("refund"),
                          success_time=body.get("success_time"), raw=body)


def default_client() -> WeChatPayClient:
    from chalicelib.config import settings
    from chalicelib.wechat.keys import pay_keys

    s = settings()
    return WeChatPayClient(gateway=s.wechatpay_api_base, sp_mchid=s.sp_mchid, sp_appid=s.sp_appid,
                           keys=pay_keys(), timeout_s=s.wechat_timeout_s)
