"""The default collaborators of the use cases, built once per process and lazily.

Entry points take them from here; tests hand their own to the use cases instead.
"""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def customers():
    from chalicelib.db.customers import CustomerRepository

    return CustomerRepository()


@functools.lru_cache(maxsize=1)
def network():
    from chalicelib.db.network import NetworkRepository

    return NetworkRepository()


@functools.lru_cache(maxsize=1)
def store_finder():
    """Nearest stores over the geo index; its density counts are cached per process."""
    from chalicelib.db.store_geo import StoreGeoIndex
    from chalicelib.services.store_finder import StoreFinder

    return StoreFinder(StoreGeoIndex())


@functools.lru_cache(maxsize=1)
def catalogue():
    from chalicelib.db.catalogue import CatalogueRepository

    return CatalogueRepository()


@functools.lru_cache(maxsize=1)
def commission_config():
    from chalicelib.db.commission_config import CommissionConfigRepository

    return CommissionConfigRepository(catalogue())


@functools.lru_cache(maxsize=1)
def routing_config():
    from chalicelib.db.routing_config import RoutingConfigRepository

    return RoutingConfigRepository()


@functools.lru_cache(maxsize=1)
def routing():
    """What the route-traffic job reads and writes: its queue, counts, lease and runs."""
    from chalicelib.db.routing import RoutingRepository

    return RoutingRepository()


@functools.lru_cache(maxsize=1)
def locations():
    from chalicelib.db.locations import LocationRepository

    return LocationRepository()


@functools.lru_cache(maxsize=1)
def orders():
    from chalicelib.db.orders import OrderRepository

    return OrderRepository()


@functools.lru_cache(maxsize=1)
def payment_records():
    from chalicelib.db.orders import PaymentRepository

    return PaymentRepository()


@functools.lru_cache(maxsize=1)
def fulfilment():
    from chalicelib.db.fulfilment import FulfilmentRepository

    return FulfilmentRepository()


@functools.lru_cache(maxsize=1)
def refunds():
    from chalicelib.db.refunds import RefundRepository

    return RefundRepository()


@functools.lru_cache(maxsize=1)
def ownership():
    from chalicelib.db.ownership import OwnershipRepository

    return OwnershipRepository()


@functools.lru_cache(maxsize=1)
def customer_groups():
    from chalicelib.db.customer_groups import CustomerGroupRepository

    return CustomerGroupRepository()


@functools.lru_cache(maxsize=1)
def scans():
    from chalicelib.db.scans import ScanRepository

    return ScanRepository()


@functools.lru_cache(maxsize=1)
def scenes():
    from chalicelib.db.scenes import SceneRepository

    return SceneRepository()


@functools.lru_cache(maxsize=1)
def unit_codes():
    from chalicelib.db.unit_codes import UnitCodeRepository

    return UnitCodeRepository()


@functools.lru_cache(maxsize=1)
def promoters():
    from chalicelib.db.promoters import PromoterRepository

    return PromoterRepository()


@functools.lru_cache(maxsize=1)
def funnel():
    from chalicelib.db.funnel import FunnelRepository

    return FunnelRepository()


@functools.lru_cache(maxsize=1)
def alerts():
    from chalicelib.db.alerts import AlertRepository

    return AlertRepository()


@functools.lru_cache(maxsize=1)
def splits():
    from chalicelib.db.splits import SplitRepository

    return SplitRepository()


@functools.lru_cache(maxsize=1)
def settlement():
    from chalicelib.db.settlement import SettlementRepository

    return SettlementRepository()


@functools.lru_cache(maxsize=1)
def reconciliation_reports():
    from chalicelib.db.reconciliation_reports import ReconciliationReportRepository

    return ReconciliationReportRepository()


@functools.lru_cache(maxsize=1)
def statements():
    from chalicelib.db.statements import StatementRepository

    return StatementRepository()


@functools.lru_cache(maxsize=1)
def payments():
    from chalicelib.wechat.pay import default_client

    return default_client()


@functools.lru_cache(maxsize=1)
def bills():
    """WeChat Pay's bills: applied for, downloaded and verified through the payments client."""
    from chalicelib.wechat.bills import BillClient

    return BillClient(payments())


@functools.lru_cache(maxsize=1)
def miniprogram():
    from chalicelib.wechat.miniprogram import default_client

    return default_client()


@functools.lru_cache(maxsize=1)
def official_account():
    from chalicelib.wechat.official_account import default_client

    return default_client()


@functools.lru_cache(maxsize=1)
def oa_events():
    from chalicelib.db.oa_events import OaEventRepository

    return OaEventRepository()


# brand_id -> (ScanPolicy, monotonic expiry): a brand's binding rule is read at most once
# a minute per process, so a scan stays at two round trips (a change applies within 60 s).
_SCAN_POLICIES: dict = {}
SCAN_POLICY_TTL_S = 60.0


def scan_policy():
    """brand_id -> the brand's binding rules for scans: the promoter rule the brand set in
    its commission settings (else PROMOTER_BINDING_RULE), rebinding from REBIND_ON_SCAN."""
    import time

    from chalicelib.config import settings
    from chalicelib.services.scans import ScanPolicy

    def for_brand(brand_id: str):
        cached = _SCAN_POLICIES.get(brand_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        config = settings()
        rule = commission_config().stored_binding_rule(brand_id) or config.promoter_binding_rule
        policy = ScanPolicy(rebind_on_scan=config.rebind_on_scan, promoter_rule=rule)
        _SCAN_POLICIES[brand_id] = (policy, time.monotonic() + SCAN_POLICY_TTL_S)
        return policy

    return for_brand


def token_signing_key() -> str:
    from chalicelib.secrets import TOKEN_SIGNING_KEY, get_secret

    return get_secret(TOKEN_SIGNING_KEY)


def oa_server_token() -> str:
    """The token WeChat signs pushes to the official account's server URL with."""
    from chalicelib.secrets import OA_SERVER_TOKEN, get_secret

    return get_secret(OA_SERVER_TOKEN)


def now() -> float:
    from chalicelib.clock import timestamp

    return timestamp()


def reset() -> None:
    """Forget every collaborator built so far (tests change the environment between cases)."""
    for value in list(globals().values()):
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    _SCAN_POLICIES.clear()
