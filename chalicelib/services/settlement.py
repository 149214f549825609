"""The settle-splits job (M9): each due split plan is walked step by step with the
provider until it waits for something (settlement, a result, the commission date) or is
finished. The rules of what comes next are in ``domain/settlement.py``; this module only
does each step's I/O and writes its outcome on the plan's version.

Refunds (M10) are unwound in the same walk: a refund is recorded on the plan right
before it is sent to WeChat Pay (so the brand's share can come back through a return
first and the dealer's account can pay it) and again when it succeeds (UNWIND_SPLIT,
idempotent). Unwinding before success is deliberate: a refund the provider closes is
retried until it succeeds, and one that ends ABNORMAL is raised for a person, who
finishes it by hand — the customer's money is owed either way, so the splits must not
keep carrying it.

Safe to run twice at once and to re-run: every step is written with a condition on the
plan's version (a run that loses stops working on that plan), a new operation's
``out_order_no`` is stored before it is sent, and sending a stored number again is the
same request at WeChat. A crash anywhere leaves the plan due (``next_action_at`` is the
step's time), so the next run picks it up where it stopped.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.domain import settlement as steps
from chalicelib.domain import splits as rules
from chalicelib.log import get_logger

MAX_STEPS_PER_PLAN = 16          # a plan needs ≤ 6 steps a run; the rest is a bug, not a loop
CLAWBACK_WRITE_OFF_DAYS = 90     # rule 7: what a promoter still owes after 90 days is the dealer's loss
RETRY_UNAVAILABLE_S = 120        # WeChat did not answer: come back at a later run
BRAND_RELATION = "BRAND"
PROMOTER_RELATION = "DISTRIBUTOR"

log = get_logger("storelink.settlement")


@dataclass
class Collaborators:
    """What a run needs: repositories, the provider and the brand's receiver account."""
    settlement: object      # db.settlement.SettlementRepository
    splits: object          # db.splits.SplitRepository (ledger, commissions, earning)
    customers: object       # the promoters' openids
    orders: object
    network: object
    alerts: object
    provider: object        # wechat.pay.ProfitSharingProvider
    refunds: object         # db.refunds.RefundRepository (what a refund gave back)
    brand_mchid: str
    brand_legal_name: str | None


def settle_due_splits(c: Collaborators, now: float) -> dict:
    """The job: every plan whose next step is due."""
    counts = {"plans": 0, "steps": 0, "failed": 0}
    for order_id in c.settlement.due(now):
        counts["plans"] += 1
        try:
            counts["steps"] += settle_order(order_id, c, now)
        except Exception:  # noqa: BLE001 - one plan's bug must not stop the others; it stays due
            counts["failed"] += 1
            log.exception("settling an order failed", extra={"fields": {"order_id": order_id}})
    log.info("settle-splits", extra={"fields": counts})
    return counts


def new_out_order_no(order_id: str, state: steps.Settlement, kind: str = "S") -> str:
    """``<order_id>-S<n>`` for a split, ``<order_id>-R<n>`` for a return: n counts the
    order's operations of that kind, so the number is fresh for every new operation and
    the same for everyone who reads the same version."""
    count = sum((op.kind == steps.RETURN_OP) == (kind == "R") for op in state.operations)
    return f"{order_id}-{kind}{count + 1:02d}"


def _state(record) -> steps.Settlement:
    return steps.Settlement.from_json(record.order_id, float(record.paid_at), record.commission_due_at,
                                      steps.plan_from_json(record.plan), record.settlement, status=record.status,
                                      max_ratio_bps=int(record.max_ratio_bps))


def _refund_work(step) -> bool:
    return step.kind == "UNWIND" or (step.operation is not None and step.operation.kind == steps.RETURN_OP)


