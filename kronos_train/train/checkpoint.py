"""``checkpoints/<stage>/{last,best}/``: what an exact resume needs, committed atomically.

``best/`` is the official model folder (config.json, model.safetensors,
README.md) plus the commit marker.  ``last/`` is the same model folder plus

- ``trainer_state.{safetensors,json}``: optimizer, LR schedule, GradScaler;
- ``train_state.json``: step, epoch, batch position in the epoch, early-stopping
  state, elapsed time, and what the checkpoint was taken under (config and its
  hash, world size, global batch, the tokenizer the basemodel stage used);
- ``rank_state_<rank>.{safetensors,json}``, one pair per rank: Python, NumPy, torch (and
  CUDA) RNG states and the rank's sums of the open logging window (each rank's
  losses differ until reduced);
- ``COMMITTED``, written last, listing every file with its size and SHA-256 (see commit.py).

Nothing here is a pickle: tensors are safetensors, the rest JSON (statefile.py),
so loading a checkpoint someone else wrote runs no code.  Every rank writes its
own rank files; rank 0 writes the rest and commits after a barrier, so the
marker exists only once every rank's file is on disk.  Saves happen only at
optimizer-step boundaries (never inside gradient accumulation).  Before a
resume rank 0 verifies the checksums and, when ``last/`` fails, falls back to
the newest kept earlier commit that verifies (``checkpoint.keep_last``).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import save_pretrained
from ..control.runfolder import COMMIT_MARKER, RunFolder
from ..control.commit import (CheckpointError, aside_dir, aside_path, commit_dir, kept_folders, marker_step, newest_verified,
                              recover, refuse_old_format)
from .distributed import DistEnv
from .statefile import load_state, save_state

TRAIN_STATE = "train_state.json"
TRAINER_STATE = "trainer_state"
MODEL_FILES = ("config.json", "model.safetensors", "README.md")
MAX_TRAIN_STATE_BYTES = 16 * 1024 * 1024


def rank_file(rank: int) -> str:
    """The stem of one rank's state files (``.safetensors`` + ``.json``)."""
    return f"rank_state_{rank}"


def capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@dataclass
class LastCheckpoint:
    path: Path
    train_state: dict[str, Any]
    trainer_state: dict[str, Any]
    rank_state: dict[str, Any]        # {"rng": ..., "window": ...} of this rank
    notes: list[str] = field(default_factory=list)   # e.g. a fallback to an older commit, for the log


def save_last(run: RunFolder, stage: str, dist: DistEnv, *, model: torch.nn.Module, trainer_state: dict[str, Any],
              train_state: dict[str, Any], rank_state: dict[str, Any], keep: int = 1) -> Path:
    """Collective: every rank calls it at the same step.  ``keep``: committed ``last/``
    folders to keep, this one included (``checkpoint.keep_last``)."""
    final = run.checkpoint_dir(stage, "last")
    step = int(train_state["step"])
    tmp = aside_path(final.parent, "last", step)
    if dist.is_main:
        aside_dir(final.parent, "last", step)
    dist.barrier()                                   # the staging folder exists for everyone
    save_state({**rank_state, "rng": capture_rng()}, tmp, rank_file(dist.rank))
    if dist.is_main:
        save_pretrained(model, tmp)
        save_state(trainer_state, tmp, TRAINER_STATE)
        _write_json(train_state, tmp / TRAIN_STATE)
    dist.barrier()                                   # every rank's file is written
    if dist.is_main:
        commit_dir(tmp, final, step, keep=keep)
    return final


def save_best(run: RunFolder, stage: str, model: torch.nn.Module, step: int) -> Path:
    """Rank 0 only: the official model folder, committed like ``last/``."""
    final = run.checkpoint_dir(stage, "best")
    tmp = aside_dir(final.parent, "best", step)
    save_pretrained(model, tmp)
    return commit_dir(tmp, final, step)


def recover_stage(run: RunFolder, stage: str) -> None:
    """Rank 0, before anyone loads: finish or roll back a commit a kill interrupted."""
    parent = run.checkpoint_dir(stage, "last").parent
    if parent.is_dir():
        recover(parent, "last")
        recover(parent, "best")


def settle_on_verified(run: RunFolder, stage: str) -> list[str]:
    """Rank 0: leave at ``last/`` the newest commit that verifies; the notes say what was passed over.

    A damaged ``last/`` is moved to ``.last.damaged-<step>/`` (kept for inspection) and the
    kept commit renamed into its place, so every rank then loads ``last/``.
    """
    final = run.checkpoint_dir(stage, "last")
    parent = final.parent
    if not (final / COMMIT_MARKER).is_file() and not kept_folders(parent, "last"):
        return []                                    # nothing committed: start fresh
    if final.is_dir():
        refuse_old_format(final)
    chosen, problems = newest_verified(parent, "last")
    if chosen is None:
        raise CheckpointError(
            f"no committed {stage} checkpoint verifies:\n  " + "\n  ".join(problems) + "\nRemove "
            f"{parent} to train the stage from its beginning, or start a new run")
    if chosen == final:
        return []
    if final.exists():
        os.replace(final, parent / f".last.damaged-{marker_step(final)}")
    os.replace(chosen, final)
    return [f"{stage}: the newest checkpoint failed verification ({'; '.join(problems)}); resuming from the "
            f"verified checkpoint of step {marker_step(final)} instead, the damaged one is kept aside"]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def read_train_state(path: Path) -> dict[str, Any]:
    """``train_state.json`` checked for what a resume uses; CheckpointError naming the file."""
    try:
        if path.stat().st_size > MAX_TRAIN_STATE_BYTES:
            raise CheckpointError(f"{path}: {path.stat().st_size} bytes, larger than any train state")
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not readable JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(state).__name__}")
    bad = [key for key in ("step", "epoch", "batch_in_epoch") if not _whole(state.get(key))]
    if not isinstance(state.get("early_stopping"), dict):
        bad.append("early_stopping")
    if not isinstance(state.get("elapsed_s", 0.0), (int, float)):
        bad.append("elapsed_s")
    if bad:
        raise CheckpointError(f"{path}: missing or malformed {', '.join(bad)}; the checkpoint is not usable")
    return state


def load_last(run: RunFolder, stage: str, dist: DistEnv) -> LastCheckpoint | None:
    """This rank's view of the last committed, verified checkpoint, or None to start fresh."""
    notes: list[str] = []
    if dist.is_main:
        recover_stage(run, stage)
        notes = settle_on_verified(run, stage)
    dist.barrier()
    path = run.checkpoint_dir(stage, "last")
    if not (path / COMMIT_MARKER).is_file():
        return None
    train_state = read_train_state(path / TRAIN_STATE)
    if not (path / f"{rank_file(dist.rank)}.json").is_file():
        raise CheckpointError(f"{path / rank_file(dist.rank)}.json is missing: the checkpoint was taken with "
                              f"{train_state.get('world_size')} process(es), this stage runs {dist.world_size}")
    trainer_state = load_state(path, TRAINER_STATE)
    rank_state = load_state(path, rank_file(dist.rank))
    return LastCheckpoint(path, train_state, trainer_state, rank_state, notes)


def export_model(source: Path, target: Path) -> Path:
    """Copy a committed model folder to the official ``.../best_model`` place, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = aside_dir(target.parent, target.name, 0)
    for name in MODEL_FILES:
        if (source / name).is_file():
            (tmp / name).write_bytes((source / name).read_bytes())
    return commit_dir(tmp, target, 0)
