"""/v1/admin/statements: a dealer's monthly statement (receivables both ways, balances,
settlements), its CSV, and the settlements the brand records against it."""
from __future__ import annotations

from chalice import Response

from chalicelib.api import fields as f
from chalicelib.api.admin.access import principal
from chalicelib.api.blueprint import ApiBlueprint
from chalicelib.api.parsing import json_object
from chalicelib.services import statements as uc
from chalicelib.services import wiring

bp = ApiBlueprint(__name__)


@bp.route("/statements", methods=["GET"])
def read_statement():
    request = bp.current_request
    query = request.query_params or {}
    dealer_id = query.get("dealer_id")
    dealer_id = f.identifier(dealer_id, "dealer_id") if dealer_id is not None else None
    return uc.read_statement(principal(request), dealer_id, query.get("month"), statements=wiring.statements(),
                             network=wiring.network(), now=wiring.now()).to_json()


@bp.route("/statements/{statement_id}", methods=["GET"])
def statement(statement_id):
    return uc.statement_by_id(principal(bp.current_request), statement_id, statements=wiring.statements(),
                              network=wiring.network(), now=wiring.now()).to_json()


@bp.route("/statements/{statement_id}/export", methods=["GET"])
def export_statement(statement_id):
    name, body = uc.export_statement(principal(bp.current_request), statement_id, statements=wiring.statements(),
                                     network=wiring.network(), now=wiring.now())
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})


@bp.route("/statements/{statement_id}/settlements", methods=["POST"])
def record_settlement(statement_id):
    who = principal(bp.current_request)
    body = json_object(bp.current_request, allowed={"amount_fen", "direction", "reference", "note"},
                       required={"amount_fen", "direction", "reference"})
    settlement, new = uc.record_settlement(who, statement_id, body, statements=wiring.statements(),
                                           network=wiring.network(), now=wiring.now())
    return Response(settlement.to_json(), status_code=201 if new else 200)
