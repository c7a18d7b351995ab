"""The kronos-tui application: modes, shared state, the run follower.

Five modes (screens), each on a digit key and a clickable tab: Presets,
Checklist, Monitor, Runs, Advisor.  The app owns what they share: the selected
preset, the attached run and the one thread worker that follows it
(:class:`kronos_tui.follow.RunFollower`), whose snapshots feed the monitor, the
during/after checklist and the advisor alike.

Never imports torch (checked by a test): the heavy checks run in a
``kronos-train check`` subprocess and training in a detached supervisor.

Threads: workers hand results back as messages (``kronos_tui.messages``) or say
them with ``notify`` (thread-safe in Textual); the follower's state is written
by its own thread only: other threads ask it through ``RunFollower.show_overlay``
and ``force_status``, which it takes at its next poll.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterable

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from kronos_train.checks import CheckResult
from kronos_train.control.runfolder import RunFolder, find_run, list_runs

from .view import View
from .messages import ModelChecked, OverlayLoaded, RunAttached, RunSnapshot
from .screens.base import KronosScreen
from .services import Services
from .snapshot import Snapshot


def _commands_provider() -> type:
    from .commands import KronosCommands     # imported when the palette first opens

    return KronosCommands


def _presets_screen() -> Screen:
    from .screens.presets import PresetsScreen

    return PresetsScreen()


def _checklist_screen() -> Screen:
    from .screens.checklist import ChecklistScreen

    return ChecklistScreen()


def _monitor_screen() -> Screen:
    from .screens.monitor import MonitorScreen

    return MonitorScreen()


def _runs_screen() -> Screen:
    from .screens.runs import RunsScreen

    return RunsScreen()


def _advisor_screen() -> Screen:
    from .screens.advisor import AdvisorScreen

    return AdvisorScreen()


HELP_TEXT = """\
Everywhere  1-5 Presets, Checks, Monitor, Runs, Advisor (or click a tab)
            ctrl+p palette · ? f1 this help · q quit (runs keep going)
Presets     enter select · e edit form · y edit YAML · n new (extends it)
            d diff vs parent · i import kaggle_config.yaml · c checks
            l launch
Editor      ctrl+s save · f2 save as · f3 form · f4 YAML · f5 diff
            escape close (asks when unsaved)
Checks      r re-run, no cache · m model-load check · x expand · l launch
Launch      t / b stages · k skip done · ctrl+l launch · escape cancel
Monitor     e early stop (this stage) · s stop (resumable) · x abort
            r resume · l log-y · a x axis: steps, epochs, wall time
            z zoom · w smoothing · t stage · v loss / lr / GPUs or CPUs
            o overlay another run · f larger log · end: follow the log
Runs        enter attach · space mark · d diff marked (or vs parent)
            o overlay on the monitor · r resume
Advisor     w / enter write the suggested preset

