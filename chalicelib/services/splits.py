"""Planning a paid order's splits (M8): the PLAN_SPLIT follow-up work a payment queues.

The plan is made once per order from the order as paid, the products' costs and
commission rates, the brand's commission settings, the dealer's split cap and the
buyer's promoter chain; it is written with the receivable it decides (a ledger memo)
and the PENDING commissions in one transaction (a redelivered PLAN_SPLIT changes
nothing). The settle-splits job (``services/settlement.py``, M9) carries it out with
the provider and books each split in the ledger as the provider confirms it.

Commissions are earned when the after-sale window closes (``after_sale_days`` after
the order completes) or on day 25 after payment, whichever comes first: the
provider releases unsplit money to the dealer on day 30, after which nothing can be
split, so day 25 leaves the commission split five days to get through.
"""
from __future__ import annotations

from chalicelib.domain import splits as rules
from chalicelib.domain.money import round_half_up_div
from chalicelib.log import get_logger

EARN_BY_DAYS_AFTER_PAYMENT = 25
# Until M9 asks the provider for the order's unsplit amount, the fee is estimated at
# WeChat's usual 0.6 % (half up): the plan is made again from the provider's figure
# before anything is split.
ESTIMATED_FEE_BPS = 60


def estimated_fee_fen(paid_fen: int) -> int:
    return round_half_up_div(paid_fen * ESTIMATED_FEE_BPS, rules.BPS)


def payment_entry(order) -> rules.LedgerEntry:
    """The ledger's first entry of an order: the customer paid the dealer (written with
    the payment itself)."""
    return rules.LedgerEntry(order.order_id, rules.dealer_account(order.dealer_id), rules.CUSTOMER,
                             int(order.amounts.payable_fen), rules.PAYMENT)


def commission_chain(customer, settings, promoters) -> list[str]:
    """Who earns on this customer's purchase, nearest first: their promoter chain; and the
    customer themselves first when they are an approved promoter and the brand lets
    promoters earn on their own purchases."""
    chain = list(customer.promoter_chain or []) if customer is not None else []
    if customer is not None and settings.self_purchase_commission:
        own = promoters.get(customer.customer_id)
        if own is not None and own.status == "APPROVED":
            chain = [customer.customer_id] + [p for p in chain if p != customer.customer_id]
    return chain[:rules.MAX_LEVELS]


def plan_order_split(order_id: str, *, orders, splits, network, catalogue, commission_config, promoters,
                     ownership, now: float) -> str:
    """PLANNED, ALREADY_PLANNED, or why nothing was planned (NOT_PAID, NO_ORDER)."""
    from chalicelib.db.records import CommissionRecord, SplitPlanRecord
    from chalicelib.db.settlement import due_shard
    from chalicelib.db.splits import AlreadyPlanned, commission_shard
    from chalicelib.domain.settlement import EARLIEST_AFTER_PAYMENT_S
    from chalicelib.services.commission_config import rates_for_product, settings_for_brand

    order = orders.get(order_id)
    if order is None:
        return "NO_ORDER"
    if order.paid_at is None:
        return "NOT_PAID"
    if splits.plan(order_id) is not None:
        return "ALREADY_PLANNED"
    dealer = network.get_dealer(order.dealer_id)
    settings = settings_for_brand(dealer.brand_id, commission_config=commission_config)
    paid = rules.paid_per_line([line.line_total_fen for line in order.lines], order.amounts.discount_fen)
    lines = []
    for line, paid_fen in zip(order.lines, paid):
        product = catalogue.get_product(line.sku)
        lines.append(rules.PlanLine(sku=line.sku, quantity=int(line.quantity), paid_fen=paid_fen,
                                    unit_cost_fen=int(product.cost_fen),
                                    rates_bps=rates_for_product(settings, product)))
    chain = commission_chain(ownership.customer(order.customer_id), settings, promoters)
    max_ratio = int(getattr(dealer, "max_ratio_bps", rules.DEFAULT_MAX_RATIO_BPS))
    splittable = order.amounts.payable_fen - estimated_fee_fen(order.amounts.payable_fen)
    plan = rules.plan_split(lines, chain, settings.depth, max_ratio, splittable)

    # The ledger records what happened, not what is hoped for: the payment is in already,
    # the splits and the fee are booked when the provider confirms them (M9); what the plan
    # decides now is only who owes whom — the receivable memo.
    entries = [e for e in rules.ledger_for_plan(order_id, order.dealer_id, plan) if e.cause == rules.RECEIVABLE]
    earn_due = float(order.paid_at) + EARN_BY_DAYS_AFTER_PAYMENT * 86400
    by_level: dict[tuple[str, int], int] = {}
    for share in plan.commissions:
        by_level[(share.promoter_id, share.level)] = by_level.get((share.promoter_id, share.level), 0) \
            + share.amount_fen
    commissions = [CommissionRecord(promoter_id, f"{int(float(order.paid_at) * 1000):015d}#{order_id}#{level}",
                                    order_id=order_id, buyer_id=order.customer_id, dealer_id=order.dealer_id,
                                    level=level, amount_fen=amount, status="PENDING", created_at=now,
                                    earn_due_at=earn_due, pending_shard=commission_shard(order_id))
                   for (promoter_id, level), amount in sorted(by_level.items(), key=lambda kv: kv[0][1]) if amount]
    # Due for the settle-splits job (M9) from the first moment WeChat lets a payment be split.
    record = SplitPlanRecord(order_id, dealer_id=order.dealer_id, sub_mchid=order.sub_mchid,
                             transaction_id=order.transaction_id, status="PLANNED", plan=plan.to_json(),
                             max_ratio_bps=max_ratio, splittable_fen=splittable, created_at=now,
                             paid_at=float(order.paid_at), commission_due_at=earn_due if commissions else None,
                             settlement={"lines": [[l.sku, l.quantity, l.unit_cost_fen] for l in lines]},
                             version=0, due_shard=due_shard(order_id),
                             next_action_at=float(order.paid_at) + EARLIEST_AFTER_PAYMENT_S)
    try:
        splits.record_plan(record, entries, commissions, now)
    except AlreadyPlanned:
        return "ALREADY_PLANNED"
    log = get_logger("storelink.splits")
    log.info("split planned", extra={"fields": {
        "order_id": order_id, "paid_fen": plan.paid_fen, "brand_split_fen": plan.brand_split_fen,
        "commission_fen": plan.commission_fen, "receivable_fen": plan.receivable_fen}})
    if plan.cut_commission_fen:
        from chalicelib.services import wiring
        from chalicelib.services.alerts import raise_alert

        raise_alert("COMMISSIONS_CUT", order_id, "Commissions did not fit under the dealer's split cap and were cut.",
                    order=order, detail={"cut_commission_fen": plan.cut_commission_fen, "max_ratio_bps": max_ratio},
                    alerts=wiring.alerts(), network=network, now=now)
    return "PLANNED"


