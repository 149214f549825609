"""Every table, defined once.

These classes are used by the code and, through ``chalicelib.db.schema``, to create
the local tables (and, later, checked against the AWS template). Records are
storage shapes, not the domain: repositories translate. Table names and
endpoints are bound per stage at first use (``chalicelib.db.binding``), never at
import. Money attributes end in ``_fen`` and hold integers.
"""
from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

UNBOUND = "unbound"


class _Record(Model):
    """Base for every record: the short name is what the stage prefix is put before."""

    short_name = ""

    class Meta:
        table_name = UNBOUND
        billing_mode = "PAY_PER_REQUEST"

    def __init_subclass__(cls, **kwargs):
        # Each table gets its own Meta: an inherited one would be shared, and
        # binding one table's name would rename them all.
        if "Meta" not in cls.__dict__:
            cls.Meta = type("Meta", (cls.Meta,), {"table_name": UNBOUND})
        super().__init_subclass__(**kwargs)


def _index(name: str, hash_key: str, range_key: str | None = None, numeric_range: bool = False):
    """A GSI class projecting all attributes (reads avoid a second fetch)."""
    attrs = {
        "Meta": type("Meta", (), {"index_name": name, "projection": AllProjection(),
                                   "billing_mode": "PAY_PER_REQUEST"}),
        hash_key: UnicodeAttribute(hash_key=True),
    }
    if range_key:
        attrs[range_key] = (NumberAttribute if numeric_range else UnicodeAttribute)(range_key=True)
    return type(f"{name}_index", (GlobalSecondaryIndex,), attrs)()


class BrandRecord(_Record):
    short_name = "brands"
    brand_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    created_at = NumberAttribute()
    # The brand's commission configuration (chalicelib/domain/commission_config.py); null: the defaults
    commission_settings = JSONAttribute(null=True)
    # +1 on every change of the settings or of a product's own rates: each such write is
    # conditional on the number its check read, so two changes checked apart cannot combine
    commission_version = NumberAttribute(null=True)
    # The brand's routing configuration (chalicelib/domain/routing_config.py); null: the
    # defaults. +1 on every change, each write conditional on the version it read
    routing_settings = JSONAttribute(null=True)
    routing_version = NumberAttribute(null=True)


class DealerRecord(_Record):
    short_name = "dealers"
    dealer_id = UnicodeAttribute(hash_key=True)
    brand_id = UnicodeAttribute()
    name = UnicodeAttribute()
    sub_mchid = UnicodeAttribute()       # the dealer's WeChat Pay sub-merchant
    status = UnicodeAttribute(default="ACTIVE")
    created_at = NumberAttribute()
    # What the brand may see of this dealer's customers: NONE | AGGREGATES_ONLY | FULL
    brand_access = UnicodeAttribute(default="NONE")
    # The split cap the sub-merchant granted the service provider at WeChat, in 1/10000 of a
    # payment (WeChat's default 30 %; M9 refreshes it from the provider); absent: 3000
    max_ratio_bps = NumberAttribute(default=3000)
    by_brand = _index("by_brand", "brand_id", "dealer_id")


class SharingChangeRecord(_Record):
    """Every change of a dealer's data-sharing switch: from, to, who, when."""
    short_name = "sharing_changes"
    dealer_id = UnicodeAttribute(hash_key=True)
    change_id = UnicodeAttribute(range_key=True)   # <ms>#<random>: in time order
    from_access = UnicodeAttribute()
    to_access = UnicodeAttribute()
    changed_by = UnicodeAttribute()                # <role>:<tenant> of the token
    at = NumberAttribute()


class StoreRecord(_Record):
    short_name = "stores"
    store_id = UnicodeAttribute(hash_key=True)
    dealer_id = UnicodeAttribute()
    brand_id = UnicodeAttribute()
    name = UnicodeAttribute()
    city = UnicodeAttribute()
    address = UnicodeAttribute(default="")
    # WGS-84 degrees (coordinates, not money: floats are fine here)
    lat = NumberAttribute()
    lng = NumberAttribute()
    # The geo index entries written for the store ("<partition>|<sort>", store_geo table):
    # each change of place, services or status rewrites them in the same transaction
    geo_keys = ListAttribute(of=UnicodeAttribute, null=True)
    # Service quality 0-100 (higher first among equally near stores); absent: 0
    service_score = NumberAttribute(null=True)
    # The dealer's WeChat Pay sub-merchant, copied here so placing an order reads one
    # item less (kept in step by update_dealer)
    sub_mchid = UnicodeAttribute(null=True)
    services = UnicodeSetAttribute(default=set)
    # {"mon": [["09:00", "21:00"]], ...} in Beijing time; a day absent is closed
    opening_hours = JSONAttribute(default=dict)
    status = UnicodeAttribute(default="ACTIVE")
    created_at = NumberAttribute()
    # +1 on every change: copies of the store (the card on its scenes) keep only the newest
    version = NumberAttribute(default=0)
    by_dealer = _index("by_dealer", "dealer_id", "store_id")
    by_brand = _index("by_brand", "brand_id", "store_id")
    # A city's stores: where city-only customers are routed (route-traffic, issue M11)
    by_city = _index("by_city", "city", "store_id")


