from datetime import datetime, timezone

import pytest
from chalice import Cron, Rate

from infra.local.schedules import ScheduleError, parse


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_rates_fire_on_aligned_multiples():
    every_15 = parse(Rate(15, unit=Rate.MINUTES))
    assert every_15.next_after(utc(2026, 11, 23, 10, 7, 30)) == utc(2026, 11, 23, 10, 15)
    assert every_15.next_after(utc(2026, 11, 23, 10, 15)) == utc(2026, 11, 23, 10, 30)
    assert parse("rate(1 minute)").next_after(utc(2026, 1, 1, 0, 0, 59)) == utc(2026, 1, 1, 0, 1)


def test_the_daily_reconcile_cron_fires_at_0230_utc_which_is_1030_beijing():
    reconcile = parse(Cron(30, 2, "*", "*", "?", "*"))
    assert reconcile.next_after(utc(2026, 11, 23, 2, 29)) == utc(2026, 11, 23, 2, 30)
    assert reconcile.next_after(utc(2026, 11, 23, 2, 30)) == utc(2026, 11, 24, 2, 30)


def test_cron_steps_lists_ranges_and_weekdays():
    weekday_mornings = parse("cron(0/20 8-9 ? * MON-FRI *)")
    assert weekday_mornings.next_after(utc(2026, 11, 21, 12, 0)) == utc(2026, 11, 23, 8, 0)  # Sat -> Mon
    assert weekday_mornings.next_after(utc(2026, 11, 23, 8, 0)) == utc(2026, 11, 23, 8, 20)
    assert weekday_mornings.next_after(utc(2026, 11, 23, 9, 40)) == utc(2026, 11, 24, 8, 0)
    first_of_month = parse("cron(0 0 1 * ? *)")
    assert first_of_month.next_after(utc(2026, 11, 23)) == utc(2026, 12, 1)
    sundays = parse("cron(0 12 ? * 1 *)")
    assert sundays.next_after(utc(2026, 11, 23)) == utc(2026, 11, 29, 12, 0)


@pytest.mark.parametrize("text", ["rate(0 minutes)", "rate(5 weeks)", "cron(61 * * * ? *)", "cron(* * * *)",
                                  "every day"])
def test_unreadable_schedules_are_refused(text):
    with pytest.raises(ScheduleError):
        parse(text)
