"""Loss and learning-rate plots drawn with plotext from a follower snapshot.

The snapshot is already downsampled to the plot's width, filtered for what
plotext cannot draw (non-finite values; values <= 0 on a log axis), so a
redraw costs a few milliseconds whatever the length of the run.  Series differ
by marker as well as colour (raw dots, smoothed braille line, val ``o``, best
``*``, resume ``|``) so the plot reads on a monochrome terminal.
"""
from __future__ import annotations

from typing import Any, Sequence

from textual_plotext import PlotextPlot


def steps_per_epoch(snap: Any) -> float | None:
    """The shown stage's optimizer steps per epoch, from its stage_start record."""
    stage = next((s for s in snap.stages if s.name == snap.stage), None)
    if stage is None or not stage.total_steps or not stage.epochs:
        return None
    return stage.total_steps / stage.epochs


def x_axis(snap: Any) -> tuple[float, str]:
    """Scale for step numbers and the axis name: epochs when asked and known."""
    per_epoch = steps_per_epoch(snap) if snap.view.x_epochs else None
    return (1.0 / per_epoch, "epochs") if per_epoch else (1.0, "steps")


def scaled(xs: Sequence[float], scale: float) -> list[float]:
    return [x * scale for x in xs] if scale != 1.0 else list(xs)


class LossPlot(PlotextPlot):
    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 6; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.has_data = False

    def show(self, snap: Any) -> None:
        p = self.plt
        p.clear_figure()
        view = snap.view
        self.has_data = bool(snap.raw)
        if not snap.raw:
            p.title(f"{snap.stage or 'run'}: waiting for loss points")
            self.refresh()
            return
        k, axis = x_axis(snap)
        p.plot(scaled(snap.raw.x, k), snap.raw.y, marker="dot", color="gray", label="loss")
        if snap.smooth and view.smoothing > 0:
            p.plot(scaled(snap.smooth.x, k), snap.smooth.y, marker="braille", color="cyan",
                   label=f"ema {view.smoothing:g}")
        if snap.overlay:
            p.plot(scaled(snap.overlay.x, k), snap.overlay.y, marker="dot", color="magenta",
                   label=snap.overlay_label[-12:] or "other")
        if snap.val:
            p.scatter(scaled(snap.val.x, k), snap.val.y, marker="o", color="yellow", label="val")
        if snap.best is not None:
            best_val, best_step, _ = snap.best
            if best_step is not None and (not view.log_y or best_val > 0) and best_step >= (snap.raw.x[0] if snap.raw.x else 0):
                p.scatter([best_step * k], [best_val], marker="*", color="green", label="best")
        for mark in snap.resume_marks:
            p.vline(mark * k, "red")
        if view.log_y:
            p.yscale("log")
        zoom = f"last {view.zoom_last} steps" if view.zoom_last else "all steps"
        p.title(f"{snap.stage} loss · {zoom}{' · log' if view.log_y else ''}{' · x: epoch' if axis == 'epochs' else ''}")
        self.refresh()


class LrPlot(PlotextPlot):
    DEFAULT_CSS = """
    LrPlot { height: 1fr; min-height: 6; }
    """

    def show(self, snap: Any) -> None:
        p = self.plt
        p.clear_figure()
        if not snap.lr:
            p.title("learning rate: waiting for points")
        else:
            k, axis = x_axis(snap)
            p.plot(scaled(snap.lr.x, k), snap.lr.y, marker="braille", color="cyan", label="lr")
            p.title(f"{snap.stage} learning rate{' · x: epoch' if axis == 'epochs' else ''}")
        self.refresh()
