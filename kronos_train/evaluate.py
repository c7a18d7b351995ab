"""Forecast evaluation against baselines, and the after-run inference check.

Kronos users' most common disappointment is a fine-tune that made forecasts
worse without anyone noticing.  ``evaluate`` scores the model where the
competition scores it, H trading days ahead, on validation windows, next to
baselines that need no model:

- ``model``: the evaluated tokenizer + predictor (a run's ``best/`` folders);
- ``pretrained``: the model before fine-tuning (``model_paths.pretrained_*`` of
  the config, when both folders exist and the predictor started from them);
- ``always_up``: predicts a rise every time;
- ``majority``: the majority direction of H-step close changes of the ticker's
  own training rows (a tie or a ticker without H+1 training rows falls back to
  ``majority_global``);
- ``majority_global``: the same majority pooled over every ticker's training rows
  (an exact 50/50 tie counts as up);
- ``persistence``: the last close stays (return 0).  The target is "close *higher*",
  so an unchanged close is *not* a rise: persistence predicts "not up" every time,
  and a window whose true close equals the last close counts as "not up" too.

A horizon window of ticker k is ``lookback`` rows of history followed by H rows
whose last close is the target; the H rows lie in the ticker's validation
period (the same per-ticker time split as the data pipeline), the history may
reach back into the training period.  Metrics per model: ``direction_accuracy``
(forecast close at t+H above the last close, against the truth), ``mae_return``
(mean |predicted return - true return|, returns relative to the last close; null
for the direction-only baselines), ``up_share`` (share of windows predicted up),
and for networks ``ce``/``ce_s1``/``ce_s2`` (the training loss on the pipeline's
validation windows, each pair scored with its own tokenizer).

Light at import (numpy only): the checklist imports this module; torch loads
inside the functions that run networks.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .checks import CheckResult
from .events import finite_json

CLOSE = 3                     # column of the close in open, high, low, close, volume, amount
STD_EPS = 1e-5                # the official normalisation epsilon
EVAL_FILE = "eval.json"
BASELINE_NAMES = ("always_up", "majority", "majority_global", "persistence")
DIRECTION_ONLY = ("always_up", "majority", "majority_global")
METRICS = ("direction_accuracy", "mae_return", "up_share", "ce", "ce_s1", "ce_s2")


class EvaluationError(ValueError):
    """A user-facing problem (bad path, data too short, ...); the message says what to do."""


# --------------------------------------------------------------------------- model sources

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
    from .architectures import kind_of_config

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
    from .runfolder import find_run

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
    cfg = load_run_config(run_dir) if config_path.is_file() else None
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
    from .launch import basemodel_tokenizer, is_model_folder, official_best_model

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


def load_run_config(run_dir: Path) -> Any:
    """A run's resolved ``config.yaml`` as a KronosConfig (problems that only matter for
    launching, such as an empty pretrained path, are ignored here)."""
    from .config import load_preset

    cfg, problems = load_preset(run_dir / "config.yaml")
    fatal = [p for p in problems if p.path in ("<yaml>", "<root>", "<file>", "config", "extends")]
    if fatal:
        raise EvaluationError("; ".join(str(p) for p in fatal))
    return cfg


def load_models(source: ModelSource, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, predictor) in eval mode; a bad folder or an unmatched pair is an EvaluationError."""
    from .model import ModelLoadError, check_pair, load_predictor, load_tokenizer

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


# --------------------------------------------------------------------------- horizon windows

def split_rows(lengths: np.ndarray, train_ratio: float, val_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, end of the validation rows) per ticker: the data pipeline's split
    (kronos_train/data/windows.py), floor(n * ratio) guarded against 0.7 + 0.2 = 0.8999."""
    lengths = np.asarray(lengths, np.int64)
    n_train = np.floor(lengths * float(train_ratio) + 1e-9).astype(np.int64)
    val_end = np.minimum(np.floor(lengths * float(train_ratio + val_ratio) + 1e-9).astype(np.int64), lengths)
    return n_train, val_end


def horizon_window_starts(offsets: np.ndarray, lookback: int, horizon: int, train_ratio: float,
                          val_ratio: float) -> np.ndarray:
    """Global start rows of every validation window for horizon H.

    Window = rows ``s .. s + lookback + H - 1`` of one ticker; the H target rows
    ``s + lookback ..`` lie in ``[n_train, val_end)``; the history may start in
    the training rows.  Ticker by ticker, in time order.
    """
    offsets = np.asarray(offsets, np.int64)
    n_train, val_end = split_rows(np.diff(offsets), train_ratio, val_ratio)
    first = np.maximum(n_train - lookback, 0)
    counts = np.maximum(val_end - lookback - horizon - first + 1, 0)
    counts = np.where(val_end > n_train, counts, 0)
    parts = [np.arange(o + f, o + f + c, dtype=np.int64) for o, f, c in zip(offsets[:-1], first, counts) if c]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``range(n)``, spread evenly (deterministic, covers every ticker span)."""
    if limit <= 0 or n <= limit:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


