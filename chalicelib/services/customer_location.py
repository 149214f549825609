"""PUT /v1/me/location: where the customer is, stored coarsened (chalicelib/domain/locations.py).

One conditional write in the common case: the location (newest wins) and, for a
customer nobody owns, their place in the route-traffic queue (on condition that still
nobody owns them). When the condition fails — a newer location, or an owner that
appeared meanwhile — the customer is read and the decision made again.
"""
from __future__ import annotations

from chalicelib.domain.locations import STATED, check_place, locate, newer, unknown_city
from chalicelib.errors import NotFound

ATTEMPTS = 4


def set_location(customer, body: dict, *, locations, now: float) -> dict:
    """``customer``: the caller (a domain Customer, as the session read it)."""
    place = check_place(body)
    if place.city is not None and not locations.known_city(place.city):
        raise unknown_city(place.city)
    location = locate(place, source=STATED, at=now)
    unowned = customer.owning_store_id is None
    for _ in range(ATTEMPTS):
        if locations.save(customer.customer_id, location, queue_for_routing=unowned):
            return answer(location, awaiting_route=unowned)
        current = locations.current(customer.customer_id)
        if current is None:
            raise NotFound("No such customer.")
        if current.location is not None and not newer(now, current.location.located_at):
            # A location stated at the same instant or later won: it is what is stored.
            return answer(current.location, awaiting_route=current.awaiting_route)
        unowned = current.owning_store_id is None
    raise RuntimeError("the location could not be stored")


def answer(location, *, awaiting_route: bool) -> dict:
    return {"location": location.to_json(), "awaiting_route": awaiting_route}