class StoreGeoRecord(_Record):
    """The geo index of active stores (chalicelib/domain/store_geo.py): one item per
    (store, service offered, and "*"), keyed so one Query reads every store of a service
    in any H3 cell; plus the density counts the search resolution is chosen by
    (geo_key "density#<service>", spot = res-6 cell, stores = how many)."""
    short_name = "store_geo"
    geo_key = UnicodeAttribute(hash_key=True)      # <service>#<res-3 cell> | density#<service>
    spot = UnicodeAttribute(range_key=True)        # <res-9 cell>#<store_id> | <res-6 cell>
    store_id = UnicodeAttribute(null=True)
    dealer_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    lat = NumberAttribute(null=True)
    lng = NumberAttribute(null=True)
    services = UnicodeSetAttribute(null=True)
    opening_hours = JSONAttribute(null=True)
    service_score = NumberAttribute(null=True)
    stores = NumberAttribute(null=True)            # density items only


class StaffRecord(_Record):
    short_name = "staff"
    staff_id = UnicodeAttribute(hash_key=True)
    store_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute(default="GUIDE")
    status = UnicodeAttribute(default="ACTIVE")
    created_at = NumberAttribute()
    by_store = _index("by_store", "store_id", "staff_id")
    by_dealer = _index("by_dealer", "dealer_id", "staff_id")


class ProductRecord(_Record):
    short_name = "products"
    sku = UnicodeAttribute(hash_key=True)
    brand_id = UnicodeAttribute()
    name = UnicodeAttribute()
    category = UnicodeAttribute(default="")
    price_fen = NumberAttribute()        # the unified national price
    cost_fen = NumberAttribute()         # what the brand is owed per unit sold
    status = UnicodeAttribute(default="ACTIVE")
    created_at = NumberAttribute()
    # The product's own commission rates in bps, level 1 first; null: its category's or the default
    commission_rates_bps = ListAttribute(of=NumberAttribute, null=True)
    by_brand = _index("by_brand", "brand_id", "sku")


class StockRecord(_Record):
    short_name = "stock"
    # "warehouse:cloud" or "store:<store_id>"
    location_id = UnicodeAttribute(hash_key=True)
    sku = UnicodeAttribute(range_key=True)
    location_type = UnicodeAttribute()   # WAREHOUSE | STORE
    dealer_id = UnicodeAttribute(null=True)
    on_hand = NumberAttribute(default=0)
    reserved = NumberAttribute(default=0)  # held by unpaid orders
    # on_hand - reserved, kept as its own attribute because a condition cannot
    # subtract: reserving checks "available >= quantity" in one conditional write
    available = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    updated_at = NumberAttribute()
    by_sku = _index("by_sku", "sku", "location_id")


