"""The Kaggle submission: format, row count and order, counted defaults, horizons in trading days, bad input."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kronos_eval_helpers import HORIZON, tiny_config, write_preset
from kronos_train.cli import main as cli
from kronos_train.data import load_series
from kronos_train.submission import (PlanOptions, SubmissionError, TestRows, batches_of, plan_jobs, read_test_csv,
                                     report_path)


@pytest.fixture
def holdout(planted_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """train.csv without each ticker's last HORIZON rows; test.csv asks for the last date (known truth)."""
    monkeypatch.chdir(tmp_path)                    # the data cache lands in tmp_path/.kronos-cache
    full = pd.read_csv(planted_csv)
    last_date = full["Date"].max()
    train = full.groupby("Ticker", sort=False).head(-HORIZON)
    short = train[train["Ticker"] == "ticker_1"].tail(10).assign(Ticker="ticker_short")
    pd.concat([train, short]).to_csv(tmp_path / "train.csv", index=False)
    closes = full.groupby("Ticker", sort=False)["Close"]
    truth = {t: int(c.iloc[-1] > c.iloc[-1 - HORIZON]) for t, c in closes}
    ids = [f"ticker_{k}" for k in (5, 3, 16, 1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)]
    ids = ids[:8] + ["ticker_short", "ticker_404"] + ids[8:]
    pd.DataFrame({"ID": ids, "Date": last_date}).to_csv(tmp_path / "test.csv", index=False)
    preset = write_preset(tmp_path / "tiny.yaml", tiny_config(tmp_path / "train.csv"))
    return {"dir": tmp_path, "ids": ids, "truth": truth, "preset": preset, "train": train}


def predict(pair, holdout, *extra: str) -> int:
    d = holdout["dir"]
    return cli(["predict", "--model", *map(str, pair), "--data", str(d / "train.csv"), "--test", str(d / "test.csv"),
                "--out", str(d / "submission.csv"), "--config", str(holdout["preset"]), "--batch", "5", *extra])


def test_submission_format_order_defaults_and_report(tiny_pair, holdout, capsys):
    assert predict(tiny_pair, holdout) == 0
    captured = capsys.readouterr()
    lines = (holdout["dir"] / "submission.csv").read_text().splitlines()
    assert lines[0] == "ID,Pred" and len(lines) == 1 + len(holdout["ids"])
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == holdout["ids"]                     # test order, one row per ID
    assert all(r[1] in ("0", "1") for r in rows)                      # integers, not 0.0 / True
    report = json.loads(report_path(holdout["dir"] / "submission.csv").read_text())
    assert report["rows"] == 18 and report["forecast"] == 16 and report["defaulted"] == 2
    assert report["reasons"] == {"short_history": 1, "unknown_ticker": 1}
    assert {r["ID"] for r in report["defaulted_rows"]} == {"ticker_short", "ticker_404"}
    assert report["horizons"] == {str(HORIZON): 16}                   # trading days from the last bar to the date
    pred = dict((r[0], int(r[1])) for r in rows)
    assert pred["ticker_short"] == pred["ticker_404"] == report["default"]["value"]
    # The planted pattern was learnt: the forecasts match the held-out truth.
    hits = [pred[t] == holdout["truth"][t] for t in holdout["ids"] if t in holdout["truth"]]
    assert np.mean(hits) >= 0.8, hits
    assert "2 defaulted" in captured.out and "unknown_ticker" in captured.out and "ticker_404" in captured.out
    assert "batch 1/" in captured.err and "ETA" in captured.err


def test_majority_default_is_computed_from_the_training_file(tiny_pair, holdout):
    assert predict(tiny_pair, holdout) == 0
    report = json.loads(report_path(holdout["dir"] / "submission.csv").read_text())
    table = pd.read_csv(holdout["dir"] / "train.csv")
    close = table.groupby("Ticker", sort=False)["Close"]
    later = close.shift(-HORIZON)
    share = float((later[later.notna()] > table["Close"][later.notna()]).mean())
    assert report["default"]["value"] == int(share >= 0.5)
    assert f"{share:.1%}" in report["default"]["why"]


@pytest.mark.parametrize("rule", ["0", "1"])
def test_fixed_default(tiny_pair, holdout, rule):
    assert predict(tiny_pair, holdout, "--default", rule) == 0
    sub = pd.read_csv(holdout["dir"] / "submission.csv")
    assert sub.dtypes["Pred"] == np.int64
    assert set(sub.loc[sub["ID"].isin(["ticker_short", "ticker_404"]), "Pred"]) == {int(rule)}


