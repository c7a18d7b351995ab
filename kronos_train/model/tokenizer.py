"""KronosTokenizer: causal Transformer auto-encoder with a Binary Spherical Quantizer.

State-dict layout and numerics follow the official checkpoints (spec §3).
The quantiser (normalise, sign, loss) always runs in float32, with autocast
switched off, because bf16 rounding of values near zero would flip code bits.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .modules import TransformerBlock, normalize_config, run_blocks

TOKENIZER_INT_FIELDS = (
    "d_in", "d_model", "n_heads", "ff_dim", "n_enc_layers", "n_dec_layers", "s1_bits", "s2_bits", "group_size",
)
TOKENIZER_FLOAT_FIELDS = (
    "ffn_dropout_p", "attn_dropout_p", "resid_dropout_p", "beta", "gamma0", "gamma", "zeta",
)
TOKENIZER_FIELDS = frozenset(TOKENIZER_INT_FIELDS + TOKENIZER_FLOAT_FIELDS)


@contextlib.contextmanager
def float32_region(device: torch.device) -> Iterator[None]:
    """Disable autocast for the enclosed ops (a no-op on devices without autocast)."""
    if device.type in ("cpu", "cuda", "xpu", "mps"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:
        yield


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of a Bernoulli(p), with the official 1e-8 guard inside the logs."""
    q = 1 - p
    return -p * torch.log(p + 1e-8) - q * torch.log(q + 1e-8)


def bits_to_indices(code: torch.Tensor) -> torch.Tensor:
    """Sum_j [code_j >= 0] * 2^j over the last axis (LSB-first), int64."""
    powers = 2 ** torch.arange(code.shape[-1], device=code.device, dtype=torch.long)
    return ((code >= 0).long() * powers).sum(-1)