class CustomerRecord(_Record):
    short_name = "customers"
    customer_id = UnicodeAttribute(hash_key=True)
    # mini-program (sp_appid) openid; absent for a customer first seen through the official
    # account until their first mini-program login
    openid = UnicodeAttribute(null=True)
    unionid = UnicodeAttribute(null=True)
    first_seen_at = NumberAttribute()
    last_seen_at = NumberAttribute()
    owning_store_id = UnicodeAttribute(null=True)
    owning_dealer_id = UnicodeAttribute(null=True)
    owner_basis = UnicodeAttribute(null=True)       # ROUTED | SCANNED | PURCHASED
    points_balance = NumberAttribute(default=0)
    promoter_status = UnicodeAttribute(default="NONE")   # NONE | PENDING | APPROVED | REJECTED
    # The promoter this customer arrived through, and the upline nearest first (<= 3)
    promoter_id = UnicodeAttribute(null=True)
    promoter_chain = ListAttribute(of=UnicodeAttribute, null=True)
    promoter_bound_at = NumberAttribute(null=True)
    # For the store group lists: since when the current owner has them, the last scan
    # and the last purchase (newest wins: each write is conditional on being newer)
    owned_since = NumberAttribute(null=True)
    last_scan_at = NumberAttribute(null=True)
    last_scan_store_id = UnicodeAttribute(null=True)
    last_purchase_at = NumberAttribute(null=True)
    last_purchase_store_id = UnicodeAttribute(null=True)
    last_order_id = UnicodeAttribute(null=True)
    by_owning_store = _index("by_owning_store", "owning_store_id", "owned_since", numeric_range=True)
    # Where the customer is, coarsened (chalicelib/domain/locations.py; never the raw
    # coordinates): an H3 cell and its centre, or a city; newest wins (``located_at``)
    location_kind = UnicodeAttribute(null=True)         # CELL | CITY
    location_cell = UnicodeAttribute(null=True)
    location_lat = NumberAttribute(null=True)           # the cell's centre
    location_lng = NumberAttribute(null=True)
    location_city = UnicodeAttribute(null=True)
    location_source = UnicodeAttribute(null=True)       # STATED (PUT /v1/me/location) | SCAN
    located_at = NumberAttribute(null=True)
    # Set (R0..R9) while the customer has a location and no owner: the route-traffic job's
    # queue (sparse index), due from ``route_due_at``; removed when anyone sets an owner
    awaiting_route = UnicodeAttribute(null=True)
    route_due_at = NumberAttribute(null=True)
    # What routing last decided: its reason (routing.NEAREST, ALL_CAPPED, ...), the
    # distance to the chosen store (none for a city) and the run
    route_reason = UnicodeAttribute(null=True)
    route_distance_m = NumberAttribute(null=True)
    route_run_id = UnicodeAttribute(null=True)
    by_owning_dealer = _index("by_owning_dealer", "owning_dealer_id", "owned_since", numeric_range=True)
    awaiting_route_by_due = _index("awaiting_route_by_due", "awaiting_route", "route_due_at", numeric_range=True)


class SceneRecord(_Record):
    """What a QR scene token stands for: a store, a staff badge, a campaign poster, a
    product package or a promoter's share code."""
    short_name = "scenes"
    scene = UnicodeAttribute(hash_key=True)        # the token in the code (<= 32 chars, WeChat's charset)
    kind = UnicodeAttribute()                      # store | staff | campaign | product | promoter | unit
    brand_id = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)         # the store it binds to (store, staff; a campaign's first store)
    dealer_id = UnicodeAttribute(null=True)
    staff_id = UnicodeAttribute(null=True)
    sku = UnicodeAttribute(null=True)
    promoter_customer_id = UnicodeAttribute(null=True)
    campaign = JSONAttribute(null=True)            # {name, store_ids, starts_at, ends_at}
    welcome = JSONAttribute(null=True)             # {title, message, featured_skus}
    # A copy of the bound store's card (name, city, address, services, hours, status) so a
    # scan reads no store item; refreshed on every store change, newest version wins.
    store_card = JSONAttribute(null=True)
    store_card_version = NumberAttribute(null=True)
    status = UnicodeAttribute(default="ACTIVE")    # ACTIVE | RETIRED (history kept)
    created_at = NumberAttribute()
    retired_at = NumberAttribute(null=True)
    # Unit codes (一物一码, kind "unit"): one scene per physical unit, made in batches;
    # the scan updates these in its own transaction (conditional on the count it read).
    batch_id = UnicodeAttribute(null=True)
    unit_scan_count = NumberAttribute(null=True)
    unit_first_seen_at = NumberAttribute(null=True)
    unit_first_seen_area = UnicodeAttribute(null=True)   # coarse H3 cell (the "city")
    unit_areas = UnicodeSetAttribute(null=True)          # distinct areas it was scanned in
    unit_last_seen_at = NumberAttribute(null=True)
    by_store = _index("by_store", "store_id", "scene")
    by_batch = _index("by_batch", "batch_id", "scene")


class UnitCodeBatchRecord(_Record):
    """A batch of unit codes (一物一码) made for one SKU. Written CREATING before its
    codes and set COMPLETE after the last one, so a writer that dies part-way leaves a
    batch that visibly is not complete rather than one silently short."""
    short_name = "unit_code_batches"
    batch_id = UnicodeAttribute(hash_key=True)     # ub_<random>
    sku = UnicodeAttribute()
    brand_id = UnicodeAttribute()
    # "count" would shadow PynamoDB's Model.count(): how many codes the batch holds
    code_count = NumberAttribute()
    status = UnicodeAttribute()                    # CREATING | COMPLETE
    created_at = NumberAttribute()
    created_by = UnicodeAttribute()                # <role>:<tenant> of the token that asked
    completed_at = NumberAttribute(null=True)
    by_sku = _index("by_sku", "sku", "created_at", numeric_range=True)


