"""The live monitor of the attached run.

Everything shown comes from the app's follower snapshots (about two a second
at most, only when something changed): stage progress and ETA from the events'
own clock, the loss plot (raw, debiased EMA, val points, best marked, resume
lines, an optional overlay run), the learning rate, per-GPU panels, the tail of
stdout/stderr.  Early stop / Stop / Abort write requests into the run folder;
Abort asks first.  Keys change the view; the follower redraws at once.
"""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, ContentSwitcher, Log, Static

from kronos_train.control.runfolder import state_word

from ..snapshot import LogLines, Snapshot
from ..view import X_AXES
from ..widgets.panels import GpuPanel, RunFacts, StageProgress
from ..widgets.plots import LossPlot, LrPlot
from .base import KronosScreen
from .dialogs import ConfirmDialog, PickDialog

ZOOMS = (None, 5000, 1000, 200)
SMOOTHINGS = (0.6, 0.9, 0.99, 0.0)
VIEWS = ("loss-view", "lr-view", "gpu-view")
CONTROL_ACTIONS = ("early_stop", "stop", "abort")
LOG_KEEP = 200
LOG_TITLE = "log: stdout, E = stderr · f larger/smaller"
LOG_BEHIND = "new lines ↓ (end: follow)"


def controllable(snap: Snapshot | None, action: str) -> bool:
    """Stop and abort reach a running supervisor through its folder, and a queued
    SLURM job through scancel; an early stop needs a stage that is training."""
    if snap is None:
        return False
    return snap.header.alive or (snap.header.queued and action != "early_stop")


def resumable(snap: Snapshot | None) -> bool:
    """Not running, with a checkpoint, and not already queued again (a requeued SLURM job resumes by itself)."""
    return snap is not None and not snap.header.alive and snap.header.can_resume and not snap.header.queued


