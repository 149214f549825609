"""The route-traffic job (every 15 minutes): a thin entry point. It routes with the
routing settings of the mall's brand (``BRAND_ID``; the defaults when unset) and, in a
Lambda, stops taking customers some seconds before the function's time runs out (the
rest wait for the next run)."""
from __future__ import annotations

SAFETY_MARGIN_S = 15.0


def run(context=None) -> dict:
    from chalicelib.config import settings
    from chalicelib.domain.routing_config import RoutingSettings
    from chalicelib.log import get_logger
    from chalicelib.services import wiring
    from chalicelib.services.route_traffic import route_traffic

    brand_id = settings().brand_id
    if brand_id:
        config = wiring.routing_config().get_settings(brand_id)
    else:
        get_logger("storelink.jobs").warning("route-traffic: BRAND_ID is not set; routing with the default settings")
        config = RoutingSettings()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = max(0.0, remaining() / 1000 - SAFETY_MARGIN_S) if remaining else None
    return route_traffic(finder=wiring.store_finder(), routing_db=wiring.routing(), settings=config,
                         now=wiring.now(), clock=wiring.now, time_budget_s=budget)
