"""Kronos predictor: decoder-only Transformer over (s1, s2) token pairs (spec §4).

Official quirks kept on purpose because checkpoints and fixtures depend on them:
the dependency layer's cross-attention is causal only in train mode (P2), its
RoPE table comes from the query length (P4), the tokenizer-side block count
rule does not apply here (P5: n_layers blocks), and the dependency layer always
has 4 heads, no dropout and an unscaled sibling embedding (P6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .modules import (
    KVCache,
    MultiHeadCrossAttentionWithRoPE,
    RMSNorm,
    TransformerBlock,
    normalize_config,
    run_blocks,
)

PREDICTOR_INT_FIELDS = ("s1_bits", "s2_bits", "n_layers", "d_model", "n_heads", "ff_dim")
PREDICTOR_FLOAT_FIELDS = ("ffn_dropout_p", "attn_dropout_p", "resid_dropout_p", "token_dropout_p")
PREDICTOR_BOOL_FIELDS = ("learn_te",)
PREDICTOR_FIELDS = frozenset(PREDICTOR_INT_FIELDS + PREDICTOR_FLOAT_FIELDS + PREDICTOR_BOOL_FIELDS)

# Calendar tables, in the column order of the stamp tensor.
TIME_FEATURES = ("minute", "hour", "weekday", "day", "month")
TIME_TABLE_SIZES = {"minute": 60, "hour": 24, "weekday": 7, "day": 32, "month": 13}
DEPENDENCY_HEADS = 4


class HierarchicalEmbedding(nn.Module):
    """Embeds (s1, s2) with sqrt(d)-scaled tables and fuses them with a linear layer."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.s1_bits, self.s2_bits, self.d_model = s1_bits, s2_bits, d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(2 * d_model, d_model)
        nn.init.normal_(self.emb_s1.weight, mean=0.0, std=d_model**-0.5)
        nn.init.normal_(self.emb_s2.weight, mean=0.0, std=d_model**-0.5)

    def split_token(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Official composite layout: s1 = HIGH bits (the opposite of the tokenizer's index)."""
        return token_ids >> self.s2_bits, token_ids & ((1 << self.s2_bits) - 1)

    def forward(self, token_ids: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(token_ids, (list, tuple)):
            s1_ids, s2_ids = token_ids
        else:
            s1_ids, s2_ids = self.split_token(token_ids)
        scale = math.sqrt(self.d_model)
        fused = torch.cat([self.emb_s1(s1_ids) * scale, self.emb_s2(s2_ids) * scale], dim=-1)
        return self.fusion_proj(fused)


class FixedEmbedding(nn.Module):
    """Frozen sinusoidal table (learn_te=false). Checkpoint key: `<name>.emb.weight`."""

    def __init__(self, num_rows: int, d_model: int) -> None:
        super().__init__()
        position = torch.arange(num_rows).float().unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
        table = torch.zeros(num_rows, d_model)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
        self.emb = nn.Embedding(num_rows, d_model)
        self.emb.weight = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x).detach()


class TemporalEmbedding(nn.Module):
    """Sum of minute/hour/weekday/day/month lookups; stamp is [B, T, 5] float, cast to long."""

    def __init__(self, d_model: int, learn_te: bool) -> None:
        super().__init__()
        for name in TIME_FEATURES:
            rows = TIME_TABLE_SIZES[name]
            table = nn.Embedding(rows, d_model) if learn_te else FixedEmbedding(rows, d_model)
            self.add_module(f"{name}_embed", table)

    def forward(self, stamp: torch.Tensor) -> torch.Tensor:
        stamp = stamp.long()
        total = None
        for column, name in enumerate(TIME_FEATURES):
            term = getattr(self, f"{name}_embed")(stamp[..., column])
            total = term if total is None else total + term
        return total


class DependencyAwareLayer(nn.Module):
    """s2 conditioning: cross-attend from the s1 sibling embedding to the context.

    The residual is the context, so a length-1 query's result is broadcast to
    every context position (only the last one is read at inference).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.cross_attn = MultiHeadCrossAttentionWithRoPE(d_model, DEPENDENCY_HEADS, 0.0, 0.0)
        self.norm = RMSNorm(d_model)

    def forward(
        self, hidden: torch.Tensor, sibling: torch.Tensor, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        attended = self.cross_attn(query=sibling, key=hidden, value=hidden, key_padding_mask=key_padding_mask)
        return self.norm(hidden + attended)

    def forward_cached(self, last_hidden: torch.Tensor, sibling: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """The output at the last context position only ([B, 1, d]); RMSNorm is per position,
        so this is the last row of forward() without normalising the others."""
        return self.norm(last_hidden + self.cross_attn.forward_cached(sibling, cache))


class DualHead(nn.Module):
    """Two classifiers: s1 from the context, s2 from the dependency layer output."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.vocab_s1, self.vocab_s2 = 2**s1_bits, 2**s2_bits
        self.proj_s1 = nn.Linear(d_model, self.vocab_s1)
        self.proj_s2 = nn.Linear(d_model, self.vocab_s2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_s1(x)

    def cond_forward(self, x2: torch.Tensor) -> torch.Tensor:
        return self.proj_s2(x2)

    def compute_loss(
        self,
        s1_logits: torch.Tensor,
        s2_logits: torch.Tensor,
        s1_targets: torch.Tensor,
        s2_targets: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean of both CEs, CE s1, CE s2); positions where padding_mask is true/1 are ignored."""
        if padding_mask is not None:
            valid = padding_mask == 0
            s1_logits, s2_logits = s1_logits[valid], s2_logits[valid]
            s1_targets, s2_targets = s1_targets[valid], s2_targets[valid]
        ce_s1 = F.cross_entropy(s1_logits.reshape(-1, self.vocab_s1), s1_targets.reshape(-1))
        ce_s2 = F.cross_entropy(s2_logits.reshape(-1, self.vocab_s2), s2_targets.reshape(-1))
        return (ce_s1 + ce_s2) / 2, ce_s1, ce_s2


@dataclass
class DecodeCache:
    """State of a KV-cached autoregressive decode (Kronos.prefill / decode_step / decode_s2_step).

    Holds the trunk's keys/values per block and the dependency layer's key/value
    projections of the context, for window positions 0..length-1. The context
    itself is only needed at the newest position (s1 head, dependency residual).
    """

    layers: list[KVCache]
    dependency: KVCache
    last_context: torch.Tensor | None = field(default=None)

    @property
    def length(self) -> int:
        return self.dependency.length


class Kronos(nn.Module):
    """Official-compatible Kronos predictor; constructor arguments = config.json keys."""

    def __init__(
        self,
        s1_bits: int,
        s2_bits: int,
        n_layers: int,
        d_model: int,
        n_heads: int,
        ff_dim: int,
        ffn_dropout_p: float,
        attn_dropout_p: float,
        resid_dropout_p: float,
        token_dropout_p: float,
        learn_te: bool,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = normalize_predictor_config(dict(
            s1_bits=s1_bits, s2_bits=s2_bits, n_layers=n_layers, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim,
            ffn_dropout_p=ffn_dropout_p, attn_dropout_p=attn_dropout_p, resid_dropout_p=resid_dropout_p,
            token_dropout_p=token_dropout_p, learn_te=learn_te,
        ))
        cfg = self.config
        self.s1_bits, self.s2_bits, self.d_model = cfg["s1_bits"], cfg["s2_bits"], cfg["d_model"]
        self.s1_vocab_size, self.s2_vocab_size = 2**self.s1_bits, 2**self.s2_bits

        self.embedding = HierarchicalEmbedding(self.s1_bits, self.s2_bits, self.d_model)
        self.time_emb = TemporalEmbedding(self.d_model, cfg["learn_te"])
        self.token_drop = nn.Dropout(cfg["token_dropout_p"])
        self.transformer = nn.ModuleList(
            TransformerBlock(
                self.d_model, cfg["n_heads"], cfg["ff_dim"],
                cfg["ffn_dropout_p"], cfg["attn_dropout_p"], cfg["resid_dropout_p"],
            )
            for _ in range(cfg["n_layers"])
        )
        self.norm = RMSNorm(self.d_model)
        self.dep_layer = DependencyAwareLayer(self.d_model)
        self.head = DualHead(self.s1_bits, self.s2_bits, self.d_model)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """Official init (spec §4.7), except that frozen sinusoidal tables stay sinusoidal (P18)."""
        if isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding) and module.weight.requires_grad:
            nn.init.normal_(module.weight, mean=0.0, std=self.d_model**-0.5)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def decode_s1(
        self,
        s1_ids: torch.Tensor,
        s2_ids: torch.Tensor,
        stamp: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(s1 logits [B, T, V1], context [B, T, d] after the final norm)."""
        x = self.embedding([s1_ids, s2_ids])
        if stamp is not None:
            x = x + self.time_emb(stamp)
        x = self.token_drop(x)
        context = self.norm(run_blocks(self.transformer, x, padding_mask))
        return self.head(context), context

    def decode_s2(
        self, context: torch.Tensor, s1_ids: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """s2 logits conditioned on s1_ids (raw, unscaled s1 embedding as the query)."""
        sibling = self.embedding.emb_s1(s1_ids)
        return self.head.cond_forward(self.dep_layer(context, sibling, key_padding_mask=padding_mask))

    def forward(
        self,
        s1_ids: torch.Tensor,
        s2_ids: torch.Tensor,
        stamp: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        use_teacher_forcing: bool = False,
        s1_targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits for the next (s1, s2). Without teacher forcing the s2 head is
        conditioned on an s1 sampled from the model's own distribution, as the
        official training scripts do (spec P3)."""
        s1_logits, context = self.decode_s1(s1_ids, s2_ids, stamp, padding_mask)
        if use_teacher_forcing:
            if s1_targets is None:
                raise ValueError("use_teacher_forcing=True needs s1_targets")
            s1_next = s1_targets
        else:
            s1_next = sample_own_s1(s1_logits, generator)
        return s1_logits, self.decode_s2(context, s1_next, padding_mask)

    # ------------------------------------------------------------------ KV-cached inference
    # Valid while the token window grows from position 0: RoPE positions are
    # absolute within the window, so past keys/values never change. Eval mode
    # only (no dropout, non-causal dependency attention); no padding masks.

    def prefill(
        self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None = None, capacity: int | None = None
    ) -> tuple[torch.Tensor, DecodeCache]:
        """Run a history [B, T] once: (s1 logits of its last position [B, 1, V1], a cache for
        `capacity` positions, default T). Equal to decode_s1(...)[0][:, -1:]."""
        capacity = capacity or s1_ids.shape[1]
        cache = DecodeCache([KVCache(capacity) for _ in self.transformer], KVCache(capacity))
        return self.decode_step(s1_ids, s2_ids, stamp, cache), cache

    def decode_step(
        self, s1_ids: torch.Tensor, s2_ids: torch.Tensor, stamp: torch.Tensor | None, cache: DecodeCache
    ) -> torch.Tensor:
        """Append tokens [B, 1] (the whole history when the cache is empty) at the next window
        positions; return the s1 logits of the last one [B, 1, V1]."""
        if self.training:
            raise RuntimeError("the KV cache is for eval mode (dropout would differ from the full forward)")
        x = self.embedding([s1_ids, s2_ids])
        if stamp is not None:
            x = x + self.time_emb(stamp)
        # token_drop and the blocks' dropouts are identities in eval mode.
        for block, layer_cache in zip(self.transformer, cache.layers):
            x = block.forward_cached(x, layer_cache)
        context = self.norm(x)
        self.dep_layer.cross_attn.cache_keys(context, cache.dependency)
        cache.last_context = context[:, -1:]
        return self.head(cache.last_context)

    def decode_s2_step(self, s1_ids: torch.Tensor, cache: DecodeCache) -> torch.Tensor:
        """s2 logits [B, 1, V2] of the newest position given its s1 [B, 1]; equal to
        decode_s2(context, s1_ids)[:, -1:]."""
        sibling = self.embedding.emb_s1(s1_ids)
        return self.head.cond_forward(self.dep_layer.forward_cached(cache.last_context, sibling, cache.dependency))


def sample_own_s1(s1_logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per position from softmax(s1_logits), without gradient.

    Inverse-CDF sampling (cumsum + searchsorted): the same distribution as the
    official torch.multinomial, but parallel and ~15x cheaper on CPU, where
    multinomial over every position was ~13 % of a small predictor's training
    step. The random stream differs from upstream's, which only matters for
    bit-level replays of an official run.
    """
    probs = F.softmax(s1_logits.detach().float(), dim=-1).reshape(-1, s1_logits.shape[-1])
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1, device=probs.device, generator=generator) * cdf[:, -1:]
    # right=True: u == 0 never selects a leading zero-probability token.
    draws = torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[-1] - 1)
    return draws.view(s1_logits.shape[:-1])


def normalize_predictor_config(config: dict[str, Any]) -> dict[str, Any]:
    return normalize_config("predictor", config, PREDICTOR_INT_FIELDS, PREDICTOR_FLOAT_FIELDS, PREDICTOR_BOOL_FIELDS)
