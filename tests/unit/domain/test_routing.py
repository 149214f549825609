"""Nearest-store routing (M11): distances, opening hours, the exact ring search against
brute force, and route-traffic's fair assignment — the pure rules of ``domain/routing.py``.

The store index is an in-memory dict cell → stores; ``fetch`` reads it the way a
``(cell, service)`` table would be read."""
import math
import random
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.network import ACTIVE, DEACTIVATED, SERVICES, WEEKDAYS
from chalicelib.domain.routing import (ALL_CAPPED, CERTAIN, COARSE_CELL_RESOLUTION, EARTH_RADIUS_M, MAX_RADIUS,
                                       NEAREST, NEAREST_UNCAPPED, NO_CANDIDATES, ROTATED_WITHIN_TOLERANCE, Assignment,
                                       Candidate, Ranked, assign_batch, assign_store, dealer_balance, haversine_m,
                                       is_open, nearest_stores, rank_key, rings_for_radius, unread_lower_bound_m)
from chalicelib.domain.time import BEIJING

ROOT = Path(__file__).resolve().parents[3]
ALL_DAY = {d: [["10:00", "22:00"]] for d in WEEKDAYS}
OFFICE = {**{d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]}, "sat": [["10:00", "16:00"]]}
NIGHT = {d: [["20:00", "04:00"]] for d in WEEKDAYS}
# A Sunday, 14:00 in Beijing: ALL_DAY stores are open, OFFICE and NIGHT ones closed
SUNDAY_2PM = datetime(2026, 6, 7, 14, 0, tzinfo=BEIJING).timestamp()
CHINA = (18.0, 53.0, 73.0, 135.0)
CITIES = {  # (lat, lng); Dalian sits beside the H3 pentagon in the Bohai Sea
    "Beijing": (39.9042, 116.4074), "Shanghai": (31.2304, 121.4737), "Guangzhou": (23.1291, 113.2644),
    "Shenzhen": (22.5431, 114.0579), "Chengdu": (30.5728, 104.0668), "Wuhan": (30.5928, 114.3055),
    "Dalian": (38.9140, 121.6147), "Urumqi": (43.8256, 87.6168), "Harbin": (45.8038, 126.5349),
    "Kunming": (25.0389, 102.7183), "Lhasa": (29.6520, 91.1721), "Haikou": (20.0440, 110.1999),
}
PENTAGON_BOHAI = next(c for c in h3.get_pentagons(6) if abs(h3.cell_to_latlng(c)[0] - 39.1) < 0.5)


def at_beijing(y, mo, d, hh, mm=0, ss=0.0):
    return datetime(y, mo, d, hh, mm, tzinfo=BEIJING).timestamp() + ss


def store(store_id, lat, lng, services=("pickup",), hours=ALL_DAY, status=ACTIVE, score=0.0, dealer_id="dealer-a"):
    return Candidate(store_id, lat, lng, tuple(services), hours, status, score, dealer_id)


class Index:
    """cell → stores at one resolution; counts what a search reads."""

    def __init__(self, stores, resolution=6):
        self.cells, self.calls = {}, []
        for s in stores:
            self.cells.setdefault(h3.latlng_to_cell(s.lat, s.lng, resolution), []).append(s)

    def fetch(self, cells):
        self.calls.append(tuple(cells))
        return [s for cell in cells for s in self.cells.get(cell, ())]


def brute_force(lat, lng, stores, k, *, service, now_ts, include_closed=False, open_first=True, radius_m=math.inf):
    ranked = []
    for s in stores:
        if s.status != ACTIVE or service not in s.services:
            continue
        open_now = is_open(s.opening_hours, now_ts)
        if not (open_now or include_closed):
            continue
        d = haversine_m(lat, lng, s.lat, s.lng)
        if d <= radius_m:
            ranked.append(Ranked(s, d, open_now))
    return [e.store_id for e in sorted(ranked, key=lambda e: rank_key(e, open_first))[:k]]


def ids(result):
    return [e.store_id for e in result.stores]


# --- haversine --------------------------------------------------------------------

