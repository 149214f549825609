"""A dealer's monthly statement (domain rule 6): who owes whom, order by order.

Pure rules, no I/O, no clock. Every amount is an int of fen.

What the brand's share of a paid order could not carry in the split is a **receivable**:
the dealer owes it to the brand. Refunds and returns may move it back, or past zero
(a return the provider could not take back from the brand is a brand→dealer
receivable). The ledger books every such change as a RECEIVABLE memo entry on the
pair ``claim:brand<-dealer`` / ``receivable:dealer->brand`` (``chalicelib.domain.splits``),
marked with the dealer whose statement it goes on. For the dealer, an entry is::

    + amount   debit claim:brand<-dealer, credit receivable:dealer->brand   (the dealer owes more)
    − amount   debit receivable:dealer->brand, credit claim:brand<-dealer   (owes less / the brand owes)

A **balance** is what the dealer owes the brand (negative: what the brand owes the
dealer). Settlements are bank transfers the brand records against a statement
(``DEALER_PAID_BRAND`` lowers the balance, ``BRAND_PAID_DEALER`` raises it); each has
its bank reference, once per dealer.

A statement covers one dealer and one **Beijing** calendar month ``YYYY-MM`` (id
``<dealer_id>:<YYYY-MM>``)::

    opening  = Σ signed entries before the month + Σ effects of settlements of earlier months
    closing  = opening + owed_by_dealer − owed_by_brand − settled_by_dealer + settled_by_brand

so the closing balance of a month is the opening balance of the next. An entry belongs
to the month its ``at`` falls in; a settlement to the month of the statement it was
recorded against (recording it late, in a later month, still settles that statement).
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.domain.splits import CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT
from chalicelib.domain.time import BEIJING, rfc3339
from chalicelib.errors import Conflict, ValidationFailed

DEALER_PAID_BRAND = "DEALER_PAID_BRAND"   # the dealer's transfer settles what it owes
BRAND_PAID_DEALER = "BRAND_PAID_DEALER"   # the brand's transfer settles what it owes
DIRECTIONS = (DEALER_PAID_BRAND, BRAND_PAID_DEALER)

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FIRST_YEAR = 2000
STATEMENT_ID = re.compile(r"^([A-Za-z0-9_-]{1,64}):(\d{4}-\d{2})$")
REFERENCE_MAX, NOTE_MAX = 64, 200
MAX_SETTLEMENT_FEN = 100_000_000_000      # 1 000 000 000 CNY: a typo guard, not a business limit

CSV_COLUMNS = ("kind", "order_id", "reference", "direction", "first_at", "last_at", "owed_by_dealer_fen",
               "owed_by_brand_fen", "net_fen", "balance_fen", "note")


class SettlementReferenceReused(Conflict):
    code = "SETTLEMENT_REFERENCE_REUSED"
    default_message = "This bank reference is already recorded for this dealer with other figures."


# --- months ---------------------------------------------------------------------------

def check_month(text: object, field_name: str = "month") -> str:
    """``YYYY-MM``, a real month from the year 2000 (else a 400 naming the field)."""
    match = MONTH.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) < FIRST_YEAR:
        raise ValidationFailed(f"'{field_name}' must be a month YYYY-MM from {FIRST_YEAR}.", field=field_name)
    return text


def month_of(timestamp: float) -> str:
    """The Beijing month a moment falls in."""
    return datetime.fromtimestamp(timestamp, tz=BEIJING).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[float, float]:
    """(start, end) of a Beijing month as timestamps: start ≤ at < end."""
    year, number = (int(part) for part in check_month(month).split("-"))
    start = datetime(year, number, 1, tzinfo=BEIJING)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=BEIJING)
    return start.timestamp(), end.timestamp()


def next_month(month: str) -> str:
    year, number = (int(part) for part in check_month(month).split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def check_not_future(month: str, now: float, field_name: str = "month") -> str:
    """A statement exists up to the current Beijing month of the business clock."""
    current = month_of(now)
    if check_month(month, field_name) > current:
        raise ValidationFailed(f"'{field_name}' {month} is after the current month {current}.", field=field_name)
    return month


# --- statement ids ----------------------------------------------------------------------

def statement_id(dealer_id: str, month: str) -> str:
    return f"{dealer_id}:{month}"


def parse_statement_id(text: object) -> tuple[str, str]:
    """``<dealer_id>:<YYYY-MM>`` -> (dealer_id, month); a 400 otherwise."""
    match = STATEMENT_ID.match(text) if isinstance(text, str) else None
    if not match:
        raise ValidationFailed("'statement_id' must be <dealer_id>:<YYYY-MM>.", field="statement_id")
    return match.group(1), check_month(match.group(2), "statement_id")


# --- receivable movements ------------------------------------------------------------------

@dataclass(frozen=True)
class Movement:
    """One RECEIVABLE memo entry of the ledger, as a statement reads it."""
    order_id: str
    entry_id: str
    debit: str
    credit: str
    amount_fen: int
    at: float

    @property
    def signed_fen(self) -> int:
        """What the entry adds to what the dealer owes the brand (negative: owes less)."""
        return signed_fen(self.debit, self.credit, self.amount_fen)


def signed_fen(debit: str, credit: str, amount_fen: int) -> int:
    if (debit, credit) == (CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT):
        return amount_fen
    if (debit, credit) == (RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT):
        return -amount_fen
    raise ValueError(f"{debit} <- {credit} is not a receivable memo entry")


# --- settlements -------------------------------------------------------------------------

@dataclass(frozen=True)
class Settlement:
    """A bank transfer the brand recorded against one of a dealer's statements."""
    dealer_id: str
    month: str                  # the statement it settles (YYYY-MM, Beijing)
    reference: str              # the bank transfer's reference: once per dealer
    amount_fen: int
    direction: str              # DEALER_PAID_BRAND | BRAND_PAID_DEALER
    note: str | None = None
    recorded_at: float = 0.0
    recorded_by: str = ""       # <role>:<tenant> of the token

    def __post_init__(self):
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool) or self.amount_fen < 1:
            raise ValueError("a settlement moves at least 1 fen")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown settlement direction {self.direction!r}")

    @property
    def statement_id(self) -> str:
        return statement_id(self.dealer_id, self.month)

    @property
    def effect_fen(self) -> int:
        """What it adds to what the dealer owes the brand."""
        return -self.amount_fen if self.direction == DEALER_PAID_BRAND else self.amount_fen

    def same_request(self, other: Settlement) -> bool:
        """A repeat of the same recording (nothing new), as opposed to a reused reference."""
        return ((self.dealer_id, self.month, self.reference, self.amount_fen, self.direction, self.note or None)
                == (other.dealer_id, other.month, other.reference, other.amount_fen, other.direction,
                    other.note or None))

    def to_json(self) -> dict:
        return {"statement_id": self.statement_id, "dealer_id": self.dealer_id, "month": self.month,
                "reference": self.reference, "amount_fen": self.amount_fen, "direction": self.direction,
                "note": self.note, "recorded_at": rfc3339(self.recorded_at), "recorded_by": self.recorded_by}


