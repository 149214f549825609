"""The sandbox's notification retries follow WeChat's schedule."""
import pytest

from infra.local.sandbox.notify import MAX_ATTEMPTS, RETRY_INTERVALS_S, retry_delay


def test_the_retry_intervals_are_wechats():
    minutes = [15 / 60, 15 / 60, 30 / 60, 3, 10, 20, 30, 30, 30, 60, 180, 180, 180, 360, 360]
    assert [seconds / 60 for seconds in RETRY_INTERVALS_S] == minutes
    assert sum(RETRY_INTERVALS_S) == 24 * 3600 + 4 * 60   # 24 h 4 m in all
    assert MAX_ATTEMPTS == 16                            # the first attempt and 15 retries


def test_each_failed_attempt_schedules_the_next_until_wechat_gives_up():
    delays = [retry_delay(failed) for failed in range(1, 17)]
    assert delays[:15] == list(RETRY_INTERVALS_S)
    assert delays[0] == 15 and delays[2] == 30 and delays[9] == 3600
    assert delays[15] is None


def test_a_retry_needs_a_failed_attempt():
    with pytest.raises(ValueError):
        retry_delay(0)