class ScanRecord(_Record):
    """One scan: first-party data (who, which scene, where coarsely, when, what followed)."""
    short_name = "scans"
    scan_id = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute()
    scene = UnicodeAttribute()
    kind = UnicodeAttribute(null=True)             # null when the scene was unknown or retired
    store_id = UnicodeAttribute(null=True)
    staff_id = UnicodeAttribute(null=True)
    sku = UnicodeAttribute(null=True)
    campaign_name = UnicodeAttribute(null=True)
    city = UnicodeAttribute(null=True)
    area_cell = UnicodeAttribute(null=True)        # coarse H3 cell, never a precise track
    outcome = UnicodeAttribute()                   # e.g. FIRST_SCAN, VISIT_RECORDED, SCENE_NOT_FOUND
    channel = UnicodeAttribute(null=True)          # MINI_PROGRAM | OA_SUBSCRIBE | OA_SCAN
    points_awarded = NumberAttribute(default=0)
    at = NumberAttribute()
    by_customer = _index("by_customer", "customer_id", "at", numeric_range=True)


class PointsEntryRecord(_Record):
    """The append-only points ledger; the balance on the customer moves in the same transaction."""
    short_name = "points_ledger"
    customer_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)    # e.g. scan#<scene>#<Beijing day>: once per key
    points = NumberAttribute()
    reason = UnicodeAttribute()
    at = NumberAttribute()


class OwnershipChangeRecord(_Record):
    """Every change of a customer's owning store: from, to, why, when, caused by what."""
    short_name = "ownership_changes"
    customer_id = UnicodeAttribute(hash_key=True)
    change_id = UnicodeAttribute(range_key=True)   # <ms of the cause>#<cause key>: sorts by time, unique per cause
    from_store_id = UnicodeAttribute(null=True)
    to_store_id = UnicodeAttribute()
    to_dealer_id = UnicodeAttribute(null=True)
    staff_id = UnicodeAttribute(null=True)         # the guide whose badge was scanned, credited
    basis = UnicodeAttribute()
    reason = UnicodeAttribute()
    at = NumberAttribute()


class PromoterRecord(_Record):
    """A customer who shares the brand with friends (分销员), and their share scene."""
    short_name = "promoters"
    customer_id = UnicodeAttribute(hash_key=True)
    brand_id = UnicodeAttribute()
    status = UnicodeAttribute()                    # PENDING | APPROVED | REJECTED
    brand_status = UnicodeAttribute()              # <brand_id>#<status>: the brand's queue of applications
    scene = UnicodeAttribute(null=True)            # the share scene, once approved
    store_id = UnicodeAttribute()                  # the store their share code binds friends to
    created_at = NumberAttribute()                 # applied (again, after a rejection) at
    decided_at = NumberAttribute(null=True)
    # Kept with every binding and every commission change, so /v1/me/promoter reads one item
    downline_1 = NumberAttribute(default=0)
    downline_2 = NumberAttribute(default=0)
    downline_3 = NumberAttribute(default=0)
    pending_fen = NumberAttribute(default=0)
    earned_fen = NumberAttribute(default=0)
    paid_fen = NumberAttribute(default=0)
    clawback_owed_fen = NumberAttribute(default=0)  # paid commissions refunds took back, not yet recovered
    by_brand_status = _index("by_brand_status", "brand_status", "created_at", numeric_range=True)


class ReferralRecord(_Record):
    """A customer bound under a promoter: the promoter's friends, and the chain kept."""
    short_name = "referrals"
    promoter_id = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute(range_key=True)
    chain = ListAttribute(of=UnicodeAttribute)     # the customer's upline, nearest (= promoter_id) first
    scene = UnicodeAttribute()
    rule = UnicodeAttribute()
    bound_at = NumberAttribute()
    ended_at = NumberAttribute(null=True)          # another promoter took over (LAST_TOUCH rule)


class CustomerIdentityRecord(_Record):
    """unionid#… / openid#… → customer_id: how a WeChat identity finds its customer."""
    short_name = "customer_identities"
    identity = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute()
    created_at = NumberAttribute()