def test_haversine_known_values():
    one_degree = EARTH_RADIUS_M * math.pi / 180                     # 111,195.08 m
    assert haversine_m(30, 104, 30, 104) == 0
    assert haversine_m(0, 0, 1, 0) == pytest.approx(one_degree, abs=1e-6)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(one_degree, abs=1e-6)
    assert haversine_m(30, 104, 31, 104) == pytest.approx(one_degree, abs=1e-6)   # along a meridian
    assert haversine_m(60, 10, 60, 11) == pytest.approx(55_597.5, abs=0.5)       # a degree of longitude at 60°N
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)  # antipodes
    assert haversine_m(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    # Beijing (Tiananmen) to Shanghai (People's Square): 1,067 km as the crow flies
    assert haversine_m(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1_067_300, abs=1_000)


@given(st.floats(-89, 89), st.floats(-179, 179), st.floats(-89, 89), st.floats(-179, 179))
def test_haversine_is_symmetric_and_agrees_with_the_vector_formula(lat1, lng1, lat2, lng2):
    d = haversine_m(lat1, lng1, lat2, lng2)
    assert d == pytest.approx(haversine_m(lat2, lng2, lat1, lng1), abs=1e-6)
    u = [(math.cos(math.radians(a)) * math.cos(math.radians(b)), math.cos(math.radians(a)) * math.sin(math.radians(b)),
          math.sin(math.radians(a))) for a, b in ((lat1, lng1), (lat2, lng2))]
    cross = [u[0][1] * u[1][2] - u[0][2] * u[1][1], u[0][2] * u[1][0] - u[0][0] * u[1][2],
             u[0][0] * u[1][1] - u[0][1] * u[1][0]]
    angle = math.atan2(math.sqrt(sum(c * c for c in cross)), sum(a * b for a, b in zip(*u)))
    assert d == pytest.approx(EARTH_RADIUS_M * angle, abs=1e-3)


# --- opening hours ----------------------------------------------------------------

def test_intervals_open_at_their_start_and_close_at_their_end():
    assert not is_open(ALL_DAY, at_beijing(2026, 6, 1, 9, 59, 59.999))
    assert is_open(ALL_DAY, at_beijing(2026, 6, 1, 10, 0))
    assert is_open(ALL_DAY, at_beijing(2026, 6, 1, 21, 59, 59.999))
    assert not is_open(ALL_DAY, at_beijing(2026, 6, 1, 22, 0))


def test_a_day_left_out_and_empty_hours_are_closed():
    assert is_open(OFFICE, at_beijing(2026, 6, 6, 12))          # Saturday
    assert not is_open(OFFICE, at_beijing(2026, 6, 7, 12))      # Sunday: not listed
    assert not is_open({}, at_beijing(2026, 6, 1, 12))
    assert not is_open(None, at_beijing(2026, 6, 1, 12))
    assert not is_open({"mon": []}, at_beijing(2026, 6, 1, 12))
    assert not is_open({"mon": [["12:00", "12:00"]]}, at_beijing(2026, 6, 1, 12))   # start == end is empty


def test_midnight_and_an_end_of_24_00():
    whole_monday = {"mon": [["00:00", "24:00"]]}
    assert is_open(whole_monday, at_beijing(2026, 6, 1, 0, 0))                 # Monday 00:00:00
    assert is_open(whole_monday, at_beijing(2026, 6, 1, 23, 59, 59.999))
    assert not is_open(whole_monday, at_beijing(2026, 6, 2, 0, 0))             # Tuesday midnight: closed
    assert not is_open(whole_monday, at_beijing(2026, 5, 31, 23, 59, 59.999))  # Sunday night
    late = {"mon": [["18:00", "24:00"]], "tue": [["00:00", "02:00"]]}
    assert is_open(late, at_beijing(2026, 6, 1, 23, 59))
    assert is_open(late, at_beijing(2026, 6, 2, 0, 0))                          # continues on Tuesday's own hours
    assert not is_open(late, at_beijing(2026, 6, 2, 2, 0))


def test_overnight_intervals_spill_into_the_next_day_and_only_that_day():
    friday_night = {"fri": [["20:00", "02:00"]]}
    assert not is_open(friday_night, at_beijing(2026, 6, 5, 19, 59))
    assert is_open(friday_night, at_beijing(2026, 6, 5, 20, 0))
    assert is_open(friday_night, at_beijing(2026, 6, 6, 0, 0))                 # Saturday, after midnight
    assert is_open(friday_night, at_beijing(2026, 6, 6, 1, 59, 59.9))
    assert not is_open(friday_night, at_beijing(2026, 6, 6, 2, 0))
    assert not is_open(friday_night, at_beijing(2026, 6, 5, 1, 0))             # Friday early morning: Thursday's
    sunday_night = {"sun": [["22:00", "03:00"]]}
    assert is_open(sunday_night, at_beijing(2026, 6, 8, 2, 30))                # Monday 02:30: Sunday spills over
    assert not is_open(sunday_night, at_beijing(2026, 6, 8, 3, 0))
    assert not is_open(sunday_night, at_beijing(2026, 6, 7, 2, 30))            # Sunday 02:30: Saturday had no hours


def test_the_day_is_the_beijing_day_not_the_utc_day():
    # Monday 07:30 in Beijing is Sunday 23:30 UTC
    moment = at_beijing(2026, 6, 1, 7, 30)
    assert datetime.fromtimestamp(moment, timezone.utc).strftime("%a %H:%M") == "Sun 23:30"
    assert is_open({"mon": [["07:00", "08:00"]]}, moment)
    assert not is_open({"sun": [["20:00", "24:00"]]}, moment)
    assert not is_open({"sun": [["23:00", "24:00"]]}, moment)
    # Monday 23:30 UTC is already Tuesday 07:30 in Beijing
    assert is_open({"tue": [["07:00", "08:00"]]}, at_beijing(2026, 6, 2, 7, 30))


def _reference_is_open(hours, ts):
    """The same rule written with calendar objects, as a second opinion."""
    now = datetime.fromtimestamp(ts, BEIJING)
    for back in (0, 1):
        day = now.date() - timedelta(days=back)
        midnight = datetime.combine(day, time(0), BEIJING)
        for start, end in hours.get(WEEKDAYS[day.weekday()], ()):
            opens = midnight + timedelta(minutes=int(start[:2]) * 60 + int(start[3:]))
            closes = midnight + timedelta(minutes=int(end[:2]) * 60 + int(end[3:]))
            if closes < opens:
                closes += timedelta(days=1)
            if opens <= now < closes:
                return True
    return False


_hhmm = st.integers(0, 1440).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
_hours = st.dictionaries(st.sampled_from(WEEKDAYS), st.lists(st.lists(_hhmm, min_size=2, max_size=2), max_size=3))
_moment = st.one_of(st.floats(-2e9, 4e9, allow_nan=False),
                    st.tuples(st.integers(-30_000_000, 60_000_000), st.sampled_from([0, -0.001, 0.5, 59.999]))
                    .map(lambda t: t[0] * 60 + t[1]))


@settings(max_examples=400, deadline=None)
@given(_hours, _moment)
def test_is_open_agrees_with_a_calendar_reading_of_the_hours(hours, ts):
    assert is_open(hours, ts) == _reference_is_open(hours, ts)


# --- the lower bound --------------------------------------------------------------

def _vector(lat, lng):
    phi, lam = math.radians(lat), math.radians(lng)
    return [math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)]


