"""Loss and learning-rate plots drawn with plotext from a snapshot's :class:`PlotData`.

The data is already downsampled to the plot's width, filtered for what
plotext cannot draw (non-finite values; values <= 0 on a log axis), so a
redraw costs a few milliseconds whatever the length of the run.  Series differ
by marker as well as colour (raw dots, smoothed braille line, overlay run ``+``, val ``o``, best
``*``, resume ``|``) so the plot reads on a monochrome terminal.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from textual_plotext import PlotextPlot

from ..snapshot import PlotData


def x_axis(plot: PlotData) -> tuple[Callable[[Sequence[float]], list[float]], str]:
    """Steps to the asked x axis, and its name: epochs (from the stage's steps per
    epoch) or wall time (minutes since the stage's first point); steps otherwise."""
    axis = plot.view.x_axis
    if axis == "time" and plot.step_minutes:
        import numpy as np

        xs, minutes = plot.step_minutes.x, plot.step_minutes.y
        return (lambda steps: np.interp(steps, xs, minutes).tolist()), "minutes"
    per_epoch = plot.steps_per_epoch if axis == "epochs" else None
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

    def show(self, plot: PlotData) -> None:
        p = self.plt
        p.clear_figure()
        view = plot.view
        self.has_data = bool(plot.raw)
        if not plot.raw:
            p.title(f"{plot.stage or 'run'}: waiting for loss points")
            self.refresh()
            return
        to_x, axis = x_axis(plot)
        p.plot(to_x(plot.raw.x), plot.raw.y, marker="dot", color="gray", label="loss")
        if plot.smooth and view.smoothing > 0:
            p.plot(to_x(plot.smooth.x), plot.smooth.y, marker="braille", color="cyan",
                   label=f"ema {view.smoothing:g}")
        if plot.overlay:
            p.plot(to_x(plot.overlay.x), plot.overlay.y, marker="+", color="magenta",
                   label=plot.overlay_label[-12:] or "other")
        if plot.val:
            p.scatter(to_x(plot.val.x), plot.val.y, marker="o", color="yellow", label="val")
        if plot.best is not None:
            best_val, best_step, _ = plot.best
            if best_step is not None and (not view.log_y or best_val > 0) and best_step >= (plot.raw.x[0] if plot.raw.x else 0):
                p.scatter(to_x([best_step]), [best_val], marker="*", color="green", label="best")
        for mark in to_x(plot.resume_marks):
            p.vline(mark, "red")
        if view.log_y:
            p.yscale("log")
        zoom = f"last {view.zoom_last} steps" if view.zoom_last else "all steps"
        p.title(f"{plot.stage} loss · {zoom}{' · log' if view.log_y else ''}{axis_note(axis)}")
        self.refresh()


class LrPlot(PlotextPlot):
    DEFAULT_CSS = """
    LrPlot { height: 1fr; min-height: 6; }
    """

    def show(self, plot: PlotData) -> None:
        p = self.plt
        p.clear_figure()
        if not plot.lr:
            p.title("learning rate: waiting for points")
        else:
            to_x, axis = x_axis(plot)
            p.plot(to_x(plot.lr.x), plot.lr.y, marker="braille", color="cyan", label="lr")
            p.title(f"{plot.stage} learning rate{axis_note(axis)}")
        self.refresh()
