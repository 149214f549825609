"""Who a customer is: identity rules and the customer's own facts.

A customer is keyed by the WeChat unionid when WeChat gives one (it is the same
person across the mini-program and the official account), else by the
mini-program openid. Our own customer_id is opaque, so neither id leaks to dealers.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

# Promoter statuses
PROMOTER_NONE = "NONE"          # an ordinary customer
PROMOTER_ACTIVE = "ACTIVE"      # may share products and earn commissions


@dataclass(frozen=True)
class WeChatIdentity:
    """What code2Session tells us about the person behind a login code (or, with no
    openid, what the official account's user info tells us: only the unionid bridges)."""
    openid: str | None
    unionid: str | None = None
    oa_openid: str | None = None    # a follower of the official account (its own openid)

    def lookup_keys(self) -> list[str]:
        """Identity keys, strongest first: the unionid wins when there is one."""
        keys = []
        if self.unionid:
            keys.append(identity_key("unionid", self.unionid))
        if self.openid:
            keys.append(identity_key("openid", self.openid))
        if self.oa_openid:
            keys.append(identity_key("oa_openid", self.oa_openid))
        return keys


class CustomerAlreadyCreated(Exception):
    """Another request created this person's customer first (a login race)."""


def identity_key(kind: str, value: str) -> str:
    if kind not in ("unionid", "openid", "oa_openid"):
        raise ValueError(f"unknown identity kind {kind!r}")
    if not value:
        raise ValueError("an identity needs a value")
    return f"{kind}#{value}"


def new_customer_id() -> str:
    """cu_ + 16 URL-safe random characters (96 bits)."""
    return "cu_" + secrets.token_urlsafe(12)


@dataclass
class Customer:
    customer_id: str
    openid: str | None      # the mini-program's; None until a customer first seen through the OA logs in
    unionid: str | None
    first_seen_at: float
    last_seen_at: float
    owning_store_id: str | None = None
    owning_dealer_id: str | None = None
    points_balance: int = 0
    promoter_status: str = PROMOTER_NONE
    extra: dict = field(default_factory=dict)