def _latlng(v):
    return math.degrees(math.atan2(v[2], math.hypot(v[0], v[1]))), math.degrees(math.atan2(v[1], v[0]))


_point = st.one_of(st.tuples(st.floats(18, 53), st.floats(73, 135)),
                   st.tuples(st.floats(38.6, 39.6), st.floats(121.8, 122.8)))   # around the pentagon


@settings(max_examples=60, deadline=None)
@given(_point, st.integers(0, 3), st.sampled_from([3, 4, 5, 6, 7]), st.integers(0, 2**32 - 1))
def test_no_point_of_an_unread_cell_is_closer_than_the_bound(point, r, resolution, seed):
    lat, lng = point
    origin = h3.latlng_to_cell(lat, lng, resolution)
    read = set(h3.grid_disk(origin, r))
    next_ring = set(h3.grid_disk(origin, r + 1)) - read
    bound = unread_lower_bound_m(lat, lng, next_ring)
    rng = random.Random(seed)
    closest = math.inf
    for cell in next_ring:   # the closest unread points sit on the edges of ring r + 1: sample them densely
        vertices = [_vector(*v) for v in h3.cell_to_boundary(cell)]
        centre = _vector(*h3.cell_to_latlng(cell))
        for a, b in zip(vertices, vertices[1:] + vertices[:1]):
            for t in [i / 16 for i in range(16)] + [rng.random() for _ in range(4)]:
                on_edge = [x + t * (y - x) for x, y in zip(a, b)]            # on the great-circle arc a-b
                inside = [x + 1e-6 * (c - x) for x, c in zip(on_edge, centre)]  # a hair inside this cell
                jitter = 10 ** rng.uniform(-9, -6)                             # or either side of the edge
                either = [x + rng.uniform(-jitter, jitter) for x in on_edge]
                for qlat, qlng in (_latlng(inside), _latlng(either)):
                    if h3.latlng_to_cell(qlat, qlng, resolution) not in read:
                        d = haversine_m(lat, lng, qlat, qlng)
                        assert d >= bound
                        closest = min(closest, d)
    # and it is not uselessly loose: within a tenth of an edge of the closest point sampled
    assert closest - bound < 0.1 * h3.average_hexagon_edge_length(resolution, unit="m")


