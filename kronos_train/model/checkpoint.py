"""Checkpoint I/O in the official PyTorchModelHubMixin folder format (spec §5).

A folder holds `config.json` (constructor arguments), `model.safetensors`
(every parameter and persistent buffer) and a model-card `README.md`. Unlike
the official `from_pretrained` (strict=False), loading here is strict about
keys and shapes, except for the constant buffers, and every failure raises a
`ModelLoadError` that names the file and says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .configs import PUBLISHED_CONFIGS, PUBLISHED_PAIRS, config_kind, find_published_name
from .modules import unwrap_model
from .predictor import PREDICTOR_FIELDS, Kronos
from .tokenizer import TOKENIZER_FIELDS, KronosTokenizer

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"
MODEL_CARD_NAME = "README.md"
# Constants recomputed by the constructors: a checkpoint may or may not contain them.
OPTIONAL_BUFFER_SUFFIXES = (".rotary.inv_freq",)
OPTIONAL_BUFFER_KEYS = ("tokenizer.bsq.basis", "tokenizer.bsq.group_basis")
# The card huggingface_hub 0.33 writes; no trailing newline, like the official files.
MODEL_CARD = (
    "---\ntags:\n- model_hub_mixin\n- pytorch_model_hub_mixin\n---\n\n"
    "This model has been pushed to the Hub using the [PytorchModelHubMixin]"
    "(https://huggingface.co/docs/huggingface_hub/package_reference/mixins#huggingface_hub.PyTorchModelHubMixin)"
    " integration:\n- Code: [More Information Needed]\n- Paper: [More Information Needed]\n"
    "- Docs: [More Information Needed]"
)
KIND_NAMES = {"tokenizer": "a Kronos tokenizer", "predictor": "a Kronos predictor"}


class ModelLoadError(ValueError):
    """A checkpoint folder cannot be loaded; the message names the path and the fix."""


def config_json_text(config: dict[str, Any]) -> str:
    """config.json exactly as the mixin writes it (sorted keys, indent 2, no final newline)."""
    return json.dumps(config, sort_keys=True, indent=2)


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write config.json, model.safetensors and README.md readable by the official from_pretrained."""
    model = unwrap_model(model)
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no .config dict; only Kronos models can be saved")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / SAFETENSORS_NAME))
    (directory / CONFIG_NAME).write_text(config_json_text(config), encoding="utf-8")
    (directory / MODEL_CARD_NAME).write_text(MODEL_CARD, encoding="utf-8")
    return directory


def read_config(path: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, with errors that say what is wrong."""
    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(
            f"checkpoint folder {folder} does not exist. Check the path; a Hugging Face model must be "
            f"downloaded first (for example `huggingface-cli download NeoQuasar/Kronos-small --local-dir {folder}`)."
        )
    if not folder.is_dir():
        raise ModelLoadError(
            f"{folder} is a file, not a checkpoint folder. Pass the folder that contains "
            f"{CONFIG_NAME} and {SAFETENSORS_NAME}."
        )
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ModelLoadError(
            f"{config_path} is missing: {folder} is not a Kronos checkpoint folder. Pass the folder that "
            f"contains {CONFIG_NAME} and {SAFETENSORS_NAME} (for fine-tuned models, .../best_model)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"{config_path} is not valid JSON ({exc}). Restore it from the original download or re-save the model."
        ) from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path} must hold a JSON object of constructor arguments, got {type(config).__name__}.")
    return config


def detect_kind(config: dict[str, Any], config_path: Path) -> Literal["tokenizer", "predictor"]:
    kind = config_kind(config)
    if kind is not None:
        return kind
    keys = set(config)
    # Name the closest kind so the message can list what is missing or extra.
    best = "tokenizer" if len(keys & TOKENIZER_FIELDS) >= len(keys & PREDICTOR_FIELDS) else "predictor"
    fields = TOKENIZER_FIELDS if best == "tokenizer" else PREDICTOR_FIELDS
    raise ModelLoadError(
        f"{config_path} matches neither a Kronos tokenizer nor a Kronos predictor config "
        f"(closest: {best}; missing keys {sorted(fields - keys)}, unknown keys {sorted(keys - fields)}). "
        "Fix the keys or re-save the model with save_pretrained."
    )


def read_state_dict(folder: Path) -> tuple[dict[str, torch.Tensor], Path]:
    safetensors_path = folder / SAFETENSORS_NAME
    pickle_path = folder / PICKLE_NAME
    if safetensors_path.is_file():
        try:
            return load_file(str(safetensors_path), device="cpu"), safetensors_path
        except Exception as exc:  # safetensors raises its own error types
            raise ModelLoadError(
                f"{safetensors_path} cannot be read ({exc}). The file is probably truncated: download or save it again."
            ) from exc
    if pickle_path.is_file():
        try:
            return torch.load(pickle_path, map_location="cpu", weights_only=True), pickle_path
        except Exception as exc:
            raise ModelLoadError(f"{pickle_path} cannot be read ({exc}). Download or save it again.") from exc
    raise ModelLoadError(
        f"no weights in {folder}: expected {SAFETENSORS_NAME} (or {PICKLE_NAME}) next to {CONFIG_NAME}. "
        "The download or save was probably interrupted: fetch the model again."
    )


def is_optional_buffer(key: str) -> bool:
    return key in OPTIONAL_BUFFER_KEYS or key.endswith(OPTIONAL_BUFFER_SUFFIXES)


def strip_wrapper_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept state dicts saved from a DDP- or compile-wrapped model."""
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def few(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], weights_path: Path, kind: str) -> None:
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state and not is_optional_buffer(k))
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {few(unexpected)}")
        raise ModelLoadError(
            f"{weights_path} does not match the {kind} described by its config.json: {'; '.join(parts)}. "
            "The weights and config.json come from different models: keep the files of one save together."
        )
    for key, tensor in state.items():
        want = tuple(expected[key].shape)
        if tuple(tensor.shape) != want:
            raise ModelLoadError(
                f"{weights_path}: shape mismatch for {key}: config.json implies {list(want)}, "
                f"the file has {list(tensor.shape)}. The weights and config.json come from different models."
            )


