"""Benchmark of the data pipeline on a large Kaggle-layout file.

    python benchmarks/bench_data.py --rows 10000000 [--tickers 5000] [--keep] [--no-official] [--repeat 3]

Generates the file once in /tmp (reused when present; removed at the end
unless --keep), then runs each phase in a fresh subprocess and reports its wall
time and peak RSS (resource.getrusage maxrss of that subprocess):

  floor     pyarrow.csv.read_csv(path) with defaults: the bare parse, the floor
  official  a re-creation of the official finetune_csv CustomKlineDataset data
            steps (pandas read, to_datetime, sort, time features, split), train
            + val as its create_dataloaders builds them (the file read twice)
  cold      prepare_data(spec) with an empty cache: validated, cleaned, windows
  cached    prepare_data(spec) again: the cached reload
  fetch     get_batch(32 random windows) and get(i) rates on the cached data
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PHASES = {
    "floor": """
        import pyarrow.csv
        t0 = time.perf_counter()
        table = pyarrow.csv.read_csv(PATH)
        result = {"seconds": time.perf_counter() - t0, "rows": table.num_rows}
    """,
    "official": """
        import numpy as np, pandas as pd
        def load(kind):
            df = pd.read_csv(PATH)
            df = df.rename(columns={"Date": "timestamps", "Open": "open", "High": "high", "Low": "low",
                                    "Close": "close", "Volume": "volume"})
            df["amount"] = df["close"] * df["volume"]
            df["timestamps"] = pd.to_datetime(df["timestamps"])
            df = df.sort_values("timestamps").reset_index(drop=True)
            ts = df["timestamps"]
            df["minute"], df["hour"], df["weekday"] = ts.dt.minute, ts.dt.hour, ts.dt.weekday
            df["day"], df["month"] = ts.dt.day, ts.dt.month
            data = df[["open", "high", "low", "close", "volume", "amount",
                       "minute", "hour", "weekday", "day", "month"]].copy()
            if data.isnull().any().any():
                data = data.ffill()
            n = len(data)
            train_end, val_end = int(n * 0.9), int(n * 1.0)
            return data.iloc[:train_end].copy() if kind == "train" else data.iloc[train_end:val_end].copy()
        t0 = time.perf_counter()
        train, val = load("train"), load("val")
        result = {"seconds": time.perf_counter() - t0, "train_rows": len(train), "val_rows": len(val)}
    """,
    "cold": """
        from kronos_train.data import DataSpec, prepare_data
        t0 = time.perf_counter()
        p = prepare_data(DataSpec(PATH, lookback_window=256, predict_window=1), cache_dir=CACHE)
        result = {"seconds": time.perf_counter() - t0, "train": len(p.train), "val": len(p.val),
                  "tickers": len(p.tickers), "ok": p.report.ok, "cache": p.report.cache,
                  "issues": [i.code for i in p.report.issues]}
    """,
    "cached": """
        t_import = time.perf_counter()
        from kronos_train.data import DataSpec, prepare_data
        t0 = time.perf_counter()
        p = prepare_data(DataSpec(PATH, lookback_window=256, predict_window=1), cache_dir=CACHE)
        t1 = time.perf_counter()
        result = {"seconds": t1 - t0, "seconds_with_import": t1 - t_import, "train": len(p.train),
                  "val": len(p.val), "cache": p.report.cache}
    """,
    "fetch": """
        import numpy as np
        from kronos_train.data import DataSpec, prepare_data
        p = prepare_data(DataSpec(PATH, lookback_window=256, predict_window=1), cache_dir=CACHE)
        ws, rng = p.train, np.random.default_rng(0)
        batches = [rng.integers(0, len(ws), 32) for _ in range(400)]
        ws.get_batch(batches[0])
        t0 = time.perf_counter()
        for b in batches:
            ws.get_batch(b)
        batch_rate = len(batches) / (time.perf_counter() - t0)
        singles = rng.integers(0, len(ws), 5000)
        t0 = time.perf_counter()
        for i in singles:
            ws.get(int(i))
        single_rate = len(singles) / (time.perf_counter() - t0)
        result = {"batches_per_s": batch_rate, "windows_per_s_batched": batch_rate * 32,
                  "single_get_per_s": single_rate}
    """,
}


def run_phase(name: str, path: str, cache: str) -> dict:
    body = textwrap.dedent(PHASES[name])
    code = "\n".join([
        "import json, resource, sys, time",
        f"sys.path.insert(0, {ROOT!r})",
        f"PATH, CACHE = {path!r}, {cache!r}",
        body,
        "result['peak_rss_gib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20",
        "print('RESULT ' + json.dumps(result))",
    ])
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["process_seconds"] = time.perf_counter() - started
    return result


def ensure_file(rows: int, tickers: int) -> str:
    sys.path.insert(0, ROOT)
    from kronos_train.data.synthetic import write_synthetic
    path = os.path.join(tempfile.gettempdir(), f"kronos_bench_{rows}_{tickers}.csv")
    if not os.path.exists(path):
        t0 = time.perf_counter()
        print(f"generating {path} ({rows} rows, {tickers} tickers) ...", flush=True)
        write_synthetic(path + ".part", n_tickers=tickers, n_rows_per_ticker=rows // tickers, seed=1)
        os.replace(path + ".part", path)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tickers", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="keep the generated file in /tmp")
    parser.add_argument("--no-official", action="store_true", help="skip the official-pipeline phase")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of all phases (interleaved, so machine noise hits them alike); medians shown")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    path = ensure_file(args.rows, args.tickers)
    cache = tempfile.mkdtemp(prefix="kronos_bench_cache_")
    size_mb = os.path.getsize(path) / 1e6
    print(f"file: {path} ({size_mb:.0f} MB, {args.rows} rows, {args.tickers} tickers); cores: {os.cpu_count()}")
    phases = ["floor"] + ([] if args.no_official else ["official"]) + ["cold", "cached", "fetch"]
    runs: dict[str, list[dict]] = {name: [] for name in phases}
    try:
        for round_ in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)   # every round's cold phase starts without a cache
            for name in phases:
                r = run_phase(name, path, cache)
                runs[name].append(r)
                print(f"[round {round_ + 1}] {_line(name, r)}", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if not args.keep:
            os.remove(path)
    results = {name: _median(rs) for name, rs in runs.items()}
    if args.repeat > 1:
        print(f"medians of {args.repeat} rounds:")
        for name in phases:
            print("  " + _line(name, results[name]))
    print(_summary(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": args.rows, "tickers": args.tickers, "file_mb": size_mb, "median": results,
                       "runs": runs}, f, indent=2)


def _median(rs: list[dict]) -> dict:
    out = dict(rs[0])
    for key, value in rs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            median = statistics.median(r[key] for r in rs)
            out[key] = int(median) if isinstance(value, int) else median
    return out


def _line(name: str, r: dict) -> str:
    if name == "fetch":
        return f"{name:9s}             peak RSS {r['peak_rss_gib']:.2f} GiB" + _extra(name, r)
    return f"{name:9s} {r['seconds']:8.2f} s   peak RSS {r['peak_rss_gib']:.2f} GiB" + _extra(name, r)


def _extra(name: str, r: dict) -> str:
    if name == "cold":
        return f"   {r['train']} train / {r['val']} val windows, {r['tickers']} tickers, ok={r['ok']}"
    if name == "cached":
        return f"   ({r['seconds_with_import']:.2f} s with imports; cache {r['cache']})"
    if name == "official":
        return f"   {r['train_rows']} train / {r['val_rows']} val rows (no validation, windows cross tickers)"
    if name == "fetch":
        return (f"   get_batch(32): {r['batches_per_s']:.0f}/s ({r['windows_per_s_batched']:.0f} windows/s); "
                f"get(i): {r['single_get_per_s']:.0f}/s")
    return ""


def _summary(results: dict) -> str:
    lines = []
    if "official" in results:
        ratio = results["cold"]["seconds"] / results["official"]["seconds"]
        lines.append(f"cold prepare / official build: {ratio:.2f}x the time")
    lines.append(f"cold prepare / bare pyarrow read: {results['cold']['seconds'] / results['floor']['seconds']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
