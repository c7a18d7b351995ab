"""DataSpec: what to read and which windows to build from it."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

DuplicatePolicy = Literal["error", "keep_first", "keep_last"]
FEATURE_NAMES = ("open", "high", "low", "close", "volume", "amount")
TIME_FEATURE_NAMES = ("minute", "hour", "weekday", "day", "month")


@dataclass(frozen=True)
class DataSpec:
    """Parameters of the data pipeline (the ``data:`` section of a preset).

    ``window_length = lookback_window + predict_window + 1`` as in the official
    datasets. ``ticker_column`` overrides the automatic detection of the column
    that names the series; ``single_series=True`` declares that the whole file is
    one series (the official ``finetune_csv`` reading) even when timestamps repeat.
    ``min_rows`` drops series shorter than this (default: one window).
    ``duplicates`` decides what happens to rows of one series that share a
    timestamp but differ in values: ``error`` (default) stops, ``keep_first`` /
    ``keep_last`` keep one of them with a warning.
    """

    path: str | os.PathLike[str]
    lookback_window: int = 256
    predict_window: int = 1
    train_ratio: float = 0.9
    val_ratio: float = 0.1
    clip: float = 5.0
    ticker_column: str | None = None
    single_series: bool = False
    min_rows: int | None = None
    duplicates: DuplicatePolicy = "error"

    @classmethod
    def from_config(cls, data: Any, **overrides: Any) -> "DataSpec":
        """From a preset's ``data`` section: an object with attributes or a dict.

        ``data_path`` becomes ``path``; an empty ``ticker_column`` means detect it.
        Fields that DataSpec does not know (``max_context``, ``test_ratio``...) are ignored.
        """
        get = data.get if isinstance(data, dict) else (lambda key, default=None: getattr(data, key, default))
        values: dict[str, Any] = {"path": get("data_path", get("path", ""))}
        for name in ("lookback_window", "predict_window", "train_ratio", "val_ratio", "clip", "ticker_column",
                     "single_series", "min_rows", "duplicates"):
            value = get(name, None)
            if value is not None:
                values[name] = value
        values["ticker_column"] = values.get("ticker_column") or None
        values.update(overrides)
        return cls(**values)

    @property
    def window_length(self) -> int:
        return int(self.lookback_window) + int(self.predict_window) + 1

    @property
    def min_series_rows(self) -> int:
        return max(int(self.min_rows or 0), self.window_length)

    @property
    def path_str(self) -> str:
        return os.fspath(self.path)

    def parse_options(self) -> dict[str, Any]:
        """The parameters that change what is read (part of the cache key)."""
        return {
            "ticker_column": self.ticker_column or None,
            "single_series": bool(self.single_series),
            "duplicates": self.duplicates,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.path_str
        return data

    def problems(self) -> list[tuple[str, str]]:
        """(field, what is wrong) for every invalid parameter."""
        out: list[tuple[str, str]] = []
        if int(self.lookback_window) < 1:
            out.append(("lookback_window", f"is {self.lookback_window}; must be at least 1"))
        if int(self.predict_window) < 1:
            out.append(("predict_window", f"is {self.predict_window}; must be at least 1"))
        if not 0 < float(self.train_ratio) <= 1:
            out.append(("train_ratio", f"is {self.train_ratio}; must be in (0, 1]"))
        if not 0 <= float(self.val_ratio) < 1:
            out.append(("val_ratio", f"is {self.val_ratio}; must be in [0, 1)"))
        if float(self.train_ratio) + float(self.val_ratio) > 1 + 1e-9:
            total = float(self.train_ratio) + float(self.val_ratio)
            out.append(("val_ratio", f"train_ratio + val_ratio = {total:g}; must be at most 1"))
        if not float(self.clip) > 0:
            out.append(("clip", f"is {self.clip}; must be positive"))
        if self.min_rows is not None and int(self.min_rows) < 0:
            out.append(("min_rows", f"is {self.min_rows}; must be positive or None"))
        if self.duplicates not in ("error", "keep_first", "keep_last"):
            out.append(("duplicates", f"is {self.duplicates!r}; must be error, keep_first or keep_last"))
        return out
