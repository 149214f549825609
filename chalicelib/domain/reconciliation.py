"""Nightly reconciliation (issue M13, domain rule 10): the provider's bills of one
Beijing day against our own records of that day, as pure functions.

Our side is "the day's keys": every payment, refund and split operation we know of
whose bill day is that day (same day rules as the bills: a payment by its success
time, a refund by the day it was asked for, a split by the day it was sent), read by
key ranges or indexes and held in memory as the small records below. The bills are
streamed past them row by row (``chalicelib/domain/bills.py``), so memory holds the
day's keys and never the bill.

Streaming: ``match_trade_rows`` / ``match_sharing_rows`` look each bill row up in the
day's keys, yield ONE ``Finding`` for it and forget it; only ``Seen`` grows (the keys
of our records already matched, bounded by the day's keys; plus the rare sharing rows
whose receiver we do not know, bounded by the discrepancies). ``leftovers`` then yields
our records no bill row named. ``reconcile_day`` chains the three. No I/O, no clock.

The rules (each bill row gives exactly one finding; each of our records is named by at
most one finding):

* Identity. A bill row matches our record of the same key (payment: out_trade_no;
  refund: out_refund_no; split/return line: (out_order_no | out_return_no, receiver))
  only if the sub-merchant (and, for a refund, the out_trade_no; for a sharing line,
  SPLIT vs RETURN) agree too. Otherwise the row is MISSING_HERE and our record, if no
  other row names it, MISSING_THERE. A second row with a key already matched is
  MISSING_HERE ("listed twice").
* Status before amount. A matched row whose status differs for real is STATUS_DIFFERS
  (the reason says so if the amount differs as well); otherwise a different amount is
  AMOUNT_DIFFERS (payment, refund) or SPLIT_DIFFERS (split or return line); otherwise
  MATCHED.
* Payment (交易状态 SUCCESS): the bill's 订单金额 (``order_total_fen``: what was asked
  for, = amount.total of the prepay) against ``total_fen``. 应结订单金额 is NOT compared:
  it is lower than the order total by a provider voucher (代金券) without anything being
  wrong. Our state must be one of ``PAID_STATES`` (PAID and what follows it: FULFILLING,
  COMPLETED, REFUNDED); CLOSED or PENDING_PAYMENT is STATUS_DIFFERS: **paid at the
  provider, never applied here** (the sandbox's ``unknown_payment`` on an order that
  exists here; the repair queries the order and applies the payment). A paid row whose
  order is not among the day's keys at all is MISSING_HERE (``unknown_payment`` of an
  order we never made; the repair looks the order up, it may belong to another day).
  Leftover payments are MISSING_THERE only in a paid state: an order closed here and
  absent from the bill agrees with it.
* Refund (交易状态 REFUND, on the day it was asked for): 申请退款金额
  (``requested_refund_fen``, what we asked) against ``amount_fen``. A refund row whose
  out_refund_no we never issued is MISSING_HERE (the sandbox's ``missed_refund``).
* Status is a snapshot (wechatpay-v3.md §7: rows are not updated later). The bill's
  status is as at its making (09:00 D+1); ours is read later. So ours may be the SAME
  state or a LATER one (PROCESSING there, SUCCESS here is fine), never an earlier one
  (SUCCESS there, PROCESSING here: we missed the result) nor a different end (CLOSED
  there, SUCCESS here). Order: in flight (PROCESSING, PENDING, or no status) <
  ABNORMAL (refunds) < an end (SUCCESS; CLOSED / FAILED). See ``status_agrees``.
* Split and return lines: 动账金额 against ``amount_fen``. A line whose out_no we know
  but whose receiver we do not is held back and, at ``leftovers``, paired with a line of
  ours of the same out_no, kind and sub-merchant that no row named: SPLIT_DIFFERS
  ("receiver differs"); unpaired, it is MISSING_HERE.
* Never sent: our records in a state that never reached the provider (``NEVER_SENT``:
  a refund REQUESTED / REJECTED, an operation STORED / REFUSED) are not expected in a
  bill and give no finding when absent.
* Fees: every payment finding (MATCHED included) carries the bill's 手续费 as
  ``fee_fen`` beside ``our_fee_fen`` (what the ledger booked, None if nothing); a refund
  finding carries the fee the refund gives back (negative). A different fee is not a
  class of its own: booking M8's FEE account from ``fee_fen`` is the job's.
"""
from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from chalicelib.domain.bills import SharingRow, TradeRow

