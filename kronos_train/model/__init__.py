"""Kronos tokenizer and predictor, compatible with the official checkpoints.

See docs/model.md for the API and the deliberate differences from upstream.
"""

from .checkpoint import (
    ModelLoadError,
    PairProblem,
    check_pair,
    load_model,
    load_predictor,
    load_tokenizer,
    save_pretrained,
)
from .configs import (
    PUBLISHED_CONFIGS,
    PUBLISHED_PAIRS,
    PublishedConfig,
    build_predictor,
    build_tokenizer,
    find_published_name,
)
from .forecast import (
    KronosPredictor,
    auto_regressive_inference,
    forecast_normalized,
    sample_from_logits,
)
from .losses import predictor_loss, tokenizer_loss, tokenizer_val_loss
from .modules import set_gradient_checkpointing, unwrap_model
from ..architectures import predictor_params as predictor_parameter_count
from ..architectures import tokenizer_params as tokenizer_parameter_count
from .predictor import Kronos
from .tokenizer import KronosTokenizer

__all__ = [
    "PUBLISHED_CONFIGS",
    "PUBLISHED_PAIRS",
    "Kronos",
    "KronosPredictor",
    "KronosTokenizer",
    "ModelLoadError",
    "PairProblem",
    "PublishedConfig",
    "auto_regressive_inference",
    "build_predictor",
    "build_tokenizer",
    "check_pair",
    "find_published_name",
    "forecast_normalized",
    "load_model",
    "load_predictor",
    "load_tokenizer",
    "predictor_loss",
    "predictor_parameter_count",
    "sample_from_logits",
    "save_pretrained",
    "set_gradient_checkpointing",
    "tokenizer_loss",
    "tokenizer_parameter_count",
    "tokenizer_val_loss",
    "unwrap_model",
]
