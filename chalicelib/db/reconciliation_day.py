"""Our side of one Beijing day for the nightly reconciliation (issue M13, domain rule 10):
the payments, refunds and split / return lines whose bill day is that day
(``wechatpay-v3.md`` §7), read by key ranges and indexes only — never a Scan — and held
in memory as ``chalicelib.domain.reconciliation.DayKeys``.

Where each comes from (every day key is ``<YYYY-MM-DD Beijing>#<crc32(order_id) % 10>``,
``chalicelib.db.ledger.ledger_day_shard``: ten Queries read a day, spread over ten
partitions):

* payments — ``orders.paid_by_day`` (``paid_day_shard``, ``order_id``; sparse), set in the
  transaction that applies the payment (``PaymentRepository.mark_paid``, the only write
  that applies one: notifications and the close job's query both come through
  ``services.payments.apply_payment``). The day is the provider's ``success_time`` when its
  word carried one (kept as ``orders.success_at``), else our ``paid_at``. The fee is the
  FEE entry the split plan's fit booked (``ledger_entries`` key ``fit#FEE#0``), read by key
  in BatchGetItems of 100; None while no fee is booked (before the fit, and also for a fee
  of 0 fen, which books no entry).
* refunds — ``refunds.requested_by_day`` (``requested_day_shard``, ``refund_id``; sparse),
  set when an attempt's ``out_refund_no`` is stored to be sent (``RefundRepository.ask``
  for a refund asked straight away or a late payment's refund, ``start_attempt`` for an
  approved return and a retried attempt); each attempt's ``requested_at`` is kept in
  ``attempts``. One item per refund: a refund whose attempts fell on different days is
  indexed under its current attempt's day only (its earlier, CLOSED attempts on another
  day are then not among that day's keys). Attempts the provider refused outright
  (``cause`` REFUSED_…) never reached it and are left out.
* split and return lines — the ``sharing_ops`` table (``day_shard``, ``out_no``): one item
  per operation the provider accepted, put in the same transaction that records the
  acceptance on the plan (``SettlementRepository.save`` via ``accepted_operations``). The
  operation itself (receivers, amounts, results) is read from the plan's ``settlement``
  JSON (BatchGetItem of the day's plans), so the index item never goes stale. A plan
  sends operations on several days (the brand's share once settled, the commissions at
  their due date, returns after refunds): each operation has its own day. The day is the
  acceptance's: the first request of a split is often refused as "not settled yet" and
  accepted under the same number days later, and only then exists at the provider.
  An operation with no receiver paid (an unfreeze alone) is not indexed.

Items written before these attributes existed are not indexed and are not read (old
days are not reconciled by this). ``sub_mchid`` narrows to one sub-merchant.
"""
from __future__ import annotations

from chalicelib.db import items
from chalicelib.db.binding import bind_records
from chalicelib.db.ledger import LEDGER_DAY_SHARDS, ledger_day_shard
from chalicelib.domain.reconciliation import RETURN, SPLIT, DayKeys, OurPayment, OurRefund, OurSharingLine

BATCH_GET_MAX = 100            # DynamoDB's limit of keys per BatchGetItem
FEE_ENTRY = "fit#FEE#0"        # the provider's fee, booked by the split plan's fit (services/settlement.py)
_ACCEPTED = ("PROCESSING", "DONE")   # domain/settlement.py: an operation the provider took


def read_day_keys(day: str, sub_mchid: str | None = None) -> DayKeys:
    """Our payments, refunds and split / return lines of the Beijing ``day`` (YYYY-MM-DD),
    of every sub-merchant or only ``sub_mchid``'s."""
    from datetime import date

    date.fromisoformat(day)    # a malformed day reads nothing silently otherwise
    bind_records()
    return DayKeys(day=day, payments=_payments(day, sub_mchid), refunds=_refunds(day, sub_mchid),
                   sharing=_sharing(day, sub_mchid))


def accepted_operations(record, settlement: dict, now: float) -> list:
    """The ``sharing_ops`` items a plan step must put with itself: one per operation this
    step records as accepted by the provider (new or STORED before, PROCESSING or DONE
    now) that pays a receiver. ``record``: the SplitPlanRecord as read; ``settlement``: the
    state being written (``Settlement.to_json()``)."""
    from chalicelib.db.records import SharingOpRecord

    before = {op.get("out_order_no"): op.get("state") for op in (record.settlement or {}).get("operations") or ()}
    found = []
    for op in settlement.get("operations") or ():
        if op.get("state") not in _ACCEPTED or before.get(op.get("out_order_no"), "STORED") != "STORED":
            continue
        if not any(int(part.get("amount_fen") or 0) > 0 for part in op.get("parts") or ()):
            continue   # an unfreeze alone: no receiver line in any bill
        found.append(SharingOpRecord(ledger_day_shard(record.order_id, now), op["out_order_no"],
                                     order_id=record.order_id, sub_mchid=record.sub_mchid, kind=op["kind"], at=now))
    return found


# --- payments -------------------------------------------------------------------------------