# Classes of a reconciled item
MATCHED = "MATCHED"
MISSING_HERE = "MISSING_HERE"        # in the provider's bill, not in our records
MISSING_THERE = "MISSING_THERE"      # in our records, not in the provider's bill
AMOUNT_DIFFERS = "AMOUNT_DIFFERS"
STATUS_DIFFERS = "STATUS_DIFFERS"
SPLIT_DIFFERS = "SPLIT_DIFFERS"      # a split (or return) line differs in amount or receiver
CLASSES = (MATCHED, MISSING_HERE, MISSING_THERE, AMOUNT_DIFFERS, STATUS_DIFFERS, SPLIT_DIFFERS)

# What an item is
PAYMENT = "PAYMENT"
REFUND = "REFUND"
SPLIT = "SPLIT"
RETURN = "RETURN"


@dataclass(frozen=True, slots=True)
class OurPayment:
    out_trade_no: str          # our order id
    sub_mchid: str
    total_fen: int             # what the provider was asked to collect
    state: str                 # the order's payment state here: PAID, or CLOSED / PENDING_PAYMENT (never applied)
    transaction_id: str | None = None
    fee_fen: int | None = None  # the provider's fee as booked in our ledger (None: not booked yet)


@dataclass(frozen=True, slots=True)
class OurRefund:
    out_refund_no: str
    out_trade_no: str
    sub_mchid: str
    amount_fen: int
    state: str                 # PROCESSING, SUCCESS, CLOSED, ABNORMAL as we last heard


@dataclass(frozen=True, slots=True)
class OurSharingLine:
    """One receiver's line of a split we sent (or one return), as our settlement records it."""
    kind: str                  # SPLIT or RETURN
    out_no: str                # out_order_no (split) or out_return_no (return)
    out_trade_no: str          # the order it belongs to
    sub_mchid: str
    receiver: str              # the receiver's account (a return: who gives back)
    amount_fen: int
    state: str                 # PROCESSING, SUCCESS, CLOSED (FAILED for a return) as we last recorded


@dataclass
class DayKeys:
    """Everything of one Beijing day on our side, keyed as the bills key it."""
    day: str                                                     # YYYY-MM-DD, Beijing
    payments: dict[str, OurPayment]                              # out_trade_no ->
    refunds: dict[str, OurRefund]                                # out_refund_no ->
    sharing: dict[tuple[str, str], OurSharingLine]               # (out_no, receiver) ->


# --- states -----------------------------------------------------------------------------------------

PAID_STATES = frozenset({"PAID", "FULFILLING", "COMPLETED", "REFUNDED"})   # an order whose payment was applied
NEVER_SENT = frozenset({"REQUESTED", "REJECTED", "STORED", "REFUSED"})     # never reached the provider

# A status -> (rank, the state it names). Ranks: 0 in flight, 1 ABNORMAL (a refund that waits for
# a person), 2 an end. The bills' and the APIs' synonyms are folded into one name each.
_STATUS = {
    "": (0, "PROCESSING"), "PROCESSING": (0, "PROCESSING"), "PENDING": (0, "PROCESSING"),
    "ABNORMAL": (1, "ABNORMAL"), "CHANGE": (1, "ABNORMAL"),            # CHANGE: the V2 bills' name of ABNORMAL
    "SUCCESS": (2, "SUCCESS"), "FINISHED": (2, "SUCCESS"),
    "CLOSED": (2, "CLOSED"), "CLOSE": (2, "CLOSED"), "REFUNDCLOSE": (2, "CLOSED"), "FAILED": (2, "CLOSED"),
}


def status_agrees(ours: str, theirs: str) -> bool:
    """Whether our status can be the bill's snapshot status or a later one: the same state,
    or a later one from a bill state that was not an end yet. An unknown status is an end
    that agrees only with itself."""
    if ours == theirs:
        return True
    our_rank, our_state = _STATUS.get(ours, (2, ours))
    their_rank, their_state = _STATUS.get(theirs, (2, theirs))
    return our_state == their_state or (their_rank < 2 and our_rank > their_rank)


