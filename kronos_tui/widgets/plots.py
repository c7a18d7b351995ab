"""Loss and learning-rate plots drawn with plotext from a follower snapshot.

The snapshot is already downsampled to the plot's width, filtered for what
plotext cannot draw (non-finite values; values <= 0 on a log axis), so a
redraw costs a few milliseconds whatever the length of the run.  Series differ
by marker as well as colour (raw dots, smoothed braille line, overlay run ``+``, val ``o``, best
``*``, resume ``|``) so the plot reads on a monochrome terminal.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from textual_plotext import PlotextPlot


def steps_per_epoch(snap: Any) -> float | None:
    """The shown stage's optimizer steps per epoch, from its stage_start record."""
    stage = next((s for s in snap.stages if s.name == snap.stage), None)
    if stage is None or not stage.total_steps or not stage.epochs:
        return None
    return stage.total_steps / stage.epochs


def x_axis(snap: Any) -> tuple[Callable[[Sequence[float]], list[float]], str]:
    """Steps to the asked x axis, and its name: epochs (from the stage's steps per
    epoch) or wall time (minutes since the stage's first point); steps otherwise."""
    axis = snap.view.x_axis
    if axis == "time" and snap.step_minutes:
        import numpy as np

        xs, minutes = snap.step_minutes.x, snap.step_minutes.y
        return (lambda steps: np.interp(steps, xs, minutes).tolist()), "minutes"
    per_epoch = steps_per_epoch(snap) if axis == "epochs" else None
    if per_epoch:
        return (lambda steps: [x / per_epoch for x in steps]), "epochs"
    return list, "steps"


def axis_note(axis: str) -> str:
    return "" if axis == "steps" else f" · x: {axis}"


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
        to_x, axis = x_axis(snap)
        p.plot(to_x(snap.raw.x), snap.raw.y, marker="dot", color="gray", label="loss")
        if snap.smooth and view.smoothing > 0:
            p.plot(to_x(snap.smooth.x), snap.smooth.y, marker="braille", color="cyan",
                   label=f"ema {view.smoothing:g}")
        if snap.overlay:
            p.plot(to_x(snap.overlay.x), snap.overlay.y, marker="+", color="magenta",
                   label=snap.overlay_label[-12:] or "other")
        if snap.val:
            p.scatter(to_x(snap.val.x), snap.val.y, marker="o", color="yellow", label="val")
        if snap.best is not None:
            best_val, best_step, _ = snap.best
            if best_step is not None and (not view.log_y or best_val > 0) and best_step >= (snap.raw.x[0] if snap.raw.x else 0):
                p.scatter(to_x([best_step]), [best_val], marker="*", color="green", label="best")
        for mark in to_x(snap.resume_marks):
            p.vline(mark, "red")
        if view.log_y:
            p.yscale("log")
        zoom = f"last {view.zoom_last} steps" if view.zoom_last else "all steps"
        p.title(f"{snap.stage} loss · {zoom}{' · log' if view.log_y else ''}{axis_note(axis)}")
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
            to_x, axis = x_axis(snap)
            p.plot(to_x(snap.lr.x), snap.lr.y, marker="braille", color="cyan", label="lr")
            p.title(f"{snap.stage} learning rate{axis_note(axis)}")
        self.refresh()
