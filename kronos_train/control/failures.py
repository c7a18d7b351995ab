"""Why a stage failed, in words a user can act on.

A rank that raises writes ``failures/<stage>.attempt<k>.rank<r>.json`` before
it dies; the supervisor reads those files after torchrun returns, picks the
root cause (the first failure that is not a mere consequence of another rank
dying) and writes the ``error`` event.  A worker that died without Python
(SIGKILL by the host OOM killer, SIGABRT by the NCCL watchdog) leaves no file;
torchrun's "Root Cause" summary in ``stderr.log`` gives its exit code instead.

Light module: no torch.  torch's exception types are recognised by class name
(``OutOfMemoryError``, ``DistError`` and their subclasses), so the supervisor
and the TUI can import this without loading torch.
"""
from __future__ import annotations

import re
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .events import ERROR_KINDS, STAGES, is_number, is_whole
from .runfolder import RunFolder, read_json, write_json_atomic

# Kinds whose failure is usually a consequence of another rank's death.
SECONDARY_KINDS = ("peer",)


@dataclass
class Failure:
    kind: str                      # events.ERROR_KINDS, or "peer" (lost another rank) before reporting
    message: str
    remedy: list[str] = field(default_factory=list)
    rank: int | None = None
    exit_code: int | None = None
    stage: str | None = None
    attempt: int | None = None
    t: float = field(default_factory=time.time)
    traceback: str = ""

    def event_fields(self) -> dict[str, Any]:
        """Fields of the ``error`` event (schema: kind, message, remedy, rank, exit_code)."""
        kind = "nccl" if self.kind == "peer" else self.kind
        out: dict[str, Any] = {"kind": kind, "message": self.message}
        if self.remedy:
            out["remedy"] = self.remedy
        if self.rank is not None:
            out["rank"] = self.rank
        if self.exit_code is not None:
            out["exit_code"] = self.exit_code
        return out


# --------------------------------------------------------------------------- remedies

def oom_remedies(cfg: Any, on_gpu: bool = True) -> list[str]:
    """The guide's answers to Q1 (out of memory), in the order to try them."""
    t, d = cfg.training, cfg.data
    world = cfg.distributed.num_gpus * cfg.distributed.nodes
    b, a = t.batch_size, t.accumulation_steps
    remedies = []
    if on_gpu:
        remedies.append("export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before starting the run "
                        "(lets the allocator reuse fragmented memory; often enough on its own)")
    if b >= 2:
        half = b // 2
        remedies.append(
            f"halve training.batch_size and double training.accumulation_steps: {b} x {a} -> {half} x {a * 2}; "
            f"the effective batch stays {half} x {a * 2} x {world} process(es) = {half * a * 2 * world}"
            + ("" if half * 2 == b else f" (was {b * a * world}: batch_size {b} is odd)"))
    if t.precision == "fp32":
        remedies.append("set training.precision: bf16 (mixed precision roughly halves activation memory)")
    lookback, context = d.lookback_window, d.max_context
    remedies.append(f"shorten the window: data.lookback_window {lookback} -> {max(1, lookback // 2)}"
                    f" (and data.max_context {context} -> {max(1, context // 2)})")
    if not t.gradient_checkpointing:
        remedies.append("set training.gradient_checkpointing: true (recomputes activations in the backward pass)")
    return remedies


CHECKPOINT_REMEDIES = ["`kronos-train status RUN` says whether an older kept checkpoint still verifies; "
                       "`kronos-train resume RUN` falls back to it by itself",
                       "copy the run folder again from where it came from if it was copied (the checksums in "
                       "COMMITTED tell a damaged copy)",
                       "start a new run; the stage's best/ folder is a plain model folder you can start from"]


# --------------------------------------------------------------------------- classification

_PEER_PATTERNS = ("connection closed by peer", "connection reset by peer", "broken pipe", "socket closed",
                  "recv failed", "send failed", "connection refused")
_TIMEOUT_PATTERNS = ("timed out", "timeout", "watchdog")


def _raised_as(exc: BaseException, class_name: str) -> bool:
    """Whether ``exc`` is an instance of a class of that name (torch's own, without importing torch)."""
    return any(cls.__name__ == class_name for cls in type(exc).__mro__)


def classify_exception(exc: BaseException, cfg: Any | None = None) -> Failure:
    """A Failure for an exception raised inside a rank."""
    from ..config import ConfigError

    text = f"{type(exc).__name__}: {exc}".strip()
    first_line = text.splitlines()[0][:500] if text else type(exc).__name__
    lower = text.lower()
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    if _raised_as(exc, "OutOfMemoryError") or "out of memory" in lower:
        message = f"CUDA out of memory: {first_line}"
        return Failure("oom", message, oom_remedies(cfg) if cfg is not None else [], traceback=trace)
    if "can't allocate memory" in lower or isinstance(exc, MemoryError):
        message = f"host memory exhausted: {first_line}"
        return Failure("oom", message, oom_remedies(cfg, on_gpu=False) if cfg is not None else [], traceback=trace)
    if isinstance(exc, (ConfigError,)) or type(exc).__name__ in ("ModelLoadError", "LaunchError", "StageConfigError"):
        return Failure("config", str(exc) or first_line, traceback=trace)
    if type(exc).__name__ == "CheckpointError":
        return Failure("checkpoint", str(exc) or first_line, CHECKPOINT_REMEDIES, traceback=trace)
    if type(exc).__name__ == "DataError":
        return Failure("data", str(exc) or first_line, traceback=trace)
    if _raised_as(exc, "DistError") or "nccl" in lower or "gloo" in lower or "process group" in lower:
        if any(p in lower for p in _PEER_PATTERNS):
            return Failure("peer", f"lost contact with another rank (it probably failed first): {first_line}",
                           traceback=trace)
        if any(p in lower for p in _TIMEOUT_PATTERNS):
            timeout = getattr(getattr(cfg, "distributed", None), "timeout_minutes", None)
            return Failure("nccl", f"collective timed out{f' after {timeout} min' if timeout else ''}: {first_line}",
                           ["a rank is stuck or much slower than the others: look at the other ranks' errors "
                            "and at GPU health (nvidia-smi)",
                            "for a diagnosis rerun with NCCL_DEBUG=INFO TORCH_NCCL_DUMP_ON_TIMEOUT=1",
                            "raise distributed.timeout_minutes only if a step really takes that long"],
                           traceback=trace)
        return Failure("nccl", f"communication between ranks failed: {first_line}", traceback=trace)
    return Failure("other", first_line, traceback=trace)


