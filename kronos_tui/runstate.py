"""The monitor's model of a run: events folded into curves and GPU histories.

:class:`RunState` extends the control plane's :class:`RunSummary`, so one pass over
``events.jsonl`` feeds the plots, the during/after checks and the advisor.
Curves are kept as ``array('d')`` columns (8 bytes a point: a million steps
cost 48 MB, not the ~400 MB of a list of dicts), with the debiased EMA kept up
to date as points arrive.  After a resume the earlier attempt's points past the
resume step are cut away (docs/events.md), and the resume step is remembered
so the plot can mark it.

Pure: no Textual, no threads; :mod:`kronos_tui.follow` drives it.
"""
from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from kronos_train.control.events import decode
from kronos_train.control.summary import RECENT_POINTS, RunSummary, finite_number

from .series import EmaState, ema_debiased
from .view import DEFAULT_SMOOTHING

GPU_HISTORY = 60             # samples kept per GPU (about two minutes at 2 s)
BULK_MIN_LINES = 64          # shorter runs of step lines are parsed one by one

# The bulk reader pulls the three numbers a curve needs out of a block of step
# lines with one regex pass each (C speed) instead of building a dict per line:
# a million-line file reads in seconds, not tens of seconds.  Any surprise (a
# field missing, a count that does not match) falls back to the plain parser.
_NUMBER = rb"\s*(-?(?:[0-9][0-9.eE+-]*|NaN))"
STEP_RE = re.compile(rb'"step":' + _NUMBER)
LOSS_RE = re.compile(rb'"loss":' + _NUMBER)
LR_RE = re.compile(rb'"lr":' + _NUMBER)
T_RE = re.compile(rb'"t":' + _NUMBER)
STAGE_RE = re.compile(rb'"stage":\s*"([A-Za-z_]+)"')
STEP_MARKS = (b'"event":"step"', b'"event": "step"')
GPU_MARKS = (b'"event":"gpu"', b'"event": "gpu"')
LOG_FEED_MAX = 200

# The fields this reader uses, per event: tests/test_events_contract.py checks
# that every one of them is documented in kronos_train.control.events.EVENT_FIELDS.
FIELDS_READ: dict[str, set[str]] = {
    "run_start": {"t", "run_id", "preset", "stages", "world_size", "attempt", "host", "schema"},
    "stage_start": {"stage", "attempt", "epochs", "steps_per_epoch", "total_steps", "world_size", "batch_size",
                    "global_batch", "accumulation_steps", "resumed_from", "lr"},
    "step": {"t", "stage", "step", "epoch", "loss", "lr", "samples_per_s", "data_wait", "mem_gb"},
    "val": {"stage", "step", "epoch", "val_loss", "improved", "baseline", "bad_evals", "patience"},
    "gpu": {"host", "gpus"},
    "workers": {"host", "workers"},
    "checkpoint": {"stage", "step", "kind", "path"},
    "early_stop": {"stage", "step", "reason", "patience", "bad_evals", "best_val_loss"},
    "stop": {"kind", "step", "stage", "source"},
    "stage_end": {"stage", "status", "best_val_loss", "best_path", "message"},
    "error": {"kind", "message", "stage", "remedy"},
    "log": {"level", "message", "stage"},
    "run_end": {"status", "message"},
}


@dataclass
class Curves:
    """One stage's plotted series."""
    step: array = field(default_factory=lambda: array("d"))
    loss: array = field(default_factory=lambda: array("d"))
    smooth: array = field(default_factory=lambda: array("d"))
    lr: array = field(default_factory=lambda: array("d"))
    t: array = field(default_factory=lambda: array("d"))          # wall time of each point (unix s)
    val_step: array = field(default_factory=lambda: array("d"))
    val_loss: array = field(default_factory=lambda: array("d"))
    resume_marks: list[int] = field(default_factory=list)
    ema: EmaState = field(default_factory=lambda: EmaState(DEFAULT_SMOOTHING))

    def resmooth(self, weight: float) -> None:
        self.smooth = array("d", ema_debiased(self.loss, weight))
        self.ema = EmaState(weight)
        # Carry the accumulator forward so later points continue the same line.
        for x in self.loss:
            self.ema.push(x)

    def cut_after(self, step: int) -> None:
        keep = bisect_right(self.step, step)
        for col in (self.step, self.loss, self.smooth, self.lr, self.t):
            del col[keep:]
        keep_val = bisect_right(self.val_step, step)
        del self.val_step[keep_val:]
        del self.val_loss[keep_val:]


@dataclass
class GpuRow:
    host: str
    index: int
    name: str = ""
    util: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    mem_used: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    power: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    mem_total_mb: float | None = None
    temp_c: float | None = None
    lost: bool = False
    t: float = 0.0


@dataclass
class WorkerRow:
    """One worker process as the supervisor saw it (``workers`` events)."""
    host: str
    pid: int
    rank: int | None = None
    cpu: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    rss_mb: deque = field(default_factory=lambda: deque(maxlen=GPU_HISTORY))
    threads: int | None = None