class OrderRecord(_Record):
    """An order; ``order_id`` is its WeChat Pay ``out_trade_no``."""
    short_name = "orders"
    order_id = UnicodeAttribute(hash_key=True)
    customer_id = UnicodeAttribute()
    store_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    sub_mchid = UnicodeAttribute()
    status = UnicodeAttribute()
    lines = JSONAttribute()               # [{sku, name, quantity, unit_price_fen, line_total_fen, ship_from}]
    subtotal_fen = NumberAttribute()
    discount_fen = NumberAttribute()
    payable_fen = NumberAttribute()
    refunded_fen = NumberAttribute(default=0)
    fulfillment = JSONAttribute(default=dict)
    created_at = NumberAttribute()
    expires_at = NumberAttribute()
    paid_at = NumberAttribute(null=True)
    transaction_id = UnicodeAttribute(null=True)
    prepay_id = UnicodeAttribute(null=True)
    prepay_at = NumberAttribute(null=True)
    version = NumberAttribute(default=0)
    # Set while the order may still need closing at the provider (P0..P9 spreads the
    # index over partitions); removed once paid, or closed here and at WeChat.
    pending_shard = UnicodeAttribute(null=True)
    shipping = JSONAttribute(null=True)          # carrier, tracking number, who handed it over
    shipped_at = NumberAttribute(null=True)      # shipped, or ready for pick-up
    completed_at = NumberAttribute(null=True)
    # Set while shipped and not yet received (sparse), so the close job can complete
    # orders shipped long ago without a Scan.
    fulfilling_shard = UnicodeAttribute(null=True)
    refund_attempts = NumberAttribute(default=0)       # out_refund_no attempts numbered on the order
    refund_committed_fen = NumberAttribute(default=0)  # held by refunds asked, processing or done
    # Nightly reconciliation (M13, chalicelib/db/reconciliation_day.py): the provider's success
    # time (epoch s; null when its word carried none) and <Beijing day of it, else of
    # paid_at>#<0-9>, set in the write that applies the payment (sparse: paid orders only)
    success_at = NumberAttribute(null=True)
    paid_day_shard = UnicodeAttribute(null=True)
    by_customer = _index("by_customer", "customer_id", "created_at", numeric_range=True)
    by_store = _index("by_store", "store_id", "created_at", numeric_range=True)
    pending_by_expiry = _index("pending_by_expiry", "pending_shard", "expires_at", numeric_range=True)
    fulfilling_by_shipped = _index("fulfilling_by_shipped", "fulfilling_shard", "shipped_at", numeric_range=True)
    paid_by_day = _index("paid_by_day", "paid_day_shard", "order_id")


class RefundRecord(_Record):
    """A refund or return request; each attempt at the provider has its own out_refund_no."""
    short_name = "refunds"
    refund_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    store_id = UnicodeAttribute()
    status = UnicodeAttribute()
    amount_fen = NumberAttribute()
    lines = JSONAttribute(default=list)       # [{sku, quantity, amount_fen}], empty for a refund by amount
    reason = UnicodeAttribute()
    restock = UnicodeAttribute(null=True)     # "YES" when returned units go back on the shelf
    out_refund_no = UnicodeAttribute()        # the current attempt's, stored before the call
    attempts = JSONAttribute(default=list)    # [{out_refund_no, status, cause?}]
    provider_requested = UnicodeAttribute(null=True)  # "YES" once the provider accepted the attempt
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    success_at = NumberAttribute(null=True)
    # Set while the job may have to act (call, poll, retry): sparse, sharded
    open_shard = UnicodeAttribute(null=True)
    # Nightly reconciliation (M13): the order's sub-merchant (copied at creation), and
    # <Beijing day the current attempt was stored to be sent>#<0-9>, set with each
    # out_refund_no sent (sparse: never set on a REQUESTED return awaiting its decision)
    sub_mchid = UnicodeAttribute(null=True)
    requested_day_shard = UnicodeAttribute(null=True)
    by_order = _index("by_order", "order_id", "created_at", numeric_range=True)
    open_by_update = _index("open_by_update", "open_shard", "updated_at", numeric_range=True)
    requested_by_day = _index("requested_by_day", "requested_day_shard", "refund_id")


class LedgerEntryRecord(_Record):
    """The money ledger (double entry, append-only): one movement of one order's money
    from ``credit`` to ``debit``, written with the state change that causes it."""
    short_name = "ledger_entries"
    order_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)    # <cause key>#<n>: unique per cause, so a replay writes nothing
    debit = UnicodeAttribute()                     # the account the money goes to
    credit = UnicodeAttribute()                    # the account it comes from
    amount_fen = NumberAttribute()
    cause = UnicodeAttribute()                     # PAYMENT, FEE, SPLIT, COMMISSION, RECEIVABLE, REFUND, ...
    at = NumberAttribute()
    # The dealer's statement (M10): set on RECEIVABLE memo entries only (sparse index)
    receivable_dealer = UnicodeAttribute(null=True)
    # The nightly ledger check (M10): <Beijing day>#<shard 0-9> of ``at``, on every entry
    day_shard = UnicodeAttribute(null=True)
    receivables_by_dealer = _index("receivables_by_dealer", "receivable_dealer", "at", numeric_range=True)
    by_day = _index("by_day", "day_shard", "order_id")


