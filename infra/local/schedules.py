"""When a Chalice schedule fires: EventBridge's rate() and cron() read on UTC.

Hand-written because the scheduler must compute "next fire after t" on the business
clock (which jumps), and EventBridge's six-field cron (with ``?``, year, and 1=SUN
day numbers) is not what the usual cron libraries parse.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_DOW_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTH_NAMES = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class RateSchedule:
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        """Fire times are multiples of the rate since the epoch (aligned, repeatable)."""
        ts = int(moment.timestamp())
        return datetime.fromtimestamp((ts // self.seconds + 1) * self.seconds, tz=timezone.utc)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset
    hours: frozenset
    days: frozenset | None        # None: any ("?" or "*")
    months: frozenset
    weekdays: frozenset | None    # EventBridge numbering: 1=SUN .. 7=SAT
    years: frozenset | None

    def next_after(self, moment: datetime) -> datetime:
        moment = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0)
        for _ in range(366 * 8):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate > moment:
                            return candidate
            day += timedelta(days=1)
        raise ScheduleError("the cron expression never fires in the next eight years")

    def _day_matches(self, day: datetime) -> bool:
        weekday = day.isoweekday() % 7 + 1  # Monday=1 (ISO) -> 2; Sunday=7 (ISO) -> 1
        return (day.month in self.months and (self.years is None or day.year in self.years)
                and (self.days is None or day.day in self.days)
                and (self.weekdays is None or weekday in self.weekdays))


def parse(expression) -> RateSchedule | CronSchedule:
    text = expression if isinstance(expression, str) else expression.to_string()
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", text.strip())
    if rate:
        unit = {"minute": 60, "hour": 3600, "day": 86400}[rate.group(2).rstrip("s")]
        if int(rate.group(1)) < 1:
            raise ScheduleError(f"{text}: a rate must be at least 1")
        return RateSchedule(int(rate.group(1)) * unit)
    cron = re.fullmatch(r"cron\((.+)\)", text.strip())
    if not cron or len(cron.group(1).split()) != 6:
        raise ScheduleError(f"cannot read schedule {text!r}")
    minutes, hours, days, months, weekdays, years = cron.group(1).split()
    return CronSchedule(
        minutes=_field(minutes, 0, 59), hours=_field(hours, 0, 23),
        days=None if days in ("?", "*") else _field(days, 1, 31),
        months=_field(months, 1, 12, _MONTH_NAMES),
        weekdays=None if weekdays in ("?", "*") else _field(weekdays, 1, 7, _DOW_NAMES),
        years=None if years in ("?", "*") else _field(years, 1970, 2199))


def _field(text: str, low: int, high: int, names: dict | None = None) -> frozenset:
    values = set()
    for part in text.upper().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not low <= start <= end <= high or step < 1:
            raise ScheduleError(f"cron field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise ScheduleError(f"cannot read cron value {text!r}")
    return int(text)
