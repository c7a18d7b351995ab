"""From raw columns to a clean SeriesTable, recording every problem as an Issue.

Errors stop the run; warnings are automatic fixes (rows dropped, values filled,
rows sorted), counted. The policy, code by code, is the table in docs/data.md;
keep the two in step. Every check runs before stopping, so one report lists all
problems of a file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .columns import PRICE_ROLES, ColumnMapping
from .reader import LineMap, RawColumns
from .report import DataReport, Level, make_issue
from .series import SeriesTable
from .spec import DataSpec
from .timeparse import NAT, NS_PER_DAY, format_ns, parse_time_uniques, time_features_u8

ROLE_INDEX = {"open": 0, "high": 1, "low": 2, "close": 3, "volume": 4, "amount": 5}


def derived_amount(values: np.ndarray) -> np.ndarray:
    """The amount of rows that have none, as the official Kronos predictor fills it (and
    model/forecast.prepare_features): volume x mean(open, high, low, close), in float32."""
    return (values[:, 4] * values[:, :4].mean(axis=1)).astype(np.float32)
MAX_TEXT_EXAMPLES = 3


@dataclass
class Rows:
    """The rows still alive, in their current order, with where they came from."""

    codes: np.ndarray        # int32 ticker code per row (0 when the file has no ticker)
    ns: np.ndarray           # int64 wall-clock ns
    values: np.ndarray       # float32 [n, 6]
    source: np.ndarray | None  # int64 index of the row in the reader's output; None: identity

    def __len__(self) -> int:
        return len(self.ns)

    def take(self, index: np.ndarray) -> "Rows":
        source = index if self.source is None else self.source[index]
        return Rows(self.codes[index], self.ns[index], self.values[index], source)


class Cleaner:
    """Runs the checks in order; each check is a short method adding issues."""

    def __init__(self, raw: RawColumns, mapping: ColumnMapping, spec: DataSpec,
                 linemap: LineMap, report: DataReport) -> None:
        self.raw, self.mapping, self.spec = raw, mapping, spec
        self.linemap, self.report = linemap, report
        self.label = spec.path_str
        self.has_ticker = "ticker" in mapping.roles
        stem = os.path.basename(self.label).split(".")[0] or "series"
        self.names: list[str] = list(raw.ticker_names) if self.has_ticker else [stem]

    # ------------------------------------------------------------------ helpers
    def issue(self, level: Level, code: str, what: str, hint: str, rows: Sequence[int] | np.ndarray = (),
              codes: np.ndarray | None = None, role: str | tuple[str, ...] | None = None, *,
              source: np.ndarray | None = None, count: int | None = None,
              tickers: Sequence[str] | None = None) -> None:
        """Add an issue about some rows.

        ``rows`` index ``codes`` and ``source``; ``source`` maps them to the
        reader's row order (None while rows are still in file order).
        """
        rows = np.asarray(rows, dtype=np.int64)
        lines: list[int] = []
        if len(rows):
            ids = rows if source is None else source[rows]   # None: rows are still in file order
            if len(ids) > 5:
                ids = np.partition(ids, 4)[:5]
            lines = self.linemap.lines(np.sort(ids))
        if tickers is None:
            tickers = self._tickers_of(codes[rows]) if (codes is not None and len(rows) and self.has_ticker) else []
        roles = (role,) if isinstance(role, str) else tuple(role or ())
        column = ", ".join(self.mapping.roles[r] for r in roles if r in self.mapping.roles) or None
        self.report.add(make_issue(level, code, what, hint, file=self.label, column=column, tickers=tickers,
                                   lines=lines, count=len(rows) if count is None else count,
                                   line_word=self.linemap.word))

    def _tickers_of(self, codes: np.ndarray) -> list[str]:
        valid = codes[codes >= 0]
        if len(valid) == 0:
            return []
        first = np.unique(valid[:100_000])
        return [self.names[c] for c in first[:20]]

    # ------------------------------------------------------------------ the pipeline
    def run(self) -> SeriesTable | None:
        raw = self.raw
        self.report.n_rows = raw.n_rows
        self.check_invalid_rows()
        if raw.n_rows == 0:
            self.issue("error", "no_rows", "has a header but no data rows",
                       "add rows below the header line", count=0)
            return None
        codes = self.ticker_codes()
        ns, bad_time = self.parse_times(codes)
        values = self.assemble_values(codes)
        keep = ~bad_time
        keep &= self.check_non_numeric(codes)
        keep &= self.check_values(values, codes, keep)
        keep &= self.check_missing_ticker(codes)
        rows = self.select(codes, ns, values, keep)
        del codes, ns, values, keep
        rows = self.sort_rows(rows)
        rows = self.handle_duplicates(rows)
        self.report.n_rows_used = len(rows)
        if not self.report.ok:
            return None
        return self.to_table(rows)

    def check_invalid_rows(self) -> None:
        raw = self.raw
        if not raw.n_invalid_rows:
            return
        numbers = [n for n, _ in raw.invalid_rows if n is not None]
        lines = self.linemap.physical(numbers) if numbers else []
        example = raw.invalid_rows[0][1][:80] if raw.invalid_rows else ""
        what = f"has rows with a wrong number of fields (expected {len(self.linemap.fmt.header)}), e.g. '{example}'"
        last_logical_row = raw.n_rows + raw.n_invalid_rows + 1   # the header is logical row 1
        if raw.n_invalid_rows == 1 and numbers == [last_logical_row]:
            self.report.add(make_issue("warning", "truncated_last_line", "last line is incomplete and was dropped: "
                                       f"'{example}'", "re-download the file if more rows were expected",
                                       file=self.label, lines=lines, count=1))
            return
        self.report.add(make_issue("error", "bad_row", what,
                                   "fix these lines: a quote or a delimiter inside a value is the usual cause",
                                   file=self.label, lines=lines, count=raw.n_invalid_rows))

    def ticker_codes(self) -> np.ndarray:
        if self.has_ticker and self.raw.ticker_codes is not None:
            return self.raw.ticker_codes
        return np.zeros(self.raw.n_rows, np.int32)

    def parse_times(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int64 ns per row, and the rows whose time is missing or unreadable (errors)."""
        raw = self.raw
        parsed = parse_time_uniques(raw.time_uniques)
        lookup = np.append(parsed.ns, NAT)          # code -1 (empty cell) -> NAT
        ns = lookup[raw.time_codes]
        bad = ns == NAT
        if bad.any():
            empty = np.flatnonzero(raw.time_codes == -1)
            unreadable = np.flatnonzero(bad & (raw.time_codes != -1))
            if len(empty):
                self.issue("error", "missing_timestamp", "has empty timestamps",
                           "fill in the time of these rows or delete them", empty, codes, "timestamp")
            if len(unreadable):
                texts = raw.time_uniques.take(raw.time_codes[unreadable[:MAX_TEXT_EXAMPLES]]).to_pylist()
                examples = ", ".join(repr(str(t)) for t in dict.fromkeys(texts))
                self.issue("error", "bad_timestamp", f"has timestamps that cannot be parsed, e.g. {examples}",
                           "use ISO dates like 2024-01-31 or 2024-01-31 09:30:00", unreadable, codes,
                           "timestamp")
        if parsed.dropped_offset:
            self.issue("info", "timezone_offset_dropped",
                       "timestamps carry UTC offsets; the local wall-clock time was kept (offset dropped)",
                       "nothing to do: time features use the local time of each bar", role="timestamp", count=0)
        if parsed.converted_timezone:
            self.issue("info", "timezone_converted",
                       f"timestamps are in time zone {parsed.converted_timezone}; local wall-clock time kept",
                       "nothing to do", role="timestamp", count=0)
        return ns, bad

    def assemble_values(self, codes: np.ndarray) -> np.ndarray:
        """[n, 6] float32 in Kronos's column order; volume and amount made up when absent."""
        raw, n = self.raw, self.raw.n_rows
        values = raw.values
        if "volume" not in raw.present:
            values[:, 4] = 0.0
            values[:, 5] = 0.0
            self.issue("warning", "no_volume_column", "has no volume column; volume and amount set to 0",
                       "add a 'volume' column if you have one: Kronos uses it", count=n)
        elif "amount" not in raw.present:
            values[:, 5] = derived_amount(values)
            self.issue("info", "amount_derived", "has no amount column; amount = volume x mean(open, high, low, "
                       "close), the official Kronos rule (forecasting fills it the same way)",
                       "add an 'amount' (turnover) column if you have the real one", count=n)
        return values

    def check_non_numeric(self, codes: np.ndarray) -> np.ndarray:
        keep = np.ones(self.raw.n_rows, bool)
        for role, rows in self.raw.decimal_comma.items():
            self.issue("warning", "decimal_comma", "has numbers with a decimal comma ('1,5'); read as '1.5'",
                       "nothing to do", rows, codes, role)
        for role, rows in self.raw.non_numeric.items():
            examples = ", ".join(repr(t) for t in self.raw.non_numeric_examples.get(role, []))
            hint = "fix or delete these values (numbers use '.' as the decimal point, no thousands separator)"
            self.issue("error", "non_numeric", f"has values that are not numbers, e.g. {examples}", hint,
                       rows, codes, role)
            keep[rows] = False
        return keep

    def check_values(self, values: np.ndarray, codes: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """NaN, inf, non-positive prices, negative volume, high/low consistency."""
        n = len(values)
        keep = np.ones(n, bool)
        finite = np.isfinite(values)
        if not finite.all():
            self._check_nan_inf(values, finite, codes, keep, alive)
        with np.errstate(invalid="ignore"):
            self._check_signs(values, codes, keep, alive)
            self._check_high_low(values, codes, keep, alive)
        return keep

    def _check_nan_inf(self, values: np.ndarray, finite: np.ndarray, codes: np.ndarray, keep: np.ndarray,
                       alive: np.ndarray) -> None:
        bad_cols = np.flatnonzero(~finite.all(axis=0))
        for k in bad_cols:
            role = list(ROLE_INDEX)[k]
            column = values[:, k]
            inf_rows = np.flatnonzero(np.isinf(column))
            nan_rows = np.flatnonzero(np.isnan(column) & alive)
            if len(inf_rows) and role in self.mapping.roles:
                self.issue("error", "infinite_value", "has infinite values",
                           "replace them with real numbers or delete the rows", inf_rows, codes, role)
            elif len(overflow := inf_rows[np.isfinite(values[inf_rows, 3]) & np.isfinite(values[inf_rows, 4])]):
                # a derived amount overflowed float32: volume x price too large
                inf_rows = overflow
                self.issue("error", "infinite_value", "volume x price overflows (amount would be infinite)",
                           "check the volume and close values of these rows", inf_rows, codes, "volume")
            keep[inf_rows] = False
            if not len(nan_rows):
                continue
            if role in PRICE_ROLES:
                self.issue("warning", "missing_price", "has empty prices; those rows were dropped",
                           "fill them in if the bars are real", nan_rows, codes, role)
                keep[nan_rows] = False
            elif role == "volume":
                self.issue("warning", "missing_volume", "has empty volumes; set to 0", "fill them in if known",
                           nan_rows, codes, role)
                column[nan_rows] = 0.0
            else:
                if "amount" in self.raw.present:   # derived amounts follow their volume silently
                    self.issue("warning", "missing_amount", "has empty amounts; set to volume x mean(open, high, "
                               "low, close)", "fill them in if known", nan_rows, codes, role)
                column[nan_rows] = derived_amount(values[nan_rows])

    def _check_signs(self, values: np.ndarray, codes: np.ndarray, keep: np.ndarray, alive: np.ndarray) -> None:
        for role in PRICE_ROLES:
            rows = np.flatnonzero((values[:, ROLE_INDEX[role]] <= 0) & alive)
            if len(rows):
                self.issue("warning", "non_positive_price", "has prices <= 0; those rows were dropped",
                           "check the source: prices must be positive (adjusted prices of old bars can underflow)",
                           rows, codes, role)
                keep[rows] = False
        for role in ("volume", "amount"):
            if role not in self.mapping.roles:
                continue
            rows = np.flatnonzero((values[:, ROLE_INDEX[role]] < 0) & alive)
            if len(rows):
                self.issue("warning", "negative_volume", f"has negative {role}s; those rows were dropped",
                           "check the source: volume and amount must be >= 0", rows, codes, role)
                keep[rows] = False

    def _check_high_low(self, values: np.ndarray, codes: np.ndarray, keep: np.ndarray, alive: np.ndarray) -> None:
        o, h, low, c = (values[:, i] for i in range(4))
        inverted = np.flatnonzero((h < low) & alive & keep)
        if len(inverted):
            self.issue("warning", "high_below_low", "has bars whose high is below their low; those rows were dropped",
                       "check the column mapping (high/low swapped?) and the source", inverted, codes,
                       ("high", "low"))
            keep[inverted] = False
        body_hi = np.maximum(o, c)
        body_lo = np.minimum(o, c)
        outside = np.flatnonzero(((h < body_hi) | (low > body_lo)) & alive & keep)
        if len(outside):
            self.issue("warning", "ohlc_inconsistent",
                       "has bars whose open or close lies outside [low, high]; high/low were widened to cover them",
                       "usually rounding in adjusted prices; nothing to do if the counts are small",
                       outside, codes, ("high", "low"))
            values[outside, 1] = np.maximum(h[outside], body_hi[outside])
            values[outside, 2] = np.minimum(low[outside], body_lo[outside])

    def check_missing_ticker(self, codes: np.ndarray) -> np.ndarray:
        keep = np.ones(len(codes), bool)
        if not self.has_ticker:
            return keep
        rows = np.flatnonzero(codes < 0)
        if len(rows):
            self.issue("warning", "missing_ticker", "has rows without a ticker; those rows were dropped",
                       "fill in the ticker of these rows", rows, codes,
                       "ticker", tickers=[])
            keep[rows] = False
        return keep

    def select(self, codes: np.ndarray, ns: np.ndarray, values: np.ndarray, keep: np.ndarray) -> Rows:
        if keep.all():
            return Rows(codes, ns, values, None)
        index = np.flatnonzero(keep)
        return Rows(codes[index], ns[index], values[index], index)

    # ------------------------------------------------------------------ ordering
    def sort_rows(self, rows: Rows) -> Rows:
        if len(rows) < 2:
            return rows
        d_code = np.diff(rows.codes)
        d_time = np.diff(rows.ns)
        in_order = (d_code > 0) | ((d_code == 0) & (d_time >= 0))
        if in_order.all():
            return rows
        order = sort_order(rows.codes, rows.ns)
        rows = rows.take(order)
        # Codes are numbered in first-seen order: tickers in contiguous blocks never step down.
        self._report_disorder(rows, blocks_contiguous=bool((d_code >= 0).all()))
        return rows

    def _report_disorder(self, rows: Rows, blocks_contiguous: bool) -> None:
        same = np.diff(rows.codes) == 0
        if rows.source is not None and (same & (np.diff(rows.source) < 0)).any():
            # Some ticker was not in time order in the file. Name the rows that step
            # back in time relative to the previous row of their ticker, in file order.
            file_order = np.lexsort((rows.source, rows.codes))
            codes, ns = rows.codes[file_order], rows.ns[file_order]
            back = file_order[np.flatnonzero((np.diff(codes) == 0) & (np.diff(ns) < 0)) + 1]
            self.issue("warning", "unsorted", "has rows out of time order within a ticker; rows were sorted by time",
                       "nothing to do; sort the file by ticker and time to skip this step", back, rows.codes,
                       "timestamp", source=rows.source)
        if self.has_ticker and not blocks_contiguous:
            self.issue("info", "grouped_by_ticker", "rows of different tickers are interleaved (e.g. sorted by date); "
                       "they were grouped by ticker", "nothing to do", count=0)

    def handle_duplicates(self, rows: Rows) -> Rows:
        if len(rows) < 2:
            return rows
        same_key = (np.diff(rows.codes) == 0) & (np.diff(rows.ns) == 0)
        if not same_key.any():
            return rows
        if not self.has_ticker and self.spec.single_series:
            self.issue("warning", "repeated_timestamps_kept",
                       "timestamps repeat; the file was declared one series (single_series), rows kept in time order",
                       "only right for a file that really is one series; else name the ticker column",
                       np.flatnonzero(same_key) + 1, rows.codes, "timestamp", source=rows.source)
            return rows
        later = np.flatnonzero(same_key) + 1
        identical = (rows.values[later] == rows.values[later - 1]).all(axis=1)
        drop = np.zeros(len(rows), bool)
        if identical.any():
            dup = later[identical]
            self.issue("warning", "duplicate_rows", "has identical duplicate rows (same ticker, time and values); "
                       "later copies dropped", "nothing to do", dup, rows.codes, "timestamp", source=rows.source)
            drop[dup] = True
        conflicting = later[~identical]
        if len(conflicting):
            self._conflicts(rows, conflicting, drop)
        return rows.take(np.flatnonzero(~drop)) if drop.any() else rows

    def _conflicts(self, rows: Rows, conflicting: np.ndarray, drop: np.ndarray) -> None:
        # The first clashing pair as the example: 'lines 2 and 42 share 2000-01-03'.
        both = np.array([conflicting[0] - 1, conflicting[0]])
        if not self.has_ticker:
            self.issue("error", "several_series",
                       "has no ticker column but its timestamps repeat with different values "
                       f"(e.g. {format_ns(int(rows.ns[both[0]]))}): it looks like several series in one file",
                       "name the ticker column (ticker_column=...), or declare one series with single_series=True",
                       both, rows.codes, "timestamp", source=rows.source, count=len(conflicting))
            return
        policy = self.spec.duplicates
        if policy == "error":
            self.issue("error", "conflicting_duplicates",
                       f"has rows with the same ticker and time but different values (e.g. "
                       f"{format_ns(int(rows.ns[both[0]]))})",
                       "delete the wrong rows, or set duplicates: keep_first / keep_last",
                       both, rows.codes, "timestamp", source=rows.source, count=len(conflicting))
            return
        # keep_first drops every later row of a run; keep_last every earlier one.
        victims = conflicting if policy == "keep_first" else conflicting - 1
        self.issue("warning", "conflicting_duplicates", f"has rows with the same ticker and time but different "
                   f"values; {policy.replace('_', ' ')} kept", "check the source", both, rows.codes, "timestamp",
                   source=rows.source, count=len(conflicting))
        drop[victims] = True

    # ------------------------------------------------------------------ result
    def to_table(self, rows: Rows) -> SeriesTable:
        present = np.flatnonzero(np.bincount(rows.codes, minlength=len(self.names)))
        counts = np.bincount(rows.codes, minlength=len(self.names))[present]
        offsets = np.zeros(len(present) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        table = SeriesTable([self.names[c] for c in present], offsets, np.ascontiguousarray(rows.values),
                            np.ascontiguousarray(rows.ns), time_features_u8(rows.ns))
        if len(rows):
            self.report.first_timestamp = format_ns(int(rows.ns.min()))
            self.report.last_timestamp = format_ns(int(rows.ns.max()))
        self.report.n_tickers_total = len(table)
        return table


def sort_order(codes: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """Stable order by (ticker code, time).

    A file sorted by time (tickers interleaved, like train_combined.csv) only
    needs a stable sort by ticker, which numpy does as a radix sort for 16-bit
    keys. Otherwise one int64 key when it fits, else lexsort.
    """
    n_codes = int(codes.max()) + 1
    if n_codes <= np.iinfo(np.uint16).max and bool((np.diff(ns) >= 0).all()):
        return np.argsort(codes.astype(np.uint16), kind="stable")
    rel = ns - ns.min()
    unit = 1
    for candidate in (NS_PER_DAY, 60_000_000_000, 1_000_000_000, 1_000_000, 1_000):
        if not np.any(rel % candidate):
            unit = candidate
            break
    span = int(rel.max() // unit) + 1
    if n_codes * span < (1 << 62):
        key = codes.astype(np.int64) * span + rel // unit
        return np.argsort(key, kind="stable")
    return np.lexsort((ns, codes))
