"""POST /v1/scans: a QR scene becomes first-party data, an owner and a welcome."""
from __future__ import annotations

import secrets

from chalicelib.domain import attribution as rules
from chalicelib.errors import NotFound

SCAN_POINTS = 10
AREA_CELL_RESOLUTION = 5   # ~250 km² hexagons: a district, never a track


class SceneNotFound(NotFound):
    code = "SCENE_NOT_FOUND"
    default_message = "This code is not (or no longer) in use."


def _area(lat, lng) -> str | None:
    if lat is None:
        return None
    import h3

    return h3.latlng_to_cell(lat, lng, AREA_CELL_RESOLUTION)


def _store_card(store) -> dict | None:
    if store is None:
        return None
    return {"store_id": store.store_id, "name": store.name, "city": store.city, "address": store.address or "",
            "services": sorted(store.services or ()), "opening_hours": store.opening_hours or {}}


def scan(customer_id: str, scene: str, lat: float | None, lng: float | None, *, scans, now: float,
         rebind_on_scan: bool = False) -> dict:
    from chalicelib.db.records import ScanRecord
    from chalicelib.db.scans import OwnerMoved, PointsAlreadyAwarded

    points_key = f"scan#{scene}#{rules.beijing_day(now)}"
    scene_record, customer, awarded_today = scans.load(scene, customer_id, points_key)
    if awarded_today:
        points_key = None
    scan_id = "sc_" + secrets.token_urlsafe(12)
    area = _area(lat, lng)
    if customer is None:
        raise NotFound("No such customer.")
    if scene_record is None or scene_record.status != "ACTIVE":
        # Still recorded: a retired poster that people keep scanning is worth knowing of.
        scans.record(ScanRecord(scan_id=scan_id, customer_id=customer_id, scene=scene, outcome="SCENE_NOT_FOUND",
                                area_cell=area, at=now), 0, None, None, None, now)
        raise SceneNotFound(scene=scene, scan_id=scan_id)
    store = scans.store(scene_record.store_id) if scene_record.store_id else None
    if store is not None and store.status != "ACTIVE":
        store = None  # a deactivated store binds nobody
    for _ in range(4):
        owner = (rules.Owner(customer.owning_store_id, customer.owner_basis or rules.SCANNED)
                 if customer.owning_store_id else None)
        decision = rules.on_scan(owner, store.store_id, rebind_on_scan) if store else rules.Decision(None, None, "NO_STORE")
        bind = ({"to_store": decision.bind_to, "to_dealer": store.dealer_id, "basis": decision.basis,
                 "reason": decision.reason} if decision.bind_to else None)
        record = ScanRecord(scan_id=scan_id, customer_id=customer_id, scene=scene, kind=scene_record.kind,
                            store_id=scene_record.store_id, staff_id=scene_record.staff_id, sku=scene_record.sku,
                            campaign_name=(scene_record.campaign or {}).get("name"),
                            city=store.city if store else None, area_cell=area, outcome=decision.reason,
                            points_awarded=SCAN_POINTS if points_key else 0, at=now)
        try:
            scans.record(record, SCAN_POINTS, points_key, bind, customer.owning_store_id, now)
            break
        except PointsAlreadyAwarded:
            points_key = None          # once per scene per Beijing day: record the scan without them
        except OwnerMoved:
            _, customer, _ = scans.load(scene, customer_id)   # a purchase or scan moved it: decide again
    else:
        raise RuntimeError("the scan could not be recorded")
    welcome = scene_record.welcome or {"title": f"Welcome to {store.name}" if store else "Welcome",
                                       "message": "", "featured_skus": []}
    return {"scan_id": scan_id,
            "scene": {"kind": scene_record.kind, "store_id": scene_record.store_id, "staff_id": scene_record.staff_id,
                      "sku": scene_record.sku, "campaign": (scene_record.campaign or {}).get("name")},
            "store": _store_card(store),
            "bound_store_id": decision.bind_to or customer.owning_store_id,
            "binding": decision.reason,
            "welcome": welcome,
            "points_awarded": SCAN_POINTS if points_key else 0}
