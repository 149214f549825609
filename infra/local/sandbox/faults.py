"""Injected faults and bill discrepancies (contract, "Sandbox controls": /sandbox/faults).

A fault holds until ``DELETE /sandbox/faults`` or, with ``"once": true``, for the
next occasion only. Acted on so far: ``response_bad_signature`` (signing of /v3
responses), ``notify_fail`` (notification deliveries), ``refunds_hold`` (new
refunds), and for profit sharing (``profitsharing.py``): ``split_receiver_fails``
``{"fail_reason"?, "account"?}`` and its older spelling ``receiver_fails``
``{"account", "reason"?}`` (a receiver of a split accepted from now on — that account,
or any — ends CLOSED with that reason, NO_RELATION by default),
``profitsharing_error`` ``{"api"?, "code"?, "carried_out"?}`` (a profit-sharing API
answers SYSTEM_ERROR / FREQUENCY_LIMITED / ... instead; with ``carried_out`` the
operation is done first and its answer lost) and ``profitsharing_slow``
``{"delay_s", "api"?}`` (the answer comes that many wall seconds late: a client
timeout); their ``api`` may also be ``profitsharing_return`` /
``profitsharing_return_query`` (``returns.py``). The bill kinds (``unknown_payment``,
``amount_differs``, ``missed_refund``, ``split_differs``, ``bill_hash_corrupt``) are
``bills.py``'s: it reads them when it makes a day's bill, and its ``appliers`` carry out
``unknown_payment`` / ``missed_refund`` when they are injected (an applier may refuse with
FaultError, or add to the params it stores). Readers use ``Faults.active(kind)`` /
``Faults.take(kind)`` / ``Faults.take_matching``.
"""
from __future__ import annotations

import json
import re

from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.profitsharing import FAIL_REASONS, FAULT_APIS, FAULT_CODES

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
_MCHID = re.compile(r"^\d{8,12}$")


def _string(name):
    return name, lambda v: isinstance(v, str) and 0 < len(v) <= 64


def _fen(name):
    return name, lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0


_DATE_FIELD = ("date", lambda v: isinstance(v, str) and bool(_DATE.match(v)))

# kind -> (required fields, optional fields), each field a (name, check) pair.
KINDS: dict[str, tuple[tuple, tuple]] = {
    "response_bad_signature": ((), ()),
    "notify_fail": ((), ()),
    "refunds_hold": ((), ()),
    "receiver_fails": ((_string("account"),), (("reason", lambda v: isinstance(v, str) and bool(_CODE.match(v))),)),
    "split_receiver_fails": ((), (("fail_reason", lambda v: v in FAIL_REASONS), _string("account"))),
    "profitsharing_error": ((), (("api", lambda v: v in FAULT_APIS), ("code", lambda v: v in FAULT_CODES),
                                 ("carried_out", lambda v: isinstance(v, bool)))),
    "profitsharing_slow": ((("delay_s", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                              and 0 < v <= 60),), (("api", lambda v: v in FAULT_APIS),)),
    "unknown_payment": ((_DATE_FIELD,), (_string("out_trade_no"), _fen("total_fen"),
                                         ("sub_mchid", lambda v: isinstance(v, str) and bool(_MCHID.match(v))))),
    "amount_differs": ((_DATE_FIELD, _string("out_trade_no"), _fen("total_fen")), ()),
    "missed_refund": ((_DATE_FIELD, _string("out_trade_no"), _fen("amount_fen")), ()),
    "split_differs": ((_DATE_FIELD, _string("out_order_no")), ()),
    "bill_hash_corrupt": ((_DATE_FIELD,), ()),
}
DEFAULTS = {"receiver_fails": {"reason": "NO_RELATION"}, "split_receiver_fails": {"fail_reason": "NO_RELATION"},
            "profitsharing_error": {"code": "SYSTEM_ERROR", "carried_out": False}}


class FaultError(ValueError):
    pass


