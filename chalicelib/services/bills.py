"""Fetching one of WeChat Pay's bills for a Beijing day (M12): the input of the nightly
reconciliation (M13), which books what the bills say against the ledger.

``fetch_bill(bill_date, kind, sub_mchid=None)`` answers a ``FetchedBill`` with one outcome:

- ``READY``: downloaded, its sha1 verified, read through once and its summary checked;
  ``rows()`` reads it again (a streaming pass: ``TradeRow`` or ``SharingRow``, each with its
  amounts in int fen; a payment's ``fee_fen`` is the provider's fee, see ``fees()``);
  ``totals`` is the checked summary. ``close()`` (or ``with``) deletes the temporary file.
- ``EMPTY``: WeChat Pay has no bill for that day (``NO_STATEMENT_EXIST``): nothing happened, final.
- ``NOT_YET``: before 10:00 Beijing on the day after (on the business clock; WeChat is not
  asked), or WeChat still making it (``STATEMENT_CREATING``); ``retry_at`` says when to ask
  again: 10:00 D+1, or ~30 minutes later, never before 10:00 D+1.
- ``REFUSED``: the file does not match its hash, or does not read as a bill (``reason``
  ``HASH_MISMATCH`` / ``MALFORMED``, ``detail`` says where): nothing from it is returned,
  and an alert ``BILL_REFUSED`` is written once per (date, kind[, sub-merchant]).

An outage (timeout, 5xx, an answer that does not verify) raises ``ProviderUnavailable``;
another refusal (PARAM_ERROR, NO_AUTH, ...) ``ProviderRefused``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterator, NamedTuple

from chalicelib.domain import bills as rules
from chalicelib.log import get_logger

# Bill kinds: the trade bill's three types, and the profit-sharing bill
ALL = "ALL"                    # payments and refunds
SUCCESS = "SUCCESS"            # payments only
REFUND = "REFUND"              # refunds only
PROFITSHARING = "PROFITSHARING"
KINDS = (ALL, SUCCESS, REFUND, PROFITSHARING)

# Outcomes
READY = "READY"
EMPTY = "EMPTY"
NOT_YET = "NOT_YET"
REFUSED = "REFUSED"

ALERT_KIND = "BILL_REFUSED"
HASH_MISMATCH, MALFORMED = "HASH_MISMATCH", "MALFORMED"
TOO_EARLY, STATEMENT_CREATING = "TOO_EARLY", "STATEMENT_CREATING"


class FeeLine(NamedTuple):
    """The provider's fee on one trade-bill row: taken on a payment, given back (negative) on a refund."""
    kind: str                  # rules.PAYMENT or rules.REFUND
    out_trade_no: str
    transaction_id: str
    out_refund_no: str         # "" on a payment
    fee_fen: int