def load_model(path: str | Path, device: str | torch.device = "cpu") -> KronosTokenizer | Kronos:
    """Tokenizer or predictor from a checkpoint folder (kind detected from config.json), in eval mode."""
    folder = Path(path)
    config = read_config(folder)
    kind = detect_kind(config, folder / CONFIG_NAME)
    return _load(folder, config, kind, device)


def load_tokenizer(path: str | Path, device: str | torch.device = "cpu") -> KronosTokenizer:
    """KronosTokenizer from a checkpoint folder, in eval mode."""
    return _load_expected(path, "tokenizer", device)  # type: ignore[return-value]


def load_predictor(path: str | Path, device: str | torch.device = "cpu") -> Kronos:
    """Kronos predictor from a checkpoint folder, in eval mode."""
    return _load_expected(path, "predictor", device)  # type: ignore[return-value]


def _load_expected(path: str | Path, expected: str, device: str | torch.device) -> nn.Module:
    folder = Path(path)
    config = read_config(folder)
    kind = detect_kind(config, folder / CONFIG_NAME)
    if kind != expected:
        raise ModelLoadError(
            f"{folder} holds {KIND_NAMES[kind]}, but {KIND_NAMES[expected]} was expected here. "
            f"Swap the tokenizer and predictor paths."
        )
    return _load(folder, config, kind, device)


def _load(folder: Path, config: dict[str, Any], kind: str, device: str | torch.device) -> nn.Module:
    try:
        model: nn.Module = KronosTokenizer(**config) if kind == "tokenizer" else Kronos(**config)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{folder / CONFIG_NAME} has invalid values: {exc}") from exc
    state, weights_path = read_state_dict(folder)
    state = strip_wrapper_prefix(state)
    check_state_dict(model, state, weights_path, kind)
    model.load_state_dict(state, strict=False)
    model.source_path = str(folder)  # lets check_pair and the UI name the folder
    return model.to(device).train(False)


@dataclass(frozen=True)
class PairProblem:
    level: Literal["error", "warning"]
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message} {self.hint}".strip()


def _describe(model: Any, kind: str) -> str:
    source = getattr(unwrap_model(model), "source_path", None) if isinstance(model, nn.Module) else None
    return f"{kind} {source}" if source else kind


def _config_of(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    return unwrap_model(model).config


def check_pair(tokenizer: Any, predictor: Any, max_context: int | None = None) -> list[PairProblem]:
    """Problems of using `tokenizer` with `predictor` (models or config dicts); empty list = fine."""
    tok_cfg, pred_cfg = _config_of(tokenizer), _config_of(predictor)
    tok_name, pred_name = _describe(tokenizer, "tokenizer"), _describe(predictor, "predictor")
    problems: list[PairProblem] = []
    for field in ("s1_bits", "s2_bits"):
        if tok_cfg[field] != pred_cfg[field]:
            problems.append(PairProblem(
                "error",
                f"{field} differs: the {tok_name} has {tok_cfg[field]}, the {pred_name} expects {pred_cfg[field]}.",
                "Use the tokenizer the predictor was trained with (Kronos-small and Kronos-base: "
                "Kronos-Tokenizer-base; Kronos-mini: Kronos-Tokenizer-2k; a fine-tuned predictor: the tokenizer "
                "fine-tuned with it), or train the predictor on this tokenizer.",
            ))
    if tok_cfg["d_in"] != 6:
        problems.append(PairProblem(
            "warning",
            f"the {tok_name} has d_in={tok_cfg['d_in']}, but forecasting feeds 6 columns "
            "(open, high, low, close, volume, amount).",
            "Use a tokenizer with d_in=6 for KronosPredictor.",
        ))
    problems += _published_pair_problems(tok_cfg, pred_cfg, tok_name, pred_name)
    problems += _context_problems(pred_cfg, pred_name, max_context)
    return problems


def _published_pair_problems(
    tok_cfg: dict[str, Any], pred_cfg: dict[str, Any], tok_name: str, pred_name: str
) -> list[PairProblem]:
    pred_published = find_published_name(pred_cfg, official_only=True)
    tok_published = find_published_name(tok_cfg, official_only=True)
    wanted = PUBLISHED_PAIRS.get(pred_published or "")
    if wanted is None or tok_published is None or tok_published == wanted:
        return []
    # Tokenizer-base and -2k share every config value but group_size, so this is only a hint.
    return [PairProblem(
        "warning",
        f"the {pred_name} has the {pred_published} architecture, which was trained with {wanted}, "
        f"but the {tok_name} looks like {tok_published}.",
        f"Use {wanted} unless this tokenizer was fine-tuned for this predictor.",
    )]


def _context_problems(pred_cfg: dict[str, Any], pred_name: str, max_context: int | None) -> list[PairProblem]:
    if max_context is None:
        return []
    if max_context < 1:
        return [PairProblem("error", f"max_context must be at least 1, got {max_context}.", "Set a positive context length.")]
    published = find_published_name(pred_cfg, official_only=True)
    if published is None:
        return []
    trained = PUBLISHED_CONFIGS[published].context
    if max_context <= trained:
        return []
    return [PairProblem(
        "warning",
        f"max_context={max_context} exceeds the {trained} positions the {pred_name} "
        f"({published} architecture) was trained with.",
        f"Use max_context <= {trained}; longer windows reach positions the model never saw.",
    )]
