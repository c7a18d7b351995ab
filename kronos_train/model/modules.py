"""Transformer building blocks shared by the Kronos tokenizer and predictor.

Parameter and buffer names mirror the official checkpoints (spec §2), so a
state dict written by the official code loads into these modules unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class RMSNorm(nn.Module):
    """Root-mean-square norm; the statistic is always taken in float32."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        # Cast the weight to the activation dtype so bf16 activations stay bf16
        # (for float32, the default, this is the official computation exactly).
        return normed.to(x.dtype) * self.weight.to(x.dtype)


class FeedForward(nn.Module):
    """SwiGLU feed-forward: w2(silu(w1 x) * w3 x), then dropout."""

    def __init__(self, d_model: int, ff_dim: int, ffn_dropout_p: float = 0.0) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)
        self.ffn_dropout = nn.Dropout(ffn_dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """GPT-NeoX rotate-half: (x1, x2) -> (-x2, x1) on the two halves of the last axis."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryPositionalEmbedding(nn.Module):
    """RoPE whose table is built from the *query* length and applied to q and k.

    This reproduces the official quirk (spec §2.3, P4): with a length-1 query
    the table is position 0 only, i.e. neither q nor k is rotated. Positions
    start at 0 on every call; the KV-cached decode passes `offset` so a new
    token gets the same angles as at its place in a full call.
    """

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        # Persistent: the official checkpoints contain it (a constant).
        self.register_buffer("inv_freq", inv_freq)

    def cos_sin(self, seq_len: int, dtype: torch.dtype, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(offset, offset + seq_len, device=self.inv_freq.device).type_as(self.inv_freq)
        freqs = torch.outer(positions, self.inv_freq)
        table = torch.cat((freqs, freqs), dim=-1)
        return table.cos()[None, None].to(dtype), table.sin()[None, None].to(dtype)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.cos_sin(q.shape[-2], q.dtype, offset)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def build_attention_mask(
    padding_mask: torch.Tensor, query_len: int, key_len: int, causal: bool
) -> torch.Tensor:
    """Boolean SDPA mask (True = attend) from a [B, T_k] mask where True = padded.

    Every query may always attend to its own position, so a row never ends up
    fully masked (that would make softmax produce NaN and poison gradients).
    """
    keep = ~padding_mask.bool()[:, None, None, :key_len]
    rows = torch.arange(query_len, device=padding_mask.device)[:, None]
    cols = torch.arange(key_len, device=padding_mask.device)[None, :]
    if causal:
        keep = keep & (cols <= rows)
    return keep | (cols == torch.clamp(rows, max=key_len - 1))


class KVCache:
    """Keys and values of one attention layer for window positions 0..length-1.

    Preallocated to `capacity` positions on the first append, so a decode step
    writes one position instead of copying the whole history again (torch.cat
    per step would move O(length) memory per layer per step).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.length = 0
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, H, T_new, hd] after the cached positions; return all keys and values so far."""
        end = self.length + k.shape[-2]
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions > capacity {self.capacity}")
        if self._k is None:
            shape = (*k.shape[:-2], self.capacity, k.shape[-1])
            self._k, self._v = k.new_empty(shape), v.new_empty(shape)
        self._k[..., self.length : end, :] = k
        self._v[..., self.length : end, :] = v
        self.length = end
        return self.keys_values()

    def keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._k is None:
            raise ValueError("the KV cache is empty")
        return self._k[..., : self.length, :], self._v[..., : self.length, :]


class _AttentionProjections(nn.Module):
    """q/k/v/out projections with bias, RoPE and residual dropout (shared layout)."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout_p: float, resid_dropout_p: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.attn_dropout_p = float(attn_dropout_p)
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryPositionalEmbedding(self.head_dim)
        self.resid_dropout = nn.Dropout(resid_dropout_p)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        causal: bool,
        padding_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        q = self.split_heads(self.q_proj(query))
        k = self.split_heads(self.k_proj(key))
        v = self.split_heads(self.v_proj(value))
        q, k = self.rotary(q, k)
        dropout_p = self.attn_dropout_p if self.training else 0.0
        if padding_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal)
        else:
            mask = build_attention_mask(padding_mask, q.shape[-2], k.shape[-2], causal)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        return self.merge_heads(out)

    def merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """[B, H, T, hd] attention output -> out_proj and residual dropout, [B, T, d]."""
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).contiguous().view(batch, length, self.d_model)
        return self.resid_dropout(self.out_proj(out))