def test_rings_step_around_the_pentagon_like_anywhere_else():
    lat, lng = h3.cell_to_latlng(PENTAGON_BOHAI)
    stores = [store(f"s{i}", lat + 0.15 * math.cos(i), lng + 0.15 * math.sin(i)) for i in range(40)]
    index = Index(stores)
    result = nearest_stores(lat, lng, 10, index.fetch, service="pickup", now_ts=SUNDAY_2PM)
    assert ids(result) == brute_force(lat, lng, stores, 10, service="pickup", now_ts=SUNDAY_2PM)
    assert [len(r) for r in result.rings][:3] == [1, 5, 10]


# --- the ring search: parity with brute force -------------------------------------

def _near_edge(rng, lat, lng, spread_deg):
    """A point within a metre of a res-6 cell's boundary (a vertex or a point of an edge)."""
    cell = h3.latlng_to_cell(lat + rng.uniform(-spread_deg, spread_deg), lng + rng.uniform(-spread_deg, spread_deg), 6)
    vertices = h3.cell_to_boundary(cell)
    i, t = rng.randrange(len(vertices)), rng.choice([0.0, 0.5, rng.random()])
    (alat, alng), (blat, blng) = vertices[i], vertices[(i + 1) % len(vertices)]
    nudge = rng.choice([0.0, 1e-6, -1e-6, 1e-8])
    return alat + t * (blat - alat) + nudge, alng + t * (blng - alng) - nudge


def _china_point(rng):
    kind = rng.random()
    if kind < 0.4:
        return rng.uniform(*CHINA[:2]), rng.uniform(*CHINA[2:])
    lat, lng = CITIES[rng.choice(sorted(CITIES))]
    if kind < 0.8:   # Gaussian, σ ≈ 3 km
        return rng.gauss(lat, 0.027), rng.gauss(lng, 0.027 / math.cos(math.radians(lat)))
    return _near_edge(rng, lat, lng, 0.1)


@pytest.fixture(scope="module")
def world():
    rng = random.Random(20260611)
    stores = []
    for i in range(3000):
        lat, lng = _china_point(rng)
        if i % 10 == 9:   # co-located with an earlier store: exact distance ties
            twin = stores[rng.randrange(len(stores))]
            lat, lng = twin.lat, twin.lng
        services = tuple(s for s, p in zip(SERVICES, (0.9, 0.5, 0.3, 0.2, 0.1)) if rng.random() < p)
        hours = rng.choices([ALL_DAY, OFFICE, NIGHT], [0.7, 0.15, 0.15])[0]
        status = DEACTIVATED if rng.random() < 0.05 else ACTIVE
        stores.append(store(f"st{i:05d}", lat, lng, services, hours, status, rng.choice([0.0, 0.5, 1.0]),
                            f"dealer-{i % 37}"))
    points = [_china_point(rng) for _ in range(300)]
    return stores, points


