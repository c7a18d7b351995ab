"""NYSE trading days: how many sessions lie between two dates, and which ones.

The Kaggle target is "the close 30 *trading* days after the last training
date", so a horizon in rows of daily bars must skip weekends and the days the
New York Stock Exchange is closed.  pandas' ``USFederalHolidayCalendar`` is the
wrong list (it closes on Columbus Day and Veterans Day, when the NYSE trades,
and misses Good Friday, when it does not), hence this small calendar.

Rules (NYSE Rule 7.2), exact from 1998, when Martin Luther King Jr. Day was added:
- New Year's Day (a Sunday moves to Monday; a Saturday is *not* moved back to
  the Friday, which lies in the previous year);
- Martin Luther King Jr. Day (third Monday of January, from 1998);
- Washington's Birthday (third Monday of February);
- Good Friday (two days before Western Easter);
- Memorial Day (last Monday of May);
- Juneteenth (19 June, from 2022);
- Independence Day, Christmas (a Saturday moves to Friday, a Sunday to Monday);
- Labor Day (first Monday of September), Thanksgiving (fourth Thursday of November);
- the unscheduled closures since 1994 listed in ``SPECIAL_CLOSURES``.
Earlier years use the same rules (they were different before 1971); only the
last bars before a test date matter for a horizon, so that is harmless.

Light module: standard library and numpy only.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Iterable

import numpy as np


# Unscheduled full-day closures (national days of mourning, storms, 9/11).
SPECIAL_CLOSURES: tuple[dt.date, ...] = (
    dt.date(1994, 4, 27),                                   # President Nixon's funeral
    dt.date(2001, 9, 11), dt.date(2001, 9, 12), dt.date(2001, 9, 13), dt.date(2001, 9, 14),
    dt.date(2004, 6, 11),                                   # President Reagan
    dt.date(2007, 1, 2),                                    # President Ford
    dt.date(2012, 10, 29), dt.date(2012, 10, 30),           # Hurricane Sandy
    dt.date(2018, 12, 5),                                   # President G. H. W. Bush
    dt.date(2025, 1, 9),                                    # President Carter
)


def easter_sunday(year: int) -> dt.date:
    """Western (Gregorian) Easter, anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th (1-based) given weekday (Mon=0) of a month."""
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """Saturday holidays close the Friday before, Sunday ones the Monday after."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


@lru_cache(maxsize=None)
def nyse_holidays(year: int) -> frozenset[dt.date]:
    """Weekdays of ``year`` on which the NYSE is closed."""
    days = []
    new_year = dt.date(year, 1, 1)
    if new_year.weekday() != 5:                 # Saturday: no Friday closure in the old year
        days.append(_observed(new_year))
    if year >= 1998:
        days.append(_nth_weekday(year, 1, 0, 3))                     # Martin Luther King Jr. Day
    days.append(_nth_weekday(year, 2, 0, 3))                         # Washington's Birthday
    days.append(easter_sunday(year) - dt.timedelta(days=2))          # Good Friday
    days.append(_last_weekday(year, 5, 0))                           # Memorial Day
    if year >= 2022:
        days.append(_observed(dt.date(year, 6, 19)))                 # Juneteenth
    days.append(_observed(dt.date(year, 7, 4)))                      # Independence Day
    days.append(_nth_weekday(year, 9, 0, 1))                         # Labor Day
    days.append(_nth_weekday(year, 11, 3, 4))                        # Thanksgiving
    days.append(_observed(dt.date(year, 12, 25)))                    # Christmas
    days += [d for d in SPECIAL_CLOSURES if d.year == year]
    return frozenset(d for d in days if d.year == year and d.weekday() < 5)


def to_date(value: object) -> dt.date:
    """A ``date`` from a date, datetime, numpy datetime64, pandas Timestamp or ISO text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").astype(dt.date)
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    if hasattr(value, "date"):                  # pandas Timestamp
        return value.date()  # type: ignore[union-attr]
    raise TypeError(f"not a date: {value!r}")


@lru_cache(maxsize=64)
def _busday_calendar(first_year: int, last_year: int) -> np.busdaycalendar:
    holidays = sorted(d for y in range(first_year, last_year + 1) for d in nyse_holidays(y))
    return np.busdaycalendar(weekmask="1111100", holidays=np.array(holidays, dtype="datetime64[D]"))


def _calendar_for(dates: Iterable[dt.date], extra_days: int = 0) -> np.busdaycalendar:
    years = [d.year for d in dates]
    # A margin of years so that offsets of a few hundred sessions stay inside the table.
    span = extra_days // 250 + 1
    return _busday_calendar(min(years) - 1, max(years) + span)


def is_trading_day(day: object) -> bool:
    d = to_date(day)
    return d.weekday() < 5 and d not in nyse_holidays(d.year)


def trading_days_between(start: object, end: object) -> int:
    """Sessions ``d`` with ``start < d <= end`` (negative when ``end`` is before ``start``).

    2024-09-23 (the last training date) to 2024-11-04 (the test date) is 30.
    """
    a, b = to_date(start), to_date(end)
    cal = _calendar_for((a, b))
    one = np.timedelta64(1, "D")
    first, last = np.datetime64(a) + one, np.datetime64(b) + one
    if b >= a:
        return int(np.busday_count(first, last, busdaycal=cal))
    return -int(np.busday_count(last, first, busdaycal=cal))


def next_trading_days(start: object, count: int) -> list[dt.date]:
    """The ``count`` sessions after ``start`` (``start`` itself never included)."""
    if count <= 0:
        return []
    a = to_date(start)
    cal = _calendar_for((a,), extra_days=2 * count)
    # roll="backward": from a closed day, step back to the last session, then count forward.
    days = np.busday_offset(np.datetime64(a), np.arange(1, count + 1), roll="backward", busdaycal=cal)
    return [d.astype(dt.date) for d in days]


__all__ = ["SPECIAL_CLOSURES", "easter_sunday", "is_trading_day", "next_trading_days", "nyse_holidays",
           "to_date", "trading_days_between"]
