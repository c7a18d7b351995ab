"""Following a run folder: read only what is new, turn it into drawable snapshots.

A :class:`RunFollower` lives in one thread worker of the app.  ``poll`` reads
the new bytes of ``events.jsonl`` (in time-boxed chunks while catching up on a
long file, as Toolong scans) and of ``stdout.log``/``stderr.log``, all through the
control plane's one tailer (:class:`~kronos_train.control.events.LineTail`), and
samples NVML when the run is on this node; ``snapshot`` downsamples the curves
to the plot's width, runs the during/after checks and the advisor, and returns
a typed :class:`~kronos_tui.snapshot.Snapshot`.  The UI only draws snapshots and
asks for changes (an overlay, a status re-read) through a queue the follower
takes at its next poll, so only the follow thread writes the follower's state.
"""
from __future__ import annotations

import mmap
import os
import queue
import re
import socket
import time
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any, Callable

from kronos_train.checks import CheckResult
from kronos_train.checks.run import after_checks, during_checks
from kronos_train.control.events import EventTail, LineTail, decode
from kronos_train.control.runfolder import RunFolder

from .runstate import RunState
from .series import as_numpy, last_downsample, minmax_downsample, plottable
from .snapshot import (GpuView, Hardware, LogLines, PlotData, ReadProgress, RunChecks, RunHeader, Series, Snapshot,
                       StageView, WorkerView)
from .view import DEFAULT_SMOOTHING, View

CHUNK_BYTES = 4 << 20          # one read while catching up (about 30k step lines)
LOG_TAIL_LINES = 200
LOG_FIRST_READ = 32 << 10      # on attach, show only the last 32 KB of the text logs
LOG_READ_BYTES = 1 << 20       # new log text read per poll at most
MAX_LINE_CHARS = 400
GPU_SAMPLE_S = 2.0
STATUS_EVERY_S = 2.0
OVERVIEW_MIN_BYTES = 16 << 20  # larger files get a sampled overview before the exact read
OVERVIEW_SAMPLES = 4000
OVERVIEW_EDGE_BYTES = 1 << 20  # read the first and last megabyte completely
GPU_BACKLOG_LINES = 600        # GPU records kept while catching up (minutes of readings, all nodes)
# Every event but the frequent two: these change the story (stages, resumes,
# best values, errors), so the overview reads all of them wherever they are.
STORY_EVENT = re.compile(rb'"event":\s*"(?!step"|gpu")')
STEP_EVENT = re.compile(rb'"event":\s*"step"')


def log_tail(path: Path) -> LineTail:
    """A text log's tailer: it starts near the end (a long log shows its last lines at
    once) and bounds a line that never ends (a progress bar without newlines)."""
    return LineTail(path, start_near_end=LOG_FIRST_READ, max_pending=MAX_LINE_CHARS * 4)


def log_lines(block: bytes) -> list[str]:
    """A block of complete log lines as the pane shows them, each cut to ``MAX_LINE_CHARS``."""
    if not block:
        return []
    # Progress bars rewrite their line with \r: keep what the terminal would show last.
    return [line.rstrip("\r").rsplit("\r", 1)[-1][:MAX_LINE_CHARS]
            for line in block[:-1].decode("utf-8", "replace").split("\n")]


def _host_of(run: RunFolder) -> str:
    return str(run.read_status().get("host") or "")