tmux: `set -sg escape-time 10` (escape is slow otherwise), and
`set -g mouse on` for clicks. Nothing needs the mouse or colour.
"""


class KronosApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("app.tcss"))   # absolute: subclasses may live anywhere
    TITLE = "kronos-tui"
    NOTIFICATION_TIMEOUT = 3          # seconds: a toast says what just happened, then gets out of the way
    COMMANDS = App.COMMANDS | {_commands_provider}
    MODES = {"presets": _presets_screen, "checklist": _checklist_screen, "monitor": _monitor_screen,
             "runs": _runs_screen, "advisor": _advisor_screen}
    BINDINGS = [
        Binding("1", "show('presets')", "Presets", show=False),
        Binding("2", "show('checklist')", "Checklist", show=False),
        Binding("3", "show('monitor')", "Monitor", show=False),
        Binding("4", "show('runs')", "Runs", show=False),
        Binding("5", "show('advisor')", "Advisor", show=False),
        Binding("f1,question_mark", "help", "Help", show=False),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self, target: str | None = None, services: Services | None = None,
                 ascii_only: bool = False) -> None:
        self.services = services or Services()
        self.ascii_only = ascii_only
        self.attached_run: RunFolder | None = None
        self.snapshot: Snapshot | None = None
        self.view = View()
        self.check_cache: dict[str, dict[str, list[CheckResult]]] = {}
        self.model_checks: dict[str, list[CheckResult]] = {}
        self._wake = threading.Event()
        self._follower: Any = None
        self.selected_preset, start_run = self._resolve_target(target)
        self._start_run = start_run
        # The first frame is the screen the user asked for: the monitor for a run.
        self.DEFAULT_MODE = "monitor" if start_run else "presets"  # type: ignore[misc]
        super().__init__()

    # ---------------------------------------------------------------- start-up
    def _resolve_target(self, target: str | None) -> tuple[str, RunFolder | None]:
        from kronos_train.config import list_presets

        names = [p.name for p in list_presets(self.services.extra_preset_dirs)]
        default = "demo" if "demo" in names else (names[0] if names else "")
        if not target:
            return default, None
        if target in names or target.endswith((".yaml", ".yml")):
            return target, None
        try:
            run = find_run(target, self.services.logs_dir)
        except LookupError:
            return target, None           # an unknown name: the presets screen says so
        return run.preset_name() or default, run

    def on_mount(self) -> None:
        if self._start_run is not None:
            self.attach(self._start_run, show=False)
        else:
            self._find_live_runs()

    @work(thread=True, exclusive=True, group="startup", exit_on_error=False)
    def _find_live_runs(self) -> None:
        """A run that outlived an earlier session (SSH dropped, app quit) is found
        again and attached, so the user lands back on its monitor."""
        live = [r for r in list_runs(self.services.logs_dir) if r.is_alive()]
        if live:
            self.post_message(RunAttached(live[0]))
            if len(live) > 1:
                self.notify(f"{len(live)} live runs; attached to the newest (4: Runs lists all)")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            from .screens.base import report_worker_error

            report_worker_error(self, event.worker)

    @on(RunAttached)
    def _on_run_attached(self, message: RunAttached) -> None:
        self.attach(message.run)
        self.notify(f"attached to live run {message.run.run_id}")

    # ---------------------------------------------------------------- navigation
    def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from .screens.dialogs import HelpScreen

        self.push_screen(HelpScreen(HELP_TEXT))

    def action_quit_app(self) -> None:
        if self.attached_run is not None and self.snapshot is not None and self.snapshot.header.alive:
            self.notify("the run keeps going; `kronos-tui` attaches again", timeout=1)
        self.exit()

    def select_preset(self, name: str) -> None:
        self.selected_preset = name
        for screen in self._kronos_screens():
            screen.preset_changed()
        self.refresh_navs()

    def refresh_navs(self) -> None:
        from .widgets.navbar import NavBar

        for screen in self._all_screens():
            for bar in screen.query(NavBar):
                bar.refresh_context()

    def _all_screens(self) -> Iterable[Screen]:
        for stack in self._screen_stacks.values():
            yield from stack

    def _kronos_screens(self) -> Iterable[KronosScreen]:
        return (screen for screen in self._all_screens() if isinstance(screen, KronosScreen))

    # ---------------------------------------------------------------- runs
    def attach(self, run: RunFolder, show: bool = True) -> None:
        """Follow ``run``; the monitor, checklist and advisor show it."""
        self.attached_run = run
        self.snapshot = None
        self._follow(run)
        self.refresh_navs()
        if show:
            self.action_show("monitor")
        for screen in self._kronos_screens():
            screen.run_changed()

    def set_view(self, **changes: Any) -> None:
        from dataclasses import replace

        self.view = replace(self.view, **changes)
        self._wake.set()

    def wake_follower(self, status: bool = False) -> None:
        """Poll now (``status``: re-read the run's status too).  Safe from any thread."""
        if status and self._follower is not None:
            self._follower.force_status()
        self._wake.set()

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def _follow(self, run: RunFolder) -> None:
        """Poll the run folder; post a snapshot when anything changed (at most
        every ``poll_interval`` once caught up: about two redraws a second)."""
        from .follow import RunFollower

        worker = get_current_worker()
        follower = RunFollower(run, nvml=self.services.nvml, clock=self.services.clock)
        follower.model_check = self.model_checks.get(run.run_id)
        self._follower = follower
        last_view, last_check, last_overlay = None, follower.model_check, None
        dirty, posted_at = True, 0.0
        try:
            while not worker.is_cancelled:
                dirty |= follower.poll(budget_s=0.25)
                follower.model_check = self.model_checks.get(run.run_id)
                view = self.view
                asked = view is not last_view or follower.model_check is not last_check \
                    or follower.overlay is not last_overlay
                # New data redraws at most once per refresh interval; a key press at once.
                due = dirty and time.monotonic() - posted_at >= self.services.refresh_interval
                if asked or due or (dirty and not follower.caught_up):
                    last_view, last_check, last_overlay = view, follower.model_check, follower.overlay
                    self.post_message(RunSnapshot(follower.snapshot(view)))
                    dirty, posted_at = False, time.monotonic()
                if follower.caught_up:
                    self._wake.wait(self.services.poll_interval)
                    self._wake.clear()
        finally:
            follower.close()

    @on(RunSnapshot)
    def _on_run_snapshot(self, message: RunSnapshot) -> None:
        snap = message.snapshot
        if self.attached_run is None or snap.header.run_id != self.attached_run.run_id:
            return                    # a late snapshot of a run we left
        self.snapshot = snap
        screen = self.screen
        if isinstance(screen, KronosScreen):     # not a dialog on top
            screen.show_snapshot(snap)

    def set_overlay(self, run: RunFolder | None) -> None:
        if run is None:
            if self._follower is not None:
                self._follower.show_overlay("", None)
            self.wake_follower()
            return
        self._load_overlay(run)

    @work(thread=True, exclusive=True, group="overlay", exit_on_error=False)
    def _load_overlay(self, run: RunFolder) -> None:
        from .follow import load_overlay

        state = load_overlay(run, self.view.smoothing)
        follower = self._follower
        if follower is not None:
            follower.show_overlay(run.run_id, state)
        self.post_message(OverlayLoaded(run.run_id))
        self.wake_follower()

    @on(OverlayLoaded)
    def _overlay_loaded(self, message: OverlayLoaded) -> None:
        self.notify(f"overlay: {message.label}")

    @on(ModelChecked)
    def _model_checked(self, message: ModelChecked) -> None:
        self.model_checks[message.run_id] = message.results
        self.wake_follower()

    def request(self, kind: str) -> None:
        """Early stop / stop / abort the attached run through its folder."""
        run = self.attached_run
        if run is None:
            self.notify("no run attached", severity="warning")
            return
        stage = self.snapshot.plot.stage if self.snapshot is not None else None
        from kronos_train.control.slurm_job import is_slurm_run

        if is_slurm_run(run):           # scancel may be needed: SLURM is asked off the UI thread
            self._request_slurm(run, kind, stage)
            return
        try:
            run.request(kind, source="tui", stage=stage)
        except OSError as exc:
            self.notify(f"could not write the request: {exc}", severity="error")
            return
        words = {"early_stop": "early stop: the stage ends at the next optimizer step, the next stage follows",
                 "stop": "stop: checkpoint at the next step, then the run ends (resumable)",
                 "abort": "abort: SIGTERM sent to the run's process group"}
        self.notify(words[kind])
        self.wake_follower(status=True)

    @work(thread=True, exclusive=True, group="slurm-request", exit_on_error=False)
    def _request_slurm(self, run: RunFolder, kind: str, stage: str | None) -> None:
        """A SLURM run: a queued job is cancelled, an abort also cancels a running one;
        otherwise the request file, as for any run."""
        from kronos_train.control.slurm_job import control_slurm_job

        try:
            done = control_slurm_job(run, kind, source="tui")
            if done is None:
                run.request(kind, source="tui", stage=stage)
        except Exception as exc:        # SchedulerError, LaunchError, OSError: said, never a traceback
            self.notify(f"{kind.replace('_', ' ')} failed: {exc}", severity="error", timeout=10)
            return
        self.notify(done or f"{kind.replace('_', ' ')} requested for {run.run_id}")
        self.wake_follower(status=True)

    def resume(self, run: RunFolder) -> None:
        self._resume(run)

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def _resume(self, run: RunFolder) -> None:
        from .services import launch_problems

        try:
            self.services.resume(run)
        except Exception as exc:
            lines = launch_problems(exc) or [f"{type(exc).__name__}: {exc}"]
            self.notify("cannot resume:\n" + "\n".join(lines), severity="error", timeout=10)
            return
        self.notify(f"resumed {run.run_id}")
        self.post_message(RunAttached(run))

    def open_launch(self, preset: str | None = None) -> None:
        from kronos_train.config import errors_of, load_preset

        from .screens.launch import LaunchDialog

        preset = preset or self.selected_preset
        cfg, problems = load_preset(preset, self.services.extra_preset_dirs)
        errors = errors_of(problems)
        if errors:
            self.notify("the preset has errors; fix them first:\n" + "\n".join(str(p) for p in errors[:4]),
                        severity="error", timeout=8)
            return

        def launched(run: RunFolder | None) -> None:
            if run is not None:
                self.notify(f"launched {run.run_id}: detached, it keeps going if you quit")
                self.attach(run)

        self.push_screen(LaunchDialog(preset, cfg, self.services), launched)

    # ---------------------------------------------------------------- command palette
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