@dataclass
class HorizonTargets:
    """What every window is judged on (raw prices; returns relative to the last close)."""
    starts: np.ndarray
    ticker: np.ndarray          # ticker index of each window
    last_close: np.ndarray
    true_return: np.ndarray

    @property
    def true_up(self) -> np.ndarray:
        return self.true_return > 0

    def __len__(self) -> int:
        return len(self.starts)


def ticker_of_rows(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(offsets), rows, side="right") - 1


def horizon_targets(values: np.ndarray, offsets: np.ndarray, starts: np.ndarray, lookback: int,
                    horizon: int) -> HorizonTargets:
    starts = np.asarray(starts, np.int64)
    last_close = np.asarray(values[starts + lookback - 1, CLOSE], np.float64)
    target = np.asarray(values[starts + lookback + horizon - 1, CLOSE], np.float64)
    return HorizonTargets(starts, ticker_of_rows(offsets, starts), last_close, target / last_close - 1.0)


# --------------------------------------------------------------------------- metrics and baselines

def direction_accuracy(pred_up: np.ndarray, true_up: np.ndarray) -> float | None:
    pred_up, true_up = np.asarray(pred_up, bool), np.asarray(true_up, bool)
    return float(np.mean(pred_up == true_up)) if len(true_up) else None


def mae(pred: np.ndarray | None, truth: np.ndarray) -> float | None:
    if pred is None or not len(truth):
        return None
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64))))


def score(pred_up: np.ndarray, pred_return: np.ndarray | None, targets: HorizonTargets) -> dict[str, float | None]:
    """direction_accuracy, mae_return, up_share of one set of predictions."""
    pred_up = np.broadcast_to(np.asarray(pred_up, bool), targets.true_up.shape)
    return {"direction_accuracy": direction_accuracy(pred_up, targets.true_up),
            "mae_return": mae(pred_return, targets.true_return),
            "up_share": float(pred_up.mean()) if len(pred_up) else None}


@dataclass
class TrainingMajority:
    """Share of rising H-step closes in the training rows, per ticker and pooled."""
    up_share: np.ndarray        # per ticker, NaN where the ticker has fewer than H + 1 training rows
    global_share: float

    @property
    def global_up(self) -> bool:
        return not self.global_share < 0.5        # an exact tie counts as up

    def ticker_up(self) -> np.ndarray:
        """Per-ticker majority; a tie or no data falls back to the global majority."""
        share = self.up_share
        undecided = np.isnan(share) | (share == 0.5)
        return np.where(undecided, self.global_up, share > 0.5)


def training_majority(values: np.ndarray, offsets: np.ndarray, horizon: int, train_ratio: float,
                      val_ratio: float = 0.0) -> TrainingMajority:
    """Pairs (t, t+H) of one ticker with both rows in its training period."""
    offsets = np.asarray(offsets, np.int64)
    lengths = np.diff(offsets)
    n_train, _ = split_rows(lengths, train_ratio, val_ratio)
    # int32 indices: 20M Kaggle rows cost 80 MB per array instead of 160.
    ticker = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    position = (np.arange(int(offsets[-1]), dtype=np.int64) - offsets[:-1][ticker]).astype(np.int32)
    rows = np.flatnonzero(position + horizon < n_train[ticker])
    close = values[:, CLOSE]
    up = (close[rows + horizon] > close[rows]).astype(np.float64)
    pairs = np.bincount(ticker[rows], minlength=len(lengths)).astype(np.float64)
    ups = np.bincount(ticker[rows], weights=up, minlength=len(lengths))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(pairs > 0, ups / pairs, np.nan)
    global_share = float(ups.sum() / pairs.sum()) if pairs.sum() else 0.5
    return TrainingMajority(share, global_share)


