"""The nightly reconciliation (M13, domain rule 10): one Beijing day's bills against our
records, the safe repairs, and the day's report.

``reconcile(day, c, now)``:

1. takes the day's lease (a second run at the same time answers BUSY and does nothing);
2. fetches the trade bill (ALL) and the profit-sharing bill of the day. NOT_YET: the day is
   noted WAITING and the run answers ``retry_at``; REFUSED (a hash or a file that does not
   read): the report says so and nothing is applied; EMPTY: nothing happened there;
3. reads the day's keys (``db/reconciliation_day``) and streams the bills past them
   (``domain/reconciliation.reconcile_day``), tallying every finding and keeping only the
   discrepancies (a day's discrepancies, never its rows);
4. repairs what is safe (``Repairs``), and only that:
   - a payment the bill shows that we never applied: the provider is asked for that
     out_trade_no and its word goes through the callbacks' exactly-once path
     (``apply_payment``: the follow-up work is queued with it); money that reached an
     order we had closed is refunded in full by that path (``refund_late_payment``);
   - a split or return whose result we never recorded (ours PROCESSING, the bill's an
     end): the settlement service polls it (``settle_order`` with only that POLL step);
   - the provider's fee of each paid order: booked to the ledger's FEE account under the
     fit's key ``fit#FEE#0`` when nothing is booked there yet (a conditional put: once,
     whoever comes first);
   everything else is only reported (a refund done at the provider that we never asked
   for needs a person: NEEDS_PERSON);
5. checks M8's ledger invariant for every order of the day (``ledger_check.order_problem``);
6. writes the report — in DynamoDB (``db/reconciliation_reports``) and as CSV
   (``db/report_files``) — only when its content is new: a re-run of an unchanged day
   writes nothing.

The answer's ``ok`` is False while discrepancies remain unresolved (or ledger breaks, or
the bills could not be read): ``./storelink job reconcile`` then exits non-zero.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib.domain import reconciliation as rec
from chalicelib.domain.reconciliation_report import report_lines, sort_key
from chalicelib.domain.time import beijing_date
from chalicelib.log import get_logger

LEASE_S = 15 * 60                # renewed every RENEW_EVERY findings; a crashed run frees the day after this
RENEW_EVERY = 50_000

# What a run answers (``status``)
DONE, REFUSED, WAITING, BUSY = "DONE", "REFUSED", "WAITING", "BUSY"

# Repairs: what was done about a discrepancy (``repair`` in the report)
APPLIED = "APPLIED"                              # the payment was applied now, through the callbacks' path
ALREADY_PAID = "ALREADY_PAID"                    # the order is paid here already (on another day's keys)
LATE_PAYMENT_REFUNDED = "LATE_PAYMENT_REFUNDED"  # paid after we closed it: its full refund is asked
RESULT_RECORDED = "RESULT_RECORDED"              # the split / return result was polled and recorded
REPORTED = "REPORTED"                            # not safe to repair: for a person to look at
NEEDS_PERSON = "NEEDS_PERSON"                    # a refund at the provider we never asked for
NO_SUCH_ORDER = "NO_SUCH_ORDER"
NOT_PAID_AT_PROVIDER = "NOT_PAID_AT_PROVIDER"
PAYMENT_REFUSED = "PAYMENT_REFUSED"              # the provider's word did not pass the payment checks
STILL_PROCESSING = "STILL_PROCESSING"
PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"    # try again: the next run asks again
RESOLVED = frozenset({APPLIED, ALREADY_PAID, LATE_PAYMENT_REFUNDED, RESULT_RECORDED})

FEE_BOOKED, FEE_ALREADY_BOOKED = "BOOKED", "ALREADY_BOOKED"


def day_to_reconcile(now: float, requested: str | None = None) -> str:
    """The given ``YYYY-MM-DD``, else the Beijing day before ``now``."""
    if requested:
        try:
            return date.fromisoformat(requested).isoformat()
        except ValueError as exc:
            raise ValueError(f"date {requested!r} is not YYYY-MM-DD") from exc
    return (beijing_date(now) - timedelta(days=1)).isoformat()


@dataclass
class Collaborators:
    fetch_bill: Callable          # (day, kind) -> services.bills.FetchedBill
    day_keys: Callable            # (day) -> domain.reconciliation.DayKeys
    reports: object               # db.reconciliation_reports.ReconciliationReportRepository
    files: object                 # db.report_files: .write(day, text) -> where
    repairs: object               # Repairs (or a fake): .repair(finding), .book_fee(order_id, fee_fen)
    ledger: Callable              # (day, order_ids) -> [{"order_id", "sub_mchid", "problem", ...}]
    brand_id: str | None = None


# --- the run -----------------------------------------------------------------------------------

def reconcile(day: str, c: Collaborators, now: float, *, progress: Callable[[int, int | None], None] | None = None,
              run_id: str | None = None) -> dict:
    """One run over ``day`` (YYYY-MM-DD); see the module. ``progress(done, total)`` is told
    how many findings were made (about one a bill row)."""
    from chalicelib.services import bills as B

    log = get_logger("storelink.reconcile")
    day = date.fromisoformat(day).isoformat()
    holder = run_id or f"rc_{int(now * 1000)}_{secrets.token_hex(3)}"
    lease = c.reports.take_lease(day, holder, now + LEASE_S, now)
    if not lease.acquired:
        answer = {"day": day, "status": BUSY, "ok": False, "held_by": lease.holder, "lease_until": lease.lease_until,
                  "message": f"another run ({lease.holder}) holds {day}: it writes the report; nothing done here"}
        log.info("reconcile", extra={"fields": answer})
        return answer
    bills = []
    try:
        trade = c.fetch_bill(day, B.ALL)
        bills.append(trade)
        sharing = c.fetch_bill(day, B.PROFITSHARING)
        bills.append(sharing)
        waiting = [b for b in bills if b.outcome == B.NOT_YET]
        if waiting:
            retry_at = max(int(b.retry_at or now) for b in waiting)
            c.reports.note_waiting(day, retry_at, now, c.brand_id)
            answer = {"day": day, "status": WAITING, "ok": False, "retry_at": retry_at,
                      "message": f"WeChat Pay's bills of {day} are not there yet: run again after the retry time"}
            log.info("reconcile", extra={"fields": answer})
            return answer
        if any(b.outcome == B.REFUSED for b in bills):
            return _refused(day, bills, c, now, log)
        answer = _reconcile_bills(day, trade, sharing, c, now, progress, holder)
        (log.info if answer["ok"] else log.warning)("reconcile", extra={"fields": answer})
        return answer
    finally:
        for b in bills:
            b.close()
        c.reports.release_lease(day, holder, now)


def _bill_view(b) -> dict:
    view = {"kind": b.kind, "outcome": b.outcome}
    if b.hash_value:
        view["hash"] = b.hash_value
    if b.totals is not None:
        view["rows"] = b.totals.rows
    if b.reason:
        view["reason"] = b.reason
    return view


def _refused(day: str, bills: list, c: Collaborators, now: float, log) -> dict:
    """A bill that cannot be trusted: reported, nothing applied."""
    views = [_bill_view(b) for b in bills]
    refused = [{**_bill_view(b), "problem": (b.detail or {}).get("problem")} for b in bills if b.outcome == "REFUSED"]
    content = {"day": day, "status": REFUSED, "bills": views, "refused": refused}
    content_hash = _hash(content)
    lines = ["section,day,bill_kind,outcome,reason,problem\n"] + [
        _csv(("refused", day, r["kind"], r["outcome"], r.get("reason"), r.get("problem"))) for r in refused]
    saved = _store(day, REFUSED, content_hash, {**content, "counts": {}}, {}, {}, {}, "".join(lines), c, now)
    answer = {"day": day, "status": REFUSED, "ok": False, "refused": refused, "written": saved.written,
              "revision": saved.revision, "message": f"a bill of {day} was refused: nothing was applied"}
    log.warning("reconcile", extra={"fields": answer})
    return answer


def _reconcile_bills(day: str, trade, sharing, c: Collaborators, now: float, progress, holder: str) -> dict:
    from chalicelib.services import bills as B

    trade_rows = trade.rows() if trade.outcome == B.READY else ()
    sharing_rows = sharing.rows() if sharing.outcome == B.READY else ()
    total = sum(b.totals.rows for b in (trade, sharing) if b.totals is not None)
    keys = c.day_keys(day)
    summary = rec.DaySummary(day)
    discrepancies: list = []
    fees: list[tuple[str, int]] = []        # (order_id, the bill's fee) of paid orders with no fee booked
    done = 0
    for finding in summary.tally(rec.reconcile_day(trade_rows, sharing_rows, keys)):
        done += 1
        if finding.outcome != rec.MATCHED:
            discrepancies.append(finding)
        if (finding.kind == rec.PAYMENT and finding.our_fee_fen is None and finding.fee_fen
                and finding.ours_status in rec.PAID_STATES):
            fees.append((finding.order_id, finding.fee_fen))
        if progress is not None and (done % 1000 == 0):
            progress(done, total)
        if done % RENEW_EVERY == 0:
            c.reports.renew_lease(day, holder, now + LEASE_S)
    if progress is not None:
        progress(done, max(total, done))

    # Repairs: each idempotent by construction (an exactly-once path, a conditional put).
    repaired: list[tuple] = []
    for finding in sorted(discrepancies, key=sort_key):
        outcome, note = c.repairs.repair(finding)
        repaired.append((finding, outcome, note))
    booked = {}
    fee_counts = {FEE_BOOKED: 0, FEE_ALREADY_BOOKED: 0}
    for order_id, fee in fees:
        result = c.repairs.book_fee(order_id, fee)
        fee_counts[result] = fee_counts.get(result, 0) + 1
        booked[order_id] = fee
    # The report shows the books as they now stand: a fee booked by this run is ours too.
    repaired = [(f._replace(our_fee_fen=booked[f.order_id]) if f.kind == rec.PAYMENT and f.our_fee_fen is None
                 and f.order_id in booked else f, o, n) for f, o, n in repaired]

    order_ids = sorted({p.out_trade_no for p in keys.payments.values()} | {r.out_trade_no for r in keys.refunds.values()}
                       | {s.out_trade_no for s in keys.sharing.values()} | {f.order_id for f, o, _ in repaired
                                                                          if o in RESOLVED})
    breaks = c.ledger(day, order_ids)

    rows = [_discrepancy(day, f, o, n) for f, o, n in repaired]
    remaining = [r for r in rows if r["repair"] not in RESOLVED]
    cells = summary.cells() + summary.totals()
    by_sub_cells: dict[str, list] = {}
    for cell in cells:
        by_sub_cells.setdefault(cell.sub_mchid, []).append(cell._asdict())
    by_sub_rows: dict[str, list] = {}
    for row in rows:
        by_sub_rows.setdefault(row["sub_mchid"], []).append(row)
    by_sub_breaks: dict[str, list] = {}
    for b in breaks:
        by_sub_breaks.setdefault(b.get("sub_mchid") or "", []).append(b)
    repairs = {}
    for row in rows:
        repairs[row["repair"]] = repairs.get(row["repair"], 0) + 1
    counts = {"findings": done, "matched": summary.count(rec.MATCHED), "discrepancies": len(rows),
              "remaining": len(remaining), "ledger_orders": len(order_ids), "ledger_breaks": len(breaks),
              "by_class": {cls: summary.count(cls) for cls in rec.CLASSES if summary.count(cls)}}
    content = {"day": day, "status": DONE, "bills": [_bill_view(trade), _bill_view(sharing)], "cells": by_sub_cells,
               "discrepancies": rows, "ledger_breaks": breaks}
    content_hash = _hash(content)
    head = {"day": day, "bills": content["bills"], "counts": counts, "repairs": repairs,
            "totals": [cell._asdict() for cell in summary.totals()]}
    text = "".join(report_lines(day, [f for f, _, _ in repaired], summary)) + "".join(_extra_lines(day, rows, breaks))
    saved = _store(day, DONE, content_hash, head, by_sub_cells, by_sub_rows, by_sub_breaks, text, c, now)
    return {"day": day, "status": DONE, "ok": not remaining and not breaks, "rows": total, "findings": done,
            "discrepancies": len(rows), "remaining": len(remaining), "repairs": repairs, "fees": fee_counts,
            "ledger_breaks": len(breaks), "written": saved.written, "revision": saved.revision}


def _store(day, status, content_hash, head, cells, rows, breaks, text, c: Collaborators, now):
    current = c.reports.head(day)
    if current is not None and current.content_hash == content_hash:
        from chalicelib.db.reconciliation_reports import Saved

        return Saved(False, int(current.revision or 0))
    where = c.files.write(day, text)          # first: a crash before HEAD leaves the old report in force
    return c.reports.save(day, status=status, content_hash=content_hash, head_body={**head, "file": where},
                          cells=cells, discrepancies=rows, ledger_breaks=breaks, brand_id=c.brand_id, now=now)


def _discrepancy(day: str, f, repair: str, note: str) -> dict:
    return {"day": day, "class": f.outcome, "kind": f.kind, "sub_mchid": f.sub_mchid, "order_id": f.order_id,
            "key": f.key, "receiver": f.receiver, "ours_fen": f.ours_fen, "theirs_fen": f.theirs_fen,
            "diff_fen": f.diff_fen, "ours_status": f.ours_status, "theirs_status": f.theirs_status,
            "transaction_id": f.transaction_id, "fee_fen": f.fee_fen, "our_fee_fen": f.our_fee_fen,
            "bill_line": f.line or None, "reason": f.reason, "repair": repair, "repair_note": note}


def _extra_lines(day: str, rows: list[dict], breaks: list[dict]):
    """The report's last two sections: each discrepancy's repair, and the ledger breaks."""
    yield _csv(("section", "day", "sub_mchid", "class", "kind", "order_id", "key", "receiver", "repair", "note"))
    for r in rows:
        yield _csv(("repair", day, r["sub_mchid"], r["class"], r["kind"], r["order_id"], r["key"], r["receiver"],
                    r["repair"], r["repair_note"]))
    yield _csv(("section", "day", "sub_mchid", "order_id", "problem"))
    for b in breaks:
        yield _csv(("ledger_break", day, b.get("sub_mchid"), b["order_id"], b.get("problem")))


def _csv(values) -> str:
    out = []
    for v in values:
        text = "" if v is None else str(v)
        if any(ch in text for ch in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        out.append(text)
    return ",".join(out) + "\n"


def _hash(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


# --- the safe repairs --------------------------------------------------------------------------

class Repairs:
    """What the reconciliation may put right by itself, through the paths that already
    exist for it (see the module); everything else is REPORTED."""

    def __init__(self, *, payment_records, refunds, provider, settle_poll, sp_mchid: str, sp_appid: str,
                 on_late_payment, book_fee_once, now: float):
        self.payment_records, self.refunds, self.provider = payment_records, refunds, provider
        self.settle_poll = settle_poll            # (order_id, out_no) -> the operation's state after polling
        self.sp_mchid, self.sp_appid = sp_mchid, sp_appid
        self.on_late_payment, self.book_fee_once, self.now = on_late_payment, book_fee_once, now

    def repair(self, f) -> tuple[str, str]:
        if f.kind == rec.PAYMENT and (f.outcome == rec.MISSING_HERE or (
                f.outcome == rec.STATUS_DIFFERS and f.ours_status not in rec.PAID_STATES)):
            return self.missed_payment(f.order_id)
        if f.kind == rec.REFUND and f.outcome == rec.MISSING_HERE:
            return NEEDS_PERSON, f"a refund of order {f.order_id} at the provider that was never asked here"
        if (f.kind in (rec.SPLIT, rec.RETURN) and f.outcome == rec.STATUS_DIFFERS
                and f.ours_status in ("PROCESSING", "PENDING", "") and f.theirs_status in ("SUCCESS", "CLOSED",
                                                                                         "FAILED")):
            return self.missed_result(f.order_id, f.key, f.theirs_status)
        return REPORTED, ""

    def missed_payment(self, order_id: str) -> tuple[str, str]:
        from chalicelib.domain.payments import APPLY, DUPLICATE
        from chalicelib.services.payments import apply_payment
        from chalicelib.wechat.pay import ProviderUnavailable

        late_refund = f"rf_late_{order_id}"       # services/refunds.refund_late_payment's one refund per order
        record = self.payment_records.get_order(order_id)
        if record is None:
            return NO_SUCH_ORDER, "no order here has this out_trade_no"
        if record.status in rec.PAID_STATES:
            return ALREADY_PAID, f"the order is {record.status} here"
        if record.status == "CLOSED" and self.refunds.get(late_refund) is not None:
            return LATE_PAYMENT_REFUNDED, f"paid after it was closed: refund {late_refund}"
        try:
            found = self.provider.query(order_id, record.sub_mchid)
        except ProviderUnavailable:
            return PROVIDER_UNAVAILABLE, "WeChat Pay did not answer the query"
        except Exception as exc:  # noqa: BLE001 - e.g. ORDER_NOT_EXIST: reported as it is
            return NOT_PAID_AT_PROVIDER, f"the provider's query: {type(exc).__name__}"
        if found is None or found.trade_state != "SUCCESS":
            return NOT_PAID_AT_PROVIDER, f"trade_state {getattr(found, 'trade_state', None)}"
        outcome = apply_payment({**found.raw, "out_trade_no": order_id}, payments=self.payment_records,
                                sp_mchid=self.sp_mchid, sp_appid=self.sp_appid, now=self.now, source="reconciliation",
                                on_late_payment=self.on_late_payment)
        if outcome == APPLY:
            return APPLIED, f"transaction {found.transaction_id} applied"
        if outcome == DUPLICATE:
            return ALREADY_PAID, "applied meanwhile"
        if record.status == "CLOSED" and self.refunds.get(late_refund) is not None:
            return LATE_PAYMENT_REFUNDED, f"paid after it was closed: refund {late_refund}"
        return PAYMENT_REFUSED, "the provider's transaction did not pass the payment checks (see the order's history)"

    def missed_result(self, order_id: str, out_no: str, theirs: str) -> tuple[str, str]:
        from chalicelib.wechat.pay import ProviderUnavailable

        try:
            state = self.settle_poll(order_id, out_no)
        except ProviderUnavailable:
            return PROVIDER_UNAVAILABLE, "WeChat Pay did not answer the query"
        if state in ("DONE", "FINISHED", "SUCCESS", "CLOSED", "FAILED"):
            return RESULT_RECORDED, f"{out_no} is {state} here now"
        return STILL_PROCESSING, f"{out_no} is {state or 'unknown'} here"

    def book_fee(self, order_id: str, fee_fen: int) -> str:
        return FEE_BOOKED if self.book_fee_once(order_id, fee_fen, self.now) else FEE_ALREADY_BOOKED


# --- the default collaborators ------------------------------------------------------------------

def settle_poll(order_id: str, out_no: str, now: float) -> str | None:
    """Poll one operation of a plan through the settlement service (only that POLL step);
    the operation's state afterwards."""
    from chalicelib.services.settlement import collaborators, settle_order

    c = collaborators()
    settle_order(order_id, c, now, only=lambda step: step.kind == "POLL" and step.operation is not None
                 and step.operation.out_order_no == out_no)
    record = c.settlement.load(order_id)
    ops = ((record.settlement or {}).get("operations") or ()) if record is not None else ()
    op = next((o for o in ops if o.get("out_order_no") == out_no), None)
    return op.get("state") if op else None


