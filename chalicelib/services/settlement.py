"""The settle-splits job (M9): each due split plan is walked step by step with the
provider until it waits for something (settlement, a result, the commission date) or is
finished. The rules of what comes next are in ``domain/settlement.py``; this module only
does each step's I/O and writes its outcome on the plan's version.

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


def new_out_order_no(order_id: str, state: steps.Settlement) -> str:
    """``<order_id>-S<n>``: n counts the order's operations (≤ 50), so the number is fresh
    for every new operation and the same for everyone who reads the same version."""
    return f"{order_id}-S{len(state.operations) + 1:02d}"


def _state(record) -> steps.Settlement:
    return steps.Settlement.from_json(record.order_id, float(record.paid_at), record.commission_due_at,
                                      steps.plan_from_json(record.plan), record.settlement, status=record.status)


def settle_order(order_id: str, c: Collaborators, now: float) -> int:
    """Walk one plan until it waits or is finished; the number of steps written."""
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
            step = steps.next_step(state, now, new_out_order_no(order_id, state), receivers)
            if step.kind == "NOTHING":
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
    splittable = min(splittable, state.plan.paid_fen)
    order_id = record.order_id
    plan = steps.refit(state.plan, splittable, max_ratio)
    entries = steps.fit_entries(order_id, record.dealer_id, state.plan, plan)
    cuts = _commission_cuts(order_id, state.plan, plan, c)
    fitted = replace(state, plan=plan, fitted=True)
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
    try:
        for part in op.parts:
            # The final split cannot be retried (the provider unfreezes the rest), so its
            # receivers are added again right before it, whatever we remember.
            _add_receiver(record.sub_mchid, part, c, now, again=op.kind == steps.FINAL_OP)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    stored = steps.with_operation(state, op)
    return _save(record, stored, c, now, next_action_at=now)


def _send(record, state, step, c: Collaborators, now: float, receivers) -> bool:
    from chalicelib.wechat.pay import ProviderRefused, ProviderUnavailable, SplitNotReady, SplitReceiver

    op = step.operation
    try:
        if op.kind == steps.UNFREEZE_OP:
            c.provider.unfreeze(record.sub_mchid, record.transaction_id, op.out_order_no,
                                "分账完成，剩余资金解冻给商户")
        else:
            c.provider.request_split(
                record.sub_mchid, record.transaction_id, op.out_order_no,
                [SplitReceiver(p.type, p.account, p.amount_fen, _description(p)) for p in op.parts],
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
    try:
        result = c.provider.query_split(record.sub_mchid, record.transaction_id, op.out_order_no)
    except ProviderUnavailable:
        return _later(record, state, c, now)
    if result.state not in ("FINISHED", "SPLIT_FINISHED"):
        waiting = steps._replace_op(state, replace(op, poll_at=now + steps.POLL_AFTER_S))
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
                  paid_commissions=tuple(paid),
                  alerts=_given_up_alerts(record.order_id, outcome.given_up, op.out_order_no, c, now))
    if saved:
        log.info("split finished", extra={"fields": {
            "order_id": record.order_id, "out_order_no": op.out_order_no, "kind": op.kind,
            "booked_fen": sum(e.amount_fen for e in outcome.entries), "given_up": sorted(outcome.given_up.values())}})
    return saved


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
                   c, now, receivable_fen=state.receivable_target_fen(), unpaid_commission_fen=unpaid)
    return _finish(record, state, c, now, steps.EXPIRED, alerts=(alert,))


def _finish(record, state, c: Collaborators, now: float, status: str, alerts: tuple = ()) -> bool:
    # Numbers stored but only ever answered "not settled" were never accepted: nothing to follow.
    final = replace(state, status=status, operations=tuple(
        replace(op, state=steps.REFUSED) if op.state == steps.STORED and op.not_ready else op
        for op in state.operations))
    booked = rules.balances(_ledger(record.order_id, c)).get(rules.CLAIM_ACCOUNT, 0)
    entries = steps.closing_entries(final, booked)
    return _save(record, final, c, now, status=status, next_action_at=None, alerts=alerts,
                 entries=tuple((f"close#{e.cause}", e) for e in entries))


_STEPS = {"FIT": _fit, "REQUEST": _request, "SEND": _send, "POLL": _poll, "READD": _readd,
          "CLOSE": _close, "EXPIRE": _expire}


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


def _ledger(order_id: str, c: Collaborators) -> list:
    return [rules.LedgerEntry(order_id, r.debit, r.credit, int(r.amount_fen), r.cause) for r in c.splits.ledger(order_id)]


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


def collaborators() -> Collaborators:
    from chalicelib.config import settings
    from chalicelib.services import wiring

    s = settings()
    return Collaborators(settlement=wiring.settlement(), splits=wiring.splits(), customers=wiring.customers(),
                         orders=wiring.orders(), network=wiring.network(), alerts=wiring.alerts(),
                         provider=wiring.payments(), brand_mchid=s.brand_mchid, brand_legal_name=s.brand_legal_name)
