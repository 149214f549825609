"""Where things are: coordinate checks and the H3 cells that index stores."""
from __future__ import annotations

from chalicelib.errors import ValidationFailed

# Resolution 6 cells are ~36 km² (edge ~3.7 km): a city is tens of cells, so a
# nearest-store search reads a handful of index partitions, not a whole city.
STORE_CELL_RESOLUTION = 6


def check_coordinates(lat: object, lng: object) -> tuple[float, float]:
    for name, value, limit in (("lat", lat, 90), ("lng", lng, 180)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationFailed(f"'{name}' must be a number of degrees.", field=name)
        if not -limit <= value <= limit or value != value:
            raise ValidationFailed(f"'{name}' must be between -{limit} and {limit}.", field=name)
    return float(lat), float(lng)


def store_cell(lat: float, lng: float) -> str:
    import h3

    return h3.latlng_to_cell(lat, lng, STORE_CELL_RESOLUTION)