def ledger_breaks(day: str, order_ids: list[str], *, splits, orders, ledger_days) -> list[dict]:
    """M8's invariant over every order of the day (those of the day's keys, and those whose
    ledger moved that day): one dict per order that does not balance."""
    from chalicelib.services.ledger_check import order_problem

    wanted = dict.fromkeys(order_ids)
    wanted.update(dict.fromkeys(ledger_days.orders_of_day(date.fromisoformat(day))))
    broken = []
    for order_id in sorted(wanted):
        problem = order_problem(order_id, splits.ledger(order_id))
        if problem is not None:
            order = orders.get(order_id)
            broken.append({"order_id": order_id, "sub_mchid": getattr(order, "sub_mchid", None) or "",
                           "problem": problem["problem"],
                           **{k: v for k, v in problem.items() if k != "problem" and isinstance(v, (int, str))}})
    return broken


def collaborators(now: float) -> Collaborators:
    from chalicelib.config import settings
    from chalicelib.db.ledger_days import LedgerDayRepository
    from chalicelib.db.reconciliation_day import read_day_keys
    from chalicelib.db.reconciliation_reports import ReconciliationReportRepository, book_provider_fee
    from chalicelib.db.report_files import default_report_files
    from chalicelib.services import wiring
    from chalicelib.services.bills import fetch_bill
    from chalicelib.services.payments import late_payment_refunder

    s = settings()
    repairs = Repairs(payment_records=wiring.payment_records(), refunds=wiring.refunds(), provider=wiring.payments(),
                      settle_poll=lambda order_id, out_no: settle_poll(order_id, out_no, now), sp_mchid=s.sp_mchid,
                      sp_appid=s.sp_appid, on_late_payment=late_payment_refunder(), book_fee_once=book_provider_fee,
                      now=now)
    return Collaborators(
        fetch_bill=lambda day, kind: fetch_bill(day, kind, now=now, brand_id=s.brand_id), day_keys=read_day_keys,
        reports=ReconciliationReportRepository(), files=default_report_files(), repairs=repairs,
        ledger=lambda day, order_ids: ledger_breaks(day, order_ids, splits=wiring.splits(), orders=wiring.orders(),
                                                    ledger_days=LedgerDayRepository()),
        brand_id=s.brand_id)


