"""The "during" and "after" lines of the guide's checklist, judged from a run.

Everything here is a pure function of what a run left behind: its events (folded
into a :class:`RunSummary`, which keeps only what the checks and the advisor
need, so a million-line file costs a few kilobytes) and its folder.  The TUI
subclasses :class:`RunSummary` to keep full curves as well, so one pass over the
events feeds the plots, these checks and the advisor alike.

Light module: no torch.  The one line that needs torch, "the model loads for
inference", is answered by ``kronos-train check --json --run RUN`` in a
subprocess; until that has run it reports ``pending``.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..events import read_events
from ..runfolder import RunFolder
from . import CheckResult

RECENT_POINTS = 200          # train-loss points kept at each end of a stage's curve
GPU_WINDOW_S = 120.0         # GPU utilisation is judged over the last two minutes
UTIL_TARGET = 80.0           # the guide: "GPU利用率 ... 应该保持在80%以上"
STALE_AFTER_S = 300.0        # no event for five minutes while alive: something hangs


def _num(value: Any) -> float | None:
    """A finite float, or None (events write NaN/inf as null).  On the hot path
    of reading a million step records, so it avoids isinstance chains."""
    cls = value.__class__
    if cls is float:
        return value if value - value == 0 else None      # false for NaN and inf
    if cls is int:
        return float(value)
    return None


# --------------------------------------------------------------------------- folding

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
        t = _num(rec.get("t"))
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
        except (TypeError, ValueError, KeyError, AttributeError):
            # A record of the right event with the wrong shape: count it, go on.
            self.unknown_events += 1

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
        self.attempt_started = _num(rec.get("t"))
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
        st.attempt = attempt
        st.status = "running"
        st.resumed_from = None if resumed_from is None else int(resumed_from)
        for key in ("epochs", "steps_per_epoch", "total_steps", "world_size", "batch_size",
                    "global_batch", "accumulation_steps"):
            if rec.get(key) is not None:
                setattr(st, key, int(rec[key]))
        st.lr0 = _num(rec.get("lr")) or st.lr0
        st.started_t = _num(rec.get("t"))
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
        t = _num(rec.get("t"))
        loss = _num(rec.get("loss"))
        if st.first_step is None:
            st.first_step, st.first_step_t = step, t
        st.last_step, st.last_step_t = step, t
        st.last_epoch = _num(rec.get("epoch")) or st.last_epoch
        st.last_loss = loss
        st.last_lr = _num(rec.get("lr"))
        if st.status == "pending":
            st.status = "running"
        sps = _num(rec.get("samples_per_s"))
        if sps is not None:
            st.samples_per_s = sps
        wait = _num(rec.get("data_wait"))
        if wait is not None:
            st.data_wait = wait
            st.recent_data_wait.append(wait)
        mem = _num(rec.get("mem_gb"))
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
        val = {"step": int(rec["step"]), "epoch": rec.get("epoch"), "val_loss": _num(rec.get("val_loss")),
               "improved": bool(rec.get("improved")), "baseline": bool(rec.get("baseline")),
               "bad_evals": rec.get("bad_evals"), "patience": rec.get("patience"), "t": _num(rec.get("t"))}
        st.vals.append(val)
        if val["baseline"] and val["val_loss"] is not None:
            st.baseline_val = val["val_loss"]
        if val["val_loss"] is not None and (st.best_val is None or val["val_loss"] < st.best_val):
            st.best_val, st.best_step, st.best_epoch = val["val_loss"], val["step"], val["epoch"]

    def _on_gpu(self, rec: dict[str, Any]) -> None:
        host = str(rec.get("host") or "?")
        t = _num(rec.get("t")) or 0.0
        gpus = [g for g in rec.get("gpus") or [] if isinstance(g, dict)]
        self.gpu_latest[host] = (t, gpus)
        for g in gpus:
            util = _num(g.get("util"))
            if util is not None:
                self.gpu_util.append((t, host, g.get("index"), util))
            used, total = _num(g.get("mem_used_mb")), _num(g.get("mem_total_mb"))
            if used is not None and total:
                self.gpu_mem_share.append((t, host, g.get("index"), used / total))

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
        st.ended_t = _num(rec.get("t"))
        st.best_path = str(rec.get("best_path") or st.best_path)
        st.message = str(rec.get("message") or "")
        if isinstance(rec.get("step"), int) and rec["step"] > st.last_step:
            st.last_step = rec["step"]
        best = _num(rec.get("best_val_loss"))
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


# --------------------------------------------------------------------------- during

def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.4g}"


def trend_of(points: list[float]) -> float | None:
    """Relative change from the first fifth to the last fifth of ``points``
    (negative = falling), scaled by the loss magnitude; None if too few."""
    if len(points) < 10:
        return None
    k = max(2, len(points) // 5)
    head, tail = statistics.fmean(points[:k]), statistics.fmean(points[-k:])
    scale = max(abs(head), abs(tail), 1e-8)
    return (tail - head) / scale


def check_loss_falling(summary: RunSummary) -> CheckResult:
    title = "Training loss falls"
    st = summary.active_stage()
    if st is None or len(st.early_losses) + len(st.recent_losses) < 10:
        return CheckResult("run.loss_falling", title, "pending", "fewer than 10 loss points so far", phase="during")
    # Compare the start of the curve with its recent end.
    head = [loss for _, loss in st.early_losses[:50]]
    tail = [loss for _, loss in list(st.recent_losses)[-50:]]
    first, last = statistics.fmean(head), statistics.fmean(tail)
    scale = max(abs(first), abs(last), 1e-8)
    change = (last - first) / scale
    detail = f"{st.name}: mean loss {_fmt(first)} at the start → {_fmt(last)} now ({change:+.1%})"
    if change < -0.01:
        return CheckResult("run.loss_falling", title, "ok", detail, phase="during", data={"change": change})
    return CheckResult("run.loss_falling", title, "warn", detail,
                       "if it stays flat: check the data, raise the learning rate a little (at most 2×); "
                       "if it rises: lower it 2–5×", phase="during", data={"change": change})


def check_val_falling(summary: RunSummary, patience: int | None = None) -> CheckResult:
    title = "Validation loss falls"
    st = summary.active_stage()
    vals = [v for v in (st.vals if st else []) if v["val_loss"] is not None]
    if st is None or len(vals) < 2:
        return CheckResult("run.val_falling", title, "pending", "needs two validation passes", phase="during")
    since_best = len(vals) - 1 - max(i for i, v in enumerate(vals) if v["val_loss"] == st.best_val)
    base = st.baseline_val if st.baseline_val is not None else vals[0]["val_loss"]
    detail = (f"{st.name}: best {_fmt(st.best_val)} at step {st.best_step} (start {_fmt(base)}); "
              f"last {_fmt(vals[-1]['val_loss'])}")
    limit = patience or 3
    if since_best == 0:
        return CheckResult("run.val_falling", title, "ok", detail, phase="during")
    status = "warn" if since_best >= min(2, limit) else "ok"
    return CheckResult("run.val_falling", title, status,
                       f"{detail}; no improvement for {since_best} evaluation(s)",
                       "the guide: lower the learning rate 2–5×, or stop early (see the advisor)" if status == "warn" else "",
                       phase="during", data={"since_best": since_best})


def check_gpu_utilisation(summary: RunSummary, window_s: float = GPU_WINDOW_S) -> CheckResult:
    title = "GPU utilisation above 80 %"
    per_gpu = summary.recent_gpu_utils(window_s)
    if not per_gpu:
        return CheckResult("run.gpu_util", title, "skip", "no GPU readings (CPU run, or no NVML on the node)",
                           phase="during")
    means = {key: statistics.fmean(v) for key, v in per_gpu.items()}
    items = [f"{host} GPU {index}: {mean:.0f} %" for (host, index), mean in sorted(means.items(), key=lambda kv: str(kv[0]))]
    overall = statistics.fmean(means.values())
    low = [k for k, m in means.items() if m < UTIL_TARGET]
    detail = f"mean {overall:.0f} % over the last {window_s:.0f} s on {len(means)} GPU(s)"
    if not low:
        return CheckResult("run.gpu_util", title, "ok", detail, phase="during", items=items)
    hint = "more data-loader workers (training.num_workers) or a larger batch; see the advisor"
    st = summary.active_stage()
    if st and st.data_wait is not None and st.data_wait > 0.2:
        hint = f"{st.data_wait:.0%} of step time waits for data: raise training.num_workers first"
    return CheckResult("run.gpu_util", title, "warn", f"{detail}; {len(low)} below 80 %", hint,
                       phase="during", items=items, data={"mean": overall})


def check_no_oom(summary: RunSummary) -> CheckResult:
    title = "No out-of-memory errors"
    ooms = [e for e in summary.errors if e.get("kind") == "oom"]
    others = [e for e in summary.errors if e.get("kind") != "oom"]
    if ooms:
        e = ooms[-1]
        remedy = e.get("remedy") or ["smaller batch_size with more accumulation_steps",
                                    "shorter lookback_window", "smaller max_context"]
        return CheckResult("run.no_oom", title, "error",
                           f"{e.get('stage') or 'run'}: {str(e.get('message', ''))[:200]}",
                           "; ".join(str(r) for r in remedy), phase="during", items=[str(r) for r in remedy])
    if others:
        e = others[-1]
        return CheckResult("run.no_oom", title, "warn", "no OOM, but another error: "
                           f"{e.get('kind')}: {str(e.get('message', ''))[:200]}",
                           "; ".join(str(r) for r in e.get("remedy") or []), phase="during")
    return CheckResult("run.no_oom", title, "ok", "no error recorded", phase="during")


def check_log_fresh(summary: RunSummary, *, now: float | None = None, alive: bool | None = None,
                    stale_after_s: float = STALE_AFTER_S) -> CheckResult:
    title = "The log is being written"
    if summary.last_t is None:
        return CheckResult("run.log_fresh", title, "pending", "no events yet", phase="during")
    if summary.finished:
        status = (summary.run_end or {}).get("status", "?")
        return CheckResult("run.log_fresh", title, "ok", f"the run ended ({status})", phase="during")
    now = time.time() if now is None else now
    age = max(0.0, now - summary.last_t)
    detail = f"last event {_age(age)} ago"
    if alive is False:
        return CheckResult("run.log_fresh", title, "error", f"{detail}; the supervisor is gone (interrupted)",
                           "resume the run (its last committed checkpoint is kept)", phase="during")
    if age > stale_after_s:
        return CheckResult("run.log_fresh", title, "warn", detail,
                           "no event for a while: a hung rank or an NCCL timeout? see stderr.log", phase="during")
    return CheckResult("run.log_fresh", title, "ok", detail, phase="during")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def during_checks(summary: RunSummary, *, now: float | None = None, alive: bool | None = None,
                  patience: int | None = None) -> list[CheckResult]:
    """The guide's "训练中" lines, in its order."""
    return [check_loss_falling(summary), check_val_falling(summary, patience), check_gpu_utilisation(summary),
            check_no_oom(summary), check_log_fresh(summary, now=now, alive=alive)]


