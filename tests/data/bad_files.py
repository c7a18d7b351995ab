"""Deliberately broken candlestick files, each with what the validator must say about it.

Test helper (moved from kronos_train/data/synthetic.py: only the tests use it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from kronos_train.data.synthetic import KAGGLE_HEADER, generate

BAD_KINDS = (
    "missing_column", "bad_timestamp", "missing_timestamp", "non_numeric", "nan_price", "inf", "duplicate_identical",
    "duplicate_conflict", "unsorted", "non_positive", "negative_volume", "high_low", "ohlc_outside",
    "short_ticker", "several_series", "empty", "header_only", "ragged", "truncated_last_line", "missing_ticker",
)


@dataclass
class BadFile:
    """A broken file and what a validator should say about it."""

    path: str
    kind: str
    code: str
    level: str
    lines: list[int] = field(default_factory=list)   # 1-based, header = line 1
    column: str | None = None
    ticker: str | None = None
    count: int = 0


def _good_rows(n_tickers: int, n_rows: int, seed: int) -> list[list[str]]:
    data = generate(n_tickers, n_rows, seed)
    rows = []
    for k, name in enumerate(data.tickers):
        for i in range(int(data.offsets[k]), int(data.offsets[k + 1])):
            o, h, low, c, v, _ = data.ohlcva[i]
            rows.append([str(data.times[i].astype("datetime64[D]")), f"{o:.4f}", f"{h:.4f}", f"{low:.4f}",
                         f"{c:.4f}", str(int(v)), "0.0", "0.0", name])
    return rows


def write_bad_file(path: str | os.PathLike[str], kind: str, n_tickers: int = 3, n_rows: int = 40,
                   seed: int = 0) -> BadFile:
    """A small Kaggle-layout CSV broken in one way; returns what should be reported."""
    if kind not in BAD_KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(BAD_KINDS)}")
    path = os.fspath(path)
    header = list(KAGGLE_HEADER)
    rows = _good_rows(n_tickers, n_rows, seed)
    t1 = rows[0][8]
    col = {name: i for i, name in enumerate(header)}
    bad = BadFile(path, kind, kind, "warning", ticker=t1)

    def line(i: int) -> int:
        return i + 2

    if kind == "missing_column":
        header.pop(col["Close"])
        rows = [r[:4] + r[5:] for r in rows]
        bad.code, bad.level, bad.column, bad.ticker = "missing_columns", "error", "close", None
    elif kind in ("bad_timestamp", "missing_timestamp"):
        for i in (3, 7):
            rows[i][0] = "31/31/2024" if kind == "bad_timestamp" else ""
        bad.level, bad.lines, bad.column, bad.count = "error", [line(3), line(7)], "Date", 2
    elif kind == "non_numeric":
        for i in (5, 9):
            rows[i][col["Close"]] = "abc"
        bad.level, bad.lines, bad.column, bad.count = "error", [line(5), line(9)], "Close", 2
    elif kind == "nan_price":
        rows[4][col["Open"]] = ""
        rows[6][col["Open"]] = "NaN"
        bad.code, bad.lines, bad.column, bad.count = "missing_price", [line(4), line(6)], "Open", 2
    elif kind == "inf":
        rows[8][col["Volume"]] = "inf"
        bad.code, bad.level, bad.lines, bad.column, bad.count = "infinite_value", "error", [line(8)], "Volume", 1
    elif kind == "duplicate_identical":
        rows.insert(11, list(rows[10]))
        bad.code, bad.lines, bad.column, bad.count = "duplicate_rows", [line(11)], "Date", 1
    elif kind == "duplicate_conflict":
        copy = list(rows[10])
        copy[col["Close"]] = f"{float(copy[col['Close']]) * 1.01:.4f}"
        copy[col["High"]] = f"{max(float(copy[col['High']]), float(copy[col['Close']])):.4f}"
        rows.insert(11, copy)
        bad.code, bad.level, bad.lines, bad.column, bad.count = \
            "conflicting_duplicates", "error", [line(10), line(11)], "Date", 1
    elif kind == "unsorted":
        rows[12], rows[13] = rows[13], rows[12]
        bad.lines, bad.column, bad.count = [line(13)], "Date", 1
    elif kind == "non_positive":
        rows[14][col["Low"]] = "0"
        bad.code, bad.lines, bad.column, bad.count = "non_positive_price", [line(14)], "Low", 1
    elif kind == "negative_volume":
        rows[15][col["Volume"]] = "-5"
        bad.code, bad.lines, bad.column, bad.count = "negative_volume", [line(15)], "Volume", 1
    elif kind == "high_low":
        r = rows[16]
        r[col["High"]], r[col["Low"]] = r[col["Low"]], r[col["High"]]
        bad.code, bad.lines, bad.column, bad.count = "high_below_low", [line(16)], "High", 1
    elif kind == "ohlc_outside":
        r = rows[17]
        r[col["Open"]] = f"{float(r[col['High']]) * 1.002:.4f}"   # opens above its high
        bad.code, bad.lines, bad.column, bad.count = "ohlc_inconsistent", [line(17)], "High", 1
    elif kind == "short_ticker":
        rows.extend([r[:8] + ["ticker_short"] for r in rows[:5]])
        bad.code, bad.ticker, bad.count = "ticker_too_short", "ticker_short", 1
    elif kind == "several_series":
        header = header[:6]
        rows = [r[:6] for r in rows]
        bad.code, bad.level, bad.column, bad.ticker = "several_series", "error", "Date", None
        bad.lines = [line(0), line(n_rows)]   # the first clashing pair
        bad.count = len(rows) - n_rows
    elif kind == "empty":
        open(path, "wb").close()
        return BadFile(path, kind, "empty_file", "error")
    elif kind == "header_only":
        rows = []
        bad.code, bad.level, bad.ticker = "no_rows", "error", None
    elif kind == "ragged":
        rows[18] = rows[18] + ["extra"]
        bad.code, bad.level, bad.lines, bad.count, bad.ticker = "bad_row", "error", [line(18)], 1, None
    elif kind == "truncated_last_line":
        rows[-1] = rows[-1][:4]
        bad.lines, bad.count, bad.ticker = [line(len(rows) - 1)], 1, None
    elif kind == "missing_ticker":
        rows[19][col["Ticker"]] = ""
        bad.lines, bad.column, bad.count, bad.ticker = [line(19)], "Ticker", 1, None
    text = "\n".join(",".join(r) for r in [header] + rows) + "\n"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return bad