class StatementSettlementRecord(_Record):
    """A bank transfer the brand recorded against a dealer's monthly statement (M10), put
    once per bank reference and dealer (conditional put: a repeat changes nothing)."""
    short_name = "statement_settlements"
    dealer_id = UnicodeAttribute(hash_key=True)
    reference = UnicodeAttribute(range_key=True)   # the bank transfer's reference: once per dealer
    month = UnicodeAttribute()                     # YYYY-MM (Beijing): the statement it settles
    amount_fen = NumberAttribute()
    direction = UnicodeAttribute()                 # DEALER_PAID_BRAND | BRAND_PAID_DEALER
    note = UnicodeAttribute(null=True)
    recorded_by = UnicodeAttribute()               # <role>:<tenant> of the token
    recorded_at = NumberAttribute()


class SplitPlanRecord(_Record):
    """An order's split plan (M8), made once from the paid order; M9 executes it."""
    short_name = "split_plans"
    order_id = UnicodeAttribute(hash_key=True)
    dealer_id = UnicodeAttribute()
    sub_mchid = UnicodeAttribute(null=True)
    transaction_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()                    # PLANNED -> FINISHED (unfrozen) | EXPIRED (day 28)
    plan = JSONAttribute()                         # the SplitPlan's figures, in fen (refitted once, M9)
    max_ratio_bps = NumberAttribute()
    splittable_fen = NumberAttribute()
    created_at = NumberAttribute()
    # Execution with the provider (M9, domain/settlement.py): every change is a conditional
    # write on ``version``, so two runs of the settle-splits job never both move a plan.
    paid_at = NumberAttribute(null=True)
    commission_due_at = NumberAttribute(null=True)
    settlement = JSONAttribute(default=dict)       # fitted, operations (out_order_no first), repairs, given up
    version = NumberAttribute(default=0)
    due_shard = UnicodeAttribute(null=True)        # S0-S9 until FINISHED / EXPIRED (sparse index for the job)
    next_action_at = NumberAttribute(null=True)
    settling_by_due = _index("settling_by_due", "due_shard", "next_action_at", numeric_range=True)


class SharingOpRecord(_Record):
    """The day index of split and return operations (M13): one item per operation the
    provider accepted, put in the transaction that records the acceptance on the plan, so
    the nightly reconciliation reads a day's operations in ten Queries (the operation
    itself stays in the plan's ``settlement`` JSON, read from there)."""
    short_name = "sharing_ops"
    day_shard = UnicodeAttribute(hash_key=True)    # <Beijing day accepted>#<crc32(order_id) % 10>
    out_no = UnicodeAttribute(range_key=True)      # out_order_no (a split) or out_return_no (a return)
    order_id = UnicodeAttribute()
    sub_mchid = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()                      # BRAND, FINAL, RETURN
    at = NumberAttribute()                         # when the acceptance was recorded


class SplitReceiverRecord(_Record):
    """A receiver added with one sub-merchant at the provider (added before its first split,
    added again when the provider answers NO_RELATION)."""
    short_name = "split_receivers"
    sub_mchid = UnicodeAttribute(hash_key=True)
    receiver = UnicodeAttribute(range_key=True)    # <type>#<account>
    added_at = NumberAttribute()


class CommissionRecord(_Record):
    """A promoter's commission on one order at one level: PENDING -> EARNED -> PAID, or
    CANCELLED / CLAWED_BACK."""
    short_name = "commissions"
    promoter_id = UnicodeAttribute(hash_key=True)
    commission_id = UnicodeAttribute(range_key=True)   # <ms of payment>#<order_id>#<level>: newest last
    order_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute()
    level = NumberAttribute()
    amount_fen = NumberAttribute()
    status = UnicodeAttribute()
    created_at = NumberAttribute()
    earn_due_at = NumberAttribute()                # the earlier of day 25 after payment, after-sale window closed
    earned_at = NumberAttribute(null=True)
    paid_at = NumberAttribute(null=True)          # the provider confirmed the commission split
    # A clawback (M10; commission_id clawback#<ms>#<order>#<refund>, level 0): a paid commission
    # a refund took back, OWED until recovered from the promoter's later commissions on the same
    # dealer's sales (RECOVERED) or written off after 90 days (WRITTEN_OFF; pending_shard W0-W9
    # and earn_due_at = the write-off day while OWED)
    owed_fen = NumberAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)
    pending_shard = UnicodeAttribute(null=True)    # C0-C9 while PENDING (sparse index for the earning job)
    by_order = _index("by_order", "order_id", "commission_id")
    pending_by_due = _index("pending_by_due", "pending_shard", "earn_due_at", numeric_range=True)


