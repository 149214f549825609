"""/v1/admin/.../unit-code-batches and /v1/admin/unit-codes: unit codes (一物一码), brand only."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import paged, paging, principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.domain.catalogue import check_sku
from chalicelib.domain.scenes import check_scene
from chalicelib.domain.unit_codes import check_batch_size
from chalicelib.services import unit_codes as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/products/{sku}/unit-code-batches", methods=["POST"])
def create_batch(sku):
    request = bp.current_request
    body = json_object(request, allowed={"count"}, required={"count"})
    batch = uc.create_batch(principal(request), check_sku(sku), check_batch_size(body["count"]),
                            unit_codes=wiring.unit_codes(), catalogue=wiring.catalogue(), now=wiring.now())
    return Response(batch.to_json(), status_code=201)


@bp.route("/products/{sku}/unit-code-batches", methods=["GET"])
def list_batches(sku):
    request = bp.current_request
    limit, start = paging(request)
    return paged(uc.list_batches(principal(request), check_sku(sku), limit, start,
                                 unit_codes=wiring.unit_codes(), catalogue=wiring.catalogue()))


@bp.route("/unit-code-batches/{batch_id}", methods=["GET"])
def read_batch(batch_id):
    return uc.read_batch(principal(bp.current_request), f.identifier(batch_id, "batch_id"),
                         unit_codes=wiring.unit_codes()).to_json()


@bp.route("/unit-code-batches/{batch_id}/codes", methods=["GET"])
def list_codes(batch_id):
    request = bp.current_request
    limit, start = paging(request)
    codes, last = uc.list_codes(principal(request), f.identifier(batch_id, "batch_id"), limit, start,
                                unit_codes=wiring.unit_codes())
    return paged(([c.listing_json() for c in codes], last))


@bp.route("/unit-code-batches/{batch_id}/codes.csv", methods=["GET"])
def codes_csv(batch_id):
    import csv
    import io

    batch_id = f.identifier(batch_id, "batch_id")
    codes = uc.all_codes(principal(bp.current_request), batch_id, unit_codes=wiring.unit_codes())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["scene", "print_url", "sku", "batch_id"])
    for code in codes:
        row = code.listing_json()
        writer.writerow([row["scene"], row["print_url"], code.sku, code.batch_id])
    return Response(out.getvalue(), status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8",
                             "Content-Disposition": f'attachment; filename="{batch_id}.csv"'})


@bp.route("/unit-codes/{scene}", methods=["GET"])
def read_unit(scene):
    return uc.read_unit(principal(bp.current_request), check_scene(scene), unit_codes=wiring.unit_codes()).report_json()
