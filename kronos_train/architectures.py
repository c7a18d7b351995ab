"""Published Kronos configurations and their sizes, without torch.

The checklist, the TUI and the time estimate need names, context lengths and
parameter counts of the networks; this module gives them as plain data and
arithmetic (the formulas of the spec, §2.6, §3.2, §4.2), so nothing light
imports torch.  ``kronos_train.model`` builds the networks from the same dicts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

TOKENIZER_KEYS = ("d_in", "d_model", "n_heads", "ff_dim", "n_enc_layers", "n_dec_layers", "ffn_dropout_p",
                  "attn_dropout_p", "resid_dropout_p", "s1_bits", "s2_bits", "beta", "gamma0", "gamma", "zeta",
                  "group_size")
PREDICTOR_KEYS = ("s1_bits", "s2_bits", "n_layers", "d_model", "n_heads", "ff_dim", "ffn_dropout_p",
                  "attn_dropout_p", "resid_dropout_p", "token_dropout_p", "learn_te")


@dataclass(frozen=True)
class Architecture:
    name: str
    kind: Literal["tokenizer", "predictor"]
    config: dict[str, Any]
    context: int                 # context length the model was trained for (README model zoo)
    pairs_with: str = ""         # the tokenizer a published predictor was trained with


def _tokenizer(d_model: int, n_heads: int, ff_dim: int, layers: int, bits: int, group_size: int) -> dict[str, Any]:
    return dict(d_in=6, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim, n_enc_layers=layers, n_dec_layers=layers,
                ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=bits, s2_bits=bits,
                beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=group_size)


def _predictor(d_model: int, n_layers: int, n_heads: int, ff_dim: int, bits: int, ffn: float, attn: float,
               resid: float, token: float) -> dict[str, Any]:
    return dict(s1_bits=bits, s2_bits=bits, n_layers=n_layers, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim,
                ffn_dropout_p=ffn, attn_dropout_p=attn, resid_dropout_p=resid, token_dropout_p=token, learn_te=True)


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("Kronos-Tokenizer-base", "tokenizer", _tokenizer(256, 4, 512, 4, 10, 4), 512),
    Architecture("Kronos-Tokenizer-2k", "tokenizer", _tokenizer(256, 4, 512, 4, 10, 5), 2048),
    Architecture("Kronos-mini", "predictor", _predictor(256, 4, 4, 512, 10, 0.2, 0.0, 0.2, 0.0), 2048,
                 "Kronos-Tokenizer-2k"),
    Architecture("Kronos-small", "predictor", _predictor(512, 8, 8, 1024, 10, 0.25, 0.1, 0.25, 0.1), 512,
                 "Kronos-Tokenizer-base"),
    Architecture("Kronos-base", "predictor", _predictor(832, 12, 16, 2048, 10, 0.2, 0.0, 0.2, 0.0), 512,
                 "Kronos-Tokenizer-base"),
    # Tiny networks for the demo preset and the tests: train from scratch on 2 CPU cores.
    Architecture("tiny-tokenizer", "tokenizer", _tokenizer(48, 4, 96, 3, 6, 4), 512),
    Architecture("tiny-predictor", "predictor", _predictor(64, 2, 4, 128, 6, 0.1, 0.0, 0.1, 0.0), 512,
                 "tiny-tokenizer"),
    # The tiny networks of the official-baseline timings (reference/official-baselines.md).
    Architecture("baseline-tiny-tokenizer", "tokenizer", _tokenizer(64, 4, 128, 3, 8, 4), 512),
    Architecture("baseline-tiny-predictor", "predictor", _predictor(64, 2, 4, 128, 8, 0.2, 0.0, 0.2, 0.0), 512,
                 "baseline-tiny-tokenizer"),
)}

# The checkpoints released on the Hugging Face hub (the others are local configurations).
OFFICIAL_CHECKPOINTS = ("Kronos-Tokenizer-base", "Kronos-Tokenizer-2k", "Kronos-mini", "Kronos-small", "Kronos-base")


def kind_of_config(config: dict[str, Any]) -> Literal["tokenizer", "predictor"] | None:
    """Which network a ``config.json`` describes (the file holds no class name)."""
    keys = set(config)
    if set(TOKENIZER_KEYS) <= keys:
        return "tokenizer"
    if set(PREDICTOR_KEYS) <= keys:
        return "predictor"
    return None


def _block_params(d: int, ff: int) -> int:
    return 2 * d + 4 * (d * d + d) + 3 * d * ff


def tokenizer_params(c: dict[str, Any]) -> int:
    d, k = c["d_model"], c["s1_bits"] + c["s2_bits"]
    blocks = c["n_enc_layers"] + c["n_dec_layers"] - 2
    return ((c["d_in"] * d + d) + (d * c["d_in"] + c["d_in"]) + blocks * _block_params(d, c["ff_dim"])
            + (d * k + k) + (c["s1_bits"] * d + d) + (k * d + d))


CALENDAR_ROWS = 60 + 24 + 7 + 32 + 13      # minute, hour, weekday, day, month tables


def predictor_params(c: dict[str, Any]) -> int:
    """Trainable parameters; with ``learn_te`` false the calendar tables are frozen."""
    d, v1, v2 = c["d_model"], 2 ** c["s1_bits"], 2 ** c["s2_bits"]
    calendar = CALENDAR_ROWS * d if c["learn_te"] else 0
    return (v1 * d + v2 * d + (2 * d * d + d) + calendar + c["n_layers"] * _block_params(d, c["ff_dim"]) + d
            + (4 * (d * d + d) + d) + (d * v1 + v1 + d * v2 + v2))


def count_params(config: dict[str, Any]) -> int:
    kind = kind_of_config(config)
    if kind == "tokenizer":
        return tokenizer_params(config)
    if kind == "predictor":
        return predictor_params(config)
    raise ValueError("not a Kronos tokenizer or predictor config")


def resolve_architecture(name_or_config: str | dict[str, Any]) -> dict[str, Any]:
    """A published/tiny name, or a mapping of constructor fields, to a config dict."""
    if isinstance(name_or_config, dict):
        return dict(name_or_config)
    if name_or_config in ARCHITECTURES:
        return dict(ARCHITECTURES[name_or_config].config)
    raise KeyError(f"unknown architecture {name_or_config!r}; known: {', '.join(ARCHITECTURES)}")
