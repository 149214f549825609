"""Promoters (分销员): a customer applies, the brand approves (or configuration does),
and the promoter gets a share scene that binds friends under them (see the scan flow).

The brand decides on applications; dealers and stores do not (commissions are paid by
the dealers' sales, but who may promote the brand is the brand's call).
"""
from __future__ import annotations

from chalicelib.domain import promoters as rules
from chalicelib.domain import scenes as scene_rules
from chalicelib.domain import tenancy
from chalicelib.domain.scenes import PROMOTER, Scene, SceneTokenTaken
from chalicelib.domain.tenancy import BRAND
from chalicelib.domain.time import rfc3339
from chalicelib.errors import NotFound

TOKEN_ATTEMPTS = 3


class NotAPromoter(NotFound):
    code = "NOT_A_PROMOTER"
    default_message = "You have not applied to be a promoter."


def promoter_view(record) -> dict:
    return {"customer_id": record.customer_id, "status": record.status, "scene": record.scene,
            "store_id": record.store_id, "applied_at": rfc3339(record.created_at),
            "decided_at": rfc3339(record.decided_at) if record.decided_at is not None else None}


def _share_scene(customer_id: str, store, now: float) -> Scene:
    return Scene(scene=scene_rules.new_scene_token(PROMOTER), kind=PROMOTER, brand_id=store.brand_id,
                 store_id=store.store_id, dealer_id=store.dealer_id, promoter_customer_id=customer_id,
                 store_card=scene_rules.store_card(store), created_at=now)


def _own_store(customer, network):
    """The store a promoter's friends are sent to: the promoter's own, if it is open."""
    store = network.get_store(customer.owning_store_id) if customer and customer.owning_store_id else None
    if store is None or store.status != "ACTIVE":
        raise rules.PromoterNeedsStore()
    return store


def become_promoter(customer_id: str, *, promoters, network, approval: str, now: float) -> tuple[dict, bool]:
    """(the promoter, made now?). Applying again while pending or approved returns the
    application as it is; after a rejection it is a new application."""
    from chalicelib.db.promoters import AlreadyApplied

    existing = promoters.get(customer_id)
    if existing is not None and not rules.may_apply(existing.status):
        return promoter_view(existing), False
    store = _own_store(promoters.customer(customer_id), network)
    status = rules.status_on_application(approval)
    for attempt in range(TOKEN_ATTEMPTS):
        scene = _share_scene(customer_id, store, now) if status == rules.APPROVED else None
        try:
            promoters.apply(customer_id, store.brand_id, store.store_id, status, scene, now)
            break
        except AlreadyApplied:
            return promoter_view(promoters.get(customer_id)), False   # a racing request applied first
        except SceneTokenTaken:
            if attempt == TOKEN_ATTEMPTS - 1:
                raise
    return promoter_view(promoters.get(customer_id)), True


def my_promoter(customer_id: str, *, promoters) -> dict:
    record = promoters.get(customer_id)
    if record is None:
        raise NotAPromoter()
    return promoter_view(record)


def share_code(customer_id: str, width: int, *, promoters, miniprogram) -> bytes:
    """The promoter's share code (PNG mini-program code opening the scan page)."""
    record = promoters.get(customer_id)
    if record is None:
        raise NotAPromoter()
    if record.status != rules.APPROVED or not record.scene:
        raise rules.PromoterNotApproved(status=record.status)
    return miniprogram.wxacode(record.scene, scene_rules.SCAN_PAGE, width)


def _visible(principal, customer_id: str, promoters):
    tenancy.require_role(principal, BRAND, action="manage promoters")
    record = promoters.get(customer_id)
    if record is None or record.brand_id != principal.tenant_id:
        raise NotFound(f"No promoter {customer_id}.", customer_id=customer_id)
    return record


def decide(principal, customer_id: str, approve: bool, *, promoters, network, now: float) -> dict:
    """The brand approves (the share scene is made then, for the promoter's store as it
    is now) or rejects a pending application."""
    record = _visible(principal, customer_id, promoters)
    if record.status != rules.PENDING:
        raise rules.PromoterNotPending(status=record.status)
    if not approve:
        promoters.decide(customer_id, record.brand_id, rules.REJECTED, None, record.store_id, now)
        return promoter_view(promoters.get(customer_id))
    store = _own_store(promoters.customer(customer_id), network)
    for attempt in range(TOKEN_ATTEMPTS):
        try:
            promoters.decide(customer_id, record.brand_id, rules.APPROVED, _share_scene(customer_id, store, now),
                             store.store_id, now)
            break
        except SceneTokenTaken:
            if attempt == TOKEN_ATTEMPTS - 1:
                raise
    return promoter_view(promoters.get(customer_id))


def list_promoters(principal, status: str, limit: int, start, *, promoters):
    tenancy.require_role(principal, BRAND, action="manage promoters")
    records, last = promoters.of_brand(principal.tenant_id, status, limit, start)
    return [promoter_view(r) for r in records], last


def promoter_detail(principal, customer_id: str, *, promoters) -> dict:
    """The promoter, and who they arrived through (their own upline, nearest first)."""
    record = _visible(principal, customer_id, promoters)
    customer = promoters.customer(customer_id)
    return {**promoter_view(record), "upline": list(customer.promoter_chain or []) if customer else []}


def friends(principal, customer_id: str, limit: int, start, *, promoters):
    """The customers bound under the promoter, with each one's chain."""
    _visible(principal, customer_id, promoters)
    records, last = promoters.friends(customer_id, limit, start)
    return [{"customer_id": r.customer_id, "chain": list(r.chain), "scene": r.scene, "rule": r.rule,
             "bound_at": rfc3339(r.bound_at), "ended_at": rfc3339(r.ended_at) if r.ended_at is not None else None}
            for r in records], last


RECENT_COMMISSIONS = 20


def my_promoter_account(customer_id: str, *, promoters, splits) -> dict:
    """The caller's own promoter account: how many friends at each level, commissions
    pending / earned / paid, and the latest entries (never who bought: only the order)."""
    record = promoters.get(customer_id)
    if record is None:
        raise NotAPromoter()
    recent = splits.commissions_of_promoter(customer_id, RECENT_COMMISSIONS)
    return {**promoter_view(record),
            "downline": {"level_1": int(record.downline_1 or 0), "level_2": int(record.downline_2 or 0),
                         "level_3": int(record.downline_3 or 0)},
            "amounts": {"pending_fen": int(record.pending_fen or 0), "earned_fen": int(record.earned_fen or 0),
                        "paid_fen": int(record.paid_fen or 0),
                        "clawback_owed_fen": int(record.clawback_owed_fen or 0)},
            # Paid commissions that refunds took back: kept back from later commissions on the
            # same dealer's sales (RECOVERED), or the dealer's loss after 90 days (WRITTEN_OFF).
            "clawbacks": [{"order_id": cb.order_id, "amount_fen": int(cb.amount_fen), "owed_fen": int(cb.owed_fen or 0),
                           "status": cb.status, "created_at": rfc3339(cb.created_at),
                           "write_off_at": rfc3339(cb.earn_due_at)}
                          for cb in splits.clawbacks_of_promoter(customer_id, RECENT_COMMISSIONS)],
            "recent": [{"order_id": c.order_id, "level": int(c.level), "amount_fen": int(c.amount_fen),
                        "status": c.status, "created_at": rfc3339(c.created_at),
                        "earn_due_at": rfc3339(c.earn_due_at),
                        "earned_at": rfc3339(c.earned_at) if c.earned_at is not None else None}
                       for c in recent]}
