"""Settling a split plan with the provider (M9): what to do next, as pure rules.

A paid order's plan (``domain/splits.py``) is carried out through WeChat Pay's partner
profit sharing (``wechatpay-v3.md`` §6) in *operations*, each one provider request under
its own ``out_order_no``:

* ``BRAND``   — the brand's share that fits under the cap, once the payment is settled,
  with ``unfreeze_unsplit = false`` (the commissions' room stays frozen);
* ``FINAL``   — at the commission due date: the commissions, plus any brand share the
  room allows, with ``unfreeze_unsplit = true`` (the rest goes to the dealer);
* ``UNFREEZE`` — the same moment when nothing is left to split.

An operation is **stored before it is sent** (state ``STORED``): a crash after storing
sends the same number again, and the same number is the same request at WeChat, so a
crash or a second job run can never make a second split. It is ``PROCESSING`` once the
provider accepted it, and ``DONE`` once a query showed every receiver's end (``SUCCESS``
or ``CLOSED``) — the moment the ledger books what the provider confirmed. A request the
provider refused outright carried nothing (``REFUSED``); one it could not take yet
(not settled) stays ``STORED`` and is sent again later under the same number.

A ``CLOSED`` receiver of a ``BRAND`` operation with ``NO_RELATION`` is added again and the
rest is asked for under a new number (at most ``MAX_RELATION_REPAIRS`` times per
receiver); any other closed receiver is *given up*: an alert names the order, a brand
share given up becomes a receivable the dealer owes, a commission given up stays owed to
the promoter. A ``FINAL`` operation cannot be retried (the provider unfroze the rest), so
its closed receivers are given up at once.

Deadline: the provider unfreezes by itself on day 30 after payment. A plan not finished
by day ``DEADLINE_DAYS`` (28) stops asking; what the brand did not receive becomes a
receivable, and an alert names the order.

Pure: no I/O, no clock (``now`` is an argument). Every amount is an int of fen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from chalicelib.domain import splits as rules

EARLIEST_AFTER_PAYMENT_S = 60          # WeChat: no split within a minute of payment
DEADLINE_DAYS = 28                     # rule 6: not settled by day 28 → receivables (WeChat unfreezes on day 30)
POLL_AFTER_S = 10                      # WeChat's results take seconds; the job comes back at its next run
NOT_READY_FIRST_WAIT_S = 300           # not settled yet: ask again after 5 min, doubling ...
NOT_READY_LONGEST_WAIT_S = 6 * 3600    # ... up to every 6 hours (≈ 120 asks over 28 days)
MAX_RELATION_REPAIRS = 3               # NO_RELATION: re-add and retry at most 3 times per receiver
MAX_OPERATIONS = 50                    # WeChat: at most 50 split requests per order

BRAND_OP, FINAL_OP, UNFREEZE_OP = "BRAND", "FINAL", "UNFREEZE"
STORED, PROCESSING, DONE, REFUSED = "STORED", "PROCESSING", "DONE", "REFUSED"
PENDING, SUCCESS, CLOSED = "PENDING", "SUCCESS", "CLOSED"
BRAND_ROLE = "brand"
NO_RELATION = "NO_RELATION"
SETTLING, FINISHED, EXPIRED = "PLANNED", "FINISHED", "EXPIRED"


def promoter_role(promoter_id: str) -> str:
    return rules.PROMOTER_PREFIX + promoter_id


@dataclass(frozen=True)
class Part:
    """One receiver's part of one operation."""
    role: str                    # "brand" or "promoter:<id>"
    type: str                    # MERCHANT_ID or PERSONAL_OPENID
    account: str
    amount_fen: int
    result: str = PENDING        # PENDING, SUCCESS, CLOSED
    fail_reason: str | None = None
    detail_id: str | None = None


@dataclass(frozen=True)
class Operation:
    out_order_no: str
    kind: str                    # BRAND, FINAL, UNFREEZE
    parts: tuple[Part, ...]      # empty for UNFREEZE
    state: str = STORED
    stored_at: float = 0.0
    poll_at: float | None = None
    not_ready: bool = False      # the provider said "not settled yet" to this number

    @property
    def unfreeze_unsplit(self) -> bool:
        return self.kind == FINAL_OP

    @property
    def in_flight(self) -> bool:
        return self.state in (STORED, PROCESSING)


