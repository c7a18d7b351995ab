"""Synthetic candlestick files: realistic random walks and an optional planted pattern.

(The deliberately broken files the data tests use are in tests/data/bad_files.py.)

The planted pattern has two parts, so that direction is learnable at short and
at long horizons:

- a weekly seasonality of returns: bars on weekday 0 and 1 (Mon, Tue) drift up,
  weekday 3 and 4 (Thu, Fri) down, by ``pattern_strength`` noise standard
  deviations (for non-daily frequencies the "weekday" is the bar index modulo
  5). It calls the sign of the next 1-3 closes right ~90 % of the time, from
  the calendar (the time features) alone;
- mean reversion: the log price is a slowly drifting level plus an AR(1)
  deviation with coefficient ``mean_reversion``; the sign of the close 5-30 bars
  ahead follows minus the current deviation ~70-80 % of the time.

Without the pattern the log price is a plain random walk: direction is a coin
flip, so a model that learns nothing scores about 50 %.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

Layout = Literal["kaggle", "kronos", "long"]
WEEKLY_PATTERN = np.array([1.0, 1.0, 0.0, -1.0, -1.0])
KAGGLE_HEADER = ["Date", "Open", "High", "Low", "Close", "Volume", "Dividends", "Stock Splits", "Ticker"]
KRONOS_HEADER = ["timestamps", "open", "high", "low", "close", "volume", "amount"]
LONG_HEADER = ["ticker", "timestamps", "open", "high", "low", "close", "volume", "amount"]


@dataclass
class SyntheticData:
    """The generated series as arrays (rows grouped by ticker, sorted by time)."""

    tickers: list[str]
    offsets: np.ndarray
    times: np.ndarray            # datetime64[ns]
    ohlcva: np.ndarray           # float64 [N, 6]
    phase: np.ndarray            # int [N]: position in the planted cycle (0..4)
    deviation: np.ndarray        # float64 [N]: the mean-reverting part of the log price (0 without pattern)


def _calendar(n: int, freq: str, start: str) -> np.ndarray:
    """n timestamps: business days for daily frequencies, else a regular grid."""
    if freq.upper() in ("D", "B", "1D"):
        first = np.datetime64(start, "D")
        days = first + np.arange(int(n * 7 / 5) + 10)
        weekday = (days.astype(np.int64) + 3) % 7
        return days[weekday < 5][:n].astype("datetime64[ns]")
    import pandas as pd
    return pd.date_range(start, periods=n, freq=freq).to_numpy().astype("datetime64[ns]")


def generate(n_tickers: int, n_rows_per_ticker: int | Sequence[int], seed: int = 0, freq: str = "D",
             planted_pattern: bool = True, pattern_strength: float = 1.5, mean_reversion: float = 0.9,
             start: str = "2000-01-03") -> SyntheticData:
    """OHLCV series per ticker; the longest ticker sets the calendar, others end with it."""
    rng = np.random.default_rng(seed)
    lengths = np.full(n_tickers, int(n_rows_per_ticker), np.int64) if np.isscalar(n_rows_per_ticker) \
        else np.asarray(n_rows_per_ticker, np.int64)
    if len(lengths) != n_tickers:
        raise ValueError("n_rows_per_ticker: one length per ticker")
    offsets = np.zeros(n_tickers + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    longest = int(lengths.max()) if n_tickers else 0
    calendar = _calendar(longest, freq, start)
    # Rows of ticker k are the last lengths[k] cells of a [ticker, calendar] grid.
    in_grid = np.arange(longest)[None, :] >= (longest - lengths)[:, None]
    position = np.broadcast_to(np.arange(longest), in_grid.shape)[in_grid]
    times = calendar[position]
    daily = freq.upper() in ("D", "B", "1D")
    phase = ((times.astype("datetime64[D]").astype(np.int64) + 3) % 7) if daily else position % 5
    phase = np.minimum(phase, 4)
    sigma_k = 0.006 + 0.012 * rng.random(n_tickers)
    paths, deviation = _log_price_paths(rng, sigma_k, longest, planted_pattern, mean_reversion)
    log_level = paths[in_grid]
    ticker_of_row = np.repeat(np.arange(n_tickers), lengths)
    sigma = sigma_k[ticker_of_row]
    if planted_pattern:
        season = WEEKLY_PATTERN[phase] * pattern_strength * sigma
        season_path = np.cumsum(season)
        season_path -= np.repeat(season_path[offsets[:-1]] - season[offsets[:-1]], lengths)  # per ticker
        log_level = log_level + season_path
    base_price = np.exp(rng.uniform(np.log(5.0), np.log(500.0), n_tickers))[ticker_of_row]
    close = base_price * np.exp(log_level)
    prev_close = np.empty(total)
    prev_close[1:] = close[:-1]
    prev_close[offsets[:-1]] = close[offsets[:-1]] * np.exp(-rng.standard_normal(n_tickers) * sigma_k)
    returns = np.log(close / prev_close)
    open_ = prev_close * np.exp(rng.standard_normal(total) * sigma * 0.2)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(total)) * sigma * 0.5)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(total)) * sigma * 0.5)
    base_volume = np.exp(rng.uniform(np.log(1e4), np.log(1e7), n_tickers))[ticker_of_row]
    volume = np.round(base_volume * np.exp(0.3 * rng.standard_normal(total)) * (1 + 30 * np.abs(returns)))
    prices = np.round(np.stack([open_, high, low, close], axis=1), 4)
    prices = np.maximum(prices, 0.0001)
    prices[:, 1] = prices.max(axis=1)          # rounding must not break high >= max(open, close)
    prices[:, 2] = prices[:, [0, 2, 3]].min(axis=1)
    amount = np.round(prices[:, 3] * volume, 2)
    ohlcva = np.column_stack([prices, volume, amount])
    names = [f"ticker_{k + 1}" for k in range(n_tickers)]
    return SyntheticData(names, offsets, times, ohlcva, phase, deviation[in_grid])


def _log_price_paths(rng: np.random.Generator, sigma: np.ndarray, n_steps: int, planted: bool,
                     phi: float) -> tuple[np.ndarray, np.ndarray]:
    """[ticker, step] (log-price paths, their mean-reverting part).

    Without the pattern: a random walk (no mean-reverting part). With it: a slow
    random-walk level plus an AR(1) deviation of coefficient ``phi``.
    """
    shocks = rng.standard_normal((len(sigma), n_steps)) * sigma[:, None]
    if not planted:
        return np.cumsum(shocks, axis=1), np.zeros_like(shocks)
    level = np.cumsum(rng.standard_normal(shocks.shape) * (0.1 * sigma[:, None]), axis=1)
    deviation = np.empty_like(shocks)
    current = shocks[:, 0] / np.sqrt(1 - phi * phi)     # start in the stationary distribution
    for t in range(n_steps):   # a loop over time, vectorised over tickers
        current = phi * current + shocks[:, t] if t else current
        deviation[:, t] = current
    return level + deviation, deviation


def _time_column(times: np.ndarray, freq: str):  # -> pyarrow.Array
    import pyarrow as pa
    if freq.upper() in ("D", "B", "1D"):
        return pa.array(times.astype("datetime64[D]"), pa.date32())
    return pa.array(times.astype("datetime64[s]"), pa.timestamp("s"))


def to_table(data: SyntheticData, layout: Layout = "kaggle", freq: str = "D", order: str = "ticker"):
    """The data as a pyarrow Table in one of the three layouts."""
    import pyarrow as pa

    ticker_idx = np.repeat(np.arange(len(data.tickers)), np.diff(data.offsets)).astype(np.int32)
    index = np.arange(len(data.times))
    if order == "time":
        index = np.lexsort((ticker_idx, data.times))
    v = data.ohlcva[index]
    tickers = pa.DictionaryArray.from_arrays(pa.array(ticker_idx[index]), pa.array(data.tickers))
    times = _time_column(data.times[index], freq)
    if layout == "kaggle":
        cols = [times, *[pa.array(v[:, k]) for k in range(4)], pa.array(v[:, 4].astype(np.int64)),
                pa.array(np.zeros(len(v))), pa.array(np.zeros(len(v))), tickers.cast(pa.string())]
        return pa.table(cols, names=KAGGLE_HEADER)
    cols = [times, *[pa.array(v[:, k]) for k in range(6)]]
    if layout == "kronos":
        if len(data.tickers) != 1:
            raise ValueError("the kronos layout holds one series; use layout='long' for several tickers")
        return pa.table(cols, names=KRONOS_HEADER)
    if layout == "long":
        return pa.table([tickers.cast(pa.string()), *cols], names=LONG_HEADER)
    raise ValueError(f"unknown layout {layout!r}: kaggle, kronos or long")


def write_table(table, path: str | os.PathLike[str], delimiter: str = ",") -> str:
    """Write by extension: .parquet, .csv.gz, else CSV."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq
        pq.write_table(table, path)
        return path
    # Plain header and values, no quotes: what exported stock files look like.
    options = pacsv.WriteOptions(delimiter=delimiter, quoting_style="none", include_header=False)
    header = (delimiter.join(table.column_names) + "\n").encode()
    with (pa.CompressedOutputStream(path, "gzip") if path.endswith(".gz") else pa.OSFile(path, "wb")) as out:
        out.write(header)
        pacsv.write_csv(table, out, options)
    return path


def write_synthetic(path: str | os.PathLike[str], n_tickers: int = 24, n_rows_per_ticker: int | Sequence[int] = 600,
                    seed: int = 0, layout: Layout = "kaggle", freq: str = "D", planted_pattern: bool = True,
                    pattern_strength: float = 1.5, mean_reversion: float = 0.9, order: str = "ticker",
                    delimiter: str = ",") -> str:
    """Write a synthetic data file (CSV, CSV.gz or Parquet by extension); returns the path.

    ``order="time"`` interleaves tickers date by date, like the Kaggle
    ``train_combined.csv``; the default groups rows by ticker.
    """
    data = generate(n_tickers, n_rows_per_ticker, seed, freq, planted_pattern, pattern_strength, mean_reversion)
    return write_table(to_table(data, layout, freq, order), path, delimiter)
