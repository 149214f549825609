"""Nearest-store routing (domain rule 4, issue M11), as pure functions.

Three things live here, all without I/O or a clock (the caller passes ``now_ts``):

* ``is_open``: whether a store's weekly opening hours (Beijing time) cover a moment.
* ``nearest_stores``: the exact k best stores around a point, read from an index of
  stores keyed by H3 cell, ring by ring, stopping as soon as no unread cell can hold a
  better store (or when a maximum radius has been covered).
* ``assign_store`` / ``assign_batch`` / ``dealer_balance``: the ``route-traffic`` job's
  fair choice among equally near stores, with daily caps, and its report per dealer.

The index the search reads is the caller's business: ``fetch(cells)`` must return
every store whose ``h3.latlng_to_cell(lat, lng, resolution)`` is one of ``cells``
(for the stores table, the ``(geo_cell, service)`` key filled by ``geo.store_cell``
at the same resolution). Extra stores do no harm; a missing one does.
"""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

from chalicelib.domain.geo import STORE_CELL_RESOLUTION
from chalicelib.domain.network import ACTIVE, WEEKDAYS

EARTH_RADIUS_M = 6_371_008.8          # mean Earth radius (IUGG), the sphere all distances use
BEIJING_OFFSET_S = 8 * 3600           # China has one time zone and no daylight saving

DEFAULT_MAX_RADIUS_M = 50_000.0       # beyond this a store is not "near" (≤ 14 rings at res 6)
MAX_RADIUS_CEILING_M = 5_000_000.0    # keeps every ring inside the hemisphere around the point
COARSE_CELL_RESOLUTION = 3            # suggested parent index for rare services (edge ≈ 69 km)
# Subtracted from every lower bound: covers floating-point error (nanometres) many times
# over, and makes a tie between a read store and an unread one impossible.
BOUND_MARGIN_M = 1.0

# Why a search stopped
CERTAIN = "CERTAIN"        # the k best are known: no unread cell can hold a better store
MAX_RADIUS = "MAX_RADIUS"  # everything within max_radius_m was read; fewer than k certain
MAX_RINGS = "MAX_RINGS"    # the ring guard fired before max_radius_m was covered

# Why route-traffic chose a store
NEAREST = "NEAREST"                                    # the nearest store, no other within tolerance
ROTATED_WITHIN_TOLERANCE = "ROTATED_WITHIN_TOLERANCE"  # several uncapped stores within tolerance: rotated
NEAREST_UNCAPPED = "NEAREST_UNCAPPED"                  # nearer stores were at their daily cap
ALL_CAPPED = "ALL_CAPPED"                              # every candidate is capped: widen the search or wait
NO_CANDIDATES = "NO_CANDIDATES"                        # nothing suitable in reach


# --- distance ---------------------------------------------------------------------

def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres on a sphere of radius ``EARTH_RADIUS_M``."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lng2 - lng1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# --- opening hours ----------------------------------------------------------------

def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def is_open(opening_hours: Mapping[str, Sequence[Sequence[str]]] | None, now_ts: float) -> bool:
    """Whether the store is open at ``now_ts`` (Unix seconds), read in Beijing time.

    ``opening_hours`` is ``{"mon": [["10:00", "22:00"]], ...}``; a day left out is closed.
    Each interval is ``[start, end)``: open at ``start``, closed at ``end``. ``"24:00"``
    as an end means midnight at the end of that day. An interval whose end comes before
    its start (``["22:00", "02:00"]``) runs overnight: from ``start`` on its own day to
    ``end`` on the next day (Sunday spills into Monday). An interval whose start equals
    its end is empty (write a whole day as ``["00:00", "24:00"]``).

    Assumed, not validated (``network.check_opening_hours`` does that when a store is
    saved; today it refuses overnight intervals, which this reads correctly should the
    back office allow them): weekday keys from ``network.WEEKDAYS``, times ``"HH:MM"`` between 00:00 and
    24:00. Malformed times raise ``ValueError``; unknown weekday keys are ignored.
    Unix time has no leap seconds and Beijing no daylight saving, so plain arithmetic
    gives the Beijing wall clock.
    """
    if not opening_hours:
        return False
    local = now_ts + BEIJING_OFFSET_S
    day_number = math.floor(local / 86400)
    second_of_day = local - day_number * 86400
    weekday = (day_number + 3) % 7            # 1970-01-01 was a Thursday; Monday is 0
    today, yesterday = WEEKDAYS[weekday], WEEKDAYS[(weekday - 1) % 7]
    for start_text, end_text in opening_hours.get(today) or ():
        start, end = _minutes(start_text) * 60, _minutes(end_text) * 60
        if start < end and start <= second_of_day < end:
            return True
        if end < start and second_of_day >= start:        # tonight's part of an overnight interval
            return True
    for start_text, end_text in opening_hours.get(yesterday) or ():
        start, end = _minutes(start_text) * 60, _minutes(end_text) * 60
        if end < start and second_of_day < end:             # yesterday's interval running past midnight
            return True
    return False


