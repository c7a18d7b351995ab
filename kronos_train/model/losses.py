"""Training and validation losses exactly as the official fine-tuning scripts compute them (spec §3.5, §7.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .modules import unwrap_model
from .predictor import Kronos
from .tokenizer import KronosTokenizer


def tokenizer_loss(tokenizer: KronosTokenizer, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(mse(z_pre, x) + mse(z, x) + bsq) / 2, plus detached parts {recon_pre, recon, bsq}.

    The BSQ codebook-entropy term is a batch statistic: splitting a batch for
    gradient accumulation changes the objective slightly (official behaviour).
    """
    (z_pre, z), bsq_loss, _, _ = tokenizer(x)
    target = x.float()
    recon_pre = F.mse_loss(z_pre.float(), target)
    recon = F.mse_loss(z.float(), target)
    loss = (recon_pre + recon + bsq_loss) / 2
    parts = {"recon_pre": recon_pre.detach(), "recon": recon.detach(), "bsq": bsq_loss.detach()}
    return loss, parts


def tokenizer_val_loss(tokenizer: KronosTokenizer, x: torch.Tensor) -> torch.Tensor:
    """Per-sample mse(z, x), shape [B], so callers can form sample-weighted means (official metric)."""
    (_, z), _, _, _ = tokenizer(x)
    return ((z.float() - x.float()) ** 2).mean(dim=tuple(range(1, x.dim())))


def encode_pairs(tokenizer: KronosTokenizer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s1, s2) ids from the frozen tokenizer, without building a graph."""
    with torch.no_grad():
        s1, s2 = unwrap_model(tokenizer).encode(x, half=True)
    return s1, s2


def predictor_loss(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    x: torch.Tensor,
    stamp: torch.Tensor,
    teacher_forcing: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Next-token CE over every position of the window, parts {ce_s1, ce_s2} (detached).

    Inputs are tokens[:, :-1] with stamp[:, :-1], targets tokens[:, 1:].
    teacher_forcing=False (the official default) conditions s2 on an s1 sampled
    from the model; True conditions it on the true next s1. The tokenizer
    should be in eval mode (the official scripts freeze it).
    """
    s1, s2 = encode_pairs(tokenizer, x)
    s1_in, s2_in, stamp_in = s1[:, :-1], s2[:, :-1], stamp[:, :-1]
    s1_target, s2_target = s1[:, 1:], s2[:, 1:]
    s1_logits, s2_logits = predictor(
        s1_in, s2_in, stamp_in,
        use_teacher_forcing=teacher_forcing, s1_targets=s1_target if teacher_forcing else None,
        generator=generator,
    )
    head = unwrap_model(predictor).head  # DDP-wrapped predictors too
    loss, ce_s1, ce_s2 = head.compute_loss(s1_logits, s2_logits, s1_target, s2_target)
    return loss, {"ce_s1": ce_s1.detach(), "ce_s2": ce_s2.detach()}