_AGREES = frozenset((o, t) for o in _STATUS for t in _STATUS if status_agrees(o, t))   # a fast path

_OPERATION_NO = re.compile(r"(.+)-[SR][0-9]+")


def order_of(out_no: str) -> str:
    """The order a split or return belongs to, from StoreLink's numbering: ``<order>-S<nn>``
    (out_order_no), ``<order>-R<nn>`` (out_return_no). A number not made that way is its own."""
    match = _OPERATION_NO.fullmatch(out_no)
    return match.group(1) if match else out_no


# --- findings ---------------------------------------------------------------------------------------

class Finding(NamedTuple):
    """What reconciliation found about one item (immutable; a NamedTuple, so no per-instance
    dict and built in a fraction of a microsecond: a frozen slots dataclass costs ~5 µs to
    build, and a million-row day makes a million findings). ``None``: not known on that side."""
    kind: str                       # PAYMENT, REFUND, SPLIT, RETURN
    outcome: str                    # the class: MATCHED, MISSING_HERE, ... (see CLASSES)
    sub_mchid: str
    order_id: str                   # out_trade_no; for a sharing line the order it belongs to
    key: str                        # out_trade_no / out_refund_no / out_order_no or out_return_no
    receiver: str                   # a sharing line's receiver account ("" otherwise)
    ours_fen: int | None            # our amount (payment total, refund, line amount)
    theirs_fen: int | None          # the bill's (订单金额, 申请退款金额, 动账金额)
    ours_status: str | None
    theirs_status: str | None       # payment: 交易状态 (SUCCESS); refund: 退款状态; line: 处理状态
    transaction_id: str | None      # 微信订单号 (the bill's; ours for MISSING_THERE if we know it)
    fee_fen: int | None             # the bill's 手续费: the fee of a payment, on a refund what it gives back (< 0)
    our_fee_fen: int | None         # the fee our ledger booked for the payment (None: not booked / not a payment)
    reason: str                     # short text; "" on MATCHED
    line: int                       # the row's line in its bill file (0: not in a bill)

    @property
    def is_discrepancy(self) -> bool:
        return self.outcome != MATCHED

    @property
    def diff_fen(self) -> int | None:
        """theirs - ours, when both sides have an amount."""
        if self.ours_fen is None or self.theirs_fen is None:
            return None
        return self.theirs_fen - self.ours_fen


_new = tuple.__new__


@dataclass(slots=True)
class Seen:
    """What the matching remembers between rows: the keys of our records already matched
    (bounded by the day's keys) and sharing rows held back for pairing (bounded by the
    discrepancies). One per day; pass the same one to every ``match_*`` call and to
    ``leftovers``."""
    payments: set = field(default_factory=set)       # out_trade_no
    refunds: set = field(default_factory=set)        # out_refund_no
    sharing: set = field(default_factory=set)        # id() of our OurSharingLine (held alive by the DayKeys)
    held: list = field(default_factory=list)         # SharingRows whose receiver we do not know (yet)
    sharing_by_out_no: dict | None = None            # out_no -> [OurSharingLine], made on the first miss


def _amount_and_status_reason(what: str, ours_fen: int, theirs_fen: int, ours: str, theirs: str) -> str:
    status = f"status here {ours}, in the bill {theirs or '(none)'}"
    if ours_fen != theirs_fen:
        return f"{status}; {what} here {ours_fen} fen, in the bill {theirs_fen} fen"
    return status


