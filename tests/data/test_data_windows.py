"""Per-ticker windows, the time split, leak-free normalisation, time features."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kronos_data_helpers import prepare

from kronos_train.data import WindowSet, normalize_window, time_features
from kronos_train.data.series import SeriesTable
from kronos_train.data.synthetic import write_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "w.csv"
    write_synthetic(path, 4, [60, 45, 80, 30], layout="long", order="time")
    return prepare(path, lookback_window=8, predict_window=2, train_ratio=0.7, val_ratio=0.2)


def _ticker_rows(prepared, ws: WindowSet, i: int) -> tuple[int, int, int]:
    """(ticker index, first local row, last local row) of window i."""
    start = int(ws.starts[i])
    k = int(prepared.table.ticker_of_rows(np.array([start]))[0])
    local = start - int(prepared.table.offsets[k])
    return k, local, local + ws.window_length - 1


def test_window_length_is_lookback_plus_predict_plus_one(prepared):
    x, stamp = prepared.train.get(0)
    assert x.shape == (11, 6) and stamp.shape == (11, 5)
    assert x.dtype == np.float32 and stamp.dtype == np.float32


def test_no_window_crosses_tickers(prepared):
    lengths = prepared.table.lengths
    for ws in (prepared.train, prepared.val):
        for i in range(len(ws)):
            k, first, last = _ticker_rows(prepared, ws, i)
            assert 0 <= first and last < lengths[k]
            assert ws.window_info(i)[0] == prepared.tickers[k]


def test_train_windows_lie_in_train_rows_and_val_targets_in_val_rows(prepared):
    lengths = prepared.table.lengths
    n_train = np.floor(lengths * 0.7 + 1e-9).astype(int)
    val_end = np.floor(lengths * 0.9 + 1e-9).astype(int)
    for i in range(len(prepared.train)):
        k, first, last = _ticker_rows(prepared, prepared.train, i)
        assert last < n_train[k]
    for i in range(len(prepared.val)):
        k, first, last = _ticker_rows(prepared, prepared.val, i)
        target_first = first + prepared.val.lookback_window
        assert n_train[k] <= target_first and last < val_end[k]
        assert first >= n_train[k] - prepared.val.lookback_window   # context may come from train rows


def test_window_counts_match_the_rule(prepared):
    lengths = prepared.table.lengths
    W, L = 11, 8
    n_train = np.floor(lengths * 0.7 + 1e-9).astype(int)
    val_end = np.floor(lengths * 0.9 + 1e-9).astype(int)
    expected_train = np.maximum(n_train - W + 1, 0).sum()
    expected_val = np.maximum(val_end - W - np.maximum(n_train - L, 0) + 1, 0).sum()
    assert len(prepared.train) == expected_train and len(prepared.val) == expected_val
    assert prepared.report.n_train_windows == expected_train


def test_every_train_window_appears_once(prepared):
    starts = prepared.train.starts
    assert len(np.unique(starts)) == len(starts)


def test_get_batch_equals_get(prepared):
    idx = np.array([0, 5, 3, len(prepared.train) - 1])
    xb, sb = prepared.train.get_batch(idx)
    for row, i in enumerate(idx):
        x, s = prepared.train.get(int(i))
        np.testing.assert_array_equal(xb[row], x)
        np.testing.assert_array_equal(sb[row], s)


def test_normalisation_uses_lookback_only_and_clips(prepared):
    raw, mean, std = prepared.train.raw_window(3)
    x, _ = prepared.train.get(3)
    history = raw[:8].astype(np.float64)
    np.testing.assert_allclose(mean, history.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, history.std(0), rtol=1e-5)
    expected = np.clip((raw - history.mean(0)) / (history.std(0) + 1e-5), -5, 5)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(x).max() <= 5.0


def test_raw_window_inverts_the_normalisation(prepared):
    raw, mean, std = prepared.val.raw_window(0)
    x, _ = prepared.val.get(0)
    inside = np.abs(x) < 5
    np.testing.assert_allclose((x * (std + 1e-5) + mean)[inside], raw[inside], rtol=1e-4)


window_values = st.lists(st.floats(0.25, 1e6, allow_nan=False, width=32), min_size=66, max_size=66)


@settings(max_examples=60, deadline=None)
@given(values=window_values, row=st.integers(8, 10), column=st.integers(0, 5),
       new_value=st.floats(-1e9, 1e9, allow_nan=False, width=32))
def test_changing_a_future_row_changes_nothing_in_the_lookback(values, row, column, new_value):
    raw = np.array(values, np.float32).reshape(11, 6)
    x, mean, std = normalize_window(raw, 8, 5.0)
    changed = raw.copy()
    changed[row, column] = new_value
    x2, mean2, std2 = normalize_window(changed, 8, 5.0)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)
    np.testing.assert_array_equal(x[:8], x2[:8])
    np.testing.assert_array_equal(np.delete(x, row, axis=0), np.delete(x2, row, axis=0))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), row=st.integers(8, 10))
def test_windowset_is_leak_free_end_to_end(seed, row):
    rng = np.random.default_rng(seed)
    values = rng.uniform(1, 100, (30, 6)).astype(np.float32)
    table = SeriesTable(["A"], np.array([0, 30]), values, np.arange(30, dtype=np.int64) * 86_400 * 10**9,
                        np.zeros((30, 5), np.uint8))
    ws = WindowSet(table, np.arange(20), 8, 2, 5.0)
    before = ws.get_batch(np.arange(20))[0]
    values[row + 5] = rng.uniform(-1e6, 1e6, 6)   # changes row 'row' of the window starting at 5
    after = ws.get_batch(np.arange(20))[0]
    np.testing.assert_array_equal(before[5, :8], after[5, :8])


def test_time_features_match_pandas():
    import pandas as pd
    stamps = pd.to_datetime(["2024-01-01 09:31", "2024-02-29 23:59", "1999-12-31 00:00", "2024-07-06 12:00"])
    features = time_features(stamps)
    expected = np.stack([stamps.minute, stamps.hour, stamps.day_of_week, stamps.day, stamps.month], 1)
    np.testing.assert_array_equal(features, expected.astype(np.float32))


def test_window_stamps_are_the_rows_time_features(prepared):
    x, stamp = prepared.train.get(2)
    start = int(prepared.train.starts[2])
    times = prepared.table.times[start:start + 11].view("datetime64[ns]")
    np.testing.assert_array_equal(stamp, time_features(times))
    assert set(np.unique(stamp[:, 2])) <= {0, 1, 2, 3, 4}     # business days only


def test_window_info_gives_ticker_and_time_span(prepared):
    ticker, first, last = prepared.val.window_info(0)
    start = int(prepared.val.starts[0])
    assert ticker in prepared.tickers
    assert first == prepared.table.times[start].astype("datetime64[ns]")
    assert last > first


def test_series_access_for_forecasting(prepared):
    table = prepared.table
    arrays = table.arrays("ticker_2")
    assert len(arrays["close"]) == 45 and arrays["timestamps"].dtype == np.dtype("datetime64[ns]")
    frame = table.frame("ticker_2")
    assert list(frame.columns) == ["timestamps", "open", "high", "low", "close", "volume", "amount"]
    assert frame["timestamps"].is_monotonic_increasing


def test_spec_from_a_preset_data_section():
    from kronos_train.data import DataSpec
    spec = DataSpec.from_config({"data_path": "x.csv", "lookback_window": 64, "predict_window": 30,
                                 "max_context": 512, "ticker_column": "", "test_ratio": 0.0})
    assert spec.path == "x.csv" and spec.window_length == 95 and spec.ticker_column is None

    class Section:
        data_path, lookback_window, predict_window, clip, train_ratio, val_ratio = "y.csv", 8, 1, 3.0, 0.8, 0.2
        ticker_column, single_series = "Symbol", True
    spec = DataSpec.from_config(Section(), clip=4.0)
    assert spec.ticker_column == "Symbol" and spec.single_series and spec.clip == 4.0 and spec.val_ratio == 0.2