class MonitorScreen(KronosScreen):
    MODE = "monitor"
    BINDINGS = [
        Binding("e", "early_stop", "Early stop", show=False),
        Binding("s", "stop", "Stop", show=False),
        Binding("x", "abort", "Abort", show=False),
        Binding("r", "resume", "Resume", show=False),
        Binding("l", "log_y", "Log-y"),
        Binding("a", "x_axis", "Axis"),
        Binding("z", "zoom", "Zoom"),
        Binding("w", "smoothing", "EMA"),
        Binding("t", "stage", "Stage"),
        Binding("v", "view", "View"),
        Binding("o", "overlay", "Overlay"),
        Binding("f", "log_size", "Log"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="run-line", markup=False)
        yield StageProgress(id="stages")
        with Horizontal(id="monitor-main"):
            with ContentSwitcher(initial="loss-view", id="views"):
                yield LossPlot(id="loss-view")
                yield LrPlot(id="lr-view")
                with VerticalScroll(id="gpu-view"):          # 8 GPUs x 4 lines do not fit 80x24
                    yield GpuPanel(detailed=True, id="gpu-detail")
            with VerticalScroll(id="monitor-side"):
                yield RunFacts(id="facts")
                yield GpuPanel(id="gpu-compact")
        yield Log(max_lines=LOG_KEEP, id="log-tail")
        with Horizontal(id="controls"):
            yield Button("Early stop (e)", id="btn-early-stop", compact=True)
            yield Button("Stop (s)", id="btn-stop", compact=True)
            yield Button("Abort (x)", id="btn-abort", variant="error", compact=True)
            yield Button("Resume (r)", id="btn-resume", variant="success", compact=True)
        yield Static("", id="monitor-empty")

    def on_mount(self) -> None:
        self._log_total = -1
        self.query_one("#log-tail", Log).border_title = LOG_TITLE
        self._shown: dict[str, str] = {}
        self._controls: tuple[bool, bool, bool] | None = None
        self._show_empty()
        if self.kapp.snapshot is not None:
            self.show_snapshot(self.kapp.snapshot)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.kapp.snapshot is not None:
            self.show_snapshot(self.kapp.snapshot)
        else:
            self._show_empty()

    def run_changed(self) -> None:
        if self.is_mounted:
            self._log_total = -1
            self._controls = None
            self.query_one("#log-tail", Log).clear()
            self._show_empty()

    def on_resize(self) -> None:
        self._sync_width()

    def _sync_width(self) -> None:
        width = max(20, self.query_one("#views").size.width - 10)   # minus the y-axis labels
        if abs(width - self.kapp.view.width) > 2:
            self.kapp.set_view(width=width)

    # ---------------------------------------------------------------- drawing
    def _show_empty(self) -> None:
        run = self.kapp.attached_run
        empty = self.query_one("#monitor-empty", Static)
        if run is None:
            empty.update("No run attached.\n\n  l  (on Presets) launch the selected preset\n  4  Runs: pick a run "
                         "(enter) to follow it\n\nRuns started earlier are found and attached when the app starts.")
        else:
            empty.update(f"reading {run.run_id} …")
        for selector, shown in (("#monitor-empty", True), ("#monitor-main", False), ("#stages", False),
                                ("#log-tail", False), ("#controls", False)):   # nothing above the message
            self._show(selector, shown)
        self._set("#run-line", run.run_id if run else "")
        self._refresh_controls()

    def _show(self, selector: str, on: bool) -> None:
        widget = self.query_one(selector)
        if widget.display != on:
            widget.display = on

    def _set(self, selector: str, content: Any) -> None:
        """Update a Static only when its text changed (each update re-lays out the screen)."""
        key = content.plain if isinstance(content, Text) else str(content)
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(content)

    def show_snapshot(self, snap: Snapshot) -> None:
        if not self.is_current:
            return
        for selector, shown in (("#monitor-empty", False), ("#monitor-main", not self.has_class("-log-big")),
                                ("#stages", True), ("#log-tail", True), ("#controls", True)):
            self._show(selector, shown)
        self._set("#run-line", self._run_line(snap))
        ascii_only = self.kapp.ascii_only
        self.query_one(StageProgress).show(snap.stages, ascii_only)
        self.query_one(RunFacts).show(snap)
        current = self.query_one(ContentSwitcher).current
        if current == "loss-view":
            self.query_one(LossPlot).show(snap.plot)
        elif current == "lr-view":
            self.query_one(LrPlot).show(snap.plot)
        else:
            self.query_one("#gpu-detail", GpuPanel).show(snap.hardware, ascii_only)
        self._show("#gpu-compact", current != "gpu-view")        # said once: the GPU view has it in full
        self.query_one("#gpu-compact", GpuPanel).show(snap.hardware, ascii_only)
        self._append_log(snap.log)
        self._sync_width()
        self._refresh_controls()
        if self._shown.get("nav") != snap.header.run_id:
            self._shown["nav"] = snap.header.run_id
            self.refresh_nav()

    def _append_log(self, tail: LogLines) -> None:
        """Append only the lines added since the last snapshot; follow the end
        unless the user scrolled up, then say that new lines wait below."""
        log = self.query_one("#log-tail", Log)
        new = tail.total - self._log_total
        following = log.is_vertical_scroll_end or log.max_scroll_y == 0
        if new > 0:
            if self._log_total < 0 or new > len(tail.lines):
                log.clear()
                new, following = len(tail.lines), True
            log.write_lines(tail.lines[len(tail.lines) - new:], scroll_end=False)
            if following:
                log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)
        self._log_total = tail.total
        title = LOG_TITLE if following else f"{LOG_BEHIND} · {LOG_TITLE}"
        if log.border_title != title and (new > 0 or following):
            log.border_title = title

    def _run_line(self, snap: Snapshot) -> Text:
        head = snap.header
        text = Text()
        text.append(f"{head.run_id} ", style="bold")
        text.append(f"· {head.preset} · ")
        text.append(state_word(head.state), style="bold")
        if head.scheduler:              # right after the state: where the job is matters most on a cluster
            text.append(f" · {head.scheduler.removeprefix('SLURM ')}")
        if head.attempt:
            text.append(f" · attempt {head.attempt}")
        if head.host:
            text.append(f" · {head.host}")
        if not snap.reading.caught_up:
            text.append(f" · reading {snap.reading.progress:.0%}", style="italic")
        for request in head.pending_requests:
            text.append(f" · {request}…", style="italic")
        if head.errors:
            text.append(f" · ✗ {head.errors[-1].get('kind')} error", style="bold red")
        return text

    # ---------------------------------------------------------------- availability
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        snap = self.kapp.snapshot
        if action in CONTROL_ACTIONS:
            return True if controllable(snap, action) else None
        if action == "resume":
            run = self.kapp.attached_run
            return True if (run is not None and resumable(snap)) else None
        return True

    def _refresh_controls(self) -> None:
        snap = self.kapp.snapshot
        alive = snap is not None and snap.header.alive
        can_resume = resumable(snap)
        queued = snap is not None and snap.header.queued
        if self._controls == (alive, can_resume, queued):
            return                      # the footer recomposes on every refresh_bindings: only on change
        self._controls = (alive, can_resume, queued)
        self.refresh_bindings()
        for button_id, action in (("#btn-early-stop", "early_stop"), ("#btn-stop", "stop"), ("#btn-abort", "abort")):
            self.query_one(button_id, Button).disabled = not controllable(snap, action)
        self.query_one("#btn-resume", Button).disabled = not can_resume

    # ---------------------------------------------------------------- controls
    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        action = {"btn-early-stop": self.action_early_stop, "btn-stop": self.action_stop,
                  "btn-abort": self.action_abort, "btn-resume": self.action_resume}.get(event.button.id or "")
        if action is not None:
            action()

    def action_early_stop(self) -> None:
        self.kapp.request("early_stop")

    def action_stop(self) -> None:
        self.kapp.request("stop")

    def action_abort(self) -> None:
        run = self.kapp.attached_run
        if run is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.kapp.request("abort")

        self.app.push_screen(ConfirmDialog(
            f"Abort {run.run_id}?",
            "SIGTERM goes to the run's process group now; the current stage is not checkpointed "
            "(its last committed checkpoint stays loadable). Stop [s] is the gentle way.",
            yes="Abort", no="Keep running"), answer)

    def action_resume(self) -> None:
        run = self.kapp.attached_run
        if run is not None:
            self.kapp.resume(run)

    # ---------------------------------------------------------------- view keys
    def action_log_y(self) -> None:
        self.kapp.set_view(log_y=not self.kapp.view.log_y)

    def action_x_axis(self) -> None:
        axis = X_AXES[(X_AXES.index(self.kapp.view.x_axis) + 1) % len(X_AXES)]
        self.kapp.set_view(x_axis=axis)
        self.notify(f"x axis: {'wall time (minutes)' if axis == 'time' else axis}", timeout=1.5)

    def action_zoom(self) -> None:
        view = self.kapp.view
        zoom = ZOOMS[(ZOOMS.index(view.zoom_last) + 1) % len(ZOOMS)] if view.zoom_last in ZOOMS else None
        self.kapp.set_view(zoom_last=zoom)
        self.notify(f"zoom: {'last ' + str(zoom) + ' steps' if zoom else 'all steps'}", timeout=1.5)

    def action_smoothing(self) -> None:
        view = self.kapp.view
        weight = SMOOTHINGS[(SMOOTHINGS.index(view.smoothing) + 1) % len(SMOOTHINGS)] \
            if view.smoothing in SMOOTHINGS else SMOOTHINGS[0]
        self.kapp.set_view(smoothing=weight)
        self.notify(f"smoothing: EMA {weight:g}" if weight else "smoothing off", timeout=1.5)

    def action_stage(self) -> None:
        snap = self.kapp.snapshot
        if snap is None or not snap.stages:
            return
        names = [s.name for s in snap.stages]
        current = snap.plot.stage if snap.plot.stage in names else names[0]
        nxt = names[(names.index(current) + 1) % len(names)]
        self.kapp.set_view(stage=nxt)
        self.notify(f"showing the {nxt} stage", timeout=1.5)

    def action_log_size(self) -> None:
        self.toggle_class("-log-big")
        if self.kapp.snapshot is not None:
            self._show("#monitor-main", not self.has_class("-log-big"))
        log = self.query_one("#log-tail", Log)
        log.call_after_refresh(log.scroll_end, animate=False, x_axis=False)

    def action_view(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        nxt = VIEWS[(VIEWS.index(switcher.current or VIEWS[0]) + 1) % len(VIEWS)]
        switcher.current = nxt
        if self.kapp.snapshot is not None:
            self.show_snapshot(self.kapp.snapshot)

    def action_overlay(self) -> None:
        from kronos_train.control.runfolder import list_runs

        current = self.kapp.attached_run
        runs = [r for r in list_runs(self.kapp.services.logs_dir) if current is None or r.run_id != current.run_id]
        options = [("", "(no overlay)")] + [(r.run_id, f"{r.run_id}  {r.preset_name()}") for r in runs[:30]]

        def chosen(run_id: str | None) -> None:
            if run_id is None:
                return
            run = next((r for r in runs if r.run_id == run_id), None)
            self.kapp.set_overlay(run)

        self.app.push_screen(PickDialog("Overlay another run's curves", options,
                                        "drawn dim over this run's loss, same stage"), chosen)