def match_trade_rows(rows: Iterable["TradeRow"], keys: DayKeys, seen: Seen | None = None) -> Iterator[Finding]:
    """One finding per trade-bill row (payments and refunds), against ``keys``; ``seen``
    (a new one if not given) records what was matched, for ``leftovers``."""
    if seen is None:
        seen = Seen()
    payments, refunds = keys.payments, keys.refunds
    seen_payments, seen_refunds = seen.payments, seen.refunds
    paid_states, agrees = PAID_STATES, _AGREES
    new, F = _new, Finding
    for row in rows:
        (kind, _, sub, tx, otn, _, orid, status, rstatus, _, order_fen, _, asked_fen, fee, _, line) = row
        if kind == PAYMENT:
            ours = payments.get(otn)
            if ours is None or ours.sub_mchid != sub:
                yield new(F, (PAYMENT, MISSING_HERE, sub, otn, otn, "", None, order_fen, None, status, tx, fee, None,
                              "paid at the provider, no such order here" if ours is None else
                              f"paid at the provider to sub-merchant {sub}; the order here is {ours.sub_mchid}'s",
                              line))
                continue
            if otn in seen_payments:
                yield new(F, (PAYMENT, MISSING_HERE, sub, otn, otn, "", None, order_fen, None, status, tx, fee, None,
                              "listed twice in the bill", line))
                continue
            seen_payments.add(ours.out_trade_no)
            state, total = ours.state, ours.total_fen
            if state not in paid_states:
                outcome = STATUS_DIFFERS
                reason = f"paid at the provider, {state} here (never applied)"
                if total != order_fen:
                    reason += f"; total here {total} fen, in the bill {order_fen} fen"
            elif total != order_fen:
                outcome, reason = AMOUNT_DIFFERS, f"total here {total} fen, in the bill {order_fen} fen"
            else:
                outcome, reason = MATCHED, ""
            yield new(F, (PAYMENT, outcome, sub, otn, otn, "", total, order_fen, state, status, tx, fee, ours.fee_fen,
                          reason, line))
        else:
            ours = refunds.get(orid)
            if ours is None or ours.sub_mchid != sub or ours.out_trade_no != otn:
                yield new(F, (REFUND, MISSING_HERE, sub, otn, orid, "", None, asked_fen, None, rstatus, tx, fee, None,
                              "refunded at the provider, no such refund here" if ours is None else
                              f"the refund here is of order {ours.out_trade_no} of sub-merchant {ours.sub_mchid}",
                              line))
                continue
            if orid in seen_refunds:
                yield new(F, (REFUND, MISSING_HERE, sub, otn, orid, "", None, asked_fen, None, rstatus, tx, fee, None,
                              "listed twice in the bill", line))
                continue
            seen_refunds.add(ours.out_refund_no)
            state, amount = ours.state, ours.amount_fen
            if state != rstatus and (state, rstatus) not in agrees and not status_agrees(state, rstatus):
                outcome = STATUS_DIFFERS
                reason = _amount_and_status_reason("refund", amount, asked_fen, state, rstatus)
            elif amount != asked_fen:
                outcome, reason = AMOUNT_DIFFERS, f"refund here {amount} fen, in the bill {asked_fen} fen"
            else:
                outcome, reason = MATCHED, ""
            yield new(F, (REFUND, outcome, sub, otn, orid, "", amount, asked_fen, state, rstatus, tx, fee, None, reason,
                          line))


def match_sharing_rows(rows: Iterable["SharingRow"], keys: DayKeys, seen: Seen | None = None) -> Iterator[Finding]:
    """One finding per profit-sharing-bill row (split receiver lines and returns), against
    ``keys`` — except a row whose out_no we know but whose receiver we do not: it is held in
    ``seen`` and judged by ``leftovers`` (paired with a line of ours nobody named)."""
    if seen is None:
        seen = Seen()
    sharing, seen_sharing, held = keys.sharing, seen.sharing, seen.held
    new, F = _new, Finding
    for row in rows:
        (kind, _, sub, tx, _, _, out_no, _, receiver, amount, status, _, line) = row
        ours = sharing.get((out_no, receiver))
        if ours is None or ours.sub_mchid != sub or ours.kind != kind:
            if _known_out_no(keys, seen, out_no, kind, sub):
                held.append(row)
                continue
            yield new(F, (kind, MISSING_HERE, sub, order_of(out_no), out_no, receiver, None, amount, None, status, tx,
                          None, None, _missing_line_reason(kind, ours, sub), line))
            continue
        ident = id(ours)
        if ident in seen_sharing:
            yield new(F, (kind, MISSING_HERE, sub, ours.out_trade_no, out_no, receiver, None, amount, None, status, tx,
                          None, None, "listed twice in the bill", line))
            continue
        seen_sharing.add(ident)
        yield _judge_line(ours, amount, status, tx, line, "")