@dataclass(frozen=True)
class Settlement:
    """One order's execution so far (kept on the plan item, written on its version)."""
    order_id: str
    paid_at: float
    commission_due_at: float | None
    plan: rules.SplitPlan
    fitted: bool = False                          # the plan was refitted to the provider's own figures
    operations: tuple[Operation, ...] = ()
    not_ready_count: int = 0                      # "not settled yet" answers so far (back-off)
    not_ready_until: float | None = None
    repairs: dict = field(default_factory=dict)   # account -> NO_RELATION repairs done
    to_readd: tuple[str, ...] = ()                # roles whose receiver must be added again first
    given_up: tuple[str, ...] = ()                # roles the provider will not pay (alerted)
    status: str = SETTLING

    # --- what the operations add up to -------------------------------------------------
    def succeeded(self, role: str) -> int:
        return sum(p.amount_fen for op in self.operations if op.state == DONE
                   for p in op.parts if p.role == role and p.result == SUCCESS)

    def in_flight_fen(self, role: str) -> int:
        return sum(p.amount_fen for op in self.operations if op.in_flight for p in op.parts if p.role == role)

    @property
    def split_fen(self) -> int:
        """What the provider paid out or holds for receivers (the cap counts both)."""
        return sum(p.amount_fen for op in self.operations for p in op.parts
                   if (op.in_flight or (op.state == DONE and p.result == SUCCESS)))

    @property
    def unfrozen(self) -> bool:
        return any(op.state == DONE and op.kind in (FINAL_OP, UNFREEZE_OP) for op in self.operations)

    @property
    def deadline(self) -> float:
        return self.paid_at + DEADLINE_DAYS * 86400

    def brand_left_fen(self) -> int:
        """The first split's brand share still to ask for."""
        if BRAND_ROLE in self.given_up:
            return 0
        return max(0, self.plan.brand_split_fen - self.succeeded(BRAND_ROLE) - self.in_flight_fen(BRAND_ROLE))

    def commissions_left(self) -> dict[str, int]:
        """Each promoter's commission still to split (given up ones excluded)."""
        left = {}
        for promoter_id, amount in self.plan.commissions_by_promoter().items():
            role = promoter_role(promoter_id)
            if role in self.given_up:
                continue
            rest = amount - self.succeeded(role) - self.in_flight_fen(role)
            if rest > 0:
                left[promoter_id] = rest
        return left

    def brand_room_fen(self) -> int:
        """Brand share the final split can still carry: what the brand is owed beyond what
        it got, within the cap left once the commissions are paid."""
        if BRAND_ROLE in self.given_up:
            return 0
        owed = self.plan.brand_share_fen - self.succeeded(BRAND_ROLE) - self.in_flight_fen(BRAND_ROLE)
        room = self.plan.cap_fen - self.split_fen - sum(self.commissions_left().values())
        return max(0, min(owed, room))

    def receivable_target_fen(self) -> int:
        """Once nothing more will be split: the brand share the provider did not carry."""
        return self.plan.brand_share_fen - self.succeeded(BRAND_ROLE)

    def to_json(self) -> dict:
        return {"fitted": self.fitted, "operations": [asdict(op) for op in self.operations],
                "not_ready_count": self.not_ready_count, "not_ready_until": self.not_ready_until,
                "repairs": dict(self.repairs), "to_readd": list(self.to_readd), "given_up": list(self.given_up)}

    @classmethod
    def from_json(cls, order_id: str, paid_at: float, commission_due_at: float | None, plan: rules.SplitPlan,
                  body: dict | None, status: str = SETTLING) -> Settlement:
        body = body or {}
        operations = tuple(
            Operation(out_order_no=op["out_order_no"], kind=op["kind"],
                      parts=tuple(Part(**part) for part in op.get("parts", ())), state=op["state"],
                      stored_at=float(op.get("stored_at") or 0), poll_at=op.get("poll_at"),
                      not_ready=bool(op.get("not_ready")))
            for op in body.get("operations", ()))
        return cls(order_id=order_id, paid_at=float(paid_at),
                   commission_due_at=None if commission_due_at is None else float(commission_due_at),
                   plan=plan, fitted=bool(body.get("fitted")), operations=operations,
                   not_ready_count=int(body.get("not_ready_count") or 0), not_ready_until=body.get("not_ready_until"),
                   repairs={k: int(v) for k, v in (body.get("repairs") or {}).items()},
                   to_readd=tuple(body.get("to_readd") or ()), given_up=tuple(body.get("given_up") or ()),
                   status=status)


