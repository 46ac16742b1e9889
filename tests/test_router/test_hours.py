"""Business hours: open or closed at an instant, the next opening and closing, across
weekends, holidays, midnight and daylight saving time, and the schedule check. Pure: no Redis.

Calendar used below: 2025-06-02 is a Monday; China's National Day week is 2025-10-01 (Wed) to
2025-10-07 (Tue); Europe/Berlin springs forward on 2024-03-31 (02:00 CET -> 03:00 CEST) and
falls back on 2024-10-27 (03:00 CEST -> 02:00 CET)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import msgspec
import pytest

from router.config import HoursConfig, NamedError, check_routing_tables
from router.hours import BusinessHours, check_schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_6 = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
GOLDEN_WEEK = [date(2025, 10, 1) + timedelta(days=i) for i in range(7)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def office(**kw: object) -> BusinessHours:
    fields: dict[str, object] = {"timezone": "Asia/Shanghai", "weekly": WEEKDAYS_9_TO_6}
    fields.update(kw)
    return BusinessHours(msgspec.convert(fields, HoursConfig))


def test_the_time_zone_in_the_tz_database_is_available():
    # zoneinfo needs the system tz database or the tzdata wheel.
    assert datetime(2025, 6, 2, tzinfo=SHANGHAI).utcoffset() == timedelta(hours=8)


# Open or closed.


def test_open_and_closed_in_shanghai_asked_in_utc():
    hours = office()
    assert hours.is_open(utc(2025, 6, 2, 1, 30))  # 09:30 in Shanghai
    assert not hours.is_open(utc(2025, 6, 2, 0, 59))  # 08:59
    assert hours.is_open(utc(2025, 6, 2, 1, 0))  # 09:00: the start is open
    assert hours.is_open(utc(2025, 6, 2, 9, 59, 59))  # 17:59:59
    assert not hours.is_open(utc(2025, 6, 2, 10, 0))  # 18:00: the end is closed


def test_the_answer_does_not_depend_on_the_time_zone_of_the_question():
    hours = office()
    instant = utc(2025, 6, 2, 1, 30)
    for zone in ("Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"):
        assert hours.is_open(instant.astimezone(ZoneInfo(zone)))
    # Sunday evening in New York is Monday morning in Shanghai.
    assert hours.is_open(datetime(2025, 6, 1, 21, 30, tzinfo=ZoneInfo("America/New_York")))


def test_the_weekend_is_closed_in_local_time():
    hours = office()
    assert not hours.is_open(utc(2025, 6, 7, 3, 0))  # Saturday 11:00
    assert not hours.is_open(utc(2025, 6, 8, 3, 0))  # Sunday 11:00
    # Friday 23:00 UTC is already Saturday 07:00 in Shanghai.
    assert not hours.is_open(utc(2025, 6, 6, 23, 0))


def test_a_holiday_is_closed_all_day():
    hours = office(holidays=GOLDEN_WEEK)
    assert not hours.is_open(utc(2025, 10, 6, 2, 0))  # Monday 10:00, in the holiday week
    assert hours.is_open(utc(2025, 9, 30, 2, 0))  # Tuesday before
    assert hours.is_open(utc(2025, 10, 8, 2, 0))  # Wednesday after


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        office().is_open(datetime(2025, 6, 2, 10, 0))


def test_lunch_break_and_overlapping_ranges():
    hours = office(weekly={"mon": ["09:00-12:00", "13:00-18:00", "11:00-12:30"]})
    assert hours.is_open(utc(2025, 6, 2, 4, 15))  # 12:15, in the overlap's tail
    assert not hours.is_open(utc(2025, 6, 2, 4, 45))  # 12:45, lunch
    lunch = datetime(2025, 6, 2, 12, 30, tzinfo=SHANGHAI)
    assert hours.next_closing(utc(2025, 6, 2, 2, 0)) == lunch
    assert hours.next_opening(utc(2025, 6, 2, 4, 45)) == datetime(2025, 6, 2, 13, tzinfo=SHANGHAI)


# Next opening and closing.


def test_next_opening_is_now_when_open():
    at = utc(2025, 6, 2, 2, 0)
    assert office().next_opening(at) == at


def test_next_opening_across_the_weekend():
    opening = office().next_opening(utc(2025, 6, 6, 10, 0))  # Friday 18:00 in Shanghai
    assert opening == utc(2025, 6, 9, 1, 0)  # Monday 09:00
    assert opening is not None and opening.tzinfo is UTC  # in the question's time zone
    assert opening.astimezone(office().tz).strftime("%a %H:%M") == "Mon 09:00"
    asked_locally = office().next_opening(datetime(2025, 6, 6, 18, tzinfo=SHANGHAI))
    assert asked_locally is not None and asked_locally.tzinfo is SHANGHAI


def test_next_opening_before_opening_the_same_day():
    assert office().next_opening(utc(2025, 6, 3, 0, 0)) == utc(2025, 6, 3, 1, 0)  # 08:00 -> 09:00


def test_next_opening_across_a_holiday_week():
    hours = office(holidays=GOLDEN_WEEK)
    assert hours.next_opening(utc(2025, 9, 30, 10, 0)) == datetime(2025, 10, 8, 9, tzinfo=SHANGHAI)
    assert hours.next_opening(utc(2025, 10, 3, 2, 0)) == datetime(2025, 10, 8, 9, tzinfo=SHANGHAI)


def test_next_closing():
    hours = office(holidays=GOLDEN_WEEK)
    assert hours.next_closing(utc(2025, 6, 2, 2, 0)) == datetime(2025, 6, 2, 18, tzinfo=SHANGHAI)
    closed = utc(2025, 6, 7, 2, 0)
    assert hours.next_closing(closed) == closed


@pytest.mark.parametrize("late", ["22:00-24:00", "22:00-00:00"])
def test_a_range_to_midnight_and_the_night_across_it(late: str):
    hours = office(weekly={"mon": ["09:00-18:00", late], "tue": ["00:00-02:00"]})
    assert hours.is_open(datetime(2025, 6, 2, 23, 59, 59, tzinfo=SHANGHAI))
    assert hours.is_open(datetime(2025, 6, 3, 0, 0, tzinfo=SHANGHAI))
    assert not hours.is_open(datetime(2025, 6, 3, 2, 0, tzinfo=SHANGHAI))
    # Open from Monday 22:00 to Tuesday 02:00 without a break at midnight.
    closing = hours.next_closing(datetime(2025, 6, 2, 23, 0, tzinfo=SHANGHAI))
    assert closing == datetime(2025, 6, 3, 2, 0, tzinfo=SHANGHAI)
    opening = hours.next_opening(datetime(2025, 6, 2, 19, 0, tzinfo=SHANGHAI))
    assert opening == datetime(2025, 6, 2, 22, 0, tzinfo=SHANGHAI)


def test_a_holiday_cuts_the_night_at_midnight():
    hours = office(
        weekly={"mon": ["22:00-24:00"], "tue": ["00:00-02:00"]}, holidays=[date(2025, 6, 3)]
    )
    closing = hours.next_closing(datetime(2025, 6, 2, 23, 0, tzinfo=SHANGHAI))
    assert closing == datetime(2025, 6, 3, 0, 0, tzinfo=SHANGHAI)


# Daylight saving time.


def test_local_opening_hours_follow_berlin_summer_time():
    hours = office(timezone="Europe/Berlin")
    assert not hours.is_open(utc(2024, 3, 25, 7, 30))  # Monday 08:30 CET
    assert hours.is_open(utc(2024, 4, 1, 7, 30))  # Monday 09:30 CEST
    # From Friday evening before the change to Monday after it: 09:00 CEST is 07:00 UTC.
    opening = hours.next_opening(utc(2024, 3, 29, 17, 0))
    assert opening == utc(2024, 4, 1, 7, 0)
    assert opening is not None and opening.astimezone(BERLIN).utcoffset() == timedelta(hours=2)


def test_a_range_open_across_the_spring_forward_gap():
    hours = office(timezone="Europe/Berlin", weekly={"sun": ["01:00-05:00"]})
    # 01:00 CET to 05:00 CEST is three real hours.
    opening = hours.next_opening(utc(2024, 3, 30, 12, 0))
    closing = hours.next_closing(utc(2024, 3, 31, 0, 30))
    assert opening == utc(2024, 3, 31, 0, 0)
    assert closing == utc(2024, 3, 31, 3, 0)


def test_a_range_starting_in_the_skipped_hour_opens_when_the_gap_ends():
    hours = office(timezone="Europe/Berlin", weekly={"sun": ["02:30-04:00"]})
    assert not hours.is_open(utc(2024, 3, 31, 0, 59, 59))  # 01:59:59 CET
    assert hours.is_open(utc(2024, 3, 31, 1, 0))  # 03:00 CEST
    opening = hours.next_opening(utc(2024, 3, 30, 12, 0))
    assert opening == utc(2024, 3, 31, 1, 0)
    assert opening is not None and opening.astimezone(BERLIN).strftime("%H:%M") == "03:00"
    assert hours.next_closing(opening) == utc(2024, 3, 31, 2, 0)  # 04:00 CEST


def test_a_range_wholly_in_the_skipped_hour_waits_a_week():
    hours = office(timezone="Europe/Berlin", weekly={"sun": ["02:00-02:59"]})
    opening = hours.next_opening(utc(2024, 3, 30, 12, 0))
    assert opening == datetime(2024, 4, 7, 2, 0, tzinfo=BERLIN)


def test_the_repeated_hour_in_autumn_opens_twice():
    hours = office(timezone="Europe/Berlin", weekly={"sun": ["02:00-02:30"]})
    assert hours.is_open(utc(2024, 10, 27, 0, 10))  # 02:10 CEST
    assert not hours.is_open(utc(2024, 10, 27, 0, 45))  # 02:45 CEST
    assert hours.is_open(utc(2024, 10, 27, 1, 10))  # 02:10 CET, the second time round
    assert hours.next_closing(utc(2024, 10, 27, 0, 10)) == utc(2024, 10, 27, 0, 30)
    assert hours.next_opening(utc(2024, 10, 27, 0, 45)) == utc(2024, 10, 27, 1, 0)
    assert hours.next_closing(utc(2024, 10, 27, 1, 10)) == utc(2024, 10, 27, 1, 30)


# 7x24, never open, the horizon.


def test_no_weekly_table_means_7x24():
    hours = BusinessHours(HoursConfig())
    at = utc(2025, 6, 7, 3, 0)
    assert hours.is_open(at)
    assert hours.next_opening(at) == at
    assert hours.next_closing(at) is None
    assert check_schedule(HoursConfig()) is None


def test_7x24_with_holidays_closes_at_local_midnight():
    hours = office(weekly={}, holidays=[date(2025, 10, 1)])
    assert not hours.is_open(datetime(2025, 10, 1, 12, tzinfo=SHANGHAI))
    assert hours.next_closing(utc(2025, 9, 30, 3, 0)) == datetime(2025, 10, 1, tzinfo=SHANGHAI)
    assert hours.next_opening(utc(2025, 10, 1, 3, 0)) == datetime(2025, 10, 2, tzinfo=SHANGHAI)


def test_a_schedule_that_never_opens():
    schedule = HoursConfig(timezone="Asia/Shanghai", weekly={"mon": [], "sat": []})
    assert check_schedule(schedule) == (
        "weekly",
        "no day has opening hours; leave weekly out for 7x24",
    )
    hours = BusinessHours(schedule)
    assert not hours.is_open(utc(2025, 6, 2, 2, 0))
    assert hours.next_opening(utc(2025, 6, 2, 2, 0)) is None


def test_holidays_beyond_the_horizon_give_up():
    every_day = [date(2025, 1, 1) + timedelta(days=i) for i in range(500)]
    hours = office(holidays=every_day)
    assert hours.next_opening(utc(2025, 1, 1, 0, 0)) is None


def test_is_open_is_cheap():
    hours = office(holidays=GOLDEN_WEEK)
    # This process's CPU time, not the wall clock: other work on a busy machine does not count.
    start = time.process_time()
    at = utc(2025, 6, 2, 2, 0)
    for _ in range(10_000):
        hours.is_open(at)
    assert time.process_time() - start < 1.0


# The schedule check.


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"timezone": "Mars/Base"}, ("timezone", "unknown time zone 'Mars/Base'")),
        ({"timezone": "Asia"}, ("timezone", "unknown time zone 'Asia'")),
        ({"timezone": "../etc/passwd"}, ("timezone", "unknown time zone '../etc/passwd'")),
        ({"weekly": {"mon": ["25:00-26:00"]}}, ("weekly", "mon: 25:00-26:00 is not a time range")),
        ({"weekly": {"mon": ["09:60-10:00"]}}, ("weekly", "mon: 09:60-10:00 is not a time range")),
        ({"weekly": {"mon": ["24:00-24:00"]}}, ("weekly", "mon: 24:00-24:00 is not a time range")),
        ({"weekly": {"mon": ["22:00-24:30"]}}, ("weekly", "mon: 22:00-24:30 is not a time range")),
        (
            {"weekly": {"mon": ["09:00-18:00"], "tue": ["18:00-09:00"]}},
            (
                "weekly",
                "tue: 18:00-09:00 ends before it starts (split a range past midnight at 24:00)",
            ),
        ),
        ({"weekly": {"wed": ["09:00-09:00"]}}, ("weekly", "wed: 09:00-09:00 is empty")),
    ],
)
def test_invalid_schedules_name_the_key_and_the_problem(
    fields: dict[str, object], problem: tuple[str, str]
):
    schedule = msgspec.convert(fields, HoursConfig)
    assert check_schedule(schedule) == problem
    with pytest.raises(ValueError, match=problem[0]):
        BusinessHours(schedule)


@pytest.mark.parametrize(
    "weekly",
    [
        {"mon": ["00:00-24:00"]},
        {"mon": ["00:00-00:00"]},  # the whole day
        {"mon": ["22:00-24:00"], "tue": ["00:00-02:00"]},
        {"mon": ["09:00-12:00", "11:00-14:00"]},  # overlaps merge
        {"mon": ["09:00-18:00"], "sun": []},  # a day may be closed explicitly
    ],
)
def test_valid_schedules(weekly: dict[str, list[str]]):
    assert check_schedule(HoursConfig(timezone="Europe/Berlin", weekly=weekly)) is None  # type: ignore[arg-type]


def test_the_check_reads_plain_objects_too():
    assert check_schedule(SimpleNamespace(weekly={"xyz": ["09:00-18:00"]})) == (
        "weekly",
        "'xyz' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)",
    )
    assert check_schedule(SimpleNamespace(weekly={}, holidays=["2025-10-01"])) == (
        "holidays",
        "'2025-10-01' is not a date (YYYY-MM-DD)",
    )
    assert check_schedule(SimpleNamespace(timezone="Asia/Shanghai")) is None


def test_the_config_check_reports_the_hours_table():
    bad = {"support": msgspec.convert({"timezone": "Mars/Base"}, HoursConfig)}
    with pytest.raises(NamedError) as caught:
        check_routing_tables([], [], [], bad)
    assert (caught.value.table, caught.value.key) == ("hours.support", "timezone")
