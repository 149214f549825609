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

BRAND_OP, FINAL_OP, UNFREEZE_OP, RETURN_OP = "BRAND", "FINAL", "UNFREEZE", "RETURN"
STORED, PROCESSING, DONE, REFUSED = "STORED", "PROCESSING", "DONE", "REFUSED"
PENDING, SUCCESS, CLOSED, FAILED = "PENDING", "SUCCESS", "CLOSED", "FAILED"
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
    result: str = PENDING        # PENDING, SUCCESS, CLOSED (a RETURN: SUCCESS or FAILED)
    fail_reason: str | None = None
    detail_id: str | None = None
    recovered_fen: int = 0       # a promoter's part: commission kept back to recover a clawback (M10)
    recovering: tuple = ()       # ... from which clawbacks: ((commission_id, fen), ...), reserved when stored


@dataclass(frozen=True)
class Operation:
    out_order_no: str            # a RETURN's out_return_no
    kind: str                    # BRAND, FINAL, UNFREEZE, RETURN
    parts: tuple[Part, ...]      # empty for UNFREEZE; a RETURN's one part is the brand's money coming back
    state: str = STORED
    stored_at: float = 0.0
    poll_at: float | None = None
    not_ready: bool = False      # the provider said "not settled yet" to this number
    from_out_order_no: str | None = None   # a RETURN: the split order it takes the money back from

    @property
    def unfreeze_unsplit(self) -> bool:
        return self.kind == FINAL_OP

    @property
    def in_flight(self) -> bool:
        return self.state in (STORED, PROCESSING)


