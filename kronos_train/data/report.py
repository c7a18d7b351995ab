"""Structured validation results: :class:`Issue` and :class:`DataReport`.

Every problem found in a data file becomes an :class:`Issue` instead of an
exception, so the checklist, the CLI and the trainer can show all of them at
once. ``error`` stops the run (nothing is launched); ``warning`` means an
automatic, documented fix was applied (rows dropped, values filled, rows
sorted) and counted; ``info`` tells what was detected or derived.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal, Sequence

Level = Literal["error", "warning", "info"]

MAX_EXAMPLE_LINES = 5
MAX_LISTED_TICKERS = 10


@dataclass
class Issue:
    level: Level
    code: str
    message: str
    hint: str = ""
    file: str = ""
    column: str | None = None
    ticker: str | None = None
    lines: list[int] = field(default_factory=list)
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        text = f"[{self.level}] {self.code}: {self.message}"
        return f"{text} -> {self.hint}" if self.hint else text


def describe_tickers(tickers: Sequence[str], limit: int = MAX_LISTED_TICKERS) -> str:
    """'A, B, C (+12 more)': a readable, bounded list of ticker names."""
    shown = ", ".join(str(t) for t in tickers[:limit])
    extra = len(tickers) - limit
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def make_issue(
    level: Level,
    code: str,
    what: str,
    hint: str,
    *,
    file: str,
    column: str | None = None,
    tickers: Sequence[str] = (),
    lines: Iterable[int] = (),
    count: int = 0,
    line_word: str = "line",
    count_noun: str = "row",
) -> Issue:
    """Build an Issue whose message names file, column, ticker(s), lines and count.

    The message is uniform on purpose: a user scanning a long report finds the
    same facts in the same order in every entry.
    """
    example_lines = sorted(int(n) for n in lines)[:MAX_EXAMPLE_LINES]
    parts = [f"{file}:"]
    if column:
        parts.append(f"column '{column}':")
    parts.append(what)
    details = []
    if count:
        details.append(f"{count} {count_noun}{'s' if count != 1 else ''}")
    if tickers:
        label = "ticker" if len(tickers) == 1 else "tickers"
        details.append(f"{label} {describe_tickers(list(tickers))}")
    if example_lines:
        more = " ..." if count > len(example_lines) else ""
        details.append(f"{line_word}s {', '.join(map(str, example_lines))}{more}")
    message = " ".join(parts)
    if details:
        message += " (" + "; ".join(details) + ")"
    ticker_field = None
    if tickers:
        ticker_field = str(tickers[0]) if len(tickers) == 1 else describe_tickers(list(tickers), 5)
    return Issue(level, code, message, hint, file, column, ticker_field, example_lines, int(count))


@dataclass
class DataReport:
    """What :func:`inspect_data` / :func:`prepare_data` found in a data file."""

    path: str
    issues: list[Issue] = field(default_factory=list)
    n_rows: int = 0                # data rows read from the file
    n_rows_used: int = 0           # rows kept after the automatic fixes
    n_tickers: int = 0             # series with at least one training window
    n_tickers_total: int = 0       # series found in the file
    n_train_windows: int = 0
    n_val_windows: int = 0
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    layout: str = "unknown"        # kaggle | kronos | long | single
    columns: dict[str, str] = field(default_factory=dict)   # role -> column in the file
    file_format: dict[str, Any] = field(default_factory=dict)  # kind, compression, encoding, delimiter
    window: dict[str, Any] = field(default_factory=dict)    # lookback, predict, length, ratios
    cache: str = ""                # "hit", "miss", "disabled"
    seconds: float = 0.0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def infos(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "info"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def find(self, code: str) -> Issue | None:
        return next((i for i in self.issues if i.code == code), None)

    def add(self, issue: Issue) -> None:
        self.issues.append(issue)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["n_errors"] = len(self.errors)
        data["n_warnings"] = len(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataReport":
        fields_ = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields_["issues"] = [Issue(**i) for i in data.get("issues", [])]
        return cls(**fields_)

    def summary(self) -> str:
        """A few human lines for a terminal or a log."""
        head = (f"{self.path}: {self.layout} layout, {self.n_rows_used}/{self.n_rows} rows used, "
                f"{self.n_tickers}/{self.n_tickers_total} tickers, "
                f"{self.n_train_windows} train / {self.n_val_windows} val windows")
        if self.first_timestamp:
            head += f", {self.first_timestamp} .. {self.last_timestamp}"
        lines = [head]
        lines += [str(i) for i in self.issues]
        return "\n".join(lines)
