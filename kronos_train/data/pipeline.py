"""prepare_data / inspect_data / load_series: the public entry points."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .columns import ColumnMapping, map_columns
from .report import DataReport, Issue, make_issue
from .series import SeriesTable
from .spec import DataSpec, DuplicatePolicy
from .windows import WindowPlan, WindowSet, plan_windows, report_windows

DEFAULT_CACHE_DIR = ".kronos-cache"


@dataclass
class PreparedData:
    """Everything the trainer needs; ``train``/``val`` are empty when the report has errors."""

    spec: DataSpec
    report: DataReport
    table: SeriesTable
    train: WindowSet
    val: WindowSet
    tickers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok


# --------------------------------------------------------------------------- series stage

def _read_and_clean(spec: DataSpec, report: DataReport) -> SeriesTable | None:
    """Sniff, map columns, read, clean. Every failure becomes an issue."""
    from .reader import LineMap, ReadFailure, read_csv_columns, read_parquet_columns, sniff
    from .validate import Cleaner

    label = spec.path_str
    try:
        fmt = sniff(label)
    except ReadFailure as failure:
        report.add(make_issue("error", failure.code, failure.what, failure.hint, file=label))
        return None
    report.file_format = fmt.to_dict()
    _format_issues(fmt, report, label)
    mapping = map_columns(fmt.header, spec.ticker_column or None, spec.single_series)
    report.layout = mapping.layout
    report.columns = dict(mapping.roles)
    if not _mapping_ok(mapping, fmt.header, spec, report):
        return None
    try:
        raw = read_parquet_columns(label, mapping) if fmt.kind == "parquet" \
            else read_csv_columns(label, fmt, mapping)
    except ReadFailure as failure:
        report.add(make_issue("error", failure.code, failure.what, failure.hint, file=label))
        return None
    skipped = [n for n, _ in raw.invalid_rows if n is not None]
    linemap = LineMap(label, fmt, skipped if len(skipped) == raw.n_invalid_rows else [])
    return Cleaner(raw, mapping, spec, linemap, report).run()


def _format_issues(fmt: Any, report: DataReport, label: str) -> None:
    notes = []
    if fmt.encoding != "utf-8":
        notes.append(f"encoding {fmt.encoding}")
    if fmt.bom:
        notes.append("a byte-order mark (BOM)")
    if fmt.delimiter != ",":
        notes.append(f"delimiter {fmt.delimiter!r}")
    if fmt.compression:
        notes.append(f"{fmt.compression} compression")
    if notes:
        report.add(make_issue("info", "file_format", "read with " + ", ".join(notes), "nothing to do", file=label))


def _mapping_ok(mapping: ColumnMapping, header: list[str], spec: DataSpec, report: DataReport) -> bool:
    label = spec.path_str
    if spec.ticker_column and "ticker" not in mapping.roles and not spec.single_series:
        report.add(make_issue("error", "ticker_column_not_found",
                              f"has no column named {spec.ticker_column!r} (columns: {', '.join(header)})",
                              "fix ticker_column, or leave it empty to detect the ticker column",
                              file=label, column=spec.ticker_column))
        return False
    if mapping.missing:
        report.add(make_issue(
            "error", "missing_columns",
            f"lacks required columns {', '.join(mapping.missing)} (found: {', '.join(header) or 'none'})",
            "name them timestamps/date, open, high, low, close (any case; aliases such as datetime, o/h/l/c work)",
            file=label, column=", ".join(mapping.missing)))
        return False
    if mapping.ignored:
        report.add(make_issue("info", "columns_ignored", f"columns not used: {', '.join(mapping.ignored)}",
                              "nothing to do", file=label, column=", ".join(mapping.ignored)))
    for role, others in mapping.shadowed.items():
        report.add(make_issue("info", "column_choice",
                              f"several columns could be the {role}; using '{mapping.roles[role]}', "
                              f"not {', '.join(repr(o) for o in others)}", f"rename columns to choose another {role}",
                              file=label, column=mapping.roles[role]))
    if mapping.time_column:
        report.add(make_issue("info", "date_time_joined",
                              f"timestamp = '{mapping.roles['timestamp']}' + ' ' + '{mapping.time_column}'",
                              "nothing to do", file=label, column=mapping.time_column))
    if spec.single_series:
        report.add(make_issue("info", "single_series", "declared one series (single_series): no ticker column used",
                              "unset single_series if the file holds several tickers", file=label))
    return True


def _series(spec: DataSpec, cache_dir: str | os.PathLike[str] | None) -> tuple[SeriesTable | None, DataReport]:
    """The cleaned table and the series-level report, from the cache when possible.

    With a cache, concurrent callers (several ranks on one node) take a file
    lock: the first reads the file, the others wait and then load its entry.
    """
    entry = None
    if cache_dir is not None and os.path.isfile(spec.path_str):
        from .cache import entry_dir
        try:
            entry = entry_dir(os.fspath(cache_dir), spec.path_str, spec.parse_options())
        except OSError:
            entry = None
    if entry is None:
        report = DataReport(path=spec.path_str, cache="disabled" if cache_dir is None else "miss")
        return _read_and_clean_safely(spec, report), report
    from .cache import entry_lock, load_entry, save_entry
    with entry_lock(entry):
        cached = load_entry(entry)
        if cached is not None:
            table, report = cached
            report.cache = "hit"
            return table, report
        report = DataReport(path=spec.path_str, cache="miss")
        table = _read_and_clean_safely(spec, report)
        if any(i.code == "out_of_memory" for i in report.issues) or not save_entry(entry, table, report):
            return table, report
        # Serve the memory-mapped entry just written: the in-memory copy is freed and
        # every process on the node shares the same pages.
        written = load_entry(entry)
        if table is not None and written is not None and written[0] is not None:
            table = written[0]
        return table, report


def _read_and_clean_safely(spec: DataSpec, report: DataReport) -> SeriesTable | None:
    try:
        return _read_and_clean(spec, report)
    except MemoryError:
        report.add(make_issue("error", "out_of_memory", "could not be loaded: out of memory",
                              "free memory or split the file", file=spec.path_str))
    except Exception as exc:  # noqa: BLE001 - a bad file must never surface as a traceback
        report.add(make_issue("error", "unreadable_file", f"could not be read ({type(exc).__name__}: {exc})",
                              "check that it is a CSV, CSV.gz or Parquet file; if it is, please report this",
                              file=spec.path_str))
    return None


# --------------------------------------------------------------------------- public API

def _spec_issues(spec: DataSpec) -> list[Issue]:
    return [make_issue("error", "bad_parameter", f"parameter {name} {what}", f"fix {name} in the data settings",
                       file=spec.path_str) for name, what in spec.problems()]


def _finish(spec: DataSpec, table: SeriesTable | None, report: DataReport, build: bool,
            started: float) -> WindowPlan | None:
    """Add the window stage to a series-stage report."""
    plan = None
    if table is not None and report.ok:
        plan = plan_windows(table, spec, build=build)
        report_windows(table, spec, plan, report)
    report.seconds = round(time.perf_counter() - started, 4)
    return plan


def inspect_data(spec: DataSpec, cache_dir: str | os.PathLike[str] | None = None) -> DataReport:
    """Validate only (the checklist's data check): the report, no window arrays."""
    started = time.perf_counter()
    bad = _spec_issues(spec)
    if bad:
        return DataReport(path=spec.path_str, issues=bad)
    table, report = _series(spec, cache_dir)
    _finish(spec, table, report, build=False, started=started)
    return report


def prepare_data(spec: DataSpec, cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE_DIR) -> PreparedData:
    """Validate, clean, split and index a data file. Never raises for a bad file."""
    started = time.perf_counter()
    bad = _spec_issues(spec)
    table: SeriesTable | None = None
    if bad:
        report = DataReport(path=spec.path_str, issues=bad)
    else:
        table, report = _series(spec, cache_dir)
    plan = _finish(spec, table, report, build=True, started=started)
    if table is None or plan is None or not report.ok:
        table = table if table is not None else SeriesTable.empty()
        empty = np.zeros(0, np.int64)
        train = WindowSet(table, empty, spec.lookback_window, spec.predict_window, spec.clip)
        val = WindowSet(table, empty, spec.lookback_window, spec.predict_window, spec.clip)
        return PreparedData(spec, report, table, train, val, list(table.tickers))
    train = WindowSet(table, plan.train_starts, spec.lookback_window, spec.predict_window, spec.clip)
    val = WindowSet(table, plan.val_starts, spec.lookback_window, spec.predict_window, spec.clip)
    return PreparedData(spec, report, table, train, val, list(table.tickers))


def load_series(path: str | os.PathLike[str], *, ticker_column: str | None = None, single_series: bool = False,
                duplicates: DuplicatePolicy = "error",
                cache_dir: str | os.PathLike[str] | None = None) -> tuple[SeriesTable, DataReport]:
    """Raw per-ticker series (OHLCVA + timestamps) for forecasting; no windows, no split.

    On errors the table is empty and ``report.errors`` says why.
    """
    spec = DataSpec(path, ticker_column=ticker_column, single_series=single_series, duplicates=duplicates)
    started = time.perf_counter()
    table, report = _series(spec, cache_dir)
    report.n_tickers = len(table) if table is not None else 0
    report.seconds = round(time.perf_counter() - started, 4)
    return (table if table is not None else SeriesTable.empty()), report
