"""Write the Kaggle submission (ID,Pred): forecast each test ticker to its test date in trading days."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..evaluation import EvaluationError
from ..evaluation.forecasting import ForecastSettings
from ..evaluation.report import print_err
from ..evaluation.sources import load_models, resolve_model_source
from ..control.runfolder import data_cache_dir
from ..submission import (DEFAULT_MAX_HORIZON, DEFAULT_RULES, PlanOptions, SubmissionError, SubmissionRequest,
                          make_submission, read_test_csv, summary_lines)
from .evaluate import add_forecast_arguments, pick_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", nargs="+", required=True, metavar="RUN_OR_DIRS",
                        help="a run folder (or run id, or 'last'), or a tokenizer folder and a predictor folder")
    parser.add_argument("--data", help="the competition's train.csv (default: the config's data.data_path)")
    parser.add_argument("--test", required=True, help="the competition's test.csv (columns ID, Date)")
    parser.add_argument("--out", type=Path, required=True, help="submission file to write (ID,Pred)")
    parser.add_argument("--config", "-c", metavar="PRESET_OR_FILE",
                        help="preset for lookback, context and sampling (default: the run's config.yaml, "
                             "else the built-in defaults: lookback 256, context 512)")
    parser.add_argument("--batch", type=int, default=64, help="tickers per forecast call (default 64)")
    parser.add_argument("--default", dest="default_rule", choices=DEFAULT_RULES, default="majority",
                        help="prediction for rows that cannot be forecast (default: majority, the most common "
                             "H-step direction of the training file)")
    parser.add_argument("--horizon", type=int,
                        help="forecast this many steps for every row instead of counting trading days to the test date")
    parser.add_argument("--max-horizon", type=int, default=DEFAULT_MAX_HORIZON,
                        help=f"rows whose horizon exceeds this get the default (default {DEFAULT_MAX_HORIZON})")
    parser.add_argument("--min-history", type=int, help="fewer rows than this get the default (default: lookback_window)")
    add_forecast_arguments(parser)


def main(args: argparse.Namespace) -> int:
    try:
        report = run(args)
    except (EvaluationError, SubmissionError) as exc:
        print_err(f"error: {exc}")
        return 2
    print("\n".join(summary_lines(report)))
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    _check_positive(batch=args.batch, horizon=args.horizon, max_horizon=args.max_horizon,
                    min_history=args.min_history, sample_count=args.sample_count)
    source = resolve_model_source(args.model, args.logs)
    cfg = _config(args.config, source.run_dir)
    test = read_test_csv(args.test)
    data_path = args.data or cfg.data.data_path
    if not data_path:
        raise SubmissionError("no training data: pass --data train.csv")
    table = _load_table(data_path, cfg, data_cache_dir(args.logs))
    tokenizer, predictor = load_models(source, device=pick_device(args.device, cfg))
    lookback = cfg.data.lookback_window
    request = SubmissionRequest(
        test=test, table=table, data_path=str(data_path), out=args.out,
        options=PlanOptions(lookback=lookback, min_history=args.min_history or lookback,
                            max_horizon=args.max_horizon, horizon=args.horizon),
        settings=ForecastSettings.from_config(cfg, sample_count=args.sample_count, seed=args.seed,
                                              batch_size=args.batch),
        default_rule=args.default_rule, model_info=source.to_dict())
    return make_submission(request, tokenizer, predictor, say=print_err)


def _config(config_ref: str | None, run_dir: Path | None) -> Any:
    from .evaluate import resolve_config

    if config_ref or (run_dir is not None and (run_dir / "config.yaml").is_file()):
        return resolve_config(config_ref, run_dir)
    from ..config import KronosConfig

    cfg = KronosConfig()
    print_err(f"no --config: using the defaults (lookback {cfg.data.lookback_window}, max_context "
              f"{cfg.data.max_context}, {cfg.evaluation.sample_count} samples at T={cfg.evaluation.temperature})")
    return cfg


def _load_table(path: str, cfg: Any, cache_dir: Path) -> Any:
    from ..data import load_series

    if not Path(path).is_file():
        raise SubmissionError(f"{path}: no such file; pass the competition's train.csv with --data")
    print_err(f"reading {path} ...")
    table, report = load_series(path, ticker_column=cfg.data.ticker_column or None,
                                single_series=cfg.data.single_series, cache_dir=cache_dir)
    if not report.ok:
        raise SubmissionError(f"{path} cannot be used:\n  " + "\n  ".join(str(i) for i in report.errors))
    print_err(f"{len(table)} tickers, {table.n_rows:,} rows")
    return table


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise SubmissionError(f"--{name.replace('_', '-')} {value}: must be at least 1")
