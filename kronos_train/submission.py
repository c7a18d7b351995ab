"""The Kaggle submission: forecast every test ID to its test date and write ``ID,Pred``.

For each row of the competition's ``test.csv`` (``ID, Date``; the ID names a
ticker of ``train.csv``) the horizon is the number of NYSE trading days from the
ticker's last bar to the test date (2024-09-23 to 2024-11-04: 30).  The last
``lookback_window`` bars are normalised as the official KronosPredictor does,
forecast autoregressively to the horizon (future time features from the
trading calendar), and ``Pred`` is 1 when the forecast close at the test date
is above the last close (equal is 0: the target is "higher").

A row that cannot be forecast gets the default (``--default``) and is counted
and listed by reason in ``<out>.report.json``, never hidden:

- ``unknown_ticker``: the ID is not a ticker of the training file;
- ``short_history``: fewer rows than ``min_history`` (default: lookback_window);
- ``test_date_not_after_last_bar``: the data already reach the test date;
- ``stale_history``: the last bar is more than ``max_horizon`` trading days before the test date;
- ``intraday_bars``: bars carry a time of day, so a trading-day horizon is undefined (pass ``--horizon``);
- ``forecast_failed``: the network raised or returned NaN/inf for this ticker.

The default is ``majority`` unless chosen otherwise: the majority direction of
H-step close changes over every ticker's rows of the training file (H = the most
common horizon of the test rows; an exact tie counts as 1).  Upstream's default
of 0 is a hidden bias when many tickers are defaulted.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .calendar import next_trading_days, trading_days_between
from .evaluation.forecasting import ForecastSettings, forecast_close
from .evaluation.metrics import training_majority
from .evaluation.report import format_duration

DEFAULT_RULES = ("0", "1", "majority")
DEFAULT_MAX_HORIZON = 60
NS_PER_DAY = 86_400 * 10**9
REASON_TEXT = {
    "unknown_ticker": "not a ticker of the training file",
    "short_history": "too few rows of history",
    "test_date_not_after_last_bar": "the data already reach the test date",
    "stale_history": "last bar too long before the test date",
    "intraday_bars": "intraday bars: trading-day horizon undefined (pass --horizon)",
    "forecast_failed": "the forecast raised or was not finite",
}


class SubmissionError(ValueError):
    """A user-facing problem with the inputs; the message names the file, field and value."""


# --------------------------------------------------------------------------- test.csv

@dataclass
class TestRows:
    """The rows of test.csv, in file order."""
    __test__ = False            # a name pytest would otherwise try to collect
    path: str
    ids: list[str]
    dates: list[dt.date]


def _find_column(columns: list[str], wanted: str) -> str | None:
    """Exact name first, then case- and space-insensitive (a BOM is already stripped by pandas)."""
    if wanted in columns:
        return wanted
    folded = {c.strip().lower(): c for c in columns}
    return folded.get(wanted.lower())


def read_test_csv(path: str | Path) -> TestRows:
    """The competition's test.csv: columns ``ID`` and ``Date``, in file order."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: no such file; pass the competition's test.csv with --test")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SubmissionError(f"{path}: cannot be read as CSV ({exc})") from None
    columns = [str(c) for c in frame.columns]
    id_col, date_col = _find_column(columns, "ID"), _find_column(columns, "Date")
    missing = [name for name, col in (("ID", id_col), ("Date", date_col)) if col is None]
    if missing:
        raise SubmissionError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'}); "
                              "test.csv must have the competition's columns ID and Date")
    if frame.empty:
        raise SubmissionError(f"{path}: no rows; the competition's test.csv has one row per ticker to predict")
    ids = [s.strip() for s in frame[id_col]]
    empty = [i + 2 for i, s in enumerate(ids) if not s]
    if empty:
        raise SubmissionError(f"{path}: empty ID on line(s) {_few(empty)}; every row needs a ticker ID such as ticker_1")
    return TestRows(str(path), ids, _parse_dates(path, frame[date_col]))


