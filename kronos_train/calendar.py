"""NYSE trading days: how many sessions lie between two dates, and which ones.

The Kaggle target is "the close 30 *trading* days after the last training
date", so a horizon in rows of daily bars must skip weekends and the days the
New York Stock Exchange is closed.  pandas' ``USFederalHolidayCalendar`` is the
wrong list (it closes on Columbus Day and Veterans Day, when the NYSE trades,
and misses Good Friday, when it does not).

The closures come from ``exchange_calendars`` (its ``XNYS`` calendar), a
maintained library that also knows the unscheduled closures (days of mourning,
storms) as they are announced, and the other exchanges users trade (``XHKG``,
``XSHG``, ...).  It replaced a hand-kept copy of NYSE Rule 7.2 after a check
that the two agree on every weekday from 1998 to 2035 (docs/architecture.md has
the figures).  It pulls pandas (about a second), so it is imported on the first
question, never at import: only forecasting asks, and forecasting has pandas
loaded already.  The date arithmetic stays numpy's business-day functions.

Light module at import: standard library and numpy only.
"""
from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from typing import Iterable

import numpy as np

EXCHANGE = "XNYS"                 # exchange_calendars' name (ISO MIC) for the New York Stock Exchange
# The years the calendar is built for at first use; a date outside widens it.
DEFAULT_YEARS = (1990, dt.date.today().year + 5)


@lru_cache(maxsize=8)
def _closed_weekdays(first_year: int, last_year: int) -> frozenset[dt.date]:
    """Weekdays from ``first_year`` to ``last_year`` on which the exchange holds no session."""
    import exchange_calendars   # lazily: pulls pandas, see the module docstring
    import pandas as pd

    first, last = f"{first_year}-01-01", f"{last_year}-12-31"
    with warnings.catch_warnings():
        # exchange_calendars 4.x still uses pandas APIs pandas 3 deprecates; not ours to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        sessions = exchange_calendars.get_calendar(EXCHANGE, start=first, end=last).sessions
    weekdays = pd.bdate_range(first, last)
    return frozenset(d.date() for d in weekdays.difference(sessions))


def _closures_covering(first_year: int, last_year: int) -> frozenset[dt.date]:
    lo, hi = DEFAULT_YEARS
    return _closed_weekdays(min(lo, first_year), max(hi, last_year))


def nyse_holidays(year: int) -> frozenset[dt.date]:
    """Weekdays of ``year`` on which the NYSE is closed."""
    return frozenset(d for d in _closures_covering(year, year) if d.year == year)


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
    holidays = sorted(d for d in _closures_covering(first_year, last_year) if first_year <= d.year <= last_year)
    return np.busdaycalendar(weekmask="1111100", holidays=np.array(holidays, dtype="datetime64[D]"))


def _calendar_for(dates: Iterable[dt.date], extra_days: int = 0) -> np.busdaycalendar:
    years = [d.year for d in dates]
    # A margin of years so that offsets of a few hundred sessions stay inside the table.
    span = extra_days // 250 + 1
    return _busday_calendar(min(years) - 1, max(years) + span)


def is_trading_day(day: object) -> bool:
    d = to_date(day)
    return d.weekday() < 5 and d not in _closures_covering(d.year, d.year)


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


__all__ = ["EXCHANGE", "is_trading_day", "next_trading_days", "nyse_holidays", "to_date", "trading_days_between"]
