"""Mini-program shipping information (``wechatpay-v3.md`` §8.x, 小程序发货信息管理服务) as
WeChat serves it: upload_shipping_info, get_order, notify_confirm_receive — JSON bodies,
``?access_token=`` checked exactly as getwxacodeunlimit checks it, HTTP 200 and
``{"errcode", "errmsg"}`` for every outcome.

The first successful upload of an order is final (a later one is refused with 10060003
and changes nothing). Receipt and settlement are the transaction's (``pay.py``:
``mark_shipped``, the confirm-receipt control, automatic confirmation 10 days after the
upload, ``is_settled``); get_order reads them as ``order_state``:

    1 waiting for shipment (paid, nothing uploaded)    2 shipped
    3 receipt confirmed, not settled (never seen here: receipt settles at once)
    4 done (settled)                                   5 refunded in full (successful refunds)

Only paid orders exist for these APIs (WeChat knows a 支付单 once it is paid), except that
an upload naming an unpaid order by out_trade_no is told the order cannot ship yet.

Error codes (WeChat's generic ones, and the 1006xxxx family WeChat uses for this
service, each given the meaning below in the sandbox):

    41001     access_token missing                  (same check as getwxacodeunlimit)
    40001     access_token invalid or not the latest
    42001     access_token expired
    47001     data format error: the body is not a JSON object
    40097     invalid args: a field missing, of the wrong type or out of range — order_key
              (order_number_type, mchid, out_trade_no, transaction_id), delivery_mode,
              is_all_delivered, shipping_list not a list / empty / more than one entry in
              unified delivery / an entry not an object, contact, upload_time (not RFC 3339),
              payer.openid; get_order and notify_confirm_receive without order numbers;
              received_time not a positive integer or in the future
    10060001  order not found: no paid order with these numbers (or the mchid/merchant_id
              is neither the service provider's nor the order's sub-merchant)
    10060003  already shipped: the order's shipping information was uploaded before (first
              upload final) — the merchant's adapter treats this as "already there"
    10060004  the order is not in a state for this: upload for an order that is not paid
              (trade_state other than SUCCESS); notify_confirm_receive for an order not
              shipped or refunded in full
    10060005  logistics_type is not 1, 2, 3 or 4
    10060006  split delivery with a logistics type other than express
    10060007  split delivery without a boolean is_all_delivered
    10060008  item_desc missing or empty
    10060009  item_desc longer than 120 characters
    10060014  express delivery without tracking_no or express_company in an entry
    10060018  notify_confirm_receive for an order whose receipt is already confirmed
    10060024  shipping_list longer than 10 entries
    10060025  express_company longer than 128 characters
    10060026  tracking_no longer than 128 characters
    10060031  payer.openid is not the order's payer
"""
from __future__ import annotations

import json
from datetime import datetime

from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.miniprogram import json_object, wx_error

LOGISTICS_TYPES = {1: "express", 2: "same-city delivery", 3: "virtual goods", 4: "buyer pick-up"}
EXPRESS = 1
UNIFIED, SPLIT = 1, 2
MAX_SHIPPING_ENTRIES = 10
ITEM_DESC_MAX = 120
TRACKING_NO_MAX = 128
EXPRESS_COMPANY_MAX = 128
CONTACT_MAX = 1024
ORDER_NO_MAX = 32
OPENID_MAX = 128
DESCRIPTION_MAX = 120   # get_order's description: cut to 120 characters, ending in "..."


class WxaError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


