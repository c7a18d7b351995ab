"""Metrics, baselines and horizon windows against values computed by hand (no networks)."""
from __future__ import annotations

import numpy as np
import pytest

from kronos_train.evaluation.metrics import (baseline_metrics, evenly_spaced, horizon_targets, horizon_window_starts,
                                             model_metrics, training_majority)


def closes_table(*series: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """values [N, 6] whose close column holds the given series, one ticker each, and their offsets."""
    close = np.concatenate([np.asarray(s, np.float64) for s in series])
    values = np.repeat(close[:, None], 6, axis=1).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in series])]).astype(np.int64)
    return values, offsets


def three_windows():
    # lookback 2, horizon 1: windows start at rows 0, 1, 2 of closes 10 12 11 11 13.
    values, offsets = closes_table([10, 12, 11, 11, 13])
    return horizon_targets(values, offsets, np.array([0, 1, 2]), lookback=2, horizon=1)


def test_targets_by_hand():
    t = three_windows()
    np.testing.assert_allclose(t.last_close, [12, 11, 11])
    np.testing.assert_allclose(t.true_return, [-1 / 12, 0.0, 2 / 11])
    assert t.true_up.tolist() == [False, False, True]        # an unchanged close is not a rise


def test_model_scores_by_hand():
    t = three_windows()
    m = model_metrics(np.array([13.0, 10.0, 12.0]), t)
    # predicted up: T F T against F F T -> 2 of 3 right.
    assert m["direction_accuracy"] == pytest.approx(2 / 3)
    expected_mae = (abs(1 / 12 + 1 / 12) + abs(-1 / 11 - 0) + abs(1 / 11 - 2 / 11)) / 3
    assert m["mae_return"] == pytest.approx(expected_mae)
    assert m["up_share"] == pytest.approx(2 / 3) and m["failed_forecasts"] == 0


def test_failed_forecast_counts_as_flat():
    m = model_metrics(np.array([np.nan, 10.0, 12.0]), three_windows())
    assert m["failed_forecasts"] == 1
    # flat = "not up": right for window 0 (a fall); windows 1 and 2 as forecast (down vs flat, up vs up).
    assert m["direction_accuracy"] == pytest.approx(1.0)


def test_baselines_by_hand():
    t = three_windows()
    majority = training_majority(*closes_table([1, 2, 3, 2]), horizon=1, train_ratio=1.0)   # 2 of 3 up
    b = baseline_metrics(t, majority)
    assert b["always_up"]["direction_accuracy"] == pytest.approx(1 / 3)
    assert b["always_up"]["mae_return"] is None and b["always_up"]["up_share"] == 1.0
    assert b["persistence"]["direction_accuracy"] == pytest.approx(2 / 3)
    assert b["persistence"]["mae_return"] == pytest.approx((1 / 12 + 0 + 2 / 11) / 3)
    assert b["persistence"]["up_share"] == 0.0


def test_training_majority_per_ticker_and_global():
    values, offsets = closes_table([1, 2, 3, 2], [5, 4, 3, 4, 3], [7])
    m = training_majority(values, offsets, horizon=1, train_ratio=1.0)
    np.testing.assert_allclose(m.up_share[:2], [2 / 3, 1 / 4])
    assert np.isnan(m.up_share[2])
    assert m.global_share == pytest.approx(3 / 7) and not m.global_up
    # The one-row ticker has no pair and falls back to the global majority (down).
    assert m.ticker_up().tolist() == [True, False, False]


def test_training_majority_only_uses_training_rows():
    # 10 rows, train_ratio 0.5: pairs (0,1)..(3,4) rise, the later falls are validation rows.
    values, offsets = closes_table([1, 2, 3, 4, 5, 4, 3, 2, 1, 0.5])
    m = training_majority(values, offsets, horizon=1, train_ratio=0.5, val_ratio=0.5)
    assert m.up_share[0] == 1.0


def test_majority_tie_counts_as_up():
    m = training_majority(*closes_table([1, 2, 1]), horizon=1, train_ratio=1.0)
    assert m.global_share == 0.5 and m.global_up and m.ticker_up().tolist() == [True]


def test_horizon_windows_by_hand():
    offsets = np.array([0, 100, 150, 170])          # tickers of 100, 50 and 20 rows
    starts = horizon_window_starts(offsets, lookback=10, horizon=5, train_ratio=0.7, val_ratio=0.3)
    expected = np.concatenate([np.arange(60, 86), 100 + np.arange(25, 36), 150 + np.arange(4, 6)])
    np.testing.assert_array_equal(starts, expected)


def test_horizon_windows_keep_targets_in_validation_rows():
    offsets = np.array([0, 100])
    starts = horizon_window_starts(offsets, lookback=10, horizon=5, train_ratio=0.6, val_ratio=0.2)
    assert starts.min() + 10 == 60                   # first target row = first validation row
    assert starts.max() + 10 + 5 == 80               # last target row = last validation row
    assert len(horizon_window_starts(offsets, 10, 25, 0.6, 0.2)) == 0


def test_horizon_windows_match_the_data_pipeline(planted_csv):
    """With H = predict_window + 1 our windows are exactly the pipeline's validation windows."""
    from kronos_train.data import DataSpec, prepare_data

    prepared = prepare_data(DataSpec(planted_csv, lookback_window=32, predict_window=7, train_ratio=0.7,
                                     val_ratio=0.3), cache_dir=None)
    starts = horizon_window_starts(prepared.table.offsets, 32, 8, 0.7, 0.3)
    np.testing.assert_array_equal(starts, prepared.val.starts)


def test_evenly_spaced():
    assert evenly_spaced(5, 10).tolist() == [0, 1, 2, 3, 4]
    picked = evenly_spaced(1000, 4)
    assert picked.tolist() == [0, 333, 666, 999]
