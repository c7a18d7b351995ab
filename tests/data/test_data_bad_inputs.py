"""Every kind of bad input becomes a report entry, never a traceback."""
from __future__ import annotations

import pytest
from bad_files import BAD_KINDS, write_bad_file
from kronos_data_helpers import assert_names, issue_with, prepare, spec_for, write_text

from kronos_train.data import DataSpec, inspect_data, prepare_data
from kronos_train.data.synthetic import write_synthetic


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_is_reported_with_its_level_code_and_place(tmp_path, kind):
    bad = write_bad_file(tmp_path / f"{kind}.csv", kind)
    prepared = prepare(bad.path)
    report = prepared.report
    issue = issue_with(report, bad.code)
    assert issue.level == bad.level, report.summary()
    assert_names(issue, bad.path, column=bad.column, ticker=bad.ticker, lines=bad.lines or None,
                 count=bad.count or None)
    if bad.level == "error":
        assert not report.ok and len(prepared.train) == 0 and len(prepared.val) == 0
    else:
        assert report.ok, report.summary()
        assert len(prepared.train) > 0


def test_warnings_fix_the_data_they_describe(tmp_path):
    # high/low swapped: row dropped; open above high: high widened; zero price: row dropped.
    bad = write_bad_file(tmp_path / "hl.csv", "high_low")
    assert prepare(bad.path).report.n_rows_used == prepare(bad.path).report.n_rows - 1
    bad = write_bad_file(tmp_path / "ohlc.csv", "ohlc_outside")
    table = prepare(bad.path).table
    values = table.values
    assert (values[:, 1] >= values[:, [0, 3]].max(axis=1)).all()
    assert (values[:, 2] <= values[:, [0, 3]].min(axis=1)).all()


def test_missing_file_is_an_error_not_an_exception(tmp_path):
    path = tmp_path / "nope.csv"
    report = prepare(path).report
    assert_names(issue_with(report, "file_not_found"), path)
    assert not report.ok


def test_directory_is_an_error(tmp_path):
    assert not prepare(tmp_path).report.ok


def test_binary_garbage_is_an_error_not_an_exception(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 50)
    report = prepare(path).report
    assert not report.ok and report.errors[0].hint


def test_whitespace_only_file_is_empty(tmp_path):
    path = write_text(tmp_path / "blank.csv", "\n\n  \n")
    assert issue_with(prepare(path).report, "empty_file").level == "error"


def test_several_series_without_ticker_are_refused_unless_declared(tmp_path):
    bad = write_bad_file(tmp_path / "multi.csv", "several_series")
    assert issue_with(prepare(bad.path).report, "several_series").level == "error"
    declared = prepare(bad.path, single_series=True)
    assert declared.report.ok, declared.report.summary()
    assert issue_with(declared.report, "repeated_timestamps_kept").level == "warning"
    assert len(declared.tickers) == 1 and declared.report.n_rows_used == declared.report.n_rows


def test_single_series_file_with_identical_duplicate_rows_is_not_several_series(tmp_path):
    path = tmp_path / "one.csv"
    write_synthetic(path, 1, 40, layout="kronos")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:6] + [lines[5]] + lines[6:]) + "\n")
    report = prepare(path).report
    assert report.ok and issue_with(report, "duplicate_rows").lines == [7]


def test_conflicting_duplicates_policy_keeps_one(tmp_path):
    bad = write_bad_file(tmp_path / "dup.csv", "duplicate_conflict")
    first = prepare(bad.path, duplicates="keep_first")
    last = prepare(bad.path, duplicates="keep_last")
    assert first.report.ok and last.report.ok
    assert issue_with(first.report, "conflicting_duplicates").level == "warning"
    assert first.report.n_rows_used == first.report.n_rows - 1
    # keep_first and keep_last kept different rows
    assert (first.table.values != last.table.values).any()


def test_ticker_too_short_lists_the_tickers(tmp_path):
    path = tmp_path / "short.csv"
    write_synthetic(path, 4, [40, 40, 5, 6], layout="long")
    report = prepare(path).report
    issue = issue_with(report, "ticker_too_short")
    assert issue.level == "warning" and issue.count == 2
    assert "ticker_3" in issue.message and "ticker_4" in issue.message
    assert report.n_tickers == 2 and report.n_tickers_total == 4