def _parity(world, resolution, max_radius_m, **query):
    stores, points = world
    index = Index(stores, resolution)
    mismatches, complete = [], 0
    for lat, lng in points:
        result = nearest_stores(lat, lng, 5, index.fetch, now_ts=SUNDAY_2PM, resolution=resolution,
                                max_radius_m=max_radius_m, **query)
        radius = math.inf if result.complete else max_radius_m
        expected = brute_force(lat, lng, stores, 5, now_ts=SUNDAY_2PM, radius_m=radius, **query)
        complete += result.complete
        if ids(result) != expected:
            mismatches.append(((lat, lng), ids(result), expected))
        assert all(e.distance_m <= max_radius_m for e in result.stores) or result.complete
    return mismatches, complete


@pytest.mark.parametrize("query", [dict(service="pickup"),
                                   dict(service="repair", include_closed=True),
                                   dict(service="trial", include_closed=True, open_first=False)],
                         ids=["open-pickup", "repair-closed-last", "trial-by-distance"])
def test_the_ring_search_finds_exactly_the_brute_force_top_5_within_the_radius(world, query):
    mismatches, complete = _parity(world, 6, 50_000, **query)
    assert mismatches == []
    assert complete > 100   # the city points are answered in full, not just cut at the radius


def test_on_a_coarse_index_the_ring_search_finds_exactly_the_global_top_5(world):
    mismatches, complete = _parity(world, COARSE_CELL_RESOLUTION, 3_000_000, service="pickup")
    assert mismatches == []
    assert complete == 300


def test_a_store_just_outside_the_first_ring_is_not_missed():
    origin = h3.latlng_to_cell(*CITIES["Chengdu"], 6)
    (clat, clng) = h3.cell_to_latlng(origin)
    (alat, alng), (blat, blng) = h3.cell_to_boundary(origin)[:2]
    # the customer stands just inside the middle of one edge of their cell
    lat, lng = clat + 0.97 * ((alat + blat) / 2 - clat), clng + 0.97 * ((alng + blng) / 2 - clng)
    ring1 = set(h3.grid_ring(origin, 1))
    ring2 = set(h3.grid_ring(origin, 2))
    # nearest: just past the nearest corner of the second ring; farther: the far side of the first ring
    vertex, cell2 = min(((v, c) for c in ring2 for v in h3.cell_to_boundary(c)),
                        key=lambda vc: haversine_m(lat, lng, *vc[0]))
    c2lat, c2lng = h3.cell_to_latlng(cell2)
    near = store("just-outside", vertex[0] + 0.02 * (c2lat - vertex[0]), vertex[1] + 0.02 * (c2lng - vertex[1]))
    far_cell = max(ring1, key=lambda c: haversine_m(lat, lng, *h3.cell_to_latlng(c)))
    far = store("first-ring", *h3.cell_to_latlng(far_cell))
    assert h3.latlng_to_cell(near.lat, near.lng, 6) == cell2
    assert haversine_m(lat, lng, near.lat, near.lng) < haversine_m(lat, lng, far.lat, far.lng)

    result = nearest_stores(lat, lng, 1, Index([near, far]).fetch, service="pickup", now_ts=SUNDAY_2PM)
    assert ids(result) == ["just-outside"] and result.stop == CERTAIN and len(result.rings) >= 3


def test_a_far_point_stops_at_the_maximum_radius_and_says_so():
    lat, lng = 39.0, 83.0   # the Taklamakan desert
    stores = [store("at-45km", lat + 45_000 / 111_195, lng), store("at-80km", lat, lng + 80_000 / 86_400)]
    index = Index(stores)
    result = nearest_stores(lat, lng, 5, index.fetch, service="pickup", now_ts=SUNDAY_2PM)
    assert ids(result) == ["at-45km"]          # the 80 km store is not "near", even if its cell was read
    assert (result.stop, result.complete, result.radius_m) == (MAX_RADIUS, False, 50_000)
    assert len(result.rings) <= 12 and result.cells_read <= 400
    assert len(index.calls) == len(result.rings)   # one fetch per ring
    # rings are disjoint and ring r is at grid distance r
    origin = result.rings[0][0]
    assert all(h3.grid_distance(origin, c) == r for r, ring in enumerate(result.rings) for c in ring)
    assert result.cells_read == len({c for ring in result.rings for c in ring})
    wider = nearest_stores(lat, lng, 5, index.fetch, service="pickup", now_ts=SUNDAY_2PM, max_radius_m=100_000)
    assert ids(wider) == ["at-45km", "at-80km"]


