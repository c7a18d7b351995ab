"""Data pipeline: validate a candlestick file, clean it, build per-ticker windows.

Light on purpose: importing this package pulls numpy only (pyarrow and pandas
load when a file is read); nothing here imports torch.

    spec = DataSpec("train.csv", lookback_window=256, predict_window=1)
    prepared = prepare_data(spec, cache_dir=".kronos-cache")
    if not prepared.report.ok: print(prepared.report.summary())
    x, stamp = prepared.train.get_batch(EpochSampler(len(prepared.train), 32, seed=42).batches(0)[0])
"""
from .pipeline import DEFAULT_CACHE_DIR, PreparedData, inspect_data, load_series, prepare_data
from .report import DataReport, Issue
from .sampler import EpochSampler
from .series import SeriesTable
from .spec import FEATURE_NAMES, TIME_FEATURE_NAMES, DataSpec
from .timeparse import time_features
from .windows import WindowSet, normalize_window

__all__ = [
    "DEFAULT_CACHE_DIR", "DataReport", "DataSpec", "EpochSampler", "FEATURE_NAMES", "Issue", "PreparedData",
    "SeriesTable", "TIME_FEATURE_NAMES", "WindowSet", "inspect_data", "load_series", "normalize_window",
    "prepare_data", "time_features",
]