class AlertRecord(_Record):
    """Something a person must act on (a refund WeChat cannot finish, a split that failed
    for good, commissions cut to fit a cap, …): kept until acknowledged, readable in the
    back office by the brand, the order's dealer and its store."""
    short_name = "alerts"
    alert_id = UnicodeAttribute(hash_key=True)     # <KIND>-<subject>: one alert per cause, however often raised
    kind = UnicodeAttribute()
    order_id = UnicodeAttribute(null=True)
    brand_id = UnicodeAttribute()
    dealer_id = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    message = UnicodeAttribute()
    detail = JSONAttribute(default=dict)
    status = UnicodeAttribute(default="OPEN")      # OPEN | ACKNOWLEDGED
    created_at = NumberAttribute()
    acknowledged_at = NumberAttribute(null=True)
    acknowledged_by = UnicodeAttribute(null=True)
    by_brand = _index("by_brand", "brand_id", "created_at", numeric_range=True)
    by_dealer = _index("by_dealer", "dealer_id", "created_at", numeric_range=True)
    by_store = _index("by_store", "store_id", "created_at", numeric_range=True)


class OrderEventRecord(_Record):
    """The order's append-only history: every transition, and every refused one with its cause."""
    short_name = "order_events"
    order_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)   # <zero-padded ms>#<random>: sorts by time
    kind = UnicodeAttribute()                     # e.g. PAYMENT_APPLIED, TRANSITION_REFUSED
    detail = JSONAttribute(default=dict)
    at = NumberAttribute()


class IdempotencyRecord(_Record):
    """An Idempotency-Key and what its first request answered (kept >= 24 h)."""
    short_name = "idempotency_keys"
    scope_key = UnicodeAttribute(hash_key=True)   # <customer_id>#<operation>#<key>
    request_hash = UnicodeAttribute()
    state = UnicodeAttribute()                    # IN_PROGRESS | PREPAY_FAILED | DONE
    resource_id = UnicodeAttribute(null=True)     # the order it created, to resume a failed prepay
    response_status = NumberAttribute(null=True)
    response_body = JSONAttribute(null=True)
    created_at = NumberAttribute()
    # Checked on read (DynamoDB Local never deletes on TTL; AWS deletes late)
    expires_at = TTLAttribute()


class OaEventRecord(_Record):
    """An official-account event push, claimed (conditional put) before it is applied, so
    WeChat's retries of it change nothing; what it led to is kept for a few days."""
    short_name = "oa_events"
    event_key = UnicodeAttribute(hash_key=True)   # <FromUserName>#<CreateTime>
    state = UnicodeAttribute()                    # CLAIMED (being applied) | APPLIED
    claim_token = UnicodeAttribute()              # who holds the claim (a release or takeover checks it)
    lease_until = NumberAttribute()               # a CLAIMED event past this may be taken over
    event = UnicodeAttribute()                    # subscribe | SCAN
    scene = UnicodeAttribute()
    channel = UnicodeAttribute()                  # OA_SUBSCRIBE | OA_SCAN (the scan's channel)
    claimed_at = NumberAttribute()
    applied_at = NumberAttribute(null=True)
    outcome = UnicodeAttribute(null=True)         # the scan's binding, SCENE_NOT_FOUND, UNKNOWN_USER, NO_UNIONID
    customer_id = UnicodeAttribute(null=True)
    scan_id = UnicodeAttribute(null=True)
    # Checked on claim too (DynamoDB Local never deletes on TTL; AWS deletes late)
    expires_at = TTLAttribute()


class JobLeaseRecord(_Record):
    """Who runs a scheduled job right now: taken with a conditional put (absent, or its
    lease over), renewed while the run goes on, given back at its end, so a second
    run started meanwhile exits at once. Expiry is checked on every take (no TTL)."""
    short_name = "job_leases"
    job = UnicodeAttribute(hash_key=True)          # e.g. route-traffic
    holder = UnicodeAttribute()                    # the run id holding it
    lease_until = NumberAttribute()                # business time; past it anyone may take it
    acquired_at = NumberAttribute()
    released_at = NumberAttribute(null=True)


class RoutingCountRecord(_Record):
    """Customers route-traffic gave one store on one Beijing day (caps hold across runs):
    only ever added to (ADD), once per store per batch of assignments."""
    short_name = "routing_counts"
    day = UnicodeAttribute(hash_key=True)          # YYYY-MM-DD, Beijing
    store_id = UnicodeAttribute(range_key=True)
    dealer_id = UnicodeAttribute(null=True)
    assigned = NumberAttribute(default=0)
    updated_at = NumberAttribute(null=True)