def test_missing_columns_and_bad_dates_are_named(tmp_path):
    bad = tmp_path / "test.csv"
    bad.write_text("Ticker,When\nticker_1,2024-11-04\n")
    with pytest.raises(SubmissionError, match=r"test.csv: missing column\(s\) ID, Date \(found: Ticker, When\)") as e:
        read_test_csv(bad)
    assert "competition's columns ID and Date" in str(e.value)
    bad.write_text("ID,Date\nticker_1,2024-11-04\nticker_2,soon\n")
    with pytest.raises(SubmissionError, match="line 3: 'soon'"):
        read_test_csv(bad)
    bad.write_text("\ufeffid,date\nticker_1,2024-11-04\n")        # BOM and lower case are fine
    assert read_test_csv(bad).dates == [dt.date(2024, 11, 4)]


def test_cli_errors_without_traceback(tiny_pair, holdout, capsys, tmp_path):
    d = holdout["dir"]
    pd.DataFrame({"ID": ["AAPL", "MSFT"], "Date": "2024-11-04"}).to_csv(d / "other.csv", index=False)
    code = cli(["predict", "--model", *map(str, tiny_pair), "--data", str(d / "train.csv"), "--test",
                str(d / "other.csv"), "--out", str(d / "s.csv"), "--config", str(holdout["preset"])])
    err = capsys.readouterr().err
    assert code == 2 and "none of its 2 IDs is a ticker" in err and "Traceback" not in err
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    code = cli(["predict", "--model", str(tiny_pair[0]), str(not_a_model), "--data", str(d / "train.csv"),
                "--test", str(d / "test.csv"), "--out", str(d / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and f"{not_a_model} is not a Kronos model folder" in err
    assert not (d / "s.csv").exists()


def kaggle_table(tmp_path: Path, last: str = "2024-09-23", rows: int = 40, intraday: bool = False):
    days = pd.bdate_range(end=last, periods=rows)
    stamp = days + (pd.Timedelta(hours=10) if intraday else pd.Timedelta(0))
    frame = pd.DataFrame({"Date": stamp.strftime("%Y-%m-%d %H:%M:%S" if intraday else "%Y-%m-%d"),
                          "Open": 1.0, "High": 1.0, "Low": 1.0, "Close": np.linspace(1, 2, rows),
                          "Volume": 1.0, "Ticker": "ticker_1"})
    frame.to_csv(tmp_path / "k.csv", index=False)
    table, report = load_series(tmp_path / "k.csv")
    assert report.ok
    return table


def test_kaggle_horizon_is_30_trading_days(tmp_path):
    table = kaggle_table(tmp_path)
    test = TestRows("test.csv", ["ticker_1"], [dt.date(2024, 11, 4)])
    plan = plan_jobs(table, test, PlanOptions(lookback=32, min_history=32))
    (job,) = plan.jobs
    assert job.horizon == 30 and len(job.rows) == 32 and job.rows[-1] == 39
    assert job.future_ns.view("datetime64[ns]")[-1] == np.datetime64("2024-11-04")
    assert job.future_ns.view("datetime64[ns]")[0] == np.datetime64("2024-09-24")


def test_reasons_for_rows_that_cannot_be_forecast(tmp_path):
    table = kaggle_table(tmp_path)
    dates = [dt.date(2024, 9, 20), dt.date(2025, 6, 2), dt.date(2024, 11, 4)]
    test = TestRows("test.csv", ["ticker_1"] * 3, dates)
    plan = plan_jobs(table, test, PlanOptions(lookback=32, min_history=32))
    assert plan.defaulted == {("ticker_1", dates[0]): "test_date_not_after_last_bar",
                              ("ticker_1", dates[1]): "stale_history"}
    assert plan_jobs(table, test, PlanOptions(lookback=64, min_history=64)).defaulted[
        ("ticker_1", dates[2])] == "short_history"
    fixed = plan_jobs(table, test, PlanOptions(lookback=32, min_history=32, horizon=5))
    assert [j.horizon for j in fixed.jobs] == [5, 5, 5]


def test_intraday_bars_need_an_explicit_horizon(tmp_path):
    table = kaggle_table(tmp_path, intraday=True)
    test = TestRows("test.csv", ["ticker_1"], [dt.date(2024, 11, 4)])
    assert list(plan_jobs(table, test, PlanOptions(32, 32)).defaulted.values()) == ["intraday_bars"]
    (job,) = plan_jobs(table, test, PlanOptions(32, 32, horizon=3)).jobs
    assert job.horizon == 3


def test_batches_hold_equal_lengths_and_horizons(tmp_path):
    table = kaggle_table(tmp_path)
    test = TestRows("t", ["ticker_1"] * 3, [dt.date(2024, 11, 4), dt.date(2024, 10, 1), dt.date(2024, 11, 4)])
    plan = plan_jobs(table, test, PlanOptions(lookback=32, min_history=32))
    assert len(plan.jobs) == 2                                     # a repeated (ID, Date) is forecast once
    assert sorted(len(b) for b in batches_of(plan.jobs * 3, 2)) == [1, 1, 2, 2]
