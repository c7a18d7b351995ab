"""The training loop of one stage, the same for the tokenizer and the basemodel.

    baseline validation (step 0)                       -> val event, best/
    for each epoch:
        for each optimizer step:
            accumulation_steps micro-batches, no all-reduce until the last
            unscale, clip, optimizer step, LR schedule step
            every log_interval steps: one all-reduce of the window's sums -> step event
            poll control requests (one all-reduce)      -> early stop / stop / abort
            every checkpoint_every_steps steps: last/
        validation                                       -> val event, best/ when improved
        last/; early stopping decided by rank 0, broadcast

Exact resume (CPU): a checkpoint is taken only between optimizer steps and
holds the step, the batch position in the epoch (the sampler recomputes the
epoch's order from (seed, epoch) and skips what was done), every rank's RNG
states, and the sums of the open logging window.  Step records are written
at global steps that are multiples of ``log_interval`` (and at the end of a
stage), so the loss logged at a step never depends on where the process
started: a run stopped or killed and resumed logs the very same numbers.
"""
from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..config import KronosConfig, config_hash, to_dict
from ..control.events import SCHEMA_VERSION, TIME_BUDGET_SOURCE
from ..control.runfolder import RunFolder
from . import checkpoint
from .control import StopPoller
from .distributed import DistEnv
from .early_stopping import EarlyStopping
from ..control.outcome import ProgressReporter
from .schedules import LRSchedule

TrainLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]
ValLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


class StageConfigError(ValueError):
    """The stage cannot run as configured (reported as an ``error`` of kind config)."""


def optimizer_steps_per_epoch(sampler: Any, accumulation: int) -> int:
    """Every rank draws the same number of micro-batches; a tail that fills no whole step is dropped."""
    return sampler.num_batches(0) // accumulation


@dataclass
class Stage:
    """Everything one stage's loop needs; built by stages.py."""
    name: str
    cfg: KronosConfig
    run: RunFolder
    attempt: int
    dist: DistEnv
    model: torch.nn.Module            # what forward/backward go through (DDP-wrapped when distributed)
    raw_model: torch.nn.Module        # the bare network: validated and saved
    train_loss: TrainLoss
    val_loss: ValLoss                 # per-sample losses [B]
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler
    train_set: Any                    # kronos_train.data.WindowSet
    val_set: Any
    sampler: Any                      # kronos_train.data.EpochSampler
    val_sampler: Any
    epochs: int
    peak_lr: float
    grad_clip: float
    writer: Any                       # EventWriter on rank 0, NullWriter elsewhere
    extra_state: dict[str, Any] = field(default_factory=dict)   # e.g. the tokenizer the basemodel uses
    deadline: float | None = None     # time.time() at which the attempt's time budget ends

    @property
    def accumulation(self) -> int:
        return self.cfg.training.accumulation_steps

    @property
    def steps_per_epoch(self) -> int:
        return optimizer_steps_per_epoch(self.sampler, self.accumulation)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def global_batch(self) -> int:
        return self.cfg.training.batch_size * self.dist.world_size * self.accumulation

    def autocast(self) -> contextlib.AbstractContextManager:
        precision = self.cfg.training.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.dist.device.type, dtype=dtype)


@dataclass
class Progress:
    step: int = 0              # optimizer steps done, over the whole stage
    epoch: int = 0             # epochs completed
    batch_in_epoch: int = 0    # micro-batches of the current epoch already used
    elapsed_s: float = 0.0     # training time of earlier attempts


# --------------------------------------------------------------------------- data feed