class RoutingRunRecord(_Record):
    """One run of route-traffic: what it read, assigned and deferred, and its balance
    report per dealer (routing.dealer_balance)."""
    short_name = "routing_runs"
    day = UnicodeAttribute(hash_key=True)          # YYYY-MM-DD, Beijing, of the run's start
    run_id = UnicodeAttribute(range_key=True)      # rt_<ms>_<random>: in time order
    started_at = NumberAttribute()
    finished_at = NumberAttribute(null=True)
    outcome = UnicodeAttribute()                   # DONE | LEASE_LOST
    stats = JSONAttribute(default=dict)
    report = JSONAttribute(default=dict)


class ReconciliationReportRecord(_Record):
    """The nightly reconciliation's report of one Beijing day (M13): a header per day
    (``item`` HEAD: status, the content hash and revision of the report in force, the
    bills read, counts), and for each revision its parts: the summary cells of each
    sub-merchant (``R<rev>#S#<sub_mchid>``), the discrepancies with their repair in chunks
    (``R<rev>#D#<sub_mchid>#<n>``) and the ledger breaks (``R<rev>#L#<n>``) — chunks keep
    every item far below DynamoDB's 400 KB."""
    short_name = "reconciliation_reports"
    day = UnicodeAttribute(hash_key=True)          # YYYY-MM-DD, Beijing
    item = UnicodeAttribute(range_key=True)        # HEAD | R<rev>#S#<sub> | R<rev>#D#<sub>#<n> | R<rev>#L#<n>
    sub_mchid = UnicodeAttribute(null=True)        # a part's sub-merchant (S and D parts)
    status = UnicodeAttribute(null=True)           # HEAD: WAITING | REFUSED | DONE
    revision = NumberAttribute(null=True)          # HEAD: the revision in force (0 while WAITING)
    content_hash = UnicodeAttribute(null=True)     # HEAD: sha256 of the revision's content
    body = JSONAttribute(default=dict)             # HEAD: counts, bills, repairs; parts: their rows
    brand_id = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute(null=True)

class OutboxRecord(_Record):
    """Follow-up work written in the same transaction as the change that causes it,
    consumed from the table's stream (in AWS by the outbox_consumer Lambda, locally
    by the scheduler). Items expire through TTL once consumed work is long done."""
    short_name = "outbox"
    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()            # e.g. PAYMENT_CAPTURED (past tense: an event)
    payload = JSONAttribute(default=dict)
    created_at = NumberAttribute()
    consumed_at = NumberAttribute(null=True)   # set once, by the first consumer to finish it
    expires_at = TTLAttribute(null=True)

    class Meta:
        table_name = UNBOUND
        billing_mode = "PAY_PER_REQUEST"
        stream_view_type = "NEW_IMAGE"


class FunnelCounterRecord(_Record):
    """One scope's funnel counters for one Beijing day (M7, ``chalicelib.domain.funnel``),
    only ever added to (UpdateItem ADD) by the outbox consumer, once per event."""
    short_name = "funnel_counters"
    scope = UnicodeAttribute(hash_key=True)        # store#<id> | staff#<id> | campaign#<scene> | dealer#<id>
    day = UnicodeAttribute(range_key=True)         # YYYY-MM-DD, Beijing
    scans = NumberAttribute(null=True)             # a field nothing has added to yet is absent (0)
    followers = NumberAttribute(null=True)
    new_customers = NumberAttribute(null=True)
    bindings = NumberAttribute(null=True)
    orders = NumberAttribute(null=True)
    gmv_fen = NumberAttribute(null=True)
    updated_at = NumberAttribute(null=True)


class CountedEventRecord(_Record):
    """An outbox item the funnel has counted: put in the same transaction as its
    counters, on condition of absence, so a replayed stream record counts once."""
    short_name = "counted_events"
    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    counted_at = NumberAttribute()
    expires_at = TTLAttribute()                    # long after the stream (24 h) could replay it


ALL_RECORDS: tuple[type[_Record], ...] = (
    BrandRecord,
    DealerRecord,
    SharingChangeRecord,
    StoreRecord,
    StoreGeoRecord,
    StaffRecord,
    ProductRecord,
    StockRecord,
    CustomerRecord,
    CustomerIdentityRecord,
    OwnershipChangeRecord,
    PromoterRecord,
    ReferralRecord,
    SceneRecord,
    UnitCodeBatchRecord,
    ScanRecord,
    PointsEntryRecord,
    OrderRecord,
    RefundRecord,
    OrderEventRecord,
    AlertRecord,
    LedgerEntryRecord,
    StatementSettlementRecord,
    SplitPlanRecord,
    SharingOpRecord,
    SplitReceiverRecord,
    CommissionRecord,
    IdempotencyRecord,
    OaEventRecord,
    OutboxRecord,
    FunnelCounterRecord,
    CountedEventRecord,
    JobLeaseRecord,
    RoutingCountRecord,
    RoutingRunRecord,
    ReconciliationReportRecord,
)
