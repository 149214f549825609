"""QR scenes: what a scanned mini-program code stands for, and the rules its parts keep.

A scene token travels inside WeChat's unlimited mini-program code, so it obeys
WeChat's rule for ``scene``: at most 32 visible characters from digits, letters and
``!#$&'()*+,/:;=?@-._~`` (no ``%``). Ours are shorter and tamer than that:

    <kind letter> "." <10 random base62 characters>      e.g. ``s.4fZq9LmA0x``

12 characters in all, URL-path safe (they also name the scene in back-office URLs),
~59.5 bits of randomness (unguessable enough for a printed poster; the write is
conditional on absence, so a collision is retried, never overwritten). The letter
tells a person reading a log which kind of code it is:

    s store    f staff (a guide's badge: "f" for "floor staff")    c campaign
    p product  m promoter ("m" for "member share"; made by customers, M6 item 4)
    u unit     (一物一码: one code per physical unit, made only in batches, M7 item 4)

Unit tokens are longer, ``u.`` + 14 base62 characters (16 in all, ~83 bits): they
are printed by the thousand and written with BatchWriteItem, which cannot be
conditional, so their length, not a condition, is what keeps them from colliding
(see ``chalicelib/services/unit_codes.py``).
"""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import asdict, dataclass

from chalicelib.domain.catalogue import SKU
from chalicelib.domain.time import parse_rfc3339
from chalicelib.errors import BusinessRuleViolated, Conflict, ValidationFailed

STORE, STAFF, CAMPAIGN, PRODUCT, PROMOTER = "store", "staff", "campaign", "product", "promoter"
UNIT = "unit"   # one physical unit of a SKU (一物一码)
KINDS = (STORE, STAFF, CAMPAIGN, PRODUCT, PROMOTER, UNIT)
KIND_LETTERS = {STORE: "s", STAFF: "f", CAMPAIGN: "c", PRODUCT: "p", PROMOTER: "m", UNIT: "u"}
# What the back office may make one at a time; promoter scenes are made on the
# customer side, unit scenes only in batches (/v1/admin/products/{sku}/unit-code-batches).
BACK_OFFICE_KINDS = (STORE, STAFF, CAMPAIGN, PRODUCT)

ACTIVE, RETIRED = "ACTIVE", "RETIRED"

SCENE_MAX_CHARS = 32
SCENE_CHARS = re.compile(r"[A-Za-z0-9!#$&'()*+,/:;=?@\-._~]+")
BASE62 = string.digits + string.ascii_letters
TOKEN_RANDOM_CHARS = 10
UNIT_TOKEN_RANDOM_CHARS = 14

CAMPAIGN_NAME_MAX = 50
CAMPAIGN_STORES_MAX = 50
WELCOME_TITLE_MAX = 30
WELCOME_MESSAGE_MAX = 200
WELCOME_SKUS_MAX = 6

# Where the mini-program opens a scanned code, and what a printable QR points at.
SCAN_PAGE = "pages/scan/index"
PRINT_URL_BASE = "https://mall.storelink.invalid/s/"


class SceneRetired(Conflict):
    code = "SCENE_RETIRED"
    default_message = "This scene is retired."


class SceneTokenTaken(Conflict):
    code = "SCENE_TOKEN_TAKEN"
    default_message = "That scene token is taken."


class PromoterSceneRefused(BusinessRuleViolated):
    code = "PROMOTER_SCENE_REFUSED"
    default_message = "Promoter share codes are made by promoters in the mini-program, not in the back office."


class UnitSceneRefused(BusinessRuleViolated):
    code = "UNIT_SCENE_REFUSED"
    default_message = "Unit codes are made in batches: POST /v1/admin/products/{sku}/unit-code-batches."


class StaffNotActive(BusinessRuleViolated):
    code = "STAFF_NOT_ACTIVE"
    default_message = "Only an active staff member gets a badge code."


def new_scene_token(kind: str) -> str:
    if kind not in KIND_LETTERS:
        raise ValueError(f"unknown scene kind {kind!r}")
    length = UNIT_TOKEN_RANDOM_CHARS if kind == UNIT else TOKEN_RANDOM_CHARS
    return KIND_LETTERS[kind] + "." + "".join(secrets.choice(BASE62) for _ in range(length))


def check_scene(text: object, field: str = "scene") -> str:
    """WeChat's rule for a scene: 1 to 32 characters of its charset (never '%')."""
    if not isinstance(text, str) or not 1 <= len(text) <= SCENE_MAX_CHARS or not SCENE_CHARS.fullmatch(text):
        raise ValidationFailed(
            f"'{field}' must be 1 to {SCENE_MAX_CHARS} characters of letters, digits and !#$&'()*+,/:;=?@-._~.",
            field=field)
    return text


def check_kind(value: object) -> str:
    if value not in KINDS:
        raise ValidationFailed(f"'kind' must be one of {', '.join(KINDS)}.", field="kind")
    return value


def _text(body: dict, name: str, max_len: int, field: str, required: bool = True, min_len: int = 1):
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"'{field}' must be a string of {min_len} to {max_len} characters.", field=field)
    value = value.strip()
    if not min_len <= len(value) <= max_len or not value.isprintable():
        raise ValidationFailed(f"'{field}' must be {min_len} to {max_len} printable characters.", field=field)
    return value


def _timestamp(value: object, field: str):
    if not isinstance(value, str):
        raise ValidationFailed(f"'{field}' must be an RFC 3339 timestamp with offset.", field=field)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValidationFailed(f"'{field}' must be an RFC 3339 timestamp with offset.", field=field) from None


