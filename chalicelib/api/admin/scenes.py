"""/v1/admin/scenes and /v1/admin/stores/{store_id}/staff-codes: QR scenes in the back office.

The two code images answer ``image/png`` (a binary type of the app: the request must
send ``Accept: image/png``, as API Gateway needs to hand binary bodies back).
"""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain import scenes as rules
from chalicelib.domain.catalogue import check_sku
from chalicelib.services import scenes as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)
PNG = "image/png"
SCENE_FIELDS = {"kind", "store_id", "staff_id", "sku", "campaign", "welcome"}


def _png(body: bytes) -> Response:
    # Codes are permanent, but a retired scene must stop being served: cache privately, briefly.
    return Response(body=body, status_code=200, headers={"Content-Type": PNG, "Cache-Control": "private, max-age=300"})


def _scene_fields(body: dict) -> dict:
    out: dict = {"kind": rules.check_kind(body.get("kind"))}
    for name in ("store_id", "staff_id"):
        if body.get(name) is not None:
            out[name] = f.identifier(body[name], name)
    if body.get("sku") is not None:
        out["sku"] = check_sku(body["sku"])
    if body.get("campaign") is not None:
        out["campaign"] = rules.check_campaign(body["campaign"])
    if body.get("welcome") is not None:
        out["welcome"] = rules.check_welcome(body["welcome"])
    return out


@bp.route("/scenes", methods=["POST"])
def create_scene():
    body = json_object(bp.current_request, allowed=SCENE_FIELDS, required={"kind"})
    scene = uc.create_scene(principal(bp.current_request), _scene_fields(body), scenes=wiring.scenes(),
                            network=wiring.network(), catalogue=wiring.catalogue(), now=wiring.now())
    return Response(scene.to_json(), status_code=201)


@bp.route("/scenes", methods=["GET"])
def list_scenes():
    request = bp.current_request
    limit, start = paging(request)
    store_id = (request.query_params or {}).get("store_id")
    if store_id is not None:
        f.identifier(store_id, "store_id")
    return paged(uc.list_scenes(principal(request), store_id, limit, start, scenes=wiring.scenes(),
                                network=wiring.network()))


@bp.route("/scenes/{scene}", methods=["GET"])
def read_scene(scene):
    return uc.read_scene(principal(bp.current_request), rules.check_scene(scene), scenes=wiring.scenes()).to_json()


@bp.route("/scenes/{scene}/retire", methods=["POST"])
def retire_scene(scene):
    return uc.retire_scene(principal(bp.current_request), rules.check_scene(scene), scenes=wiring.scenes(),
                           now=wiring.now()).to_json()


@bp.route("/scenes/{scene}/wxacode", methods=["GET"])
def scene_wxacode(scene):
    request = bp.current_request
    width = f.code_width(request.query_params)
    who = principal(request)
    return _png(uc.wxacode(who, rules.check_scene(scene), width, scenes=wiring.scenes(),
                           miniprogram=wiring.miniprogram()))


@bp.route("/scenes/{scene}/qr", methods=["GET"])
def scene_qr(scene):
    return _png(uc.print_qr(principal(bp.current_request), rules.check_scene(scene), scenes=wiring.scenes()))


@bp.route("/stores/{store_id}/staff-codes", methods=["POST"])
def staff_codes(store_id):
    codes, made = uc.staff_codes(principal(bp.current_request), f.identifier(store_id, "store_id"),
                                       scenes=wiring.scenes(), network=wiring.network(), now=wiring.now())
    return {"store_id": store_id, "items": [s.to_json() for s in codes], "created": made}