def settle_order(order_id: str, c: Collaborators, now: float, only=None) -> int:
    """Walk one plan until it waits or is finished (or, with ``only``, until a step it does
    not accept); the number of steps written."""
    receivers: dict | None = None
    written = 0
    for _ in range(MAX_STEPS_PER_PLAN):
        record = c.settlement.load(order_id)
        if record is None or record.paid_at is None:
            return written
        state = _state(record)
        if receivers is None:
            receivers = _receivers(state, c)
        missing = [role for role in _roles(state) if role not in receivers and role not in state.given_up]
        if missing:
            moved = _give_up(record, state, {role: "NO_RECEIVER_ACCOUNT" for role in missing}, c, now)
        else:
            step = steps.next_step(state, now, new_out_order_no(order_id, state), receivers,
                                   new_out_order_no(order_id, state, "R"))
            if only is not None and not only(step):
                return written
            if step.kind == "NOTHING":
                if record.next_action_at is not None:       # finished, and its refunds unwound
                    _save(record, state, c, now, next_action_at=None)
                return written
            if step.kind == "WAIT":
                if record.next_action_at is None or float(record.next_action_at) != step.at:
                    _save(record, state, c, now, next_action_at=step.at)
                return written
            moved = _STEPS[step.kind](record, state, step, c, now, receivers)
        if not moved:
            return written         # another run moved this plan (or the provider is away): stop here
        written += 1
    log.error("a plan took too many steps in one run", extra={"fields": {"order_id": order_id}})
    return written


def _roles(state: steps.Settlement) -> list[str]:
    return [steps.BRAND_ROLE] + [steps.promoter_role(p) for p in state.plan.commissions_by_promoter()]


def _receivers(state: steps.Settlement, c: Collaborators) -> dict:
    """role -> (type, account) for every receiver the plan may pay (a promoter without a
    mini-program openid has none, and neither has the brand without its legal name)."""
    from chalicelib.wechat.pay import MERCHANT_ID, PERSONAL_OPENID

    found = {}
    if c.brand_legal_name:
        found[steps.BRAND_ROLE] = (MERCHANT_ID, c.brand_mchid)
    for promoter_id in state.plan.commissions_by_promoter():
        customer = c.customers.get(promoter_id)
        if customer is not None and customer.openid:
            found[steps.promoter_role(promoter_id)] = (PERSONAL_OPENID, customer.openid)
    return found


# --- the steps ------------------------------------------------------------------------------

