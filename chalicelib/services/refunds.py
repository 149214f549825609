"""Refunds and returns: asked by the customer, approved or rejected by the store or
dealer when the order was already fulfilled, attempted at the provider, and ended by
its notifications or queries. A CLOSED attempt is retried with a new out_refund_no;
an ABNORMAL one is never retried automatically (it could pay twice) but raised for a
person."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from chalicelib.domain import idempotency as idem
from chalicelib.domain import refunds as rules
from chalicelib.domain.orders import PAID
from chalicelib.errors import NotFound, StoreLinkError
from chalicelib.log import get_logger

MAX_ATTEMPTS = 5          # CLOSED attempts retried at most this many times, then a person looks
POLL_AFTER_S = 10         # a PROCESSING refund with no news for this long is queried


def refund_json(record) -> dict:
    from chalicelib.domain.time import rfc3339

    return {"refund_id": record.refund_id, "order_id": record.order_id, "status": record.status,
            "amount_fen": int(record.amount_fen), "lines": record.lines or [], "reason": record.reason,
            "out_refund_no": record.out_refund_no, "created_at": rfc3339(record.created_at),
            "success_at": rfc3339(record.success_at) if record.success_at else None}


def _counting(records) -> tuple[int, dict, dict]:
    fen, units, line_fen = 0, {}, {}
    for r in records:
        # A CLOSED refund still waiting for its retry keeps what it holds.
        if rules.counts_against_refundable(r.status) or (r.status == rules.CLOSED and r.open_shard):
            fen += int(r.amount_fen)
            for line in r.lines or []:
                units[line["sku"]] = units.get(line["sku"], 0) + line["quantity"]
                line_fen[line["sku"]] = line_fen.get(line["sku"], 0) + line["amount_fen"]
    return fen, units, line_fen


def request_refund(customer_id: str, order_id: str, body: dict, idempotency_key: str, fingerprint: str, *,
                   refunds, payments, now: float, notify_url: str):
    """Returns (status_code, body)."""
    from chalicelib.db.orders import KeyAlreadyUsed, OrderChanged, to_order
    from chalicelib.db.records import RefundRecord

    scope_key = f"{customer_id}#refunds#{order_id}#{idempotency_key}"
    for _ in range(5):
        record = refunds.order_record(order_id)
        if record is None or record.customer_id != customer_id:
            raise NotFound(f"No order {order_id}.", order_id=order_id)
        order = to_order(record)
        existing = refunds.of_order(order_id)
        fen, units, line_fen = _counting(existing)
        reason = rules.check_reason(body.get("reason"))
        plan = rules.plan_refund(order, fen, units, amount_fen=body.get("amount_fen"), lines=body.get("lines"),
                                 already_refunded_line_fen=line_fen)
        status = rules.initial_status(order.status)
        attempt = int(record.refund_attempts or 0) + 1
        refund = RefundRecord(
            refund_id="rf_" + secrets.token_urlsafe(12), order_id=order_id, customer_id=customer_id,
            store_id=order.store_id, sub_mchid=order.sub_mchid, status=status, amount_fen=plan.amount_fen,
            lines=[line._asdict() for line in plan.lines], reason=reason,
            restock="YES" if order.status == PAID else None,
            out_refund_no=rules.new_out_refund_no(order_id, attempt),
            attempts=[{"out_refund_no": rules.new_out_refund_no(order_id, attempt), "status": status}],
            created_at=now, updated_at=now,
            open_shard=f"R{secrets.randbelow(10)}" if status == rules.PROCESSING else None)
        answer = refund_json(refund)
        key_item = {"scope_key": scope_key, "request_hash": fingerprint, "state": idem.DONE,
                    "resource_id": refund.refund_id, "response_status": 201, "response_body": answer,
                    "created_at": now, "expires_at": datetime.fromtimestamp(now + idem.KEY_TTL_S, tz=timezone.utc)}
        try:
            refunds.ask(refund, int(record.version or 0), attempt, key_item, now)
        except OrderChanged:
            continue  # another refund or a transition moved the order: plan again
        except KeyAlreadyUsed:
            from chalicelib.db.orders import OrderRepository

            stored = OrderRepository().get_key(scope_key)
            idem.decide(idem.KeyView.of(stored), fingerprint, now)  # raises on reuse with another body
            return int(stored.response_status), stored.response_body
        if status == rules.PROCESSING:
            _call_provider(refunds.get(refund.refund_id), order, refunds=refunds, payments=payments, now=now,
                           notify_url=notify_url)
        return 201, answer
    raise idem.RequestInProgress("The order kept changing: try again.")


def _call_provider(refund, order, *, refunds, payments, now: float, notify_url: str) -> None:
    """Ask the provider for the current attempt; its answer may already end it. The brand's
    share of what is refunded goes back to the dealer first (M10), never holding it up."""
    from chalicelib.services.settlement import collaborators, unwind_before_refund
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable

    unwinding = collaborators()
    unwinding.provider = payments
    unwind_before_refund(order.order_id, refund.refund_id, unwinding, now)

    try:
        result = payments.refund(refund.out_refund_no, order.order_id, order.sub_mchid, int(refund.amount_fen),
                                 order.amounts.payable_fen, refund.reason, notify_url)
    except ProviderUnavailable:
        return  # no answer: the job asks again with the same out_refund_no
    except ProviderRefused as refused:
        _attempt_closed(refund, f"REFUSED_{refused.provider_code}", refunds=refunds, now=now)
        return
    try:
        refunds.mark(refund.refund_id, rules.PROCESSING, refund.out_refund_no,
                     lambda R: [R.provider_requested.set("YES")], now)
    except Exception:  # noqa: BLE001 - moved on meanwhile (a notification came first)
        pass
    if result.status in (rules.SUCCESS, rules.CLOSED, rules.ABNORMAL):
        apply_refund_result({"out_refund_no": refund.out_refund_no, "out_trade_no": order.order_id,
                             "refund_status": result.status}, refunds=refunds, now=now)


def _attempt_closed(refund, cause: str, *, refunds, now: float) -> None:
    from chalicelib.db.refunds import RefundChanged

    attempts = [dict(a) for a in refund.attempts or []]
    if attempts:
        attempts[-1].update({"status": rules.CLOSED, "cause": cause})
    give_up = len(attempts) >= MAX_ATTEMPTS
    try:
        refunds.mark(refund.refund_id, rules.PROCESSING, refund.out_refund_no,
                     lambda R: [R.status.set(rules.CLOSED), R.attempts.set(attempts)]
                     + ([R.open_shard.remove()] if give_up else []), now)
    except RefundChanged:
        return
    refunds.record_event(refund.order_id, "REFUND_ATTEMPT_CLOSED",
                         {"refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no, "cause": cause}, now)
    if give_up:
        _alert("REFUND_CLOSED_TOO_OFTEN", refund, "A refund was closed by WeChat too often: a person must act.",
               {"attempts": len(attempts)}, refunds, now)


def apply_refund_result(resource: dict, *, refunds, now: float) -> str:
    """A refund's end as the provider reports it (notification or query)."""
    from chalicelib.db.orders import to_order
    from chalicelib.db.refunds import RefundChanged

    order_id, out_refund_no = resource.get("out_trade_no"), resource.get("out_refund_no")
    status = resource.get("refund_status") or resource.get("status")
    refund = next((r for r in refunds.of_order(order_id or "") if r.out_refund_no == out_refund_no), None)
    if refund is None:
        get_logger("storelink.refunds").warning("refund result for an unknown refund", extra={"fields": {
            "order_id": order_id, "out_refund_no": out_refund_no, "status": status}})
        return "UNKNOWN"
    refund = refunds.get(refund.refund_id)  # consistent read
    if refund.status != rules.PROCESSING or refund.out_refund_no != out_refund_no:
        return "DUPLICATE"
    if status == rules.SUCCESS:
        for _ in range(5):
            record = refunds.order_record(refund.order_id)
            order = to_order(record)
            # A refund of a payment made after closing leaves the order CLOSED (no such move).
            full = (order.status != "CLOSED"
                    and int(record.refunded_fen or 0) + int(refund.amount_fen) == order.amounts.payable_fen)
            try:
                refunds.succeed(refund, record, full, _stock_moves(refund, order, refunds, full),
                                [("UNWIND_SPLIT", {"order_id": order.order_id, "refund_id": refund.refund_id})], now)
                return rules.SUCCESS
            except RefundChanged:
                refund = refunds.get(refund.refund_id)
                if refund.status != rules.PROCESSING:
                    return "DUPLICATE"
        raise RuntimeError(f"refund {refund.refund_id} could not be applied")
    if status == rules.CLOSED:
        _attempt_closed(refund, "CLOSED_BY_PROVIDER", refunds=refunds, now=now)
        return rules.CLOSED
    if status == rules.ABNORMAL:
        try:
            refunds.mark(refund.refund_id, rules.PROCESSING, out_refund_no,
                         lambda R: [R.status.set(rules.ABNORMAL), R.open_shard.remove()], now)
        except RefundChanged:
            return "DUPLICATE"
        refunds.record_event(refund.order_id, "REFUND_ABNORMAL", {"refund_id": refund.refund_id,
                                                                  "out_refund_no": out_refund_no}, now)
        _alert("REFUND_ABNORMAL", refund, "A refund is ABNORMAL: a person must use WeChat's abnormal-refund flow.",
               {"out_refund_no": out_refund_no}, refunds, now)
        return rules.ABNORMAL
    return "PENDING"