# --- candidates and ranking -------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Candidate:
    """A store as the search sees it (what the ``(cell, service)`` index item holds)."""
    store_id: str
    lat: float
    lng: float
    services: tuple[str, ...] | frozenset[str] = ()
    opening_hours: Mapping = field(default_factory=dict)
    status: str = ACTIVE
    score: float = 0.0          # service quality, higher is better (a tie-breaker after distance)
    dealer_id: str = ""
    name: str = ""

    @classmethod
    def from_store(cls, store, score: float = 0.0) -> "Candidate":
        """From a ``network.Store`` (or anything with the same attributes)."""
        return cls(store.store_id, store.lat, store.lng, tuple(store.services), store.opening_hours,
                   store.status, score, store.dealer_id, getattr(store, "name", ""))


@dataclass(frozen=True)
class Ranked:
    store: Candidate
    distance_m: float
    open_now: bool

    @property
    def store_id(self) -> str:
        return self.store.store_id


def rank_key(entry: Ranked, open_first: bool = True) -> tuple:
    """Open stores first (when ``open_first``), then distance in whole metres (as listed:
    two stores equally near to the metre are equally near), then score (higher first),
    then store_id, so equal inputs always give the same order.

    Rounding cannot break the search's certainty: it stops only when the k-th store is at
    least ``BOUND_MARGIN_M`` (1 m) nearer than anything unread, so an unread store rounds
    to a larger whole metre and ranks after it whatever its score."""
    return (open_first and not entry.open_now, round(entry.distance_m), -entry.store.score, entry.store.store_id)


def _suitable(candidate: Candidate, service: str | None) -> bool:
    """Safety net: whatever the index returned, never list a deactivated store or one
    without the service."""
    return candidate.status == ACTIVE and (service is None or service in candidate.services)


# --- the lower bound for unread cells ---------------------------------------------

def _unit_vector(lat: float, lng: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lng)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


@lru_cache(maxsize=1 << 16)
def _cell_vertices(cell: str) -> tuple[tuple[float, float, float], ...]:
    import h3

    return tuple(_unit_vector(lat, lng) for lat, lng in h3.cell_to_boundary(cell))


