"""The sandbox's own memory (used login codes, access tokens, ...), in SQLite
under the stack's data folder, so a restart forgets nothing WeChat would remember."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS used_login_codes (code TEXT PRIMARY KEY, used_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY, appid TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS access_tokens_by_app ON access_tokens (appid, expires_at);

-- WeChat Pay. Times are business-clock Unix seconds; money is integer fen.
-- Per-merchant settings and the available balance (a row appears on first change).
CREATE TABLE IF NOT EXISTS pay_merchants (
    mchid TEXT PRIMARY KEY, max_ratio INTEGER NOT NULL, balance_fen INTEGER NOT NULL,
    return_opt_in INTEGER NOT NULL, updated_at REAL NOT NULL);
-- One row per out_trade_no (unique across the sandbox: an order_id is an out_trade_no).
CREATE TABLE IF NOT EXISTS pay_transactions (
    out_trade_no TEXT PRIMARY KEY, sp_mchid TEXT NOT NULL, sp_appid TEXT NOT NULL,
    sub_mchid TEXT NOT NULL, sub_appid TEXT, prepay_id TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,              -- the prepay body, canonical JSON (repeat detection)
    description TEXT NOT NULL, total_fen INTEGER NOT NULL, currency TEXT NOT NULL,
    payer_sp_openid TEXT, payer_sub_openid TEXT, attach TEXT, notify_url TEXT NOT NULL,
    profit_sharing INTEGER NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
    trade_state TEXT NOT NULL,          -- NOTPAY, SUCCESS, REFUND, CLOSED
    transaction_id TEXT UNIQUE, success_at REAL, payer_total_fen INTEGER,
    fee_fen INTEGER,                    -- the provider's fee, taken at payment
    closed_at REAL, receipt_confirmed_at REAL,   -- receipt_confirmed_at: the BUYER confirmed (control)
    shipped_at REAL,                    -- shipping information uploaded (wxa_shipping)
    received_at REAL,                   -- receipt confirmed: by the buyer, or by WeChat 10 days after shipping
    settled_at REAL);                   -- settled (splittable); see pay.py "Settlement"
CREATE INDEX IF NOT EXISTS pay_transactions_open ON pay_transactions (trade_state, expires_at);
CREATE INDEX IF NOT EXISTS pay_transactions_unsettled ON pay_transactions (received_at, shipped_at);
CREATE TABLE IF NOT EXISTS pay_refunds (
    out_refund_no TEXT PRIMARY KEY, refund_id TEXT NOT NULL UNIQUE,
    out_trade_no TEXT NOT NULL REFERENCES pay_transactions (out_trade_no),
    sub_mchid TEXT NOT NULL, request TEXT NOT NULL,
    refund_fen INTEGER NOT NULL, total_fen INTEGER NOT NULL,
    fee_refund_fen INTEGER NOT NULL,    -- the part of the fee given back with this refund
    reason TEXT, notify_url TEXT,
    status TEXT NOT NULL,               -- PROCESSING, SUCCESS, CLOSED, ABNORMAL
    held INTEGER NOT NULL,              -- 1: waits for /sandbox/refunds/{no}/finish (refunds_hold)
    created_at REAL NOT NULL, complete_at REAL NOT NULL, finished_at REAL, success_at REAL);
CREATE INDEX IF NOT EXISTS pay_refunds_by_trade ON pay_refunds (out_trade_no);
CREATE INDEX IF NOT EXISTS pay_refunds_due ON pay_refunds (status, held, complete_at);
-- Notification deliveries: one row per delivery (notify "twice" makes two rows
-- carrying the same notification), so retries survive a restart.
CREATE TABLE IF NOT EXISTS pay_deliveries (
    delivery_id INTEGER PRIMARY KEY AUTOINCREMENT, notification_id TEXT NOT NULL,
    subject TEXT NOT NULL,              -- out_trade_no or out_refund_no
    event_type TEXT NOT NULL, url TEXT NOT NULL, body BLOB NOT NULL,
    status TEXT NOT NULL,               -- PENDING, SENDING, DELIVERED, GAVE_UP
    attempts INTEGER NOT NULL, created_at REAL NOT NULL, next_attempt_at REAL,
    last_attempt_at REAL, last_result TEXT);
CREATE INDEX IF NOT EXISTS pay_deliveries_due ON pay_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS pay_deliveries_by_subject ON pay_deliveries (subject);
-- Requests per idempotency key, for GET /sandbox/requests.
CREATE TABLE IF NOT EXISTS pay_requests (
    api TEXT NOT NULL, key TEXT NOT NULL, received INTEGER NOT NULL, accepted INTEGER NOT NULL,
    PRIMARY KEY (api, key));
CREATE TABLE IF NOT EXISTS pay_faults (
    fault_id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, params TEXT NOT NULL,
    once INTEGER NOT NULL, created_at REAL NOT NULL);

-- Mini-program shipping information (shipping.py): one row per paid order, written by the
-- first successful upload_shipping_info and never changed by a later one.
CREATE TABLE IF NOT EXISTS wxa_shipping (
    out_trade_no TEXT PRIMARY KEY REFERENCES pay_transactions (out_trade_no),
    transaction_id TEXT NOT NULL UNIQUE,
    logistics_type INTEGER NOT NULL,    -- 1 express, 2 same-city, 3 virtual, 4 buyer pick-up
    delivery_mode INTEGER NOT NULL,     -- 1 unified, 2 split
    is_all_delivered INTEGER,           -- split delivery only
    shipping_list TEXT NOT NULL,        -- JSON: [{tracking_no?, express_company?, item_desc, contact?}]
    upload_time TEXT NOT NULL,          -- as the merchant declared it (RFC 3339)
    uploaded_at REAL NOT NULL,          -- business clock
    request TEXT NOT NULL,              -- the upload body as received, canonical JSON
    reminders INTEGER NOT NULL DEFAULT 0,   -- notify_confirm_receive calls
    last_reminded_at REAL, last_received_time INTEGER);

-- Profit sharing (profitsharing.py). Receivers added per sub-merchant (delete removes the row).
CREATE TABLE IF NOT EXISTS ps_receivers (
    sub_mchid TEXT NOT NULL, type TEXT NOT NULL, account TEXT NOT NULL,
    appid TEXT, sub_appid TEXT,
    name TEXT,                          -- decrypted with the platform private key
    relation_type TEXT NOT NULL, custom_relation TEXT, added_at REAL NOT NULL,
    PRIMARY KEY (sub_mchid, type, account));
-- Split and unfreeze orders: one row per out_order_no (unique across the sandbox).
CREATE TABLE IF NOT EXISTS ps_orders (
    out_order_no TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,                 -- SPLIT, UNFREEZE
    sub_mchid TEXT NOT NULL, transaction_id TEXT NOT NULL, out_trade_no TEXT NOT NULL,
    request TEXT NOT NULL,              -- the body as first accepted, canonical JSON
    unfreeze_unsplit INTEGER NOT NULL,  -- 1 for an UNFREEZE too
    description TEXT,                   -- an unfreeze's description
    state TEXT NOT NULL,                -- PROCESSING, FINISHED
    created_at REAL NOT NULL, finish_at REAL NOT NULL,   -- finish_at: when the result falls due
    finished_at REAL);
CREATE INDEX IF NOT EXISTS ps_orders_by_transaction ON ps_orders (transaction_id, created_at);
CREATE INDEX IF NOT EXISTS ps_orders_due ON ps_orders (state, finish_at);
CREATE TABLE IF NOT EXISTS ps_order_receivers (
    out_order_no TEXT NOT NULL REFERENCES ps_orders (out_order_no), position INTEGER NOT NULL,
    type TEXT NOT NULL, account TEXT NOT NULL, amount_fen INTEGER NOT NULL, description TEXT NOT NULL,
    detail_id TEXT NOT NULL UNIQUE,
    result TEXT NOT NULL,               -- PENDING, SUCCESS, CLOSED
    fail_reason TEXT,
    planned_fail_reason TEXT,           -- from an injected fault, decided at acceptance
    created_at REAL NOT NULL, finished_at REAL,
    PRIMARY KEY (out_order_no, position));
-- Transactions whose remaining funds were unfrozen (by an order, or 30 days after payment).
CREATE TABLE IF NOT EXISTS ps_unfrozen (
    transaction_id TEXT PRIMARY KEY, out_trade_no TEXT NOT NULL, unfrozen_at REAL NOT NULL,
    cause TEXT NOT NULL,                -- SPLIT (unfreeze_unsplit), UNFREEZE, AUTO
    out_order_no TEXT, amount_fen INTEGER NOT NULL);
-- Returns of split orders (returns.py): one row per out_return_no (unique across the sandbox).
CREATE TABLE IF NOT EXISTS ps_returns (
    out_return_no TEXT PRIMARY KEY, return_id TEXT NOT NULL UNIQUE, sub_mchid TEXT NOT NULL,
    out_order_no TEXT NOT NULL REFERENCES ps_orders (out_order_no), order_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL, return_mchid TEXT NOT NULL, amount_fen INTEGER NOT NULL,
    description TEXT NOT NULL,
    request TEXT NOT NULL,              -- the body as first accepted, canonical JSON
    result TEXT NOT NULL,               -- SUCCESS, FAILED (decided at once)
    fail_reason TEXT, created_at REAL NOT NULL, finished_at REAL);
CREATE INDEX IF NOT EXISTS ps_returns_by_order ON ps_returns (out_order_no, return_mchid);
CREATE INDEX IF NOT EXISTS pay_transactions_paid ON pay_transactions (profit_sharing, success_at);
-- A day's bills (bills.py) read payments, refunds, splits and returns by time.
CREATE INDEX IF NOT EXISTS pay_transactions_by_success ON pay_transactions (success_at);
CREATE INDEX IF NOT EXISTS pay_refunds_by_created ON pay_refunds (created_at);
CREATE INDEX IF NOT EXISTS ps_orders_by_created ON ps_orders (created_at);
CREATE INDEX IF NOT EXISTS ps_returns_by_created ON ps_returns (created_at);
"""

