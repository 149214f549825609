"""POST /v1/scans: a QR scene becomes first-party data, an owner and a welcome.

The common path is two DynamoDB round trips: one BatchGetItem (the scene, with a copy
of its store's card; the customer; today's points entry for this scene) and one
TransactWriteItems (the scan, its points, any change of owner or promoter, and the
funnel events M7 counts). A promoter's share code that binds costs one read more
(the promoter's own upline, for the chain).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from chalicelib.domain import attribution as rules
from chalicelib.domain import events
from chalicelib.domain.scenes import PROMOTER, UNIT, welcome_for
from chalicelib.domain.unit_codes import unit_report
from chalicelib.errors import NotFound

SCAN_POINTS = 10
AREA_CELL_RESOLUTION = 5   # ~250 km² hexagons: a district, never a track
MINI_PROGRAM, OA_SUBSCRIBE, OA_SCAN = "MINI_PROGRAM", "OA_SUBSCRIBE", "OA_SCAN"   # where a code was scanned
ATTEMPTS = 4               # a purchase or another scan may move the customer between read and write


class SceneNotFound(NotFound):
    code = "SCENE_NOT_FOUND"
    default_message = "This code is not (or no longer) in use."


@dataclass(frozen=True)
class ScanPolicy:
    """The brand's configuration of the binding rules."""
    rebind_on_scan: bool = False
    promoter_rule: str = rules.PROMOTER_FIRST_TOUCH


@dataclass
class ScanWrite:
    """Everything one scan writes, in one transaction."""
    scan: object                              # the ScanRecord
    customer_id: str
    now: float
    points: tuple[str, int] | None = None     # (ledger entry key, points)
    owner: dict | None = None                 # {expected_store, to_store, to_dealer, basis, reason, staff_id}
    last_scan_store: str | None = None        # the store the customer last scanned (for the store group)
    unit: dict | None = None                  # a unit code's scan: {expected_count, area}
    promoter: dict | None = None              # {expected_promoter, promoter_id, chain, rule, scene}
    # the customer's coarse location from the scan's coordinates (newest wins), and whether
    # they join the route-traffic queue (nobody owns them after this scan)
    location: object | None = None            # a domain.locations.CoarseLocation
    queue_for_routing: bool = False
    events: list[tuple[str, dict]] = field(default_factory=list)


def _area(lat, lng) -> str | None:
    if lat is None:
        return None
    import h3

    return h3.latlng_to_cell(lat, lng, AREA_CELL_RESOLUTION)


def _public_card(card: dict | None) -> dict | None:
    if card is None:
        return None
    return {k: card[k] for k in ("store_id", "name", "city", "address", "services", "opening_hours")}


def _scene_store_card(scene_record, scans) -> dict | None:
    """The scene's copy of its store card; scenes made before the copy existed read the store."""
    if scene_record.store_card:
        card = scene_record.store_card
    elif scene_record.store_id:
        from chalicelib.domain.scenes import store_card

        store = scans.store(scene_record.store_id)
        card = store_card(store) if store is not None else None
    else:
        card = None
    if card is not None and card.get("status") != "ACTIVE":
        return None   # a deactivated store binds nobody and is not shown
    return card


def _owner(customer) -> rules.Owner | None:
    if not customer.owning_store_id:
        return None
    return rules.Owner(customer.owning_store_id, customer.owner_basis or rules.SCANNED)


