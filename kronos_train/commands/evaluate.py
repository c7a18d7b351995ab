"""Score forecasts H trading days ahead against the model before fine-tuning and naive baselines."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..evaluation import EvaluationError
from ..evaluation.forecasting import ForecastSettings
from ..evaluation.report import format_table, print_err, write_eval, write_eval_file
from ..evaluation.runner import EvaluationRequest, evaluate
from ..evaluation.sources import config_of_run, resolve_model_source
from ..control.runfolder import data_cache_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="RUN_OR_MODEL_DIRS",
                        help="a run folder (or run id, or 'last'), or a tokenizer folder and a predictor folder")
    parser.add_argument("--config", "-c", metavar="PRESET_OR_FILE",
                        help="preset giving the data, windows and sampling (default: the run's config.yaml)")
    parser.add_argument("--horizon", type=int, help="steps ahead to score (default: evaluation.horizon, 30 for Kaggle)")
    parser.add_argument("--windows", type=int, help="at most this many validation windows, spread evenly "
                                                      "(default: evaluation.max_windows)")
    parser.add_argument("--data", help="data file instead of the config's data.data_path")
    parser.add_argument("--batch", type=int, default=64, help="windows per forecast call (default 64)")
    add_forecast_arguments(parser)
    parser.add_argument("--no-pretrained", action="store_true", help="skip the model before fine-tuning")
    parser.add_argument("--out", type=Path, help="where to write eval.json (default: the run folder; none for model folders)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    """What evaluate and predict share: sampling, the device, where run ids are looked up."""
    parser.add_argument("--sample-count", type=int, help="sample paths averaged per forecast (default: evaluation.sample_count)")
    parser.add_argument("--seed", type=int, help="sampling seed (default: training.seed)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
    parser.add_argument("--logs", type=Path, default=None,
                        help="where run ids and 'last' are looked up (default ./logs or $KRONOS_LOGS_DIR)")


def main(args: argparse.Namespace) -> int:
    try:
        request, run_dir = build_request(args)
        result = evaluate(request, progress=print_err)
    except EvaluationError as exc:
        print_err(f"error: {exc}")
        return 2
    written = None
    if run_dir is not None:
        written = write_eval(run_dir, result, args.out)
    elif args.out:
        written = write_eval_file(args.out, result)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(result))
        if written:
            print(f"written: {written}" + (" (and an eval event in events.jsonl)" if run_dir else ""))
    return 0


def build_request(args: argparse.Namespace) -> tuple[EvaluationRequest, Path | None]:
    source = resolve_model_source(args.models, args.logs)
    cfg = resolve_config(args.config, source.run_dir)
    settings = ForecastSettings.from_config(cfg, sample_count=args.sample_count, seed=args.seed, batch_size=args.batch)
    _check_positive(horizon=args.horizon, windows=args.windows, batch=args.batch, sample_count=args.sample_count)
    request = EvaluationRequest(
        config=cfg, source=source, horizon=args.horizon or cfg.evaluation.horizon,
        max_windows=args.windows or cfg.evaluation.max_windows, settings=settings,
        device=pick_device(args.device, cfg), data_path=args.data, include_pretrained=not args.no_pretrained,
        cache_dir=str(data_cache_dir(args.logs)))
    return request, source.run_dir


def resolve_config(config_ref: str | None, run_dir: Path | None) -> Any:
    """--config wins; else the run's resolved config.yaml; model folders alone do not say which data to use."""
    if config_ref:
        from ..config import load_preset

        cfg, problems = load_preset(config_ref)
        fatal = [p for p in problems if p.path in ("<yaml>", "<root>", "<file>", "config", "extends")]
        if fatal:
            raise EvaluationError("; ".join(str(p) for p in fatal))
        return cfg
    if run_dir is not None and (run_dir / "config.yaml").is_file():
        return config_of_run(run_dir)
    where = f"{run_dir} has no config.yaml" if run_dir else "model folders do not say which data to use"
    raise EvaluationError(f"{where}; pass --config PRESET (the preset the model was trained with)")


def pick_device(device: str, cfg: Any) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if cfg.device.use_cuda and torch.cuda.is_available() else "cpu"


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise EvaluationError(f"--{name.replace('_', '-')} {value}: must be at least 1")
