"""Which networks an evaluation scores, and loading them.

A run folder (its ``best/`` models, else what each stage started from) or a
tokenizer and a predictor folder in any order; the model before fine-tuning
(the config's pretrained folders) to compare against.  Loading imports torch,
inside ``load_models`` only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import EvaluationError

@dataclass
class ModelSource:
    """Where the networks come from (paths only: resolving never imports torch)."""
    tokenizer_path: Path
    predictor_path: Path
    run_dir: Path | None = None
    config_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": str(self.tokenizer_path), "predictor": str(self.predictor_path),
                "run_dir": str(self.run_dir) if self.run_dir else None,
                "config": str(self.config_path) if self.config_path else None, "notes": list(self.notes)}


def model_kind(folder: Path) -> str | None:
    """'tokenizer' / 'predictor' from a folder's config.json, None if it is no model folder."""
    from ..architectures import kind_of_config

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return kind_of_config(config) if isinstance(config, dict) else None


def _is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("config.yaml", "events.jsonl", "checkpoints"))


def resolve_model_source(refs: str | Path | Sequence[str | Path], logs_dir: Path | None = None) -> ModelSource:
    """A run folder (or run id / ``last`` in ``logs_dir``), an upstream experiment folder
    (``tokenizer/best_model`` + ``basemodel/best_model``), or two model folders in any order."""
    items = [refs] if isinstance(refs, (str, Path)) else list(refs)
    if not items:
        raise EvaluationError("no model given: pass a run folder, or a tokenizer folder and a predictor folder")
    if len(items) == 2:
        return _source_from_pair(Path(items[0]).expanduser(), Path(items[1]).expanduser())
    if len(items) > 2:
        raise EvaluationError(f"{len(items)} paths given; pass one run folder, or a tokenizer and a predictor folder")
    path = Path(items[0]).expanduser()
    if _is_run_folder(path):
        return _source_from_run(path)
    upstream = [path / "tokenizer" / "best_model", path / "basemodel" / "best_model"]
    if all(model_kind(p) for p in upstream):
        return _source_from_pair(*upstream)
    kind = model_kind(path) if path.is_dir() else None
    if kind is not None:
        other = "predictor" if kind == "tokenizer" else "tokenizer"
        raise EvaluationError(f"{path} is a {kind} folder; pass the {other} folder as well (in any order)")
    return _source_from_run(_find_run_folder(str(items[0]), path, logs_dir))


def _find_run_folder(ref: str, path: Path, logs_dir: Path | None) -> Path:
    from ..control.runfolder import find_run

    if path.exists() and not path.is_dir():
        raise EvaluationError(f"{path} is a file; pass a run folder or model folders (config.json + model.safetensors)")
    try:
        return find_run(ref, logs_dir).path
    except LookupError as exc:
        raise EvaluationError(f"{ref} is neither a run folder nor a model folder: {exc}") from None


def _source_from_pair(first: Path, second: Path) -> ModelSource:
    kinds = {}
    for folder in (first, second):
        kind = model_kind(folder)
        if kind is None:
            raise EvaluationError(f"{folder} is not a Kronos model folder (no readable config.json of a tokenizer "
                                  "or predictor); pass the folders that hold config.json + model.safetensors")
        if kind in kinds:
            raise EvaluationError(f"{kinds[kind]} and {folder} are both {kind} folders; pass one tokenizer and one predictor")
        kinds[kind] = folder
    return ModelSource(kinds["tokenizer"], kinds["predictor"])


def _source_from_run(run_dir: Path) -> ModelSource:
    config_path = run_dir / "config.yaml"
    cfg = config_of_run(run_dir) if config_path.is_file() else None
    source = ModelSource(Path(), Path(), run_dir=run_dir, config_path=config_path if cfg else None)
    for stage, kind in (("tokenizer", "tokenizer"), ("basemodel", "predictor")):
        best = run_dir / "checkpoints" / stage / "best"
        if model_kind(best) == kind:
            setattr(source, f"{kind}_path", best)
            continue
        fallback = _starting_folder(cfg, kind)
        if fallback is None:
            raise EvaluationError(f"{run_dir} has no {stage} model yet ({best} missing) and its config names no "
                                  f"pretrained {kind} folder that exists; wait for the {stage} stage to save a best model")
        setattr(source, f"{kind}_path", fallback)
        source.notes.append(f"{stage} stage has no best/ model: using {fallback} (the model it started from)")
    return source


def _starting_folder(cfg: Any, kind: str) -> Path | None:
    """Where the training engine finds a stage's model when the run has no best/ of its own:
    the tokenizer the basemodel stage trained on, or the predictor a skipped stage kept
    (an existing official best_model, else the pretrained one)."""
    if cfg is None:
        return None
    from ..control.run_config import basemodel_tokenizer, is_model_folder, official_best_model

    if kind == "tokenizer":
        return basemodel_tokenizer(cfg)
    candidates = [official_best_model(cfg, "basemodel"),
                  Path(cfg.model_paths.pretrained_predictor) if cfg.model_paths.pretrained_predictor else None]
    return next((c for c in candidates if is_model_folder(c) and model_kind(c) == "predictor"), None)


def pretrained_source(cfg: Any, evaluated: ModelSource) -> ModelSource | None:
    """The model before fine-tuning: both pretrained folders exist, the predictor started
    from them (not from scratch), and they are not what is being evaluated."""
    if cfg is None or not cfg.experiment.pre_trained_predictor:
        return None
    tok, pred = Path(cfg.model_paths.pretrained_tokenizer or "-"), Path(cfg.model_paths.pretrained_predictor or "-")
    if model_kind(tok) != "tokenizer" or model_kind(pred) != "predictor":
        return None
    if pred.resolve() == evaluated.predictor_path.resolve() and tok.resolve() == evaluated.tokenizer_path.resolve():
        return None
    return ModelSource(tok, pred)


def config_of_run(run_dir: Path) -> Any:
    """A run's resolved ``config.yaml`` as a KronosConfig (problems that only matter for
    launching, such as an empty pretrained path, are ignored here)."""
    from ..config import ConfigError
    from ..control.run_config import read_run_config

    try:
        return read_run_config(run_dir)[0]
    except ConfigError as exc:
        raise EvaluationError("; ".join(str(p) for p in exc.problems)) from None


def load_models(source: ModelSource, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, predictor) in eval mode; a bad folder or an unmatched pair is an EvaluationError."""
    from ..model import ModelLoadError, check_pair, load_predictor, load_tokenizer

    try:
        tokenizer = load_tokenizer(source.tokenizer_path, device=device)
        predictor = load_predictor(source.predictor_path, device=device)
    except ModelLoadError as exc:
        raise EvaluationError(str(exc)) from None
    errors = [p for p in check_pair(tokenizer, predictor) if p.level == "error"]
    if errors:
        raise EvaluationError(" ".join(f"{p.message} {p.hint}" for p in errors))
    return tokenizer, predictor


def load_run_models(run_or_dirs: str | Path | Sequence[str | Path], device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """(tokenizer, predictor, info) of a run folder or of two model folders.

    ``info`` holds the paths used, the run folder, its config path and notes
    (such as "the basemodel stage has no best/ model"). Raises EvaluationError.
    """
    source = resolve_model_source(run_or_dirs)
    tokenizer, predictor = load_models(source, device)
    return tokenizer, predictor, source.to_dict()


__all__ = ["ModelSource", "load_models", "config_of_run", "load_run_models", "model_kind", "pretrained_source",
           "resolve_model_source"]
