"""How the business writes time: RFC 3339 with the Beijing offset."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def rfc3339(moment: datetime | float | int) -> str:
    """2026-11-22T10:00:00+08:00 (seconds precision, Beijing offset)."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous: attach a timezone")
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no offset")
    return moment


def beijing_date(timestamp: float):
    """The Beijing calendar day of a moment (business days, bills and statements)."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).astimezone(BEIJING).date()
