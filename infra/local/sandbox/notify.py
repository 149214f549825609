"""Notifications to the merchant's notify_url, delivered and retried as WeChat does.

A notification is the envelope of ``wechatpay-v3.md`` §3 with its resource encrypted
under the APIv3 key; each delivery is signed at the moment it is sent (wall clock,
platform key). A 2xx answer ends it; anything else, a connection error or no answer
within 5 s is a failed attempt, retried on WeChat's schedule measured on the BUSINESS
clock. Deliveries live in SQLite (``pay_deliveries``), so a restart loses none.

A delivery is claimed (status SENDING) before it is sent, so the background thread,
a clock move and a control call never send the same delivery twice at once.
"""
from __future__ import annotations

import http.client
import json
import sys
import time
import uuid
from urllib.parse import urlsplit

from chalicelib.domain.time import rfc3339
from infra.local.sandbox.http import Reply, Request
from infra.local.sandbox.signing import encrypt_resource, signed_headers

# After the first attempt: 15 s, 15 s, 30 s, 3 m, 10 m, 20 m, 30 m, 30 m, 30 m, 60 m, 3 h,
# 3 h, 3 h, 6 h, 6 h — 15 retries over 24 h 4 m, then WeChat gives up.
RETRY_INTERVALS_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
MAX_ATTEMPTS = 1 + len(RETRY_INTERVALS_S)
DELIVERY_TIMEOUT_S = 5.0


def retry_delay(failed_attempts: int) -> int | None:
    """Seconds until the next attempt once ``failed_attempts`` attempts have failed;
    None when WeChat gives up."""
    if failed_attempts < 1:
        raise ValueError("a retry follows at least one failed attempt")
    if failed_attempts > len(RETRY_INTERVALS_S):
        return None
    return RETRY_INTERVALS_S[failed_attempts - 1]


def http_post(url: str, headers: dict, body: bytes, timeout_s: float = DELIVERY_TIMEOUT_S) -> tuple[bool, str]:
    """POST without following redirects (WeChat does not); (delivered, what happened)."""
    connection = None
    try:
        parts = urlsplit(url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return 200 <= response.status < 300, f"HTTP {response.status}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # ValueError: e.g. a port that is no number
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        if connection is not None:
            connection.close()


class Notifier:
    def __init__(self, state, clock, keys, faults, wall=time.time, post=http_post, log=sys.stdout):
        self._state = state
        self._clock = clock
        self._keys = keys
        self._faults = faults
        self._wall = wall
        self._post = post
        self._log = log

    def enqueue(self, subject: str, url: str, event_type: str, summary: str, resource: dict,
                original_type: str, copies: int = 1, claim: bool = False) -> list[int]:
        """Writes ``copies`` deliveries of one new notification, due now (joins the caller's
        transaction). ``claim=True`` marks them SENDING: the caller sends them itself with
        ``deliver`` right after its transaction."""
        now = self._clock.timestamp()
        envelope = {"id": str(uuid.uuid4()), "create_time": rfc3339(now), "resource_type": "encrypt-resource",
                    "event_type": event_type, "summary": summary,
                    "resource": encrypt_resource(self._keys.apiv3_key, resource, original_type, original_type)}
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        ids = []
        with self._state.transaction() as db:
            for _ in range(copies):
                cursor = db.execute(
                    "INSERT INTO pay_deliveries (notification_id, subject, event_type, url, body, status, attempts,"
                    " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (envelope["id"], subject, event_type, url, body, "SENDING" if claim else "PENDING", now, now))
                ids.append(cursor.lastrowid)
        return ids

    def deliver(self, delivery_ids: list[int]) -> list[bool]:
        """Sends claimed (SENDING) deliveries once each, one after the other."""
        return [self._attempt(delivery_id) for delivery_id in delivery_ids]

    def deliver_due(self) -> int:
        """Sends every delivery whose time has come, once; returns how many were tried.
        A delivery that fails again is rescheduled from the new now, so it is not due
        again within the same call."""
        now = self._clock.timestamp()
        with self._state.transaction() as db:
            ids = [row[0] for row in db.execute(
                "SELECT delivery_id FROM pay_deliveries WHERE status = 'PENDING' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, delivery_id", (now,))]
            db.executemany("UPDATE pay_deliveries SET status = 'SENDING' WHERE delivery_id = ?",
                           [(i,) for i in ids])
        self.deliver(ids)
        return len(ids)

    def recover(self) -> int:
        """At start-up: deliveries a stopped sandbox was sending are due again at once."""
        with self._state.transaction() as db:
            return db.execute("UPDATE pay_deliveries SET status = 'PENDING', next_attempt_at = ?"
                              " WHERE status = 'SENDING'", (self._clock.timestamp(),)).rowcount

    def _attempt(self, delivery_id: int) -> bool:
        row = self._state.row("SELECT * FROM pay_deliveries WHERE delivery_id = ?", (delivery_id,))
        if row is None or row["status"] != "SENDING":
            return False
        try:
            if self._faults.take("notify_fail") is not None:
                delivered, result = False, "dropped (fault notify_fail)"
            else:
                headers = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "Mozilla/4.0",
                           **signed_headers(self._keys, row["body"], self._wall())}
                delivered, result = self._post(row["url"], headers, row["body"])
        except Exception as exc:  # noqa: BLE001 - a claimed delivery must never be left SENDING
            delivered, result = False, f"sandbox error: {type(exc).__name__}: {exc}"
        attempts, now = row["attempts"] + 1, self._clock.timestamp()
        if delivered:
            status, next_at = "DELIVERED", None
        else:
            delay = retry_delay(attempts)
            status, next_at = ("GAVE_UP", None) if delay is None else ("PENDING", now + delay)
        with self._state.transaction() as db:
            db.execute("UPDATE pay_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?,"
                       " last_result = ? WHERE delivery_id = ?",
                       (status, attempts, next_at, now, result, delivery_id))
        print(json.dumps({"notification": row["notification_id"], "event_type": row["event_type"],
                          "subject": row["subject"], "attempt": attempts, "result": result, "status": status}),
              file=self._log, flush=True)
        return delivered

    # -- controls ---------------------------------------------------------------------------------

    def deliveries(self, subject: str) -> list[dict]:
        rows = self._state.rows("SELECT * FROM pay_deliveries WHERE subject = ? ORDER BY delivery_id", (subject,))
        return [{"delivery_id": r["delivery_id"], "notification_id": r["notification_id"],
                 "event_type": r["event_type"], "url": r["url"], "status": r["status"], "attempts": r["attempts"],
                 "next_attempt_at": rfc3339(r["next_attempt_at"]) if r["next_attempt_at"] is not None else None,
                 "last_attempt_at": rfc3339(r["last_attempt_at"]) if r["last_attempt_at"] is not None else None,
                 "last_result": r["last_result"]} for r in rows]

    def routes(self, router) -> None:
        router.add("GET", "/sandbox/notifications", self.get_notifications)

    def get_notifications(self, request: Request) -> Reply:
        subject = request.query.get("subject")
        if not subject:
            return Reply.error(400, "INVALID_QUERY", "subject (an out_trade_no or out_refund_no) is required")
        return Reply.json({"subject": subject, "deliveries": self.deliveries(subject)})