def test_no_train_window_anywhere_is_an_error(tmp_path):
    path = tmp_path / "tiny.csv"
    write_synthetic(path, 2, 30, layout="long")
    report = prepare(path, lookback_window=40).report
    issue = issue_with(report, "no_train_windows")
    assert issue.level == "error" and "lookback_window" in issue.hint


def test_no_val_window_anywhere_is_an_error_and_says_which_ratio_would_do(tmp_path):
    path = tmp_path / "noval.csv"
    write_synthetic(path, 2, 40, layout="long")
    report = prepare(path, train_ratio=0.95, val_ratio=0.05).report
    issue = issue_with(report, "no_val_windows")
    assert issue.level == "error" and "val_ratio" in issue.hint


def test_tickers_without_a_val_window_are_counted(tmp_path):
    path = tmp_path / "someval.csv"
    write_synthetic(path, 3, [100, 100, 20], layout="long")
    report = prepare(path, val_ratio=0.1, train_ratio=0.9, lookback_window=5, predict_window=4).report
    issue = issue_with(report, "tickers_without_val_window")
    assert issue.level == "warning" and issue.count == 1 and "ticker_3" in issue.message


def test_val_ratio_zero_is_only_info(tmp_path):
    path = tmp_path / "v0.csv"
    write_synthetic(path, 2, 40, layout="long")
    prepared = prepare(path, train_ratio=1.0, val_ratio=0.0)
    assert prepared.report.ok and len(prepared.val) == 0
    assert issue_with(prepared.report, "no_validation").level == "info"


@pytest.mark.parametrize("overrides, field", [
    ({"lookback_window": 0}, "lookback_window"), ({"predict_window": 0}, "predict_window"),
    ({"train_ratio": 0.9, "val_ratio": 0.2}, "val_ratio"), ({"clip": 0}, "clip"),
    ({"duplicates": "whatever"}, "duplicates"),
])
def test_bad_parameters_are_errors_naming_the_field(tmp_path, overrides, field):
    path = tmp_path / "ok.csv"
    write_synthetic(path, 2, 40, layout="long")
    report = prepare(path, **overrides).report
    issue = issue_with(report, "bad_parameter")
    assert field in issue.message and not report.ok


def test_unknown_ticker_column_is_an_error(tmp_path):
    path = tmp_path / "ok.csv"
    write_synthetic(path, 2, 40)
    issue = issue_with(prepare(path, ticker_column="Company").report, "ticker_column_not_found")
    assert "Company" in issue.message and "Ticker" in issue.message


def test_missing_volume_means_zero_volume_and_amount_with_a_warning(tmp_path):
    path = write_text(tmp_path / "novol.csv", "date,open,high,low,close\n" + "".join(
        f"2024-01-{d:02d},1,2,0.5,1.5\n" for d in range(1, 29)))
    prepared = prepare(path)
    assert issue_with(prepared.report, "no_volume_column").level == "warning"
    assert (prepared.table.values[:, 4:] == 0).all()


def test_amount_is_derived_as_forecasting_does_volume_times_mean_ohlc(tmp_path):
    import pandas as pd

    from kronos_train.model.forecast import prepare_features

    path = tmp_path / "k.csv"
    write_synthetic(path, 2, 40)
    prepared = prepare(path)
    assert issue_with(prepared.report, "amount_derived").level == "info"
    v = prepared.table.values
    frame = pd.DataFrame(v[:, :5].astype("float64"), columns=["open", "high", "low", "close", "volume"])
    assert abs(v[:, 5] - prepare_features(frame)[:, 5]).max() <= 1e-6 * abs(v[:, 5]).max()   # one rule for both
    assert abs(v[:, 5] - v[:, 3] * v[:, 4]).max() > 1e-3 * abs(v[:, 5]).max()                # not close x volume


