"""The real sample file, the synthetic generator's promises, and the torch adapters."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kronos_data_helpers import prepare

from kronos_train.data import DataSpec, prepare_data
from kronos_train.data.synthetic import WEEKLY_PATTERN, generate, write_synthetic

REAL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "real_sample_daily.csv"


@pytest.mark.skipif(not REAL_SAMPLE.exists(), reason="shared/data/real_sample_daily.csv not present")
def test_real_sample_loads_cleanly():
    prepared = prepare_data(DataSpec(REAL_SAMPLE, lookback_window=256, predict_window=1), cache_dir=None)
    report = prepared.report
    assert report.ok and not report.warnings, report.summary()
    assert report.layout == "long" and report.n_tickers_total == 31 and report.n_rows_used == 39876
    assert len(prepared.train) > 0 and len(prepared.val) > 0
    x, stamp = prepared.train.get_batch(np.arange(4))
    assert np.isfinite(x).all() and x.shape == (4, 258, 6)


def test_synthetic_bars_are_valid_candles():
    data = generate(5, 300, seed=4)
    o, h, low, c, v, a = data.ohlcva.T
    assert (data.ohlcva[:, :4] > 0).all() and (v >= 0).all()
    assert (h >= np.maximum(o, c)).all() and (low <= np.minimum(o, c)).all()
    np.testing.assert_allclose(a, np.round(c * v, 2))


def test_synthetic_files_validate_without_warnings(tmp_path):
    for layout, tickers in (("kaggle", 3), ("long", 3), ("kronos", 1)):
        report = prepare(write_synthetic(tmp_path / f"{layout}.parquet", tickers, 60, layout=layout)).report
        assert report.ok and not report.warnings, report.summary()


def test_intraday_synthetic_data(tmp_path):
    prepared = prepare(write_synthetic(tmp_path / "m.csv", 2, 80, layout="long", freq="5min"))
    assert prepared.report.ok
    assert len(np.unique(prepared.table.stamps[:, 0])) > 1     # minutes vary


def _direction_accuracy(data, horizon: int) -> float:
    """How often the planted weekly pattern alone calls the sign of the close `horizon` bars ahead."""
    hits = total = 0
    for k in range(len(data.tickers)):
        rows = slice(int(data.offsets[k]), int(data.offsets[k + 1]))
        close, phase = data.ohlcva[rows, 3], data.phase[rows]
        expected = np.array([WEEKLY_PATTERN[phase[t + 1:t + 1 + horizon]].sum()
                             for t in range(len(close) - horizon)])
        actual = np.sign(close[horizon:] - close[:-horizon])
        called = expected != 0
        hits += (np.sign(expected[called]) == actual[called]).sum()
        total += called.sum()
    return hits / total


def _reversion_accuracy(data, horizon: int) -> float:
    """How often minus the mean-reverting deviation calls the sign of the close `horizon` bars ahead."""
    hits = total = 0
    for k in range(len(data.tickers)):
        rows = slice(int(data.offsets[k]), int(data.offsets[k + 1]))
        close, deviation = data.ohlcva[rows, 3], data.deviation[rows]
        hits += (-np.sign(deviation[:-horizon]) == np.sign(close[horizon:] - close[:-horizon])).sum()
        total += len(close) - horizon
    return hits / total


def test_planted_pattern_makes_direction_predictable_near_and_far():
    planted = generate(8, 500, seed=1, planted_pattern=True)
    plain = generate(8, 500, seed=1, planted_pattern=False)
    assert _direction_accuracy(planted, 1) > 0.8 and _direction_accuracy(planted, 2) > 0.8
    assert _reversion_accuracy(planted, 10) > 0.62 and _reversion_accuracy(planted, 30) > 0.65
    assert 0.4 < _direction_accuracy(plain, 1) < 0.6
    assert not plain.deviation.any()
