"""Samples/s per stage and the data-wait share of a real run of a preset (torchrun and all).

Runs the preset's stages exactly as `kronos-train run --foreground` does, in a
temporary logs folder, then reads the run's events: training throughput (the
step records' samples_per_s, first window left out as warm-up), the share of
wall time the loop waited for data, validation and checkpoint time, and the
fixed cost of starting each stage's process group.

    python benchmarks/bench_train.py --config demo [--num-gpus 2] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kronos_train.control import supervisor  # noqa: E402
from kronos_train.control.events import STAGES, read_events  # noqa: E402
from kronos_train.control.launch import LaunchError, create_run  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="preset name or YAML file")
    p.add_argument("--num-gpus", type=int, default=None, help="processes per node (CPU workers without GPUs)")
    p.add_argument("--logs", type=Path, default=None, help="logs folder (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    return p.parse_args(argv)


def stage_figures(records: list[dict], stage: str) -> dict | None:
    mine = [r for r in records if r.get("stage") == stage]
    start = next((r for r in mine if r["event"] == "stage_start"), None)
    end = next((r for r in mine if r["event"] == "stage_end"), None)
    steps = [r for r in mine if r["event"] == "step"]
    if start is None or end is None or not steps:
        return None
    # Each record covers the steps since the previous one; the first window pays for warm-up.
    windows = [(r, r["step"] - prev) for r, prev in zip(steps, [0] + [s["step"] for s in steps])]
    timed = [r for r, _ in windows[1:]] or steps
    weights = [r.get("step_time_s", 0) * n for r, n in windows[1:]] or [1.0]
    vals = [r.get("duration_s") or 0 for r in mine if r["event"] == "val"]
    ckpts = [r.get("duration_s") or 0 for r in mine if r["event"] == "checkpoint"]
    return {
        "samples_per_s": statistics.median(r["samples_per_s"] for r in timed),
        "samples_per_s_min": min(r["samples_per_s"] for r in timed),
        "samples_per_s_max": max(r["samples_per_s"] for r in timed),
        "step_time_s": statistics.median(r.get("step_time_s") or 0 for r in timed),
        "data_wait": sum(r["data_wait"] * w for r, w in zip(timed, weights)) / max(sum(weights), 1e-9),
        "steps": end.get("step"), "world_size": start["world_size"], "global_batch": start.get("global_batch"),
        "stage_s": end.get("duration_s"), "val_s": sum(vals), "checkpoint_s": sum(ckpts),
        "first_loss": steps[0]["loss"], "last_loss": steps[-1]["loss"],
        "mem_gb": max((r.get("mem_gb") or 0 for r in steps), default=0),
    }


def gpu_line(records: list[dict], stage: str, fig: dict) -> str:
    """GPU utilisation and memory from the stage's ``gpu`` events (NVML), when there are any."""
    readings = [g for r in records if r["event"] == "gpu" and r.get("stage") == stage for g in r["gpus"]]
    utils = [g["util"] for g in readings if g.get("util") is not None]
    used = [g["mem_used_mb"] for g in readings if g.get("mem_used_mb") is not None]
    if not readings:
        return ""
    util = f"{statistics.mean(utils):.0f} % mean ({min(utils):.0f}-{max(utils):.0f}, {len(utils)} readings)" if utils else "n/a"
    return (f"            GPU utilisation {util}, NVML memory used peak {max(used, default=0) / 1024:.1f} GiB, "
            f"torch peak allocated {fig['mem_gb']:.2f} GB")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    temp = None if args.logs else Path(tempfile.mkdtemp(prefix="bench-train-"))
    logs = args.logs or temp / "logs"
    try:
        run = create_run(args.config, logs, num_gpus=args.num_gpus)
    except LaunchError as exc:
        print("\n".join(exc.problems))
        return 2
    started = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = supervisor.main([str(run.path)])
    wall = time.time() - started
    records = read_events(run.events_path)
    print(f"bench_train: preset {args.config}, run {run.run_id}, exit code {code}, wall {wall:.1f} s, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for error in (r for r in records if r["event"] == "error"):   # the supervisor's output was silenced
        print(f"  error {error['kind']}: {error['message']}")
    launches = [r["t"] for r in records if r["event"] in ("run_start", "stage_end")]
    for stage in STAGES:
        fig = stage_figures(records, stage)
        if fig is None:
            print(f"  {stage:<9} not run")
            continue
        begin = next(r["t"] for r in records if r["event"] == "stage_start" and r.get("stage") == stage)
        overhead = begin - max(t for t in launches if t <= begin)
        print(f"  {stage:<9} {fig['samples_per_s']:8.1f} samples/s (median; {fig['samples_per_s_min']:.0f}-"
              f"{fig['samples_per_s_max']:.0f}), step {fig['step_time_s'] * 1000:.1f} ms, data wait {fig['data_wait']:.2%}, "
              f"{fig['steps']} steps x global batch "
              f"{fig['global_batch']} on {fig['world_size']} process(es); stage {fig['stage_s']:.1f} s "
              f"(validation {fig['val_s']:.1f} s, checkpoints {fig['checkpoint_s']:.1f} s), process-group start "
              f"{overhead:.1f} s; loss {fig['first_loss']:.4g} -> {fig['last_loss']:.4g}")
        line = gpu_line(records, stage, fig)
        if line:
            print(line)
    if temp is not None and not args.keep:
        shutil.rmtree(temp, ignore_errors=True)
    elif temp is not None:
        print(f"  run folder kept: {run.path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
