"""The split plan: who gets what of one paid order (domain rules 6 and 7).

Pure rules, no I/O, no clock. Every amount is an int of fen.

The customer pays the dealer (a WeChat Pay sub-merchant). StoreLink then splits that
payment with the provider's profit-sharing API:

* the **brand's share** of a line is ``unit_cost_fen × quantity``;
* the **commission** of promoter level ``k`` on a line is
  ``floor(line paid × rate_bps[k] / 10000)`` (level 1 = the customer's direct
  promoter); levels exist only up to ``min(depth, len(promoters))``;
* the **dealer** keeps the rest and bears the provider's fee.

The provider caps what may be split from one payment, cumulatively over all splits of
the order (wechatpay-v3.md §6)::

    cap = min(floor(paid × max_ratio_bps / 10000), splittable)

where ``splittable`` is what the provider reports as still splittable before the
first split (the order amount minus its fee). Under the cap the order of priority is
commissions first (a person cannot be billed later), then the brand's share up to what
is left; the part of the brand's share that does not fit becomes a **receivable** the
dealer owes the brand, settled through monthly statements.

The brand is split to first (soon after settlement), commissions later (when earned),
so the plan **reserves** the commissions' room at the first split::

    brand_split = min(brand_share, cap − commission)       # never rounded up
    receivable  = brand_share − brand_split
    commission + brand_split ≤ cap                         # the later split always fits

Commissions above the cap (only with an invalid configuration: e.g. the dealer lowered
its max_ratio after the brand set the rates, see ``check_commission_configuration``)
are **cut**, deepest level first, and within a level line by line in the order's line
order (the first line first), until the rest fits. The promoters lose what was cut: it
is never owed to them later, and it is never silent — the plan reports it in
``cut_commission_fen`` (total) and ``cut_commissions`` (per level, promoter and line)
so the caller can alert and show it. The dealer keeps the cut money (it never left
the dealer's account).

What the dealer keeps, precisely::

    dealer_remainder = paid − fee − brand_split − commission      (≥ 0, its cash)
    dealer_profit    = dealer_remainder − receivable               (after the statement)
                     = paid − fee − brand_share − commission

The remainder *includes* the receivable: a receivable moves no cash; the money stays in
the dealer's account until a monthly statement pays it to the brand.

The ledger (double entry)
-------------------------
``LedgerEntry(order_id, debit, credit, amount_fen, cause)`` moves ``amount_fen`` **from
the credit account to the debit account**: the debit account gains, the credit account
loses. An account's balance is Σ its debits − Σ its credits, so a positive balance is
money (or a claim) the account holds. Every entry has ``amount_fen ≥ 1`` (no zero
entries) and the balances of all accounts always sum to 0.

Accounts: ``customer`` (ends at −paid: what it paid), ``dealer:<dealer_id>``, ``brand``,
``promoter:<id>``, ``provider_fee``, ``refunded`` (the customer's money given back), and
the memo pair ``receivable:dealer->brand`` / ``claim:brand<-dealer``. The memo pair
records who owes whom without moving cash: a balance of ``+R`` on the claim (and ``−R``
on the receivable) means the dealer owes the brand R fen; the opposite signs mean the
brand owes the dealer (what a refund may leave behind). The pair always nets to 0.

Entries by cause (debit ← credit):

=========== ================================ ===============================================
cause       debit ← credit                   meaning
=========== ================================ ===============================================
PAYMENT     dealer ← customer                the customer paid the dealer
FEE         provider_fee ← dealer            the provider's fee, borne by the dealer
SPLIT       brand ← dealer                   the first split: the brand's share that fits
COMMISSION  promoter:<id> ← dealer           one per promoter, summed over the lines
RECEIVABLE  claim:brand<-dealer ← receivable the brand's share that did not fit (memo)
REFUND      refunded ← dealer                money given back to the customer
RETURN      dealer ← brand (or promoter)     a split returned to the dealer (分账回退)
CLAWBACK    dealer ← promoter:<id>           a paid commission recovered later
STATEMENT   brand ← dealer, plus the memo    a monthly statement settles a receivable:
            reversed (receivable ← claim)    cash moves and the memo pair closes
=========== ================================ ===============================================

Invariant, per order, to the fen (``check_invariant``)::

    paid = brand + Σ promoters + dealer + refunded + provider_fee     (balances)

``ledger_for_plan`` gives only the *planned* entries of a paid order (PAYMENT, FEE,
SPLIT, COMMISSION, RECEIVABLE); refunds, returns, clawbacks and statements append
entries of the other causes with the same convention.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from chalicelib.domain.money import allocate
from chalicelib.errors import BusinessRuleViolated, Internal

BPS = 10_000                 # rates and max_ratio are in 1/10000 (WeChat's unit for max_ratio)
DEFAULT_MAX_RATIO_BPS = 3000  # WeChat's default and ceiling without approval: 30 %
MAX_LEVELS = 3               # "up to three levels" (rule 7)
DEFAULT_DEPTH = 1            # "no cross-level commission" is the default (rule 7)

# Ledger causes
PAYMENT = "PAYMENT"          # the customer paid the dealer
FEE = "FEE"                  # the provider's fee on the payment (the dealer bears it)
SPLIT = "SPLIT"              # planned first split: the brand's share that fits under the cap
COMMISSION = "COMMISSION"    # planned commission to one promoter (all levels and lines summed)
RECEIVABLE = "RECEIVABLE"    # memo: the brand's share that did not fit, owed by the dealer
REFUND = "REFUND"            # money given back to the customer
RETURN = "RETURN"            # a split given back to the dealer by its receiver (分账回退)
CLAWBACK = "CLAWBACK"        # a commission recovered from a promoter's later commissions
STATEMENT = "STATEMENT"      # a monthly statement settled (part of) a receivable
CAUSES = frozenset({PAYMENT, FEE, SPLIT, COMMISSION, RECEIVABLE, REFUND, RETURN, CLAWBACK, STATEMENT})

# Ledger accounts
CUSTOMER = "customer"
BRAND = "brand"
PROVIDER_FEE = "provider_fee"
REFUNDED = "refunded"
RECEIVABLE_ACCOUNT = "receivable:dealer->brand"   # the dealer's side of the memo pair
CLAIM_ACCOUNT = "claim:brand<-dealer"             # the brand's side of the memo pair
DEALER_PREFIX = "dealer:"
PROMOTER_PREFIX = "promoter:"


def dealer_account(dealer_id: str) -> str:
    return DEALER_PREFIX + dealer_id


def promoter_account(promoter_id: str) -> str:
    return PROMOTER_PREFIX + promoter_id


# --- configuration check (brand back office; 422) ---------------------------------------

class InvalidCommissionConfiguration(BusinessRuleViolated):
    code = "INVALID_COMMISSION_CONFIGURATION"
    default_message = "These commission rates cannot be paid out of this product's price."


class CommissionAbovePrice(InvalidCommissionConfiguration):
    code = "COST_AND_COMMISSION_ABOVE_PRICE"
    default_message = "The product's cost plus all levels of commission on its price would exceed the price."


class CommissionAboveSplitCap(InvalidCommissionConfiguration):
    code = "COMMISSION_ABOVE_SPLIT_CAP"
    default_message = "All levels of commission together exceed the smallest split cap of the dealers."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_rates(rates_bps) -> tuple[int, ...]:
    rates = tuple(rates_bps)
    if len(rates) > MAX_LEVELS or not all(_is_int(r) and 0 <= r <= BPS for r in rates):
        raise ValueError(f"rates_bps holds at most {MAX_LEVELS} ints from 0 to {BPS}, level 1 first")
    return rates


def check_commission_configuration(price_fen: int, cost_fen: int, rates_bps: Sequence[int],
                                   smallest_max_ratio_bps: int) -> None:
    """The brand's configuration rule (rule 7), checked when a price, a cost, a rate or a
    dealer's max_ratio changes. ``rates_bps`` are *all* configured levels (whatever the
    current depth: the depth may be raised later).

    * ``cost + price × Σ rates / 10000 ≤ price``, in exact arithmetic (so the floored
      commissions actually paid fit too): otherwise ``CommissionAbovePrice``
      (``COST_AND_COMMISSION_ABOVE_PRICE``);
    * ``Σ rates ≤ smallest_max_ratio_bps`` (the smallest max_ratio any dealer granted):
      otherwise ``CommissionAboveSplitCap`` (``COMMISSION_ABOVE_SPLIT_CAP``). This makes
      every order's commissions fit under its cap, however the order is discounted.

    Both are 422s (``BusinessRuleViolated``). Being exactly at a limit passes.
    Malformed input (negative, not an int, more than 3 levels) is a ``ValueError``.
    """
    rates = _check_rates(rates_bps)
    if not _is_int(price_fen) or not _is_int(cost_fen) or price_fen < 0 or cost_fen < 0:
        raise ValueError("price_fen and cost_fen are non-negative ints of fen")
    if not _is_int(smallest_max_ratio_bps) or not 0 <= smallest_max_ratio_bps <= BPS:
        raise ValueError(f"smallest_max_ratio_bps is an int from 0 to {BPS}")
    total_bps = sum(rates)
    if cost_fen * BPS + price_fen * total_bps > price_fen * BPS:
        raise CommissionAbovePrice(
            f"Cost {cost_fen} fen plus {total_bps} bps of commission on {price_fen} fen exceeds the price.",
            price_fen=price_fen, cost_fen=cost_fen, rates_bps=list(rates), commission_bps=total_bps)
    if total_bps > smallest_max_ratio_bps:
        raise CommissionAboveSplitCap(
            f"{total_bps} bps of commission exceed the smallest split cap of {smallest_max_ratio_bps} bps.",
            rates_bps=list(rates), commission_bps=total_bps, smallest_max_ratio_bps=smallest_max_ratio_bps)


# --- paid amount per line -------------------------------------------------------------

def paid_per_line(lines, discount_fen: int) -> list[int]:
    """What was paid for each line, in the lines' order: the order-level discount is
    shared out over the lines in proportion to their list amounts by largest remainder
    (``money.allocate``), and each line's paid amount is its list amount minus its share.
    The result sums to ``Σ list − discount`` exactly; none is negative. This is the same
    rule as ``refunds.line_paid_fen``, so splits and refunds agree on every line.

    ``lines``: list amounts in fen (ints), or order lines with ``line_total_fen``.
    """
    totals = [line if _is_int(line) else getattr(line, "line_total_fen", None) for line in lines]
    if not totals or not all(_is_int(t) and t >= 0 for t in totals):
        raise ValueError("lines are one or more non-negative list amounts of fen")
    if not _is_int(discount_fen) or not 0 <= discount_fen <= sum(totals):
        raise ValueError("discount_fen is an int between 0 and the sum of the lines")
    shares = allocate(discount_fen, totals)
    return [total - share for total, share in zip(totals, shares)]


# --- the plan -------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanLine:
    """One order line."""
    sku: str
    quantity: int
    paid_fen: int               # what the customer paid for the line (after any discount)
    unit_cost_fen: int          # the brand's cost per unit
    rates_bps: tuple[int, ...]  # commission rate per level, level 1 first (missing levels: 0)


@dataclass(frozen=True)
class CommissionShare:
    level: int                  # 1..3 (1 = the customer's direct promoter)
    promoter_id: str
    sku: str
    amount_fen: int


@dataclass(frozen=True)
class SplitPlan:
    paid_fen: int               # Σ lines' paid_fen: the order amount
    fee_fen: int                # paid − splittable as reported: the provider's fee (the dealer bears it)
    cap_fen: int                # min(floor(paid × max_ratio / 10000), splittable): all splits together
    brand_share_fen: int        # Σ cost × quantity: what the brand is owed for this order
    commissions: tuple[CommissionShare, ...]   # after any cut; level 1 first, then line order; no 0s
    commission_fen: int         # Σ commissions: what the later split(s) pay
    brand_split_fen: int        # the first split, to the brand: min(brand share, cap − commission)
    receivable_fen: int         # brand share − brand split: the dealer owes it to the brand
    dealer_remainder_fen: int   # paid − fee − brand split − commission: the dealer's cash, receivable included
    cut_commission_fen: int     # commissions that did not fit under the cap (invalid configuration only)
    cut_commissions: tuple[CommissionShare, ...] = field(default=())   # what was cut, per share; no 0s

    @property
    def dealer_profit_fen(self) -> int:
        """What the dealer keeps once the receivable is settled (negative if the
        configuration and the fee leave it no margin)."""
        return self.dealer_remainder_fen - self.receivable_fen

    def commissions_by_promoter(self) -> dict[str, int]:
        """Each promoter's commission, summed over levels and lines, nearest promoter first:
        one receiver per promoter in the commission split."""
        totals: dict[str, int] = {}
        for share in self.commissions:
            totals[share.promoter_id] = totals.get(share.promoter_id, 0) + share.amount_fen
        return totals

    def to_json(self) -> dict:
        body = asdict(self)
        body["dealer_profit_fen"] = self.dealer_profit_fen
        return body


def _check_lines(lines: Sequence[PlanLine]) -> None:
    if not lines:
        raise ValueError("a split plan needs at least one line")
    skus = set()
    for line in lines:
        if not isinstance(line.sku, str) or not line.sku or line.sku in skus:
            raise ValueError("each line names a SKU, and each SKU once")
        skus.add(line.sku)
        if not _is_int(line.quantity) or line.quantity < 1:
            raise ValueError(f"line {line.sku}: quantity is an int from 1")
        if not _is_int(line.paid_fen) or line.paid_fen < 0:
            raise ValueError(f"line {line.sku}: paid_fen is a non-negative int")
        if not _is_int(line.unit_cost_fen) or line.unit_cost_fen < 0:
            raise ValueError(f"line {line.sku}: unit_cost_fen is a non-negative int")
        _check_rates(line.rates_bps)


def _check_promoters(promoters: Sequence[str]) -> tuple[str, ...]:
    chain = tuple(promoters)
    if len(chain) > MAX_LEVELS or not all(isinstance(p, str) and p for p in chain):
        raise ValueError(f"promoters is a chain of at most {MAX_LEVELS} ids, nearest first")
    if len(set(chain)) != len(chain):
        raise ValueError("a promoter appears twice in the chain")
    return chain


def plan_split(lines: Sequence[PlanLine], promoters: Sequence[str], depth: int, max_ratio_bps: int,
               splittable_fen: int) -> SplitPlan:
    """Plan the splits of one paid order (see the module's docstring for the rule).

    ``promoters``: the customer's promoter chain, nearest first (0–3 distinct ids);
    ``depth``: how many levels earn commission (1–3, configuration; 1 by default);
    ``max_ratio_bps``: the dealer's max_ratio for the service provider (0–10000);
    ``splittable_fen``: what the provider reports as splittable before any split of this
    order (the order amount minus the provider's fee; 0 ≤ splittable ≤ paid).
    Nonsense input is a ``ValueError``.
    """
    _check_lines(lines)
    chain = _check_promoters(promoters)
    if not _is_int(depth) or not 1 <= depth <= MAX_LEVELS:
        raise ValueError(f"depth is an int from 1 to {MAX_LEVELS}")
    if not _is_int(max_ratio_bps) or not 0 <= max_ratio_bps <= BPS:
        raise ValueError(f"max_ratio_bps is an int from 0 to {BPS}")
    paid = sum(line.paid_fen for line in lines)
    if not _is_int(splittable_fen) or not 0 <= splittable_fen <= paid:
        raise ValueError("splittable_fen is an int between 0 and the amount paid")

    # The provider rounds nothing up for us: floor, then the splittable amount.
    cap = min(paid * max_ratio_bps // BPS, splittable_fen)
    brand_share = sum(line.unit_cost_fen * line.quantity for line in lines)

    # Commissions per (level, line), level 1 first, then line order.
    levels = range(1, min(depth, len(chain)) + 1)
    raw: dict[tuple[int, int], int] = {}
    for level in levels:
        for index, line in enumerate(lines):
            rate = line.rates_bps[level - 1] if level <= len(line.rates_bps) else 0
            raw[(level, index)] = line.paid_fen * rate // BPS

    # Cut what does not fit: deepest level first, then line order.
    excess = max(0, sum(raw.values()) - cap)
    cut: dict[tuple[int, int], int] = {}
    for level in reversed(levels):
        for index in range(len(lines)):
            if not excess:
                break
            taken = min(excess, raw[(level, index)])
            if taken:
                cut[(level, index)] = taken
                excess -= taken

    def shares(amounts: dict[tuple[int, int], int]) -> tuple[CommissionShare, ...]:
        return tuple(CommissionShare(level, chain[level - 1], lines[index].sku, amounts[(level, index)])
                     for level in levels for index in range(len(lines)) if amounts.get((level, index), 0) > 0)

    kept = {key: amount - cut.get(key, 0) for key, amount in raw.items()}
    commission = sum(kept.values())
    brand_split = min(brand_share, cap - commission)   # the commissions' room stays reserved
    fee = paid - splittable_fen
    return SplitPlan(
        paid_fen=paid, fee_fen=fee, cap_fen=cap, brand_share_fen=brand_share,
        commissions=shares(kept), commission_fen=commission,
        brand_split_fen=brand_split, receivable_fen=brand_share - brand_split,
        dealer_remainder_fen=paid - fee - brand_split - commission,
        cut_commission_fen=sum(cut.values()), cut_commissions=shares(cut))


# --- the ledger -----------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerEntry:
    """``amount_fen`` moves from ``credit`` to ``debit`` (the debit account gains)."""
    order_id: str
    debit: str
    credit: str
    amount_fen: int
    cause: str

    def __post_init__(self):
        if not _is_int(self.amount_fen) or self.amount_fen < 1:
            raise ValueError("a ledger entry moves at least 1 fen (no zero entries)")
        if self.cause not in CAUSES:
            raise ValueError(f"unknown ledger cause {self.cause!r}")
        if not self.debit or not self.credit or self.debit == self.credit:
            raise ValueError("a ledger entry moves money between two different accounts")


def ledger_for_plan(order_id: str, dealer_id: str, plan: SplitPlan) -> tuple[LedgerEntry, ...]:
    """The planned entries of a paid order, in this order: PAYMENT, FEE, SPLIT, one
    COMMISSION per promoter (nearest first, summed over levels and lines), RECEIVABLE
    (memo). Entries of 0 fen are left out."""
    if not order_id or not dealer_id:
        raise ValueError("order_id and dealer_id are required")
    dealer = dealer_account(dealer_id)
    planned = [(dealer, CUSTOMER, plan.paid_fen, PAYMENT),
               (PROVIDER_FEE, dealer, plan.fee_fen, FEE),
               (BRAND, dealer, plan.brand_split_fen, SPLIT)]
    planned += [(promoter_account(promoter), dealer, amount, COMMISSION)
                for promoter, amount in plan.commissions_by_promoter().items()]
    planned.append((CLAIM_ACCOUNT, RECEIVABLE_ACCOUNT, plan.receivable_fen, RECEIVABLE))
    return tuple(LedgerEntry(order_id, debit, credit, amount, cause)
                 for debit, credit, amount, cause in planned if amount)


def balances(entries: Iterable[LedgerEntry]) -> dict[str, int]:
    """Each account's balance: Σ its debits − Σ its credits (positive = it holds money)."""
    result: dict[str, int] = {}
    for entry in entries:
        result[entry.debit] = result.get(entry.debit, 0) + entry.amount_fen
        result[entry.credit] = result.get(entry.credit, 0) - entry.amount_fen
    return result


class LedgerOutOfBalance(Internal):
    code = "LEDGER_OUT_OF_BALANCE"
    default_message = "An order's ledger does not account for every fen."


def check_invariant(entries: Iterable[LedgerEntry], paid_fen: int) -> dict[str, int]:
    """Check, from the balances, that one order's ledger accounts for every fen::

        paid = brand + Σ promoters + dealer + refunded + provider_fee

    with the customer at −paid and the receivable memo pair netting to 0. Raises
    ``LedgerOutOfBalance`` (a 500: a bug, never bad input) naming what is off; returns
    the breakdown ``{"brand", "commissions", "dealer", "refunded", "fee", "receivable"}``
    (``receivable``: what the dealer still owes the brand, negative if the brand owes)."""
    entries = tuple(entries)
    if len({entry.order_id for entry in entries}) > 1:
        raise LedgerOutOfBalance("Entries of more than one order.")
    totals = balances(entries)
    dealers = [account for account in totals if account.startswith(DEALER_PREFIX)]
    known = {CUSTOMER, BRAND, PROVIDER_FEE, REFUNDED, RECEIVABLE_ACCOUNT, CLAIM_ACCOUNT}
    unknown = [a for a in totals if a not in known and not a.startswith((DEALER_PREFIX, PROMOTER_PREFIX))]
    if unknown or len(dealers) > 1:
        raise LedgerOutOfBalance("Unknown accounts, or more than one dealer.", accounts=sorted(totals))
    breakdown = {
        "brand": totals.get(BRAND, 0),
        "commissions": sum(v for a, v in totals.items() if a.startswith(PROMOTER_PREFIX)),
        "dealer": totals.get(dealers[0], 0) if dealers else 0,
        "refunded": totals.get(REFUNDED, 0),
        "fee": totals.get(PROVIDER_FEE, 0),
        "receivable": totals.get(CLAIM_ACCOUNT, 0),
    }
    problems = []
    if sum(totals.values()):
        problems.append("balances do not sum to 0")
    if totals.get(CUSTOMER, 0) != -paid_fen:
        problems.append("the customer did not pay exactly paid_fen")
    if totals.get(CLAIM_ACCOUNT, 0) + totals.get(RECEIVABLE_ACCOUNT, 0):
        problems.append("the receivable memo pair does not net to 0")
    cash = sum(v for k, v in breakdown.items() if k != "receivable")
    if cash != paid_fen:
        problems.append("brand + commissions + dealer + refunded + fee != paid")
    if problems:
        raise LedgerOutOfBalance("; ".join(problems) + ".", paid_fen=paid_fen, balances=totals)
    return breakdown