def check_campaign(value: object) -> dict:
    """{name 1-50, store_ids 1-50 distinct ids, starts_at < ends_at (RFC 3339)}; which
    store ids exist (and are in the caller's reach) is the use case's to check."""
    if not isinstance(value, dict):
        raise ValidationFailed("'campaign' must be an object.", field="campaign")
    unknown = sorted(set(value) - {"name", "store_ids", "starts_at", "ends_at"})
    if unknown:
        raise ValidationFailed(f"Unknown campaign field(s): {', '.join(unknown)}.", field="campaign")
    name = _text(value, "name", CAMPAIGN_NAME_MAX, "campaign.name")
    store_ids = value.get("store_ids")
    if (not isinstance(store_ids, list) or not 1 <= len(store_ids) <= CAMPAIGN_STORES_MAX
            or not all(isinstance(s, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", s) for s in store_ids)):
        raise ValidationFailed(f"'campaign.store_ids' must list 1 to {CAMPAIGN_STORES_MAX} store ids.",
                               field="campaign.store_ids")
    if len(set(store_ids)) != len(store_ids):
        raise ValidationFailed("'campaign.store_ids' lists a store twice.", field="campaign.store_ids")
    starts = _timestamp(value.get("starts_at"), "campaign.starts_at")
    ends = _timestamp(value.get("ends_at"), "campaign.ends_at")
    if not starts < ends:
        raise ValidationFailed("A campaign must start before it ends.", field="campaign.ends_at")
    return {"name": name, "store_ids": list(store_ids), "starts_at": value["starts_at"], "ends_at": value["ends_at"]}


def check_welcome(value: object) -> dict:
    """{title <= 30, message <= 200, featured_skus <= 6 distinct SKUs}; all optional."""
    if not isinstance(value, dict):
        raise ValidationFailed("'welcome' must be an object.", field="welcome")
    unknown = sorted(set(value) - {"title", "message", "featured_skus"})
    if unknown:
        raise ValidationFailed(f"Unknown welcome field(s): {', '.join(unknown)}.", field="welcome")
    title = _text(value, "title", WELCOME_TITLE_MAX, "welcome.title", required=False, min_len=0)
    message = _text(value, "message", WELCOME_MESSAGE_MAX, "welcome.message", required=False, min_len=0)
    skus = value.get("featured_skus", [])
    if (not isinstance(skus, list) or len(skus) > WELCOME_SKUS_MAX
            or not all(isinstance(s, str) and SKU.fullmatch(s) for s in skus)):
        raise ValidationFailed(f"'welcome.featured_skus' must list at most {WELCOME_SKUS_MAX} SKUs.",
                               field="welcome.featured_skus")
    if len(set(skus)) != len(skus):
        raise ValidationFailed("'welcome.featured_skus' lists a SKU twice.", field="welcome.featured_skus")
    return {"title": title or "", "message": message or "", "featured_skus": list(skus)}


def store_card(store) -> dict:
    """What a scene keeps of its store, so a scan needs no store read: what the welcome
    shows, plus what binding needs (dealer, status)."""
    return {"store_id": store.store_id, "dealer_id": store.dealer_id, "name": store.name, "city": store.city,
            "address": store.address or "", "services": sorted(store.services or ()),
            "opening_hours": store.opening_hours or {}, "status": store.status}


def campaign_running(campaign: dict | None, now: float) -> bool:
    if not campaign:
        return False
    return parse_rfc3339(campaign["starts_at"]).timestamp() <= now < parse_rfc3339(campaign["ends_at"]).timestamp()


def welcome_for(welcome: dict | None, campaign: dict | None, card: dict | None, now: float) -> dict:
    """The welcome a scan shows: the scene's own, except a campaign's outside its dates
    (then the store's plain greeting, as for a scene without one)."""
    if welcome and (campaign is None or campaign_running(campaign, now)):
        return welcome
    return {"title": f"Welcome to {card['name']}" if card else "Welcome", "message": "", "featured_skus": []}


def print_url(scene: str) -> str:
    """What a printable (non-WeChat) QR code carries."""
    return PRINT_URL_BASE + check_scene(scene)


@dataclass
class Scene:
    scene: str
    kind: str
    brand_id: str
    store_id: str | None = None
    dealer_id: str | None = None
    staff_id: str | None = None
    sku: str | None = None
    promoter_customer_id: str | None = None
    campaign: dict | None = None
    welcome: dict | None = None
    store_card: dict | None = None
    status: str = ACTIVE
    created_at: float = 0.0
    retired_at: float | None = None

    def to_json(self) -> dict:
        """The back office's view (the store card is an internal copy, not part of it)."""
        out = asdict(self)
        out.pop("store_card")
        return out


# What each kind of scene is made of (besides an optional welcome): required, optional.
PARTS = {
    STORE: ({"store_id"}, set()),
    STAFF: ({"staff_id"}, {"store_id"}),
    PRODUCT: ({"sku"}, {"store_id"}),
    CAMPAIGN: ({"campaign"}, set()),
    PROMOTER: (set(), set()),
}


def check_parts(kind: str, parts: dict) -> None:
    """A scene names exactly what its kind needs: a store scene a store, a staff scene a
    staff member (and, optionally, the store to double-check), a product scene a SKU
    (and optionally the store it binds to), a campaign scene its campaign."""
    required, optional = PARTS[check_kind(kind)]
    given = {k for k, v in parts.items() if v is not None}
    missing = sorted(required - given)
    if missing:
        raise ValidationFailed(f"A {kind} scene needs {', '.join(repr(m) for m in missing)}.", field=missing[0])
    extra = sorted(given - required - optional)
    if extra:
        raise ValidationFailed(f"A {kind} scene does not take {', '.join(repr(e) for e in extra)}.", field=extra[0])
