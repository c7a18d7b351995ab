"""The torchrun entry point of a stage: builds data, models and optimizer, then runs the loop.

    torchrun ... -m kronos_train.train.stages RUN_DIR {tokenizer|basemodel} [--attempt N] [--deadline T]

``tokenizer`` fine-tunes the tokenizer (official losses, clip 2.0, AdamW with
default betas (0.9, 0.999) as the official script); ``basemodel`` fine-tunes
the predictor on the tokens of a frozen tokenizer in eval mode (clip 3.0,
AdamW betas from the preset).  Models come from ``model_paths.pretrained_*``
or, with ``experiment.pre_trained_*: false``, are built from
``architecture.*`` (or the pretrained folder's config.json).  A stage that
finds a committed ``last/`` checkpoint continues from it.

A rank that fails writes what went wrong to ``failures/`` (see failures.py)
and exits non-zero; torchrun then stops the other ranks.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from ..architectures import resolve_architecture
from ..config import KronosConfig
from ..control.events import EventWriter, NullWriter
from ..control.run_config import basemodel_tokenizer, data_fingerprint, load_run_config, official_best_model
from ..model import (build_predictor, build_tokenizer, check_pair, load_predictor, load_tokenizer, predictor_loss,
                     set_gradient_checkpointing, tokenizer_loss, tokenizer_val_loss)
from ..model.checkpoint import read_config
from ..control.runfolder import RunFolder, data_cache_dir
from ..tracking.live import TrackingWriter, start_live_tracking
from . import checkpoint
from .distributed import DistEnv, init_distributed, shutdown_distributed
from ..control.failures import classify_exception, write_failure
from .gpu_sampler import GpuSampler
from ..control.outcome import write_result
from .loop import Stage, StageConfigError, StageRunner, optimizer_steps_per_epoch
from .schedules import LRSchedule

OFFICIAL_TOKENIZER_BETAS = (0.9, 0.999)   # torch's AdamW default, used by the official tokenizer script


class DataError(ValueError):
    """The data file does not validate (reported as an ``error`` of kind data)."""


# --------------------------------------------------------------------------- process set-up

def die_with_parent() -> None:
    """A worker whose torchrun died (killed with the supervisor) must not train on alone.
    (Had torchrun died before this call, the c10d store it hosts is gone and joining fails.)"""
    from ..control.process import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- data

def load_data(cfg: KronosConfig, run: RunFolder, dist: DistEnv) -> Any:
    """Rank 0 prepares (and caches) the windows first; the other ranks then read the cache."""
    from ..checks.pre import data_spec
    from ..data import prepare_data

    spec, cache = data_spec(cfg), data_cache_dir(run.path.parent)
    prepared = prepare_data(spec, cache) if dist.is_main else None
    dist.barrier()
    if prepared is None:
        prepared = prepare_data(spec, cache)
    if not prepared.report.ok:
        lines = [str(issue) for issue in prepared.report.errors]
        raise DataError(f"{cfg.data.data_path} does not validate:\n" + "\n".join(lines))
    return prepared


def samplers(cfg: KronosConfig, prepared: Any, dist: DistEnv, stage: str) -> tuple[Any, Any]:
    from ..data import EpochSampler

    t = cfg.training
    seed = t.seed + (0 if stage == "tokenizer" else 1)
    train = EpochSampler(len(prepared.train), t.batch_size, seed, dist.rank, dist.world_size, drop_last=True,
                         samples_per_epoch=t.train_windows_per_epoch or None)
    # The same validation windows every pass: a fixed, shuffled subset (epoch 0).
    val = EpochSampler(len(prepared.val), t.batch_size, seed, dist.rank, dist.world_size, drop_last=False,
                       samples_per_epoch=t.val_windows or None)
    return train, val


# --------------------------------------------------------------------------- models

def starting_config(kind: str, pretrained: bool, folder: str, architecture: str) -> dict[str, Any] | None:
    """None: load the pretrained weights; a dict: build that network from scratch."""
    if pretrained:
        return None
    if architecture:
        return resolve_architecture(architecture)
    if not folder:
        raise StageConfigError(f"experiment.pre_trained_{kind} is false but neither architecture.{kind} nor "
                               f"model_paths.pretrained_{kind} says which network to build")
    return read_config(folder)


def initial_tokenizer(cfg: KronosConfig) -> torch.nn.Module:
    config = starting_config("tokenizer", cfg.experiment.pre_trained_tokenizer, cfg.model_paths.pretrained_tokenizer,
                             cfg.architecture.tokenizer)
    return load_tokenizer(cfg.model_paths.pretrained_tokenizer) if config is None else build_tokenizer(config)


def initial_predictor(cfg: KronosConfig) -> torch.nn.Module:
    config = starting_config("predictor", cfg.experiment.pre_trained_predictor, cfg.model_paths.pretrained_predictor,
                             cfg.architecture.predictor)
    return load_predictor(cfg.model_paths.pretrained_predictor) if config is None else build_predictor(config)


def wrap(model: torch.nn.Module, dist: DistEnv) -> torch.nn.Module:
    if not dist.distributed:
        return model
    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def use_tf32(enabled: bool) -> None:
    """TF32 matmuls for the fp32 work outside autocast on CUDA (nanoGPT's setting)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def build_optimizer(model: torch.nn.Module, lr: float, betas: tuple[float, float], weight_decay: float,
                    device: torch.device) -> torch.optim.AdamW:
    """The official AdamW; on CUDA the fused kernel (one launch for all parameters, same update rule)."""
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay, **fused)


