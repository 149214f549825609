"""The nightly reconciliation's report of one Beijing day (issue M13), as CSV lines. Pure:
findings and sums in, lines of text out (each ending with "\n"; ``"".join(...)`` is the file).

Two sections, each with its own header line, told apart by their first column ``section``:

    section,day,sub_mchid,class,kind,order_id,key,receiver,ours_fen,ours_yuan,theirs_fen,theirs_yuan,
        diff_fen,diff_yuan,ours_status,theirs_status,transaction_id,fee_fen,fee_yuan,our_fee_fen,bill_line,reason
    discrepancy,...      one line per finding that is not MATCHED
    section,day,sub_mchid,class,kind,count,ours_fen,ours_yuan,theirs_fen,theirs_yuan,fee_fen,fee_yuan
    summary,...          one line per (sub-merchant, class, kind) with any finding, MATCHED included,
                         then the same added up over every sub-merchant (sub_mchid ALL)

Deterministic order: discrepancies by sub-merchant, class (in ``CLASSES`` order), kind
(PAYMENT, REFUND, SPLIT, RETURN), order id, key, receiver, bill line; the summary by
sub-merchant, class, kind. Money: int fen, and yuan with two decimals made by integer
arithmetic (``fen_to_yuan``); an amount one side does not have is an empty field; diff is
theirs - ours. A field holding a comma, a quote or a line break is quoted as RFC 4180 says.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from chalicelib.domain.bills import fen_to_yuan
from chalicelib.domain.reconciliation import CLASSES, MATCHED, PAYMENT, REFUND, RETURN, SPLIT, DaySummary, Finding

DISCREPANCY_HEADER = ("section", "day", "sub_mchid", "class", "kind", "order_id", "key", "receiver", "ours_fen",
                      "ours_yuan", "theirs_fen", "theirs_yuan", "diff_fen", "diff_yuan", "ours_status",
                      "theirs_status", "transaction_id", "fee_fen", "fee_yuan", "our_fee_fen", "bill_line", "reason")
SUMMARY_HEADER = ("section", "day", "sub_mchid", "class", "kind", "count", "ours_fen", "ours_yuan", "theirs_fen",
                  "theirs_yuan", "fee_fen", "fee_yuan")

_CLASS_ORDER = {c: i for i, c in enumerate(CLASSES)}
_KIND_ORDER = {k: i for i, k in enumerate((PAYMENT, REFUND, SPLIT, RETURN))}


def sort_key(f: Finding) -> tuple:
    return (f.sub_mchid, _CLASS_ORDER.get(f.outcome, len(CLASSES)), f.outcome, _KIND_ORDER.get(f.kind, 9), f.kind,
            f.order_id, f.key, f.receiver, f.line)


def _field(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _line(values) -> str:
    return ",".join(_field(v) for v in values) + "\n"


def _yuan(fen: int | None) -> str:
    return "" if fen is None else fen_to_yuan(fen)


def report_lines(day: str, findings: Iterable[Finding], summary: DaySummary) -> Iterator[str]:
    """The day's report: ``findings`` may hold MATCHED ones (left out) or only the
    discrepancies; they are sorted here, so only the discrepancies should be kept by a
    caller that streams (``[f for f in summary.tally(findings) if f.is_discrepancy]``)."""
    yield _line(DISCREPANCY_HEADER)
    for f in sorted((f for f in findings if f.outcome != MATCHED), key=sort_key):
        diff = f.diff_fen
        yield _line(("discrepancy", day, f.sub_mchid, f.outcome, f.kind, f.order_id, f.key, f.receiver,
                     f.ours_fen, _yuan(f.ours_fen), f.theirs_fen, _yuan(f.theirs_fen), diff, _yuan(diff),
                     f.ours_status, f.theirs_status, f.transaction_id, f.fee_fen, _yuan(f.fee_fen), f.our_fee_fen,
                     f.line or None, f.reason))
    yield _line(SUMMARY_HEADER)
    for cell in summary.cells() + summary.totals():
        yield _line(("summary", day, cell.sub_mchid, cell.outcome, cell.kind, cell.count, cell.ours_fen,
                     _yuan(cell.ours_fen), cell.theirs_fen, _yuan(cell.theirs_fen), cell.fee_fen,
                     _yuan(cell.fee_fen)))
