"""/v1/admin/dealers, /stores and /staff."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import changes_only, paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.geo import check_coordinates
from chalicelib.domain.network import (
    STAFF_ROLES,
    STATUSES,
    check_opening_hours,
    check_services,
    check_sub_mchid,
)
from chalicelib.services import network_admin as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)
NAME_MAX = 100


# --- dealers

def _dealer_fields(body: dict, partial: bool) -> dict:
    out = {"name": f.text(body, "name", NAME_MAX, required=not partial),
           "sub_mchid": f.text(body, "sub_mchid", 12, required=not partial),
           "status": f.choice(body, "status", STATUSES, required=False)}
    if out["sub_mchid"] is not None:
        check_sub_mchid(out["sub_mchid"])
    return {k: v for k, v in out.items() if v is not None}


@bp.route("/dealers", methods=["POST"])
def create_dealer():
    body = json_object(bp.current_request, allowed={"name", "sub_mchid", "status"})
    dealer = uc.create_dealer(principal(bp.current_request), _dealer_fields(body, partial=False),
                              network=wiring.network(), now=wiring.now())
    return Response(dealer.to_json(), status_code=201)


@bp.route("/dealers", methods=["GET"])
def list_dealers():
    limit, start = paging(bp.current_request)
    return paged(uc.list_dealers(principal(bp.current_request), limit, start, network=wiring.network()))


@bp.route("/dealers/{dealer_id}", methods=["GET"])
def read_dealer(dealer_id):
    return uc.read_dealer(principal(bp.current_request), dealer_id, network=wiring.network()).to_json()


@bp.route("/dealers/{dealer_id}", methods=["PATCH"])
def update_dealer(dealer_id):
    body = changes_only(json_object(bp.current_request, allowed={"name", "sub_mchid", "status"}))
    return uc.update_dealer(principal(bp.current_request), dealer_id, _dealer_fields(body, partial=True),
                            network=wiring.network()).to_json()


@bp.route("/dealers/{dealer_id}/data-sharing", methods=["GET"])
def read_data_sharing(dealer_id):
    return uc.data_sharing(principal(bp.current_request), dealer_id, network=wiring.network())


@bp.route("/dealers/{dealer_id}/data-sharing", methods=["PUT"])
def set_data_sharing(dealer_id):
    body = json_object(bp.current_request, allowed={"brand_access"}, required={"brand_access"})
    who = principal(bp.current_request)
    uc.set_data_sharing(who, dealer_id, body["brand_access"], network=wiring.network(), now=wiring.now())
    return uc.data_sharing(who, dealer_id, network=wiring.network())


# --- stores

STORE_FIELDS = {"dealer_id", "name", "city", "address", "lat", "lng", "services", "opening_hours", "status",
                "service_score"}


def _store_fields(body: dict, partial: bool) -> dict:
    out = {"name": f.text(body, "name", NAME_MAX, required=not partial),
           "city": f.text(body, "city", 50, required=not partial),
           "address": f.text(body, "address", 200, required=False, min_len=0),
           "status": f.choice(body, "status", STATUSES, required=False),
           "service_score": f.integer(body, "service_score", 0, 100, required=False)}
    if not partial or "lat" in body or "lng" in body:
        if partial and not ("lat" in body and "lng" in body):
            from chalicelib.errors import ValidationFailed

            raise ValidationFailed("Move a store with both 'lat' and 'lng'.", field="lat")
        out["lat"], out["lng"] = check_coordinates(body.get("lat"), body.get("lng"))
    if "services" in body:
        out["services"] = check_services(body["services"])
    if "opening_hours" in body:
        out["opening_hours"] = check_opening_hours(body["opening_hours"])
    return {k: v for k, v in out.items() if v is not None}


@bp.route("/stores", methods=["POST"])
def create_store():
    body = json_object(bp.current_request, allowed=STORE_FIELDS)
    fields = _store_fields(body, partial=False)
    if "dealer_id" in body:
        fields["dealer_id"] = f.identifier(body["dealer_id"], "dealer_id")
    store = uc.create_store(principal(bp.current_request), fields, network=wiring.network(), now=wiring.now())
    return Response(store.to_json(), status_code=201)


@bp.route("/stores", methods=["GET"])
def list_stores():
    request = bp.current_request
    limit, start = paging(request)
    dealer_id = (request.query_params or {}).get("dealer_id")
    if dealer_id is not None:
        f.identifier(dealer_id, "dealer_id")
    return paged(uc.list_stores(principal(request), dealer_id, limit, start, network=wiring.network()))


@bp.route("/stores/{store_id}", methods=["GET"])
def read_store(store_id):
    return uc.read_store(principal(bp.current_request), store_id, network=wiring.network()).to_json()


@bp.route("/stores/{store_id}", methods=["PATCH"])
def update_store(store_id):
    body = changes_only(json_object(bp.current_request, allowed=STORE_FIELDS - {"dealer_id"}))
    return uc.update_store(principal(bp.current_request), store_id, _store_fields(body, partial=True),
                           network=wiring.network(), scenes=wiring.scenes()).to_json()


# --- staff

def _staff_fields(body: dict, partial: bool) -> dict:
    out = {"name": f.text(body, "name", NAME_MAX, required=not partial),
           "role": f.choice(body, "role", STAFF_ROLES, required=False),
           "status": f.choice(body, "status", STATUSES, required=False)}
    return {k: v for k, v in out.items() if v is not None}


@bp.route("/stores/{store_id}/staff", methods=["POST"])
def create_staff(store_id):
    body = json_object(bp.current_request, allowed={"name", "role", "status"})
    member = uc.create_staff(principal(bp.current_request), store_id, _staff_fields(body, partial=False),
                             network=wiring.network(), now=wiring.now())
    return Response(member.to_json(), status_code=201)


@bp.route("/stores/{store_id}/staff", methods=["GET"])
def list_staff(store_id):
    limit, start = paging(bp.current_request)
    return paged(uc.list_staff(principal(bp.current_request), store_id, limit, start, network=wiring.network()))


@bp.route("/staff/{staff_id}", methods=["GET"])
def read_staff(staff_id):
    return uc.read_staff(principal(bp.current_request), staff_id, network=wiring.network()).to_json()


@bp.route("/staff/{staff_id}", methods=["PATCH"])
def update_staff(staff_id):
    body = changes_only(json_object(bp.current_request, allowed={"name", "role", "status"}))
    return uc.update_staff(principal(bp.current_request), staff_id, _staff_fields(body, partial=True),
                           network=wiring.network()).to_json()