class MultiHeadAttentionWithRoPE(_AttentionProjections):
    """Causal self-attention. `key_padding_mask`: [B, T], True marks padded positions."""

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend(x, x, x, causal=True, padding_mask=key_padding_mask)

    def forward_cached(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Inference only (eval, no padding): attention for new positions that follow the cached ones.

        x is either the whole prefix (empty cache: ordinary causal attention)
        or one new position. RoPE uses absolute window positions, so the
        rotated keys of earlier positions are reused unchanged, and a single
        query is the last position: it may see every key, hence no mask.
        """
        offset = cache.length
        if offset and x.shape[1] != 1:
            raise ValueError("after the prefill, forward_cached takes one position at a time")
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        q, k = self.rotary(q, k, offset)
        k, v = cache.append(k, v)
        return self.merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=offset == 0))


class MultiHeadCrossAttentionWithRoPE(_AttentionProjections):
    """Cross-attention whose causal flag follows `self.training` (official quirk P2).

    In train mode a length-1 query therefore sees only key 0 (SDPA aligns the
    causal mask top-left); in eval mode attention is over all keys.
    """

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.attend(query, key, value, causal=self.training, padding_mask=key_padding_mask)

    def cache_keys(self, key: torch.Tensor, cache: KVCache) -> None:
        """Append the key/value projections of new context positions (unrotated, see forward_cached)."""
        cache.append(self.split_heads(self.k_proj(key)), self.split_heads(self.v_proj(key)))

    def forward_cached(self, query: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Eval-mode attention of a length-1 query over every cached context position.

        With a length-1 query the RoPE table is position 0 (cos 1, sin 0), which
        leaves q and k unchanged (P4), and eval mode is non-causal (P2): plain
        attention over the cached projections is the same computation.
        """
        if query.shape[1] != 1:
            raise ValueError("forward_cached takes a length-1 query")
        k, v = cache.keys_values()
        q = self.split_heads(self.q_proj(query))
        return self.merge_heads(F.scaled_dot_product_attention(q, k, v))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(norm1 x), then + ffn(norm2 x).

    `gradient_checkpointing` (set through `set_gradient_checkpointing`) trades
    compute for memory in training by recomputing the block in backward.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ff_dim: int,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = MultiHeadAttentionWithRoPE(d_model, n_heads, attn_dropout_p, resid_dropout_p)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim, ffn_dropout_p)
        self.gradient_checkpointing = False

    def _block(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), key_padding_mask=key_padding_mask)
        return x + self.ffn(self.norm2(x))

    def forward_cached(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """The block for new positions after those in `cache` (inference; see MultiHeadAttentionWithRoPE)."""
        x = x + self.self_attn.forward_cached(self.norm1(x), cache)
        return x + self.ffn(self.norm2(x))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            # Non-reentrant checkpointing restores the RNG state, so dropout
            # masks are identical in the recomputation.
            return checkpoint(self._block, x, key_padding_mask, use_reentrant=False)
        return self._block(x, key_padding_mask)


def set_gradient_checkpointing(model: nn.Module, enabled: bool) -> int:
    """Turn per-block activation checkpointing on or off; returns the number of blocks touched.

    Works through wrappers (DDP, torch.compile) because it walks `modules()`.
    """
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    for block in blocks:
        block.gradient_checkpointing = bool(enabled)
    return len(blocks)


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None
) -> torch.Tensor:
    for block in blocks:
        x = block(x, key_padding_mask=key_padding_mask)
    return x


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def normalize_config(kind: str, config: dict[str, Any], ints: tuple[str, ...], floats: tuple[str, ...],
                     bools: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate the keys of a ``config.json`` and coerce its types, so a saved
    config always reads the same (``0.0``, not ``0``) whoever wrote it."""
    fields = set(ints) | set(floats) | set(bools)
    missing, unknown = sorted(fields - config.keys()), sorted(config.keys() - fields)
    if missing or unknown:
        raise ValueError(f"{kind} config: missing keys {missing}, unknown keys {unknown}")
    out: dict[str, Any] = {k: int(config[k]) for k in ints}
    out.update({k: float(config[k]) for k in floats})
    out.update({k: bool(config[k]) for k in bools})
    return out
