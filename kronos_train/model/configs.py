"""Configurations of the published Kronos checkpoints plus tiny ones for tests and demos."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from ..architectures import ARCHITECTURES, OFFICIAL_CHECKPOINTS

from .predictor import PREDICTOR_FIELDS, Kronos, normalize_predictor_config
from .tokenizer import TOKENIZER_FIELDS, KronosTokenizer, normalize_tokenizer_config

ModelKind = Literal["tokenizer", "predictor"]


class PublishedConfig(NamedTuple):
    kind: ModelKind
    config: dict[str, Any]
    context: int  # context length the model was trained for (README model zoo)


# One table for the whole project: kronos_train.architectures (light, no torch)
# also serves the checklist and the TUI.
PUBLISHED_CONFIGS: dict[str, PublishedConfig] = {
    name: PublishedConfig(arch.kind, dict(arch.config), arch.context) for name, arch in ARCHITECTURES.items()
}

# Which tokenizer each published predictor was trained with (README model zoo).
PUBLISHED_PAIRS: dict[str, str] = {name: arch.pairs_with for name, arch in ARCHITECTURES.items() if arch.pairs_with}


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