def test_the_ring_guard_caps_the_work_even_for_a_huge_radius():
    result = nearest_stores(39.0, 83.0, 1, Index([]).fetch, service="pickup", now_ts=SUNDAY_2PM,
                            max_radius_m=200_000, max_rings=4)
    assert len(result.rings) == 5 and not result.complete and result.stop == "MAX_RINGS"
    assert 0 < result.radius_m < 200_000
    assert rings_for_radius(50_000, 6) >= 14   # never before 50 km is covered at res 6 (the bench needs ≤ 14)


def test_a_rare_service_is_found_further_out_and_the_coarse_index_reaches_beyond_the_radius():
    lat, lng = CITIES["Wuhan"]
    rng = random.Random(7)
    crowd = [store(f"pickup-{i}", rng.gauss(lat, 0.03), rng.gauss(lng, 0.03)) for i in range(300)]
    trial_20km = store("trial-20km", lat + 20_000 / 111_195, lng, services=("pickup", "trial"))
    trial_120km = store("trial-120km", lat - 120_000 / 111_195, lng, services=("trial",))
    stores = crowd + [trial_20km, trial_120km]
    result = nearest_stores(lat, lng, 1, Index(stores).fetch, service="trial", now_ts=SUNDAY_2PM)
    assert ids(result) == ["trial-20km"] and result.complete
    two = nearest_stores(lat, lng, 2, Index(stores).fetch, service="trial", now_ts=SUNDAY_2PM)
    assert ids(two) == ["trial-20km"] and two.stop == MAX_RADIUS
    coarse = nearest_stores(lat, lng, 2, Index(stores, COARSE_CELL_RESOLUTION).fetch, service="trial",
                            now_ts=SUNDAY_2PM, resolution=COARSE_CELL_RESOLUTION, max_radius_m=2_000_000)
    assert ids(coarse) == ["trial-20km", "trial-120km"] and coarse.complete and len(coarse.rings) <= 3


def test_closed_stores_follow_the_open_ones_only_when_asked():
    lat, lng = CITIES["Chengdu"]
    north = lambda m: lat + m / 111_195   # noqa: E731
    stores = [store("closed-100m", north(100), lng, hours=OFFICE), store("open-900m", north(900), lng),
              store("closed-300m", north(300), lng, hours=NIGHT), store("open-4km", north(4000), lng)]
    fetch = Index(stores).fetch
    query = dict(service="pickup", now_ts=SUNDAY_2PM)
    assert ids(nearest_stores(lat, lng, 10, fetch, **query)) == ["open-900m", "open-4km"]
    with_closed = nearest_stores(lat, lng, 10, fetch, include_closed=True, **query)
    assert ids(with_closed) == ["open-900m", "open-4km", "closed-100m", "closed-300m"]
    assert [e.open_now for e in with_closed.stores] == [True, True, False, False]
    by_distance = nearest_stores(lat, lng, 10, fetch, include_closed=True, open_first=False, **query)
    assert ids(by_distance) == ["closed-100m", "closed-300m", "open-900m", "open-4km"]
    # closed-last with k=3: the third is closed, so certainty needs the whole radius read
    three = nearest_stores(lat, lng, 3, fetch, include_closed=True, **query)
    assert ids(three) == ["open-900m", "open-4km", "closed-100m"] and three.stop == MAX_RADIUS


