"""Signing a customer in, and knowing who is calling."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import auth
from chalicelib.domain.customers import Customer, CustomerAlreadyCreated, WeChatIdentity, new_customer_id
from chalicelib.domain.login import check_login_code
from chalicelib.errors import InvalidToken


@dataclass(frozen=True)
class SessionStarted:
    token: str
    expires_in: int
    customer_id: str
    new_customer: bool

    def to_json(self) -> dict:
        return {"token": self.token, "expires_in": self.expires_in,
                "customer_id": self.customer_id, "new_customer": self.new_customer}


def start_session(code: object, *, wechat, customers, now: float, signing_key: str) -> SessionStarted:
    """Exchange a wx.login code for our token, creating the customer on first sight."""
    identity = wechat.code2session(check_login_code(code))
    customer_id, new_customer = find_or_add_customer(identity, customers=customers, now=now)
    if not new_customer:
        customer = customers.record_login(customer_id, now, identity.unionid)
        if identity.unionid:
            # First seen by openid alone, now WeChat tells us the unionid too.
            customers.attach_identity(customer_id, "unionid", identity.unionid, now)
        if customer is not None and customer.openid is None:
            # First seen through the official account: now we know their mini-program openid.
            customers.learn_openid(customer_id, identity.openid, now)
    token = auth.issue_customer_token(customer_id, now, signing_key)
    return SessionStarted(token, auth.CUSTOMER_TOKEN_TTL_S, customer_id, new_customer)


def find_or_add_customer(identity: WeChatIdentity, *, customers, now: float) -> tuple[str, bool]:
    """(customer_id, created now?) of the person behind ``identity``, created on first sight:
    by a mini-program login, or by a follow of the official account (then with no openid)."""
    customer_id = customers.find_by_identity(identity)
    if customer_id is not None:
        return customer_id, False
    customer = Customer(customer_id=new_customer_id(), openid=identity.openid,
                        unionid=identity.unionid, first_seen_at=now, last_seen_at=now)
    try:
        customers.add_first_seen(customer)
        return customer.customer_id, True
    except CustomerAlreadyCreated:
        # A concurrent first sight of the same person won the race: use theirs.
        customer_id = customers.find_by_identity(identity)
        if customer_id is None:
            raise
        return customer_id, False


def current_customer(authorization: str | None, *, customers, now: float, signing_key: str) -> Customer:
    principal = auth.verify_customer_token(auth.bearer_token(authorization), now, signing_key)
    customer = customers.get(principal.customer_id)
    if customer is None:
        # A validly signed token for a customer we no longer have.
        raise InvalidToken("This token's customer no longer exists.")
    return customer