class _Gnomonic:
    """The gnomonic projection centred on the search point P: the plane tangent to the
    sphere at P, each point of the sphere's near hemisphere sent along the ray from
    the Earth's centre. Two facts make it the right tool: great circles become
    straight lines, and a point at distance ρ from the origin of the plane is at
    angle atan(ρ) from P, which grows with ρ."""

    def __init__(self, lat: float, lng: float):
        p = _unit_vector(lat, lng)
        axis = (0.0, 0.0, 1.0) if abs(p[2]) < 0.9 else (1.0, 0.0, 0.0)
        e1 = (axis[1] * p[2] - axis[2] * p[1], axis[2] * p[0] - axis[0] * p[2], axis[0] * p[1] - axis[1] * p[0])
        norm = math.sqrt(e1[0] ** 2 + e1[1] ** 2 + e1[2] ** 2)
        e1 = (e1[0] / norm, e1[1] / norm, e1[2] / norm)
        e2 = (p[1] * e1[2] - p[2] * e1[1], p[2] * e1[0] - p[0] * e1[2], p[0] * e1[1] - p[1] * e1[0])
        self.p, self.e1, self.e2 = p, e1, e2

    def cell_distances_m(self, cells: Iterable[str]) -> dict[str, float]:
        """For each cell, the exact smallest great-circle distance from P to its boundary,
        which for a cell P is outside of (every ring from 1 on) is the distance to the
        cell itself. No margin subtracted."""
        px, py, pz = self.p
        ax, ay, az = self.e1
        bx, by, bz = self.e2
        out = {}
        for cell in cells:
            points = []
            for vx, vy, vz in _cell_vertices(cell):
                s = vx * px + vy * py + vz * pz
                if s <= 0.05:   # ≥ 87° away: the projection would fold; radii are capped well below
                    raise ValueError("a cell lies too far from the search point to bound")
                points.append(((vx * ax + vy * ay + vz * az) / s, (vx * bx + vy * by + vz * bz) / s))
            best_sq = math.inf
            x0, y0 = points[-1]
            for x1, y1 in points:
                dx, dy = x1 - x0, y1 - y0
                length_sq = dx * dx + dy * dy
                t = 0.0 if length_sq == 0 else max(0.0, min(1.0, -(x0 * dx + y0 * dy) / length_sq))
                cx, cy = x0 + t * dx, y0 + t * dy
                d_sq = cx * cx + cy * cy
                if d_sq < best_sq:
                    best_sq = d_sq
                x0, y0 = x1, y1
            out[cell] = EARTH_RADIUS_M * math.atan(math.sqrt(best_sq))
        return out


def unread_lower_bound_m(lat: float, lng: float, next_ring: Iterable[str]) -> float:
    """A distance no store in an unread cell can beat, once rings 0..r are read and
    ``next_ring`` is ring r + 1 (see ``nearest_stores`` for why this holds)."""
    return min(_Gnomonic(lat, lng).cell_distances_m(next_ring).values(), default=math.inf) - BOUND_MARGIN_M


def rings_for_radius(radius_m: float, resolution: int) -> int:
    """The ring guard: more rings than covering ``radius_m`` can ever need, so it only
    fires on inputs nobody planned for. Each ring moves the frontier out by 1.5 to 1.7
    average edges (the sides and the corners of the hexagon the disk makes); √3/2 of an
    edge is assumed, which leaves room for cells half the average size."""
    import h3

    step_m = 0.5 * math.sqrt(3) * h3.average_hexagon_edge_length(resolution, unit="m")
    return math.ceil(radius_m / step_m) + 2


# --- the ring search --------------------------------------------------------------

@dataclass(frozen=True)
class NearestResult:
    stores: tuple[Ranked, ...]               # best first, at most k
    rings: tuple[tuple[str, ...], ...]       # the cells read, ring by ring (ring 0 is the point's cell)
    complete: bool                           # True: exactly the k best stores anywhere
    stop: str                                # CERTAIN | MAX_RADIUS | MAX_RINGS
    radius_m: float                          # every store this near that could make the list was read

    @property
    def cells_read(self) -> int:
        return sum(len(ring) for ring in self.rings)


