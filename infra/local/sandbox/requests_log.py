"""Requests per idempotency key (contract: GET /sandbox/requests?api=&key=), so tests
can tell a retry that WeChat answered from its first result (received + 1) from a
second operation (accepted + 1)."""
from __future__ import annotations

from infra.local.sandbox.http import Reply, Request

APIS = ("prepay", "refund", "profitsharing_order", "profitsharing_return", "profitsharing_unfreeze",
        "receivers_add", "receivers_delete")   # receivers_*: key "<sub_mchid>#<account>"


class RequestLog:
    def __init__(self, state):
        self._state = state

    def received(self, api: str, key: str) -> None:
        """Count a request that reached the API with this key (whatever its answer)."""
        self._bump(api, key, "received")

    def accepted(self, api: str, key: str) -> None:
        """Count an operation carried out for this key (call it in the operation's
        transaction; a repeat answered from the first result does not call it)."""
        self._bump(api, key, "accepted")

    def _bump(self, api: str, key: str, column: str) -> None:
        if api not in APIS:
            raise ValueError(f"unknown api {api!r}")
        with self._state.transaction() as db:
            db.execute("INSERT INTO pay_requests (api, key, received, accepted) VALUES (?, ?, 0, 0)"
                       " ON CONFLICT (api, key) DO NOTHING", (api, key))
            db.execute(f"UPDATE pay_requests SET {column} = {column} + 1 WHERE api = ? AND key = ?", (api, key))

    def counts(self, api: str, key: str) -> dict:
        row = self._state.row("SELECT received, accepted FROM pay_requests WHERE api = ? AND key = ?", (api, key))
        return {"received": row["received"], "accepted": row["accepted"]} if row else {"received": 0, "accepted": 0}

    def routes(self, router) -> None:
        router.add("GET", "/sandbox/requests", self.get_requests)

    def get_requests(self, request: Request) -> Reply:
        api, key = request.query.get("api"), request.query.get("key")
        if api not in APIS:
            return Reply.error(400, "INVALID_QUERY", f"api must be one of {', '.join(APIS)}", {"api": api})
        if not key:
            return Reply.error(400, "INVALID_QUERY", "key (the idempotency key) is required")
        return Reply.json({"api": api, "key": key, **self.counts(api, key)})
