"""Windows per ticker, the time split, and leak-free per-window normalisation.

A window is ``lookback_window + predict_window + 1`` consecutive rows of one
ticker (the official length); windows never cross tickers. Ticker k's rows
split by time: the first ``floor(n * train_ratio)`` are train, the next
``floor(n * (train_ratio + val_ratio)) - n_train`` are validation. Train windows
lie wholly in the train rows. A validation window may take its lookback rows
from the end of the train rows, but every row after its lookback lies in the
validation rows. Normalisation uses the lookback rows only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .report import DataReport, make_issue
from .series import SeriesTable
from .spec import DataSpec

STD_EPS = 1e-5


def _ratio_rows(lengths: np.ndarray, ratio: float) -> np.ndarray:
    """floor(n * ratio), immune to 0.7 + 0.2 = 0.8999999."""
    return np.floor(lengths * float(ratio) + 1e-9).astype(np.int64)


def _ranges(firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(first, first + count) for every pair, vectorised."""
    counts = np.maximum(counts, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    before = np.cumsum(counts) - counts
    return np.repeat(firsts - before, counts) + np.arange(total, dtype=np.int64)


@dataclass
class WindowPlan:
    train_starts: np.ndarray
    val_starts: np.ndarray
    train_counts: np.ndarray   # per ticker
    val_counts: np.ndarray


def plan_windows(table: SeriesTable, spec: DataSpec, build: bool = True) -> WindowPlan:
    """Start rows of every train and validation window (global row indices)."""
    lengths = table.lengths.astype(np.int64)
    W, L = spec.window_length, int(spec.lookback_window)
    eligible = lengths >= spec.min_series_rows
    n_train = _ratio_rows(lengths, spec.train_ratio)
    val_end = np.minimum(_ratio_rows(lengths, spec.train_ratio + spec.val_ratio), lengths)
    train_counts = np.where(eligible, np.maximum(n_train - W + 1, 0), 0)
    val_first = np.maximum(n_train - L, 0)
    val_counts = np.where(eligible & (val_end > n_train), np.maximum(val_end - W - val_first + 1, 0), 0)
    starts = table.offsets[:-1]
    if not build:
        empty = np.zeros(0, np.int64)
        return WindowPlan(empty, empty, train_counts, val_counts)
    return WindowPlan(_ranges(starts, train_counts), _ranges(starts + val_first, val_counts),
                      train_counts, val_counts)


def report_windows(table: SeriesTable, spec: DataSpec, plan: WindowPlan, report: DataReport) -> None:
    """Window counts into the report, and the issues of splits too short for a window."""
    label, W = spec.path_str, spec.window_length
    lengths = table.lengths
    report.n_train_windows = int(plan.train_counts.sum())
    report.n_val_windows = int(plan.val_counts.sum())
    report.n_tickers = int((plan.train_counts > 0).sum())
    report.window = {"lookback_window": int(spec.lookback_window), "predict_window": int(spec.predict_window),
                     "length": W, "train_ratio": float(spec.train_ratio), "val_ratio": float(spec.val_ratio),
                     "min_rows": spec.min_series_rows}
    short = np.flatnonzero(lengths < spec.min_series_rows)
    if len(short):
        names = [table.tickers[k] for k in short]
        report.add(make_issue(
            "warning", "ticker_too_short",
            f"{len(short)} of {len(table)} tickers have fewer than {spec.min_series_rows} rows "
            f"(one window is {W} rows) and were left out", "nothing to do, or lower lookback_window to keep them",
            file=label, tickers=names, count=len(short), count_noun="ticker"))
    if report.n_train_windows == 0:
        need = math.ceil(W / float(spec.train_ratio))
        longest = f"the longest ticker has {int(lengths.max())}" if len(table) else "no row is usable"
        report.add(make_issue(
            "error", "no_train_windows",
            f"no ticker has enough rows for one training window of {W} rows (needs >= {need} rows at "
            f"train_ratio {spec.train_ratio}; {longest})",
            "lower lookback_window / predict_window, raise train_ratio, or use longer series",
            file=label, count=0))
    _report_validation_split(table, spec, plan, report)


def _report_validation_split(table: SeriesTable, spec: DataSpec, plan: WindowPlan, report: DataReport) -> None:
    label = spec.path_str
    if float(spec.val_ratio) <= 0:
        report.add(make_issue("info", "no_validation", "val_ratio is 0: no validation windows",
                              "set val_ratio (e.g. 0.1) to get a validation loss and early stopping",
                              file=label, count=0))
        return
    eligible = plan.train_counts > 0
    without_val = np.flatnonzero(eligible & (plan.val_counts == 0))
    rows_needed = int(spec.predict_window) + 1
    if report.n_val_windows == 0 and eligible.any():
        longest = int(table.lengths.max())
        need_ratio = rows_needed / max(longest, 1)
        report.add(make_issue(
            "error", "no_val_windows",
            f"the validation split (val_ratio {spec.val_ratio}) of every ticker is too short for one window: "
            f"a validation window needs {rows_needed} rows after its lookback inside the validation period",
            f"raise val_ratio to at least {need_ratio:.3g} (longest ticker: {longest} rows), "
            "or set val_ratio: 0 to train without validation", file=label, count=0))
    elif len(without_val):
        names = [table.tickers[k] for k in without_val]
        report.add(make_issue(
            "warning", "tickers_without_val_window",
            f"{len(without_val)} tickers have training windows but no validation window "
            f"(their validation rows hold fewer than {rows_needed} rows)",
            "nothing to do; raise val_ratio to validate on them too",
            file=label, tickers=names, count=len(without_val), count_noun="ticker"))


class WindowSet:
    """Windows over a SeriesTable: fetching one is array slicing plus a few vector ops.

    ``get(i)`` returns the normalised window ``x`` float32 ``[W, 6]`` and its time
    features ``stamp`` float32 ``[W, 5]``, exactly what the official datasets
    return; ``get_batch`` does the same for an index array in one go.
    """

    def __init__(self, table: SeriesTable, starts: np.ndarray, lookback_window: int, predict_window: int,
                 clip: float) -> None:
        self.table = table
        self.starts = np.asarray(starts, dtype=np.int64)
        self.lookback_window = int(lookback_window)
        self.predict_window = int(predict_window)
        self.window_length = self.lookback_window + self.predict_window + 1
        self.clip = float(clip)
        self._offsets = np.arange(self.window_length, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    # ------------------------------------------------------------------ one window
    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = int(self.starts[i])
        raw = np.asarray(self.table.values[s:s + self.window_length])
        x, _, _ = normalize_window(raw, self.lookback_window, self.clip)
        stamp = self.table.stamps[s:s + self.window_length].astype(np.float32)
        return x, stamp

    def raw_window(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw float32 [W, 6], lookback mean [6], lookback std [6]) for evaluation in raw units.

        ``x_norm = clip((raw - mean) / (std + 1e-5))``; invert a forecast with
        ``pred * (std + 1e-5) + mean``.
        """
        s = int(self.starts[i])
        raw = np.array(self.table.values[s:s + self.window_length], dtype=np.float32)
        _, mean, std = normalize_window(raw, self.lookback_window, self.clip)
        return raw, mean, std

    def window_info(self, i: int) -> tuple[str, np.datetime64, np.datetime64]:
        """(ticker, first timestamp, last timestamp) of window i."""
        s = int(self.starts[i])
        k = int(self.table.ticker_of_rows(np.array([s]))[0])
        times = self.table.times
        return (self.table.tickers[k], np.datetime64(int(times[s]), "ns"),
                np.datetime64(int(times[s + self.window_length - 1]), "ns"))

    # ------------------------------------------------------------------ batches
    def get_batch(self, idx: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(x float32 [B, W, 6], stamp float32 [B, W, 5]) of the windows in ``idx``."""
        rows = self.starts[np.asarray(idx, dtype=np.int64)][:, None] + self._offsets
        raw = np.asarray(self.table.values[rows])
        x, _, _ = normalize_window(raw, self.lookback_window, self.clip)
        stamp = self.table.stamps[rows].astype(np.float32)
        return x, stamp


def normalize_window(raw: np.ndarray, lookback: int, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official normalisation from the lookback rows only: no future leaks into x.

    ``mean``/``std`` (population) of ``raw[..., :lookback, :]``; every row is
    mapped to ``clip((raw - mean) / (std + 1e-5), -clip, clip)``. Sums are
    accumulated in float64; the result is float32. Works on [W, 6] and [B, W, 6].
    """
    raw = np.asarray(raw, dtype=np.float32)
    mean = raw[..., :lookback, :].mean(axis=-2, keepdims=True, dtype=np.float64)
    x = raw - mean.astype(np.float32)
    std = np.sqrt(np.square(x[..., :lookback, :]).mean(axis=-2, keepdims=True, dtype=np.float64))
    x *= (1.0 / (std + STD_EPS)).astype(np.float32)
    np.clip(x, -clip, clip, out=x)
    return x, mean.squeeze(-2).astype(np.float32), std.squeeze(-2).astype(np.float32)