def nearest_stores(lat: float, lng: float, k: int, fetch: Callable[[Sequence[str]], Iterable[Candidate]], *,
                   service: str | None, now_ts: float, include_closed: bool = False, open_first: bool = True,
                   resolution: int = STORE_CELL_RESOLUTION, max_radius_m: float = DEFAULT_MAX_RADIUS_M,
                   max_rings: int | None = None) -> NearestResult:
    """The k best active stores offering ``service`` around (lat, lng), exactly.

    Ranking: ``rank_key`` — open stores first, then distance, then ``score`` (higher
    first), then ``store_id``. Without ``include_closed`` closed stores are dropped;
    with it they follow the open ones (``open_first=False`` ranks on distance alone and
    only reports ``open_now``: what ``route-traffic`` wants). Deactivated stores and
    stores without the service are dropped whatever ``fetch`` returns.

    How it reads. Ring r is the cells at grid distance exactly r from the point's cell
    (``grid_disk(r) − grid_disk(r − 1)``, right around pentagons too: one sits in the
    Bohai Sea, beside Dalian). ``fetch`` is called once per ring, with the cells of
    that ring worth reading: a cell is left out when its nearest point is farther than
    ``max_radius_m``, or farther than the k-th best store already found (when that
    store is one nothing farther can outrank: see CERTAIN). So the corners of the last
    ring, which a circle of the needed radius does not reach, are not read. A caller
    that queries one ``(cell, service)`` partition per cell reads ``cells_read``
    partitions; one that batches (or parallelises) per ring waits ``len(rings)`` times.

    When it stops, after reading (part of) rings 0..r:

    * ``CERTAIN`` (``complete``): the k-th best store found ranks before anything an
      unread cell could hold: its distance is ≤ the lower bound U (below) and, when
      closed stores are listed after open ones, it is open (an unread *open* store
      would outrank a read closed one however far it is).
    * ``MAX_RADIUS``: B ≥ ``max_radius_m``. Every store within ``max_radius_m`` that
      could make the list has been read; the result is exactly the best (up to k) of
      the stores within ``max_radius_m``, and stores found farther away are left out
      because better ones might hide beyond the radius. At resolution 6 covering 50 km
      takes 12–14 rings, of whose cells 250–400 are read (the corners are skipped): the
      most a far-away point or a rare service costs (bench/routing_parity.py).
    * ``MAX_RINGS``: a guard (``rings_for_radius`` unless given) that should not fire;
      the result is then exactly the best of the stores within ``radius_m`` = B.

    The lower bound. Let D be grid_disk(r) and Q any point in a cell outside D. The
    point P is in D (its own cell is ring 0). The shortest path from P to Q along the
    sphere is continuous, so it crosses the boundary of the region D covers at some
    point X, and dist(P, Q) ≥ dist(P, X). Every piece of that boundary is an edge
    between a cell in D and a neighbouring cell outside D, which is at grid distance
    r + 1: so X lies on an edge of a ring-(r + 1) cell, and
        dist(P, Q) ≥ min over the edges of ring r + 1 of dist(P, edge) = B + margin.
    (The minimum runs over all their edges, the outer ones too; a minimum over more
    edges can only be smaller, so still a lower bound.) A cell of D that was skipped
    holds nothing nearer than its own distance (the same edge computation: P is outside
    it), so every unread store is at least U = min(B, the skipped cells' distances)
    away. To measure dist(P, edge): H3 draws each cell as straight lines in the
    gnomonic projection of an icosahedron face, so an edge is the great-circle arc
    between two consecutive vertices of ``cell_to_boundary`` (which adds the extra
    vertices where a class III cell crosses a face edge; the tests check that points
    just inside these arcs belong to the cell). In the gnomonic projection centred on P
    the arc is a straight segment, and distance from P grows with the distance ρ from
    the origin (angle = atan ρ): the nearest point of the segment to the origin is the
    nearest point of the arc to P. No cell size or shape is assumed, so the bound is
    tight (within the 1 m margin) for cells of any size, distorted or pentagonal.

    Skipping is safe. A cell skipped for the radius holds nothing within it. A cell
    skipped for the k-th best (distance d_k at the time) holds only stores ranking
    after it; the k-th best only improves as stores are found, so they never make the
    list, and the CERTAIN test includes U anyway.

    Rare services and empty regions: a far point costs the full radius and may come
    back with fewer than k stores. The fallback is the same function on a coarser
    index: keep a second ``(parent cell, service)`` index at ``COARSE_CELL_RESOLUTION``
    (edge ≈ 69 km) and call again with ``resolution=COARSE_CELL_RESOLUTION`` and a
    national radius (e.g. 2,000 km): a handful of rings instead of hundreds of cells.
    """
    import h3

    if k < 1:
        raise ValueError("k must be at least 1")
    if not 0 < max_radius_m <= MAX_RADIUS_CEILING_M:
        raise ValueError(f"max_radius_m must be in (0, {MAX_RADIUS_CEILING_M:.0f}]")
    if max_rings is None:
        max_rings = rings_for_radius(max_radius_m, resolution)
    closed_go_last = include_closed and open_first
    frame = _Gnomonic(lat, lng)
    origin = h3.latlng_to_cell(lat, lng, resolution)
    found: dict[str, Ranked] = {}
    ordered: list[Ranked] = []
    in_disk: set[str] = {origin}
    rings: list[tuple[str, ...]] = []
    ring_distances = {origin: 0.0}
    skipped_m = math.inf          # the nearest of the cells left unread inside the disk
    r = 0
    while True:
        reach = max_radius_m
        if len(ordered) >= k and (ordered[k - 1].open_now or not closed_go_last):
            reach = min(reach, ordered[k - 1].distance_m)
        ring = []
        for cell in sorted(ring_distances):
            if ring_distances[cell] - BOUND_MARGIN_M <= reach:
                ring.append(cell)
            else:
                skipped_m = min(skipped_m, ring_distances[cell] - BOUND_MARGIN_M)
        rings.append(tuple(ring))
        for candidate in fetch(tuple(ring)) if ring else ():
            if candidate.store_id in found or not _suitable(candidate, service):
                continue
            open_now = is_open(candidate.opening_hours, now_ts)
            if open_now or include_closed:
                distance = haversine_m(lat, lng, candidate.lat, candidate.lng)
                found[candidate.store_id] = Ranked(candidate, distance, open_now)
        ordered = sorted(found.values(), key=lambda e: rank_key(e, open_first))
        next_ring = set(h3.grid_disk(origin, r + 1)) - in_disk
        ring_distances = frame.cell_distances_m(next_ring)
        bound = min(ring_distances.values()) - BOUND_MARGIN_M
        if len(ordered) >= k:
            kth = ordered[k - 1]
            if kth.distance_m <= min(bound, skipped_m) and (kth.open_now or not closed_go_last):
                return NearestResult(tuple(ordered[:k]), tuple(rings), True, CERTAIN, max(0.0, min(bound, skipped_m)))
        if bound >= max_radius_m or r >= max_rings:
            stop, radius = (MAX_RADIUS, max_radius_m) if bound >= max_radius_m else (MAX_RINGS, max(bound, 0.0))
            within = tuple(e for e in ordered if e.distance_m <= radius)[:k]
            return NearestResult(within, tuple(rings), False, stop, radius)
        in_disk |= next_ring
        r += 1


