"""``checkpoints/<stage>/{last,best}/``: what an exact resume needs, committed atomically.

``best/`` is the official model folder (config.json, model.safetensors,
README.md) plus the commit marker.  ``last/`` is the same model folder plus

- ``trainer_state.pt``: optimizer, LR schedule, GradScaler;
- ``train_state.json``: step, epoch, batch position in the epoch, early-stopping
  state, elapsed time, and what the checkpoint was taken under (config and its
  hash, world size, global batch, the tokenizer the basemodel stage used);
- ``rank_state_<rank>.pt``, one per rank: Python, NumPy, torch (and CUDA) RNG states and
  the rank's sums of the open logging window (each rank's losses differ until reduced);
- ``COMMITTED``, written last (see commit.py).

Every rank writes its own rank file; rank 0 writes the rest and commits after a
barrier, so the marker exists only once every rank's file is on disk.  Saves
happen only at optimizer-step boundaries (never inside gradient accumulation).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model import save_pretrained
from ..runfolder import RunFolder
from .commit import aside_dir, aside_path, commit_dir, fsync_file, recover
from .distributed import DistEnv

TRAIN_STATE = "train_state.json"
TRAINER_STATE = "trainer_state.pt"
MODEL_FILES = ("config.json", "model.safetensors", "README.md")


def rank_file(rank: int) -> str:
    return f"rank_state_{rank}.pt"


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


def _save_torch(obj: Any, path: Path) -> None:
    torch.save(obj, path)
    fsync_file(path)


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@dataclass
class LastCheckpoint:
    path: Path
    train_state: dict[str, Any]
    trainer_state: dict[str, Any]
    rank_state: dict[str, Any]        # {"rng": ..., "window": ...} of this rank


def save_last(run: RunFolder, stage: str, dist: DistEnv, *, model: torch.nn.Module, trainer_state: dict[str, Any],
              train_state: dict[str, Any], rank_state: dict[str, Any]) -> Path:
    """Collective: every rank calls it at the same step."""
    final = run.checkpoint_dir(stage, "last")
    step = int(train_state["step"])
    tmp = aside_path(final.parent, "last", step)
    if dist.is_main:
        aside_dir(final.parent, "last", step)
    dist.barrier()                                   # the staging folder exists for everyone
    _save_torch({**rank_state, "rng": capture_rng()}, tmp / rank_file(dist.rank))
    if dist.is_main:
        save_pretrained(model, tmp)
        _save_torch(trainer_state, tmp / TRAINER_STATE)
        _write_json(train_state, tmp / TRAIN_STATE)
    dist.barrier()                                   # every rank's file is written
    if dist.is_main:
        commit_dir(tmp, final, step)
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


def load_last(run: RunFolder, stage: str, dist: DistEnv) -> LastCheckpoint | None:
    """This rank's view of the last committed checkpoint, or None to start fresh."""
    if dist.is_main:
        recover_stage(run, stage)
    dist.barrier()
    path = run.checkpoint_dir(stage, "last")
    if not (path / "COMMITTED").is_file():
        return None
    train_state = json.loads((path / TRAIN_STATE).read_text(encoding="utf-8"))
    rank_path = path / rank_file(dist.rank)
    if not rank_path.is_file():
        raise FileNotFoundError(f"{rank_path} is missing: the checkpoint was taken with "
                                f"{train_state.get('world_size')} process(es), this stage runs {dist.world_size}")
    trainer_state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=False)
    rank_state = torch.load(rank_path, map_location="cpu", weights_only=False)
    return LastCheckpoint(path, train_state, trainer_state, rank_state)


def export_model(source: Path, target: Path) -> Path:
    """Copy a committed model folder to the official ``.../best_model`` place, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = aside_dir(target.parent, target.name, 0)
    for name in MODEL_FILES:
        if (source / name).is_file():
            (tmp / name).write_bytes((source / name).read_bytes())
    return commit_dir(tmp, target, 0)