def _plan(customer, scene_record, card, scan_id, area, points_key, policy: ScanPolicy, scans,
          now: float, channel: str) -> tuple[ScanWrite, rules.Decision, rules.PromoterDecision | None]:
    """Decide (pure rules) what this scan changes, given the customer as last read."""
    from chalicelib.db.records import ScanRecord

    customer_id = customer.customer_id
    decision = (rules.on_scan(_owner(customer), card["store_id"], policy.rebind_on_scan) if card
                else rules.Decision(None, None, "NO_STORE"))
    campaign = (scene_record.campaign or {}).get("name")
    write = ScanWrite(scan=None, customer_id=customer_id, now=now,
                      points=(points_key, SCAN_POINTS) if points_key else None,
                      last_scan_store=card["store_id"] if card else None)
    if decision.bind_to:
        write.owner = {"expected_store": customer.owning_store_id, "to_store": decision.bind_to,
                       "to_dealer": card["dealer_id"], "basis": decision.basis, "reason": decision.reason,
                       "staff_id": scene_record.staff_id}
        write.events.append((events.CUSTOMER_BOUND, {
            "customer_id": customer_id, "from_store_id": customer.owning_store_id, "to_store_id": decision.bind_to,
            "to_dealer_id": card["dealer_id"], "basis": decision.basis, "reason": decision.reason,
            "cause": f"scan#{scan_id}", "staff_id": scene_record.staff_id, "campaign": campaign,
            "scene": scene_record.scene, "scene_kind": scene_record.kind, "at": now}))

    if scene_record.kind == UNIT:
        write.unit = {"expected_count": int(scene_record.unit_scan_count or 0), "area": area}

    promoter_decision = None
    promoter_id = scene_record.promoter_customer_id if scene_record.kind == PROMOTER else None
    if promoter_id:
        is_new = rules.is_new_customer(float(customer.first_seen_at), customer.owner_basis, now)
        # The upline is read only when the rule would bind at all (a cheap first look).
        looks_bindable = rules.should_bind_promoter(customer.promoter_id, promoter_id, is_new, customer_id,
                                                    policy.promoter_rule)
        upline = scans.promoter_upline(promoter_id) if looks_bindable else []
        promoter_decision = rules.decide_promoter(customer_id, customer.promoter_id, promoter_id, upline, is_new,
                                                  policy.promoter_rule)
        if promoter_decision.bind:
            chain = list(promoter_decision.chain)
            write.promoter = {"expected_promoter": customer.promoter_id, "promoter_id": promoter_id,
                              "chain": chain, "previous_chain": list(customer.promoter_chain or []),
                              "rule": policy.promoter_rule, "scene": scene_record.scene}
            write.events.append((events.PROMOTER_BOUND, {
                "customer_id": customer_id, "promoter_id": promoter_id, "chain": chain,
                "previous_promoter_id": customer.promoter_id, "rule": policy.promoter_rule,
                "scene": scene_record.scene, "at": now}))

    if area is not None:
        from chalicelib.domain.locations import SCAN, district, newer

        # Only over an older location (a newer one wins), as the customer was last read.
        if newer(now, customer.located_at):
            write.location = district(area, source=SCAN, at=now)
            write.queue_for_routing = not (decision.bind_to or customer.owning_store_id)

    outcome = decision.reason
    if promoter_decision is not None and decision.bind_to is None:
        outcome = promoter_decision.reason   # what a promoter code did matters more than "a visit"
    write.scan = ScanRecord(scan_id=scan_id, customer_id=customer_id, scene=scene_record.scene,
                            kind=scene_record.kind, store_id=scene_record.store_id, staff_id=scene_record.staff_id,
                            sku=scene_record.sku, campaign_name=campaign, city=card["city"] if card else None,
                            area_cell=area, outcome=outcome, channel=channel,
                            points_awarded=SCAN_POINTS if points_key else 0, at=now)
    write.events.insert(0, (events.SCAN_RECORDED, {
        "scan_id": scan_id, "customer_id": customer_id, "scene": scene_record.scene, "kind": scene_record.kind,
        "store_id": card["store_id"] if card else None, "dealer_id": card["dealer_id"] if card else None,
        "staff_id": scene_record.staff_id, "campaign": campaign, "sku": scene_record.sku, "outcome": outcome,
        "points_awarded": SCAN_POINTS if points_key else 0, "channel": channel,
        "customer_first_seen_at": float(customer.first_seen_at), "at": now}))
    return write, decision, promoter_decision