class RunState(RunSummary):
    """Everything the monitor draws about one run."""

    def __init__(self, local_host: str = "", smoothing: float = DEFAULT_SMOOTHING):
        super().__init__()
        self.local_host = local_host
        self.smoothing = smoothing
        self.curves: dict[str, Curves] = {}
        self.gpus: dict[tuple[str, int], GpuRow] = {}
        self.local_gpu_available: bool | None = None     # None: not sampled here
        self.local_gpu_reason = ""
        self.gpu_hosts_seen: set[str] = set()
        self.workers: dict[tuple[str, int], WorkerRow] = {}   # the latest reading's processes only
        self.feed: list[str] = []        # error and log lines for the log pane, drained by the follower
        self._drawers: dict[str, Callable[[dict[str, Any]], None]] = {
            "step": self._draw_step, "val": self._draw_val, "error": self._feed_error, "log": self._feed_log,
            "gpu": self._draw_gpu, "workers": self._draw_workers}

    def drain_feed(self) -> list[str]:
        lines, self.feed = self.feed, []
        return lines

    def curve(self, stage: str) -> Curves:
        c = self.curves.get(stage)
        if c is None:
            c = self.curves[stage] = Curves(ema=EmaState(self.smoothing))
        return c

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        for c in self.curves.values():
            c.resmooth(weight)

    # ---------------------------------------------------------------- what the fold does not keep
    def folded(self, rec: dict[str, Any]) -> None:
        """After RunSummary has folded ``rec``: keep what only the monitor draws."""
        draw = self._drawers.get(rec["event"])
        if draw is not None:
            draw(rec)

    def _draw_step(self, rec: dict[str, Any]) -> None:
        name = rec.get("stage") or self.current_stage
        if not name:
            return
        c = self.curve(str(name))
        loss = finite_number(rec.get("loss"))
        loss = math.nan if loss is None else loss
        lr = finite_number(rec.get("lr"))
        c.step.append(float(rec["step"]))
        c.loss.append(loss)
        c.smooth.append(c.ema.push(loss))
        c.lr.append(math.nan if lr is None else lr)
        t = finite_number(rec.get("t"))
        c.t.append(math.nan if t is None else t)

    def _draw_val(self, rec: dict[str, Any]) -> None:
        name = rec.get("stage") or self.current_stage
        value = finite_number(rec.get("val_loss"))
        if name and value is not None:
            c = self.curve(str(name))
            c.val_step.append(float(rec["step"]))
            c.val_loss.append(value)

    def resumed(self, stage: str, step: int) -> None:
        """The earlier attempt's points past the resume step go; the step is marked on the plot."""
        c = self.curve(stage)
        if c.step and c.step[-1] > step:
            c.cut_after(step)
            c.resmooth(self.smoothing)
        c.resume_marks.append(step)

    def _feed_error(self, rec: dict[str, Any]) -> None:
        where = f" [{rec['stage']}]" if rec.get("stage") else ""
        self.feed.append(f"✗ error {rec.get('kind')}{where}: {rec.get('message')}")
        for remedy in rec.get("remedy") or []:
            self.feed.append(f"    → {remedy}")

    def _feed_log(self, rec: dict[str, Any]) -> None:
        self.feed.append(f"» {rec.get('level', 'info')}: {rec.get('message')}")
        del self.feed[:-LOG_FEED_MAX]

    def _draw_gpu(self, rec: dict[str, Any]) -> None:
        host = str(rec.get("host") or "?")
        self.gpu_hosts_seen.add(host)
        if host == self.local_host and self.local_gpu_available:
            return            # this node is sampled by the TUI itself, more often
        self._update_gpu_rows(host, finite_number(rec.get("t")) or 0.0, rec.get("gpus") or [], lost=[])

    def _draw_workers(self, rec: dict[str, Any]) -> None:
        host = str(rec.get("host") or "?")
        readings = [w for w in rec.get("workers") or [] if isinstance(w, dict) and isinstance(w.get("pid"), int)]
        # Workers of an ended stage are gone: keep the rows of this reading only (per host).
        self.workers = {key: row for key, row in self.workers.items()
                        if key[0] != host or key[1] in {w["pid"] for w in readings}}
        for w in readings:
            row = self.workers.setdefault((host, w["pid"]), WorkerRow(host, w["pid"]))
            rank = w.get("rank")
            row.rank = rank if isinstance(rank, int) else row.rank
            row.cpu.append(finite_number(w.get("cpu")))
            row.rss_mb.append(finite_number(w.get("rss_mb")))
            threads = w.get("threads")
            row.threads = threads if isinstance(threads, int) else None

    # ---------------------------------------------------------------- bulk reading
    def add_block(self, block: bytes, gpu_backlog: Any = None) -> int:
        """Fold a block of complete lines; returns the number of unparseable ones.

        Step lines are gathered and folded in bulk; every other record is folded
        in file order, after the steps before it (a resume's stage_start must
        cut the curve at the right place).  With ``gpu_backlog`` (a bounded
        deque) GPU lines are only kept raw: while catching up on history only
        the last few minutes of GPU readings matter.
        """
        bad = 0
        steps: list[bytes] = []
        for line in block.split(b"\n"):
            if not line or line.isspace():
                continue
            if STEP_MARKS[0] in line or STEP_MARKS[1] in line:
                steps.append(line)
                continue
            if gpu_backlog is not None and (GPU_MARKS[0] in line or GPU_MARKS[1] in line):
                gpu_backlog.append(line)
                self.records += 1
                continue
            if steps:
                bad += self._add_steps(steps)
                steps = []
            bad += self._add_line(line)
        if steps:
            bad += self._add_steps(steps)
        return bad

    def _add_line(self, line: bytes) -> int:
        try:
            rec = decode(line)
        except ValueError:
            return 1
        if not isinstance(rec, dict):
            return 1
        self.add(rec)
        return 0

    def _add_steps(self, lines: list[bytes]) -> int:
        if len(lines) < BULK_MIN_LINES:
            return sum(self._add_line(line) for line in lines)
        bad = self._add_line(lines[0])
        stage = self.current_stage
        middle = lines[1:-1]
        columns = self._step_columns(middle, stage)
        if columns is None:
            bad += sum(self._add_line(line) for line in middle)
        else:
            self._fold_columns(stage, *columns)   # type: ignore[arg-type]
        return bad + self._add_line(lines[-1])

    @staticmethod
    def _step_columns(lines: list[bytes], stage: str | None) -> tuple[array, array, array, array] | None:
        if not stage:
            return None
        blob = b"\n".join(lines).replace(b":null", b":NaN")
        n = len(lines)
        stages = STAGE_RE.findall(blob)
        if len(stages) != n or any(s != stages[0] for s in stages) or stages[0].decode() != stage:
            return None
        try:
            cols = tuple(array("d", map(float, rx.findall(blob))) for rx in (STEP_RE, LOSS_RE, LR_RE, T_RE))
        except ValueError:
            return None
        if any(len(col) != n for col in cols):
            return None
        return cols  # type: ignore[return-value]

    def _fold_columns(self, stage: str, steps: array, losses: array, lrs: array, times: array) -> None:
        """What folding n step records one by one would leave behind, for the fields curves and checks use."""
        st = self.stage(stage)
        c = self.curve(stage)
        self.records += len(steps)
        c.step.extend(steps)
        c.loss.extend(losses)
        c.lr.extend(lrs)
        c.t.extend(times)
        push = c.ema.push
        c.smooth.extend([push(x) for x in losses])
        pairs = [(int(s), x) for s, x in zip(steps[-RECENT_POINTS:], losses[-RECENT_POINTS:]) if x == x]
        room = RECENT_POINTS - len(st.early_losses)
        if room > 0:
            st.early_losses.extend((int(s), x) for s, x in zip(steps[:room], losses[:room]) if x == x)
        st.recent_losses.extend(pairs)

    def fold_gpu_backlog(self, backlog: Any) -> None:
        while backlog:
            self._add_line(backlog.popleft())
            self.records -= 1            # counted when it was set aside

    # ---------------------------------------------------------------- local NVML
    def add_local_gpu(self, snapshot: Any, t: float) -> None:
        """A :class:`kronos_train.control.gpu.GpuSnapshot` sampled by the TUI on this node."""
        self.local_gpu_available = bool(snapshot.available)
        self.local_gpu_reason = snapshot.reason
        if not snapshot.available:
            return
        host = snapshot.host or self.local_host
        readings = [r.to_event() for r in snapshot.gpus]
        seen = {r["index"] for r in readings}
        lost = [idx for (h, idx) in self.gpus if h == host and idx not in seen]
        self._update_gpu_rows(host, t, readings, lost)
        self.add_gpu_reading(host, t, readings)      # judged by the checks as a trainer gpu record would be

    def _update_gpu_rows(self, host: str, t: float, gpus: list[Any], lost: list[int]) -> None:
        for g in gpus:
            if not isinstance(g, dict) or g.get("index") is None:
                continue
            key = (host, int(g["index"]))
            row = self.gpus.get(key) or self.gpus.setdefault(key, GpuRow(host, int(g["index"])))
            row.name = str(g.get("name") or row.name)
            row.util.append(finite_number(g.get("util")))
            row.mem_used.append(finite_number(g.get("mem_used_mb")))
            row.power.append(finite_number(g.get("power_w")))
            row.mem_total_mb = finite_number(g.get("mem_total_mb")) or row.mem_total_mb
            row.temp_c = finite_number(g.get("temp_c"))
            row.lost = False
            row.t = t
        for index in lost:
            row = self.gpus.get((host, index))
            if row is not None:
                row.lost = True
                row.util.append(None)
                row.mem_used.append(None)
                row.power.append(None)