def test_empty_volume_cells_become_zero_with_a_warning(tmp_path):
    text = "date,open,high,low,close,volume\n" + "".join(
        f"2024-01-{d:02d},1,2,0.5,1.5,{'' if d == 3 else 100}\n" for d in range(1, 29))
    prepared = prepare(write_text(tmp_path / "v.csv", text))
    issue = issue_with(prepared.report, "missing_volume")
    assert issue.level == "warning" and issue.lines == [4] and prepared.table.values[2, 4] == 0


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    text = "date,open,high,low,close,volume,ticker\n" + "".join(
        f"2024-01-{d:02d},{'x' if d == 2 else 1},2,0.5,1.5,{'inf' if d == 5 else 10},A\n" for d in range(1, 29))
    text = text.replace("2024-01-09", "9th of January")
    report = prepare(write_text(tmp_path / "multi.csv", text)).report
    assert {"non_numeric", "infinite_value", "bad_timestamp"} <= set(report.codes())
    assert issue_with(report, "non_numeric").lines == [3]
    assert issue_with(report, "infinite_value").lines == [6]
    assert issue_with(report, "bad_timestamp").lines == [10]


def test_line_numbers_count_blank_lines_and_skipped_rows(tmp_path):
    rows = [f"2024-01-{d:02d},1,2,0.5,1.5,10,A" for d in range(1, 29)]
    rows[6] = rows[6].replace(",1,2,", ",abc,2,")        # data row 7
    text = "date,open,high,low,close,volume,ticker\n\n" + "\n".join(rows[:3]) + "\n\n\n" + "\n".join(rows[3:]) + "\n"
    # header 1, blank 2, rows 1-3 on lines 3-5, blanks 6-7, rows 4.. from line 8: row 7 on line 11
    report = prepare(write_text(tmp_path / "blank.csv", text)).report
    assert issue_with(report, "non_numeric").lines == [11]


def test_inspect_data_returns_the_same_verdict_without_windows(tmp_path):
    bad = write_bad_file(tmp_path / "ts.csv", "bad_timestamp")
    report = inspect_data(spec_for(bad.path))
    assert not report.ok and issue_with(report, "bad_timestamp").lines == bad.lines
    path = tmp_path / "good.csv"
    write_synthetic(path, 3, 50)
    report = inspect_data(spec_for(path))
    full = prepare(path).report
    assert report.ok and report.n_train_windows == full.n_train_windows == len(prepare(path).train)


def test_report_is_json_ready(tmp_path):
    import json
    bad = write_bad_file(tmp_path / "x.csv", "non_numeric")
    data = prepare(bad.path).report.to_dict()
    text = json.dumps(data)
    assert '"non_numeric"' in text and data["ok"] is False and data["n_errors"] >= 1


def test_prepare_never_raises_on_odd_paths(tmp_path):
    for path in [tmp_path / "a.parquet", tmp_path / "b.csv.gz"]:
        path.write_bytes(b"PAR1 not really" if path.suffix == ".parquet" else b"\x1f\x8b broken gzip")
        assert not prepare_data(DataSpec(path), cache_dir=None).report.ok


def test_a_file_whose_rows_are_all_dropped_is_an_error(tmp_path):
    text = "date,open,high,low,close,volume\n" + "".join(f"2024-01-{d:02d},0,0,0,0,1\n" for d in range(1, 29))
    report = prepare(write_text(tmp_path / "zero.csv", text)).report
    assert issue_with(report, "non_positive_price").count == 28
    assert issue_with(report, "no_train_windows").level == "error" and "no row is usable" in report.summary()


def test_line_numbers_after_a_ragged_row_and_blank_lines(tmp_path):
    rows = [f"2024-01-{d:02d},1,2,0.5,1.5,10,A" for d in range(1, 29)]
    rows[3] += ",extra"                                   # line 5
    rows[8] = rows[8].replace(",2,0.5,", ",two,0.5,")     # line 10, then +1 for the blank line below
    text = "date,open,high,low,close,volume,ticker\n" + "\n".join(rows[:6]) + "\n\n" + "\n".join(rows[6:]) + "\n"
    report = prepare(write_text(tmp_path / "ragged.csv", text)).report
    assert issue_with(report, "bad_row").lines == [5]
    assert issue_with(report, "non_numeric").lines == [11]