# Columns added after a table was first created: a data folder made by an older sandbox
# gets them on start (CREATE TABLE IF NOT EXISTS leaves an existing table as it was).
_ADDED_COLUMNS = {"pay_transactions": ("shipped_at REAL", "received_at REAL", "settled_at REAL")}


class SandboxState:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._add_missing_columns()
        self._db.executescript(_SCHEMA)
        # Re-entrant, so a helper that opens a transaction can be called from
        # inside another one (it then joins the outer transaction).
        self._lock = threading.RLock()
        self._depth = 0

    def _add_missing_columns(self) -> None:
        for table, columns in _ADDED_COLUMNS.items():
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if not present:
                continue  # a new data folder: the schema creates the table whole
            for column in columns:
                if column.split()[0] not in present:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    @contextmanager
    def transaction(self):
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._db.execute("COMMIT")

    def rows(self, sql: str, params=()) -> list[dict]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def row(self, sql: str, params=()) -> dict | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def use_login_code_once(self, code: str, at: float) -> bool:
        """True the first time a one-time code is used, False ever after."""
        with self.transaction() as db:
            try:
                db.execute("INSERT INTO used_login_codes (code, used_at) VALUES (?, ?)", (code, at))
            except sqlite3.IntegrityError:
                return False
        return True

    def current_access_token(self, appid: str, now: float):
        with self._lock:
            return self._db.execute(
                "SELECT token, expires_at FROM access_tokens WHERE appid = ? AND expires_at > ?"
                " ORDER BY expires_at DESC LIMIT 1", (appid, now)).fetchone()

    def add_access_token(self, appid: str, token: str, now: float, expires_at: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO access_tokens VALUES (?, ?, ?, ?)", (token, appid, now, expires_at))

    def access_token(self, token: str):
        with self._lock:
            return self._db.execute(
                "SELECT appid, expires_at FROM access_tokens WHERE token = ?", (token,)).fetchone()
