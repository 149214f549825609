"""The nearest suitable stores around a point (domain rule 4): for
``GET /v1/stores/nearest`` and the ``route-traffic`` job.

The search is ``routing.nearest_stores`` (exact: it stops on a proven lower bound) over
the geo index (``db/store_geo.py``), at a resolution chosen per lookup from the cached
store density (``store_geo.choose_resolution``). Each ring's cells are read through
their parents one resolution up, as merged key ranges: a handful of Queries per lookup
(figures: ``bench/geo_lookup.py``).

Bounds for far-away points and rare services: the search never goes coarser than
``MIN_SEARCH_RES`` (res 4: parents of res 3, ~69 km across, one partition each) and never
farther than ``max_radius_m`` (50 km by default), so an empty region costs at most the
rings covering 50 km at res 4 (2–3 rings), and the reply then lists what lies within
50 km, maybe fewer than asked for.
"""
from __future__ import annotations

from chalicelib.domain import routing
from chalicelib.domain.store_geo import ANY_SERVICE, choose_resolution, parents_to_read, read_plan


class StoreFinder:
    def __init__(self, index, max_radius_m: float = routing.DEFAULT_MAX_RADIUS_M):
        self._index = index
        self._max_radius_m = max_radius_m

    def nearest(self, lat: float, lng: float, *, service: str | None, k: int, now_ts: float,
                include_closed: bool = False, open_first: bool = True, meter=None) -> routing.NearestResult:
        """The ``k`` best active stores offering ``service`` (any store: None) around the
        point; ``meter`` (a ``db.store_geo.ReadMeter``) counts the Queries and read units."""
        indexed_as = service or ANY_SERVICE
        resolution = choose_resolution(lat, lng, self._index.density(indexed_as), want=k)
        read: set[str] = set()

        def fetch(cells):
            parents = parents_to_read(cells, read)
            return self._index.read(read_plan(indexed_as, parents), meter) if parents else ()

        return routing.nearest_stores(lat, lng, k, fetch, service=service, now_ts=now_ts,
                                      include_closed=include_closed, open_first=open_first,
                                      resolution=resolution, max_radius_m=self._max_radius_m)


def nearest_for_customer(lat: float, lng: float, *, service: str | None, limit: int, include_closed: bool,
                         finder: StoreFinder, now: float) -> dict:
    """The reply of ``GET /v1/stores/nearest``: open stores first, nearest first, then
    (``include_closed``) the closed ones."""
    result = finder.nearest(lat, lng, service=service, k=limit, now_ts=now, include_closed=include_closed)
    return {"stores": [{"store_id": entry.store_id, "name": entry.store.name,
                        "distance_m": round(entry.distance_m), "services": sorted(entry.store.services),
                        "open_now": entry.open_now, "dealer_id": entry.store.dealer_id,
                        "lat": entry.store.lat, "lng": entry.store.lng,
                        "service_score": int(entry.store.score)}
                       for entry in result.stores],
            "complete": result.complete, "radius_m": round(result.radius_m)}