def _alert(kind: str, refund, message: str, detail: dict, refunds, now: float) -> None:
    from chalicelib.db.orders import to_order
    from chalicelib.services import wiring
    from chalicelib.services.alerts import raise_alert

    order = to_order(refunds.order_record(refund.order_id))
    raise_alert(kind, refund.refund_id, message, order=order, detail={"refund_id": refund.refund_id, **detail},
                alerts=wiring.alerts(), network=wiring.network(), now=now)


def _stock_moves(refund, order, refunds, full: bool) -> list:
    """Units going back: reserved ones before fulfilment; returned ones when restocked."""
    if refund.restock != "YES":
        return []
    lines = {l.sku: l for l in order.lines}
    if order.status == PAID and full:
        # Everything still reserved goes back, whatever this refund named.
        _, refunded_units, _ = _counting([r for r in refunds.of_order(order.order_id)
                                          if r.status == rules.SUCCESS and r.restock == "YES"])
        return [(l.ship_from, l.sku, l.quantity - refunded_units.get(l.sku, 0), True) for l in order.lines
                if l.quantity - refunded_units.get(l.sku, 0) > 0]
    return [(lines[x["sku"]].ship_from, x["sku"], x["quantity"], order.status == PAID) for x in refund.lines or []]


def decide_return(principal, refund_id: str, approve: bool, restock: bool, note: str, *, refunds, network,
                  payments, now: float, notify_url: str) -> dict:
    from chalicelib.db.orders import to_order
    from chalicelib.db.refunds import RefundChanged
    from chalicelib.domain import tenancy
    from chalicelib.errors import Conflict

    refund = refunds.get(refund_id)
    store = network.get_store(refund.store_id) if refund is not None else None
    if refund is None or store is None or not tenancy.can_see_store(principal, store):
        raise NotFound(f"No refund {refund_id}.", refund_id=refund_id)
    if refund.status != rules.REQUESTED:
        raise Conflict(f"The refund is {refund.status}, not waiting for a decision.", code_status=refund.status)
    if not approve:
        try:
            refunds.reject(refund, note, now)
        except RefundChanged:
            raise Conflict("The refund was decided meanwhile.") from None
        return refund_json(refunds.get(refund_id))
    record = refunds.order_record(refund.order_id)
    attempt = int(record.refund_attempts or 0) + 1
    out_refund_no = rules.new_out_refund_no(refund.order_id, attempt)
    if restock:
        refunds.mark(refund_id, rules.REQUESTED, refund.out_refund_no, lambda R: [R.restock.set("YES")], now)
    try:
        refunds.start_attempt(refund_id, rules.REQUESTED, out_refund_no,
                              [{"out_refund_no": out_refund_no, "status": rules.PROCESSING}], refund.order_id,
                              int(record.version or 0), attempt, now)
    except RefundChanged:
        raise Conflict("The refund or its order changed meanwhile: try again.") from None
    refunds.record_event(refund.order_id, "RETURN_APPROVED", {"refund_id": refund_id, "restock": restock}, now)
    _call_provider(refunds.get(refund_id), to_order(record), refunds=refunds, payments=payments, now=now,
                   notify_url=notify_url)
    return refund_json(refunds.get(refund_id))


