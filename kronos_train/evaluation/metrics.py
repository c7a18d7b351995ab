"""Horizon windows, forecast metrics and the baselines that need no model (numpy only).

A horizon window of ticker k is ``lookback`` rows of history followed by H rows
whose last close is the target; the H rows lie in the ticker's validation
period.  See the package docstring for what each metric and baseline means.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLOSE = 3                     # column of the close in open, high, low, close, volume, amount
BASELINE_NAMES = ("always_up", "majority", "majority_global", "persistence")


def split_rows(lengths: np.ndarray, train_ratio: float, val_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, end of the validation rows) per ticker: the data pipeline's split
    (kronos_train/data/windows.py), floor(n * ratio) guarded against 0.7 + 0.2 = 0.8999."""
    lengths = np.asarray(lengths, np.int64)
    n_train = np.floor(lengths * float(train_ratio) + 1e-9).astype(np.int64)
    val_end = np.minimum(np.floor(lengths * float(train_ratio + val_ratio) + 1e-9).astype(np.int64), lengths)
    return n_train, val_end


def horizon_window_starts(offsets: np.ndarray, lookback: int, horizon: int, train_ratio: float,
                          val_ratio: float) -> np.ndarray:
    """Global start rows of every validation window for horizon H.

    Window = rows ``s .. s + lookback + H - 1`` of one ticker; the H target rows
    ``s + lookback ..`` lie in ``[n_train, val_end)``; the history may start in
    the training rows.  Ticker by ticker, in time order.
    """
    offsets = np.asarray(offsets, np.int64)
    n_train, val_end = split_rows(np.diff(offsets), train_ratio, val_ratio)
    first = np.maximum(n_train - lookback, 0)
    counts = np.maximum(val_end - lookback - horizon - first + 1, 0)
    counts = np.where(val_end > n_train, counts, 0)
    parts = [np.arange(o + f, o + f + c, dtype=np.int64) for o, f, c in zip(offsets[:-1], first, counts) if c]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``range(n)``, spread evenly (deterministic, covers every ticker span)."""
    if limit <= 0 or n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


@dataclass
class HorizonTargets:
    """What every window is judged on (raw prices; returns relative to the last close)."""
    starts: np.ndarray
    ticker: np.ndarray          # ticker index of each window
    last_close: np.ndarray
    true_return: np.ndarray

    @property
    def true_up(self) -> np.ndarray:
        return self.true_return > 0

    def __len__(self) -> int:
        return len(self.starts)


def ticker_of_rows(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(offsets), rows, side="right") - 1


def horizon_targets(values: np.ndarray, offsets: np.ndarray, starts: np.ndarray, lookback: int,
                    horizon: int) -> HorizonTargets:
    starts = np.asarray(starts, np.int64)
    last_close = np.asarray(values[starts + lookback - 1, CLOSE], np.float64)
    target = np.asarray(values[starts + lookback + horizon - 1, CLOSE], np.float64)
    return HorizonTargets(starts, ticker_of_rows(offsets, starts), last_close, target / last_close - 1.0)


# --------------------------------------------------------------------------- metrics and baselines

def direction_accuracy(pred_up: np.ndarray, true_up: np.ndarray) -> float | None:
    pred_up, true_up = np.asarray(pred_up, bool), np.asarray(true_up, bool)
    return float(np.mean(pred_up == true_up)) if len(true_up) else None


def mae(pred: np.ndarray | None, truth: np.ndarray) -> float | None:
    if pred is None or not len(truth):
        return None
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64))))


def score(pred_up: np.ndarray, pred_return: np.ndarray | None, targets: HorizonTargets) -> dict[str, float | None]:
    """direction_accuracy, mae_return, up_share of one set of predictions."""
    pred_up = np.broadcast_to(np.asarray(pred_up, bool), targets.true_up.shape)
    return {"direction_accuracy": direction_accuracy(pred_up, targets.true_up),
            "mae_return": mae(pred_return, targets.true_return),
            "up_share": float(pred_up.mean()) if len(pred_up) else None}


@dataclass
class TrainingMajority:
    """Share of rising H-step closes in the training rows, per ticker and pooled."""
    up_share: np.ndarray        # per ticker, NaN where the ticker has fewer than H + 1 training rows
    global_share: float

    @property
    def global_up(self) -> bool:
        return not self.global_share < 0.5        # an exact tie counts as up

    def ticker_up(self) -> np.ndarray:
        """Per-ticker majority; a tie or no data falls back to the global majority."""
        share = self.up_share
        undecided = np.isnan(share) | (share == 0.5)
        return np.where(undecided, self.global_up, share > 0.5)


def training_majority(values: np.ndarray, offsets: np.ndarray, horizon: int, train_ratio: float,
                      val_ratio: float = 0.0) -> TrainingMajority:
    """Pairs (t, t+H) of one ticker with both rows in its training period."""
    offsets = np.asarray(offsets, np.int64)
    lengths = np.diff(offsets)
    n_train, _ = split_rows(lengths, train_ratio, val_ratio)
    # int32 indices: 20M Kaggle rows cost 80 MB per array instead of 160.
    ticker = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    position = (np.arange(int(offsets[-1]), dtype=np.int64) - offsets[:-1][ticker]).astype(np.int32)
    rows = np.flatnonzero(position + horizon < n_train[ticker])
    close = values[:, CLOSE]
    up = (close[rows + horizon] > close[rows]).astype(np.float64)
    pairs = np.bincount(ticker[rows], minlength=len(lengths)).astype(np.float64)
    ups = np.bincount(ticker[rows], weights=up, minlength=len(lengths))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(pairs > 0, ups / pairs, np.nan)
    global_share = float(ups.sum() / pairs.sum()) if pairs.sum() else 0.5
    return TrainingMajority(share, global_share)


def baseline_metrics(targets: HorizonTargets, majority: TrainingMajority) -> dict[str, dict[str, float | None]]:
    n = len(targets)
    return {
        "always_up": score(np.ones(n, bool), None, targets),
        "majority": score(majority.ticker_up()[targets.ticker], None, targets),
        "majority_global": score(np.full(n, majority.global_up), None, targets),
        "persistence": score(np.zeros(n, bool), np.zeros(n), targets),
    }


def model_metrics(pred_close: np.ndarray, targets: HorizonTargets) -> dict[str, float | None]:
    """Scores of a network's forecasts; a non-finite forecast counts as "not up", return 0."""
    pred_return = pred_close / targets.last_close - 1.0
    failed = ~np.isfinite(pred_return)
    pred_return = np.where(failed, 0.0, pred_return)
    metrics = score(pred_return > 0, pred_return, targets)
    metrics["failed_forecasts"] = int(failed.sum())
    return metrics


__all__ = ["BASELINE_NAMES", "CLOSE", "HorizonTargets", "TrainingMajority", "baseline_metrics", "direction_accuracy",
           "evenly_spaced", "horizon_targets", "horizon_window_starts", "mae", "model_metrics", "score", "split_rows",
           "training_majority"]
