"""/v1/admin/brand/commission-settings, a product's own commission rates and a dealer's
split cap: the brand's commission configuration (brand tokens only)."""
from __future__ import annotations

from chalicelib.api import fields as f
from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.catalogue import check_sku
from chalicelib.domain.commission_config import SETTINGS_FIELDS
from chalicelib.services import commission_config as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/brand/commission-settings", methods=["GET"])
def read_settings():
    return uc.read_settings(principal(bp.current_request), commission_config=wiring.commission_config()).to_json()


@bp.route("/brand/commission-settings", methods=["PUT"])
def update_settings():
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed=set(SETTINGS_FIELDS))
    return uc.update_settings(who, body, commission_config=wiring.commission_config()).to_json()


@bp.route("/products/{sku}/commission-rates", methods=["PUT"])
def set_product_rates(sku):
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed={"rates_bps"}, required={"rates_bps"})
    return uc.set_product_rates(who, check_sku(sku), body["rates_bps"], commission_config=wiring.commission_config(),
                                catalogue=wiring.catalogue()).to_json()


@bp.route("/dealers/{dealer_id}/max-ratio", methods=["PUT"])
def set_dealer_max_ratio(dealer_id):
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed={"max_ratio_bps"}, required={"max_ratio_bps"})
    return uc.set_dealer_max_ratio(who, f.identifier(dealer_id, "dealer_id"), body["max_ratio_bps"],
                                   commission_config=wiring.commission_config(), network=wiring.network())
