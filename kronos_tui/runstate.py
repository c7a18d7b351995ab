"""The monitor's model of a run: events folded into curves and GPU histories.

:class:`RunState` extends the checklist's :class:`RunSummary`, so one pass over
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
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from kronos_train.checks.run import RunSummary, StageSummary, _num

from .series import EmaState, ema_debiased

GPU_HISTORY = 60             # samples kept per GPU (about two minutes at 2 s)
DEFAULT_SMOOTHING = 0.6
LOG_FEED_MAX = 200

# The fields this reader uses, per event: tests/test_events_contract.py checks
# that every one of them is documented in kronos_train.events.EVENT_FIELDS.
FIELDS_READ: dict[str, set[str]] = {
    "run_start": {"run_id", "preset", "stages", "world_size", "attempt", "host", "schema"},
    "stage_start": {"stage", "attempt", "epochs", "steps_per_epoch", "total_steps", "world_size", "batch_size",
                    "global_batch", "accumulation_steps", "resumed_from", "lr"},
    "step": {"stage", "step", "epoch", "loss", "lr", "samples_per_s", "data_wait", "mem_gb"},
    "val": {"stage", "step", "epoch", "val_loss", "improved", "baseline", "bad_evals", "patience"},
    "gpu": {"host", "gpus"},
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
        for col in (self.step, self.loss, self.smooth, self.lr):
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
        self.feed: list[str] = []        # error and log lines for the log pane, drained by the follower

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

    # ---------------------------------------------------------------- folding hooks
    def _on_step(self, rec: dict[str, Any]) -> None:
        super()._on_step(rec)
        name = rec.get("stage") or self.current_stage
        if not name:
            return
        c = self.curve(str(name))
        loss = _num(rec.get("loss"))
        loss = math.nan if loss is None else loss
        lr = _num(rec.get("lr"))
        c.step.append(float(rec["step"]))
        c.loss.append(loss)
        c.smooth.append(c.ema.push(loss))
        c.lr.append(math.nan if lr is None else lr)

    def _on_val(self, rec: dict[str, Any]) -> None:
        super()._on_val(rec)
        name = rec.get("stage") or self.current_stage
        value = _num(rec.get("val_loss"))
        if name and value is not None:
            c = self.curve(str(name))
            c.val_step.append(float(rec["step"]))
            c.val_loss.append(value)

    def _truncate(self, st: StageSummary, resumed_from: int) -> None:
        super()._truncate(st, resumed_from)
        c = self.curve(st.name)
        if c.step and c.step[-1] > resumed_from:
            c.cut_after(resumed_from)
            c.resmooth(self.smoothing)
        c.resume_marks.append(resumed_from)

    def _on_error(self, rec: dict[str, Any]) -> None:
        super()._on_error(rec)
        where = f" [{rec['stage']}]" if rec.get("stage") else ""
        self.feed.append(f"✗ error {rec.get('kind')}{where}: {rec.get('message')}")
        for remedy in rec.get("remedy") or []:
            self.feed.append(f"    → {remedy}")

    def _on_log(self, rec: dict[str, Any]) -> None:
        super()._on_log(rec)
        self.feed.append(f"» {rec.get('level', 'info')}: {rec.get('message')}")
        del self.feed[:-LOG_FEED_MAX]

    def _on_gpu(self, rec: dict[str, Any]) -> None:
        super()._on_gpu(rec)
        host = str(rec.get("host") or "?")
        self.gpu_hosts_seen.add(host)
        if host == self.local_host and self.local_gpu_available:
            return            # this node is sampled by the TUI itself, more often
        self._update_gpu_rows(host, _num(rec.get("t")) or 0.0, rec.get("gpus") or [], lost=[])

    # ---------------------------------------------------------------- local NVML
    def add_local_gpu(self, snapshot: Any, t: float) -> None:
        """A :class:`kronos_train.gpu.GpuSnapshot` sampled by the TUI on this node."""
        self.local_gpu_available = bool(snapshot.available)
        self.local_gpu_reason = snapshot.reason
        if not snapshot.available:
            return
        host = snapshot.host or self.local_host
        readings = [r.to_event() for r in snapshot.gpus]
        seen = {r["index"] for r in readings}
        lost = [idx for (h, idx) in self.gpus if h == host and idx not in seen]
        self._update_gpu_rows(host, t, readings, lost)
        # Feed the checks as a trainer gpu record would.
        RunSummary._on_gpu(self, {"host": host, "t": t, "gpus": readings})

    def _update_gpu_rows(self, host: str, t: float, gpus: list[Any], lost: list[int]) -> None:
        for g in gpus:
            if not isinstance(g, dict) or g.get("index") is None:
                continue
            key = (host, int(g["index"]))
            row = self.gpus.get(key) or self.gpus.setdefault(key, GpuRow(host, int(g["index"])))
            row.name = str(g.get("name") or row.name)
            row.util.append(_num(g.get("util")))
            row.mem_used.append(_num(g.get("mem_used_mb")))
            row.power.append(_num(g.get("power_w")))
            row.mem_total_mb = _num(g.get("mem_total_mb")) or row.mem_total_mb
            row.temp_c = _num(g.get("temp_c"))
            row.lost = False
            row.t = t
        for index in lost:
            row = self.gpus.get((host, index))
            if row is not None:
                row.lost = True
                row.util.append(None)
                row.mem_used.append(None)
                row.power.append(None)