def indices_to_bits(indices: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Inverse of bits_to_indices: [..] int -> [.., n_bits] float in {-1, +1}."""
    powers = 2 ** torch.arange(n_bits, device=indices.device, dtype=torch.long)
    bits = (indices.long().unsqueeze(-1) & powers) != 0
    return bits.float() * 2 - 1


class BinarySphericalQuantizer(nn.Module):
    """Sign quantiser on the unit sphere plus the analytical BSQ entropy loss (spec §3.5).

    `group_size` only sizes the (metrics-only) `group_basis` buffer: it has no
    effect on any output or loss, exactly as in the official code.
    """

    def __init__(self, embed_dim: int, beta: float, gamma0: float, gamma: float, zeta: float, group_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.beta = beta
        self.gamma0 = gamma0
        self.gamma = gamma
        self.zeta = zeta
        self.group_size = group_size
        # Constant, MSB-first buffers kept only because the checkpoints contain them.
        self.register_buffer("basis", 2 ** torch.arange(embed_dim - 1, -1, -1, dtype=torch.long))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1, dtype=torch.long))

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Straight-through sign (0 maps to -1), scaled to unit norm."""
        zhat = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
        zq = z + (zhat - z).detach()
        return zq / math.sqrt(self.embed_dim)

    def loss(self, z: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
        commitment = self.beta * ((zq.detach() - z) ** 2).sum(-1).mean()
        p = torch.sigmoid(-4 * z / math.sqrt(self.embed_dim))
        per_sample_entropy = binary_entropy(p).sum(-1).mean()
        # Batch statistic over every position of every sample (official behaviour).
        codebook_entropy = binary_entropy(p.reshape(-1, self.embed_dim).mean(0)).sum()
        return commitment + self.zeta * (self.gamma0 * per_sample_entropy - self.gamma * codebook_entropy)


class BSQuantizer(nn.Module):
    """Normalise, quantise, index. Module path `tokenizer.bsq` as in the checkpoints."""

    def __init__(
        self, s1_bits: int, s2_bits: int, beta: float, gamma0: float, gamma: float, zeta: float, group_size: int
    ) -> None:
        super().__init__()
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.codebook_dim = s1_bits + s2_bits
        self.bsq = BinarySphericalQuantizer(self.codebook_dim, beta, gamma0, gamma, zeta, group_size)

    def indices(self, zq: torch.Tensor, half: bool) -> torch.Tensor | list[torch.Tensor]:
        if half:
            return [bits_to_indices(zq[..., : self.s1_bits]), bits_to_indices(zq[..., self.s1_bits :])]
        return bits_to_indices(zq)

    def forward(
        self, z: torch.Tensor, half: bool = False, collect_metrics: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | list[torch.Tensor]]:
        with float32_region(z.device):
            z = F.normalize(z.float(), dim=-1)
            zq = self.bsq.quantize(z)
            loss = self.bsq.loss(z, zq) if collect_metrics else z.new_zeros(())
        return loss, zq, self.indices(zq, half)


class KronosTokenizer(nn.Module):
    """Official-compatible Kronos tokenizer; constructor arguments = config.json keys."""

    def __init__(
        self,
        d_in: int,
        d_model: int,
        n_heads: int,
        ff_dim: int,
        n_enc_layers: int,
        n_dec_layers: int,
        ffn_dropout_p: float,
        attn_dropout_p: float,
        resid_dropout_p: float,
        s1_bits: int,
        s2_bits: int,
        beta: float,
        gamma0: float,
        gamma: float,
        zeta: float,
        group_size: int,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = normalize_tokenizer_config(dict(
            d_in=d_in, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim, n_enc_layers=n_enc_layers,
            n_dec_layers=n_dec_layers, ffn_dropout_p=ffn_dropout_p, attn_dropout_p=attn_dropout_p,
            resid_dropout_p=resid_dropout_p, s1_bits=s1_bits, s2_bits=s2_bits, beta=beta, gamma0=gamma0,
            gamma=gamma, zeta=zeta, group_size=group_size,
        ))
        cfg = self.config
        self.d_in, self.d_model = cfg["d_in"], cfg["d_model"]
        self.s1_bits, self.s2_bits = cfg["s1_bits"], cfg["s2_bits"]
        self.codebook_dim = self.s1_bits + self.s2_bits

        def block() -> TransformerBlock:
            return TransformerBlock(
                self.d_model, cfg["n_heads"], cfg["ff_dim"],
                cfg["ffn_dropout_p"], cfg["attn_dropout_p"], cfg["resid_dropout_p"],
            )

        self.embed = nn.Linear(self.d_in, self.d_model)
        # The official code builds n_*_layers - 1 blocks (spec P5).
        self.encoder = nn.ModuleList(block() for _ in range(cfg["n_enc_layers"] - 1))
        self.decoder = nn.ModuleList(block() for _ in range(cfg["n_dec_layers"] - 1))
        self.quant_embed = nn.Linear(self.d_model, self.codebook_dim)
        self.post_quant_embed_pre = nn.Linear(self.s1_bits, self.d_model)
        self.post_quant_embed = nn.Linear(self.codebook_dim, self.d_model)
        self.head = nn.Linear(self.d_model, self.d_in)
        self.tokenizer = BSQuantizer(
            self.s1_bits, self.s2_bits, cfg["beta"], cfg["gamma0"], cfg["gamma"], cfg["zeta"], cfg["group_size"]
        )

    def prequant(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output projected to K channels, before L2 normalisation."""
        h = run_blocks(self.encoder, self.embed(x))
        # The projection that feeds the sign quantiser runs in float32 too: it is
        # tiny (d_model -> K) and bf16 here would flip bits of near-zero values.
        with float32_region(h.device):
            return self.quant_embed(h.float())

    def decode_code(self, code: torch.Tensor) -> torch.Tensor:
        """Decoder on a [B, T, K] code (values +-1/sqrt(K))."""
        return self.head(run_blocks(self.decoder, self.post_quant_embed(code)))

    def forward(
        self, x: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ((recon from s1 bits, recon from all bits), bsq_loss, quantized, combined index)."""
        bsq_loss, quantized, z_indices = self.tokenizer(self.prequant(x), half=False)
        z_pre = self.head(run_blocks(self.decoder, self.post_quant_embed_pre(quantized[..., : self.s1_bits])))
        z = self.decode_code(quantized)
        return (z_pre, z), bsq_loss, quantized, z_indices

    def encode(self, x: torch.Tensor, half: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Token ids: combined [B, T] (s1 = low bits) or, with half=True, the list [s1, s2]."""
        _, _, indices = self.tokenizer(self.prequant(x), half=half, collect_metrics=False)
        return indices

    def indices_to_code(self, tokens: torch.Tensor | Sequence[torch.Tensor], half: bool) -> torch.Tensor:
        if half:
            s1, s2 = tokens
            # The official decode assumes s1_bits == s2_bits; using each half's own
            # width is identical for equal widths and correct otherwise.
            bits = torch.cat([indices_to_bits(s1, self.s1_bits), indices_to_bits(s2, self.s2_bits)], dim=-1)
        else:
            bits = indices_to_bits(torch.as_tensor(tokens), self.codebook_dim)
        return bits / math.sqrt(self.codebook_dim)

    def decode(self, tokens: torch.Tensor | Sequence[torch.Tensor], half: bool = False) -> torch.Tensor:
        """Reconstruct [B, T, d_in] from the combined index or, with half=True, from [s1, s2]."""
        code = self.indices_to_code(tokens, half).to(self.post_quant_embed.weight.device)
        return self.decode_code(code)


def normalize_tokenizer_config(config: dict[str, Any]) -> dict[str, Any]:
    return normalize_config("tokenizer", config, TOKENIZER_INT_FIELDS, TOKENIZER_FLOAT_FIELDS)