@dataclass(frozen=True)
class RefundUnwind:
    """A refund that succeeded, as the splits must unwind it: its amount and the units of
    each SKU it gave back (an amount-only refund gives back no units)."""
    refund_id: str
    amount_fen: int
    units: dict = field(default_factory=dict)     # sku -> units refunded


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
    lines: tuple = ()                             # ((sku, quantity, unit_cost_fen), ...) as ordered
    max_ratio_bps: int | None = None              # the provider's (after the fit), else the dealer's
    refunds: tuple[RefundUnwind, ...] = ()        # refunds that succeeded, in order (M10)
    unwound: tuple[str, ...] = ()                 # refund ids whose commissions were unwound
    receivable_booked_fen: int = 0                # the receivable memo booked so far (dealer owes brand)

    # --- what the operations add up to -------------------------------------------------
    def succeeded(self, role: str) -> int:
        return sum(p.amount_fen for op in self.operations if op.state == DONE and op.kind != RETURN_OP
                   for p in op.parts if p.role == role and p.result == SUCCESS)

    def in_flight_fen(self, role: str) -> int:
        return sum(p.amount_fen for op in self.operations if op.in_flight and op.kind != RETURN_OP
                   for p in op.parts if p.role == role)

    def returned(self, state: str = DONE, result: str = SUCCESS) -> int:
        """The brand's money returned (DONE/SUCCESS), failing to return (DONE/FAILED) or
        being returned (``state`` STORED or PROCESSING, any result)."""
        return sum(p.amount_fen for op in self.operations if op.kind == RETURN_OP for p in op.parts
                   if (op.state == state and (state != DONE or p.result == result)))

    @property
    def returning_fen(self) -> int:
        return self.returned(STORED, "") + self.returned(PROCESSING, "")

    @property
    def split_fen(self) -> int:
        """What the provider paid out or holds for receivers (the cap counts both; a
        return does not give the room back)."""
        return sum(p.amount_fen for op in self.operations if op.kind != RETURN_OP for p in op.parts
                   if (op.in_flight or (op.state == DONE and p.result == SUCCESS)))

    @property
    def unfrozen(self) -> bool:
        return any(op.state == DONE and op.kind in (FINAL_OP, UNFREEZE_OP) for op in self.operations)

    @property
    def deadline(self) -> float:
        return self.paid_at + DEADLINE_DAYS * 86400

    # --- what is due after refunds (M10) ------------------------------------------------
    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds)

    def refunded_units(self) -> dict[str, int]:
        units: dict[str, int] = {}
        for refund in self.refunds:
            for sku, quantity in refund.units.items():
                units[sku] = units.get(sku, 0) + int(quantity)
        return units

    def brand_share_fen(self) -> int:
        """The brand's share of what the customer kept: cost × units not refunded."""
        if not self.lines:
            return self.plan.brand_share_fen
        refunded = self.refunded_units()
        return sum(cost * max(0, quantity - refunded.get(sku, 0)) for sku, quantity, cost in self.lines)

    def commissions_due(self, refunds: tuple | None = None) -> dict[str, int]:
        """Each promoter's commission on what the customer kept (after ``refunds``, all by
        default): a share on a line keeps ``floor(share × units kept / units)`` (the
        promoter loses the refunded units' part, rounded in their disfavour by < 1 fen)."""
        refunded: dict[str, int] = {}
        for refund in self.refunds if refunds is None else refunds:
            for sku, quantity in refund.units.items():
                refunded[sku] = refunded.get(sku, 0) + int(quantity)
        quantities = {sku: quantity for sku, quantity, _ in self.lines}
        due: dict[str, int] = {}
        for share in self.plan.commissions:
            quantity = quantities.get(share.sku)
            kept = share.amount_fen if not quantity else \
                share.amount_fen * max(0, quantity - refunded.get(share.sku, 0)) // quantity
            due[share.promoter_id] = due.get(share.promoter_id, 0) + kept
        return due

    def cap_fen(self) -> int:
        """What all splits together may carry now: the provider lowers the ratio cap in
        proportion with refunds and the splittable amount by what was refunded."""
        if self.max_ratio_bps is None:
            return self.plan.cap_fen
        kept = self.plan.paid_fen - self.refunded_fen
        return max(0, min(kept * self.max_ratio_bps // rules.BPS, kept - self.plan.fee_fen))

    def brand_split_target_fen(self) -> int:
        """The first split: the brand's share that fits once the commissions' room is kept."""
        return max(0, min(self.brand_share_fen(), self.cap_fen() - sum(self.commissions_due().values())))

    @property
    def settling(self) -> bool:
        return self.status == SETTLING and not self.unfrozen

    def brand_left_fen(self) -> int:
        """The first split's brand share still to ask for."""
        if BRAND_ROLE in self.given_up or not self.settling:
            return 0
        return max(0, self.brand_split_target_fen() - self.succeeded(BRAND_ROLE) - self.in_flight_fen(BRAND_ROLE))

    def commissions_left(self) -> dict[str, int]:
        """Each promoter's commission still to split (given up ones excluded)."""
        left = {}
        for promoter_id, amount in self.commissions_due().items():
            role = promoter_role(promoter_id)
            if role in self.given_up:
                continue
            rest = amount - self.succeeded(role) - self.in_flight_fen(role) - self.kept_back_fen(role)
            if rest > 0:
                left[promoter_id] = rest
        return left

    def kept_back_fen(self, role: str) -> int:
        """Commission kept back to recover clawbacks, in parts under way or paid."""
        return sum(p.recovered_fen for op in self.operations if op.kind != RETURN_OP
                   and (op.in_flight or op.state == DONE) for p in op.parts if p.role == role
                   and (op.in_flight or p.result == SUCCESS))

    def brand_net_fen(self) -> int:
        """What the brand holds from this order: split to it, less returned."""
        return self.succeeded(BRAND_ROLE) - self.returned()

    def brand_room_fen(self) -> int:
        """Brand share the final split can still carry: what the brand is owed beyond what
        it got, within the cap left once the commissions are paid."""
        if BRAND_ROLE in self.given_up:
            return 0
        owed = self.brand_share_fen() - self.brand_net_fen() - self.in_flight_fen(BRAND_ROLE)
        room = self.cap_fen() - self.split_fen - sum(self.commissions_left().values())
        return max(0, min(owed, room))

    def return_needed_fen(self) -> int:
        """The brand holds more than its share (a refund came after its split): what to
        return, net of returns under way or that failed (a failed one stays a receivable
        the brand owes the dealer, never retried by itself)."""
        if self.in_flight_fen(BRAND_ROLE):
            return 0
        holding = self.brand_net_fen() - self.returning_fen - self.returned(DONE, FAILED)
        return max(0, holding - self.brand_share_fen())

    def receivable_target_fen(self) -> int:
        """What the dealer owes the brand for this order now (negative: the brand owes the
        dealer): the brand's share less what it holds or will hold from the splits still
        to come (under way, still to ask for, returns counted as done)."""
        holds = self.brand_net_fen() - self.returning_fen + self.in_flight_fen(BRAND_ROLE) + self.brand_left_fen()
        # Holding more than its share means a return is due (asked next): nothing is owed
        # either way until a return has failed.
        return max(self.brand_share_fen() - holds, -self.returned(DONE, FAILED))

    def to_json(self) -> dict:
        return {"fitted": self.fitted, "operations": [asdict(op) for op in self.operations],
                "not_ready_count": self.not_ready_count, "not_ready_until": self.not_ready_until,
                "repairs": dict(self.repairs), "to_readd": list(self.to_readd), "given_up": list(self.given_up),
                "lines": [list(line) for line in self.lines], "max_ratio_bps": self.max_ratio_bps,
                "refunds": [asdict(r) for r in self.refunds], "unwound": list(self.unwound),
                "receivable_booked_fen": self.receivable_booked_fen}

    @classmethod
    def from_json(cls, order_id: str, paid_at: float, commission_due_at: float | None, plan: rules.SplitPlan,
                  body: dict | None, status: str = SETTLING, max_ratio_bps: int | None = None) -> Settlement:
        """``body``: the stored state ({} for a plan never worked on: its receivable memo is
        the plan's, booked with it)."""
        body = body or {}
        operations = tuple(
            Operation(out_order_no=op["out_order_no"], kind=op["kind"],
                      parts=tuple(Part(**{**part, "recovering": tuple(tuple(r) for r in part.get("recovering", ()))})
                                  for part in op.get("parts", ())), state=op["state"],
                      stored_at=float(op.get("stored_at") or 0), poll_at=op.get("poll_at"),
                      not_ready=bool(op.get("not_ready")), from_out_order_no=op.get("from_out_order_no"))
            for op in body.get("operations", ()))
        booked = body.get("receivable_booked_fen")
        return cls(order_id=order_id, paid_at=float(paid_at),
                   commission_due_at=None if commission_due_at is None else float(commission_due_at),
                   plan=plan, fitted=bool(body.get("fitted")), operations=operations,
                   not_ready_count=int(body.get("not_ready_count") or 0), not_ready_until=body.get("not_ready_until"),
                   repairs={k: int(v) for k, v in (body.get("repairs") or {}).items()},
                   to_readd=tuple(body.get("to_readd") or ()), given_up=tuple(body.get("given_up") or ()),
                   status=status, lines=tuple(tuple(line) for line in body.get("lines") or ()),
                   max_ratio_bps=body.get("max_ratio_bps", max_ratio_bps),
                   refunds=tuple(RefundUnwind(**r) for r in body.get("refunds") or ()),
                   unwound=tuple(body.get("unwound") or ()),
                   receivable_booked_fen=plan.receivable_fen if booked is None else int(booked))


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
    one, to store then send), UNWIND (``refund``: cancel or claw back the commissions of
    its units), CLOSE (unfrozen: nothing more to split), EXPIRE (day 28: stop asking),
    NOTHING (finished)."""
    kind: str
    at: float | None = None
    operation: Operation | None = None
    roles: tuple[str, ...] = ()
    refund: RefundUnwind | None = None


def next_step(state: Settlement, now: float, out_order_no: str, receivers: dict[str, tuple[str, str]],
              out_return_no: str = "") -> Step:
    """The one thing to do now (or when to come back).

    ``out_order_no`` / ``out_return_no``: the numbers a new split / return would get;
    ``receivers``: role -> (type, account) of every receiver the plan may pay."""
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
    if state.fitted or state.status != SETTLING:     # unwound on the provider's figures, not the estimate
        for refund in state.refunds:
            if refund.refund_id not in state.unwound:
                return Step("UNWIND", refund=refund)
    returning = return_operation(state, out_return_no, receivers, now)
    if returning is not None:
        return Step("REQUEST", operation=returning)
    if state.status != SETTLING:
        return Step("NOTHING")
    if state.unfrozen:
        return Step("CLOSE")
    if now >= state.deadline:
        return Step("EXPIRE")
    earliest = state.paid_at + EARLIEST_AFTER_PAYMENT_S
    if now < earliest:
        return Step("WAIT", at=earliest)
    if not state.fitted:
        return Step("FIT")
    if sum(op.kind != RETURN_OP for op in state.operations) >= MAX_OPERATIONS:
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
    # A refund may have lowered the cap below the commissions: they get what is left of it,
    # nearest promoter first (the rest is given up when the split ends, and alerted).
    cap_left = max(0, state.cap_fen() - state.split_fen)
    parts = []
    for pid, amount in commissions.items():
        amount = min(amount, cap_left)
        cap_left -= amount
        if amount:
            parts.append(Part(promoter_role(pid), *receivers[promoter_role(pid)], amount))
    room = state.brand_room_fen()
    if room:
        parts.append(Part(BRAND_ROLE, *receivers[BRAND_ROLE], room))
    if parts:
        return Step("REQUEST", operation=Operation(out_order_no, FINAL_OP, tuple(parts), stored_at=now))
    return Step("REQUEST", operation=Operation(out_order_no, UNFREEZE_OP, (), stored_at=now))


def return_operation(state: Settlement, out_return_no: str, receivers: dict, now: float) -> Operation | None:
    """A return of the brand's money from its latest split order that still holds some,
    when a refund left the brand holding more than its share (None otherwise)."""
    needed = state.return_needed_fen()
    if not needed or BRAND_ROLE not in receivers:
        return None
    for op in reversed(state.operations):
        if op.kind == RETURN_OP or op.state != DONE:
            continue
        got = sum(p.amount_fen for p in op.parts if p.role == BRAND_ROLE and p.result == SUCCESS)
        taken = sum(p.amount_fen for r in state.operations if r.kind == RETURN_OP and r.from_out_order_no ==
                    op.out_order_no and (r.in_flight or r.state == DONE) for p in r.parts)
        if got - taken > 0:
            part = Part(BRAND_ROLE, *receivers[BRAND_ROLE], min(needed, got - taken))
            return Operation(out_return_no, RETURN_OP, (part,), stored_at=now, from_out_order_no=op.out_order_no)
    return None


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


def still_processing(state: Settlement, out_order_no: str, now: float) -> Settlement:
    """The provider has no result yet: ask again a little later."""
    return _replace_op(state, replace(_op(state, out_order_no), poll_at=now + POLL_AFTER_S))


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
    paid, the promoters paid (id -> commission settled, recovered part included), the
    clawbacks recovered (id -> fen kept back) and the roles given up (role -> reason)."""
    state: Settlement
    entries: tuple[rules.LedgerEntry, ...]
    paid_promoters: dict
    given_up: dict
    recovered: dict = field(default_factory=dict)


def finished(state: Settlement, out_order_no: str, results: list[tuple[str, str, str, str | None, str | None]],
             dealer_id: str) -> Outcome:
    """The provider's results of one split operation: ``results`` = (type, account,
    result, fail_reason, detail_id) per receiver. Only SUCCESS is booked. A part of 0 fen
    (a commission wholly kept back for a clawback) was not sent and counts as paid."""
    op = _op(state, out_order_no)
    by_account = {(t, a): (result, reason, detail) for t, a, result, reason, detail in results}
    parts = []
    for part in op.parts:
        if part.amount_fen == 0:
            parts.append(replace(part, result=SUCCESS))
            continue
        result, reason, detail = by_account.get((part.type, part.account), (CLOSED, "MISSING_IN_ANSWER", None))
        parts.append(replace(part, result=result, fail_reason=reason, detail_id=detail))
    op = replace(op, parts=tuple(parts), state=DONE, poll_at=None)
    entries, paid, recovered, given_up, readd = [], {}, {}, {}, []
    repairs = dict(state.repairs)
    dealer = rules.dealer_account(dealer_id)
    for part in op.parts:
        if part.result == SUCCESS:
            if part.role == BRAND_ROLE:
                entries.append(rules.LedgerEntry(state.order_id, rules.BRAND, dealer, part.amount_fen, rules.SPLIT))
            else:
                if part.amount_fen:
                    entries.append(rules.LedgerEntry(state.order_id, part.role, dealer, part.amount_fen,
                                                     rules.COMMISSION))
                promoter_id = part.role[len(rules.PROMOTER_PREFIX):]
                paid[promoter_id] = part.amount_fen + part.recovered_fen
                if part.recovered_fen:
                    recovered[promoter_id] = part.recovered_fen
        elif op.kind == BRAND_OP and part.fail_reason == NO_RELATION \
                and repairs.get(part.account, 0) < MAX_RELATION_REPAIRS:
            repairs[part.account] = repairs.get(part.account, 0) + 1
            readd.append(part.role)
        else:
            given_up[part.role] = part.fail_reason or "CLOSED"
    state = _replace_op(state, op)
    if op.kind in (FINAL_OP, UNFREEZE_OP):
        # The provider unfroze the rest: a commission the lowered cap could not carry is lost.
        for promoter_id in state.commissions_left():
            given_up.setdefault(promoter_role(promoter_id), "ABOVE_CAP")
    state = replace(state, repairs=repairs, to_readd=tuple(dict.fromkeys(state.to_readd + tuple(readd))),
                    given_up=state.given_up + tuple(r for r in given_up if r not in state.given_up))
    return Outcome(state, tuple(entries), paid, given_up, recovered)


def return_finished(state: Settlement, out_return_no: str, result: str, fail_reason: str | None,
                    dealer_id: str) -> tuple[Settlement, tuple]:
    """A return's end: SUCCESS moves the money back to the dealer (RETURN entry); FAILED
    moves nothing (the brand keeps it and owes it to the dealer: the memo says so)."""
    op = _op(state, out_return_no)
    part = replace(op.parts[0], result=result, fail_reason=fail_reason)
    state = _replace_op(state, replace(op, parts=(part,), state=DONE, poll_at=None))
    if result != SUCCESS:
        return state, ()
    return state, (rules.LedgerEntry(state.order_id, rules.dealer_account(dealer_id), rules.BRAND, part.amount_fen,
                                     rules.RETURN),)


def unwind(state: Settlement, refund_id: str) -> tuple[Settlement, dict, dict]:
    """A refund's units take their commissions with them: the part not paid yet is
    cancelled, the part already paid is clawed back (from the promoter's later
    commissions on the same dealer's sales). Returns (state, cancelled, clawed back), each
    promoter id -> fen."""
    done = tuple(r for r in state.refunds if r.refund_id in state.unwound)
    refund = next(r for r in state.refunds if r.refund_id == refund_id)
    before, after = state.commissions_due(done), state.commissions_due(done + (refund,))
    cancelled, clawed = {}, {}
    for promoter_id, due_before in before.items():
        due_after = after.get(promoter_id, 0)
        role = promoter_role(promoter_id)
        paid = sum(p.amount_fen + p.recovered_fen for op in state.operations if op.state == DONE
                   and op.kind != RETURN_OP for p in op.parts if p.role == role and p.result == SUCCESS)
        claw = max(0, paid - due_after) - max(0, paid - due_before)
        if claw:
            clawed[promoter_id] = claw
        if due_before - due_after - claw:
            cancelled[promoter_id] = due_before - due_after - claw
    return replace(state, unwound=state.unwound + (refund_id,)), cancelled, clawed


def memo_entries(state: Settlement) -> tuple[Settlement, tuple]:
    """The receivable memo brought to what the dealer owes the brand now (any step may
    move it: a refit, a split, a refund, a return, the end)."""
    delta = state.receivable_target_fen() - state.receivable_booked_fen
    return replace(state, receivable_booked_fen=state.receivable_booked_fen + delta), \
        receivable_change(state.order_id, delta)


def with_refund(state: Settlement, refund: RefundUnwind) -> Settlement:
    """A refund that succeeded, recorded once (a redelivery changes nothing)."""
    if any(r.refund_id == refund.refund_id for r in state.refunds):
        return state
    return replace(state, refunds=state.refunds + (refund,))


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


def fit_entries(order_id: str, dealer_id: str, after: rules.SplitPlan) -> tuple:
    """The ledger entry a refit books: the provider's fee (the receivable memo follows
    from the state, see ``memo_entries``)."""
    if not after.fee_fen:
        return ()
    return (rules.LedgerEntry(order_id, rules.PROVIDER_FEE, rules.dealer_account(dealer_id), after.fee_fen, rules.FEE),)


def receivable_change(order_id: str, delta_fen: int) -> tuple:
    """The memo entry moving what the dealer owes the brand by ``delta_fen`` (either sign)."""
    if delta_fen > 0:
        return (rules.LedgerEntry(order_id, rules.CLAIM_ACCOUNT, rules.RECEIVABLE_ACCOUNT, delta_fen, rules.RECEIVABLE),)
    if delta_fen < 0:
        return (rules.LedgerEntry(order_id, rules.RECEIVABLE_ACCOUNT, rules.CLAIM_ACCOUNT, -delta_fen,
                                  rules.RECEIVABLE),)
    return ()