def test_deactivated_stores_and_stores_without_the_service_are_never_listed_whatever_the_index_returns():
    lat, lng = CITIES["Wuhan"]
    stores = [store("gone", lat, lng, status=DEACTIVATED), store("no-repair", lat + 0.001, lng),
              store("repair", lat + 0.002, lng, services=("repair",))]
    everything = lambda cells: stores + stores   # noqa: E731  (ignores the cells, returns duplicates)
    result = nearest_stores(lat, lng, 5, everything, service="repair", now_ts=SUNDAY_2PM)
    assert ids(result) == ["repair"]


def test_equal_distances_rank_by_score_then_store_id():
    lat, lng = CITIES["Shanghai"]
    spot = (lat + 0.01, lng)
    stores = [store("b", *spot, score=0.5), store("a", *spot, score=0.5), store("c", *spot, score=0.9),
              store("z-nearer", lat + 0.005, lng, score=0.0)]
    assert ids(nearest_stores(lat, lng, 4, Index(stores).fetch, service="pickup", now_ts=SUNDAY_2PM)) == \
        ["z-nearer", "c", "a", "b"]


def test_the_search_is_deterministic_whatever_order_the_index_returns():
    stores = [store(f"s{i}", 30.57 + 0.01 * (i % 7), 104.06 + 0.01 * (i % 5), score=i % 3) for i in range(60)]
    index = Index(stores)
    shuffled = lambda cells: random.Random(len(cells)).sample(index.fetch(cells), len(index.fetch(cells)))  # noqa
    first = nearest_stores(30.6, 104.08, 12, index.fetch, service="pickup", now_ts=SUNDAY_2PM)
    again = nearest_stores(30.6, 104.08, 12, shuffled, service="pickup", now_ts=SUNDAY_2PM)
    assert first == again


@pytest.mark.parametrize("bad", [dict(k=0), dict(max_radius_m=0), dict(max_radius_m=6_000_000)])
def test_nonsense_searches_are_refused(bad):
    args = {"k": 1, "max_radius_m": 50_000, **bad}
    with pytest.raises(ValueError):
        nearest_stores(30, 104, args.pop("k"), Index([]).fetch, service="pickup", now_ts=0, **args)


# --- route-traffic: fair assignment -----------------------------------------------

def _customers(n, lat, lng, seed=3, spread_deg=0.02):
    rng = random.Random(seed)
    return [(f"cu_{i:05d}", rng.gauss(lat, spread_deg), rng.gauss(lng, spread_deg)) for i in range(n)]


def _candidates(stores, lat, lng):
    return [Ranked(s, haversine_m(lat, lng, s.lat, s.lng), True) for s in stores]


def _twins():
    lat, lng = CITIES["Chengdu"]
    a = store("twin-a", lat, lng, dealer_id="dealer-shu")
    b = store("twin-b", lat + 50 / 111_195, lng, dealer_id="dealer-yangtze")   # 50 m north
    return a, b


def test_two_stores_50_m_apart_split_1000_customers_evenly():
    a, b = _twins()
    index = Index([a, b])
    batch = [(cid, nearest_stores(lat, lng, 2, index.fetch, service="pickup", now_ts=SUNDAY_2PM,
                                  include_closed=True, open_first=False).stores)
             for cid, lat, lng in _customers(1000, a.lat, a.lng)]
    report = dealer_balance(assign_batch(batch, assigned_today={}))
    assert report.assigned == 1000
    assert all(450 <= n <= 550 for n in report.by_store.values())
    assert set(report.by_reason) == {ROTATED_WITHIN_TOLERANCE}
    # counts that lag behind (parallel workers): the customer hash alone still splits evenly
    lagging = [assign_store(cid, cands, assigned_today={}) for cid, cands in batch]
    assert all(450 <= n <= 550 for n in dealer_balance(lagging).by_store.values())


def test_caps_are_respected_and_the_next_stores_take_the_overflow():
    a, b = _twins()
    c = store("third-2km", a.lat + 2_000 / 111_195, a.lng, dealer_id="dealer-chu")
    customers = _customers(1000, a.lat, a.lng, spread_deg=0.001)   # all within ~400 m of the twins
    batch = [(cid, _candidates([a, b, c], lat, lng)) for cid, lat, lng in customers]
    out = assign_batch(batch, assigned_today={"twin-a": 50}, caps={"twin-a": 300}, default_cap=350)
    report = dealer_balance(out)
    assert report.by_store == {"twin-b": 350, "third-2km": 350, "twin-a": 250}
    assert report.by_reason[ALL_CAPPED] == 50 and report.assigned == 950
    assert report.by_dealer_store["dealer-yangtze"] == {"twin-b": 350}
    assert {a.reason for a in out if a.store_id == "third-2km"} == {NEAREST_UNCAPPED}
    assert all(a.store_id is None for a in out[-50:])