@dataclass
class FetchedBill:
    outcome: str                          # READY, EMPTY, NOT_YET or REFUSED
    bill_date: date
    kind: str                             # ALL, SUCCESS, REFUND or PROFITSHARING
    sub_mchid: str | None = None          # None: every sub-merchant's in one bill
    hash_value: str | None = None         # READY: the verified sha1 of the file
    totals: rules.BillTotals | None = None   # READY: the bill's summary, checked against its rows
    retry_at: int | None = None           # NOT_YET: when to ask again (Unix seconds)
    reason: str | None = None             # NOT_YET: TOO_EARLY / STATEMENT_CREATING; REFUSED: HASH_MISMATCH / MALFORMED
    detail: dict = field(default_factory=dict)
    _file: object = field(default=None, repr=False)

    def rows(self) -> Iterator:
        """READY only: the bill's rows, one streaming pass over the verified file (again on every call)."""
        if self.outcome != READY:
            raise ValueError(f"a bill that is {self.outcome} has no rows")
        return _parse(self.kind, self._file)

    def raw_lines(self) -> Iterator[str]:
        """READY only: the verified file's text, line by line (to archive it, or to show a person)."""
        if self.outcome != READY:
            raise ValueError(f"a bill that is {self.outcome} has no file")
        return self._file.lines()

    def fees(self) -> Iterator[FeeLine]:
        """READY trade bills: the provider's fee per payment (and what each refund gives back)."""
        if self.kind == PROFITSHARING:
            raise ValueError("a profit-sharing bill has no fees")
        for row in self.rows():
            yield FeeLine(row.kind, row.out_trade_no, row.transaction_id, row.out_refund_no, row.fee_fen)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fetch_bill(bill_date: date | str, kind: str, sub_mchid: str | None = None, *, bills=None, alerts=None,
               now: float | None = None, brand_id: str | None = None) -> FetchedBill:
    """One bill of one Beijing day (see the module). ``bills`` (the WeChat Pay bill client),
    ``alerts`` and ``now`` (the business clock) default to the process's own; ``brand_id`` is
    whose back office sees a BILL_REFUSED alert."""
    from chalicelib.wechat.bills import APPLIED, CREATING, NO_STATEMENT, BillHashMismatch

    day = _day(bill_date)
    if kind not in KINDS:
        raise ValueError(f"kind is one of {', '.join(KINDS)}, not {kind!r}")
    if bills is None or alerts is None or now is None:
        from chalicelib.services import wiring

        bills = wiring.bills() if bills is None else bills
        alerts = wiring.alerts() if alerts is None else alerts
        now = wiring.now() if now is None else now
    log = get_logger("storelink.bills")
    fetched = FetchedBill("", day, kind, sub_mchid)

    def answer(outcome: str, **fields) -> FetchedBill:
        for name, value in fields.items():
            setattr(fetched, name, value)
        fetched.outcome = outcome
        (log.warning if outcome == REFUSED else log.info)("fetch-bill", extra={"fields": {
            "bill_date": day.isoformat(), "kind": kind, "sub_mchid": sub_mchid, "outcome": outcome,
            "reason": fetched.reason, "rows": fetched.totals.rows if fetched.totals else None}})
        return fetched

    if now < rules.available_at(day):
        return answer(NOT_YET, reason=TOO_EARLY, retry_at=rules.retry_at(day, now))
    application = (bills.apply_profitsharing_bill(day, sub_mchid) if kind == PROFITSHARING
                   else bills.apply_trade_bill(day, kind, sub_mchid))
    if application.status == NO_STATEMENT:
        return answer(EMPTY)
    if application.status == CREATING:
        return answer(NOT_YET, reason=STATEMENT_CREATING, retry_at=rules.retry_at(day, now))
    if application.status != APPLIED:
        raise ValueError(f"unexpected answer to a bill application: {application.status}")
    try:
        file = bills.download(application)
    except BillHashMismatch as mismatch:
        return answer(REFUSED, **_refuse(fetched, HASH_MISMATCH, mismatch.message, mismatch.details, alerts, now,
                                         brand_id))
    # Read it through once before anyone acts on a row: a bill that does not add up is refused whole.
    try:
        totals = rules.check(_parse(kind, file))
    except (rules.BillMalformed, UnicodeDecodeError) as bad:
        file.close()
        message = bad.message if isinstance(bad, rules.BillMalformed) else f"not UTF-8 text: {bad.reason}"
        details = bad.details if isinstance(bad, rules.BillMalformed) else {}
        return answer(REFUSED, **_refuse(fetched, MALFORMED, message, details, alerts, now, brand_id))
    except BaseException:
        file.close()
        raise
    return answer(READY, hash_value=file.hash_value, totals=totals, _file=file)


def _parse(kind: str, file):
    return (rules.parse_sharing_bill if kind == PROFITSHARING else rules.parse_trade_bill)(file.lines())


def _refuse(fetched: FetchedBill, reason: str, message: str, details: dict, alerts, now: float,
            brand_id: str | None) -> dict:
    """The REFUSED answer's fields, after raising the alert (once per bill)."""
    from chalicelib.services.alerts import raise_alert

    day = fetched.bill_date.isoformat()
    subject = "-".join(part for part in (day, fetched.kind, fetched.sub_mchid) if part)
    detail = {"bill_date": day, "bill_kind": fetched.kind, "reason": reason, "problem": message,
              **({"sub_mchid": fetched.sub_mchid} if fetched.sub_mchid else {}),
              **{k: v for k, v in details.items() if isinstance(v, (str, int)) and k != "reason"}}
    what = "does not match its hash" if reason == HASH_MISMATCH else "does not read as a bill"
    raise_alert(ALERT_KIND, subject, f"WeChat Pay's {fetched.kind} bill of {day} {what} ({message}): it was refused "
                f"and nothing in it was used; fetch it again, or ask WeChat Pay.", detail=detail, alerts=alerts,
                network=None, now=now, brand_id=brand_id)
    return {"reason": reason, "detail": detail}


def _day(bill_date: date | str) -> date:
    if isinstance(bill_date, date) and not hasattr(bill_date, "hour"):
        return bill_date
    try:
        day = date.fromisoformat(bill_date)
    except (TypeError, ValueError):
        raise ValueError(f"bill_date must be a date or YYYY-MM-DD, not {bill_date!r}") from None
    if len(bill_date) != 10:
        raise ValueError(f"bill_date must be YYYY-MM-DD, not {bill_date!r}")
    return day
