"""Arrow -> numpy without pandas.

pyarrow's ``to_numpy``/``fill_null``/``pa.array`` import pandas lazily (0.3 s
and a slower path); reading the value buffers directly is both lighter and
faster for the fixed-width types used here.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _chunks(array: Any) -> list[Any]:
    import pyarrow as pa
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def chunk_view(chunk: Any, dtype: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(values view, null mask or None) of a fixed-width arrow Array."""
    buffers = chunk.buffers()
    n, offset = len(chunk), chunk.offset
    if n == 0 or buffers[1] is None:
        return np.zeros(n, dtype), (np.ones(n, bool) if n else None)
    data = np.frombuffer(buffers[1], dtype=dtype, count=offset + n)[offset:]
    if chunk.null_count == 0:
        return data, None
    bits = np.unpackbits(np.frombuffer(buffers[0], np.uint8), bitorder="little")[offset:offset + n]
    return data, bits == 0


def fill_numpy(array: Any, out: np.ndarray, dtype: Any, null_value: Any) -> None:
    """Copy a (chunked) fixed-width arrow array into ``out`` (any strided view), nulls -> null_value."""
    pos = 0
    for chunk in _chunks(array):
        n = len(chunk)
        data, nulls = chunk_view(chunk, dtype)
        target = out[pos:pos + n]
        target[...] = data
        if nulls is not None:
            target[nulls] = null_value
        pos += n


def to_numpy(array: Any, dtype: Any, null_value: Any) -> np.ndarray:
    out = np.empty(len(array), dtype)
    fill_numpy(array, out, dtype, null_value)
    return out