def check_settlement_body(body: dict) -> dict:
    """{amount_fen, direction, reference, note?} of a request, checked (400s name the field)."""
    amount = body.get("amount_fen")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_SETTLEMENT_FEN:
        raise ValidationFailed(f"'amount_fen' must be a whole number of fen from 1 to {MAX_SETTLEMENT_FEN}.",
                               field="amount_fen")
    if body.get("direction") not in DIRECTIONS:
        raise ValidationFailed(f"'direction' must be one of {', '.join(DIRECTIONS)}.", field="direction")
    reference = _text(body.get("reference"), "reference", REFERENCE_MAX, required=True)
    note = _text(body.get("note"), "note", NOTE_MAX, required=False)
    return {"amount_fen": amount, "direction": body["direction"], "reference": reference, "note": note or None}


def _text(value, name: str, max_len: int, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= max_len or not value.strip().isprintable():
        raise ValidationFailed(f"'{name}' must be 1 to {max_len} printable characters.", field=name)
    return value.strip()


# --- the statement ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StatementLine:
    """One order's receivable movements within the month."""
    order_id: str
    owed_by_dealer_fen: int     # Σ increases (the dealer owes the brand more)
    owed_by_brand_fen: int      # Σ decreases (the dealer owes less, or the brand owes the dealer)
    entries: int
    first_at: float
    last_at: float

    @property
    def net_fen(self) -> int:
        return self.owed_by_dealer_fen - self.owed_by_brand_fen

    def to_json(self) -> dict:
        return {"order_id": self.order_id, "owed_by_dealer_fen": self.owed_by_dealer_fen,
                "owed_by_brand_fen": self.owed_by_brand_fen, "net_fen": self.net_fen, "entries": self.entries,
                "first_at": rfc3339(self.first_at), "last_at": rfc3339(self.last_at)}


@dataclass(frozen=True)
class Statement:
    dealer_id: str
    month: str
    opening_balance_fen: int
    lines: tuple[StatementLine, ...] = ()
    settlements: tuple[Settlement, ...] = ()
    dealer_name: str | None = field(default=None, compare=False)

    @property
    def statement_id(self) -> str:
        return statement_id(self.dealer_id, self.month)

    @property
    def owed_by_dealer_fen(self) -> int:
        return sum(line.owed_by_dealer_fen for line in self.lines)

    @property
    def owed_by_brand_fen(self) -> int:
        return sum(line.owed_by_brand_fen for line in self.lines)

    @property
    def net_fen(self) -> int:
        """The month's receivables, net: what the month added to the balance before settlements."""
        return self.owed_by_dealer_fen - self.owed_by_brand_fen

    @property
    def settled_by_dealer_fen(self) -> int:
        return sum(s.amount_fen for s in self.settlements if s.direction == DEALER_PAID_BRAND)

    @property
    def settled_by_brand_fen(self) -> int:
        return sum(s.amount_fen for s in self.settlements if s.direction == BRAND_PAID_DEALER)

    @property
    def closing_balance_fen(self) -> int:
        return self.opening_balance_fen + self.net_fen - self.settled_by_dealer_fen + self.settled_by_brand_fen

    def to_json(self) -> dict:
        start, end = month_bounds(self.month)
        return {"statement_id": self.statement_id, "dealer_id": self.dealer_id, "dealer_name": self.dealer_name,
                "month": self.month, "period_start": rfc3339(start), "period_end": rfc3339(end),
                "opening_balance_fen": self.opening_balance_fen, "owed_by_dealer_fen": self.owed_by_dealer_fen,
                "owed_by_brand_fen": self.owed_by_brand_fen, "net_fen": self.net_fen,
                "settled_by_dealer_fen": self.settled_by_dealer_fen,
                "settled_by_brand_fen": self.settled_by_brand_fen,
                "closing_balance_fen": self.closing_balance_fen,
                "lines": [line.to_json() for line in self.lines],
                "settlements": [s.to_json() for s in self.settlements]}


def group_lines(movements: Iterable[Movement]) -> tuple[StatementLine, ...]:
    """One line per order, in the order of each order's first movement (then order id)."""
    lines: dict[str, StatementLine] = {}
    for m in movements:
        signed = m.signed_fen
        up, down = (signed, 0) if signed > 0 else (0, -signed)
        line = lines.get(m.order_id)
        if line is None:
            lines[m.order_id] = StatementLine(m.order_id, up, down, 1, m.at, m.at)
        else:
            lines[m.order_id] = StatementLine(m.order_id, line.owed_by_dealer_fen + up, line.owed_by_brand_fen + down,
                                              line.entries + 1, min(line.first_at, m.at), max(line.last_at, m.at))
    return tuple(sorted(lines.values(), key=lambda line: (line.first_at, line.order_id)))


def build_statement(dealer_id: str, month: str, movements: Iterable[Movement], settlements: Iterable[Settlement],
                    dealer_name: str | None = None) -> Statement:
    """The statement of ``month`` from the dealer's movements (any before the month's end;
    later ones are ignored) and its settlements (any month; later months' are ignored)."""
    start, end = month_bounds(month)
    opening, in_month = 0, []
    for m in movements:
        if m.at < start:
            opening += m.signed_fen
        elif m.at < end:
            in_month.append(m)
    mine = []
    for s in settlements:
        if s.dealer_id != dealer_id:
            raise ValueError("a settlement of another dealer")
        if s.month < month:
            opening += s.effect_fen
        elif s.month == month:
            mine.append(s)
    mine.sort(key=lambda s: (s.recorded_at, s.reference))
    return Statement(dealer_id, month, opening, group_lines(in_month), tuple(mine), dealer_name)


# --- CSV -------------------------------------------------------------------------------------

def csv_rows(statement: Statement) -> list[list]:
    """Header, OPENING, one ORDER row per line, one SETTLEMENT row per settlement, CLOSING.
    ``net_fen`` is each row's change of the balance (what the dealer owes the brand)."""
    start, end = month_bounds(statement.month)
    rows = [list(CSV_COLUMNS),
            ["OPENING", "", "", "", rfc3339(start), rfc3339(start), "", "", "", statement.opening_balance_fen, ""]]
    for line in statement.lines:
        rows.append(["ORDER", line.order_id, "", "", rfc3339(line.first_at), rfc3339(line.last_at),
                     line.owed_by_dealer_fen, line.owed_by_brand_fen, line.net_fen, "", ""])
    for s in statement.settlements:
        at = rfc3339(s.recorded_at)
        rows.append(["SETTLEMENT", "", s.reference, s.direction, at, at, "", "", s.effect_fen, "", s.note or ""])
    rows.append(["CLOSING", "", "", "", rfc3339(end), rfc3339(end), statement.owed_by_dealer_fen,
                 statement.owed_by_brand_fen, statement.closing_balance_fen - statement.opening_balance_fen,
                 statement.closing_balance_fen, ""])
    return rows


def to_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in csv_rows(statement):
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value) -> str:
    if isinstance(value, int):
        return str(value)       # numbers as numbers (a negative balance keeps its sign)
    text = "" if value is None else str(value)
    # Free text (references, notes) starting with = + - @ would run as a spreadsheet formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
