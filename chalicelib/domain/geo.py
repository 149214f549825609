"""Where things are: coordinate checks."""
from __future__ import annotations

from chalicelib.errors import ValidationFailed

# The default search resolution of routing.nearest_stores: res-6 cells are ~36 km²
# (edge ~3.7 km). The geo index chooses its own per lookup (domain/store_geo.py).
STORE_CELL_RESOLUTION = 6


def check_coordinates(lat: object, lng: object) -> tuple[float, float]:
    for name, value, limit in (("lat", lat, 90), ("lng", lng, 180)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationFailed(f"'{name}' must be a number of degrees.", field=name)
        if not -limit <= value <= limit or value != value:
            raise ValidationFailed(f"'{name}' must be between -{limit} and {limit}.", field=name)
    return float(lat), float(lng)