# --- route-traffic: fair assignment -----------------------------------------------

@dataclass(frozen=True)
class Assignment:
    customer_id: str
    store_id: str | None      # None: nobody could take the customer (see reason)
    dealer_id: str | None
    distance_m: float | None
    reason: str


def _rendezvous(customer_id: str, store_id: str) -> int:
    """A stable pseudo-random number per (customer, store): the same in every process
    (unlike ``hash``), and uniform, so ties split evenly across customers."""
    return int.from_bytes(hashlib.sha256(f"{customer_id}\x1f{store_id}".encode()).digest()[:8], "big")


def assign_store(customer_id: str, candidates: Sequence[Ranked], *, assigned_today: Mapping[str, int],
                 caps: Mapping[str, int] | None = None, default_cap: int | None = None,
                 tolerance_m: float = 500.0, tolerance_ratio: float = 0.0) -> Assignment:
    """Choose one store for a customer nobody owns yet (the job then records it as a
    provisional ``ROUTED`` owner, ``attribution.on_routing``).

    ``candidates``: the customer's ``nearest_stores`` (call it with
    ``include_closed=True, open_first=False``: a routed customer belongs to the nearest
    store whether or not it is open right now). They are re-ordered here by distance,
    then score, then store_id, so the caller's order does not matter.
    ``assigned_today``: store_id → customers routed to it so far today (Beijing day).
    ``caps``: store_id → daily cap, ``default_cap`` for the others (None: no cap).

    The rule. The tolerance of a distance d is max(``tolerance_m``, ``tolerance_ratio`` × d).
    The window is the stores within the tolerance of the nearest store's distance.
    Stores at their cap are skipped. If any store in the window is left, the customer
    goes to the one with the fewest assignments today, ties broken by a hash of
    (customer_id, store_id) then store_id: counted in a batch, this alternates (an
    exact even split); with counts that lag (parallel workers) the hash alone still
    splits evenly and never depends on the order customers arrive in. Score plays no
    part inside the window: stores that near are treated as equals. If every store in
    the window is capped, the window moves to the nearest uncapped store beyond it
    (same rule, reason ``NEAREST_UNCAPPED``); if every candidate is capped, nobody is
    chosen (``ALL_CAPPED``: widen the search with a larger k, or leave the customer for
    tomorrow's counts).
    """
    ordered = sorted({c.store.store_id: c for c in candidates if _suitable(c.store, None)}.values(),
                     key=lambda c: (c.distance_m, -c.store.score, c.store.store_id))
    if not ordered:
        return Assignment(customer_id, None, None, None, NO_CANDIDATES)
    caps = caps or {}

    def uncapped(entry: Ranked) -> bool:
        cap = caps.get(entry.store_id, default_cap)
        return cap is None or assigned_today.get(entry.store_id, 0) < cap

    def window(anchor_m: float) -> list[Ranked]:
        reach = anchor_m + max(tolerance_m, tolerance_ratio * anchor_m)
        return [c for c in ordered if c.distance_m <= reach and uncapped(c)]

    eligible = window(ordered[0].distance_m)
    if len(eligible) > 1:
        reason = ROTATED_WITHIN_TOLERANCE
    elif eligible:
        reason = NEAREST if eligible[0] is ordered[0] else NEAREST_UNCAPPED
    else:
        rest = [c for c in ordered if uncapped(c)]
        if not rest:
            return Assignment(customer_id, None, None, None, ALL_CAPPED)
        eligible, reason = window(rest[0].distance_m), NEAREST_UNCAPPED
    chosen = min(eligible, key=lambda c: (assigned_today.get(c.store_id, 0),
                                           _rendezvous(customer_id, c.store_id), c.store_id))
    return Assignment(customer_id, chosen.store_id, chosen.store.dealer_id, chosen.distance_m, reason)


