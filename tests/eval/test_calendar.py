"""NYSE trading-day calendar: the Kaggle horizon and the holidays that differ from federal ones."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from kronos_train.calendar import is_trading_day, next_trading_days, nyse_holidays, trading_days_between


def test_kaggle_horizon_is_30_trading_days():
    assert trading_days_between("2024-09-23", "2024-11-04") == 30
    assert trading_days_between(dt.date(2024, 11, 4), dt.date(2024, 9, 23)) == -30
    assert trading_days_between("2024-09-23", "2024-09-23") == 0


def test_nyse_2024_holidays_match_the_exchange_list():
    expected = ["2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19",
                "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25"]
    assert sorted(nyse_holidays(2024)) == [dt.date.fromisoformat(d) for d in expected]


def test_differences_from_the_federal_calendar():
    assert not is_trading_day("2024-03-29")          # Good Friday: closed, not a federal holiday
    assert is_trading_day("2024-10-14")              # Columbus Day: open
    assert is_trading_day("2024-11-11")              # Veterans Day: open
    assert not is_trading_day("2025-01-09")          # national day of mourning (President Carter)


def test_observed_rules():
    assert is_trading_day("2021-12-31")              # New Year 2022 on a Saturday: no Friday closure
    assert not is_trading_day("2021-12-24")          # Christmas on a Saturday: Friday closed
    assert not is_trading_day("2026-07-03")          # Independence Day 2026 on a Saturday
    assert not is_trading_day("2023-06-19") and is_trading_day("2021-06-18")   # Juneteenth from 2022
    assert not is_trading_day("2022-06-20")          # Juneteenth on a Sunday: Monday closed


def test_next_trading_days_skip_weekends_and_holidays():
    assert next_trading_days("2024-03-28", 2) == [dt.date(2024, 4, 1), dt.date(2024, 4, 2)]
    assert next_trading_days("2024-09-21", 1) == [dt.date(2024, 9, 23)]         # from a Saturday
    days = next_trading_days("2024-09-23", 30)
    assert len(days) == 30 and days[-1] == dt.date(2024, 11, 4)
    assert next_trading_days("2024-09-23", 0) == []


def test_counts_agree_with_numpy_over_decades():
    # Every weekday that is not a holiday counts once; the two functions agree everywhere.
    start = dt.date(1999, 12, 30)
    days = next_trading_days(start, 6000)
    assert all(is_trading_day(d) for d in days[:500])
    assert trading_days_between(start, days[-1]) == 6000
    weekdays = pd.bdate_range("2000-01-01", "2000-12-31")
    assert len([d for d in weekdays if is_trading_day(d.date())]) == 252
    assert np.all(np.diff(np.array(days, dtype="datetime64[D]")).astype(int) > 0)
