"""Layouts, column aliases, compression, Parquet, delimiters, encodings, time formats."""
from __future__ import annotations

import numpy as np
import pytest
from kronos_data_helpers import issue_with, prepare, write_text

from kronos_train.data import load_series
from kronos_train.data.synthetic import generate, to_table, write_synthetic, write_table


def _rows(n: int = 30, ticker: str | None = "AAA") -> list[list[str]]:
    out = []
    for d in range(n):
        day = np.datetime64("2024-01-01") + d
        p = 10 + d
        out.append([str(day), f"{p}", f"{p + 1}", f"{p - 1}", f"{p + 0.5}", "100"] + ([ticker] if ticker else []))
    return out


def _csv(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    return "\n".join(delimiter.join(r) for r in [header] + rows) + "\n"


@pytest.mark.parametrize("layout, expected", [("kaggle", "kaggle"), ("long", "long")])
def test_multi_ticker_layouts(tmp_path, layout, expected):
    path = write_synthetic(tmp_path / f"{layout}.csv", 3, 40, layout=layout)
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert prepared.report.layout == expected
    assert prepared.tickers == ["ticker_1", "ticker_2", "ticker_3"]
    assert prepared.report.n_rows_used == 120


def test_official_kronos_layout_is_one_series(tmp_path):
    path = write_synthetic(tmp_path / "kronos.csv", 1, 60, layout="kronos")
    prepared = prepare(path)
    assert prepared.report.ok and prepared.report.layout == "kronos"
    assert prepared.tickers == ["kronos"] and prepared.report.find("amount_derived") is None


def test_generated_values_survive_the_round_trip(tmp_path):
    data = generate(2, 30, seed=3)
    path = write_table(to_table(data, "long"), tmp_path / "rt.csv")
    table, report = load_series(path)
    assert report.ok
    np.testing.assert_allclose(table.values, data.ohlcva.astype(np.float32), rtol=1e-6)
    assert (table.times == data.times.view(np.int64)).all()


@pytest.mark.parametrize("header", [
    ["Datetime", "O", "H", "L", "C", "Vol", "Symbol"],
    ["TIME", "Open_Price", "HIGH", "low", "Close Price", "volume", "Code"],
    ["trade_date", "open", "high", "low", "close", "vol", "ts_code"],
    ["timestamp", "open", "high", "low", "close", "volume", "instrument"],
    ["date", "open", "high", "low", "close", "volume", "stock"],
])
def test_column_aliases_any_case(tmp_path, header):
    path = write_text(tmp_path / "alias.csv", _csv(header, _rows()))
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert prepared.report.columns["ticker"] == header[-1]
    assert prepared.report.columns["timestamp"] == header[0]
    assert prepared.tickers == ["AAA"]


def test_amount_aliases(tmp_path):
    rows = [r[:6] + ["1234.5"] + r[6:] for r in _rows()]
    path = write_text(tmp_path / "amt.csv", _csv(["date", "open", "high", "low", "close", "vol", "turnover",
                                                 "symbol"], rows))
    prepared = prepare(path)
    assert prepared.report.columns["amount"] == "turnover"
    assert (prepared.table.values[:, 5] == np.float32(1234.5)).all()


def test_explicit_ticker_column_wins(tmp_path):
    rows = [r + ["X"] for r in _rows()]
    path = write_text(tmp_path / "two.csv", _csv(["date", "open", "high", "low", "close", "volume", "symbol",
                                                 "sector"], rows))
    assert prepare(path).tickers == ["AAA"]
    assert prepare(path, ticker_column="sector").tickers == ["X"]


def test_missing_required_columns_lists_them_and_the_found_ones(tmp_path):
    path = write_text(tmp_path / "cols.csv", "when,open,close\n2024-01-01,1,2\n")
    issue = issue_with(prepare(path).report, "missing_columns")
    assert issue.level == "error"
    for name in ("timestamp", "high", "low", "when"):
        assert name in issue.message


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet"])
def test_gzip_and_parquet(tmp_path, suffix):
    path = write_synthetic(tmp_path / f"d{suffix}", 2, 40)
    plain = write_synthetic(tmp_path / "d.csv", 2, 40)
    a, b = prepare(path), prepare(plain)
    assert a.report.ok, a.report.summary()
    np.testing.assert_array_equal(np.asarray(a.table.values), np.asarray(b.table.values))
    np.testing.assert_array_equal(np.asarray(a.table.times), np.asarray(b.table.times))


def test_gzip_without_gz_extension_is_detected(tmp_path):
    path = write_synthetic(tmp_path / "d.csv.gz", 2, 40)
    renamed = tmp_path / "d.data"
    renamed.write_bytes(open(path, "rb").read())
    report = prepare(renamed).report
    assert report.ok and report.file_format["compression"] == "gzip"


def test_parquet_with_native_types_and_bad_rows_reports_row_numbers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    n = 30
    times = pa.array(np.datetime64("2024-01-01") + np.arange(n), pa.date32())
    close = np.arange(n, dtype=np.float64) + 10
    close[4] = np.nan
    table = pa.table({"Date": times, "Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                      "Volume": np.full(n, 5, np.int64), "Ticker": ["T"] * n})
    pq.write_table(table, tmp_path / "p.parquet")
    report = prepare(tmp_path / "p.parquet").report
    issue = issue_with(report, "missing_price")
    assert issue.lines == [5] and "row 5" in issue.message.replace("rows 5", "row 5")


def test_parquet_timezone_aware_timestamps_keep_local_time(tmp_path):
    import pandas as pd
    times = pd.date_range("2024-03-01 09:30", periods=30, freq="D", tz="America/New_York")
    df = pd.DataFrame({"timestamps": times, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0,
                       "amount": 1.0})
    df.to_parquet(tmp_path / "tz.parquet")
    table, report = load_series(tmp_path / "tz.parquet")
    assert report.ok and report.find("timezone_converted")
    assert (table.stamps[:, 1] == 9).all() and (table.stamps[:, 0] == 30).all()


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters(tmp_path, delimiter):
    path = write_text(tmp_path / "d.csv", _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"],
                                              _rows(), delimiter))
    prepared = prepare(path)
    assert prepared.report.ok and prepared.report.file_format["delimiter"] == delimiter
    assert prepared.report.find("file_format") is not None


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1", "utf-16", "utf-16-le"])
def test_encodings_and_bom(tmp_path, encoding):
    rows = _rows(ticker="Société")
    path = write_text(tmp_path / "e.csv", _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"], rows),
                      encoding)
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert prepared.tickers == ["Société"]
    assert prepared.report.columns["timestamp"] == "Date"   # the BOM is not part of the first name


def test_bad_rows_in_a_utf16_file_get_their_lines(tmp_path):
    rows = _rows()
    rows[3][1] = "oops"
    path = write_text(tmp_path / "u.csv", _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"], rows),
                      "utf-16")
    assert issue_with(prepare(path).report, "non_numeric").lines == [5]


@pytest.mark.parametrize("stamp, expected_hour", [
    ("{d} 00:00:00-05:00", 0), ("{d}T09:30:00Z", 9), ("{d} 14:00", 14),
])
def test_timestamp_formats_keep_wall_clock_time(tmp_path, stamp, expected_hour):
    rows = _rows()
    for r in rows:
        r[0] = stamp.format(d=r[0])
    path = write_text(tmp_path / "t.csv", _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"], rows))
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert (prepared.table.stamps[:, 1] == expected_hour).all()
    assert prepared.report.first_timestamp.startswith("2024-01-01")


@pytest.mark.parametrize("fmt", ["%Y%m%d", "%m/%d/%Y", "%Y/%m/%d"])
def test_other_date_formats(tmp_path, fmt):
    from datetime import date, timedelta
    rows = _rows()
    for i, r in enumerate(rows):
        r[0] = (date(2024, 1, 1) + timedelta(days=i)).strftime(fmt)
    path = write_text(tmp_path / "f.csv", _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"], rows))
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert prepared.report.first_timestamp == "2024-01-01" and prepared.report.last_timestamp == "2024-01-30"


def test_separate_date_and_time_columns_are_joined(tmp_path):
    rows = [[f"2024-01-0{1 + i // 10}", f"{9 + i % 10:02d}:30", "1", "2", "0.5", "1.5", "7", "A"] for i in range(30)]
    path = write_text(tmp_path / "dt.csv", _csv(["date", "time", "open", "high", "low", "close", "volume", "ticker"],
                                               rows))
    prepared = prepare(path)
    assert prepared.report.ok and prepared.report.find("date_time_joined")
    assert list(prepared.table.stamps[:3, 1]) == [9, 10, 11]


def test_interleaved_tickers_are_grouped(tmp_path):
    by_ticker = prepare(write_synthetic(tmp_path / "a.csv", 3, 40, order="ticker"))
    by_time = prepare(write_synthetic(tmp_path / "b.csv", 3, 40, order="time"))
    assert by_time.report.find("grouped_by_ticker") and by_time.report.find("unsorted") is None
    np.testing.assert_array_equal(np.asarray(by_time.table.values), np.asarray(by_ticker.table.values))
    assert by_time.tickers == by_ticker.tickers


def test_quoted_fields_and_crlf_line_ends(tmp_path):
    text = _csv(["Date", "Open", "High", "Low", "Close", "Volume", "Ticker"],
                [r[:6] + [f'"{r[6]}"'] for r in _rows()]).replace("\n", "\r\n")
    prepared = prepare(write_text(tmp_path / "q.csv", text))
    assert prepared.report.ok and prepared.tickers == ["AAA"]


def test_decimal_commas_with_semicolons_are_read_with_a_warning(tmp_path):
    rows = [[r[0]] + [v.replace(".", ",") if "." in v else v + ",0" for v in r[1:5]] + r[5:] for r in _rows()]
    path = write_text(tmp_path / "eu.csv", _csv(["Datum", "Open", "High", "Low", "Close", "Volume", "Ticker"], rows,
                                               ";").replace("Datum", "Date"))
    prepared = prepare(path)
    assert prepared.report.ok, prepared.report.summary()
    assert issue_with(prepared.report, "decimal_comma").level == "warning"
    assert prepared.table.values[0, 3] == np.float32(10.5)
