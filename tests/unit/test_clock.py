import threading

import pytest

from chalicelib.clock import BusinessClock, ClockError, parse_duration


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("2h", 7200), ("8d", 691200),
                                           (" 1d ", 86400)])
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "8", "-1d", "1.5h", "2w", "d8", "1d2h"])
def test_unreadable_durations_are_refused_with_a_reason(text):
    with pytest.raises(ClockError, match="unit"):
        parse_duration(text)


def test_advancing_moves_business_time_and_survives_a_new_reader(tmp_path):
    wall = lambda: 1_000_000.0  # noqa: E731
    clock = BusinessClock(tmp_path / "clock.json", wall=wall)
    assert clock.timestamp() == 1_000_000.0
    assert clock.advance(8 * 86400) == 8 * 86400
    assert clock.timestamp() == 1_000_000.0 + 8 * 86400
    assert BusinessClock(tmp_path / "clock.json", wall=wall).timestamp() == 1_000_000.0 + 8 * 86400


@pytest.mark.parametrize("seconds", [0, -5, 1.5, True, None, "10"])
def test_the_clock_never_moves_backwards_or_by_nonsense(tmp_path, seconds):
    clock = BusinessClock(tmp_path / "clock.json")
    with pytest.raises(ClockError):
        clock.advance(seconds)
    assert clock.offset_s() == 0


def test_concurrent_moves_all_land(tmp_path):
    clocks = [BusinessClock(tmp_path / "clock.json") for _ in range(8)]
    threads = [threading.Thread(target=lambda c=c: [c.advance(10) for _ in range(25)]) for c in clocks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert BusinessClock(tmp_path / "clock.json").offset_s() == 8 * 25 * 10


def test_the_system_clock_cannot_be_moved():
    with pytest.raises(ClockError, match="system clock"):
        BusinessClock(None).advance(60)


def test_a_corrupt_clock_file_is_reported_not_ignored(tmp_path):
    (tmp_path / "clock.json").write_text('{"offset_s": -3}')
    with pytest.raises(ClockError, match="invalid offset"):
        BusinessClock(tmp_path / "clock.json").offset_s()