# --- reading a report (the back office) --------------------------------------------------------

def read_report(principal, day: str, sub_mchid: str | None, *, reports, network) -> dict:
    """``GET /v1/admin/reconciliation/{day}[?sub_mchid=]``: a brand sees every sub-merchant
    (or one), a dealer only its own sub-merchant's part (another one's: 404, as if absent);
    a store token may not read money reconciliation at all (403)."""
    from chalicelib.domain import tenancy
    from chalicelib.domain.time import rfc3339
    from chalicelib.errors import NotFound, ValidationFailed

    tenancy.require_role(principal, tenancy.BRAND, tenancy.DEALER, action="read reconciliation reports")
    try:
        if len(day) != 10:
            raise ValueError
        day = date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        raise ValidationFailed("The day is YYYY-MM-DD (a Beijing day).", field="day") from None
    missing = NotFound(f"No reconciliation report for {day}.", day=day)
    brand_id = principal.tenant_id
    if principal.role == tenancy.DEALER:
        dealer = network.get_dealer(principal.tenant_id)
        if dealer is None or (sub_mchid is not None and sub_mchid != dealer.sub_mchid):
            raise missing
        sub_mchid, brand_id = dealer.sub_mchid, dealer.brand_id
    found = reports.read(day, sub_mchid)
    if found is None:
        raise missing
    head = found["head"]
    if head.brand_id and head.brand_id != brand_id:
        raise missing
    body = dict(head.body or {})
    rows = [_masked(row) for row in found["discrepancies"]]
    view = {"day": day, "status": head.status, "revision": int(head.revision or 0),
            "scope": sub_mchid or "ALL", "generated_at": rfc3339(float(head.updated_at or head.created_at)),
            "bills": body.get("bills", []), "summary": found["cells"], "discrepancies": rows,
            "ledger_breaks": found["ledger_breaks"]}
    if head.status == WAITING:
        view["retry_at"] = rfc3339(float(body.get("retry_at") or head.created_at))
    if body.get("refused"):
        view["refused"] = body["refused"]
    if sub_mchid is None:
        view["counts"] = body.get("counts", {})
        view["repairs"] = body.get("repairs", {})
    else:
        repairs: dict[str, int] = {}
        for row in rows:
            repairs[row["repair"]] = repairs.get(row["repair"], 0) + 1
        view["counts"] = {"discrepancies": len(rows), "remaining": sum(r["repair"] not in RESOLVED for r in rows),
                          "ledger_breaks": len(found["ledger_breaks"])}
        view["repairs"] = repairs
    return view


_RECEIVER_IN_REASON = re.compile(r"(receiver here |in the bill )([A-Za-z0-9_-]+)")


def _masked(row: dict) -> dict:
    """A promoter's receiver account is an openid: the back office sees it masked (a
    merchant id, all digits, is not personal)."""
    from chalicelib.domain.sharing import mask_openid

    def mask(account: str) -> str:
        return account if not account or account.isdigit() else mask_openid(account)

    return {**row, "receiver": mask(row.get("receiver") or ""),
            "reason": _RECEIVER_IN_REASON.sub(lambda m: m.group(1) + mask(m.group(2)), row.get("reason") or "")}
