"""What the provider knows of each merchant: profit-sharing ratio cap, available
balance, return opt-in (contract: GET/PUT /sandbox/merchants/{mchid}).

WeChat knows every merchant it opened, so the sandbox accepts any merchant number of
8-12 digits; a merchant gets a row only once something about it changes, until then
it has the defaults. Balances move with payments (+ total - fee) and refunds.
"""
from __future__ import annotations

import re

from infra.local.sandbox.http import Reply, Request

MCHID = re.compile(r"^\d{8,12}$")
DEFAULT_MAX_RATIO = 3000                 # 1/10000: 30 %
DEFAULT_BRAND_BALANCE_FEN = 10_000_000   # the brand's account funds profit-sharing returns
MAX_RATIO_CEILING = 10000


def is_merchant(mchid) -> bool:
    return isinstance(mchid, str) and bool(MCHID.match(mchid))


class Merchants:
    def __init__(self, state, clock, brand_mchid: str):
        self._state = state
        self._clock = clock
        self._brand_mchid = brand_mchid

    def _defaults(self, mchid: str) -> dict:
        return {"mchid": mchid, "max_ratio": DEFAULT_MAX_RATIO, "return_opt_in": True,
                "balance_fen": DEFAULT_BRAND_BALANCE_FEN if mchid == self._brand_mchid else 0}

    def settings(self, mchid: str) -> dict:
        """``{"mchid", "max_ratio", "balance_fen", "return_opt_in"}`` of any merchant."""
        row = self._state.row("SELECT max_ratio, balance_fen, return_opt_in FROM pay_merchants WHERE mchid = ?",
                              (mchid,))
        if row is None:
            return self._defaults(mchid)
        return {"mchid": mchid, "max_ratio": row["max_ratio"], "balance_fen": row["balance_fen"],
                "return_opt_in": bool(row["return_opt_in"])}

    def update(self, mchid: str, **changes) -> dict:
        with self._state.transaction() as db:
            merged = {**self.settings(mchid), **changes}
            db.execute("INSERT INTO pay_merchants (mchid, max_ratio, balance_fen, return_opt_in, updated_at)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (mchid) DO UPDATE SET max_ratio = excluded.max_ratio,"
                       " balance_fen = excluded.balance_fen, return_opt_in = excluded.return_opt_in,"
                       " updated_at = excluded.updated_at",
                       (mchid, merged["max_ratio"], merged["balance_fen"], int(merged["return_opt_in"]),
                        self._clock.timestamp()))
        return merged

    def add_balance(self, mchid: str, delta_fen: int) -> int:
        """Moves a merchant's available balance (joins the caller's transaction); returns it."""
        with self._state.transaction():
            balance = self.settings(mchid)["balance_fen"] + delta_fen
            self.update(mchid, balance_fen=balance)
        return balance

    # -- controls ---------------------------------------------------------------------------------

    def routes(self, router) -> None:
        router.add("GET", "/sandbox/merchants/{mchid}", self.get_merchant)
        router.add("PUT", "/sandbox/merchants/{mchid}", self.put_merchant)

    def get_merchant(self, request: Request) -> Reply:
        mchid = request.params["mchid"]
        if not is_merchant(mchid):
            return Reply.error(404, "MERCHANT_NOT_FOUND", "a merchant number has 8 to 12 digits")
        return Reply.json(self.settings(mchid))

    def put_merchant(self, request: Request) -> Reply:
        mchid = request.params["mchid"]
        if not is_merchant(mchid):
            return Reply.error(404, "MERCHANT_NOT_FOUND", "a merchant number has 8 to 12 digits")
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Reply.error(400, "MALFORMED_JSON", 'send {"max_ratio"?, "balance_fen"?, "return_opt_in"?}')
        unknown = sorted(set(body) - {"max_ratio", "balance_fen", "return_opt_in"})
        if unknown:
            return Reply.error(400, "INVALID_MERCHANT_SETTINGS", f"unknown field(s) {', '.join(unknown)}",
                               {"fields": unknown})
        checks = {"max_ratio": lambda v: _integer(v) and 0 <= v <= MAX_RATIO_CEILING,
                  "balance_fen": lambda v: _integer(v) and v >= 0,
                  "return_opt_in": lambda v: isinstance(v, bool)}
        bad = sorted(name for name, value in body.items() if not checks[name](value))
        if bad:
            return Reply.error(400, "INVALID_MERCHANT_SETTINGS",
                               "max_ratio is an integer 0-10000 (1/10000), balance_fen an integer >= 0, "
                               "return_opt_in a boolean", {"fields": bad})
        return Reply.json(self.update(mchid, **body))


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
