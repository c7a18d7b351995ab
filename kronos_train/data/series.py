"""SeriesTable: the cleaned rows of every ticker, contiguous and sorted.

Rows of ticker k are ``offsets[k]:offsets[k + 1]``, sorted by time; values are
raw (un-normalised) float32 ``[N, 6]`` in the order open, high, low, close,
volume, amount; ``times`` are int64 nanoseconds (wall-clock); ``stamps`` are
Kronos's five time features as uint8 ``[N, 5]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .spec import FEATURE_NAMES


@dataclass
class SeriesTable:
    tickers: list[str]
    offsets: np.ndarray      # int64 [n_tickers + 1]
    values: np.ndarray       # float32 [N, 6]
    times: np.ndarray        # int64 ns [N]
    stamps: np.ndarray       # uint8 [N, 5]

    # Set when the arrays are memory-mapped from a cache entry: pickling (DataLoader
    # workers started with spawn/forkserver) then sends the folder, not the arrays.
    mapped_from: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_names", None)
        if self.mapped_from:
            for name in ("values", "times", "stamps"):
                state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.mapped_from:
            import os
            for name in ("values", "times", "stamps"):
                setattr(self, name, np.load(os.path.join(self.mapped_from, f"{name}.npy"), mmap_mode="r"))

    @classmethod
    def empty(cls) -> "SeriesTable":
        return cls([], np.zeros(1, np.int64), np.zeros((0, 6), np.float32),
                   np.zeros(0, np.int64), np.zeros((0, 5), np.uint8))

    def __len__(self) -> int:
        return len(self.tickers)

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def index(self, ticker: str) -> int:
        try:
            return self._index_map()[ticker]
        except KeyError:
            raise KeyError(f"unknown ticker {ticker!r}") from None

    def _index_map(self) -> dict[str, int]:
        cached = getattr(self, "_names", None)
        if cached is None:
            cached = {name: i for i, name in enumerate(self.tickers)}
            object.__setattr__(self, "_names", cached)
        return cached

    def rows(self, ticker: str | int) -> slice:
        k = ticker if isinstance(ticker, (int, np.integer)) else self.index(ticker)
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def timestamps(self, ticker: str | int) -> np.ndarray:
        return self.times[self.rows(ticker)].view("datetime64[ns]")

    def arrays(self, ticker: str | int) -> dict[str, np.ndarray]:
        """{'timestamps': datetime64[ns], 'open': float32, ... 'amount': float32} of one ticker."""
        rows = self.rows(ticker)
        out: dict[str, np.ndarray] = {"timestamps": self.times[rows].view("datetime64[ns]")}
        for k, name in enumerate(FEATURE_NAMES):
            out[name] = np.asarray(self.values[rows, k])
        return out

    def frame(self, ticker: str | int) -> Any:
        """A pandas DataFrame (timestamps + six columns), the input KronosPredictor.predict takes."""
        import pandas as pd
        return pd.DataFrame(self.arrays(ticker))

    def __iter__(self) -> Iterator[str]:
        return iter(self.tickers)

    def ticker_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Index of the ticker owning each row."""
        return np.searchsorted(self.offsets, rows, side="right") - 1
