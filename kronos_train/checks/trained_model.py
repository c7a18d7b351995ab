"""After-run checklist lines about the trained networks themselves.

``check_inference`` loads a run's ``best/`` folders and forecasts one window
(torch, imported inside; the TUI runs it through ``kronos-train check --json``,
see ``out_of_process``); ``check_forecast_vs_baselines`` reads ``eval.json``
(light).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation import EvaluationError
from ..evaluation.forecasting import ForecastSettings, forecast_close
from ..evaluation.report import EVAL_FILE
from ..evaluation.sources import load_run_models
from . import CheckResult

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
    from ..calendar import next_trading_days
    from ..data import time_features

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


__all__ = ["check_forecast_vs_baselines", "check_inference"]