# --------------------------------------------------------------------------- after

TRAINED = ("completed", "early_stopped", "stopped")


def check_models_saved(summary: RunSummary, run: RunFolder | None) -> CheckResult:
    title = "Model files saved"
    trained = [st for st in summary.stages.values() if st.status in TRAINED]
    if not trained:
        return CheckResult("run.models_saved", title, "pending", "no stage has finished yet", phase="after")
    found, missing = [], []
    for st in trained:
        folder = Path(st.best_path) if st.best_path else (run.checkpoint_dir(st.name, "best") if run and st.name in ("tokenizer", "basemodel") else None)
        if folder is not None and (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            found.append(f"{st.name}: {folder}")
        else:
            missing.append(f"{st.name}: {folder or 'no best/ folder recorded'}")
    if missing:
        return CheckResult("run.models_saved", title, "error", f"missing for {len(missing)} stage(s)",
                           "best/ needs config.json and model.safetensors; see stderr.log of the run",
                           phase="after", items=missing + found)
    return CheckResult("run.models_saved", title, "ok", f"{len(found)} model folder(s)", phase="after", items=found)


def check_val_beats_baseline(summary: RunSummary) -> CheckResult:
    title = "Validation loss better than before training"
    rows, worse = [], []
    for st in summary.stages.values():
        if st.best_val is None or st.baseline_val is None:
            continue
        gain = (st.baseline_val - st.best_val) / max(abs(st.baseline_val), 1e-12)
        rows.append(f"{st.name}: {_fmt(st.baseline_val)} → {_fmt(st.best_val)} ({-gain:+.1%})")
        if st.best_val >= st.baseline_val:
            worse.append(st.name)
    if not rows:
        return CheckResult("run.val_vs_baseline", title, "pending", "needs the baseline pass and one epoch",
                           phase="after")
    if worse:
        return CheckResult("run.val_vs_baseline", title, "warn", f"no gain for {', '.join(worse)}",
                           "fine-tuning did not beat the starting model: keep the pretrained one, or retry with a "
                           "much smaller learning rate (about 1e-5) and more epochs", phase="after", items=rows)
    return CheckResult("run.val_vs_baseline", title, "ok", "; ".join(rows), phase="after", items=rows)


def check_model_loads(model_check: list[CheckResult] | None) -> CheckResult:
    title = "The model loads for inference"
    if model_check is None:
        return CheckResult("run.model_loads", title, "pending", "not checked yet",
                           "run `kronos-train check --json --run RUN` (the checklist runs it for you)", phase="after")
    if model_check and all(r.status == "pending" for r in model_check):
        return CheckResult("run.model_loads", title, "pending", model_check[0].detail, model_check[0].hint,
                           phase="after")
    bad = [r for r in model_check if r.status == "error"]
    if bad:
        return CheckResult("run.model_loads", title, "error", bad[0].detail, bad[0].hint, phase="after",
                           items=[f"{r.title}: {r.detail}" for r in model_check])
    return CheckResult("run.model_loads", title, "ok", "; ".join(r.detail for r in model_check if r.detail)[:200]
                       or "loaded", phase="after", items=[f"{r.title}: {r.detail}" for r in model_check])


def after_checks(summary: RunSummary, run: RunFolder | None = None,
                 model_check: list[CheckResult] | None = None) -> list[CheckResult]:
    """The guide's "训练后" lines, in its order."""
    return [check_models_saved(summary, run), check_val_beats_baseline(summary), check_model_loads(model_check)]


def run_checks(run: RunFolder, *, now: float | None = None,
               model_check: list[CheckResult] | None = None) -> list[CheckResult]:
    """During and after lines of one run folder (reads its whole events file)."""
    summary = summarize_run(run)
    return during_checks(summary, now=now, alive=run.is_alive()) + after_checks(summary, run, model_check)


# --------------------------------------------------------------------------- model-load subprocess

def model_check_command(run: RunFolder) -> list[str]:
    """The torch-importing check (``evaluate.check_inference``: load the best/
    folders and forecast one window), run out of process so callers stay light."""
    return [sys.executable, "-m", "kronos_train.cli", "check", "--json", "--run", str(run.path)]


def parse_check_output(stdout: str) -> list[CheckResult]:
    """``kronos-train check --json`` prints a JSON list of CheckResult dicts."""
    start = stdout.find("[")
    data = json.loads(stdout[start:] if start >= 0 else stdout)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of check results")
    return [CheckResult.from_dict(item) for item in data if isinstance(item, dict)]


def run_model_check(run: RunFolder, timeout_s: float = 600.0) -> list[CheckResult]:
    """Run the subprocess and turn any failure into an error result (never raises)."""
    try:
        proc = subprocess.run(model_check_command(run), capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [CheckResult("run.model_loads", "The model loads for inference", "error", f"could not run the check: {exc}",
                            phase="after")]
    try:
        results = parse_check_output(proc.stdout)
        # The command may print every line of the run; keep the model-loading one(s).
        return [r for r in results if "load" in r.id] or results
    except ValueError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [CheckResult("run.model_loads", "The model loads for inference", "error",
                            f"`kronos-train check` exited {proc.returncode}: {' / '.join(tail)[:300]}", phase="after")]


__all__ = ["RunSummary", "StageSummary", "summarize", "summarize_run", "during_checks", "after_checks", "run_checks",
           "check_loss_falling", "check_val_falling", "check_gpu_utilisation", "check_no_oom", "check_log_fresh",
           "check_models_saved", "check_val_beats_baseline", "check_model_loads", "model_check_command",
           "parse_check_output", "run_model_check", "trend_of"]
