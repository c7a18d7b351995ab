"""Timestamps: parsing distinct texts once, and Kronos's five time features."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAT = np.iinfo(np.int64).min
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
# An offset only counts after a clock time: '2024-01-02' ends in '-02' but has none.
_OFFSET_AFTER_CLOCK = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s?(?:Z|[+-]\d{2}(?::?\d{2})?)$"


@dataclass
class ParsedTimes:
    """int64 nanoseconds since 1970 (wall-clock time), NAT where unparseable."""

    ns: np.ndarray
    dropped_offset: bool = False       # '+02:00' / 'Z' suffixes were removed (wall time kept)
    converted_timezone: str | None = None
    notes: list[str] = field(default_factory=list)


def parse_time_uniques(uniques: Any) -> ParsedTimes:
    """Parse an arrow array of distinct timestamp values (strings, dates, timestamps, ints)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = uniques.type
    if pa.types.is_timestamp(typ):
        if typ.tz is not None:
            local = pc.local_timestamp(uniques)
            return ParsedTimes(_arrow_ts_to_ns(local), converted_timezone=str(typ.tz))
        return ParsedTimes(_arrow_ts_to_ns(uniques))
    if pa.types.is_date(typ):
        return ParsedTimes(_arrow_ts_to_ns(pc.cast(uniques, pa.timestamp("ns"))))
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        from .arrowutil import to_numpy
        values = to_numpy(pc.cast(uniques, pa.float64()), np.float64, np.nan)
        return ParsedTimes(_numbers_to_ns(values))
    texts = pc.cast(uniques, pa.string()) if not pa.types.is_string(typ) else uniques
    return parse_time_texts(texts)


def _arrow_ts_to_ns(arr: Any) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    from .arrowutil import to_numpy
    arr = pc.cast(arr, pa.timestamp("ns"), safe=False)
    return to_numpy(pc.cast(arr, pa.int64()), np.int64, NAT)


def _numbers_to_ns(values: np.ndarray) -> np.ndarray:
    """YYYYMMDD numbers, else unix epochs in s / ms / us / ns by magnitude."""
    out = np.full(len(values), NAT, np.int64)
    finite = np.isfinite(values)
    if not finite.any():
        return out
    v = values[finite]
    if np.all((v >= 1900_01_01) & (v <= 2200_12_31) & (v == np.floor(v))):
        iv = v.astype(np.int64)
        days = days_from_civil(iv // 10000, (iv // 100) % 100, iv % 100)
        ok = ((iv // 100) % 100 >= 1) & ((iv // 100) % 100 <= 12) & (iv % 100 >= 1) & (iv % 100 <= 31)
        out_f = np.where(ok, days * NS_PER_DAY, NAT)
        out[finite] = out_f
        return out
    magnitude = np.nanmax(np.abs(v))
    scale = NS_PER_S if magnitude < 1e11 else 1_000_000 if magnitude < 1e14 else 1_000 if magnitude < 1e17 else 1
    out[finite] = (v * scale).astype(np.int64)
    return out


def parse_time_texts(texts: Any) -> ParsedTimes:
    """Strings -> ns. ISO 8601 via arrow first; then digits; then pandas as a last resort."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stripped = pc.utf8_trim_whitespace(texts)
    with_offset = pc.match_substring_regex(stripped, _OFFSET_AFTER_CLOCK)
    dropped = bool(pc.any(with_offset).as_py() or False)
    if dropped:
        # Keep the wall-clock time: a daily bar stamped '2024-01-02 00:00:00-05:00'
        # is Jan 2nd, hour 0, not 05:00 UTC.
        stripped = pc.replace_substring_regex(stripped, _OFFSET_AFTER_CLOCK, r"\1")
    result = ParsedTimes(np.full(len(texts), NAT, np.int64), dropped_offset=dropped)
    try:
        result.ns = _arrow_ts_to_ns(pc.cast(stripped, pa.timestamp("ns")))
        return result
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    digits = pc.match_substring_regex(stripped, r"^\d+(\.\d+)?$")
    if len(texts) and pc.all(pc.or_kleene(digits, pc.is_null(stripped))).as_py():
        from .arrowutil import to_numpy
        numbers = to_numpy(pc.cast(stripped, pa.float64()), np.float64, np.nan)
        result.ns = _numbers_to_ns(numbers)
        return result
    result.ns = _pandas_parse(stripped.to_pylist())
    return result


def _pandas_parse(texts: list[str | None]) -> np.ndarray:
    """Formats arrow cannot read ('01/02/2024', '2024/1/2', 'Jan 2 2024'); NaT stays NAT."""
    import warnings

    import pandas as pd

    series = pd.Series(texts, dtype="object")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(series, errors="coerce")
        missing = parsed.isna() & series.notna()
        if missing.any():
            parsed[missing] = pd.to_datetime(series[missing], errors="coerce", format="mixed")
    micro = parsed.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
    # dateutil reads '9th of January' as year 1: outside a sane range is unparseable too.
    sane = (micro >= np.datetime64("1800-01-01")) & (micro < np.datetime64("2200-01-01"))
    out = np.full(len(texts), NAT, np.int64)
    out[sane] = micro[sane].astype("datetime64[ns]").view(np.int64)
    return out


# --------------------------------------------------------------------------- calendar

def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = np.asarray(y, np.int64) - (np.asarray(m) <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    m = np.asarray(m, np.int64)
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + np.asarray(d, np.int64) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(month 1-12, day 1-31) of days since 1970-01-01, vectorised."""
    z = days.astype(np.int64) + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return month, day


def time_features_u8(ns: np.ndarray) -> np.ndarray:
    """Kronos's time features [n, 5] as uint8: minute, hour, weekday (Mon=0), day, month.

    Same values as pandas' ``.dt.minute/.hour/.weekday/.day/.month`` on the
    wall-clock timestamps; stored compactly and cast to float32 per window.
    The calendar part goes through a lookup table over the (small) range of
    days, so 10M rows cost two passes instead of a dozen temporary arrays.
    """
    ns = np.asarray(ns, np.int64)
    out = np.zeros((len(ns), 5), np.uint8)
    if len(ns) == 0:
        return out
    days = np.floor_divide(ns, NS_PER_DAY)
    first = int(days.min())
    span = np.arange(first, int(days.max()) + 1, dtype=np.int64)
    month, day = civil_from_days(span)
    calendar = np.column_stack([(span + 3) % 7, day, month]).astype(np.uint8)  # 1970-01-01 was a Thursday
    days -= first
    out[:, 2:] = calendar[days]
    days += first
    days *= NS_PER_DAY
    np.subtract(ns, days, out=days)          # ns since midnight
    if days.any():
        days //= 60 * NS_PER_S               # minutes since midnight
        out[:, 0] = days % 60
        out[:, 1] = days // 60
    return out


def time_features(timestamps: Any) -> np.ndarray:
    """float32 [n, 5] time features of any datetime-like sequence (for forecasting)."""
    ns = np.asarray(np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64))
    return time_features_u8(ns).astype(np.float32)


def format_ns(ns: int) -> str:
    """ISO text of a ns timestamp ('2024-01-02' for midnight, else with the time)."""
    value = np.datetime64(int(ns), "ns")
    if int(ns) % NS_PER_DAY == 0:
        return str(value.astype("datetime64[D]"))
    if int(ns) % NS_PER_S == 0:
        return str(value.astype("datetime64[s]")).replace("T", " ")
    return str(value).replace("T", " ")
