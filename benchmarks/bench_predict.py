"""How long does ``kronos-train predict`` take for the Kaggle test set (5,000 tickers)?

    python benchmarks/bench_predict.py --predictor Kronos-small --tickers 50 --lookback 256 \
        --horizon 30 --sample-count 1 [--batch 50] [--target 5000] [--threads N] [--device cpu] [--no-cache] [--json]

Builds the predictor (and the tokenizer it was published with) from its
architecture with random weights: the speed of a forecast does not depend on
the weights. Generates ``--tickers`` daily random-walk series of ``--lookback``
rows ending 2024-09-23, plans them with the submission code for a test date
``--horizon`` NYSE sessions later, and times ``forecast_jobs`` (the batched
forecasting of ``kronos-train predict``, without the CSV reading). Prints the
rate in tickers per second and the extrapolation to ``--target`` tickers; the
rate is linear in the number of batches, so the extrapolation is
``target / rate`` at the same batch size. On a shared machine it also prints the
estimate from CPU time (process time / threads), what the run takes with the
cores to itself.

Forecasting uses the KV cache (the default of ``forecast_normalized``);
``--no-cache`` also times the same forecasts without it (the full window
recomputed at every step, as upstream) and prints the speed-up and whether
the 0/1 predictions agree.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictor", default="Kronos-small", help="architecture name (kronos_train/architectures.py)")
    parser.add_argument("--tokenizer", default="", help="default: the tokenizer the predictor was published with")
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--lookback", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--sample-count", type=int, default=1)
    parser.add_argument("--batch", type=int, default=0, help="tickers per forecast call (default: all at once)")
    parser.add_argument("--target", type=int, default=5000, help="extrapolate to this many tickers")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-cache", action="store_true",
                        help="also time the forecasts without the KV cache and print the speed-up")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    return parser.parse_args()


def synthetic_table(n_tickers: int, rows: int, last_day: dt.date):
    """Daily random walks on NYSE sessions ending ``last_day``, as the data pipeline's SeriesTable."""
    import numpy as np

    from kronos_train.calendar import next_trading_days
    from kronos_train.data import SeriesTable
    from kronos_train.data.timeparse import time_features_u8

    rng = np.random.default_rng(0)
    days = next_trading_days(last_day - dt.timedelta(days=int(rows * 1.6) + 10), int(rows * 1.2) + 20)
    days = [d for d in days if d <= last_day][-rows:]
    ns = np.array(days, dtype="datetime64[D]").astype("datetime64[ns]").view(np.int64)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_tickers, rows)), axis=1))
    volume = rng.lognormal(13, 0.5, (n_tickers, rows))
    values = np.stack([close, close * 1.01, close * 0.99, close, volume, volume * close], axis=-1)
    return SeriesTable([f"ticker_{k + 1}" for k in range(n_tickers)],
                       np.arange(n_tickers + 1, dtype=np.int64) * rows,
                       values.reshape(-1, 6).astype(np.float32), np.tile(ns, n_tickers),
                       np.tile(time_features_u8(ns), (n_tickers, 1)))


def main() -> int:
    args = parse_args()
    import torch

    from kronos_train.architectures import ARCHITECTURES, resolve_architecture
    from kronos_train.calendar import next_trading_days
    from kronos_train.evaluation.forecasting import ForecastSettings
    from kronos_train.model import build_predictor, build_tokenizer
    from kronos_train.submission import PlanOptions, TestRows, forecast_jobs, plan_jobs

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer_name = args.tokenizer or ARCHITECTURES[args.predictor].pairs_with or "Kronos-Tokenizer-base"
    tokenizer = build_tokenizer(resolve_architecture(tokenizer_name)).to(args.device).eval()
    predictor = build_predictor(resolve_architecture(args.predictor)).to(args.device).eval()

    last_day = dt.date(2024, 9, 23)
    test_day = next_trading_days(last_day, args.horizon)[-1]
    table = synthetic_table(args.tickers, args.lookback, last_day)
    test = TestRows("synthetic", list(table.tickers), [test_day] * args.tickers)
    plan = plan_jobs(table, test, PlanOptions(lookback=args.lookback, min_history=args.lookback))
    assert not plan.defaulted and all(job.horizon == args.horizon for job in plan.jobs)
    batch = args.batch or args.tickers
    settings = ForecastSettings(sample_count=args.sample_count, temperature=1.0, top_p=0.9,
                                max_context=max(512, args.lookback), batch_size=batch)

    def timed(use_cache: bool):
        settings.use_cache = use_cache
        started, cpu_started = time.perf_counter(), time.process_time()
        preds = forecast_jobs(tokenizer, predictor, table, plan.jobs, settings,
                              say=lambda line: print(line, file=sys.stderr))
        return preds, time.perf_counter() - started, time.process_time() - cpu_started

    preds, seconds, cpu_seconds = timed(use_cache=True)
    rate = args.tickers / seconds
    # On a shared machine the wall time depends on the neighbours; CPU time spread over
    # the threads is what the same work takes with the cores to itself.
    idle_rate = args.tickers / (cpu_seconds / torch.get_num_threads())
    result = {
        "predictor": args.predictor, "tokenizer": tokenizer_name, "tickers": args.tickers, "lookback": args.lookback,
        "horizon": args.horizon, "sample_count": args.sample_count, "batch": batch, "device": args.device,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "seconds": round(seconds, 2), "tickers_per_s": round(rate, 4),
        "target": args.target, "target_seconds": round(args.target / rate, 1),
        "cpu_seconds": round(cpu_seconds, 2), "target_seconds_cores_to_itself": round(args.target / idle_rate, 1),
    }
    if args.no_cache:
        plain_preds, plain_seconds, plain_cpu = timed(use_cache=False)
        result.update({
            "no_cache_seconds": round(plain_seconds, 2), "no_cache_tickers_per_s": round(args.tickers / plain_seconds, 4),
            "no_cache_target_seconds": round(args.target * plain_seconds / args.tickers, 1),
            "no_cache_cpu_seconds": round(plain_cpu, 2),
            "speedup": round(plain_seconds / seconds, 2), "speedup_cpu": round(plain_cpu / cpu_seconds, 2),
            "predictions_agree": sum(preds[k] == plain_preds[k] for k in preds), "predictions": len(preds),
        })
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.predictor} + {tokenizer_name}, {args.tickers} tickers x {args.lookback} rows -> {args.horizon} "
              f"steps, {args.sample_count} sample(s), batch {batch}, {args.device}, {result['threads']} thread(s), "
              f"load {result['load_avg_1m']:.1f}")
        print(f"{seconds:.1f} s: {rate:.3f} tickers/s")
        print(f"{args.target} tickers: about {result['target_seconds']:.0f} s = {result['target_seconds'] / 3600:.2f} h "
              f"at this rate")
        idle = result["target_seconds_cores_to_itself"]
        print(f"CPU time {cpu_seconds:.1f} s over {result['threads']} thread(s): with the cores to itself about "
              f"{idle:.0f} s = {idle / 3600:.2f} h for {args.target} tickers")
        if args.no_cache:
            r = result
            print(f"without the KV cache: {r['no_cache_seconds']:.1f} s: {r['no_cache_tickers_per_s']:.3f} tickers/s, "
                  f"{args.target} tickers about {r['no_cache_target_seconds'] / 3600:.2f} h; CPU time {r['no_cache_cpu_seconds']:.1f} s")
            print(f"KV cache speed-up: {r['speedup']:.2f}x wall, {r['speedup_cpu']:.2f}x CPU time; "
                  f"predictions agree for {r['predictions_agree']}/{r['predictions']} tickers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