def _invalid(what: str) -> WxaError:
    return WxaError(40097, f"invalid args: {what}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(container: dict, name: str, max_len: int, field: str, required: bool = True) -> str | None:
    value = container.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise _invalid(f"{field} must be a string of 1-{max_len} characters")
    return value


def _rfc3339(value) -> float:
    """An RFC 3339 date-time with its offset -> Unix seconds."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) and "T" in value.upper() else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _invalid("upload_time must be an RFC 3339 date-time with its offset, e.g. 2026-11-22T10:00:00+08:00")
    return moment.timestamp()


def _entry(item, index: int, logistics_type: int) -> dict:
    field = f"shipping_list[{index}]"
    if not isinstance(item, dict):
        raise _invalid(f"{field} must be an object")
    item_desc = item.get("item_desc")
    if not isinstance(item_desc, str) or not item_desc.strip():
        raise WxaError(10060008, f"{field}.item_desc is required")
    if len(item_desc) > ITEM_DESC_MAX:
        raise WxaError(10060009, f"{field}.item_desc is longer than {ITEM_DESC_MAX} characters")
    entry = {}
    for name, limit, too_long in (("tracking_no", TRACKING_NO_MAX, 10060026),
                                  ("express_company", EXPRESS_COMPANY_MAX, 10060025)):
        value = item.get(name)
        if value is None or value == "":
            if logistics_type == EXPRESS:
                raise WxaError(10060014, f"{field}.{name} is required for express delivery")
            continue
        if not isinstance(value, str):
            raise _invalid(f"{field}.{name} must be a string")
        if len(value) > limit:
            raise WxaError(too_long, f"{field}.{name} is longer than {limit} characters")
        entry[name] = value
    entry["item_desc"] = item_desc
    contact = item.get("contact")
    if contact is not None:
        if not isinstance(contact, dict):
            raise _invalid(f"{field}.contact must be an object")
        kept = {}
        for name in ("consignor_contact", "receiver_contact"):
            value = _text(contact, name, CONTACT_MAX, f"{field}.contact.{name}", required=False)
            if value is not None:
                kept[name] = value
        entry["contact"] = kept
    return entry


def validate_upload(body: dict) -> dict:
    """An upload_shipping_info body -> what the sandbox keeps, or WxaError as WeChat answers."""
    order_key = body.get("order_key")
    if not isinstance(order_key, dict):
        raise _invalid("order_key is required")
    kind = order_key.get("order_number_type")
    if _is_int(kind) and kind == 1:
        key = {"mchid": _text(order_key, "mchid", ORDER_NO_MAX, "order_key.mchid"),
               "out_trade_no": _text(order_key, "out_trade_no", ORDER_NO_MAX, "order_key.out_trade_no")}
    elif _is_int(kind) and kind == 2:
        key = {"transaction_id": _text(order_key, "transaction_id", ORDER_NO_MAX, "order_key.transaction_id")}
    else:
        raise _invalid("order_key.order_number_type must be 1 (mchid + out_trade_no) or 2 (transaction_id)")
    logistics_type = body.get("logistics_type")
    if not _is_int(logistics_type) or logistics_type not in LOGISTICS_TYPES:
        raise WxaError(10060005, "logistics_type must be 1 (express), 2 (same-city), 3 (virtual) or 4 (pick-up)")
    delivery_mode = body.get("delivery_mode")
    if not _is_int(delivery_mode) or delivery_mode not in (UNIFIED, SPLIT):
        raise _invalid("delivery_mode must be 1 (unified) or 2 (split)")
    is_all_delivered = body.get("is_all_delivered")
    if delivery_mode == SPLIT:
        if logistics_type != EXPRESS:
            raise WxaError(10060006, "split delivery is for express delivery only")
        if not isinstance(is_all_delivered, bool):
            raise WxaError(10060007, "split delivery needs is_all_delivered (true or false)")
    else:
        is_all_delivered = None
    shipping_list = body.get("shipping_list")
    if not isinstance(shipping_list, list) or not shipping_list:
        raise _invalid(f"shipping_list must be a list of 1-{MAX_SHIPPING_ENTRIES} entries")
    if len(shipping_list) > MAX_SHIPPING_ENTRIES:
        raise WxaError(10060024, f"shipping_list has more than {MAX_SHIPPING_ENTRIES} entries")
    if delivery_mode == UNIFIED and len(shipping_list) != 1:
        raise _invalid("unified delivery takes exactly one shipping_list entry")
    entries = [_entry(item, i, logistics_type) for i, item in enumerate(shipping_list)]
    upload_time = body.get("upload_time")
    _rfc3339(upload_time)
    payer = body.get("payer")
    if not isinstance(payer, dict):
        raise _invalid("payer.openid is required")
    openid = _text(payer, "openid", OPENID_MAX, "payer.openid")
    return {"key": key, "logistics_type": logistics_type, "delivery_mode": delivery_mode,
            "is_all_delivered": is_all_delivered, "shipping_list": entries, "upload_time": upload_time,
            "openid": openid}


def payer_openid(row: dict) -> str | None:
    """The mini-program openid of the payer (the mini-program is the provider's sp_appid)."""
    return row["payer_sp_openid"] or row["payer_sub_openid"]


def order_state(row: dict, shipping: dict | None, refunded_in_full: bool) -> int:
    if refunded_in_full:
        return 5
    if row["settled_at"] is not None:
        return 4
    if row["received_at"] is not None:
        return 3
    if shipping is not None:
        return 2
    return 1


def shipping_json(shipping: dict) -> dict:
    """The shipping object of get_order (times are Unix seconds, as WeChat gives them)."""
    entries = json.loads(shipping["shipping_list"])
    finished = shipping["delivery_mode"] == UNIFIED or bool(shipping["is_all_delivered"])
    listed = []
    for entry in entries:
        shown = {"tracking_no": entry.get("tracking_no", ""), "express_company": entry.get("express_company", ""),
                 "goods_desc": entry["item_desc"], "upload_time": int(shipping["uploaded_at"])}
        if "contact" in entry:
            shown["contact"] = entry["contact"]
        listed.append(shown)
    return {"delivery_mode": shipping["delivery_mode"], "logistics_type": shipping["logistics_type"],
            "finish_shipping": finished, "finish_shipping_count": 1 if finished else 0,
            "goods_desc": ";".join(e["item_desc"] for e in entries), "shipping_list": listed}


class ShippingApis:
    def __init__(self, state, clock, payments, check_access_token, sp_mchid: str):
        self._state = state
        self._clock = clock
        self._payments = payments
        self._check_access_token = check_access_token   # MiniProgramApis.check_access_token
        self._sp_mchid = sp_mchid

    def routes(self, router) -> None:
        router.add("POST", "/wxa/sec/order/upload_shipping_info", self._api(self.upload_shipping_info))
        router.add("POST", "/wxa/sec/order/get_order", self._api(self.get_order))
        router.add("POST", "/wxa/sec/order/notify_confirm_receive", self._api(self.notify_confirm_receive))

    def _api(self, handler):
        """Access token first, then a JSON object body, then the handler; WxaError -> errcode."""
        def serve(request: Request) -> Reply:
            refused = self._check_access_token(request.query.get("access_token"))
            if refused:
                return refused
            body = json_object(request)
            if body is None:
                return wx_error(47001, "data format error")
            try:
                return Reply.json({"errcode": 0, "errmsg": "ok", **handler(body)})
            except WxaError as exc:
                return wx_error(exc.errcode, exc.errmsg)

        return serve

    # -- finding orders -----------------------------------------------------------------------------

    def _ours(self, row: dict | None, mchid: str | None, sub_mchid: str | None = None) -> dict | None:
        """The order if the merchant numbers (when given) are its provider's or its sub-merchant's."""
        if row is None:
            return None
        if mchid is not None and mchid not in (self._sp_mchid, row["sub_mchid"]):
            return None
        if sub_mchid and sub_mchid != row["sub_mchid"]:
            return None
        return row

    def _paid_order(self, body: dict) -> dict:
        """get_order / notify_confirm_receive: ``transaction_id``, or ``merchant_id`` +
        ``merchant_trade_no`` (``sub_merchant_id`` optional); both must name the same order."""
        transaction_id = _text(body, "transaction_id", ORDER_NO_MAX, "transaction_id", required=False)
        merchant_id = _text(body, "merchant_id", ORDER_NO_MAX, "merchant_id", required=False)
        trade_no = _text(body, "merchant_trade_no", ORDER_NO_MAX, "merchant_trade_no", required=False)
        sub_mchid = body.get("sub_merchant_id")
        if sub_mchid is not None and not isinstance(sub_mchid, str):
            raise _invalid("sub_merchant_id must be a string")
        if not transaction_id and not (merchant_id and trade_no):
            raise _invalid("give transaction_id, or merchant_id and merchant_trade_no")
        row = self._payments.find(trade_no, transaction_id)
        if transaction_id and trade_no and row is not None and row["out_trade_no"] != trade_no:
            row = None
        row = self._ours(row, merchant_id, sub_mchid)
        if row is None or row["transaction_id"] is None:
            raise WxaError(10060001, "order not found: no paid order with these numbers")
        return row

    def _shipping(self, out_trade_no: str) -> dict | None:
        return self._state.row("SELECT * FROM wxa_shipping WHERE out_trade_no = ?", (out_trade_no,))

    # -- the APIs -----------------------------------------------------------------------------------

    def upload_shipping_info(self, body: dict) -> dict:
        upload = validate_upload(body)
        key = upload["key"]
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            if "transaction_id" in key:
                row = self._payments.find(transaction_id=key["transaction_id"])
            else:
                row = self._ours(self._payments.find(key["out_trade_no"]), key["mchid"])
            if row is None:
                raise WxaError(10060001, "order not found: no order with these numbers for this merchant")
            if upload["openid"] != payer_openid(row):
                raise WxaError(10060031, "the order does not belong to the user payer.openid names")
            if self._shipping(row["out_trade_no"]) is not None:
                raise WxaError(10060003, "shipping information was already uploaded for this order: the first"
                                         " upload is final")
            if row["trade_state"] != "SUCCESS":
                raise WxaError(10060004, f"the order cannot ship: its trade_state is {row['trade_state']},"
                                         " not SUCCESS")
            db.execute(
                "INSERT INTO wxa_shipping (out_trade_no, transaction_id, logistics_type, delivery_mode,"
                " is_all_delivered, shipping_list, upload_time, uploaded_at, request)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row["out_trade_no"], row["transaction_id"], upload["logistics_type"], upload["delivery_mode"],
                 None if upload["is_all_delivered"] is None else int(upload["is_all_delivered"]),
                 json.dumps(upload["shipping_list"], ensure_ascii=False), upload["upload_time"], now,
                 json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))))
            self._payments.mark_shipped(row["out_trade_no"], now)
        return {}

    def get_order(self, body: dict) -> dict:
        row = self._paid_order(body)
        shipping = self._shipping(row["out_trade_no"])
        description = row["description"]
        if len(description) > DESCRIPTION_MAX:
            description = description[:DESCRIPTION_MAX - 3] + "..."
        order = {"transaction_id": row["transaction_id"], "merchant_id": row["sp_mchid"],
                 "sub_merchant_id": row["sub_mchid"], "merchant_trade_no": row["out_trade_no"],
                 "description": description, "paid_amount": row["payer_total_fen"],
                 "openid": payer_openid(row), "trade_create_time": int(row["created_at"]),
                 "pay_time": int(row["success_at"]),
                 "order_state": order_state(row, shipping, self._payments.refunded_in_full(row)),
                 "in_complaint": False}
        if shipping is not None:
            order["shipping"] = shipping_json(shipping)
        return {"order": order}

    def notify_confirm_receive(self, body: dict) -> dict:
        """Reminds the buyer to confirm receipt (recorded; the buyer still confirms, or
        WeChat does 10 days after the upload)."""
        received_time = body.get("received_time")
        now = self._clock.timestamp()
        if not _is_int(received_time) or received_time <= 0:
            raise _invalid("received_time must be the Unix time the parcel was signed for")
        if received_time > now:
            raise _invalid("received_time is in the future")
        with self._state.transaction() as db:
            row = self._paid_order(body)
            if self._shipping(row["out_trade_no"]) is None:
                raise WxaError(10060004, "the order has not shipped: nothing to confirm")
            if self._payments.refunded_in_full(row):
                raise WxaError(10060004, "the order was refunded in full: nothing to confirm")
            if row["received_at"] is not None:
                raise WxaError(10060018, "receipt of this order is already confirmed")
            db.execute("UPDATE wxa_shipping SET reminders = reminders + 1, last_reminded_at = ?,"
                       " last_received_time = ? WHERE out_trade_no = ?", (now, received_time, row["out_trade_no"]))
        return {}
