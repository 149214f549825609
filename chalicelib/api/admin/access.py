"""Who is calling the back office, and the small things every admin route shares."""
from __future__ import annotations

from chalicelib import auth
from chalicelib.api.paging import page, page_params
from chalicelib.errors import ValidationFailed
from chalicelib.services import wiring


def principal(request) -> auth.BackOfficePrincipal:
    token = auth.bearer_token(request.headers.get("authorization"))
    return auth.verify_backoffice_token(token, wiring.now(), wiring.token_signing_key())


def paging(request) -> tuple[int, dict | None]:
    return page_params(request.query_params, wiring.token_signing_key())


def paged(items_and_last) -> dict:
    items, last = items_and_last
    return page(items, last, wiring.token_signing_key())


def changes_only(body: dict) -> dict:
    if not body:
        raise ValidationFailed("Send at least one field to change.")
    return body
