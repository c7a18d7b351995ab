"""Learning-rate schedules of ``training.scheduler.name``.

``onecycle`` is the official one, exactly: ``OneCycleLR(max_lr=lr,
total_steps, pct_start=warmup_ratio (0.03), div_factor=10)`` with the default
``final_div_factor=1e4`` (so the LR starts at lr/10, peaks at 3 % of the steps
and anneals to lr * 1e-5) and the default ``cycle_momentum=True``, which drives
AdamW's beta1 from 0.95 to 0.85 and back (spec P9): the configured
``adam_beta1`` is not used under onecycle, as upstream.

``constant``, ``cosine`` and ``warmup_cosine`` are pure functions of the step
(``LambdaLR``), ``plateau`` is ``ReduceLROnPlateau`` stepped on every
validation loss instead of every optimizer step.  Every schedule restores
exactly from its ``state_dict``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..config import SchedulerConfig


def cosine_factor(progress: float, min_ratio: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(cfg: SchedulerConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak LR at optimizer step ``s`` (0-based) for the LambdaLR schedules."""
    total = max(1, total_steps)
    if cfg.name == "constant":
        return lambda s: 1.0
    if cfg.name == "cosine":
        return lambda s: cosine_factor(s / total, cfg.min_lr_ratio)
    if cfg.name == "warmup_cosine":
        warmup = max(1, round(cfg.warmup_ratio * total)) if cfg.warmup_ratio > 0 else 0

        def factor(s: int) -> float:
            if s < warmup:
                return (s + 1) / warmup
            return cosine_factor((s - warmup) / max(1, total - warmup), cfg.min_lr_ratio)
        return factor
    raise ValueError(f"no step-wise factor for scheduler {cfg.name!r}")


class LRSchedule:
    """One object for every schedule: ``after_step`` once per optimizer step,
    ``after_validation`` with each validation loss (only plateau uses it)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int, peak_lr: float):
        self.name = cfg.name
        self.optimizer = optimizer
        self.scheduler: Any
        if cfg.name == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=peak_lr, total_steps=max(1, total_steps),
                pct_start=float(cfg.warmup_ratio), div_factor=10.0)
        elif cfg.name == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, total_steps))

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def after_step(self) -> None:
        if self.name != "plateau":
            self.scheduler.step()

    def after_validation(self, val_loss: float) -> None:
        if self.name == "plateau" and math.isfinite(val_loss):
            self.scheduler.step(val_loss)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