def on_plan_split(outbox_id: str, payload: dict) -> None:
    """The outbox consumer for PLAN_SPLIT."""
    from chalicelib.services import wiring

    plan_order_split(payload["order_id"], orders=wiring.orders(), splits=wiring.splits(), network=wiring.network(),
                     catalogue=wiring.catalogue(), commission_config=wiring.commission_config(),
                     promoters=wiring.promoters(), ownership=wiring.ownership(), now=wiring.now())


def on_order_completed(outbox_id: str, payload: dict) -> None:
    """ORDER_COMPLETED: the after-sale window now closes on a known day; a commission
    due later than that is earned then instead."""
    from chalicelib.services import wiring
    from chalicelib.services.commission_config import settings_for_brand

    order = wiring.orders().get(payload["order_id"])
    if order is None or order.completed_at is None:
        return
    dealer = wiring.network().get_dealer(order.dealer_id)
    settings = settings_for_brand(dealer.brand_id, commission_config=wiring.commission_config())
    window_closes = float(order.completed_at) + settings.after_sale_days * 86400
    for commission in wiring.splits().commissions_of_order(order.order_id):
        wiring.splits().bring_forward(commission, window_closes)
    wiring.settlement().bring_commissions_forward(order.order_id, window_closes)


def earn_due_commissions(*, splits, now: float, alerts=None, network=None, orders=None) -> dict:
    """The earning job: every PENDING commission whose day has come becomes EARNED; every
    clawback still owed 90 days after its refund is written off as the dealer's loss, and
    reported (an alert on its order)."""
    earned = skipped = written_off = 0
    for commission in splits.due_commissions(now):
        if splits.earn(commission, now):
            earned += 1
        else:
            skipped += 1
    for clawback in splits.due_clawbacks(now):
        owed = int(clawback.owed_fen or 0)
        if not splits.write_off(clawback, now):
            continue
        written_off += 1
        if alerts is not None:
            from chalicelib.services.alerts import raise_alert

            raise_alert("CLAWBACK_WRITTEN_OFF", f"{clawback.order_id}-{clawback.commission_id[-12:]}",
                        "A promoter's clawed-back commission was not recovered within 90 days: written off as the"
                        " dealer's loss.", order=orders.get(clawback.order_id),
                        detail={"written_off_fen": owed, "refund_id": clawback.refund_id},
                        alerts=alerts, network=network, now=now)
    return {"earned": earned, "skipped": skipped, "written_off": written_off}
