"""Back-office use cases for QR scenes: make, read, list, retire, and print them.

Tenancy: a brand token makes any back-office kind for its brand; a dealer token only
for its own stores (another dealer's store, staff member or store list is 404); a
store token only for itself. Promoter share codes are made on the customer side
(M6 item 4) and refused here with 422 PROMOTER_SCENE_REFUSED.

Who sees a scene: the brand sees all of its brand's scenes; a dealer the scenes
bound to one of its stores (``dealer_id``); a store the scenes bound to it
(``store_id``). A brand-wide product code (no store) is the brand's alone. A
campaign binds to its first store.
"""
from __future__ import annotations

import io

from chalicelib.domain import scenes as rules
from chalicelib.domain import tenancy
from chalicelib.domain.network import ACTIVE as STAFF_ACTIVE
from chalicelib.domain.scenes import Scene, SceneRetired, SceneTokenTaken
from chalicelib.domain.tenancy import BRAND, DEALER, STORE
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.services.network_admin import principal_brand, read_staff, read_store

TOKEN_ATTEMPTS = 3
PAGE = 100


def can_see_scene(principal, scene: Scene) -> bool:
    if principal.role == BRAND:
        return scene.brand_id == principal.tenant_id
    if principal.role == DEALER:
        return scene.dealer_id is not None and scene.dealer_id == principal.tenant_id
    return scene.store_id is not None and scene.store_id == principal.tenant_id


def _product(sku: str, brand_id: str, catalogue):
    product = catalogue.get_product(sku)
    if product is None or product.brand_id != brand_id:
        raise NotFound(f"No product {sku}.", sku=sku)
    return product


def _save(scene_fields: dict, kind: str, *, scenes) -> Scene:
    for attempt in range(TOKEN_ATTEMPTS):
        scene = Scene(scene=rules.new_scene_token(kind), kind=kind, **scene_fields)
        try:
            scenes.add(scene)
            return scene
        except SceneTokenTaken:
            if attempt == TOKEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def create_scene(principal, fields: dict, *, scenes, network, catalogue, now: float) -> Scene:
    """``fields``: kind, and (by kind) store_id, staff_id, sku, campaign, welcome — already
    checked for shape by the domain's check_* functions."""
    kind = rules.check_kind(fields.get("kind"))
    if kind == rules.PROMOTER:
        raise rules.PromoterSceneRefused(kind=kind)
    if kind == rules.UNIT:
        raise rules.UnitSceneRefused(kind=kind)
    tenancy.require_role(principal, BRAND, DEALER, STORE, action="make scenes")
    parts = {k: fields.get(k) for k in ("store_id", "staff_id", "sku", "campaign")}
    if kind == rules.PRODUCT and parts["store_id"] is None and principal.role == STORE:
        parts["store_id"] = principal.tenant_id   # a store's product codes bind to itself
    rules.check_parts(kind, parts)
    brand_id = principal_brand(principal, network)

    store = None
    staff_id = sku = campaign = None
    if kind == rules.STAFF:
        member = read_staff(principal, parts["staff_id"], network=network)
        if parts["store_id"] is not None and parts["store_id"] != member.store_id:
            raise ValidationFailed("That staff member works at another store.", field="store_id",
                                   staff_id=member.staff_id)
        if member.status != STAFF_ACTIVE:
            raise rules.StaffNotActive(staff_id=member.staff_id)
        store, staff_id = read_store(principal, member.store_id, network=network), member.staff_id
    elif kind == rules.CAMPAIGN:
        campaign = parts["campaign"]
        stores = [read_store(principal, sid, network=network) for sid in campaign["store_ids"]]
        store = stores[0]
    else:
        if parts["store_id"] is not None:
            store = read_store(principal, parts["store_id"], network=network)
        elif principal.role != BRAND:
            raise ValidationFailed("'store_id' is required: which of your stores is this code for?",
                                   field="store_id")
        if kind == rules.PRODUCT:
            sku = _product(parts["sku"], brand_id, catalogue).sku

    welcome = fields.get("welcome")
    if welcome is not None:
        for featured in welcome["featured_skus"]:
            _product(featured, brand_id, catalogue)

    return _save({"brand_id": brand_id, "store_id": store.store_id if store else None,
                  "dealer_id": store.dealer_id if store else None, "staff_id": staff_id, "sku": sku,
                  "campaign": campaign, "welcome": welcome, "created_at": now,
                  "store_card": rules.store_card(store) if store else None}, kind, scenes=scenes)


def read_scene(principal, scene: str, *, scenes) -> Scene:
    """Retired scenes stay readable: the history of what was printed is kept."""
    found = scenes.get(scene)
    if found is None or not can_see_scene(principal, found):
        raise NotFound(f"No scene {scene}.", scene=scene)
    return found


def retire_scene(principal, scene: str, *, scenes, now: float) -> Scene:
    read_scene(principal, scene, scenes=scenes)
    return scenes.retire(scene, now)


def list_scenes(principal, store_id: str | None, limit: int, start, *, scenes, network):
    if store_id is None:
        if principal.role != STORE:
            raise ValidationFailed("'store_id' is required: whose scenes?", field="store_id")
        store_id = principal.tenant_id
    read_store(principal, store_id, network=network)
    return scenes.of_store(store_id, limit, start)


def staff_codes(principal, store_id: str, *, scenes, network, now: float) -> tuple[list[Scene], int]:
    """One active staff scene per active staff member of the store: kept if it exists,
    made if not. Returns (the scenes in staff order, how many were made now).

    Two of these racing for the same store can each make a badge for the same member;
    both codes work, and the next call keeps (and returns) the first it finds."""
    store = read_store(principal, store_id, network=network)
    brand_id = store.brand_id
    existing: dict[str, Scene] = {}
    start = None
    while True:
        page, start = scenes.of_store(store_id, PAGE, start)
        for scene in page:
            if scene.kind == rules.STAFF and scene.status == rules.ACTIVE and scene.staff_id:
                existing.setdefault(scene.staff_id, scene)
        if not start:
            break
    out: list[Scene] = []
    made = 0
    start = None
    while True:
        members, start = network.staff_of_store(store_id, PAGE, start)
        for member in members:
            if member.status != STAFF_ACTIVE:
                continue
            scene = existing.get(member.staff_id)
            if scene is None:
                scene = _save({"brand_id": brand_id, "store_id": store.store_id, "dealer_id": store.dealer_id,
                               "staff_id": member.staff_id, "created_at": now,
                               "store_card": rules.store_card(store)}, rules.STAFF, scenes=scenes)
                made += 1
            out.append(scene)
        if not start:
            break
    return out, made


def _printable(principal, scene: str, scenes) -> Scene:
    found = read_scene(principal, scene, scenes=scenes)
    if found.status != rules.ACTIVE:
        raise SceneRetired("A retired scene's code is not printed again.", scene=scene)
    return found


def wxacode(principal, scene: str, width: int, *, scenes, miniprogram) -> bytes:
    """The mini-program code (PNG) that opens the scan page with this scene."""
    found = _printable(principal, scene, scenes)
    return miniprogram.wxacode(found.scene, rules.SCAN_PAGE, width)


def print_qr(principal, scene: str, *, scenes) -> bytes:
    """A plain QR code (PNG) with the scene's web address, for print outside WeChat."""
    import segno

    found = _printable(principal, scene, scenes)
    buffer = io.BytesIO()
    segno.make(rules.print_url(found.scene), error="m", micro=False).save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
