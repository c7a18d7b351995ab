"""The one reader of a run's resolved ``config.yaml``, and what the control plane derives from it.

One error policy for every reader:

* ``read_run_config`` raises :class:`~kronos_train.config.ConfigError` only when
  the file cannot be a config at all (missing, unreadable, not YAML, not a
  mapping); otherwise it returns the config and every problem found, and the
  caller decides what a problem means to it (the Runs screen shows the run
  anyway, ``evaluate`` needs only the data and model fields).
* ``load_run_config`` is the strict form for starting and resuming a run: any
  error is a :class:`LaunchError`.

Also here, because the supervisor, the launcher and the training stages all
need them and the stages must not import the launcher: the path fields of a
config, the data file's fingerprint, and where a stage's models live.

Light module: no torch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import PATH_FIELDS, ConfigError, ConfigProblem, KronosConfig, errors_of, from_dict, read_yaml
from .runfolder import RunFolder


class LaunchError(Exception):
    """Nothing was started; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------- reading

def read_run_config(run_dir: str | os.PathLike) -> tuple[KronosConfig, list[ConfigProblem]]:
    """The config a run was started with and its problems; ConfigError when unreadable."""
    path = Path(run_dir) / "config.yaml"
    return from_dict(read_yaml(path), source=str(path))


def load_run_config(run: RunFolder) -> KronosConfig:
    """The run's resolved config; LaunchError when it no longer validates."""
    try:
        cfg, problems = read_run_config(run.path)
    except ConfigError as exc:
        raise LaunchError([str(p) for p in exc.problems]) from None
    if errors_of(problems):
        raise LaunchError([str(p) for p in errors_of(problems)])
    return cfg


# --------------------------------------------------------------------------- paths

def absolute_paths(cfg: KronosConfig, base: Path) -> None:
    """Make the run independent of the folder a later resume is started from."""
    for section, name in PATH_FIELDS:
        obj = getattr(cfg, section)
        value = getattr(obj, name)
        if value and not os.path.isabs(value):
            setattr(obj, name, str((base / value).resolve()) + ("/" if value.endswith("/") else ""))


def data_fingerprint(cfg: KronosConfig) -> dict[str, Any] | None:
    """Size and sampled content hash of the data file (mtime left out: regenerated
    synthetic data is the same data)."""
    from ..data.cache import file_fingerprint

    try:
        found = file_fingerprint(cfg.data.data_path)
    except OSError:
        return None
    return {"size": found["size"], "sample_hash": found["sample_hash"]}


# --------------------------------------------------------------------------- where a stage's models live

def official_save_root(cfg: KronosConfig) -> Path | None:
    """``base_save_path`` (may contain ``{exp_name}``), else ``base_path/exp_name`` (spec §7.6)."""
    mp = cfg.model_paths
    if mp.base_save_path:
        return Path(mp.base_save_path.replace("{exp_name}", mp.exp_name))
    if mp.base_path:
        return Path(mp.base_path) / mp.exp_name
    return None


def official_best_model(cfg: KronosConfig, stage: str) -> Path | None:
    """Where the official pipeline keeps a stage's best model: ``<root>/<save_name>/best_model``."""
    root = official_save_root(cfg)
    if root is None:
        return None
    name = cfg.model_paths.tokenizer_save_name if stage == "tokenizer" else cfg.model_paths.basemodel_save_name
    return root / name / "best_model"


def is_model_folder(path: Path | None) -> bool:
    return path is not None and (path / "config.json").is_file() and (
        (path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file())


def skip_reason(cfg: KronosConfig, stage: str) -> str | None:
    """Why a stage is not trained in this run (the seed's train_kaggle.sh flags), or None."""
    wanted = cfg.experiment.train_tokenizer if stage == "tokenizer" else cfg.experiment.train_basemodel
    if not wanted:
        return f"--skip-{stage} (experiment.train_{stage}: false)"
    existing = official_best_model(cfg, stage)
    if cfg.experiment.skip_existing and is_model_folder(existing):
        return f"--skip-existing: a best model already exists at {existing}"
    return None


def basemodel_tokenizer(cfg: KronosConfig, run: RunFolder | None = None) -> Path | None:
    """The tokenizer the basemodel stage trains on: this run's stage-1 best model,
    else ``model_paths.finetuned_tokenizer`` (default: the official stage-1 place),
    else the pretrained tokenizer."""
    if run is not None and is_model_folder(run.checkpoint_dir("tokenizer", "best")):
        return run.checkpoint_dir("tokenizer", "best")
    mp = cfg.model_paths
    candidates = [Path(mp.finetuned_tokenizer.replace("{exp_name}", mp.exp_name)) if mp.finetuned_tokenizer else None,
                  official_best_model(cfg, "tokenizer"),
                  Path(mp.pretrained_tokenizer) if mp.pretrained_tokenizer else None]
    return next((c for c in candidates if is_model_folder(c)), None)


__all__ = ["LaunchError", "absolute_paths", "basemodel_tokenizer", "data_fingerprint",
           "is_model_folder", "load_run_config", "official_best_model", "official_save_root", "read_run_config",
           "skip_reason"]