def baseline_metrics(targets: HorizonTargets, majority: TrainingMajority) -> dict[str, dict[str, float | None]]:
    n = len(targets)
    return {
        "always_up": score(np.ones(n, bool), None, targets),
        "majority": score(majority.ticker_up()[targets.ticker], None, targets),
        "majority_global": score(np.full(n, majority.global_up), None, targets),
        "persistence": score(np.zeros(n, bool), np.zeros(n), targets),
    }


# --------------------------------------------------------------------------- forecasting (torch)

@dataclass
class ForecastSettings:
    """Sampling and batching of autoregressive forecasts (evaluation section of a preset)."""
    sample_count: int = 5
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 0
    max_context: int = 512
    clip: float = 5.0
    seed: int = 0
    batch_size: int = 64
    use_cache: bool = True          # the exact KV cache of kronos_train.model (off: upstream's full recompute)

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "ForecastSettings":
        ev = cfg.evaluation
        settings = cls(sample_count=ev.sample_count, temperature=ev.temperature, top_p=ev.top_p, top_k=ev.top_k,
                       max_context=cfg.data.max_context, clip=cfg.data.clip, seed=cfg.training.seed)
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


Progress = Callable[[int, int, int, int], None]     # (batch, batches, done, total)


def normalize_history(raw: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training normalisation (the data pipeline's, statistics of the history rows
    only, as the official KronosPredictor): (x [B,L,6], mean [B,6], std [B,6])."""
    from .data import normalize_window

    return normalize_window(np.asarray(raw, np.float32), raw.shape[1], clip)


def forecast_close(tokenizer: Any, predictor: Any, history: np.ndarray, x_stamp: np.ndarray, y_stamp: np.ndarray,
                   settings: ForecastSettings, seed_offset: int = 0) -> np.ndarray:
    """Forecast close at the last of ``y_stamp``'s steps, in raw units, for a batch of
    equal-length histories (raw [B, L, 6]); NaN where the forecast is not finite."""
    from .model import forecast_normalized

    x, mean, std = normalize_history(history, settings.clip)
    mean, std = mean.astype(np.float64), std.astype(np.float64)
    horizon = y_stamp.shape[1]
    pred = forecast_normalized(tokenizer, predictor, x, x_stamp.astype(np.float32), y_stamp.astype(np.float32),
                               pred_len=horizon, max_context=settings.max_context, clip=settings.clip,
                               T=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                               sample_count=settings.sample_count, seed=settings.seed + seed_offset,
                               use_cache=settings.use_cache)
    close = pred[:, -1, CLOSE].astype(np.float64) * (std[:, CLOSE] + STD_EPS) + mean[:, CLOSE]
    return np.where(np.isfinite(close), close, np.nan)


def forecast_windows(tokenizer: Any, predictor: Any, values: np.ndarray, stamps: np.ndarray, starts: np.ndarray,
                     lookback: int, horizon: int, settings: ForecastSettings,
                     progress: Progress | None = None) -> np.ndarray:
    """Forecast close at t+H for every horizon window, in batches (raw units)."""
    out = np.empty(len(starts), np.float64)
    history_rows = np.arange(lookback)
    future_rows = np.arange(lookback, lookback + horizon)
    batches = range(0, len(starts), settings.batch_size)
    for b, lo in enumerate(batches):
        chunk = starts[lo:lo + settings.batch_size]
        raw = np.asarray(values[chunk[:, None] + history_rows], np.float32)
        x_stamp = np.asarray(stamps[chunk[:, None] + history_rows], np.float32)
        # The future time features are known on a validation window: use the real ones.
        y_stamp = np.asarray(stamps[chunk[:, None] + future_rows], np.float32)
        out[lo:lo + len(chunk)] = forecast_close(tokenizer, predictor, raw, x_stamp, y_stamp, settings, seed_offset=b)
        if progress:
            progress(b + 1, len(batches), lo + len(chunk), len(starts))
    return out


def model_metrics(pred_close: np.ndarray, targets: HorizonTargets) -> dict[str, float | None]:
    """Scores of a network's forecasts; a non-finite forecast counts as "not up", return 0."""
    pred_return = pred_close / targets.last_close - 1.0
    failed = ~np.isfinite(pred_return)
    pred_return = np.where(failed, 0.0, pred_return)
    metrics = score(pred_return > 0, pred_return, targets)
    metrics["failed_forecasts"] = int(failed.sum())
    return metrics


def cross_entropy(tokenizer: Any, predictor: Any, windows: Any, idx: np.ndarray, batch_size: int,
                  teacher_forcing: bool, seed: int) -> dict[str, float | None]:
    """Mean training loss (ce, ce_s1, ce_s2) over validation windows of the data pipeline."""
    import torch

    from .model import predictor_loss

    if not len(idx):
        return {"ce": None, "ce_s1": None, "ce_s2": None}
    device = next(predictor.parameters()).device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    totals = np.zeros(3)
    tokenizer.train(False), predictor.train(False)
    with torch.no_grad():
        for lo in range(0, len(idx), batch_size):
            chunk = idx[lo:lo + batch_size]
            x, stamp = windows.get_batch(chunk)
            loss, parts = predictor_loss(predictor, tokenizer, torch.from_numpy(x).to(device),
                                         torch.from_numpy(stamp).to(device), teacher_forcing=teacher_forcing,
                                         generator=generator)
            totals += len(chunk) * np.array([float(loss), float(parts["ce_s1"]), float(parts["ce_s2"])])
    ce, ce_s1, ce_s2 = totals / len(idx)
    return {"ce": ce, "ce_s1": ce_s1, "ce_s2": ce_s2}


# --------------------------------------------------------------------------- the evaluation

@dataclass
class EvaluationRequest:
    """Everything ``evaluate`` needs; the CLI builds it from flags and the run's config."""
    config: Any                         # KronosConfig
    source: ModelSource
    horizon: int
    max_windows: int
    settings: ForecastSettings
    device: str = "cpu"
    data_path: str | None = None        # overrides config.data.data_path
    include_pretrained: bool = True
    cache_dir: str | None = None


def _data_spec(cfg: Any, data_path: str | None) -> Any:
    from .data import DataSpec

    return DataSpec.from_config(cfg.data, path=data_path or cfg.data.data_path)


def prepare_evaluation_data(cfg: Any, data_path: str | None, cache_dir: str | None) -> Any:
    from .data import prepare_data

    spec = _data_spec(cfg, data_path)
    if not Path(spec.path_str).is_file():
        raise EvaluationError(f"data file {spec.path_str} does not exist (data.data_path of the config); "
                              "pass --data PATH or fix the config")
    prepared = prepare_data(spec, cache_dir=cache_dir)
    if not prepared.report.ok:
        lines = [str(i) for i in prepared.report.errors]
        raise EvaluationError(f"{spec.path_str} cannot be used:\n  " + "\n  ".join(lines))
    return prepared


def no_window_message(table: Any, cfg: Any, horizon: int) -> str:
    n_train, val_end = split_rows(table.lengths, cfg.data.train_ratio, cfg.data.val_ratio)
    longest = int((val_end - n_train).max()) if len(table) else 0
    return (f"no validation window for horizon {horizon}: each needs {cfg.data.lookback_window} rows of history and "
            f"{horizon} rows inside the validation period (val_ratio {cfg.data.val_ratio}); the longest validation "
            f"period has {longest} rows. Lower --horizon, raise data.val_ratio, or use longer series")


def evaluate(request: EvaluationRequest, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score the model, the model before fine-tuning and the baselines on the same windows."""
    started = time.time()
    say = progress or (lambda text: None)
    cfg, horizon, lookback = request.config, request.horizon, request.config.data.lookback_window
    if horizon < 1:
        raise EvaluationError(f"horizon {horizon} must be at least 1 (the Kaggle target is 30)")
    prepared = prepare_evaluation_data(cfg, request.data_path, request.cache_dir)
    table = prepared.table
    all_starts = horizon_window_starts(table.offsets, lookback, horizon, cfg.data.train_ratio, cfg.data.val_ratio)
    if not len(all_starts):
        raise EvaluationError(no_window_message(table, cfg, horizon))
    starts = all_starts[evenly_spaced(len(all_starts), request.max_windows)]
    targets = horizon_targets(table.values, table.offsets, starts, lookback, horizon)
    majority = training_majority(table.values, table.offsets, horizon, cfg.data.train_ratio, cfg.data.val_ratio)
    ce_idx = evenly_spaced(len(prepared.val), request.max_windows)

    networks = {"model": request.source}
    before = pretrained_source(cfg, request.source) if request.include_pretrained else None
    if before is not None:
        networks["pretrained"] = before
    metrics: dict[str, dict[str, Any]] = {}
    for name, source in networks.items():
        say(f"{name}: {source.predictor_path}")
        tokenizer, predictor = load_models(source, request.device)
        pred_close = forecast_windows(tokenizer, predictor, table.values, table.stamps, targets.starts, lookback,
                                      horizon, request.settings, progress=_batch_reporter(say, name))
        metrics[name] = model_metrics(pred_close, targets)
        metrics[name].update(cross_entropy(tokenizer, predictor, prepared.val, ce_idx, request.settings.batch_size,
                                           cfg.training.teacher_forcing, request.settings.seed))
    metrics.update(baseline_metrics(targets, majority))
    return {
        "horizon": horizon, "windows": len(targets), "windows_available": int(len(all_starts)),
        "ce_windows": int(len(ce_idx)), "tickers": int(len(np.unique(targets.ticker))),
        "models": list(metrics), "metrics": metrics,
        "model_paths": {name: {"tokenizer": str(s.tokenizer_path), "predictor": str(s.predictor_path)}
                        for name, s in networks.items()},
        "truth": {"up_share": float(targets.true_up.mean()), "mean_abs_return": float(np.abs(targets.true_return).mean())},
        "training_majority": {"global_up_share": majority.global_share, "global_up": majority.global_up},
        "data": {"path": prepared.spec.path_str, "lookback_window": lookback, "predict_window": cfg.data.predict_window,
                 "train_ratio": cfg.data.train_ratio, "val_ratio": cfg.data.val_ratio},
        "sampling": asdict(request.settings), "notes": list(request.source.notes),
        "created_at": round(started, 3), "seconds": round(time.time() - started, 2),
    }


def _batch_reporter(say: Callable[[str], None], name: str) -> Progress:
    started = time.time()

    def report(batch: int, batches: int, done: int, total: int) -> None:
        elapsed = time.time() - started
        eta = elapsed / done * (total - done) if done else 0.0
        say(f"{name}: batch {batch}/{batches}, {done}/{total} windows, {done / max(elapsed, 1e-9):.1f} windows/s, "
            f"ETA {format_duration(eta)}")
    return report


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


# --------------------------------------------------------------------------- outputs

def write_evaluation(run_dir: Path, result: dict[str, Any], path: Path | None = None) -> Path:
    """``eval.json`` (atomic) and an ``eval`` event in the run's events.jsonl."""
    from .events import EventWriter
    from .runfolder import write_json_atomic

    target = Path(path) if path else Path(run_dir) / EVAL_FILE
    write_json_atomic(target, finite_json(result))
    with EventWriter(Path(run_dir) / "events.jsonl") as writer:
        writer.emit("eval", horizon=result["horizon"], metrics=result["metrics"], models=result["models"],
                    path=str(target), windows=result["windows"])
    return target


def write_eval_file(path: Path, result: dict[str, Any]) -> Path:
    from .runfolder import write_json_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(path), finite_json(result))
    return Path(path)


TABLE_COLUMNS = (("direction_accuracy", "dir. acc", "{:.1%}"), ("mae_return", "MAE return", "{:.4f}"),
                 ("up_share", "pred. up", "{:.1%}"), ("ce", "CE", "{:.4f}"))


def format_table(result: dict[str, Any]) -> str:
    """The terminal table: one row per model, best direction accuracy marked."""
    metrics = result["metrics"]
    best = max((m.get("direction_accuracy") or 0.0) for m in metrics.values())
    header = f"{'model':<17}" + "".join(f"{title:>12}" for _, title, _ in TABLE_COLUMNS)
    lines = [f"horizon {result['horizon']} steps, {result['windows']} validation windows "
             f"({result['tickers']} tickers; truth up in {result['truth']['up_share']:.1%})", header,
             "-" * len(header)]
    for name in result["models"]:
        row = metrics[name]
        cells = "".join(f"{_cell(row.get(key), fmt):>12}" for key, _, fmt in TABLE_COLUMNS)
        mark = " *" if row.get("direction_accuracy") == best else ""
        lines.append(f"{name:<17}{cells}{mark}")
    lines.append("* best direction accuracy; MAE/CE '-' where a baseline has no return or loss")
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


# --------------------------------------------------------------------------- after-run checks

INFERENCE_TITLE = "The model loads for inference"


def check_inference(run_dir: Any, history_rows: int = 32, horizon: int = 2) -> CheckResult:
    """Load the run's best/ models and forecast one window (never raises).

    The window is a generated daily random walk, so the check needs neither the
    data file nor much time; it proves the folders load, fit together and
    produce a finite forecast.
    """
    started = time.time()
    run_dir = getattr(run_dir, "path", run_dir)          # a RunFolder works too
    try:
        tokenizer, predictor, info = load_run_models(run_dir)
        close = _forecast_one_window(tokenizer, predictor, history_rows, horizon)
    except EvaluationError as exc:
        return CheckResult("run.model_loads", INFERENCE_TITLE, "error", str(exc),
                           "fix or re-save the model folders; `kronos-train evaluate RUN` shows the same message",
                           phase="after")
    except Exception as exc:  # noqa: BLE001 - a check reports, it never crashes the checklist
        return CheckResult("run.model_loads", INFERENCE_TITLE, "error", f"forecast failed: {type(exc).__name__}: {exc}",
                           "the folders load but forecasting fails; see the message", phase="after")
    items = [f"tokenizer: {info['tokenizer']}", f"predictor: {info['predictor']}"] + info["notes"]
    if not np.isfinite(close):
        return CheckResult("run.model_loads", INFERENCE_TITLE, "error", "the forecast is not finite (NaN/inf)",
                           "the weights hold NaN: resume from an earlier checkpoint or lower the learning rate",
                           phase="after", items=items)
    return CheckResult("run.model_loads", INFERENCE_TITLE, "ok",
                       f"loaded and forecast {horizon} steps of one window in {time.time() - started:.1f} s",
                       phase="after", items=items)


def _forecast_one_window(tokenizer: Any, predictor: Any, rows: int, horizon: int) -> float:
    from .calendar import next_trading_days
    from .data import time_features

    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    raw = np.stack([close, close * 1.01, close * 0.99, close, np.full(rows, 1e6), close * 1e6], axis=-1)
    days = next_trading_days("2024-01-02", rows + horizon)
    stamps = time_features(np.array(days, dtype="datetime64[ns]"))
    settings = ForecastSettings(sample_count=1, top_k=1)
    return float(forecast_close(tokenizer, predictor, raw[None], stamps[None, :rows], stamps[None, rows:], settings)[0])


FORECAST_TITLE = "Forecasts beat the baselines"


def check_forecast_vs_baselines(run_dir: Any) -> CheckResult:
    """From ``eval.json`` (light, no torch): does the model beat always-up, the majority
    and the model before fine-tuning on direction accuracy?"""
    run_dir = getattr(run_dir, "path", run_dir)          # a RunFolder works too
    path = Path(run_dir) / EVAL_FILE
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        metrics = result["metrics"]
        model = metrics["model"]["direction_accuracy"]
    except (OSError, ValueError, KeyError, TypeError):
        return CheckResult("run.forecast_vs_baselines", FORECAST_TITLE, "pending", "no evaluation yet",
                           f"run `kronos-train evaluate {run_dir}`", phase="after")
    rivals = {name: metrics[name].get("direction_accuracy") for name in ("pretrained", "always_up", "majority")
              if name in metrics and metrics[name].get("direction_accuracy") is not None}
    items = [f"{name}: {acc:.1%}" for name, acc in {"model": model, **rivals}.items()]
    beaten_by = [name for name, acc in rivals.items() if acc >= model]
    detail = f"direction accuracy {model:.1%} at horizon {result.get('horizon')} on {result.get('windows')} windows"
    if beaten_by:
        return CheckResult("run.forecast_vs_baselines", FORECAST_TITLE, "warn", f"{detail}; not better than "
                           f"{', '.join(beaten_by)}", "keep the better model for the submission; fine-tuning needs a "
                           "smaller learning rate (about 1e-5) or more data", phase="after", items=items)
    return CheckResult("run.forecast_vs_baselines", FORECAST_TITLE, "ok", detail, phase="after", items=items)


def print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


__all__ = ["BASELINE_NAMES", "EvaluationError", "EvaluationRequest", "ForecastSettings", "HorizonTargets",
           "ModelSource", "TrainingMajority", "baseline_metrics", "check_forecast_vs_baselines", "check_inference",
           "cross_entropy", "direction_accuracy", "evaluate", "evenly_spaced", "forecast_close", "forecast_windows",
           "format_table", "horizon_targets", "horizon_window_starts", "load_models", "load_run_models",
           "load_run_config", "mae", "model_metrics", "pretrained_source", "resolve_model_source", "score",
           "split_rows", "training_majority", "write_evaluation", "write_eval_file"]