def advance_open_refunds(*, refunds, payments, now: float, notify_url: str) -> dict:
    """The job's part: call the provider where it never answered, query what has had no
    news, retry CLOSED attempts with a new out_refund_no."""
    from chalicelib.db.orders import to_order
    from chalicelib.db.refunds import RefundChanged
    from chalicelib.wechat.pay import ProviderUnavailable

    counts = {"called": 0, "queried": 0, "retried": 0}
    for refund in refunds.due(now - POLL_AFTER_S):
        record = refunds.order_record(refund.order_id)
        order = to_order(record)
        if refund.status == rules.CLOSED:
            attempt = int(record.refund_attempts or 0) + 1
            out_refund_no = rules.new_out_refund_no(refund.order_id, attempt)
            try:
                refunds.start_attempt(refund.refund_id, rules.CLOSED, out_refund_no,
                                      [*(refund.attempts or []), {"out_refund_no": out_refund_no,
                                                                  "status": rules.PROCESSING}],
                                      refund.order_id, int(record.version or 0), attempt, now)
            except RefundChanged:
                continue
            _call_provider(refunds.get(refund.refund_id), order, refunds=refunds, payments=payments, now=now,
                           notify_url=notify_url)
            counts["retried"] += 1
        elif refund.status == rules.PROCESSING and refund.provider_requested != "YES":
            _call_provider(refund, order, refunds=refunds, payments=payments, now=now, notify_url=notify_url)
            counts["called"] += 1
        elif refund.status == rules.PROCESSING:
            try:
                result = payments.query_refund(refund.out_refund_no, order.sub_mchid)
            except (ProviderUnavailable, StoreLinkError):
                continue
            apply_refund_result({"out_refund_no": refund.out_refund_no, "out_trade_no": order.order_id,
                                 "refund_status": result.status}, refunds=refunds, now=now)
            counts["queried"] += 1
    return counts


