"""The one fold of a run's events into its state: what every reader of a run knows.

Records come in one at a time (``RunSummary.add``) from any reader of
``events.jsonl``; the fold keeps only bounded state (ends of each loss curve,
validation passes, the latest GPU readings), so a million-line file costs a
few kilobytes.  The checks (``checks.run``), the advisor, ``kronos-train
status`` and the TUI all read this one fold; the TUI subclasses
:class:`RunSummary` to keep full curves as well, so one pass over the events
feeds the plots, the checks and the advisor alike.

Tolerant by design: unknown events and missing or null fields are skipped,
never raised, because a reader must survive a trainer newer than itself.

Light module: standard library only.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .events import read_events
from .runfolder import RunFolder

RECENT_POINTS = 200          # train-loss points kept at each end of a stage's curve
GPU_WINDOW_S = 120.0         # GPU utilisation is judged over the last two minutes


def finite_number(value: Any) -> float | None:
    """A finite float, or None (events write NaN/inf as null).  On the hot path
    of reading a million step records, so it avoids isinstance chains."""
    cls = value.__class__
    if cls is float:
        return value if value - value == 0 else None      # false for NaN and inf
    if cls is int:
        return float(value)
    return None


@dataclass
class StageSummary:
    """What one stage told so far (the latest attempt wins where attempts differ)."""
    name: str
    status: str = "pending"          # pending | running | completed | early_stopped | stopped | failed | skipped
    attempt: int = 0
    epochs: int | None = None
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    world_size: int | None = None
    batch_size: int | None = None
    global_batch: int | None = None
    accumulation_steps: int | None = None
    lr0: float | None = None
    resumed_from: int | None = None
    started_t: float | None = None
    ended_t: float | None = None
    # Rate for the ETA: the first step record of this attempt and the latest.
    first_step: int | None = None
    first_step_t: float | None = None
    last_step: int = 0
    last_step_t: float | None = None
    last_epoch: float = 0.0
    last_loss: float | None = None
    last_lr: float | None = None
    samples_per_s: float | None = None
    data_wait: float | None = None
    mem_gb: float | None = None
    early_losses: list[tuple[int, float]] = field(default_factory=list)
    recent_losses: deque = field(default_factory=lambda: deque(maxlen=RECENT_POINTS))
    recent_data_wait: deque = field(default_factory=lambda: deque(maxlen=50))
    vals: list[dict[str, Any]] = field(default_factory=list)    # one per validation pass (small)
    baseline_val: float | None = None
    best_val: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_stop: dict[str, Any] | None = None
    best_path: str = ""
    message: str = ""

    @property
    def done(self) -> bool:
        return self.status in ("completed", "early_stopped", "stopped", "failed", "skipped")

    def steps_per_second(self) -> float | None:
        """Optimizer steps per second over this attempt, from the events' own clock."""
        if self.first_step_t is None or self.last_step_t is None or self.first_step is None:
            return None
        span = self.last_step_t - self.first_step_t
        steps = self.last_step - self.first_step
        return steps / span if span > 0 and steps > 0 else None

    def eta_s(self) -> float | None:
        rate = self.steps_per_second()
        if rate is None or not self.total_steps or self.done:
            return None
        return max(0.0, (self.total_steps - self.last_step) / rate)

    def fraction(self) -> float:
        if self.status in ("completed", "skipped"):
            return 1.0
        if not self.total_steps:
            return 0.0
        return min(1.0, self.last_step / self.total_steps)


