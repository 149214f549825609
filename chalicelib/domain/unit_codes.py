"""Unit codes (一物一码): one QR scene per physical unit of a SKU, made in batches.

A unit code is a scene of kind ``unit`` (token ``u.`` + 14 base62 characters), so the
customer's scan resolves it like any other scene. Its first scan records when and in
which coarse area (an H3 resolution-5 cell, standing for "the city") it was first
seen; every scan adds to its count and to the set of areas it was seen in. A genuine
unit stays in few places; a code seen in many is probably copied onto fakes.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from chalicelib.domain.scenes import ACTIVE, BASE62, UNIT, new_scene_token, print_url
from chalicelib.domain.time import rfc3339
from chalicelib.errors import ValidationFailed

# A genuine unit is scanned where it is sold and where its owner lives: one area, two
# when the shop is across town or the unit is a gift sent to a relative; a third
# allows for a move, and for a metropolis spanning several resolution-5 cells
# (~250 km² each), so home and shop can fall in different cells of one city. A
# fourth distinct area is more likely a copied label (photographed, printed on fakes,
# posted online) than one unit's travels: worth a person's look. It is only a flag:
# the scan still counts and nothing is refused.
MAX_PLAUSIBLE_AREAS = 3

# One batch is written in the request that asks for it: 1000 codes are 40
# BatchWriteItem calls (~1 s), far inside API Gateway's 29 s, and a typical print run.
BATCH_MIN, BATCH_MAX = 1, 1000

# A batch's status
CREATING = "CREATING"   # its codes are being written; still CREATING later means the writer died part-way
COMPLETE = "COMPLETE"   # every one of its ``count`` codes is written


def check_batch_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not BATCH_MIN <= value <= BATCH_MAX:
        raise ValidationFailed(f"'count' must be a whole number from {BATCH_MIN} to {BATCH_MAX}.", field="count")
    return value


def unit_report(scan_count, first_seen_at, areas) -> dict:
    """What a unit's scans say about it: how many, since when, in how many areas, and
    whether that is more areas than one genuine unit plausibly visits.

    ``scan_count`` may be None (never scanned); ``first_seen_at`` Unix seconds or None;
    ``areas`` a set or list of area cells, or None. Areas that are None or empty (a
    scan without a location) are not counted."""
    if isinstance(areas, str):
        raise TypeError("areas must be a collection of area cells, not one string")
    seen = len({a for a in (areas or ()) if a})
    return {
        "scan_count": int(scan_count or 0),
        "first_seen_at": rfc3339(float(first_seen_at)) if first_seen_at is not None else None,
        "areas_seen": seen,
        "suspicious": seen > MAX_PLAUSIBLE_AREAS,
    }


def new_batch_id() -> str:
    # base62, not token_urlsafe: a "-" or "_" inside could read as a raw openid ("-o_...")
    # to the back office's personal-data check
    return "ub_" + "".join(secrets.choice(BASE62) for _ in range(16))


def new_unit_tokens(count: int) -> list[str]:
    """``count`` distinct unit tokens (a repeat inside one batch is dropped and redrawn:
    one BatchWriteItem refuses the same key twice)."""
    tokens: set[str] = set()
    while len(tokens) < count:
        tokens.add(new_scene_token(UNIT))
    return sorted(tokens)


@dataclass
class UnitCodeBatch:
    batch_id: str
    sku: str
    brand_id: str
    count: int
    created_at: float
    created_by: str          # "<role>:<tenant>" of the back-office token that asked
    status: str = CREATING
    completed_at: float | None = None

    def to_json(self) -> dict:
        return {"batch_id": self.batch_id, "sku": self.sku, "brand_id": self.brand_id, "count": self.count,
                "status": self.status, "created_by": self.created_by, "created_at": rfc3339(self.created_at),
                "completed_at": rfc3339(self.completed_at) if self.completed_at is not None else None}


@dataclass
class UnitCode:
    """One unit's scene, as the back office sees it."""
    scene: str
    brand_id: str
    sku: str
    batch_id: str
    created_at: float
    status: str = ACTIVE
    scan_count: int = 0
    first_seen_at: float | None = None
    first_seen_area: str | None = None
    areas: frozenset = field(default_factory=frozenset)
    last_seen_at: float | None = None

    def listing_json(self) -> dict:
        return {"scene": self.scene, "print_url": print_url(self.scene), "status": self.status,
                "scan_count": self.scan_count,
                "first_seen_at": rfc3339(self.first_seen_at) if self.first_seen_at is not None else None}

    def report_json(self) -> dict:
        return {"scene": self.scene, "sku": self.sku, "batch_id": self.batch_id, "status": self.status,
                **unit_report(self.scan_count, self.first_seen_at, self.areas),
                "first_seen_area": self.first_seen_area,
                "last_seen_at": rfc3339(self.last_seen_at) if self.last_seen_at is not None else None}