def _payments(day: str, sub_mchid: str | None) -> dict[str, OurPayment]:
    from chalicelib.db.records import OrderRecord

    rows = {}
    for shard in range(LEDGER_DAY_SHARDS):
        for r in OrderRecord.paid_by_day.query(
                f"{day}#{shard}", filter_condition=(OrderRecord.sub_mchid == sub_mchid) if sub_mchid else None,
                attributes_to_get=["order_id", "sub_mchid", "payable_fen", "status", "transaction_id"]):
            rows[r.order_id] = r
    fees = _fees(list(rows))
    return {oid: OurPayment(out_trade_no=oid, sub_mchid=r.sub_mchid, total_fen=int(r.payable_fen), state=r.status,
                            transaction_id=r.transaction_id, fee_fen=fees.get(oid))
            for oid, r in rows.items()}


def _fees(order_ids: list[str]) -> dict[str, int]:
    from chalicelib.db.records import LedgerEntryRecord

    fees = {}
    for first in range(0, len(order_ids), BATCH_GET_MAX):
        keys = [{"order_id": {"S": oid}, "entry_id": {"S": FEE_ENTRY}} for oid in order_ids[first:first + BATCH_GET_MAX]]
        for entry in items.batch_get({LedgerEntryRecord: keys}).get(LedgerEntryRecord, []):
            fees[entry.order_id] = int(entry.amount_fen)
    return fees


# --- refunds --------------------------------------------------------------------------------

def _refunds(day: str, sub_mchid: str | None) -> dict[str, OurRefund]:
    from chalicelib.db.records import RefundRecord
    from chalicelib.domain.time import beijing_date

    records = [r for shard in range(LEDGER_DAY_SHARDS)
               for r in RefundRecord.requested_by_day.query(f"{day}#{shard}")]
    missing = sorted({r.order_id for r in records if not r.sub_mchid})   # asked before sub_mchid was copied
    sub_of = _order_sub_mchids(missing)
    found = {}
    for r in records:
        sub = r.sub_mchid or sub_of.get(r.order_id)
        if sub_mchid and sub != sub_mchid:
            continue
        for attempt in r.attempts or []:
            number = attempt.get("out_refund_no")
            current = number == r.out_refund_no
            if not number or str(attempt.get("cause") or "").startswith("REFUSED_"):
                continue   # refused outright: never reached the provider
            at = attempt.get("requested_at")
            if not current and (at is None or beijing_date(float(at)).isoformat() != day):
                continue   # an earlier attempt of another day (or of unknown day)
            found[number] = OurRefund(out_refund_no=number, out_trade_no=r.order_id, sub_mchid=sub or "",
                                      amount_fen=int(r.amount_fen),
                                      state=r.status if current else str(attempt.get("status") or ""))
        if r.out_refund_no not in found and not any(a.get("out_refund_no") == r.out_refund_no
                                                    for a in r.attempts or []):
            found[r.out_refund_no] = OurRefund(r.out_refund_no, r.order_id, sub or "", int(r.amount_fen), r.status)
    return found


def _order_sub_mchids(order_ids: list[str]) -> dict[str, str]:
    from chalicelib.db.records import OrderRecord

    subs = {}
    for first in range(0, len(order_ids), BATCH_GET_MAX):
        keys = [{"order_id": {"S": oid}} for oid in order_ids[first:first + BATCH_GET_MAX]]
        for order in items.batch_get({OrderRecord: keys}).get(OrderRecord, []):
            subs[order.order_id] = order.sub_mchid
    return subs


# --- split and return lines -----------------------------------------------------------------

def _sharing(day: str, sub_mchid: str | None) -> dict[tuple[str, str], OurSharingLine]:
    from chalicelib.db.records import SharingOpRecord, SplitPlanRecord

    pointers = [p for shard in range(LEDGER_DAY_SHARDS)
                for p in SharingOpRecord.query(f"{day}#{shard}", filter_condition=(
                    SharingOpRecord.sub_mchid == sub_mchid) if sub_mchid else None)]
    wanted = sorted({p.order_id for p in pointers})
    plans = {}
    for first in range(0, len(wanted), BATCH_GET_MAX):
        keys = [{"order_id": {"S": oid}} for oid in wanted[first:first + BATCH_GET_MAX]]
        for plan in items.batch_get({SplitPlanRecord: keys}).get(SplitPlanRecord, []):
            plans[plan.order_id] = plan
    lines: dict[tuple[str, str], OurSharingLine] = {}
    for pointer in pointers:
        plan = plans.get(pointer.order_id)
        ops = (plan.settlement or {}).get("operations") or () if plan is not None else ()
        op = next((o for o in ops if o.get("out_order_no") == pointer.out_no), None)
        if op is None or op.get("state") not in _ACCEPTED:
            continue
        kind = RETURN if op.get("kind") == "RETURN" else SPLIT
        for part in op.get("parts") or ():
            amount = int(part.get("amount_fen") or 0)
            if amount <= 0:
                continue   # kept back in full for a clawback: not sent
            state = "PROCESSING" if op["state"] == "PROCESSING" else str(part.get("result") or "PROCESSING")
            key = (pointer.out_no, part["account"])
            if key in lines:   # the same account twice in one operation: one line at the provider
                amount += lines[key].amount_fen
            lines[key] = OurSharingLine(kind=kind, out_no=pointer.out_no, out_trade_no=pointer.order_id,
                                        sub_mchid=plan.sub_mchid or pointer.sub_mchid or "", receiver=part["account"],
                                        amount_fen=amount, state=state)
    return lines
