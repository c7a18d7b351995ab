"""Configurations of the published Kronos checkpoints plus tiny ones for tests and demos."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from .predictor import PREDICTOR_FIELDS, Kronos, normalize_predictor_config
from .tokenizer import TOKENIZER_FIELDS, KronosTokenizer, normalize_tokenizer_config

ModelKind = Literal["tokenizer", "predictor"]


class PublishedConfig(NamedTuple):
    kind: ModelKind
    config: dict[str, Any]
    context: int  # context length the model was trained for (README model zoo)


def _tokenizer(d_model: int, n_heads: int, ff_dim: int, layers: int, bits: int, group_size: int) -> dict[str, Any]:
    return dict(
        d_in=6, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim, n_enc_layers=layers, n_dec_layers=layers,
        ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=bits, s2_bits=bits,
        beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=group_size,
    )


def _predictor(
    d_model: int, n_layers: int, n_heads: int, ff_dim: int, bits: int, dropouts: tuple[float, float, float, float]
) -> dict[str, Any]:
    ffn, attn, resid, token = dropouts
    return dict(
        s1_bits=bits, s2_bits=bits, n_layers=n_layers, d_model=d_model, n_heads=n_heads, ff_dim=ff_dim,
        ffn_dropout_p=ffn, attn_dropout_p=attn, resid_dropout_p=resid, token_dropout_p=token, learn_te=True,
    )


# Sources and parameter-count cross-checks: spec §3.1 and §4.1.
PUBLISHED_CONFIGS: dict[str, PublishedConfig] = {
    "Kronos-Tokenizer-base": PublishedConfig("tokenizer", _tokenizer(256, 4, 512, 4, 10, 4), 512),
    "Kronos-Tokenizer-2k": PublishedConfig("tokenizer", _tokenizer(256, 4, 512, 4, 10, 5), 2048),
    "Kronos-mini": PublishedConfig("predictor", _predictor(256, 4, 4, 512, 10, (0.2, 0.0, 0.2, 0.0)), 2048),
    "Kronos-small": PublishedConfig("predictor", _predictor(512, 8, 8, 1024, 10, (0.25, 0.1, 0.25, 0.1)), 512),
    "Kronos-base": PublishedConfig("predictor", _predictor(832, 12, 16, 2048, 10, (0.2, 0.0, 0.2, 0.0)), 512),
    # Small enough to train from scratch on two CPU cores in a demo (same dicts as kronos_train.architectures).
    "tiny-tokenizer": PublishedConfig("tokenizer", _tokenizer(48, 4, 96, 3, 6, 4), 512),
    "tiny-predictor": PublishedConfig("predictor", _predictor(64, 2, 4, 128, 6, (0.1, 0.0, 0.1, 0.0)), 512),
    # The tiny models of the official-baseline timings (reference/official-baselines.md).
    "baseline-tiny-tokenizer": PublishedConfig("tokenizer", _tokenizer(64, 4, 128, 3, 8, 4), 512),
    "baseline-tiny-predictor": PublishedConfig("predictor", _predictor(64, 2, 4, 128, 8, (0.2, 0.0, 0.2, 0.0)), 512),
}

# The checkpoints actually released on the Hugging Face hub (the others are local presets).
OFFICIAL_CHECKPOINTS = ("Kronos-Tokenizer-base", "Kronos-Tokenizer-2k", "Kronos-mini", "Kronos-small", "Kronos-base")

# Which tokenizer each published predictor was trained with (README model zoo).
PUBLISHED_PAIRS: dict[str, str] = {
    "Kronos-mini": "Kronos-Tokenizer-2k",
    "Kronos-small": "Kronos-Tokenizer-base",
    "Kronos-base": "Kronos-Tokenizer-base",
    "tiny-predictor": "tiny-tokenizer",
    "baseline-tiny-predictor": "baseline-tiny-tokenizer",
}


def config_kind(config: dict[str, Any]) -> ModelKind | None:
    """'tokenizer' or 'predictor' from the key set of a config dict, None if neither."""
    keys = set(config)
    if keys == TOKENIZER_FIELDS:
        return "tokenizer"
    if keys == PREDICTOR_FIELDS:
        return "predictor"
    return None


def find_published_name(config: dict[str, Any], official_only: bool = False) -> str | None:
    """Name of the PUBLISHED_CONFIGS entry equal to `config` (fine-tuned copies keep their config).

    official_only restricts the search to the released Hugging Face checkpoints.
    """
    for name, entry in PUBLISHED_CONFIGS.items():
        if entry.config == config and (not official_only or name in OFFICIAL_CHECKPOINTS):
            return name
    return None


def resolve_config(name_or_dict: str | dict[str, Any], expected: ModelKind) -> dict[str, Any]:
    if isinstance(name_or_dict, dict):
        config = dict(name_or_dict)
        kind = config_kind(config)
        if kind is not None and kind != expected:
            raise ValueError(f"this is a {kind} config, but a {expected} config was expected")
        # Reports missing / unknown keys by name instead of a TypeError from the constructor.
        normalize = normalize_tokenizer_config if expected == "tokenizer" else normalize_predictor_config
        return normalize(config)
    entry = PUBLISHED_CONFIGS.get(name_or_dict)
    if entry is None:
        known = ", ".join(n for n, e in PUBLISHED_CONFIGS.items() if e.kind == expected)
        raise ValueError(f"unknown {expected} config {name_or_dict!r}; known: {known}")
    if entry.kind != expected:
        raise ValueError(f"{name_or_dict!r} is a {entry.kind} config, but a {expected} config was expected")
    return dict(entry.config)


def build_tokenizer(name_or_dict: str | dict[str, Any]) -> KronosTokenizer:
    """Randomly initialised tokenizer from a PUBLISHED_CONFIGS name or a config dict."""
    return KronosTokenizer(**resolve_config(name_or_dict, "tokenizer"))


def build_predictor(name_or_dict: str | dict[str, Any]) -> Kronos:
    """Randomly initialised predictor from a PUBLISHED_CONFIGS name or a config dict."""
    return Kronos(**resolve_config(name_or_dict, "predictor"))