def classify_exit(exit_code: int, rank: int | None = None) -> Failure:
    """A Failure for a worker that died without writing its own (signal or hard exit)."""
    if exit_code == -9:
        return Failure("worker", "a worker process was killed (SIGKILL, exit -9): most often the host ran out of "
                       "memory and the kernel's OOM killer chose it",
                       ["check `dmesg | grep -i oom` on the node",
                        "lower training.num_workers and training.batch_size, or run fewer processes per node"],
                       rank=rank, exit_code=exit_code)
    if exit_code == -6:
        return Failure("nccl", "a worker aborted (SIGABRT, exit -6): typically the NCCL watchdog tearing the "
                       "process down after a collective timed out",
                       ["look for 'Watchdog caught collective operation timeout' in stderr.log",
                        "rerun with NCCL_DEBUG=INFO to see which rank stalled"],
                       rank=rank, exit_code=exit_code)
    if exit_code in (-15, 143):
        return Failure("worker", "a worker was terminated (SIGTERM) from outside the run",
                       rank=rank, exit_code=exit_code)
    if exit_code < 0:
        return Failure("worker", f"a worker died from signal {-exit_code}", rank=rank, exit_code=exit_code)
    return Failure("worker", f"a worker exited with code {exit_code}; see stderr.log for its traceback",
                   rank=rank, exit_code=exit_code)


def hang_failure(run: RunFolder, silence_s: float, limit_s: float) -> Failure:
    """No rank reported progress for longer than the hang timeout (the supervisor's watchdog)."""
    return Failure("hang", f"no rank made progress for {silence_s / 60:.1f} min (hang timeout {limit_s / 60:.1f} min): "
                   "the stage's processes were ended; its last committed checkpoint stays loadable",
                   [f"resume with `kronos-train resume {run.run_id}`: it continues from the last committed "
                    "checkpoint",
                    "a stopped or traced process (SIGSTOP, Ctrl-Z, a debugger) or a swapping machine stalls "
                    "every rank: look for state T or D in `ps -o stat,pid,cmd`",
                    "on GPUs: check nvidia-smi for a stuck device; rerun with NCCL_DEBUG=INFO to see which "
                    "rank stalled",
                    "if steps really take this long (huge validation set, slow shared disk), raise "
                    "training.hang_timeout_minutes"])


_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(?P<rank>\d+).*?exitcode\s*:\s*(?P<code>-?\d+)", re.S)


def torchrun_root_cause(stderr_text: str) -> tuple[int | None, int | None]:
    """(rank, exit code) from torchrun's "Root Cause (first observed failure)" block."""
    matches = list(_ROOT_CAUSE.finditer(stderr_text))
    if not matches:
        return None, None
    last = matches[-1]
    return int(last["rank"]), int(last["code"])


# --------------------------------------------------------------------------- files

def failures_dir(run: RunFolder) -> Path:
    return run.path / "failures"


def write_failure(run: RunFolder, failure: Failure) -> Path:
    folder = failures_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{failure.stage}.attempt{failure.attempt}.rank{failure.rank}.json"
    write_json_atomic(path, asdict(failure))
    return path


def failure_from_json(data: dict[str, Any] | None) -> Failure | None:
    """A Failure from a failures/ file, fields of the wrong type left at their defaults;
    None when it has no usable kind and message."""
    if not data or not isinstance(data.get("kind"), str) or not isinstance(data.get("message"), str):
        return None
    failure = Failure(data["kind"][:40], data["message"][:4000])
    remedy = data.get("remedy")
    if isinstance(remedy, list) and all(isinstance(r, str) for r in remedy):
        failure.remedy = remedy[:20]
    for name in ("rank", "exit_code", "attempt"):
        if is_whole(data.get(name)):
            setattr(failure, name, data[name])
    if data.get("stage") in STAGES:
        failure.stage = data["stage"]
    if is_number(data.get("t")):
        failure.t = float(data["t"])
    if isinstance(data.get("traceback"), str):
        failure.traceback = data["traceback"][-4000:]
    if failure.kind not in ERROR_KINDS and failure.kind not in SECONDARY_KINDS:
        failure.kind = "other"
    return failure


def read_failures(run: RunFolder, stage: str, attempt: int) -> list[Failure]:
    found = (failure_from_json(read_json(path))
             for path in sorted(failures_dir(run).glob(f"{stage}.attempt{attempt}.rank*.json")))
    return [f for f in found if f is not None]


def root_cause(failures: list[Failure]) -> Failure | None:
    """The failure to report: the earliest primary one, else the earliest of all."""
    if not failures:
        return None
    primary = [f for f in failures if f.kind not in SECONDARY_KINDS]
    return min(primary or failures, key=lambda f: f.t)