def sample_overview(path: Path, local_host: str = "", samples: int = OVERVIEW_SAMPLES,
                    edge_bytes: int = OVERVIEW_EDGE_BYTES) -> tuple[RunState, int] | None:
    """A quick, approximate :class:`RunState` of a long events file.

    Reads every story event (one regex pass over the mapped file, in C), the
    first and last megabyte completely, and ``samples`` step records evenly
    spread in between: enough to draw the whole curve at screen resolution in
    well under a second, while the exact read catches up behind it.  Returns
    the state and the byte size it covers, or None for a small or unreadable file.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < OVERVIEW_MIN_BYTES:
                return None
            mm = mmap.mmap(fh.fileno(), size, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    try:
        picked: dict[int, bytes] = {}

        def take(pos: int) -> int:
            """Keep the complete line that starts at or after ``pos``; return where the next begins."""
            end = mm.find(b"\n", pos)
            if end < 0:
                return size                       # a torn last line waits for the exact read
            picked.setdefault(pos, mm[pos:end])
            return end + 1

        for match in STORY_EVENT.finditer(mm):
            take(mm.rfind(b"\n", 0, match.start()) + 1)
        pos = 0
        while pos < min(edge_bytes, size):
            pos = take(pos)
        pos = mm.rfind(b"\n", 0, max(0, size - edge_bytes)) + 1
        while pos < size:
            pos = take(pos)
        span = max(1, size - 2 * edge_bytes)
        for k in range(samples):
            start = mm.find(b"\n", edge_bytes + k * span // samples) + 1
            if 0 < start < size:
                end = mm.find(b"\n", start)
                if end > 0 and STEP_EVENT.search(mm, start, end):
                    picked.setdefault(start, mm[start:end])
        state = RunState(local_host=local_host)
        for offset in sorted(picked):
            try:
                rec = decode(picked[offset])
            except ValueError:
                continue
            if isinstance(rec, dict):
                state.add(rec)
        state.drain_feed()
        return state, size
    finally:
        mm.close()


class RunFollower:
    """Reads one run folder incrementally; owned by a single thread."""

    def __init__(self, run: RunFolder, *, nvml: Any = None, sample_gpus: bool | None = None,
                 local_host: str | None = None, clock: Callable[[], float] = time.time,
                 gpu_monitor_factory: Callable[[Any], Any] | None = None):
        self.run = run
        self.clock = clock
        self.local_host = local_host or socket.gethostname()
        self.state = RunState(local_host=self.local_host)
        self.tail = EventTail(run.events_path)
        self.gpu_backlog: deque[bytes] = deque(maxlen=GPU_BACKLOG_LINES)
        self.stdout = log_tail(run.stdout_path)
        self.stderr = log_tail(run.stderr_path)
        self.log_lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.log_total = 0
        self.version = 0
        self.size = 0
        self.caught_up = False
        self.status: dict[str, Any] = {}
        self.folder_state = "pending"
        self.alive = False
        self.can_resume = False
        self.pending_requests: list[str] = []
        self._status_t = -1e18
        self._gpu_t = -1e18
        self._nvml = nvml
        self._gpu_monitor_factory = gpu_monitor_factory
        self._gpu_monitor: Any = None
        self._sample_gpus = sample_gpus
        self._config: Any = None
        self.model_check: list[CheckResult] | None = None
        self.overlay: RunState | None = None
        self.overlay_label = ""
        self.overview: RunState | None = None   # shown while the exact read catches up
        self._overview_tried = False
        # What other threads ask of this follower (an overlay, a status re-read), taken at the
        # top of poll: only the follow thread ever writes the follower's state.
        self._asks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        from kronos_train.control.scheduler import JobWatch

        self.job = JobWatch(run)                # SLURM asked from this (worker) thread, throttled

    def _fresh_state(self) -> RunState:
        state = RunState(local_host=self.local_host)
        state.smoothing = self.state.smoothing
        state.local_gpu_available = self.state.local_gpu_available
        state.local_gpu_reason = self.state.local_gpu_reason
        return state

    # ---------------------------------------------------------------- reading
    def poll(self, budget_s: float = 0.25) -> bool:
        """Read what is new; returns True when anything changed.  While catching
        up on a long file it stops after ``budget_s`` so progress can be shown."""
        self._take_asks()
        changed = self._read_status()
        deadline = time.perf_counter() + budget_s
        if not self._overview_tried:
            self._overview_tried = True
            found = sample_overview(self.tail.path, self.local_host)
            if found is not None:
                self.overview, self.size = found
                self.version += 1
                return True
        while True:
            try:
                self.size = os.stat(self.tail.path).st_size
            except OSError:
                self.size = 0
            before = self.tail.offset
            block = self.tail.read(CHUNK_BYTES)
            if self.tail.restarted:                # the file was replaced: start the story again
                self.tail.restarted = False
                self.state = self._fresh_state()
            far = self.size - self.tail.offset > CHUNK_BYTES     # history, not the live end
            if block:
                self.tail.bad_lines += self.state.add_block(block, self.gpu_backlog if far else None)
            if not far and self.gpu_backlog:
                self.state.fold_gpu_backlog(self.gpu_backlog)
            if block or self.tail.offset != before:
                changed = True
            self.caught_up = self.tail.offset >= self.size
            if self.caught_up or time.perf_counter() >= deadline:
                break
        if self.caught_up and self.overview is not None:
            self.overview = None                  # the exact curves are complete now
            changed = True
        changed |= self._read_logs()
        changed |= self._sample_gpu()
        if changed:
            self.version += 1
        return changed

    def _read_status(self) -> bool:
        now = time.monotonic()
        if now - self._status_t < STATUS_EVERY_S:
            return False
        self._status_t = now
        status, alive = self.run.read_status(), self.run.is_alive()
        job_changed = self.job.poll()
        state = self.job.state(self.run.state())
        can_resume = self.run.can_resume()
        # A dead run honours nothing more; a queued job still will when it starts.
        pending = self.run.pending_request_lines() if alive or self.job.waiting else []
        changed = job_changed or (state, alive, status.get("stage"), can_resume, pending) != (
            self.folder_state, self.alive, self.status.get("stage"), self.can_resume, self.pending_requests)
        self.status, self.folder_state, self.alive = status, state, alive
        self.can_resume, self.pending_requests = can_resume, pending
        return changed

    # ---------------------------------------------------------------- asked from other threads
    def force_status(self) -> None:
        """Re-read status.json, the requests and the SLURM job at the next poll (after a key
        press).  Safe from any thread."""
        self._asks.put(self._status_due)

    def show_overlay(self, label: str, state: RunState | None) -> None:
        """Draw another run's curves (``state`` None: none) from the next poll on.  Safe from any thread."""
        self._asks.put(partial(self._set_overlay, label, state))

    def _take_asks(self) -> None:
        while not self._asks.empty():
            self._asks.get_nowait()()

    def _status_due(self) -> None:
        self._status_t = -1e18
        self.job.ask_at_next_poll()

    def _set_overlay(self, label: str, state: RunState | None) -> None:
        self.overlay, self.overlay_label = state, label

    def _read_logs(self) -> bool:
        new = [f"  {line}" for line in log_lines(self.stdout.read(LOG_READ_BYTES))]
        new += [f"E {line}" for line in log_lines(self.stderr.read(LOG_READ_BYTES))]
        # Errors and supervisor log events belong in the same pane, marked.
        new += self.state.drain_feed()
        if not new:
            return False
        self.log_lines.extend(new)
        self.log_total += len(new)
        return True

    def should_sample_gpus(self) -> bool:
        if self._sample_gpus is not None:
            return self._sample_gpus
        host = _host_of(self.run) or self.state.host
        return not host or host == self.local_host

    def _sample_gpu(self) -> bool:
        if not self.should_sample_gpus():
            return False
        now = time.monotonic()
        if now - self._gpu_t < GPU_SAMPLE_S:
            return False
        self._gpu_t = now
        if self._gpu_monitor is None:
            if self._gpu_monitor_factory is not None:
                self._gpu_monitor = self._gpu_monitor_factory(self._nvml)
            else:
                from kronos_train.control.gpu import GpuMonitor

                self._gpu_monitor = GpuMonitor(self._nvml)
        snap = self._gpu_monitor.sample()
        self.state.add_local_gpu(snap, self.clock())
        return True

    def close(self) -> None:
        if self._gpu_monitor is not None:
            self._gpu_monitor.close()

    # ---------------------------------------------------------------- config for the advisor
    def run_config(self) -> Any:
        if self._config is None:
            from kronos_train.config import ConfigError, KronosConfig
            from kronos_train.control.run_config import read_run_config

            try:
                self._config = read_run_config(self.run.path)[0]
            except ConfigError:                 # a missing or broken file: judge against defaults
                self._config = KronosConfig()
        return self._config

    # ---------------------------------------------------------------- drawing data
    def snapshot(self, view: View) -> Snapshot:
        st = self.overview if self.overview is not None else self.state
        if abs(view.smoothing - st.smoothing) > 1e-12:
            st.set_smoothing(view.smoothing)
        cfg, now = self.run_config(), self.clock()
        return Snapshot(
            header=self._header(st, cfg, now),
            stages=[self._stage_view(st.stages[n], self.folder_state) for n in st.stage_order],
            plot=self._plot(st, view), hardware=self._hardware(st),
            log=LogLines(list(self.log_lines), self.log_total), checks=self._checks(st, cfg, now),
            reading=ReadProgress(progress=(self.tail.offset / self.size) if self.size else 1.0,
                                 caught_up=self.caught_up, records=st.records, bad_lines=self.tail.bad_lines),
            version=self.version)

    def _host(self, st: RunState) -> str:
        return st.host or str(self.status.get("host") or "")

    def _header(self, st: RunState, cfg: Any, now: float) -> RunHeader:
        return RunHeader(
            run_id=self.run.run_id, preset=st.preset or self.run.preset_name(), state=self.folder_state,
            alive=self.alive, attempt=st.attempt, host=self._host(st), errors=st.errors[-3:],
            can_resume=self.can_resume, budget_left_s=self._budget_left(st, cfg, now),
            pending_requests=list(self.pending_requests), scheduler=self.job.line, queued=self.job.waiting)

    def _plot(self, st: RunState, view: View) -> PlotData:
        active = st.active_stage()
        stage = view.stage if view.stage in st.stages else (active.name if active else None)
        plot = PlotData(view=view, stage=stage, overlay_label=self.overlay_label)
        if stage and stage in st.curves:
            self._add_curves(plot, st, stage, view)
        if stage:
            s = st.stages[stage]
            if s.best_val is not None:
                plot.best = (s.best_val, s.best_step, s.best_epoch)
            if s.total_steps and s.epochs:
                plot.steps_per_epoch = s.total_steps / s.epochs
        return plot

    def _add_curves(self, plot: PlotData, st: RunState, stage: str, view: View) -> None:
        c = st.curves[stage]
        plot.raw, plot.smooth, plot.lr, x_lo, hidden = self._plot_series(c, view)
        if hidden:
            plot.notes.append(f"log scale hides {hidden} point(s) ≤ 0" if view.log_y
                              else f"{hidden} non-finite point(s) hidden")
        if st is self.overview:
            plot.notes.append(f"overview of sampled points; reading all {self.tail.offset / max(1, self.size):.0%}")
        plot.val = self._val_series(c, view, x_lo)
        plot.resume_marks = [m for m in c.resume_marks if m >= x_lo]
        if c.loss:
            plot.last_loss, plot.last_step = c.loss[-1], int(c.step[-1])
        plot.last_lr = st.stages[stage].last_lr
        if view.x_axis == "time":
            plot.step_minutes = self._step_minutes(c, view)
        if self.overlay is not None and stage in self.overlay.curves:
            plot.overlay = self._plot_series(self.overlay.curves[stage], view, x_min=x_lo)[1]

    def _hardware(self, st: RunState) -> Hardware:
        return Hardware(host=self._host(st), alive=self.alive, gpus=self._gpu_views(), gpu_state=self._gpu_state(),
                        gpu_reason=self.state.local_gpu_reason, workers=self._worker_views())

    def _checks(self, st: RunState, cfg: Any, now: float) -> RunChecks:
        from kronos_train.advisor import diagnose

        alive = self.alive if self.folder_state not in ("completed",) else None
        return RunChecks(during=during_checks(st, now=now, alive=alive, patience=cfg.training.early_stopping.patience),
                         after=after_checks(st, self.run, self.model_check), suggestions=diagnose(st, cfg))

    def _budget_left(self, st: Any, cfg: Any, now: float) -> float | None:
        """Seconds of the attempt's time budget left while it runs (the supervisor's
        deadline counts from its start, a moment before run_start)."""
        budget = cfg.training.time_budget_minutes * 60
        if not budget or not self.alive or st.attempt_started is None:
            return None
        return max(0.0, st.attempt_started + budget - now)

    @staticmethod
    def _stage_view(s: Any, folder_state: str) -> StageView:
        status = s.status
        if status == "running" and folder_state in ("interrupted", "failed", "aborted", "stopped"):
            status = folder_state          # the events stop mid-stage: say why, show no ETA
        return StageView(s.name, status, s.fraction(), s.last_step, s.total_steps, s.last_epoch, s.epochs,
                         s.eta_s() if status == "running" else None, s.samples_per_s, s.best_val, s.best_step,
                         s.best_epoch, s.attempt)

    @staticmethod
    def _plot_series(c: Any, view: View, x_min: float | None = None):
        import numpy as np

        steps = as_numpy(c.step)
        x_lo = 0.0
        if len(steps):
            if view.zoom_last:
                x_lo = max(0.0, steps[-1] - view.zoom_last)
            if x_min is not None:
                x_lo = x_min
        start = int(np.searchsorted(steps, x_lo, side="left")) if len(steps) else 0
        x = steps[start:]
        buckets = max(10, view.width)
        raw_x, raw_y, hidden = plottable(x, as_numpy(c.loss)[start:], view.log_y)
        sm_x, sm_y, _ = plottable(x, as_numpy(c.smooth)[start:], view.log_y)
        lr_x, lr_y, _ = plottable(x, as_numpy(c.lr)[start:], False)
        raw_x, raw_y = minmax_downsample(raw_x, raw_y, buckets)
        sm_x, sm_y = last_downsample(sm_x, sm_y, 2 * buckets)
        lr_x, lr_y = last_downsample(lr_x, lr_y, 2 * buckets)
        return (Series(raw_x.tolist(), raw_y.tolist()), Series(sm_x.tolist(), sm_y.tolist()),
                Series(lr_x.tolist(), lr_y.tolist()), x_lo, hidden)

    @staticmethod
    def _step_minutes(c: Any, view: View) -> Series:
        """Wall time of each step, in minutes since the stage's first point (for x: time)."""
        import numpy as np

        steps, t = as_numpy(c.step), as_numpy(c.t)
        known = np.isfinite(t)
        if not known.any():
            return Series()
        steps, minutes = steps[known], (t[known] - t[known][0]) / 60.0
        kept_x, kept_y = last_downsample(steps, minutes, 4 * max(10, view.width))
        # Keep the first point too: the axis starts at 0 minutes, not at the first bucket's end.
        skip = 1 if kept_x[0] == steps[0] else 0
        return Series([float(steps[0])] + kept_x.tolist()[skip:], [0.0] + kept_y.tolist()[skip:])

    @staticmethod
    def _val_series(c: Any, view: View, x_lo: float) -> Series:
        xs, ys = [], []
        for x, y in zip(c.val_step, c.val_loss):
            if x >= x_lo and (not view.log_y or y > 0):
                xs.append(x)
                ys.append(y)
        return Series(xs, ys)

    def _gpu_views(self) -> list[GpuView]:
        return [GpuView(r.host, r.index, r.name, list(r.util), list(r.mem_used), list(r.power), r.mem_total_mb,
                        r.temp_c, r.lost) for _, r in sorted(self.state.gpus.items())]

    def _worker_views(self) -> list[WorkerView]:
        return [WorkerView(w.host, w.pid, w.rank, list(w.cpu), list(w.rss_mb), w.threads)
                for _, w in sorted(self.state.workers.items(), key=lambda kv: (kv[0][0], kv[1].rank or 0, kv[0][1]))]

    def _gpu_state(self) -> str:
        st = self.state
        if st.gpus:
            return "local" if st.local_gpu_available else "events"
        if st.local_gpu_available is False:
            return "none"
        return "waiting"


def load_overlay(run: RunFolder, smoothing: float = DEFAULT_SMOOTHING) -> RunState:
    """Another run's curves, read once (for comparing against the attached run)."""
    state = RunState(smoothing=smoothing)
    tail = EventTail(run.events_path)
    for _ in range(100_000):
        block = tail.read(CHUNK_BYTES)
        if block:
            state.add_block(block)
        size = run.events_path.stat().st_size if run.events_path.exists() else 0
        if tail.offset >= size:
            break
    state.drain_feed()
    return state

