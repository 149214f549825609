"""WeChat Pay (API v3, service-provider mode) behind the business's verbs.

``wechatpayv3`` (pinned at 2.0.4) signs every request and verifies every 2xx
response's signature with the WeChat Pay public key (public-key mode: no certificate
download at start-up). Its gateway is a private attribute, overridden here to point
the local stage at the sandbox. Every call has a timeout and is logged without
secrets; a response that does not verify is an error, never a result.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
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


class PaymentProvider(Protocol):
    def prepay(self, request: Prepay) -> str: ...
    def payment_params(self, prepay_id: str) -> dict: ...
    def query(self, out_trade_no: str, sub_mchid: str) -> ProviderTransaction: ...
    def close(self, out_trade_no: str, sub_mchid: str) -> None: ...
    def refund(self, out_refund_no: str, out_trade_no: str, sub_mchid: str, refund_fen: int,
               total_fen: int, reason: str, notify_url: str) -> ProviderRefund: ...
    def query_refund(self, out_refund_no: str, sub_mchid: str) -> ProviderRefund: ...


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
