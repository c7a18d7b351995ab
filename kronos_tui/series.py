"""Numeric helpers for the panels: smoothing, downsampling, text sparklines.

Pure functions.  numpy is imported inside the functions that need it, so
importing this module costs nothing before the first frame; the callers run in
the follower's thread, never on the event loop.
"""
from __future__ import annotations

import math
from array import array
from typing import Iterable, Sequence

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-~=*#@"


def ema_debiased(values: Iterable[float], weight: float) -> list[float]:
    """TensorBoard-style EMA with the start-up bias removed (``acc / (1 - w^n)``).

    Non-finite values are skipped (the smoothed value repeats), so one NaN loss
    does not poison the rest of the curve.
    """
    out: list[float] = []
    acc, n, last = 0.0, 0, math.nan
    for x in values:
        if x == x and x not in (math.inf, -math.inf):
            acc = weight * acc + (1.0 - weight) * x
            n += 1
            last = acc / (1.0 - weight ** n) if weight > 0 else x
        out.append(last)
    return out


class EmaState:
    """Incremental form of :func:`ema_debiased`, for appending one point at a time."""

    __slots__ = ("weight", "acc", "n", "last")

    def __init__(self, weight: float):
        self.weight, self.acc, self.n, self.last = weight, 0.0, 0, math.nan

    def push(self, x: float) -> float:
        if x == x and x not in (math.inf, -math.inf):
            w = self.weight
            self.acc = w * self.acc + (1.0 - w) * x
            self.n += 1
            self.last = self.acc / (1.0 - w ** self.n) if w > 0 else x
        return self.last


def as_numpy(values: array | Sequence[float]):
    import numpy as np

    if isinstance(values, array):
        # A copy, not a view: a view would pin the array's buffer and make the
        # next append raise BufferError.
        return np.array(values, dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


def minmax_downsample(x, y, buckets: int):
    """At most ``2 * buckets`` points keeping each bucket's min and max, so
    spikes stay visible (plotting 100k points costs plotext over a second)."""
    import numpy as np

    n = len(x)
    if n <= 2 * buckets or buckets < 1:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1]
    lows = np.fmin.reduceat(y, starts)
    highs = np.fmax.reduceat(y, starts)
    mids = x[np.minimum((starts + edges[1:]) // 2, n - 1)]
    xs = np.repeat(mids, 2)
    ys = np.empty(2 * buckets)
    ys[0::2], ys[1::2] = lows, highs
    return xs, ys


def last_downsample(x, y, buckets: int):
    """At most ``buckets`` points: the last of each bucket (for smoothed lines)."""
    import numpy as np

    n = len(x)
    if n <= buckets or buckets < 1:
        return x, y
    ends = np.linspace(0, n, buckets + 1).astype(np.int64)[1:] - 1
    return x[ends], y[ends]


def plottable(x, y, log_y: bool):
    """Drop what plotext cannot draw: non-finite values, and values <= 0 on a
    log axis (plotext raises on both).  Returns (x, y, hidden_count)."""
    import numpy as np

    keep = np.isfinite(y)
    if log_y:
        keep &= y > 0
    hidden = int(len(y) - int(keep.sum()))
    return x[keep], y[keep], hidden


def sparkline(values: Sequence[float | None], width: int, lo: float | None = None, hi: float | None = None,
              ascii_only: bool = False) -> str:
    """The last ``width`` values as block characters; ``None`` shows as a space.

    Heights carry the meaning, so the line reads the same without colour.
    """
    blocks = SPARK_ASCII if ascii_only else SPARK_BLOCKS
    tail = list(values)[-width:]
    finite = [v for v in tail if v is not None and math.isfinite(v)]
    if not finite:
        return " " * len(tail)
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = hi - lo
    chars = []
    for v in tail:
        if v is None or not math.isfinite(v):
            chars.append(" ")
        elif span <= 0:
            chars.append(blocks[len(blocks) // 2])
        else:
            level = int((min(max(v, lo), hi) - lo) / span * (len(blocks) - 1) + 0.5)
            chars.append(blocks[level])
    return "".join(chars)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"
