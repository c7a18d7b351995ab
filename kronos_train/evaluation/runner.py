"""``evaluate``: the model, the model before fine-tuning and the baselines, scored on the same windows."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import EvaluationError
from .forecasting import ForecastSettings, Progress, cross_entropy, forecast_windows
from .metrics import (baseline_metrics, evenly_spaced, horizon_targets, horizon_window_starts, model_metrics, split_rows,
                      training_majority)
from .report import format_duration
from .sources import ModelSource, load_models, pretrained_source

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
    from ..data import DataSpec

    return DataSpec.from_config(cfg.data, path=data_path or cfg.data.data_path)


def prepare_evaluation_data(cfg: Any, data_path: str | None, cache_dir: str | None) -> Any:
    from ..data import prepare_data

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


__all__ = ["EvaluationRequest", "evaluate", "prepare_evaluation_data"]
