"""Column roles, their aliases, and the layout a header describes."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# Aliases in order of preference: when a file has two columns for one role
# (e.g. "Date" and "Datetime"), the earlier alias wins and the other is ignored.
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamps", "timestamp", "datetime", "date", "time", "ts", "dt",
                  "tradedate", "tradingdate", "tradetime", "tradingday", "day", "bartime"),
    "ticker": ("ticker", "symbol", "code", "instrument", "stock", "tickersymbol", "stockcode",
               "tscode", "secid", "seccode", "asset", "sym", "tic", "ric"),
    "open": ("open", "openprice", "o", "opening"),
    "high": ("high", "highprice", "h", "max", "highest"),
    "low": ("low", "lowprice", "l", "min", "lowest"),
    "close": ("close", "closeprice", "c", "last", "price", "closing"),
    "volume": ("volume", "vol", "v", "qty", "quantity", "shares", "basevolume"),
    "amount": ("amount", "amt", "turnover", "value", "money", "notional", "dollarvolume",
               "quotevolume", "tradevalue"),
}
REQUIRED_ROLES = ("timestamp", "open", "high", "low", "close")
PRICE_ROLES = ("open", "high", "low", "close")
VALUE_ROLES = ("open", "high", "low", "close", "volume", "amount")

KAGGLE_COLUMNS = ("date", "open", "high", "low", "close", "volume", "dividends", "stocksplits", "ticker")
KRONOS_COLUMNS = ("timestamps", "open", "high", "low", "close", "volume", "amount")


def normalize_name(name: str) -> str:
    """'Stock Splits' -> 'stocksplits', ' Close_Price ' -> 'closeprice'."""
    return re.sub(r"[^0-9a-z]", "", str(name).strip().lower())


@dataclass
class ColumnMapping:
    """Which file column plays which role; what was left unused."""

    roles: dict[str, str] = field(default_factory=dict)       # role -> column name in the file
    ignored: list[str] = field(default_factory=list)          # columns that play no role
    shadowed: dict[str, list[str]] = field(default_factory=dict)  # role -> other candidates not used
    time_column: str | None = None     # a separate time-of-day column joined to a date column
    layout: str = "unknown"

    @property
    def missing(self) -> list[str]:
        return [r for r in REQUIRED_ROLES if r not in self.roles]

    def file_columns(self) -> list[str]:
        names = list(self.roles.values())
        if self.time_column:
            names.append(self.time_column)
        return names


def _candidates(columns: list[str], role: str) -> list[str]:
    """File columns matching a role's aliases, best alias first."""
    by_norm: dict[str, list[str]] = {}
    for col in columns:
        by_norm.setdefault(normalize_name(col), []).append(col)
    found: list[str] = []
    for alias in ROLE_ALIASES[role]:
        found.extend(by_norm.get(alias, []))
    return found


def map_columns(columns: list[str], ticker_column: str | None = None,
                single_series: bool = False) -> ColumnMapping:
    """Match a header to roles, case-insensitively and through aliases."""
    mapping = ColumnMapping()
    taken: set[str] = set()
    for role in ROLE_ALIASES:
        if role == "ticker" and ticker_column:
            continue
        found = [c for c in _candidates(columns, role) if c not in taken]
        if found:
            mapping.roles[role] = found[0]
            taken.add(found[0])
            if len(found) > 1:
                mapping.shadowed[role] = found[1:]
    if ticker_column:
        exact = [c for c in columns if c == ticker_column] or \
                [c for c in columns if normalize_name(c) == normalize_name(ticker_column)]
        if exact:
            mapping.roles["ticker"] = exact[0]
            taken.add(exact[0])
    _join_separate_time_column(mapping, columns)
    if single_series:
        mapping.roles.pop("ticker", None)
    taken = set(mapping.file_columns())
    mapping.ignored = [c for c in columns if c not in taken]
    mapping.layout = detect_layout(columns, mapping)
    return mapping


def _join_separate_time_column(mapping: ColumnMapping, columns: list[str]) -> None:
    """A 'date' column plus a 'time' column: the timestamp is both joined."""
    ts = mapping.roles.get("timestamp")
    if ts is None or normalize_name(ts) not in ("date", "tradedate", "tradingdate", "tradingday", "day"):
        return
    for col in mapping.shadowed.get("timestamp", []):
        if normalize_name(col) in ("time", "tradetime", "bartime"):
            mapping.time_column = col
            mapping.shadowed["timestamp"].remove(col)
            if not mapping.shadowed["timestamp"]:
                del mapping.shadowed["timestamp"]
            return


def detect_layout(columns: list[str], mapping: ColumnMapping) -> str:
    norm = tuple(normalize_name(c) for c in columns)
    if set(KAGGLE_COLUMNS) <= set(norm):
        return "kaggle"
    if norm == KRONOS_COLUMNS or (set(norm) == set(KRONOS_COLUMNS)):
        return "kronos"
    if "ticker" in mapping.roles:
        return "long"
    return "single"