def _fit(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """Ask the provider what it will let us split (paid − its fee, and the max ratio the
    dealer granted), plan again from that, and book the fee."""
    from chalicelib.wechat.pay import ProviderUnavailable

    try:
        splittable = c.provider.unsplit_amount(record.transaction_id)
        max_ratio = c.provider.max_ratio(record.sub_mchid)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    # A refund before the fit already took its share of the unsplit amount: the fee is what
    # is missing beyond it (M13 corrects the fee from the bill, to the fen).
    splittable = min(splittable + state.refunded_fen, state.plan.paid_fen)
    order_id = record.order_id
    plan = steps.refit(state.plan, splittable, max_ratio)
    entries = steps.fit_entries(order_id, record.dealer_id, plan)
    cuts = _commission_cuts(order_id, state.plan, plan, c)
    fitted = replace(state, plan=plan, fitted=True, max_ratio_bps=max_ratio)
    alerts = ()
    if plan.cut_commission_fen > state.plan.cut_commission_fen:
        alerts = (_alert("COMMISSIONS_CUT", order_id, "Commissions did not fit under the provider's split cap and were"
                         " cut.", c, now, cut_commission_fen=plan.cut_commission_fen, max_ratio_bps=max_ratio),)
    saved = _save(record, fitted, c, now, next_action_at=now, plan=plan.to_json(), alerts=alerts,
                  entries=tuple((f"fit#{e.cause}#{n}", e) for n, e in enumerate(entries)), cut_commissions=cuts)
    if saved:
        log.info("split plan fitted to the provider", extra={"fields": {
            "order_id": order_id, "fee_fen": plan.fee_fen, "cap_fen": plan.cap_fen, "max_ratio_bps": max_ratio,
            "brand_split_fen": plan.brand_split_fen, "receivable_fen": plan.receivable_fen}})
    return saved


def _commission_cuts(order_id: str, before: rules.SplitPlan, after: rules.SplitPlan, c: Collaborators) -> tuple:
    """(commission record, fen cut) for each level a refit cut (rare: a cap lowered at the
    provider below the configured commissions)."""
    def per_level(plan):
        totals: dict[tuple[str, int], int] = {}
        for share in plan.commissions:
            totals[(share.promoter_id, share.level)] = totals.get((share.promoter_id, share.level), 0) + share.amount_fen
        return totals

    old, new = per_level(before), per_level(after)
    if old == new:
        return ()
    cuts = []
    for commission in c.splits.commissions_of_order(order_id):
        key = (commission.promoter_id, int(commission.level))
        cut = old.get(key, 0) - new.get(key, 0)
        if cut > 0:
            cuts.append((commission, cut))
    return tuple(cuts)


def _request(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """A new operation: its receivers added first, then its number stored (not sent yet:
    the SEND step does that, also after a crash right here)."""
    from chalicelib.wechat.pay import ProviderUnavailable

    op = step.operation
    if op.kind == steps.FINAL_OP:
        for promoter_id in {p.role[len(rules.PROMOTER_PREFIX):] for p in op.parts if p.role != steps.BRAND_ROLE}:
            _earn_commissions(record.order_id, promoter_id, c, now)
        op = replace(op, parts=tuple(_recovering(part, record.dealer_id, c) for part in op.parts))
        # What each promoter's part keeps back is taken off their clawbacks as the operation is
        # stored (so two final splits never keep back the same clawback), and given back if
        # the provider closes the part.
        reservations = tuple((clawback, fen) for part in op.parts for clawback, fen in _clawbacks_of(part, c))
    try:
        for part in op.parts:
            # The final split cannot be retried (the provider unfreezes the rest), so its
            # receivers are added again right before it, whatever we remember.
            if op.kind != steps.RETURN_OP and part.amount_fen:
                _add_receiver(record.sub_mchid, part, c, now, again=op.kind == steps.FINAL_OP)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    stored = steps.with_operation(state, op)
    if op.kind == steps.FINAL_OP:
        return _save(record, stored, c, now, next_action_at=now, reservations=reservations)
    return _save(record, stored, c, now, next_action_at=now)


def _send(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable, SplitNotReady, SplitReceiver

    op = step.operation
    if op.kind == steps.RETURN_OP:
        return _send_return(record, state, op, c, now)
    sent = [p for p in op.parts if p.amount_fen]
    try:
        if op.kind == steps.UNFREEZE_OP or not sent:
            # Nothing to pay out (a final split whose commissions all went to clawbacks): unfreeze.
            c.provider.unfreeze(record.sub_mchid, record.transaction_id, op.out_order_no,
                                "分账完成，剩余资金解冻给商户")
        else:
            c.provider.request_split(
                record.sub_mchid, record.transaction_id, op.out_order_no,
                [SplitReceiver(p.type, p.account, p.amount_fen, _description(p)) for p in sent],
                unfreeze_unsplit=op.unfreeze_unsplit)
    except SplitNotReady:
        # Not settled yet: the same number is asked again later (it carried nothing).
        waiting = steps.not_ready(state, op.out_order_no, now)
        _save(record, waiting, c, now, next_action_at=waiting.not_ready_until)
        return False
    except ProviderUnavailable:
        return _later(record, state, c, now)
    except ProviderRefused as refusal:
        given_up, roles = steps.refused(state, op.out_order_no)
        alerts = _given_up_alerts(record.order_id, {r: refusal.provider_code for r in roles}, op.out_order_no, c, now,
                                  provider_message=str(refusal.details.get("provider_message", "")))
        return _save(record, given_up, c, now, next_action_at=now, alerts=alerts)
    return _save(record, steps.accepted(state, op.out_order_no, now), c, now, next_action_at=now + steps.POLL_AFTER_S)


def _poll(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    from chalicelib.wechat.pay import ProviderUnavailable

    op = step.operation
    if op.kind == steps.RETURN_OP:
        return _poll_return(record, state, op, c, now)
    try:
        result = c.provider.query_split(record.sub_mchid, record.transaction_id, op.out_order_no)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    if result.state not in ("FINISHED", "SPLIT_FINISHED"):
        waiting = steps.still_processing(state, op.out_order_no, now)
        _save(record, waiting, c, now, next_action_at=now + steps.POLL_AFTER_S)
        return False
    outcome = steps.finished(state, op.out_order_no,
                             [(r.type, r.account, r.result.replace("RECEIVER_", ""), r.fail_reason, r.detail_id)
                              for r in result.receivers], record.dealer_id)
    paid = []
    for promoter_id in outcome.paid_promoters:
        for commission in c.splits.commissions_of_order(record.order_id):   # keys from the index ...
            if commission.promoter_id == promoter_id:
                current = c.splits.commission(commission.promoter_id, commission.commission_id)  # ... state read
                if current.status == "PENDING":
                    c.splits.earn(current, now)
                    current = c.splits.commission(commission.promoter_id, commission.commission_id)
                if current.status == "EARNED":
                    paid.append(current)
    saved = _save(record, outcome.state, c, now, next_action_at=now,
                  entries=tuple((f"split#{op.out_order_no}#{n}", e) for n, e in enumerate(outcome.entries)),
                  paid_commissions=tuple(paid), **_clawbacks_settled(outcome.state, op.out_order_no, record.dealer_id, c),
                  alerts=_given_up_alerts(record.order_id, outcome.given_up, op.out_order_no, c, now))
    if saved:
        log.info("split finished", extra={"fields": {
            "order_id": record.order_id, "out_order_no": op.out_order_no, "kind": op.kind,
            "booked_fen": sum(e.amount_fen for e in outcome.entries), "given_up": sorted(outcome.given_up.values())}})
    return saved


def _send_return(record, state, op, c: Collaborators, now: float) -> bool:
    """Ask the brand's account to give back what a refund took from the dealer (分账回退,
    synchronous at WeChat; the number was stored first, so asking again is the same return)."""
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable

    part = op.parts[0]
    try:
        result = c.provider.create_return(record.sub_mchid, op.from_out_order_no, op.out_order_no, part.account,
                                          part.amount_fen, "订单退款，品牌货款回退")
    except ProviderUnavailable:
        return _later(record, state, c, now)
    except ProviderRefused as refusal:        # not opted in, nothing left to return, ...: the brand owes it
        return _return_ended(record, state, op, "FAILED", refusal.provider_code, c, now)
    if result.result in ("SUCCESS", "FAILED"):
        return _return_ended(record, state, op, result.result, result.fail_reason, c, now)
    return _save(record, steps.accepted(state, op.out_order_no, now), c, now, next_action_at=now + steps.POLL_AFTER_S)


def _poll_return(record, state, op, c: Collaborators, now: float) -> bool:
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable

    try:
        result = c.provider.query_return(record.sub_mchid, op.from_out_order_no, op.out_order_no)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    except ProviderRefused as refusal:
        return _return_ended(record, state, op, "FAILED", refusal.provider_code, c, now)
    if result.result not in ("SUCCESS", "FAILED"):
        waiting = steps.still_processing(state, op.out_order_no, now)
        _save(record, waiting, c, now, next_action_at=now + steps.POLL_AFTER_S)
        return False
    return _return_ended(record, state, op, result.result, result.fail_reason, c, now)


def _return_ended(record, state, op, result: str, reason: str | None, c: Collaborators, now: float) -> bool:
    ended, entries = steps.return_finished(state, op.out_order_no, result, reason, record.dealer_id)
    alerts = ()
    if result != "SUCCESS":
        alerts = (_alert("RETURN_FAILED", f"{record.order_id}-{op.out_order_no[-3:]}",
                         "The brand's share of a refund could not be returned through WeChat Pay: the brand owes it"
                         " to the dealer on the statement.", c, now, order_id=record.order_id, reason=reason,
                         out_return_no=op.out_order_no, amount_fen=op.parts[0].amount_fen),)
    return _save(record, ended, c, now, next_action_at=now, alerts=alerts,
                 entries=tuple((f"return#{op.out_order_no}", e) for e in entries))


def _recovering(part: steps.Part, dealer_id: str, c: Collaborators) -> steps.Part:
    """A promoter's part of the final split less what they owe for clawbacks on this
    dealer's sales, oldest first (kept back by the dealer)."""
    if part.role == steps.BRAND_ROLE:
        return part
    left, taken = part.amount_fen, []
    for clawback in c.settlement.open_clawbacks(part.role[len(rules.PROMOTER_PREFIX):], dealer_id):
        fen = min(left, int(clawback.owed_fen))
        if fen:
            taken.append((clawback.commission_id, fen))
            left -= fen
    kept = part.amount_fen - left
    return replace(part, amount_fen=left, recovered_fen=kept, recovering=tuple(taken)) if kept else part


def _clawbacks_of(part: steps.Part, c: Collaborators) -> list:
    """(clawback record, fen) for what a part keeps back."""
    promoter_id = part.role[len(rules.PROMOTER_PREFIX):]
    return [(c.splits.commission(promoter_id, commission_id), fen) for commission_id, fen in part.recovering]


def _clawbacks_settled(state, out_order_no: str, dealer_id: str, c: Collaborators) -> dict:
    """A final split's end for the clawbacks its parts kept back: recovered where the part
    was paid (a CLAWBACK entry on the clawed-back order), released where it was closed."""
    op = next(o for o in state.operations if o.out_order_no == out_order_no)
    recoveries, releases = [], []
    for part in op.parts:
        for clawback, fen in _clawbacks_of(part, c):
            if part.result == steps.SUCCESS:
                recoveries.append((clawback, fen, rules.LedgerEntry(
                    clawback.order_id, rules.dealer_account(dealer_id), part.role, fen, rules.CLAWBACK)))
            else:
                releases.append((clawback, fen))
    return {"recoveries": tuple(recoveries), "releases": tuple(releases)}


def _readd(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """The provider no longer knows a receiver (NO_RELATION): add it again, then the rest is
    asked for under a new number."""
    from chalicelib.wechat.pay import ProviderUnavailable

    try:
        for role in step.roles:
            account_type, account = receivers[role]
            _add_receiver(record.sub_mchid, steps.Part(role, account_type, account, 1), c, now, again=True)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    return _save(record, steps.readded(state, step.roles), c, now, next_action_at=now)


def _close(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """The provider unfroze the rest: what the brand did not get is owed by the dealer."""
    return _finish(record, state, c, now, steps.FINISHED)


def _expire(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """Day 28 and not finished (typically never settled): stop asking; the brand share not
    carried becomes a receivable, and a person is told."""
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable

    for op in state.operations:
        if op.state == steps.STORED and op.kind != steps.UNFREEZE_OP:
            # Its last answer was "not settled", but a run may have sent it again and died
            # before recording: ask once whether the provider has it before writing it off.
            try:
                c.provider.query_split(record.sub_mchid, record.transaction_id, op.out_order_no)
            except ProviderUnavailable:
                return _later(record, state, c, now)
            except ProviderRefused:
                continue            # RESOURCE_NOT_EXISTS: it never got there
            return _save(record, steps.accepted(state, op.out_order_no, now), c, now, next_action_at=now)
    unpaid = sum(state.commissions_left().values())
    alert = _alert("SPLIT_DEADLINE_MISSED", record.order_id,
                   "The payment could not be split by day 28 (not settled?): the brand's share is now a receivable"
                   " on the dealer's statement" + (", and commissions are still owed to promoters." if unpaid else "."),
                   c, now, receivable_fen=_ended(state, steps.EXPIRED).receivable_target_fen(),
                   unpaid_commission_fen=unpaid)
    return _finish(record, state, c, now, steps.EXPIRED, alerts=(alert,))


def _ended(state, status: str):
    # Numbers stored but only ever answered "not settled" were never accepted: nothing to follow.
    return replace(state, status=status, operations=tuple(
        replace(op, state=steps.REFUSED) if op.state == steps.STORED and op.not_ready else op
        for op in state.operations))


def _finish(record, state, c: Collaborators, now: float, status: str, alerts: tuple = ()) -> bool:
    return _save(record, _ended(state, status), c, now, status=status, next_action_at=None, alerts=alerts)


def _unwind(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    """A refund's commissions: cancelled where not paid yet, clawed back where paid (the
    brand's share follows by itself: the memo, a return if the brand holds too much)."""
    from chalicelib.db.records import CommissionRecord
    from chalicelib.db.splits import commission_shard

    unwound, cancelled, clawed = steps.unwind(state, step.refund.refund_id)
    cancels = []
    for promoter_id, fen in cancelled.items():
        for commission in sorted(_commissions(record.order_id, promoter_id, c), key=lambda cm: -int(cm.level)):
            if fen and commission.status in ("PENDING", "EARNED") and int(commission.amount_fen) > 0:
                taken = min(fen, int(commission.amount_fen))
                cancels.append((commission, taken))
                fen -= taken
    clawbacks = tuple(
        CommissionRecord(promoter_id, f"clawback#{int(now * 1000):015d}#{record.order_id}#{step.refund.refund_id}",
                         order_id=record.order_id, buyer_id="", dealer_id=record.dealer_id, level=0, amount_fen=fen,
                         owed_fen=fen, refund_id=step.refund.refund_id, status="OWED", created_at=now,
                         earn_due_at=now + CLAWBACK_WRITE_OFF_DAYS * 86400,
                         pending_shard="W" + commission_shard(record.order_id)[1:])
        for promoter_id, fen in clawed.items())
    saved = _save(record, unwound, c, now, next_action_at=now, cancelled=tuple(cancels), clawbacks=clawbacks)
    if saved:
        log.info("refund unwound", extra={"fields": {
            "order_id": record.order_id, "refund_id": step.refund.refund_id,
            "cancelled_fen": sum(cancelled.values()), "clawed_back_fen": sum(clawed.values())}})
    return saved


def _commissions(order_id: str, promoter_id: str, c: Collaborators) -> list:
    """The promoter's commission records on this order, read consistently (the index gives
    the keys)."""
    return [c.splits.commission(cm.promoter_id, cm.commission_id) for cm in c.splits.commissions_of_order(order_id)
            if cm.promoter_id == promoter_id]


_STEPS = {"FIT": _fit, "REQUEST": _request, "SEND": _send, "POLL": _poll, "READD": _readd,
          "CLOSE": _close, "EXPIRE": _expire, "UNWIND": _unwind}


# --- helpers --------------------------------------------------------------------------------

def _later(record, state, c: Collaborators, now: float) -> bool:
    """The provider did not answer: nothing changed; the plan is due again in a while."""
    _save(record, state, c, now, next_action_at=now + RETRY_UNAVAILABLE_S)
    return False


def _give_up(record, state, reasons: dict, c: Collaborators, now: float) -> bool:
    given_up = replace(state, given_up=state.given_up + tuple(r for r in reasons if r not in state.given_up))
    return _save(record, given_up, c, now, next_action_at=now,
                 alerts=_given_up_alerts(record.order_id, reasons, None, c, now))


def _save(record, state, c: Collaborators, now: float, *, next_action_at, alerts: tuple = (), **changes) -> bool:
    """A step's outcome on the plan's version; its alerts are written in the same
    transaction (a crash cannot lose one) and logged once it holds."""
    from chalicelib.services.alerts import log_alert

    state, memo = steps.memo_entries(state)
    if memo:
        changes["entries"] = tuple(changes.get("entries", ())) + tuple(
            (f"memo#{int(record.version) + 1}", entry) for entry in memo)
    saved = c.settlement.save(record, settlement=state.to_json(), now=now, next_action_at=next_action_at,
                              alerts=alerts, **changes)
    if saved:
        for alert in alerts:
            log_alert(alert)
    return saved


def _description(part: steps.Part) -> str:
    return "品牌货款分账" if part.role == steps.BRAND_ROLE else "推广佣金"


def _receiver_key(part: steps.Part) -> str:
    return f"{part.type}#{part.account}"


def _add_receiver(sub_mchid: str, part: steps.Part, c: Collaborators, now: float, again: bool) -> None:
    """Add the receiver with the sub-merchant unless we know it was added (``again``: add
    anyway; adding is idempotent at WeChat)."""
    from chalicelib.wechat.pay import MERCHANT_ID, Receiver

    key = _receiver_key(part)
    if not again and c.settlement.receiver_added(sub_mchid, key):
        return
    if part.type == MERCHANT_ID:
        receiver = Receiver(MERCHANT_ID, part.account, c.brand_legal_name, BRAND_RELATION)
    else:
        receiver = Receiver(part.type, part.account, None, PROMOTER_RELATION)
    c.provider.add_receiver(sub_mchid, receiver)
    c.settlement.mark_receiver_added(sub_mchid, key, now)


def _earn_commissions(order_id: str, promoter_id: str, c: Collaborators, now: float) -> None:
    """The final split pays commissions: any still PENDING is earned now (the earning job
    may not have come by yet)."""
    for commission in c.splits.commissions_of_order(order_id):
        if commission.promoter_id == promoter_id and commission.status == "PENDING":
            c.splits.earn(commission, now)


def _given_up_alerts(order_id: str, reasons: dict, out_order_no: str | None, c: Collaborators, now: float,
                     **detail) -> tuple:
    alerts = []
    for role, reason in reasons.items():
        who = "the brand's share" if role == steps.BRAND_ROLE else "a promoter's commission"
        consequence = ("it is now owed by the dealer as a receivable" if role == steps.BRAND_ROLE
                       else "the commission is still owed to the promoter")
        subject = f"{order_id}-{role.split(':')[0]}-{role.split(':')[-1][-8:]}" if role != steps.BRAND_ROLE \
            else f"{order_id}-brand"
        alerts.append(_alert("SPLIT_FAILED", subject, f"WeChat Pay did not pay {who} ({reason}): {consequence}.", c,
                             now, order_id=order_id, reason=reason, out_order_no=out_order_no,
                             receiver=role.split(":")[0], **detail))
    return tuple(alerts)


def _alert(kind: str, subject: str, message: str, c: Collaborators, now: float, order_id: str | None = None,
           **detail):
    """The alert record a step writes with its outcome."""
    from chalicelib.services.alerts import alert_record

    order = c.orders.get(order_id or subject)
    return alert_record(kind, subject, message, order=order, detail=detail, network=c.network, now=now)


def record_refund(order_id: str, refund_id: str, c: Collaborators, now: float, attempts: int = 5) -> str:
    """UNWIND_SPLIT (a refund succeeded): the plan learns of it once, and the job unwinds it
    at once — even on a plan finished long ago (a return, a clawback, the memo)."""
    from chalicelib.errors import Internal

    refund = c.refunds.get(refund_id)
    if refund is None or refund.order_id != order_id:
        return "NO_REFUND"
    units = {}
    for line in refund.lines or []:
        units[line["sku"]] = units.get(line["sku"], 0) + int(line["quantity"])
    for _ in range(attempts):
        record = c.settlement.load(order_id)
        if record is None or record.paid_at is None:
            order = c.orders.get(order_id)
            if order is None or order.paid_at is None:
                # A payment that reached a closed order is refunded without ever being
                # applied (late payment): no plan will come, nothing was split.
                return "NEVER_PLANNED"
            # The payment's PLAN_SPLIT has not been consumed yet: fail, so this is retried.
            raise Internal("The order's split plan is not made yet: the refund is unwound later.", order_id=order_id)
        state = _state(record)
        if not units and state.refunded_fen + int(refund.amount_fen) >= state.plan.paid_fen:
            # A full refund by amount gives back every unit not refunded yet.
            done = state.refunded_units()
            units = {sku: quantity - done.get(sku, 0) for sku, quantity, _ in state.lines
                     if quantity > done.get(sku, 0)}
        recorded = steps.with_refund(state, steps.RefundUnwind(refund_id, int(refund.amount_fen), units))
        if recorded is state:
            return "ALREADY_RECORDED"
        if _save(record, recorded, c, now, next_action_at=now):
            return "RECORDED"
    raise Internal("The split plan kept changing: the refund is unwound later.", order_id=order_id)


def unwind_before_refund(order_id: str, refund_id: str, c: Collaborators, now: float) -> None:
    """Right before a refund is sent to WeChat Pay: the brand gives back its share of the
    refunded units first (a return is synchronous), so the dealer's account can pay the
    refund. Best effort, never in the refund's way: whatever fails here is done by the
    job once the refund succeeded (UNWIND_SPLIT)."""
    try:
        record_refund(order_id, refund_id, c, now)
        settle_order(order_id, c, now, only=_refund_work)
    except Exception as exc:  # noqa: BLE001 - the customer's refund is never held back
        log.warning("unwinding before the refund was left to the job", extra={"fields": {
            "order_id": order_id, "refund_id": refund_id, "error": type(exc).__name__,
            "code": getattr(exc, "code", None)}})


def on_unwind_split(outbox_id: str, payload: dict) -> None:
    """The outbox consumer for UNWIND_SPLIT."""
    from chalicelib.services import wiring

    record_refund(payload["order_id"], payload["refund_id"], collaborators(), wiring.now())


def collaborators() -> Collaborators:
    from chalicelib.config import settings
    from chalicelib.services import wiring

    s = settings()
    return Collaborators(settlement=wiring.settlement(), splits=wiring.splits(), customers=wiring.customers(),
                         orders=wiring.orders(), network=wiring.network(), alerts=wiring.alerts(),
                         provider=wiring.payments(), refunds=wiring.refunds(), brand_mchid=s.brand_mchid, brand_legal_name=s.brand_legal_name)
