"""The sandbox's own controls (local only, plain JSON): the business clock, health.

Moving the clock (``POST /sandbox/clock``) answers only after everything that fell
due has run: each callable in ``Controls.due_work_hooks`` is called once, in order,
with no arguments, after the clock has moved. ``__main__.py`` puts the sandbox's own
due work first (``DueWork.run``: refund results, notification deliveries and
retries), then the local scheduler's tick (due schedules, the outbox stream). A hook
that fails is logged and reported in the answer's ``due_work_errors``; the others
still run.
"""
from __future__ import annotations

import sys
import traceback
from typing import Callable

from chalicelib.clock import ClockError
from chalicelib.domain.time import rfc3339
from infra.local.sandbox.http import Reply, Request


class Controls:
    def __init__(self, clock, due_work_hooks: list[Callable[[], object]] | None = None, log=sys.stderr):
        self._clock = clock
        self._log = log
        self.due_work_hooks: list[Callable[[], object]] = list(due_work_hooks or [])

    def routes(self, router) -> None:
        router.add("GET", "/sandbox/health", lambda request: Reply.json({"status": "ok"}))
        router.add("GET", "/sandbox/clock", self.get_clock)
        router.add("POST", "/sandbox/clock", self.advance_clock)

    def _clock_json(self) -> dict:
        return {"now": rfc3339(self._clock.timestamp()), "timestamp": int(self._clock.timestamp()),
                "offset_s": self._clock.offset_s()}

    def get_clock(self, request: Request) -> Reply:
        return Reply.json(self._clock_json())

    def advance_clock(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            return _bad("MALFORMED_JSON", "send {\"advance_s\": <positive integer>}")
        seconds = body.get("advance_s") if isinstance(body, dict) else None
        try:
            self._clock.advance(seconds)
        except ClockError as exc:
            return _bad("INVALID_CLOCK_MOVE", str(exc))
        errors = self.run_due_work()
        return Reply.json({**self._clock_json(), **({"due_work_errors": errors} if errors else {})})

    def run_due_work(self) -> list[str]:
        """Calls every hook once; returns what failed (each failure is also logged)."""
        errors = []
        for hook in list(self.due_work_hooks):
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - the clock has moved; report, go on
                name = getattr(hook, "__qualname__", repr(hook))
                traceback.print_exc(file=self._log)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        return errors


def _bad(code: str, message: str) -> Reply:
    return Reply.error(400, code, message)