def _missing_line_reason(kind: str, ours, sub: str) -> str:
    what = "split" if kind == SPLIT else "return"
    if ours is None:
        return f"{what} at the provider, no such {what} here"
    if ours.sub_mchid != sub:
        return f"{what} of sub-merchant {sub} at the provider; here {ours.sub_mchid}'s"
    return f"a {kind} line at the provider, a {ours.kind} line here"


def _known_out_no(keys: DayKeys, seen: Seen, out_no: str, kind: str, sub: str) -> bool:
    index = seen.sharing_by_out_no
    if index is None:
        index = seen.sharing_by_out_no = {}
        for ours in keys.sharing.values():
            index.setdefault(ours.out_no, []).append(ours)
    return any(o.kind == kind and o.sub_mchid == sub for o in index.get(out_no, ()))


def _judge_line(ours: OurSharingLine, amount: int, status: str, tx: str, line: int, receiver_note: str) -> Finding:
    state, ours_fen = ours.state, ours.amount_fen
    what = "split" if ours.kind == SPLIT else "return"
    if state != status and not status_agrees(state, status):
        outcome = STATUS_DIFFERS
        reason = _amount_and_status_reason(what, ours_fen, amount, state, status)
        if receiver_note:
            reason = f"{receiver_note}; {reason}"
    elif ours_fen != amount or receiver_note:
        outcome = SPLIT_DIFFERS
        parts = [receiver_note] if receiver_note else []
        if ours_fen != amount:
            parts.append(f"{what} here {ours_fen} fen, in the bill {amount} fen")
        reason = "; ".join(parts)
    else:
        outcome, reason = MATCHED, ""
    return _new(Finding, (ours.kind, outcome, ours.sub_mchid, ours.out_trade_no, ours.out_no, ours.receiver, ours_fen,
                          amount, state, status, tx, None, None, reason, line))


def leftovers(keys: DayKeys, seen: Seen, *, trade: bool = True, sharing: bool = True,
              sub_mchids: Container[str] | None = None) -> Iterator[Finding]:
    """After the day's bills went through ``match_*`` with ``seen``: the held sharing rows
    (paired, or MISSING_HERE), then our records no row named (MISSING_THERE). ``trade`` /
    ``sharing`` False: that bill was not read, say nothing of its records; ``sub_mchids``:
    only these sub-merchants' bills were read (None: every sub-merchant's)."""
    def wanted(record) -> bool:
        return sub_mchids is None or record.sub_mchid in sub_mchids

    if sharing:
        index = seen.sharing_by_out_no or {}
        for row in seen.held:
            candidates = sorted((o for o in index.get(row.out_no, ()) if id(o) not in seen.sharing
                                 and o.kind == row.kind and o.sub_mchid == row.sub_mchid), key=lambda o: o.receiver)
            if candidates:
                ours = candidates[0]
                seen.sharing.add(id(ours))
                yield _judge_line(ours, row.amount_fen, row.status, row.transaction_id, row.line,
                                  f"receiver here {ours.receiver}, in the bill {row.receiver}")
            else:
                yield Finding(row.kind, MISSING_HERE, row.sub_mchid, order_of(row.out_no), row.out_no, row.receiver,
                              None, row.amount_fen, None, row.status, row.transaction_id, None, None,
                              f"{'split' if row.kind == SPLIT else 'return'} line at the provider to a receiver "
                              f"this {'split' if row.kind == SPLIT else 'return'} does not have here", row.line)
        seen.held.clear()
    if trade:
        for otn, ours in keys.payments.items():
            if otn not in seen.payments and ours.state in PAID_STATES and wanted(ours):
                yield Finding(PAYMENT, MISSING_THERE, ours.sub_mchid, ours.out_trade_no, ours.out_trade_no, "",
                              ours.total_fen, None, ours.state, None, ours.transaction_id, None, ours.fee_fen,
                              "paid here, not in the provider's bill", 0)
        for orn, ours in keys.refunds.items():
            if orn not in seen.refunds and ours.state not in NEVER_SENT and wanted(ours):
                yield Finding(REFUND, MISSING_THERE, ours.sub_mchid, ours.out_trade_no, ours.out_refund_no, "",
                              ours.amount_fen, None, ours.state, None, None, None, None,
                              "refund asked here, not in the provider's bill", 0)
    if sharing:
        for ours in keys.sharing.values():
            if id(ours) not in seen.sharing and ours.state not in NEVER_SENT and wanted(ours):
                what = "split" if ours.kind == SPLIT else "return"
                yield Finding(ours.kind, MISSING_THERE, ours.sub_mchid, ours.out_trade_no, ours.out_no, ours.receiver,
                              ours.amount_fen, None, ours.state, None, None, None, None,
                              f"{what} line sent here, not in the provider's bill", 0)