def scan(customer_id: str, scene: str, lat: float | None, lng: float | None, *, scans, now: float,
         policy=ScanPolicy(), channel: str = MINI_PROGRAM) -> dict:
    """``policy``: a ScanPolicy, or brand_id -> ScanPolicy (the scanned scene's brand).
    ``channel``: where the code was scanned — the mini-program (``POST /v1/scans``) or the
    official account (a follow or scan event of its parametric QR: ``OA_SUBSCRIBE``/``OA_SCAN``)."""
    from chalicelib.db.records import ScanRecord
    from chalicelib.db.scans import CustomerMoved, PointsAlreadyAwarded, UnitCountMoved

    points_key = f"scan#{scene}#{rules.beijing_day(now)}"
    scene_record, customer, awarded_today = scans.load(scene, customer_id, points_key)
    if customer is None:
        raise NotFound("No such customer.")
    if awarded_today:
        points_key = None
    scan_id = "sc_" + secrets.token_urlsafe(12)
    area = _area(lat, lng)
    if scene_record is None or scene_record.status != "ACTIVE":
        # Still recorded: a retired poster that people keep scanning is worth knowing of.
        record = ScanRecord(scan_id=scan_id, customer_id=customer_id, scene=scene, outcome="SCENE_NOT_FOUND",
                            area_cell=area, channel=channel, at=now)
        scans.record(ScanWrite(scan=record, customer_id=customer_id, now=now, events=[(events.SCAN_RECORDED, {
            "scan_id": scan_id, "customer_id": customer_id, "scene": scene, "kind": None, "store_id": None,
            "dealer_id": None, "staff_id": None, "campaign": None, "sku": None, "outcome": "SCENE_NOT_FOUND",
            "points_awarded": 0, "channel": channel, "customer_first_seen_at": float(customer.first_seen_at),
            "at": now})]))
        raise SceneNotFound(scene=scene, scan_id=scan_id)
    card = _scene_store_card(scene_record, scans)
    if callable(policy):
        policy = policy(scene_record.brand_id)      # the scanned brand's own rules

    for _ in range(ATTEMPTS):
        write, decision, promoter_decision = _plan(customer, scene_record, card, scan_id, area, points_key,
                                                   policy, scans, now, channel)
        try:
            scans.record(write)
            break
        except PointsAlreadyAwarded:
            points_key = None          # once per scene per Beijing day: record the scan without them
        except (CustomerMoved, UnitCountMoved):
            # A purchase or another scan changed the customer (or the unit's count): decide again.
            scene_record, customer, _ = scans.load(scene, customer_id)
    else:
        raise RuntimeError("the scan could not be recorded")
    return {"scan_id": scan_id,
            "scene": {"kind": scene_record.kind, "store_id": scene_record.store_id, "staff_id": scene_record.staff_id,
                      "sku": scene_record.sku, "campaign": (scene_record.campaign or {}).get("name")},
            "store": _public_card(card),
            "bound_store_id": decision.bind_to or customer.owning_store_id,
            "binding": decision.reason,
            "promoter": ({"promoter_id": scene_record.promoter_customer_id, "outcome": promoter_decision.reason}
                         if promoter_decision is not None else None),
            "welcome": welcome_for(scene_record.welcome, scene_record.campaign, card, now),
            "unit": _unit_answer(scene_record, write.unit, now) if write.unit else None,
            "points_awarded": SCAN_POINTS if points_key else 0}


def _unit_answer(scene_record, unit: dict, now: float) -> dict:
    """How often (this scan included) and since when this unit has been seen, and where."""
    count = unit["expected_count"] + 1
    first_seen = now if unit["expected_count"] == 0 else float(scene_record.unit_first_seen_at or now)
    areas = set(scene_record.unit_areas or ()) | ({unit["area"]} if unit["area"] else set())
    return {"sku": scene_record.sku, **unit_report(count, first_seen, areas)}
