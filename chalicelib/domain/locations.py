"""Where a customer is, as routing needs it (domain rule 4, issue M11): coarse on purpose.

A customer says where they are in one of two forms (``PUT /v1/me/location``), and a
scan with coordinates says it too:

* **coordinates** ``{"lat", "lng"}`` are never stored as given. They become the H3 cell
  of resolution ``LOCATION_CELL_RESOLUTION`` — the resolution a scan's ``area_cell``
  already uses (~250 km², a district) — and that cell's centre. Everyone in the district
  shares one point, so what is kept cannot trace a person; routing reads the centre as
  where the customer is (so a routed customer's distance is the centre's, good to a few
  kilometres: the tolerance window treats stores that near as equals anyway).
* a **city** ``{"city"}``: a city where the brand has a store, as the stores spell it.
  The text is trimmed and must then match a store's ``city`` exactly ("Chengdu", not
  "chengdu" or "成都"): the stores' own spelling is the only list of cities there is.
  A city-only customer is routed among that city's active stores, all taken as equally
  near (``route-traffic``).

The newest location wins: each write is conditional on ``located_at`` being older.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from chalicelib.errors import ValidationFailed

LOCATION_CELL_RESOLUTION = 5     # = services.scans.AREA_CELL_RESOLUTION: a district, never a track
CITY_MAX_CHARS = 40
ROUTE_SHARDS = 10                # the pending customers' sparse index is spread over R0..R9
CENTRE_DECIMALS = 6              # a cell centre to ~0.1 m: the cell is what carries meaning

# Forms of a stored location
CELL = "CELL"                    # a coarse cell and its centre
CITY = "CITY"                    # a city, nothing finer

# Where a location came from
STATED = "STATED"                # the customer said so (PUT /v1/me/location)
SCAN = "SCAN"                    # the coordinates sent with a scan


@dataclass(frozen=True)
class StatedPlace:
    """What a request said, checked: coordinates (lat, lng) or a city, exactly one."""
    lat: float | None = None
    lng: float | None = None
    city: str | None = None


@dataclass(frozen=True)
class CoarseLocation:
    """A location as stored: a cell and its centre, or a city."""
    kind: str                    # CELL | CITY
    source: str                  # STATED | SCAN
    located_at: float
    cell: str | None = None
    lat: float | None = None     # the cell's centre, never the coordinates given
    lng: float | None = None
    city: str | None = None

    def to_json(self) -> dict:
        from chalicelib.domain.time import rfc3339

        return {"kind": self.kind, "cell": self.cell, "lat": self.lat, "lng": self.lng, "city": self.city,
                "resolution": LOCATION_CELL_RESOLUTION if self.kind == CELL else None,
                "source": self.source, "located_at": rfc3339(self.located_at)}


def check_place(body: dict) -> StatedPlace:
    """``{"lat", "lng"}`` or ``{"city"}``: exactly one form, or a 400 that says what is wrong."""
    from chalicelib.domain.geo import check_coordinates

    has_point = "lat" in body or "lng" in body
    if has_point and "city" in body:
        raise ValidationFailed("Send either 'lat' and 'lng' or 'city', not both.", fields=sorted(body))
    if has_point:
        lat, lng = check_coordinates(body.get("lat"), body.get("lng"))
        return StatedPlace(lat=lat, lng=lng)
    if "city" not in body:
        raise ValidationFailed("Send 'lat' and 'lng', or 'city'.", fields=["lat", "lng", "city"])
    city = body["city"]
    if not isinstance(city, str):
        raise ValidationFailed("'city' must be a string.", field="city")
    city = city.strip()
    if not 1 <= len(city) <= CITY_MAX_CHARS or not city.isprintable():
        raise ValidationFailed(f"'city' must be 1 to {CITY_MAX_CHARS} printable characters.", field="city")
    return StatedPlace(city=city)


def unknown_city(city: str) -> ValidationFailed:
    return ValidationFailed(f"'city' must be a city where the brand has a store, spelt as the store list spells "
                            f"it (e.g. \"Chengdu\"); {city!r} is not one.", field="city")


def coarsen(lat: float, lng: float, *, source: str, at: float) -> CoarseLocation:
    """The district around a point: its H3 cell and that cell's centre."""
    import h3

    return district(h3.latlng_to_cell(lat, lng, LOCATION_CELL_RESOLUTION), source=source, at=at)


def district(cell: str, *, source: str, at: float) -> CoarseLocation:
    """A cell of resolution ``LOCATION_CELL_RESOLUTION`` (a scan's ``area_cell``) and its centre."""
    import h3

    if h3.get_resolution(cell) != LOCATION_CELL_RESOLUTION:
        raise ValueError(f"a location cell has resolution {LOCATION_CELL_RESOLUTION}, not {h3.get_resolution(cell)}")
    centre_lat, centre_lng = h3.cell_to_latlng(cell)
    return CoarseLocation(CELL, source, at, cell=cell, lat=round(centre_lat, CENTRE_DECIMALS),
                          lng=round(centre_lng, CENTRE_DECIMALS))


def in_city(city: str, *, source: str, at: float) -> CoarseLocation:
    return CoarseLocation(CITY, source, at, city=city)


def locate(place: StatedPlace, *, source: str, at: float) -> CoarseLocation:
    if place.city is not None:
        return in_city(place.city, source=source, at=at)
    return coarsen(place.lat, place.lng, source=source, at=at)


def route_shard(customer_id: str) -> str:
    """The customer's shard of the pending index (R0..R9): stable, and even across customers."""
    digest = hashlib.sha256(customer_id.encode()).digest()
    return f"R{int.from_bytes(digest[:4], 'big') % ROUTE_SHARDS}"


def newer(at: float, stored_at: float | None) -> bool:
    """Whether a location stated ``at`` replaces one stored at ``stored_at`` (newest wins;
    at the same instant the one stored first stays)."""
    return stored_at is None or float(stored_at) < at