class RunSummary:
    """Folds a run's events, one record at a time, into what the checks need.

    Tolerant by design: unknown events and missing or null fields are skipped,
    never raised, because a reader must survive a trainer newer than itself.
    """

    def __init__(self) -> None:
        self.run_id = ""
        self.preset = ""
        self.stages: dict[str, StageSummary] = {}
        self.stage_order: list[str] = []
        self.current_stage: str | None = None
        self.attempt = 0
        self.attempt_started: float | None = None   # t of the latest run_start
        self.world_size: int | None = None
        self.host = ""
        self.schema: int | None = None
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.records = 0
        self.unknown_events = 0
        self.errors: list[dict[str, Any]] = []
        self.logs: deque = deque(maxlen=50)
        self.stops: list[dict[str, Any]] = []
        self.run_end: dict[str, Any] | None = None
        self.gpu_latest: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self.gpu_util: deque = deque(maxlen=4000)          # (t, host, index, util)
        self.gpu_mem_share: deque = deque(maxlen=4000)     # (t, host, index, used/total)
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "run_start": self._on_run_start, "stage_start": self._on_stage_start, "step": self._on_step,
            "val": self._on_val, "gpu": self._on_gpu, "checkpoint": self._on_checkpoint,
            "early_stop": self._on_early_stop, "stop": self._on_stop, "stage_end": self._on_stage_end,
            "error": self._on_error, "log": self._on_log, "run_end": self._on_run_end, "eval": _ignore,
            "workers": self._on_workers,
        }

    # ---------------------------------------------------------------- entry points
    def add(self, rec: dict[str, Any]) -> None:
        self.records += 1
        t = finite_number(rec.get("t"))
        if t is not None:
            if self.first_t is None:
                self.first_t = t
            if self.last_t is None or t > self.last_t:
                self.last_t = t
        handler = self._handlers.get(rec.get("event"))  # type: ignore[arg-type]
        if handler is None:
            self.unknown_events += 1
            return
        try:
            handler(rec)
            self.folded(rec)
        except (TypeError, ValueError, KeyError, AttributeError):
            # A record of the right event with the wrong shape: count it, go on.
            self.unknown_events += 1

    def folded(self, rec: dict[str, Any]) -> None:
        """Called after each record is folded in; a reader that keeps more (the TUI's full
        curves, GPU histories, log pane) extends this instead of the private handlers."""

    def resumed(self, stage: str, step: int) -> None:
        """``stage`` resumed from ``step``: the fold has dropped the earlier attempts' points past
        it; a reader that keeps more drops its own here."""

    def add_gpu_reading(self, host: str, t: float, gpus: list[Any]) -> None:
        """GPU readings for the checks: a ``gpu`` record's, or ones sampled outside the events
        (the TUI's own NVML), which count as no record."""
        gpus = [g for g in gpus if isinstance(g, dict)]
        self.gpu_latest[host] = (t, gpus)
        for g in gpus:
            util = finite_number(g.get("util"))
            if util is not None:
                self.gpu_util.append((t, host, g.get("index"), util))
            used, total = finite_number(g.get("mem_used_mb")), finite_number(g.get("mem_total_mb"))
            if used is not None and total:
                self.gpu_mem_share.append((t, host, g.get("index"), used / total))

    def add_all(self, records: Iterable[dict[str, Any]]) -> "RunSummary":
        for rec in records:
            self.add(rec)
        return self

    def stage(self, name: str) -> StageSummary:
        st = self.stages.get(name)
        if st is None:
            st = self.stages[name] = StageSummary(name)
            self.stage_order.append(name)
        return st

    # ---------------------------------------------------------------- handlers
    def _stage_of(self, rec: dict[str, Any]) -> StageSummary | None:
        name = rec.get("stage") or self.current_stage
        return self.stage(str(name)) if name else None

    def _on_run_start(self, rec: dict[str, Any]) -> None:
        self.run_id = str(rec.get("run_id") or self.run_id)
        self.preset = str(rec.get("preset") or self.preset)
        self.attempt = int(rec.get("attempt") or 0)
        self.attempt_started = finite_number(rec.get("t"))
        self.world_size = rec.get("world_size") or self.world_size
        self.host = str(rec.get("host") or self.host)
        self.schema = rec.get("schema")
        self.run_end = None
        for name in rec.get("stages") or []:
            self.stage(str(name))

    def _on_stage_start(self, rec: dict[str, Any]) -> None:
        st = self.stage(str(rec["stage"]))
        self.current_stage = st.name
        attempt = int(rec.get("attempt") or 0)
        resumed_from = rec.get("resumed_from")
        if resumed_from is not None:
            # docs/events.md: drop the earlier attempts' points past the resume step.
            self._truncate(st, int(resumed_from))
            self.resumed(st.name, int(resumed_from))
        st.attempt = attempt
        st.status = "running"
        st.resumed_from = None if resumed_from is None else int(resumed_from)
        for key in ("epochs", "steps_per_epoch", "total_steps", "world_size", "batch_size",
                    "global_batch", "accumulation_steps"):
            if rec.get(key) is not None:
                setattr(st, key, int(rec[key]))
        st.lr0 = finite_number(rec.get("lr")) or st.lr0
        st.started_t = finite_number(rec.get("t"))
        st.ended_t = None
        st.first_step = st.first_step_t = None
        st.early_stop = None

    def _truncate(self, st: StageSummary, resumed_from: int) -> None:
        st.early_losses = [p for p in st.early_losses if p[0] <= resumed_from]
        kept = [p for p in st.recent_losses if p[0] <= resumed_from]
        st.recent_losses.clear()
        st.recent_losses.extend(kept)
        st.vals = [v for v in st.vals if v["step"] <= resumed_from]
        st.last_step = min(st.last_step, resumed_from)
        best = [v for v in st.vals if v["val_loss"] is not None]
        if best:
            top = min(best, key=lambda v: v["val_loss"])
            st.best_val, st.best_step, st.best_epoch = top["val_loss"], top["step"], top["epoch"]
        else:
            st.best_val = st.best_step = st.best_epoch = None

    def _on_step(self, rec: dict[str, Any]) -> None:
        st = self._stage_of(rec)
        if st is None:
            return
        step = int(rec["step"])
        t = finite_number(rec.get("t"))
        loss = finite_number(rec.get("loss"))
        if st.first_step is None:
            st.first_step, st.first_step_t = step, t
        st.last_step, st.last_step_t = step, t
        st.last_epoch = finite_number(rec.get("epoch")) or st.last_epoch
        st.last_loss = loss
        st.last_lr = finite_number(rec.get("lr"))
        if st.status == "pending":
            st.status = "running"
        sps = finite_number(rec.get("samples_per_s"))
        if sps is not None:
            st.samples_per_s = sps
        wait = finite_number(rec.get("data_wait"))
        if wait is not None:
            st.data_wait = wait
            st.recent_data_wait.append(wait)
        mem = finite_number(rec.get("mem_gb"))
        if mem is not None:
            st.mem_gb = mem
        if loss is not None:
            if len(st.early_losses) < RECENT_POINTS:
                st.early_losses.append((step, loss))
            st.recent_losses.append((step, loss))

    def _on_val(self, rec: dict[str, Any]) -> None:
        st = self._stage_of(rec)
        if st is None:
            return
        val = {"step": int(rec["step"]), "epoch": rec.get("epoch"), "val_loss": finite_number(rec.get("val_loss")),
               "improved": bool(rec.get("improved")), "baseline": bool(rec.get("baseline")),
               "bad_evals": rec.get("bad_evals"), "patience": rec.get("patience"), "t": finite_number(rec.get("t"))}
        st.vals.append(val)
        if val["baseline"] and val["val_loss"] is not None:
            st.baseline_val = val["val_loss"]
        if val["val_loss"] is not None and (st.best_val is None or val["val_loss"] < st.best_val):
            st.best_val, st.best_step, st.best_epoch = val["val_loss"], val["step"], val["epoch"]

    def _on_gpu(self, rec: dict[str, Any]) -> None:
        self.add_gpu_reading(str(rec.get("host") or "?"), finite_number(rec.get("t")) or 0.0, rec.get("gpus") or [])

    def _on_workers(self, rec: dict[str, Any]) -> None:
        """CPU readings of the workers: drawn by the TUI, judged by no check yet."""

    def _on_checkpoint(self, rec: dict[str, Any]) -> None:
        st = self._stage_of(rec)
        if st is not None:
            st.checkpoints[str(rec.get("kind"))] = {"step": rec.get("step"), "path": rec.get("path")}

    def _on_early_stop(self, rec: dict[str, Any]) -> None:
        st = self._stage_of(rec)
        if st is not None:
            st.early_stop = dict(rec)

    def _on_stop(self, rec: dict[str, Any]) -> None:
        self.stops.append(dict(rec))

    def _on_stage_end(self, rec: dict[str, Any]) -> None:
        st = self.stage(str(rec["stage"]))
        st.status = str(rec.get("status") or "completed")
        st.ended_t = finite_number(rec.get("t"))
        st.best_path = str(rec.get("best_path") or st.best_path)
        st.message = str(rec.get("message") or "")
        if isinstance(rec.get("step"), int) and rec["step"] > st.last_step:
            st.last_step = rec["step"]
        best = finite_number(rec.get("best_val_loss"))
        if best is not None and st.best_val is None:
            st.best_val = best

    def _on_error(self, rec: dict[str, Any]) -> None:
        self.errors.append(dict(rec))

    def _on_log(self, rec: dict[str, Any]) -> None:
        self.logs.append(dict(rec))

    def _on_run_end(self, rec: dict[str, Any]) -> None:
        self.run_end = dict(rec)

    # ---------------------------------------------------------------- derived
    @property
    def finished(self) -> bool:
        return self.run_end is not None

    def active_stage(self) -> StageSummary | None:
        """The stage running now, else the last one that did anything."""
        if self.current_stage and self.current_stage in self.stages:
            return self.stages[self.current_stage]
        for name in reversed(self.stage_order):
            if self.stages[name].status != "pending":
                return self.stages[name]
        return None

    def recent_gpu_utils(self, window_s: float = GPU_WINDOW_S) -> dict[tuple[str, Any], list[float]]:
        """Utilisation samples per (host, GPU) over the last ``window_s`` of GPU records."""
        if not self.gpu_util:
            return {}
        newest = self.gpu_util[-1][0]
        out: dict[tuple[str, Any], list[float]] = {}
        for t, host, index, util in reversed(self.gpu_util):
            if t < newest - window_s:
                break
            out.setdefault((host, index), []).append(util)
        return out


def _ignore(rec: dict[str, Any]) -> None:
    return None


def summarize(records: Iterable[dict[str, Any]]) -> RunSummary:
    return RunSummary().add_all(records)


def summarize_run(run: RunFolder) -> RunSummary:
    return summarize(read_events(run.events_path))


__all__ = ["GPU_WINDOW_S", "RECENT_POINTS", "RunSummary", "StageSummary", "finite_number", "summarize",
           "summarize_run"]
