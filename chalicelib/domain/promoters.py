"""Becoming a promoter (分销员): who may, and how an application is decided.

A promoter shares the brand with friends through a personal share scene; friends who
arrive through it are bound under them (``attribution.decide_promoter``). Approval is
configuration: ``AUTO`` approves at once, ``BRAND`` waits for the brand's decision in
the back office. A promoter's share code binds friends to the promoter's own store,
so only a customer who belongs to a store (by scan or purchase) may apply.
"""
from __future__ import annotations

from chalicelib.errors import BusinessRuleViolated, Conflict

NONE, PENDING, APPROVED, REJECTED = "NONE", "PENDING", "APPROVED", "REJECTED"
STATUSES = (PENDING, APPROVED, REJECTED)
AUTO, BRAND_APPROVAL = "AUTO", "BRAND"
APPROVAL_MODES = (AUTO, BRAND_APPROVAL)


class PromoterNeedsStore(BusinessRuleViolated):
    code = "PROMOTER_NEEDS_STORE"
    default_message = ("A promoter's share code sends friends to the promoter's store: scan a store's code "
                       "or buy something first.")


class PromoterNotPending(Conflict):
    code = "PROMOTER_NOT_PENDING"
    default_message = "Only a pending application can be approved or rejected."


def status_on_application(approval: str) -> str:
    if approval not in APPROVAL_MODES:
        raise ValueError(f"unknown promoter approval mode {approval!r}")
    return APPROVED if approval == AUTO else PENDING


def may_apply(current_status: str | None) -> bool:
    """A customer applies once; after a rejection they may apply again."""
    return current_status in (None, NONE, REJECTED)


class PromoterNotApproved(Conflict):
    code = "PROMOTER_NOT_APPROVED"
    default_message = "The application is not approved (yet): there is no share code to show."