def on_refund_notification(notification) -> None:
    from chalicelib.services import wiring

    apply_refund_result(notification.resource, refunds=wiring.refunds(), now=wiring.now())


def refund_late_payment(transaction: dict, order_record, *, refunds, payments, now: float, notify_url: str) -> str:
    """A payment that reached an order we had already closed: kept, recorded on the
    order, and refunded in full automatically (one refund per order, whoever notices)."""
    from chalicelib.db.orders import to_order
    from chalicelib.db.records import RefundRecord
    from chalicelib.errors import Conflict

    order = to_order(order_record)
    amount = int((transaction.get("amount") or {}).get("total") or 0)
    refund_id = f"rf_late_{order.order_id}"
    if amount <= 0 or refunds.get(refund_id) is not None:
        return "DUPLICATE"
    attempt = int(order_record.refund_attempts or 0) + 1
    out_refund_no = rules.new_out_refund_no(order.order_id, attempt)
    refund = RefundRecord(
        refund_id=refund_id, order_id=order.order_id, customer_id=order.customer_id, store_id=order.store_id,
        sub_mchid=order.sub_mchid, status=rules.PROCESSING, amount_fen=amount, lines=[],
        reason="paid after the order was closed",
        out_refund_no=out_refund_no, attempts=[{"out_refund_no": out_refund_no, "status": rules.PROCESSING}],
        created_at=now, updated_at=now, open_shard=f"R{secrets.randbelow(10)}")
    try:
        refunds.ask(refund, int(order_record.version or 0), attempt, None, now)
    except Exception as exc:  # noqa: BLE001 - the order moved or another request created it: look again later
        if refunds.get(refund_id) is not None:
            return "DUPLICATE"
        raise Conflict("The late payment's refund could not be recorded yet.") from exc
    get_logger("storelink.refunds").warning("late payment refunded", extra={"fields": {
        "order_id": order.order_id, "amount_fen": amount, "transaction_id": transaction.get("transaction_id")}})
    _call_provider(refunds.get(refund_id), order, refunds=refunds, payments=payments, now=now, notify_url=notify_url)
    return "REFUNDING"
