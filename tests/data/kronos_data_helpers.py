"""Helpers for the data-pipeline tests: small files and report assertions."""
from __future__ import annotations

import os
from pathlib import Path

from kronos_train.data import DataReport, DataSpec, Issue, prepare_data

SMALL = dict(lookback_window=8, predict_window=2, train_ratio=0.7, val_ratio=0.3)


def spec_for(path: str | os.PathLike[str], **overrides) -> DataSpec:
    return DataSpec(path, **{**SMALL, **overrides})


def prepare(path: str | os.PathLike[str], **overrides):
    return prepare_data(spec_for(path, **overrides), cache_dir=None)


def issue_with(report: DataReport, code: str) -> Issue:
    found = [i for i in report.issues if i.code == code]
    assert found, f"no issue {code!r}; got:\n{report.summary()}"
    return found[0]


def assert_names(issue: Issue, path: str | os.PathLike[str], column: str | None = None,
                 ticker: str | None = None, lines: list[int] | None = None, count: int | None = None) -> None:
    """The message names the file, and where given, column, ticker, lines and count."""
    assert str(path) in issue.message and issue.file == str(path)
    if column is not None:
        assert issue.column is not None and column.lower() in issue.column.lower(), issue
        assert column.lower() in issue.message.lower(), issue.message
    if ticker is not None:
        assert issue.ticker is not None and ticker in issue.ticker, issue
        assert ticker in issue.message, issue.message
    if lines is not None:
        assert issue.lines[: len(lines)] == lines, issue
        for line in lines:
            assert str(line) in issue.message, issue.message
    if count is not None:
        assert issue.count == count, issue
        assert str(count) in issue.message, issue.message
    assert issue.hint, "every issue tells what to do"


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path