def reconcile_day(trade_rows: Iterable["TradeRow"], sharing_rows: Iterable["SharingRow"] | None,
                  keys: DayKeys) -> Iterator[Finding]:
    """The whole day: every trade row, every sharing row, then the leftovers. ``sharing_rows``
    None: the profit-sharing bill was not read (its lines are not judged)."""
    seen = Seen()
    yield from match_trade_rows(trade_rows, keys, seen)
    if sharing_rows is not None:
        yield from match_sharing_rows(sharing_rows, keys, seen)
    yield from leftovers(keys, seen, sharing=sharing_rows is not None)


# --- the day's sums -----------------------------------------------------------------------------------

class SummaryCell(NamedTuple):
    sub_mchid: str
    outcome: str
    kind: str
    count: int
    ours_fen: int          # sum of our amounts (None counted as 0)
    theirs_fen: int        # sum of the bill's amounts
    fee_fen: int           # sum of the bill's fees (payments +, refunds -)


_CLASS_ORDER = {c: i for i, c in enumerate(CLASSES)}
_KIND_ORDER = {k: i for i, k in enumerate((PAYMENT, REFUND, SPLIT, RETURN))}


class DaySummary:
    """Counts and sums (fen) per (sub_mchid, class, kind), added finding by finding while
    they stream past (``add``, or ``tally`` which yields them on)."""
    __slots__ = ("day", "_cells")

    def __init__(self, day: str):
        self.day = day
        self._cells: dict[tuple[str, str, str], list[int]] = {}

    def add(self, finding: Finding) -> None:
        key = (finding[2], finding[1], finding[0])
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = [0, 0, 0, 0]
        cell[0] += 1
        ours, theirs, fee = finding[6], finding[7], finding[11]
        if ours is not None:
            cell[1] += ours
        if theirs is not None:
            cell[2] += theirs
        if fee is not None:
            cell[3] += fee

    def tally(self, findings: Iterable[Finding]) -> Iterator[Finding]:
        add = self.add
        for finding in findings:
            add(finding)
            yield finding

    def cells(self) -> list[SummaryCell]:
        """Every cell, ordered by sub-merchant, class (as in CLASSES), kind."""
        return [SummaryCell(sub, outcome, kind, *values) for (sub, outcome, kind), values in
                sorted(self._cells.items(), key=lambda kv: (kv[0][0], _CLASS_ORDER.get(kv[0][1], 99), kv[0][1],
                                                             _KIND_ORDER.get(kv[0][2], 99), kv[0][2]))]

    def totals(self) -> list[SummaryCell]:
        """The cells added up over every sub-merchant (``sub_mchid`` "ALL"), per class and kind."""
        sums: dict[tuple[str, str], list[int]] = {}
        for (_, outcome, kind), values in self._cells.items():
            into = sums.setdefault((outcome, kind), [0, 0, 0, 0])
            for i, v in enumerate(values):
                into[i] += v
        return [SummaryCell("ALL", outcome, kind, *values) for (outcome, kind), values in
                sorted(sums.items(), key=lambda kv: (_CLASS_ORDER.get(kv[0][0], 99), kv[0][0],
                                                     _KIND_ORDER.get(kv[0][1], 99), kv[0][1]))]

    def count(self, outcome: str | None = None, kind: str | None = None, sub_mchid: str | None = None) -> int:
        return sum(v[0] for (s, o, k), v in self._cells.items()
                   if (outcome is None or o == outcome) and (kind is None or k == kind)
                   and (sub_mchid is None or s == sub_mchid))

    def discrepancies(self) -> int:
        return sum(v[0] for (_, o, _), v in self._cells.items() if o != MATCHED)
