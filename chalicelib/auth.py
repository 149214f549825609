"""Bearer tokens for customers and the back office.

HS256 JWTs (PyJWT), signed with a per-stage secret. Expiry follows the business
clock, not the wall clock, so a test can age a token by moving the clock: PyJWT's
own time checks are switched off and ``exp`` is checked here against the clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.errors import InvalidToken, TokenExpired, Unauthenticated, ValidationFailed

CUSTOMER_TOKEN_TTL_S = 7 * 86400
BACKOFFICE_TOKEN_TTL_S = 12 * 3600
BACKOFFICE_ROLES = ("brand", "dealer", "store")
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class CustomerPrincipal:
    customer_id: str


@dataclass(frozen=True)
class BackOfficePrincipal:
    role: str        # brand | dealer | store
    tenant_id: str   # the brand, dealer or store id the token is scoped to


def issue_customer_token(customer_id: str, now: float, secret: str) -> str:
    return _encode({"typ": "customer", "sub": customer_id}, now, CUSTOMER_TOKEN_TTL_S, secret)


def issue_backoffice_token(role: str, tenant_id: str, now: float, secret: str) -> str:
    if role not in BACKOFFICE_ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(BACKOFFICE_ROLES)}", field="role")
    if not tenant_id:
        raise ValidationFailed("a back-office token needs a tenant id", field="tenant")
    claims = {"typ": "backoffice", "sub": f"{role}:{tenant_id}", "role": role, "tenant": tenant_id}
    return _encode(claims, now, BACKOFFICE_TOKEN_TTL_S, secret)


def verify_customer_token(token: str, now: float, secret: str) -> CustomerPrincipal:
    claims = _decode(token, now, secret)
    if claims.get("typ") != "customer":
        raise InvalidToken("This is not a customer token.")
    return CustomerPrincipal(customer_id=claims["sub"])


def verify_backoffice_token(token: str, now: float, secret: str) -> BackOfficePrincipal:
    claims = _decode(token, now, secret)
    if claims.get("typ") != "backoffice" or claims.get("role") not in BACKOFFICE_ROLES:
        raise InvalidToken("This is not a back-office token.")
    tenant = claims.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise InvalidToken()
    return BackOfficePrincipal(role=claims["role"], tenant_id=tenant)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'.")
    return token.strip()


def _encode(claims: dict, now: float, ttl_s: int, secret: str) -> str:
    import jwt

    issued = int(now)
    return jwt.encode({**claims, "iat": issued, "exp": issued + ttl_s}, secret, algorithm=_ALGORITHM)


def _decode(token: str, now: float, secret: str) -> dict:
    import jwt

    try:
        claims = jwt.decode(
            token, secret, algorithms=[_ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                     "require": ["exp", "iat", "sub", "typ"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken() from exc
    exp = claims.get("exp")
    if not isinstance(exp, int) or not isinstance(claims.get("sub"), str):
        raise InvalidToken()
    if now >= exp:
        raise TokenExpired()
    return claims