def test_assignment_reasons():
    a, b = _twins()
    far = store("far", a.lat + 0.05, a.lng)
    here = (a.lat - 0.01, a.lng)
    only_a = assign_store("cu_1", _candidates([a, far], *here), assigned_today={})
    assert (only_a.store_id, only_a.reason, only_a.dealer_id) == ("twin-a", NEAREST, "dealer-shu")
    assert assign_store("cu_1", _candidates([a, b], *here), assigned_today={}).reason == ROTATED_WITHIN_TOLERANCE
    capped = assign_store("cu_1", _candidates([a, b], *here), assigned_today={"twin-a": 3}, caps={"twin-a": 3})
    assert (capped.store_id, capped.reason) == ("twin-b", NEAREST_UNCAPPED)
    assert assign_store("cu_1", [], assigned_today={}).reason == NO_CANDIDATES
    assert assign_store("cu_1", _candidates([a], *here), assigned_today={"twin-a": 1},
                        default_cap=1) == Assignment("cu_1", None, None, None, ALL_CAPPED)


def test_the_tolerance_is_metres_or_a_share_of_the_distance_whichever_is_wider():
    base_lat, lng = 30.0, 104.0
    near = store("at-10km", base_lat + 10_000 / 111_195, lng)
    next_ = store("at-10.8km", base_lat + 10_800 / 111_195, lng)
    cands = _candidates([near, next_], base_lat, lng)
    assert assign_store("cu_1", cands, assigned_today={"at-10km": 5}).store_id == "at-10km"   # 800 m > 500 m
    rotated = assign_store("cu_1", cands, assigned_today={"at-10km": 5}, tolerance_ratio=0.1)
    assert (rotated.store_id, rotated.reason) == ("at-10.8km", ROTATED_WITHIN_TOLERANCE)       # 10 % of 10 km


def test_assignment_is_deterministic_and_ignores_the_candidates_order():
    a, b = _twins()
    c = store("c", a.lat + 0.0001, a.lng + 0.0001, dealer_id="dealer-chu")
    for cid, lat, lng in _customers(50, a.lat, a.lng):
        cands = _candidates([a, b, c], lat, lng)
        counts = {"twin-a": 2, "twin-b": 2, "c": 2}
        first = assign_store(cid, cands, assigned_today=counts)
        assert first == assign_store(cid, list(reversed(cands)), assigned_today=dict(counts))
        assert first == assign_store(cid, cands, assigned_today=counts)


def test_the_balance_report_counts_per_dealer_and_store():
    out = [Assignment("c1", "s1", "d1", 10.0, NEAREST), Assignment("c2", "s2", "d1", 20.0, ROTATED_WITHIN_TOLERANCE),
           Assignment("c3", "s3", "d2", 5.0, NEAREST), Assignment("c4", None, None, None, ALL_CAPPED),
           Assignment("c5", "s1", "d1", 1.0, NEAREST)]
    report = dealer_balance(out)
    assert (report.total, report.assigned) == (5, 4)
    assert report.by_dealer == {"d1": 3, "d2": 1}
    assert report.by_store == {"s1": 2, "s2": 1, "s3": 1}
    assert report.by_dealer_store == {"d1": {"s1": 2, "s2": 1}, "d2": {"s3": 1}}
    assert report.by_reason == {NEAREST: 3, ROTATED_WITHIN_TOLERANCE: 1, ALL_CAPPED: 1}
    assert report.dealer_share == {"d1": 0.75, "d2": 0.25}
    assert dealer_balance([]).to_json()["dealer_share"] == {}


def test_importing_routing_loads_no_h3():
    code = "import sys, chalicelib.domain.routing; print('h3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