def compiled(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``training.compile``: the module the training steps run through, compiled when asked.

    It shares its parameters with ``model``; validation and saving keep using
    the plain module (other batch shapes, no recompiles, no ``_orig_mod.`` keys).
    """
    return torch.compile(model) if enabled else model


def tokenizer_for_basemodel(cfg: KronosConfig, run: RunFolder, ckpt: checkpoint.LastCheckpoint | None) -> Path:
    """The frozen tokenizer: the one a checkpoint recorded, else run_config.basemodel_tokenizer."""
    if ckpt is not None and ckpt.train_state.get("tokenizer_path"):
        path = Path(ckpt.train_state["tokenizer_path"])
        if not path.is_dir():
            raise StageConfigError(f"the basemodel checkpoint was trained on the tokenizer {path}, which is gone; "
                                   "an exact resume needs it back")
        return path
    path = basemodel_tokenizer(cfg, run)
    if path is None:
        raise StageConfigError("no tokenizer for the basemodel stage: train stage 1, or set "
                               "model_paths.finetuned_tokenizer / pretrained_tokenizer to a model folder")
    return path


# --------------------------------------------------------------------------- stage assembly

def build_stage(run: RunFolder, cfg: KronosConfig, name: str, attempt: int, dist: DistEnv, prepared: Any,
                ckpt: checkpoint.LastCheckpoint | None, writer: Any, deadline: float | None = None) -> Stage:
    t = cfg.training
    torch.manual_seed(t.seed)              # the same initial weights on every rank
    extra: dict[str, Any] = {"data_file": data_fingerprint(cfg)}
    if name == "tokenizer":
        model = load_tokenizer(ckpt.path) if ckpt else initial_tokenizer(cfg)
        lr, clip, betas = t.tokenizer_learning_rate, t.tokenizer_grad_clip, OFFICIAL_TOKENIZER_BETAS

        def train_loss(m: torch.nn.Module, x: torch.Tensor, stamp: torch.Tensor) -> Any:
            return tokenizer_loss(m, x)

        def val_loss(m: torch.nn.Module, x: torch.Tensor, stamp: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            return tokenizer_val_loss(m, x)
    else:
        tokenizer_path = tokenizer_for_basemodel(cfg, run, ckpt)
        extra["tokenizer_path"] = str(tokenizer_path)
        tokenizer = load_tokenizer(tokenizer_path, device=dist.device).train(False).requires_grad_(False)
        model = load_predictor(ckpt.path) if ckpt else initial_predictor(cfg)
        errors = [str(p) for p in check_pair(tokenizer, model, cfg.data.max_context) if p.level == "error"]
        if errors:
            raise StageConfigError(f"tokenizer {tokenizer_path} and the predictor do not fit: " + "; ".join(errors))
        lr, clip, betas = t.predictor_learning_rate, t.predictor_grad_clip, (t.adam_beta1, t.adam_beta2)
        teacher_forcing = t.teacher_forcing

        def train_loss(m: torch.nn.Module, x: torch.Tensor, stamp: torch.Tensor) -> Any:
            return predictor_loss(m, tokenizer, x, stamp, teacher_forcing=teacher_forcing)

        def val_loss(m: torch.nn.Module, x: torch.Tensor, stamp: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
            loss, _ = predictor_loss(m, tokenizer, x, stamp, teacher_forcing=teacher_forcing, generator=gen)
            return loss.expand(x.shape[0])       # batch mean, weighted by the batch's samples

    model = model.to(dist.device).train()
    set_gradient_checkpointing(model, t.gradient_checkpointing)
    seed_everything(t.seed + 1000 * dist.rank)   # dropout and s1 sampling differ per rank
    ddp_model = compiled(wrap(model, dist), t.compile)
    optimizer = build_optimizer(model, lr, betas, t.adam_weight_decay, dist.device)
    train_sampler, val_sampler = samplers(cfg, prepared, dist, name)
    epochs = t.tokenizer_epochs if name == "tokenizer" else t.basemodel_epochs
    total_steps = epochs * optimizer_steps_per_epoch(train_sampler, t.accumulation_steps)
    schedule = LRSchedule(optimizer, t.scheduler, total_steps, lr)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=t.precision == "fp16")
    return Stage(name=name, cfg=cfg, run=run, attempt=attempt, dist=dist, model=ddp_model, raw_model=model,
                 train_loss=train_loss, val_loss=val_loss, optimizer=optimizer, schedule=schedule, scaler=scaler,
                 train_set=prepared.train, val_set=prepared.val, sampler=train_sampler, val_sampler=val_sampler,
                 epochs=epochs, peak_lr=lr, grad_clip=clip, writer=writer, extra_state=extra, deadline=deadline)


def export_official(cfg: KronosConfig, run: RunFolder, stage: str) -> None:
    """Also put the best model where the official pipeline keeps it (base_path / base_save_path)."""
    target = official_best_model(cfg, stage)
    best = run.checkpoint_dir(stage, "best")
    if target is not None and (best / "config.json").is_file():
        checkpoint.export_model(best, target)
        print(f"[{stage}] best model exported to {target}", flush=True)


def run_stage(run: RunFolder, cfg: KronosConfig, name: str, attempt: int, dist: DistEnv,
              deadline: float | None = None) -> str:
    if dist.device.type == "cuda":
        use_tf32(True)
    defaults = {"stage": name, "attempt": attempt}
    writer = EventWriter(run.events_path, defaults) if dist.is_main else NullWriter()
    if dist.is_main:                      # rank 0 mirrors what it writes to the trackers (tracking.report_to)
        writer = start_live_tracking(run, cfg, writer)
    sampler = None
    if dist.is_node_main and dist.device.type == "cuda":
        gpu_writer = EventWriter(run.events_path, defaults)
        sampler = GpuSampler(writer.mirror(gpu_writer) if isinstance(writer, TrackingWriter) else gpu_writer).start()
    try:
        prepared = load_data(cfg, run, dist)
        ckpt = checkpoint.load_last(run, name, dist)
        for note in ckpt.notes if ckpt is not None else []:
            writer.emit("log", level="warning", message=note)
            print(f"[{name}] {note}", flush=True)
        stage = build_stage(run, cfg, name, attempt, dist, prepared, ckpt, writer, deadline)
        runner = StageRunner(stage)
        status = runner.run(ckpt)
        if dist.is_main and status in ("completed", "early_stopped"):
            export_official(cfg, run, name)
        dist.barrier()
        if dist.is_main:                 # the supervisor decides from this, not from events.jsonl
            write_result(run, name, attempt, runner.outcome)
        return status
    finally:
        if sampler is not None:
            sampler.stop()
        if isinstance(writer, TrackingWriter):
            writer.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kronos_train.train.stages")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("stage", choices=("tokenizer", "basemodel"))
    parser.add_argument("--attempt", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=None,
                        help="time.time() at which the attempt's time budget ends (set by the supervisor)")
    args = parser.parse_args(argv)
    die_with_parent()
    run = RunFolder(args.run_dir)
    cfg = load_run_config(run)
    dist = init_distributed(cfg)
    try:
        run_stage(run, cfg, args.stage, args.attempt, dist, args.deadline)
    except Exception as exc:
        failure = classify_exception(exc, cfg)
        failure.rank, failure.stage, failure.attempt = dist.rank, args.stage, args.attempt
        write_failure(run, failure)
        raise
    shutdown_distributed()
    # Everything is on disk (events are unbuffered writes, checkpoints fsynced): skip the
    # interpreter's teardown of torch, which costs seconds per stage on a small machine.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
