"""Bandwidth limits as written in sync.yaml and --bwlimit: rates, daily and weekly
timetables, the rate at a moment (across midnight and the week's end), when it next changes,
and every way of writing one wrong."""

from __future__ import annotations

from datetime import datetime

import pytest

from syncagent.bwlimit import UNLIMITED, human_rate
from syncagent.config import bandwidth_limit

WED = datetime(2026, 12, 2)  # a Wednesday
SUN = datetime(2026, 12, 6)


def at(day: datetime, hh: int, mm: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm)


@pytest.mark.parametrize(
    ("written", "rate"),
    [
        ("off", 0),
        (False, 0),  # YAML 1.1 reads a bare off as false
        (None, 0),
        ("0", 0),
        ("2M", 2_000_000),
        ("512k", 512_000),
        ("512K/s", 512_000),
        ("1.5MiB", 1_572_864),
        ("1MB/s", 1_000_000),
        (4_000_000, 4_000_000),
    ],
)
def test_a_single_rate_holds_all_day(written: object, rate: int) -> None:
    limit = bandwidth_limit(written)
    assert {limit.rate_at(at(WED, h)) for h in (0, 9, 23)} == {rate}
    assert limit.limited == bool(rate)
    assert limit.change_after(at(WED, 9)) is None


def test_a_daily_timetable_holds_each_rate_until_the_next_entry() -> None:
    limit = bandwidth_limit("08:00,512k 19:00,2M 23:00,off")
    assert limit.rate_at(at(WED, 7, 59)) == 0  # 23:00 of the day before still holds
    assert limit.rate_at(at(WED, 8)) == 512_000
    assert limit.rate_at(at(WED, 18, 59)) == 512_000
    assert limit.rate_at(at(WED, 19)) == 2_000_000
    assert limit.rate_at(at(WED, 23, 30)) == 0
    assert limit.limited
    assert limit.change_after(at(WED, 12)) == at(WED, 19)
    assert limit.change_after(at(WED, 23, 30)) == at(WED.replace(day=3), 8)
    assert limit.change_after(at(WED, 3)) == at(WED, 8)
    assert limit.describe(at(WED, 12)) == "512 kB/s until 19:00"
    assert limit.describe(at(WED, 23, 30)) == "no limit until 08:00"


def test_entries_may_come_in_any_order() -> None:
    assert bandwidth_limit("23:00,off 08:00,1M").rate_at(at(WED, 9)) == 1_000_000


def test_a_weekly_timetable_wraps_from_sunday_to_monday() -> None:
    limit = bandwidth_limit("Mon-08:00,512k Sat-00:00,off")
    assert limit.weekly
    assert limit.rate_at(at(WED, 3)) == 512_000
    assert limit.rate_at(at(SUN, 23, 59)) == 0
    assert limit.rate_at(datetime(2026, 12, 7, 7, 59)) == 0  # Monday before 08:00
    assert limit.rate_at(datetime(2026, 12, 7, 8)) == 512_000
    assert limit.change_after(at(SUN, 12)) == datetime(2026, 12, 7, 8)
    assert limit.describe(at(WED, 3)) == "512 kB/s until Sat 00:00"


def test_entries_of_one_rate_never_change() -> None:
    limit = bandwidth_limit("08:00,1M 20:00,1M")
    assert limit.change_after(at(WED, 9)) is None
    assert limit.describe(at(WED, 9)) == "1 MB/s"


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("25:00,1M", "no such time of day"),
        ("08:61,1M", "no such time of day"),
        ("08:00,fast", "'fast' is not a rate"),
        ("08:00", "is not TIME,RATE"),
        ("1M 2M", "is not TIME,RATE"),
        ("Mon-08:00,1M 09:00,2M", "either every entry names a day"),
        ("Xyz-08:00,1M", "the day is one of Mon"),
        ("08:00,1M 8:00,2M", "two entries start at the same time"),
        ("100", "below 1k/s"),
        ("-2M", "is not a rate"),
        ("", "empty"),
        (True, "a rate (e.g. 2M)"),
        ("2 M", "is not TIME,RATE"),
    ],
)
def test_what_is_wrong_is_said(written: object, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        bandwidth_limit(written)
    assert says in str(caught.value)


def test_the_text_is_kept_as_written_for_messages() -> None:
    assert bandwidth_limit("Mon-08:00,1M Sat-00:00,off").text == "Mon-08:00,1M Sat-00:00,off"
    assert not UNLIMITED.limited


@pytest.mark.parametrize(
    ("rate", "shown"),
    [(1000, "1 kB/s"), (512_000, "512 kB/s"), (2_500_000, "2.5 MB/s"), (3 * 10**9, "3 GB/s")],
)
def test_rates_are_shown_in_decimal_units(rate: int, shown: str) -> None:
    assert human_rate(rate) == shown


def test_the_client_rate_logs_each_change_of_the_timetable_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from syncagent.app import _rate

    now = [at(WED, 18, 59)]
    rate = _rate(bandwidth_limit("08:00,512k 19:00,2M 23:00,off"), "upload", lambda: now[0])
    assert rate is not None
    caplog.set_level("INFO", logger="syncagent")
    assert rate() == 512_000
    assert caplog.messages == []  # the start line says what holds at first
    now[0] = at(WED, 19, 0)
    assert [rate(), rate()] == [2_000_000, 2_000_000]
    now[0] = at(WED, 23, 1)
    assert rate() == 0
    assert caplog.messages == [
        "upload bandwidth: now 2 MB/s until 23:00",
        "upload bandwidth: now no limit until 08:00",
    ]
    assert _rate(bandwidth_limit("off"), "upload") is None  # nothing to pace