def assign_batch(customers: Iterable[tuple[str, Sequence[Ranked]]], *, assigned_today: Mapping[str, int],
                 caps: Mapping[str, int] | None = None, default_cap: int | None = None,
                 tolerance_m: float = 500.0, tolerance_ratio: float = 0.0) -> list[Assignment]:
    """``assign_store`` for a run of the job, in the given order, each choice counted
    before the next (``assigned_today`` is not modified)."""
    counts = Counter(assigned_today)
    out = []
    for customer_id, candidates in customers:
        assignment = assign_store(customer_id, candidates, assigned_today=counts, caps=caps,
                                  default_cap=default_cap, tolerance_m=tolerance_m,
                                  tolerance_ratio=tolerance_ratio)
        if assignment.store_id is not None:
            counts[assignment.store_id] += 1
        out.append(assignment)
    return out


@dataclass(frozen=True)
class BalanceReport:
    total: int                                   # assignments seen, including unassigned ones
    assigned: int
    by_dealer: dict[str, int]                    # dealer_id → customers, most first
    by_store: dict[str, int]                     # store_id → customers, most first
    by_dealer_store: dict[str, dict[str, int]]   # dealer_id → store_id → customers
    by_reason: dict[str, int]
    dealer_share: dict[str, float]               # dealer_id → share of the assigned customers

    def to_json(self) -> dict:
        return {"total": self.total, "assigned": self.assigned, "by_dealer": self.by_dealer,
                "by_store": self.by_store, "by_dealer_store": self.by_dealer_store,
                "by_reason": self.by_reason, "dealer_share": self.dealer_share}


def dealer_balance(assignments: Iterable[Assignment]) -> BalanceReport:
    """How the routed traffic was shared: per dealer, per store, per reason."""
    by_dealer: Counter = Counter()
    by_store: Counter = Counter()
    by_reason: Counter = Counter()
    nested: dict[str, Counter] = {}
    total = 0
    for a in assignments:
        total += 1
        by_reason[a.reason] += 1
        if a.store_id is None:
            continue
        dealer = a.dealer_id or ""
        by_dealer[dealer] += 1
        by_store[a.store_id] += 1
        nested.setdefault(dealer, Counter())[a.store_id] += 1
    assigned = sum(by_store.values())

    def ordered(counter: Counter) -> dict[str, int]:
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    return BalanceReport(
        total=total, assigned=assigned, by_dealer=ordered(by_dealer), by_store=ordered(by_store),
        by_dealer_store={d: ordered(nested[d]) for d in sorted(nested)}, by_reason=ordered(by_reason),
        dealer_share={d: n / assigned for d, n in ordered(by_dealer).items()} if assigned else {})
