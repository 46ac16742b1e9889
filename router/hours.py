"""Business hours: when a queue with an ``[hours.NAME]`` schedule is open.

A schedule is a time zone, a weekly list of local opening ranges per weekday and a list of
holidays (whole local days closed). Outside its hours an office-hours-only queue answers with
its closed message and holds the conversation until ``next_opening`` (or hands it to its
7x24 ``after_hours_queue``). The gateway asks ``is_open`` on every routing call, so the weekly
table is parsed once into sorted minute ranges and a check is one time-zone conversion, one set
lookup and a short scan: no per-call parsing and no cache to invalidate.

Choices, and why:

- Ranges are local wall-clock times, ``HH:MM-HH:MM``, start inclusive, end exclusive. An end
  of ``24:00`` (or ``00:00``) means midnight at the end of that day, so ``22:00-24:00`` is the
  last two hours of the day. A range that runs past midnight (``22:00-02:00``) is refused: it
  would be unclear which weekday the morning part belongs to; write ``22:00-24:00`` on one day
  and ``00:00-02:00`` on the next. Opening hours that touch at midnight join up, so
  ``next_closing`` looks past midnight.
- Overlapping or touching ranges on one day are merged, not refused.
- An empty ``weekly`` means open all day, every day (7x24), so that a schedule can be used for
  its holidays alone; holidays still close it. A ``weekly`` that names days but gives none of
  them any range never opens; ``check_schedule`` refuses it (the queue would hold its
  conversations forever), and ``BusinessHours`` answers ``next_opening`` with None for it.
  A queue without ``hours`` is 7x24 and needs no ``BusinessHours`` at all.
- Daylight saving time follows the wall clock. On a spring-forward day a range that starts in
  the skipped hour opens at the first moment after the gap (02:30 in Europe/Berlin on the last
  Sunday of March opens at 03:00 CEST); a range that lies wholly in the gap does not happen that
  day. On a fall-back day the repeated hour is open or closed twice, as its wall clock says.
- Searches look at most ``HORIZON_DAYS`` ahead, then give up with None.

Time zones come from the standard ``zoneinfo`` module: the system's tz database, else the
``tzdata`` wheel (slim container images and Windows lack the former).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400
DAY_MINUTES = 24 * 60

_RANGE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")

Ranges = tuple[tuple[int, int], ...]  # (start, end) minutes of the local day, end exclusive


def check_schedule(schedule: Any) -> tuple[str, str] | None:
    """The first problem of an HoursConfig-like object as (key, problem), or None.

    Read through plain attributes (``timezone``, ``weekly``, ``holidays``) so that the router
    needs nothing from the gateway's config module; missing attributes take HoursConfig's
    defaults."""
    problem = _malformed(schedule)
    if problem is not None:
        return problem
    weekly = getattr(schedule, "weekly", None) or {}
    if weekly and not any(weekly.values()):
        return "weekly", "no day has opening hours; leave weekly out for 7x24"
    return None


def _malformed(schedule: Any) -> tuple[str, str] | None:
    """What would stop BusinessHours from reading the schedule at all."""
    timezone = getattr(schedule, "timezone", "UTC")
    if _zone(timezone) is None:
        return "timezone", f"unknown time zone {timezone!r}"
    weekly = getattr(schedule, "weekly", None) or {}
    if not isinstance(weekly, Mapping):
        return "weekly", "must be a table of weekday = [ranges]"
    for day, ranges in weekly.items():
        if day not in WEEKDAYS:
            return "weekly", f"{day!r} is not a weekday (use {', '.join(WEEKDAYS)})"
        if isinstance(ranges, str) or not isinstance(ranges, Iterable):
            return "weekly", f'{day}: give a list of ranges like "09:00-18:00"'
        for text in ranges:
            parsed = _parse_range(text)
            if isinstance(parsed, str):
                return "weekly", f"{day}: {text} {parsed}"
    for holiday in getattr(schedule, "holidays", None) or []:
        if not isinstance(holiday, date) or isinstance(holiday, datetime):
            return "holidays", f"{holiday!r} is not a date (YYYY-MM-DD)"
    return None


class BusinessHours:
    """One parsed schedule, answering for any aware datetime in any time zone."""

    __slots__ = ("_always", "_days", "_holidays", "_never", "tz")

    def __init__(self, schedule: Any) -> None:
        """Parse an HoursConfig-like object; ValueError names the problem when it is invalid."""
        problem = _malformed(schedule)  # a schedule that never opens is valid here
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        zone = _zone(getattr(schedule, "timezone", "UTC"))
        assert zone is not None  # _malformed vouched for it
        self.tz: ZoneInfo = zone
        weekly: Mapping[str, Iterable[str]] = getattr(schedule, "weekly", None) or {}
        days: list[Ranges] = []
        for day in WEEKDAYS:
            if not weekly:
                days.append(((0, DAY_MINUTES),))
                continue
            pairs = [_parse_range(text) for text in weekly.get(day, ())]
            days.append(_merge([p for p in pairs if isinstance(p, tuple)]))
        self._days: tuple[Ranges, ...] = tuple(days)
        self._holidays: frozenset[date] = frozenset(getattr(schedule, "holidays", None) or ())
        self._never = not any(self._days)
        self._always = not self._holidays and all(d == ((0, DAY_MINUTES),) for d in self._days)

    def is_open(self, at: datetime) -> bool:
        """Whether the queue is open at the instant ``at`` (an aware datetime)."""
        local = _aware(at).astimezone(self.tz)
        return self._open_at_wall(local)

    def next_opening(self, at: datetime) -> datetime | None:
        """``at`` itself when open now, else the next moment the queue opens, or None when it
        does not open within the horizon. The answer is in ``at``'s time zone (use ``.tz``
        for local display): Python never finds a datetime in a repeated autumn hour equal to
        one in another zone, so handing back the caller's zone keeps ``==`` honest."""
        at = _aware(at)
        if self.is_open(at):
            return at
        if self._never:
            return None
        return self._search(at, opening=True)

    def next_closing(self, at: datetime) -> datetime | None:
        """``at`` itself when closed now, else the next moment the queue closes (in ``at``'s
        time zone), or None when it stays open through the horizon (7x24)."""
        at = _aware(at)
        if not self.is_open(at):
            return at
        if self._always:
            return None
        return self._search(at, opening=False)

    def _open_at_wall(self, local: datetime) -> bool:
        if local.date() in self._holidays:
            return False
        ranges = self._days[local.weekday()]
        if not ranges:
            return False
        minute = local.hour * 60 + local.minute
        i = bisect_right(ranges, (minute, DAY_MINUTES + 1)) - 1
        return i >= 0 and minute < ranges[i][1]

    def _search(self, at: datetime, *, opening: bool) -> datetime | None:
        """The earliest instant after ``at`` where the queue's state flips to open (or to
        closed): only the starts (or ends) of ranges can be such instants, so try those, day
        by day, and confirm each candidate with ``is_open`` (which settles DST and midnight
        joins). Instants are compared in UTC: Python compares two datetimes that share a
        tzinfo by wall clock, which is wrong in the repeated hour of a fall-back day."""
        at_utc = at.astimezone(UTC)
        first = at.astimezone(self.tz).date() - timedelta(days=1)
        for offset in range(HORIZON_DAYS + 2):
            day = first + timedelta(days=offset)
            if day in self._holidays:
                if opening:
                    continue
                walls: Iterable[int] = (0,)
            else:
                walls = (r[0] if opening else r[1] for r in self._days[day.weekday()])
            best: datetime | None = None
            for minute in walls:
                for instant in self._instants(day, minute):
                    if instant > at_utc and self.is_open(instant) == opening:
                        if best is None or instant < best:
                            best = instant
            if best is not None:
                return best.astimezone(at.tzinfo)
        return None

    def _instants(self, day: date, minute: int) -> tuple[datetime, ...]:
        """The instants (in UTC) whose wall clock first reads ``minute`` on ``day``: two in a
        repeated (fall-back) hour, and the end of the gap for a time that spring-forward skips."""
        if minute >= DAY_MINUTES:
            day, minute = day + timedelta(days=1), minute - DAY_MINUTES
        wall = datetime.combine(day, time(minute // 60, minute % 60))
        early = wall.replace(tzinfo=self.tz, fold=0)
        late = wall.replace(tzinfo=self.tz, fold=1)
        if _exists(early):
            if early.utcoffset() == late.utcoffset():
                return (early.astimezone(UTC),)
            return (early.astimezone(UTC), late.astimezone(UTC))
        return (self._gap_end(early, late),)

    def _gap_end(self, early: datetime, late: datetime) -> datetime:
        """The transition instant of a spring-forward gap, found by bisection between the two
        readings of a skipped wall time (fold=1 reads it with the new offset, fold=0 with the
        old)."""
        lo = late.astimezone(UTC)  # before the transition
        hi = early.astimezone(UTC)  # after it
        new_offset = hi.astimezone(self.tz).utcoffset()
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == new_offset:
                hi = mid
            else:
                lo = mid
        return hi.replace(microsecond=0)


def _zone(key: object) -> ZoneInfo | None:
    if not isinstance(key, str) or not key:
        return None
    try:
        return ZoneInfo(key)
    except (KeyError, ValueError, OSError):  # not found, bad key, a directory
        return None


def _parse_range(text: object) -> tuple[int, int] | str:
    """(start, end) minutes, or why ``text`` is not a usable range."""
    match = _RANGE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return "is not a time range"
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        return "is not a time range"
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == 0:
        end = DAY_MINUTES  # "22:00-00:00" ends at midnight
    if end < start:
        return "ends before it starts (split a range past midnight at 24:00)"
    if end == start:
        return "is empty"
    return start, end


def _merge(pairs: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(pairs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _exists(local: datetime) -> bool:
    """Whether a wall time with tzinfo survives a round trip through UTC (not in a gap)."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business hours need an aware datetime (with tzinfo)")
    return at
