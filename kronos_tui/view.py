"""What the user asked the monitor to show (a tiny module: the app imports it
before the first frame, the follower reads it in its thread)."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SMOOTHING = 0.6
X_AXES = ("steps", "epochs", "time")


@dataclass(frozen=True)
class View:
    """The UI swaps in a new one (an atomic reference assignment); the follower reads it."""
    stage: str | None = None          # None: the stage running now
    zoom_last: int | None = None      # None: every step
    log_y: bool = False
    x_axis: str = "steps"             # "steps" | "epochs" | "time" (minutes since the stage's first point)
    smoothing: float = DEFAULT_SMOOTHING
    width: int = 60                   # plot width in cells: the downsampling target