class Prefetcher:
    """Fetches the next batches in a background thread while the model computes.

    A window is an array slice, so one thread keeps up; ``wait_s`` is the time
    the loop spent blocked on it (the ``data_wait`` share of step records).
    On CUDA the batches are pinned, and the next one, when ready, is already
    copied to the GPU on a side stream while the current step runs, so a step
    does not wait for its host-to-device copy.
    """

    def __init__(self, windows: Any, batches: list[np.ndarray], device: torch.device, depth: int):
        self.windows, self.batches, self.device = windows, batches, device
        self.pin = device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(device) if self.pin else None
        self.queue: queue.Queue = queue.Queue(maxsize=max(2, depth))
        self.wait_s = 0.0
        self.remaining = len(batches)      # batches not yet taken off the queue
        self.staged: Any = None            # the next batch (or error), taken ahead of its step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self) -> None:
        try:
            for idx in self.batches:
                x, stamp = self.windows.get_batch(idx)
                x, stamp = torch.from_numpy(x), torch.from_numpy(stamp)
                if self.pin:
                    x, stamp = x.pin_memory(), stamp.pin_memory()
                if not self._put((x, stamp)):
                    return
        except BaseException as exc:   # handed to the loop, which raises it
            self._put(exc)

    def _take(self, wait: bool) -> Any:
        """The next queue item with its copy to the device started (not awaited): a batch, the
        producer's exception, or None when ``wait`` is false and nothing is ready yet."""
        started = time.perf_counter()
        try:
            item = self.queue.get(block=wait)
        except queue.Empty:
            return None
        self.wait_s += time.perf_counter() - started
        self.remaining -= 1
        if isinstance(item, BaseException):
            return item
        with torch.cuda.stream(self.copy_stream) if self.copy_stream is not None else contextlib.nullcontext():
            return tuple(t.to(self.device, non_blocking=True) for t in item)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.staged if self.staged is not None else self._take(wait=True)
        self.staged = None
        if isinstance(batch, BaseException):
            raise batch
        if self.copy_stream is not None:
            # The compute stream waits for the copy; the caching allocator must not
            # reuse the tensors' memory before the compute stream is done with them.
            compute = torch.cuda.current_stream(self.device)
            compute.wait_stream(self.copy_stream)
            for tensor in batch:
                tensor.record_stream(compute)
        # Stage the following batch only if it is ready: waiting for it here would
        # hold back this step's kernels (the wait belongs to the next step).
        if self.remaining:
            self.staged = self._take(wait=False)
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- logging window