def _parse_dates(path: Path, texts: Any) -> list[dt.date]:
    import pandas as pd

    parsed = pd.to_datetime(texts.str.strip(), errors="coerce", format="mixed")
    bad = [i for i, v in enumerate(parsed) if pd.isna(v)]
    if bad:
        shown = ", ".join(f"line {i + 2}: {texts.iloc[i]!r}" for i in bad[:5])
        raise SubmissionError(f"{path}: column Date has {len(bad)} value(s) that are not dates ({shown}); "
                              "write dates as YYYY-MM-DD")
    return [ts.date() for ts in parsed]


def _few(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


# --------------------------------------------------------------------------- planning

@dataclass
class Job:
    """One forecast: a ticker's last ``len(rows)`` bars to ``horizon`` steps ahead."""
    key: tuple[str, dt.date]
    ticker_index: int
    rows: np.ndarray            # global row indices of the history
    future_ns: np.ndarray       # timestamps of the forecast steps (int64 ns)

    @property
    def horizon(self) -> int:
        return len(self.future_ns)


@dataclass
class Plan:
    jobs: list[Job]
    defaulted: dict[tuple[str, dt.date], str]       # key -> reason


@dataclass
class PlanOptions:
    lookback: int
    min_history: int
    max_horizon: int = DEFAULT_MAX_HORIZON
    horizon: int | None = None          # fixed horizon for every row instead of the calendar's


def plan_jobs(table: Any, test: TestRows, options: PlanOptions) -> Plan:
    """A job per distinct (ticker, test date), or the reason it gets the default."""
    plan = Plan([], {})
    for key in dict.fromkeys(zip(test.ids, test.dates)):
        job_or_reason = _plan_one(table, key, options)
        if isinstance(job_or_reason, str):
            plan.defaulted[key] = job_or_reason
        else:
            plan.jobs.append(job_or_reason)
    return plan


def _plan_one(table: Any, key: tuple[str, dt.date], options: PlanOptions) -> Job | str:
    ticker, test_date = key
    try:
        k = table.index(ticker)
    except KeyError:
        return "unknown_ticker"
    rows = np.arange(int(table.offsets[k]), int(table.offsets[k + 1]), dtype=np.int64)
    if len(rows) < max(options.min_history, 1):
        return "short_history"
    last_ns = int(table.times[rows[-1]])
    intraday = bool(np.any(table.times[rows[-min(len(rows), 50):]] % NS_PER_DAY))
    if options.horizon is not None:
        future = _future_steps(table.times[rows], options.horizon, intraday)
    elif intraday:
        return "intraday_bars"
    else:
        horizon = trading_days_between(np.datetime64(last_ns, "ns"), test_date)
        if horizon < 1:
            return "test_date_not_after_last_bar"
        if horizon > options.max_horizon:
            return "stale_history"
        future = _future_steps(table.times[rows], horizon, False)
    return Job(key, k, rows[-options.lookback:], future)


def _future_steps(times: np.ndarray, horizon: int, intraday: bool) -> np.ndarray:
    """Timestamps of the forecast steps: trading days for daily bars, else the median bar spacing."""
    last = int(times[-1])
    if not intraday:
        days = next_trading_days(np.datetime64(last, "ns"), horizon)
        return np.array(days, dtype="datetime64[D]").astype("datetime64[ns]").view(np.int64)
    step = int(np.median(np.diff(times[-50:]))) if len(times) > 1 else NS_PER_DAY
    return last + step * np.arange(1, horizon + 1, dtype=np.int64)


def batches_of(jobs: list[Job], batch_size: int) -> list[list[Job]]:
    """Jobs of equal history length and horizon together (one model call each), in chunks."""
    groups: dict[tuple[int, int], list[Job]] = {}
    for job in jobs:
        groups.setdefault((len(job.rows), job.horizon), []).append(job)
    out = []
    for members in groups.values():
        out += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    return out


# --------------------------------------------------------------------------- forecasting

Say = Callable[[str], None]


def forecast_jobs(tokenizer: Any, predictor: Any, table: Any, jobs: list[Job], settings: ForecastSettings,
                  say: Say | None = None) -> dict[tuple[str, dt.date], int | str]:
    """Pred (0/1) per job key, or ``forecast_failed``; a failed batch is retried ticker by ticker."""
    from .data import time_features

    say = say or (lambda text: None)
    results: dict[tuple[str, dt.date], int | str] = {}
    batches = batches_of(jobs, settings.batch_size)
    started, done = time.time(), 0
    for b, batch in enumerate(batches):
        results.update(_forecast_batch(tokenizer, predictor, table, batch, settings, time_features, seed_offset=b))
        done += len(batch)
        elapsed = time.time() - started
        rate = done / max(elapsed, 1e-9)
        say(f"batch {b + 1}/{len(batches)}: {done}/{len(jobs)} tickers, {rate:.2f} tickers/s, "
            f"ETA {format_duration((len(jobs) - done) / rate if rate else 0.0)}")
    return results


def _forecast_batch(tokenizer: Any, predictor: Any, table: Any, batch: list[Job], settings: ForecastSettings,
                    time_features: Callable, seed_offset: int) -> dict[tuple[str, dt.date], int | str]:
    history = np.stack([table.values[job.rows] for job in batch]).astype(np.float32)
    x_stamp = np.stack([table.stamps[job.rows] for job in batch]).astype(np.float32)
    y_stamp = np.stack([time_features(job.future_ns.view("datetime64[ns]")) for job in batch])
    try:
        close = forecast_close(tokenizer, predictor, history, x_stamp, y_stamp, settings, seed_offset)
    except (RuntimeError, ValueError, FloatingPointError):
        if len(batch) == 1:
            return {batch[0].key: "forecast_failed"}
        out: dict[tuple[str, dt.date], int | str] = {}
        for job in batch:        # find the ticker that breaks the batch, keep the others
            out.update(_forecast_batch(tokenizer, predictor, table, [job], settings, time_features, seed_offset))
        return out
    last_close = history[:, -1, 3].astype(np.float64)
    return {job.key: (int(c > last) if np.isfinite(c) else "forecast_failed")
            for job, c, last in zip(batch, close, last_close)}


# --------------------------------------------------------------------------- the submission

@dataclass
class SubmissionRequest:
    test: TestRows
    table: Any                          # SeriesTable of the training file
    data_path: str
    out: Path
    options: PlanOptions
    settings: ForecastSettings
    default_rule: str = "majority"
    model_info: dict[str, Any] = field(default_factory=dict)


def resolve_default(rule: str, table: Any, horizons: list[int]) -> tuple[int, str]:
    """(value, explanation) of the default prediction."""
    if rule in ("0", "1"):
        return int(rule), f"fixed {rule} (--default {rule})"
    if rule != "majority":
        raise SubmissionError(f"--default {rule!r}: use 0, 1 or majority")
    horizon = Counter(horizons).most_common(1)[0][0] if horizons else 30
    share = training_majority(table.values, table.offsets, horizon, train_ratio=1.0).global_share
    value = int(not share < 0.5)
    return value, (f"majority: {share:.1%} of {horizon}-step close changes in the training file rose, "
                   f"so defaulted rows get {value}")


def make_submission(request: SubmissionRequest, tokenizer: Any, predictor: Any, say: Say | None = None) -> dict[str, Any]:
    """Plan, forecast, write ``ID,Pred`` and ``<out>.report.json``; returns the report."""
    started = time.time()
    say = say or (lambda text: None)
    test, table = request.test, request.table
    _check_tickers_known(test, table, request.data_path)
    plan = plan_jobs(table, test, request.options)
    say(f"{len(plan.jobs)} forecasts to make, {len(plan.defaulted)} (ticker, date) pairs get the default")
    # Before the slow part, so a bad --default fails at once.
    default, why = resolve_default(request.default_rule, table, [job.horizon for job in plan.jobs])
    outcomes: dict[tuple[str, dt.date], int | str] = dict(plan.defaulted)
    outcomes.update(forecast_jobs(tokenizer, predictor, table, plan.jobs, request.settings, say))
    preds, reasons = _rows(test, outcomes, default)
    write_submission(request.out, test.ids, preds)
    report = _report(request, plan, preds, reasons, default, why, time.time() - started)
    write_report(report_path(request.out), report)
    return report


def _check_tickers_known(test: TestRows, table: Any, data_path: str) -> None:
    known = set(table.tickers)
    if not any(i in known for i in test.ids):
        raise SubmissionError(
            f"{test.path}: none of its {len(test.ids)} IDs is a ticker of {data_path} (test IDs like "
            f"{_few(list(dict.fromkeys(test.ids)), 3)}; tickers like {_few(list(table.tickers), 3)}). "
            "Pass the train.csv this test.csv belongs to")


def _rows(test: TestRows, outcomes: dict[tuple[str, dt.date], int | str], default: int) -> tuple[list[int], list[str | None]]:
    preds, reasons = [], []
    for key in zip(test.ids, test.dates):
        outcome = outcomes[key]
        if isinstance(outcome, str):
            preds.append(default)
            reasons.append(outcome)
        else:
            preds.append(int(outcome))
            reasons.append(None)
    return preds, reasons


def write_submission(path: Path, ids: list[str], preds: list[int]) -> None:
    """``ID,Pred`` with integer predictions, one row per test row, in test order (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write("ID,Pred\n")
        fh.writelines(f"{i},{int(p)}\n" for i, p in zip(ids, preds))
    tmp.replace(path)


def report_path(out: Path) -> Path:
    return Path(f"{out}.report.json")


def write_report(path: Path, report: dict[str, Any]) -> None:
    from .control.runfolder import write_json_atomic

    write_json_atomic(path, report)


def _report(request: SubmissionRequest, plan: Plan, preds: list[int], reasons: list[str | None], default: int,
            why: str, seconds: float) -> dict[str, Any]:
    test = request.test
    defaulted = [{"ID": i, "Date": d.isoformat(), "reason": r} for i, d, r in zip(test.ids, test.dates, reasons) if r]
    return {
        "output": str(request.out), "test": test.path, "data": request.data_path,
        "rows": len(test.ids), "forecast": len(test.ids) - len(defaulted), "defaulted": len(defaulted),
        "default": {"rule": request.default_rule, "value": default, "why": why},
        "reasons": dict(Counter(r for r in reasons if r)), "reason_text": REASON_TEXT,
        "defaulted_rows": defaulted,
        "predicted_up_share": float(np.mean(preds)) if preds else None,
        "horizons": {str(h): n for h, n in sorted(Counter(job.horizon for job in plan.jobs).items())},
        "lookback_window": request.options.lookback, "min_history": request.options.min_history,
        "max_horizon": request.options.max_horizon, "fixed_horizon": request.options.horizon,
        "sampling": request.settings.__dict__, "model": request.model_info, "seconds": round(seconds, 2),
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What the terminal shows once the submission is written."""
    lines = [f"wrote {report['output']}: {report['rows']} rows, {report['forecast']} forecast, "
             f"{report['defaulted']} defaulted to {report['default']['value']} ({report['default']['why']}); "
             f"predicted up: {report['predicted_up_share']:.1%}"]
    by_reason: dict[str, list[str]] = {}
    for row in report["defaulted_rows"]:
        by_reason.setdefault(row["reason"], []).append(row["ID"])
    for reason, ids in by_reason.items():
        lines.append(f"  {len(ids)} {reason} ({REASON_TEXT[reason]}): {_few(ids, 8)}")
    lines.append(f"report: {report_path(Path(report['output']))}")
    return lines


__all__ = ["DEFAULT_RULES", "Job", "Plan", "PlanOptions", "SubmissionError", "SubmissionRequest", "TestRows",
           "batches_of", "forecast_jobs", "make_submission", "plan_jobs", "read_test_csv", "report_path",
           "resolve_default", "summary_lines", "write_submission"]
