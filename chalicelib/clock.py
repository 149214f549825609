"""The business clock: one notion of "now" for expiry, settlement and business days.

In AWS it is the system clock. In the local stage it is wall time plus an offset
kept in ``<data dir>/clock.json``, shared by the API, the jobs, the sandbox and the
command line, so a test can move time forward by days without waiting. The offset
only grows. Signature timestamps never use this clock: WeChat checks those against
the wall clock (see ``wechatpay-v3.md``).
"""
from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

CLOCK_FILE_NAME = "clock.json"
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Far enough for any test of 30-day and 180-day rules, short of overflow games.
MAX_ADVANCE_S = 400 * 86400


class ClockError(ValueError):
    """A clock move that cannot be made (bad duration, backwards, no local clock)."""


def parse_duration(text: str) -> int:
    """'90s', '15m', '2h', '8d' -> seconds."""
    match = _DURATION.match(text or "")
    if not match:
        raise ClockError(
            f"cannot read duration {text!r}: use a whole number and a unit s, m, h or d, e.g. 90s, 2h, 8d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class BusinessClock:
    """Wall time plus a forward-only offset read from a file (None: system time)."""

    def __init__(self, offset_file: Path | None, wall=time.time):
        self._file = offset_file
        self._wall = wall
        self._cached: tuple[int, int] | None = None  # (mtime_ns, offset)

    @property
    def is_adjustable(self) -> bool:
        return self._file is not None

    def offset_s(self) -> int:
        if self._file is None:
            return 0
        try:
            mtime = self._file.stat().st_mtime_ns
        except FileNotFoundError:
            return 0
        if self._cached and self._cached[0] == mtime:
            return self._cached[1]
        offset = _read_offset(self._file)
        self._cached = (mtime, offset)
        return offset

    def timestamp(self) -> float:
        return self._wall() + self.offset_s()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), tz=timezone.utc)

    def advance(self, seconds: int) -> int:
        """Move business time forward; returns the new offset."""
        if self._file is None:
            raise ClockError("this stage runs on the system clock, which cannot be moved")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise ClockError("the clock only moves forward: give a positive number of seconds")
        if seconds > MAX_ADVANCE_S:
            raise ClockError(f"one move may advance at most {MAX_ADVANCE_S} seconds")
        self._file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self._file.with_suffix(".lock")
        # A file lock, so two movers at once (the sandbox and the command line)
        # both land instead of one overwriting the other.
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            offset = _read_offset(self._file) + seconds
            tmp = self._file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"offset_s": offset}) + "\n")
            os.replace(tmp, self._file)
        self._cached = None
        return offset


def _read_offset(path: Path) -> int:
    try:
        data = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return 0
    except ValueError as exc:
        raise ClockError(f"clock file {path} is not valid JSON") from exc
    offset = data.get("offset_s", 0)
    if not isinstance(offset, int) or offset < 0:
        raise ClockError(f"clock file {path} holds an invalid offset {offset!r}")
    return offset


@functools.lru_cache(maxsize=1)
def business_clock() -> BusinessClock:
    from chalicelib.config import settings

    s = settings()
    if s.is_local and s.data_dir is not None:
        return BusinessClock(s.data_dir / CLOCK_FILE_NAME)
    return BusinessClock(None)


def now() -> datetime:
    return business_clock().now()


def timestamp() -> float:
    return business_clock().timestamp()