class LogWindow:
    """Sums over the optimizer steps since the last step record.

    The sums live on the device (no sync per step) and go into checkpoints, so
    a resumed run completes the same window.  Timing is per process only.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.micro_batches = 0
        self.started = time.perf_counter()
        self.data_wait_s = 0.0
        self.lr = math.nan           # the learning rate of the window's last step

    def add(self, values: dict[str, torch.Tensor], micro_batches: int, lr: float) -> None:
        for key, value in values.items():
            value = value.detach().to(self.device, torch.float64)
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.steps += 1
        self.micro_batches += micro_batches
        self.lr = lr

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "steps": self.steps,
                "micro_batches": self.micro_batches, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = {k: v.to(self.device) for k, v in state["sums"].items()}
        self.steps, self.micro_batches = int(state["steps"]), int(state["micro_batches"])
        self.lr = float(state["lr"])


def _number(value: float) -> float | None:
    """Losses are written in full precision; NaN and infinity become null."""
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------- steps

def train_step(s: Stage, feed: Prefetcher) -> tuple[dict[str, torch.Tensor], float]:
    """One optimizer step over ``accumulation_steps`` micro-batches (real accumulation).

    Returns the step's mean loss, its parts and the gradient norm (before
    clipping) as device tensors, and the learning rate the step used.
    """
    totals: dict[str, torch.Tensor] = {}
    for micro in range(s.accumulation):
        x, stamp = feed.next()
        last = micro == s.accumulation - 1
        # Gradients are all-reduced once, on the last micro-batch of the step.
        sync = contextlib.nullcontext() if last or not hasattr(s.model, "no_sync") else s.model.no_sync()
        with sync:
            with s.autocast():
                loss, parts = s.train_loss(s.model, x, stamp)
            s.scaler.scale(loss / s.accumulation).backward()
        for key, value in {"loss": loss.detach(), **parts}.items():
            totals[key] = totals[key] + value.float() if key in totals else value.float()
    s.scaler.unscale_(s.optimizer)
    max_norm = s.grad_clip if s.grad_clip > 0 else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(s.raw_model.parameters(), max_norm)
    lr = s.schedule.lr
    s.scaler.step(s.optimizer)
    s.scaler.update()
    s.optimizer.zero_grad(set_to_none=True)
    s.schedule.after_step()
    means = {key: value / s.accumulation for key, value in totals.items()}
    return {**means, "grad_norm": grad_norm.detach()}, lr


@torch.no_grad()
def validate(s: Stage, beat: Callable[[], None] = lambda: None) -> float:
    """Sample-weighted mean of the per-sample validation loss over every rank's share.

    The same windows every pass (epoch 0 of the validation sampler) and, for the
    predictor's sampled s1, a generator seeded the same way every pass: the
    validation loss is a deterministic function of the weights.
    """
    s.raw_model.train(False)
    generator = torch.Generator(device=s.dist.device)
    generator.manual_seed(s.cfg.training.seed * 1000 + 17 + s.dist.rank)
    totals = torch.zeros(2, dtype=torch.float64, device=s.dist.device)
    for idx in s.val_sampler.batches(0):
        x, stamp = s.val_set.get_batch(idx)
        x = torch.from_numpy(x).to(s.dist.device)
        stamp = torch.from_numpy(stamp).to(s.dist.device)
        with s.autocast():
            per_sample = s.val_loss(s.raw_model, x, stamp, generator)
        totals[0] += per_sample.double().sum()
        totals[1] += per_sample.numel()
        beat()                                   # a long validation pass is progress, not a hang
    s.dist.all_reduce_sum(totals)
    s.raw_model.train()
    return float(totals[0] / totals[1]) if totals[1] > 0 else math.nan


# --------------------------------------------------------------------------- the stage

class StageRunner:
    """Runs one stage from its start or its last checkpoint; returns the stage_end status."""

    def __init__(self, s: Stage):
        self.s = s
        self.progress = Progress()
        es = s.cfg.training.early_stopping
        self.early = EarlyStopping(es.patience, es.min_delta, es.enabled)
        self.window = LogWindow(s.dist.device)
        self.poller = StopPoller(s.run, s.name, s.dist, s.deadline)
        self.started = time.time()
        self.resumed_from: int | None = None
        self.has_val = s.val_sampler.num_batches(0) > 0
        self.ending: str | None = None        # set while the stage saves on its way out (early stop)
        self.beacon = ProgressReporter(s.run, s.name, s.attempt, s.dist.rank)   # for the hang watchdog
        self.outcome: dict[str, Any] = {}     # how the stage ended: the result file's content

    # ------------------------------------------------------------ state
    def train_state(self) -> dict[str, Any]:
        s, p = self.s, self.progress
        return {
            "schema": SCHEMA_VERSION, "stage": s.name, "attempt": s.attempt,
            "step": p.step, "epoch": p.epoch, "batch_in_epoch": p.batch_in_epoch,
            "steps_per_epoch": s.steps_per_epoch, "total_steps": s.total_steps, "epochs": s.epochs,
            "world_size": s.dist.world_size, "batch_size": s.cfg.training.batch_size,
            "accumulation_steps": s.accumulation, "global_batch": s.global_batch,
            "config_hash": config_hash(s.cfg), "config": to_dict(s.cfg),
            "early_stopping": self.early.state_dict(), "elapsed_s": round(self.elapsed(), 3),
            "torch": torch.__version__, "ending": self.ending, **s.extra_state,
        }

    def trainer_state(self) -> dict[str, Any]:
        return {"optimizer": self.s.optimizer.state_dict(), "schedule": self.s.schedule.state_dict(),
                "scaler": self.s.scaler.state_dict()}

    def restore(self, ckpt: checkpoint.LastCheckpoint) -> None:
        s, ts = self.s, ckpt.train_state
        for key, now in (("world_size", s.dist.world_size), ("global_batch", s.global_batch),
                         ("steps_per_epoch", s.steps_per_epoch), ("epochs", s.epochs)):
            if ts.get(key) != now:
                raise StageConfigError(
                    f"{ckpt.path}: the checkpoint was taken with {key} = {ts.get(key)}, this stage has {now}; "
                    "an exact resume needs the same value (start a new run to change it)")
        try:
            s.optimizer.load_state_dict(ckpt.trainer_state["optimizer"])
            s.schedule.load_state_dict(ckpt.trainer_state["schedule"])
            s.scaler.load_state_dict(ckpt.trainer_state["scaler"])
            self.window.load_state_dict(ckpt.rank_state["window"])
            self.early.load_state_dict(ts["early_stopping"])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as exc:
            # Verified files that still do not fit this stage: written by something else.
            raise checkpoint.CheckpointError(f"{ckpt.path}: the trainer state does not fit this stage "
                                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
        self.progress = Progress(int(ts["step"]), int(ts["epoch"]), int(ts["batch_in_epoch"]),
                                 float(ts.get("elapsed_s", 0.0)))
        self.resumed_from = self.progress.step
        self.ending = ts.get("ending")
        checkpoint.restore_rng(ckpt.rank_state["rng"])   # last: building the models consumed random numbers

    def elapsed(self) -> float:
        return self.progress.elapsed_s + (time.time() - self.started)

    # ------------------------------------------------------------ events
    def emit(self, event: str, **fields: Any) -> None:
        self.s.writer.emit(event, **fields)

    def say(self, text: str) -> None:
        if self.s.dist.is_main:
            print(f"[{self.s.name}] {text}", flush=True)

    def emit_stage_start(self) -> None:
        s = self.s
        params = sum(p.numel() for p in s.raw_model.parameters() if p.requires_grad)
        self.emit("stage_start", epochs=s.epochs, steps_per_epoch=s.steps_per_epoch, total_steps=s.total_steps,
                  world_size=s.dist.world_size, batch_size=s.cfg.training.batch_size, global_batch=s.global_batch,
                  accumulation_steps=s.accumulation, resumed_from=self.resumed_from, params=params,
                  train_windows=s.sampler.samples_drawn, val_windows=s.val_sampler.samples_drawn,
                  precision=s.cfg.training.precision, compile=s.cfg.training.compile,
                  device=str(s.dist.device), lr=s.peak_lr)
        where = f"resumed at step {self.resumed_from}" if self.resumed_from is not None else "from the start"
        self.say(f"{s.epochs} epochs x {s.steps_per_epoch} steps, global batch {s.global_batch}, "
                 f"{s.dist.world_size} process(es) on {s.dist.device}, {params:,} parameters, {where}")

    def log_window(self) -> None:
        """The step record for the open window (one all-reduce of its sums)."""
        s, w = self.s, self.window
        if w.steps == 0:
            return
        keys = sorted(k for k in w.sums if k != "grad_norm")
        stacked = torch.stack([w.sums[k] for k in keys])
        s.dist.all_reduce_sum(stacked)
        means = {k: float(v) / (w.steps * s.dist.world_size) for k, v in zip(keys, stacked.tolist())}
        wall = max(time.perf_counter() - w.started, 1e-9)
        samples = w.micro_batches * s.cfg.training.batch_size * s.dist.world_size
        fields: dict[str, Any] = {
            "step": self.progress.step, "epoch": round(self.progress.step / s.steps_per_epoch, 4),
            "loss": _number(means.pop("loss")), "lr": w.lr,
            "parts": {k: _number(v) for k, v in means.items()},
            "grad_norm": _number(float(w.sums["grad_norm"]) / w.steps),
            "samples_per_s": round(samples / wall, 2), "data_wait": round(min(1.0, w.data_wait_s / wall), 4),
            "step_time_s": round(wall / w.steps, 5), "elapsed_s": round(self.elapsed(), 2),
        }
        if s.dist.device.type == "cuda":
            fields["mem_gb"] = round(torch.cuda.max_memory_allocated(s.dist.device) / 1e9, 3)
        self.emit("step", **fields)
        self.say(f"step {self.progress.step}/{s.total_steps} loss {fields['loss']} lr {fields['lr']:.3g} "
                 f"{fields['samples_per_s']:.0f} samples/s data wait {fields['data_wait']:.0%}")
        w.reset()

    # ------------------------------------------------------------ checkpoints
    def save_last(self) -> None:
        started = time.time()
        self.beacon.beat()
        path = checkpoint.save_last(self.s.run, self.s.name, self.s.dist, model=self.s.raw_model,
                                    trainer_state=self.trainer_state(), train_state=self.train_state(),
                                    rank_state={"window": self.window.state_dict()},
                                    keep=self.s.cfg.checkpoint.keep_last)
        self.emit("checkpoint", step=self.progress.step, kind="last", path=str(path), epoch=self.progress.epoch,
                  duration_s=round(time.time() - started, 3))
        self.beacon.beat()

    def save_best(self) -> None:
        if not self.s.dist.is_main:
            return
        started = time.time()
        path = checkpoint.save_best(self.s.run, self.s.name, self.s.raw_model, self.progress.step)
        self.emit("checkpoint", step=self.progress.step, kind="best", path=str(path), epoch=self.progress.epoch,
                  duration_s=round(time.time() - started, 3))

    # ------------------------------------------------------------ validation
    def evaluate(self, baseline: bool = False) -> bool:
        """One validation pass; True when early stopping says stop (same answer on all ranks)."""
        s, p = self.s, self.progress
        if not self.has_val:                       # no validation windows: the latest model is the best
            self.save_best()
            return False
        started = time.time()
        val_loss = validate(s, self.beacon.beat)
        improved = bool(s.dist.broadcast_int(int(self.early.update(val_loss, p.step, p.epoch))))
        s.schedule.after_validation(val_loss)
        self.emit("val", step=p.step, epoch=p.epoch, val_loss=_number(val_loss),
                  best_val_loss=self.early.best_or_none, improved=improved, baseline=baseline,
                  bad_evals=self.early.bad_evals, patience=self.early.patience,
                  duration_s=round(time.time() - started, 3))
        self.say(f"{'baseline ' if baseline else ''}val loss {val_loss:.6g} (best {self.early.best:.6g}"
                 f"{', improved' if improved else f', {self.early.bad_evals} without progress'})")
        if improved:
            self.save_best()
        return bool(s.dist.broadcast_int(int(self.early.should_stop)))

    # ------------------------------------------------------------ endings
    def end(self, status: str, message: str = "") -> str:
        fields: dict[str, Any] = {"status": status, "best_val_loss": self.early.best_or_none,
                                  "step": self.progress.step, "duration_s": round(time.time() - self.started, 3)}
        if self.s.run.checkpoint_dir(self.s.name, "best").is_dir():
            fields["best_path"] = str(self.s.run.checkpoint_dir(self.s.name, "best"))
        if message:
            fields["message"] = message
        self.outcome = {**fields, "source": self.poller.source}
        self.emit("stage_end", **fields)
        self.say(f"{status}{': ' + message if message else ''}")
        return status

    def act_on_request(self, action: str) -> str:
        p = self.progress
        self.emit("stop", kind=action, step=p.step, source=self.poller.source or "request")
        if action == "abort":
            return self.end("stopped", "aborted on request; the last committed checkpoint stays loadable")
        if action == "stop":
            self.save_last()
            if self.s.dist.is_main:             # honoured: readers must stop showing it as pending
                self.s.run.clear_request("stop")
            if self.poller.source == TIME_BUDGET_SOURCE:
                minutes = self.s.cfg.training.time_budget_minutes
                return self.end("stopped", f"time budget of {minutes:g} min reached at step {p.step}; resumable")
            return self.end("stopped", f"stopped on request at step {p.step}; resumable")
        self.log_window()                           # early stop: the stage is over, flush its last points
        self.ending = "early_stop_request"          # a kill before stage_end must not revive the stage
        self.save_last()
        if self.s.dist.is_main:
            self.s.run.clear_request("early_stop")
        return self.early_stop_on_request()

    def early_stop_on_request(self) -> str:
        p = self.progress
        self.emit("early_stop", step=p.step, reason="request", patience=self.early.patience,
                  bad_evals=self.early.bad_evals, best_val_loss=self.early.best_or_none)
        return self.end("early_stopped", f"early stop requested at step {p.step}")

    def early_stop_on_patience(self) -> str:
        self.log_window()
        self.emit("early_stop", step=self.progress.step, reason="patience", patience=self.early.patience,
                  bad_evals=self.early.bad_evals, best_val_loss=self.early.best_or_none)
        return self.end("early_stopped", f"no improvement in {self.early.bad_evals} validation passes")

    # ------------------------------------------------------------ the loop
    def run(self, ckpt: checkpoint.LastCheckpoint | None) -> str:
        s = self.s
        if s.steps_per_epoch < 1:
            raise StageConfigError(
                f"{s.sampler.samples_drawn} training windows make no full optimizer step of global batch "
                f"{s.global_batch} (batch_size x processes x accumulation_steps): lower training.batch_size or "
                "training.accumulation_steps, or use more data")
        if ckpt is not None:
            self.restore(ckpt)
        p = self.progress
        self.emit_stage_start()
        self.beacon.beat(p.step)                    # arms the supervisor's hang watchdog
        if self.ending == "early_stop_request":     # killed while ending early: finish the ending
            return self.early_stop_on_request()
        if ckpt is not None and self.early.should_stop:
            return self.early_stop_on_patience()
        if ckpt is None and self.evaluate(baseline=True):
            return self.early_stop_on_patience()
        every = s.cfg.training.checkpoint_every_steps
        log_interval = s.cfg.training.log_interval
        while p.epoch < s.epochs:
            micro_total = s.steps_per_epoch * s.accumulation
            batches = s.sampler.batches(p.epoch, start_batch=p.batch_in_epoch)[: micro_total - p.batch_in_epoch]
            feed = Prefetcher(s.train_set, batches, s.dist.device, depth=s.cfg.training.num_workers)
            try:
                for _ in range(len(batches) // s.accumulation):
                    wait_before = feed.wait_s
                    values, lr = train_step(s, feed)
                    p.step += 1
                    p.batch_in_epoch += s.accumulation
                    self.beacon.beat(p.step)
                    self.window.add(values, s.accumulation, lr)
                    self.window.data_wait_s += feed.wait_s - wait_before
                    if p.step % log_interval == 0:
                        self.log_window()
                    action = self.poller.poll(p.step)
                    if action is not None:
                        return self.act_on_request(action)
                    if every and p.step % every == 0 and p.batch_in_epoch < micro_total:
                        self.save_last()
            finally:
                feed.close()
            p.epoch += 1
            p.batch_in_epoch = 0
            stop = self.evaluate()
            self.save_last()
            if stop:
                return self.early_stop_on_patience()
        self.log_window()
        return self.end("completed")