def plan_from_json(body: dict) -> rules.SplitPlan:
    def shares(items):
        return tuple(rules.CommissionShare(**share) for share in items or ())

    figures = {k: v for k, v in body.items() if k not in ("commissions", "cut_commissions", "dealer_profit_fen")}
    return rules.SplitPlan(**figures, commissions=shares(body.get("commissions")),
                           cut_commissions=shares(body.get("cut_commissions")))


# --- the next step -----------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """What the job does next for one plan.

    ``kind``: WAIT (until ``at``), SEND (``operation``: ask the provider under its stored
    number), POLL (``operation``), READD (``roles``: add these receivers again), FIT (ask
    the provider for the splittable amount and max ratio), REQUEST (``operation``: a new
    one, to store then send), CLOSE (unfrozen: book what is left as receivable), EXPIRE
    (day 28: stop asking), NOTHING (finished)."""
    kind: str
    at: float | None = None
    operation: Operation | None = None
    roles: tuple[str, ...] = ()


def next_step(state: Settlement, now: float, out_order_no: str, receivers: dict[str, tuple[str, str]]) -> Step:
    """The one thing to do now (or when to come back).

    ``out_order_no``: the number a new operation would get; ``receivers``: role ->
    (type, account) of every receiver the plan may pay."""
    if state.status != SETTLING:
        return Step("NOTHING")
    for op in state.operations:
        if op.state == PROCESSING:
            return Step("POLL", operation=op) if now >= (op.poll_at or 0) else Step("WAIT", at=op.poll_at)
    for op in state.operations:
        if op.state == STORED:
            if op.not_ready and now >= state.deadline:
                return Step("EXPIRE")
            if op.not_ready and state.not_ready_until is not None and now < state.not_ready_until:
                return Step("WAIT", at=state.not_ready_until)
            return Step("SEND", operation=op)
    if state.to_readd:
        return Step("READD", roles=state.to_readd)
    if state.unfrozen:
        return Step("CLOSE")
    if now >= state.deadline:
        return Step("EXPIRE")
    earliest = state.paid_at + EARLIEST_AFTER_PAYMENT_S
    if now < earliest:
        return Step("WAIT", at=earliest)
    if not state.fitted:
        return Step("FIT")
    if len(state.operations) >= MAX_OPERATIONS:
        return Step("EXPIRE")
    brand_left = state.brand_left_fen()
    if brand_left:
        account_type, account = receivers[BRAND_ROLE]
        part = Part(BRAND_ROLE, account_type, account, brand_left)
        return Step("REQUEST", operation=Operation(out_order_no, BRAND_OP, (part,), stored_at=now))
    commissions = state.commissions_left()
    due = state.commission_due_at if commissions else None
    if due is not None and now < due:
        return Step("WAIT", at=due)
    parts = [Part(promoter_role(pid), *receivers[promoter_role(pid)], amount) for pid, amount in commissions.items()]
    room = state.brand_room_fen()
    if room:
        parts.append(Part(BRAND_ROLE, *receivers[BRAND_ROLE], room))
    if parts:
        return Step("REQUEST", operation=Operation(out_order_no, FINAL_OP, tuple(parts), stored_at=now))
    return Step("REQUEST", operation=Operation(out_order_no, UNFREEZE_OP, (), stored_at=now))


def not_ready_wait_s(count: int) -> int:
    """How long to wait after the ``count``-th "not settled yet" (1-based)."""
    return min(NOT_READY_FIRST_WAIT_S * 2 ** max(0, count - 1), NOT_READY_LONGEST_WAIT_S)


# --- state changes (each returns the new state; the caller writes it on the version) ------

def with_operation(state: Settlement, op: Operation) -> Settlement:
    """A new operation, stored before it is sent."""
    if any(existing.out_order_no == op.out_order_no for existing in state.operations):
        raise ValueError(f"out_order_no {op.out_order_no} is taken")
    return replace(state, operations=state.operations + (op,))


def _replace_op(state: Settlement, op: Operation) -> Settlement:
    return replace(state, operations=tuple(op if o.out_order_no == op.out_order_no else o for o in state.operations))


def accepted(state: Settlement, out_order_no: str, now: float) -> Settlement:
    op = _op(state, out_order_no)
    return _replace_op(replace(state, not_ready_until=None),
                       replace(op, state=PROCESSING, not_ready=False, poll_at=now + POLL_AFTER_S))


def not_ready(state: Settlement, out_order_no: str, now: float) -> Settlement:
    count = state.not_ready_count + 1
    op = replace(_op(state, out_order_no), not_ready=True)
    return _replace_op(replace(state, not_ready_count=count, not_ready_until=now + not_ready_wait_s(count)), op)


def refused(state: Settlement, out_order_no: str) -> tuple[Settlement, tuple[str, ...]]:
    """The provider refused the amounts outright: nothing was split; the roles of that
    operation are given up (alerted by the caller). Returns (state, roles given up)."""
    op = _op(state, out_order_no)
    roles = tuple(p.role for p in op.parts if p.role not in state.given_up)
    state = _replace_op(state, replace(op, state=REFUSED))
    return replace(state, given_up=state.given_up + roles), roles


@dataclass(frozen=True)
class Outcome:
    """What a finished operation means: the state, the ledger entries of what the provider
    paid, the promoters paid (id -> fen), and the roles given up (role -> reason)."""
    state: Settlement
    entries: tuple[rules.LedgerEntry, ...]
    paid_promoters: dict
    given_up: dict


def finished(state: Settlement, out_order_no: str, results: list[tuple[str, str, str, str | None, str | None]],
             dealer_id: str) -> Outcome:
    """The provider's results of one operation: ``results`` = (type, account, result,
    fail_reason, detail_id) per receiver. Only SUCCESS is booked."""
    op = _op(state, out_order_no)
    by_account = {(t, a): (result, reason, detail) for t, a, result, reason, detail in results}
    parts = []
    for part in op.parts:
        result, reason, detail = by_account.get((part.type, part.account), (CLOSED, "MISSING_IN_ANSWER", None))
        parts.append(replace(part, result=result, fail_reason=reason, detail_id=detail))
    op = replace(op, parts=tuple(parts), state=DONE, poll_at=None)
    entries, paid, given_up, readd = [], {}, {}, []
    repairs = dict(state.repairs)
    dealer = rules.dealer_account(dealer_id)
    for part in op.parts:
        if part.result == SUCCESS:
            if part.role == BRAND_ROLE:
                entries.append(rules.LedgerEntry(state.order_id, rules.BRAND, dealer, part.amount_fen, rules.SPLIT))
            else:
                entries.append(rules.LedgerEntry(state.order_id, part.role, dealer, part.amount_fen, rules.COMMISSION))
                paid[part.role[len(rules.PROMOTER_PREFIX):]] = part.amount_fen
        elif op.kind == BRAND_OP and part.fail_reason == NO_RELATION \
                and repairs.get(part.account, 0) < MAX_RELATION_REPAIRS:
            repairs[part.account] = repairs.get(part.account, 0) + 1
            readd.append(part.role)
        else:
            given_up[part.role] = part.fail_reason or "CLOSED"
    state = _replace_op(state, op)
    state = replace(state, repairs=repairs, to_readd=tuple(dict.fromkeys(state.to_readd + tuple(readd))),
                    given_up=state.given_up + tuple(r for r in given_up if r not in state.given_up))
    return Outcome(state, tuple(entries), paid, given_up)


def readded(state: Settlement, roles: tuple[str, ...]) -> Settlement:
    return replace(state, to_readd=tuple(r for r in state.to_readd if r not in roles))


def _op(state: Settlement, out_order_no: str) -> Operation:
    for op in state.operations:
        if op.out_order_no == out_order_no:
            return op
    raise ValueError(f"no operation {out_order_no} on order {state.order_id}")


# --- fitting the plan to the provider's figures ---------------------------------------------

def refit(plan: rules.SplitPlan, splittable_fen: int, max_ratio_bps: int) -> rules.SplitPlan:
    """The plan again with the provider's own splittable amount (paid − its real fee) and
    max ratio, asked before the first split. Commissions stay as planned when they fit
    under the new cap (always, under a valid configuration); otherwise they are cut by the
    plan's rule (deepest level first, then line order). The brand's first split is then
    ``min(brand share, cap − commission)`` again, and the receivable what is left."""
    if not rules._is_int(splittable_fen) or not 0 <= splittable_fen <= plan.paid_fen:
        raise ValueError("splittable_fen is an int between 0 and the amount paid")
    if not rules._is_int(max_ratio_bps) or not 0 <= max_ratio_bps <= rules.BPS:
        raise ValueError(f"max_ratio_bps is an int from 0 to {rules.BPS}")
    cap = min(plan.paid_fen * max_ratio_bps // rules.BPS, splittable_fen)
    excess = max(0, plan.commission_fen - cap)
    kept, cut = list(plan.commissions), list(plan.cut_commissions)
    for level in sorted({s.level for s in plan.commissions}, reverse=True):
        for index, share in enumerate(kept):
            if not excess:
                break
            if share.level != level:
                continue
            taken = min(excess, share.amount_fen)
            kept[index] = replace(share, amount_fen=share.amount_fen - taken)
            cut = _add_cut(cut, replace(share, amount_fen=taken))
            excess -= taken
    commissions = tuple(s for s in kept if s.amount_fen)
    commission = sum(s.amount_fen for s in commissions)
    brand_split = min(plan.brand_share_fen, cap - commission)
    fee = plan.paid_fen - splittable_fen
    return replace(plan, fee_fen=fee, cap_fen=cap, commissions=commissions, commission_fen=commission,
                   brand_split_fen=brand_split, receivable_fen=plan.brand_share_fen - brand_split,
                   dealer_remainder_fen=plan.paid_fen - fee - brand_split - commission,
                   cut_commission_fen=plan.cut_commission_fen + (plan.commission_fen - commission),
                   cut_commissions=tuple(cut))


def _add_cut(cut: list, share: rules.CommissionShare) -> list:
    """One entry per share (level, promoter, SKU) in the cut list, as ``plan_split`` makes it."""
    for index, existing in enumerate(cut):
        if (existing.level, existing.promoter_id, existing.sku) == (share.level, share.promoter_id, share.sku):
            cut[index] = replace(existing, amount_fen=existing.amount_fen + share.amount_fen)
            return cut
    return cut + [share]


def fit_entries(order_id: str, dealer_id: str, before: rules.SplitPlan, after: rules.SplitPlan) -> tuple:
    """The ledger entries a refit books: the provider's fee, and the change of the
    receivable memo (booked at planning time from the estimate)."""
    entries = []
    if after.fee_fen:
        entries.append(rules.LedgerEntry(order_id, rules.PROVIDER_FEE, rules.dealer_account(dealer_id),
                                         after.fee_fen, rules.FEE))
    entries += receivable_change(order_id, after.receivable_fen - before.receivable_fen)
    return tuple(entries)


def receivable_change(order_id: str, delta_fen: int) -> tuple:
    """The memo entry moving what the dealer owes the brand by ``delta_fen`` (either sign)."""
    if delta_fen > 0:
        return (rules.LedgerEntry(order_id, rules.CLAIM_ACCOUNT, rules.RECEIVABLE_ACCOUNT, delta_fen, rules.RECEIVABLE),)
    if delta_fen < 0:
        return (rules.LedgerEntry(order_id, rules.RECEIVABLE_ACCOUNT, rules.CLAIM_ACCOUNT, -delta_fen,
                                  rules.RECEIVABLE),)
    return ()


def closing_entries(state: Settlement, booked_receivable_fen: int) -> tuple:
    """Nothing more will be split (unfrozen, or the deadline passed): the brand share the
    provider did not carry is what the dealer owes the brand; book the difference from
    the memo booked so far."""
    return receivable_change(state.order_id, state.receivable_target_fen() - booked_receivable_fen)
