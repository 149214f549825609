import base64
import json

import pytest

from chalicelib import auth
from chalicelib.errors import InvalidToken, TokenExpired, Unauthenticated, ValidationFailed

SECRET = "s" * 48
NOW = 1_800_000_000


def test_a_customer_token_names_its_customer():
    token = auth.issue_customer_token("cu_abc", NOW, SECRET)
    assert auth.verify_customer_token(token, NOW + 10, SECRET).customer_id == "cu_abc"


def test_a_customer_token_lasts_seven_days_of_business_time():
    token = auth.issue_customer_token("cu_abc", NOW, SECRET)
    assert auth.verify_customer_token(token, NOW + 7 * 86400 - 1, SECRET).customer_id == "cu_abc"
    with pytest.raises(TokenExpired):
        auth.verify_customer_token(token, NOW + 7 * 86400, SECRET)


def test_a_token_issued_ahead_of_the_wall_clock_is_still_valid():
    # The local business clock runs ahead of wall time: iat is "in the future".
    token = auth.issue_customer_token("cu_abc", NOW + 30 * 86400, SECRET)
    assert auth.verify_customer_token(token, NOW + 30 * 86400, SECRET).customer_id == "cu_abc"


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "cu_someone_else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join([header, forged, signature])


@pytest.mark.parametrize("mangle", [
    _tamper,
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: t + "x",
    lambda t: "not-a-token",
    lambda t: auth.issue_customer_token("cu_abc", NOW, "another-secret-" * 3),
])
def test_tampered_or_foreign_tokens_are_refused(mangle):
    token = auth.issue_customer_token("cu_abc", NOW, SECRET)
    with pytest.raises(InvalidToken):
        auth.verify_customer_token(mangle(token), NOW, SECRET)


def test_an_unsigned_token_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(
        {"typ": "customer", "sub": "cu_x", "iat": NOW, "exp": NOW + 99}).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        auth.verify_customer_token(f"{header}.{body}.", NOW, SECRET)


def test_a_backoffice_token_is_not_a_customer_token_and_back():
    office = auth.issue_backoffice_token("dealer", "dealer-shu", NOW, SECRET)
    with pytest.raises(InvalidToken):
        auth.verify_customer_token(office, NOW, SECRET)
    principal = auth.verify_backoffice_token(office, NOW, SECRET)
    assert (principal.role, principal.tenant_id) == ("dealer", "dealer-shu")
    with pytest.raises(InvalidToken):
        auth.verify_backoffice_token(auth.issue_customer_token("cu_x", NOW, SECRET), NOW, SECRET)


def test_a_backoffice_token_lasts_twelve_hours():
    office = auth.issue_backoffice_token("brand", "brand-lumen", NOW, SECRET)
    assert auth.verify_backoffice_token(office, NOW + 12 * 3600 - 1, SECRET).role == "brand"
    with pytest.raises(TokenExpired):
        auth.verify_backoffice_token(office, NOW + 12 * 3600, SECRET)


def test_unknown_roles_are_refused():
    with pytest.raises(ValidationFailed):
        auth.issue_backoffice_token("admin", "x", NOW, SECRET)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   ", "token abc"])
def test_a_missing_or_odd_authorization_header_is_unauthenticated(header):
    with pytest.raises(Unauthenticated):
        auth.bearer_token(header)


def test_the_bearer_scheme_is_case_insensitive():
    assert auth.bearer_token("bearer abc.def") == "abc.def"
