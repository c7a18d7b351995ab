"""Run the checklist: before training for a preset, or during/after for a run (--run)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..checks import CheckResult, format_results, has_errors
from ..checks.pre import check_config, run_pre_checks
from ..config import load_preset
from ..control.runfolder import logs_dir_from_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--config", "-c", metavar="PRESET_OR_FILE",
                        help="preset name (see `kronos-train presets`) or a YAML file such as kaggle_config.yaml")
    target.add_argument("--run", metavar="RUN", help="a run id, folder or `last`: the during/after lines, "
                        "with its best models loaded and forecasting one window (imports torch)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder the run would use (default ./logs)")
    parser.add_argument("--models", action="store_true", help="also load the networks (imports torch; slower)")
    parser.add_argument("--only", choices=("config", "models"), default=None,
                        help="run just one part: config (no data scan) or models (load the networks)")
    parser.add_argument("--json", action="store_true", help="print the results as a JSON list")


def main(args: argparse.Namespace) -> int:
    if args.run:
        return check_run(args)
    cfg, problems = load_preset(args.config)
    logs_dir = args.logs or logs_dir_from_env()
    if args.only == "config":
        results = [check_config(cfg, problems)]
    elif args.only == "models":
        from ..checks.pre import check_models

        results = [check_models(cfg)]
    elif any(p.path in ("<yaml>", "<root>", "<file>", "config", "extends") for p in problems):
        results = [check_config(cfg, problems)]   # the file itself is unusable: nothing else makes sense
    else:
        results = run_pre_checks(cfg, logs_dir=logs_dir, problems=problems, include_models=args.models)
    emit(results, args.json)
    return 1 if has_errors(results) else 0


def check_run(args: argparse.Namespace) -> int:
    from ..checks.run import run_checks
    from ..checks.trained_model import check_forecast_vs_baselines, check_inference
    from . import run_from_args

    run = run_from_args(args, "check")
    if run is None:
        return 2
    results = run_checks(run, model_check=[check_inference(run)]) + [check_forecast_vs_baselines(run)]
    emit(results, args.json)
    return 1 if has_errors(results) else 0


def emit(results: list[CheckResult], as_json: bool) -> None:
    if as_json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_results(results))