def validate(body) -> tuple[str, dict, bool]:
    """A /sandbox/faults body -> (kind, params, once), or FaultError saying what is wrong."""
    if not isinstance(body, dict):
        raise FaultError("send a JSON object {\"kind\": ..., \"once\"?: true, ...}")
    kind = body.get("kind")
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}: one of {', '.join(sorted(KINDS))}")
    once = body.get("once", False)
    if not isinstance(once, bool):
        raise FaultError("once must be true or false")
    required, optional = KINDS[kind]
    required_names = {name for name, _ in required}
    known = required_names | {name for name, _ in optional}
    unexpected = sorted(set(body) - known - {"kind", "once"})
    if unexpected:
        raise FaultError(f"{kind} takes no field {', '.join(unexpected)}")
    params = dict(DEFAULTS.get(kind, {}))
    for name, check in required + optional:
        if name not in body:
            if name in required_names:
                raise FaultError(f"{kind} needs {name}")
            continue
        if not check(body[name]):
            raise FaultError(f"{kind}: {name} has an invalid value {body[name]!r}")
        params[name] = body[name]
    return kind, params, once


class Faults:
    def __init__(self, state, clock):
        self._state = state
        self._clock = clock
        # kind -> params -> params: carried out when such a fault is injected (bills.py)
        self.appliers: dict[str, callable] = {}

    def add(self, kind: str, params: dict, once: bool) -> dict:
        with self._state.transaction() as db:
            cursor = db.execute("INSERT INTO pay_faults (kind, params, once, created_at) VALUES (?, ?, ?, ?)",
                                (kind, json.dumps(params), int(once), self._clock.timestamp()))
        return {"fault_id": cursor.lastrowid, "kind": kind, "once": once, **params}

    def clear(self, kind: str | None = None) -> int:
        with self._state.transaction() as db:
            if kind:
                return db.execute("DELETE FROM pay_faults WHERE kind = ?", (kind,)).rowcount
            return db.execute("DELETE FROM pay_faults").rowcount

    def list(self) -> list[dict]:
        return [{"fault_id": row["fault_id"], "kind": row["kind"], "once": bool(row["once"]),
                 **json.loads(row["params"])}
                for row in self._state.rows("SELECT * FROM pay_faults ORDER BY fault_id")]

    def active(self, kind: str) -> list[dict]:
        """Every standing fault of a kind (params), without using up a one-time fault."""
        return [fault for fault in self.list() if fault["kind"] == kind]

    def take(self, kind: str) -> dict | None:
        """The fault of this kind that applies now, if any; a one-time fault is used up
        (the oldest first, so faults act in the order they were injected)."""
        with self._state.transaction() as db:
            row = db.execute("SELECT fault_id, params, once FROM pay_faults WHERE kind = ?"
                             " ORDER BY once DESC, fault_id LIMIT 1", (kind,)).fetchone()
            if row is None:
                return None
            if row[2]:
                db.execute("DELETE FROM pay_faults WHERE fault_id = ?", (row[0],))
        return json.loads(row[1])

    def take_matching(self, kind: str, match) -> dict | None:
        """Like ``take``, for the oldest fault of this kind whose params satisfy ``match``."""
        with self._state.transaction() as db:
            rows = db.execute("SELECT fault_id, params, once FROM pay_faults WHERE kind = ?"
                              " ORDER BY once DESC, fault_id", (kind,)).fetchall()
            for fault_id, params, once in rows:
                params = json.loads(params)
                if match(params):
                    if once:
                        db.execute("DELETE FROM pay_faults WHERE fault_id = ?", (fault_id,))
                    return params
        return None

    # -- controls ---------------------------------------------------------------------------------

    def routes(self, router) -> None:
        router.add("POST", "/sandbox/faults", self.post_fault)
        router.add("GET", "/sandbox/faults", lambda request: Reply.json({"faults": self.list()}))
        router.add("DELETE", "/sandbox/faults", self.delete_faults)

    def post_fault(self, request: Request) -> Reply:
        try:
            kind, params, once = validate(request.json())
            with self._state.transaction():   # an applier's work and the fault stand or fall together
                if kind in self.appliers:
                    params = self.appliers[kind](params)
                fault = self.add(kind, params, once)
        except ValueError as exc:  # FaultError, or a body that is not JSON
            return Reply.error(400, "INVALID_FAULT", str(exc) if isinstance(exc, FaultError) else "send JSON")
        return Reply.json({"fault": fault}, 201)

    def delete_faults(self, request: Request) -> Reply:
        kind = request.query.get("kind")
        if kind is not None and kind not in KINDS:
            return Reply.error(400, "INVALID_FAULT", f"unknown fault kind {kind!r}")
        return Reply.json({"cleared": self.clear(kind)})
