"""Show the runs (a table), or one run's stages, progress, best losses and errors."""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..control.events import STAGES, EventTail, read_events
from ..control.runfolder import RunFolder, list_runs, logs_dir_from_env
from ..control.scheduler import JobInfo, describe, display_state, job_of_run
from . import run_from_args

TAIL_BYTES = 64 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", metavar="RUN", help="run id, unique prefix, folder or 'last' (default: table)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _recent_events(run: RunFolder) -> list[dict[str, Any]]:
    """The records of the last 64 KiB: enough for the table, cheap for long runs."""
    tail = EventTail(run.events_path)
    try:
        size = run.events_path.stat().st_size
    except OSError:
        return []
    tail.offset = max(0, size - TAIL_BYTES)
    records = tail.read_new()
    return records[1:] if tail.offset > 0 and records else records   # the first line may be cut


def summarize(run: RunFolder, records: list[dict[str, Any]]) -> dict[str, Any]:
    """State, current stage and per-stage progress of a run from its status and events."""
    status = run.read_status()
    stages: dict[str, dict[str, Any]] = {s: dict((status.get("stages") or {}).get(s) or {}) for s in STAGES}
    for rec in records:
        stage = rec.get("stage")
        if stage not in stages:
            continue
        info = stages[stage]
        event = rec.get("event")
        if event == "stage_start":
            info.update(total_steps=rec.get("total_steps"), status="running", resumed_from=rec.get("resumed_from"))
        elif event == "step":
            info.update(step=rec.get("step"), loss=rec.get("loss"), lr=rec.get("lr"),
                        samples_per_s=rec.get("samples_per_s"), data_wait=rec.get("data_wait"),
                        elapsed_s=rec.get("elapsed_s"))
        elif event == "val":
            info.update(best_val_loss=rec.get("best_val_loss"), val_loss=rec.get("val_loss"))
        elif event == "checkpoint" and rec.get("kind") == "last":
            info["checkpoint_step"] = rec.get("step")
        elif event == "stage_end":
            info.update(status=rec.get("status"), step=rec.get("step", info.get("step")),
                        best_val_loss=rec.get("best_val_loss", info.get("best_val_loss")),
                        best_path=rec.get("best_path"), message=rec.get("message"))
        elif event == "error":
            info["error"] = rec.get("message")
    errors = [r for r in records if r.get("event") == "error"]
    job = job_of_run(run)
    return {"run_id": run.run_id, "state": display_state(run.state(), job), "scheduler": scheduler_fields(job), "preset": run.preset_name(), "stage": status.get("stage"),
            "attempt": status.get("attempt"), "pid": status.get("pid"), "host": status.get("host"),
            "started_at": status.get("started_at"), "updated_at": status.get("updated_at"),
            "world_size": status.get("world_size"), "message": status.get("message"), "stages": stages,
            "last_error": errors[-1] if errors else None, "path": str(run.path), "damaged": status["damaged"],
            "pending_requests": run.pending_request_lines() if run.is_alive() else []}


def scheduler_fields(job: JobInfo | None) -> dict[str, Any] | None:
    """The run's SLURM job as SLURM sees it now (None: not a SLURM run)."""
    if job is None:
        return None
    return {"job_id": job.job_id, "state": job.state, "reason": job.reason, "nodes": job.nodes,
            "restarts": job.restarts, "time_left": job.time_left, "time_limit": job.time_limit,
            "exit_code": job.exit_code, "error": job.error, "line": describe(job)}


def _fmt_loss(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "-"


def _fmt_time(t: Any) -> str:
    if not isinstance(t, (int, float)):
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (OverflowError, OSError, ValueError):      # a status.json time past what the platform can show
        return "-"


def _progress(info: dict[str, Any]) -> str:
    step, total = info.get("step"), info.get("total_steps")
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no runs yet; start one with `kronos-train run --config demo`")
        return
    header = ("RUN", "STATE", "STAGE", "STEP", "TOKENIZER", "BASEMODEL", "STARTED")
    lines = [header]
    for r in rows:
        stage = r["stage"] or next((s for s in reversed(STAGES) if r["stages"][s].get("status")), "-")
        info = r["stages"].get(stage, {}) if stage in STAGES else {}
        lines.append((r["run_id"], r["state"], stage or "-", _progress(info),
                      _fmt_loss(r["stages"]["tokenizer"].get("best_val_loss")),
                      _fmt_loss(r["stages"]["basemodel"].get("best_val_loss")), _fmt_time(r["started_at"])))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    columns = shutil.get_terminal_size().columns
    if sum(widths) + 2 * (len(widths) - 1) > columns:
        # A wrapped table is unreadable; the run id already begins with its launch time.
        lines, widths = [line[:-1] for line in lines], widths[:-1]
    for line in lines:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip())
    if len(widths) < len(header):
        print(f"(STARTED left out to fit {columns} columns: run ids begin with their launch time)")


def _eta(info: dict[str, Any]) -> str:
    step, total, elapsed = info.get("step"), info.get("total_steps"), info.get("elapsed_s")
    start = info.get("resumed_from") or 0
    if not (step and total and elapsed) or step <= start or step >= total:
        return ""
    seconds = elapsed / step * (total - step)
    return f", ETA {seconds / 60:.0f} min" if seconds >= 90 else f", ETA {seconds:.0f} s"


def print_details(s: dict[str, Any], run: RunFolder) -> None:
    print(f"run {s['run_id']}  state {s['state']}  attempt {s['attempt']}  preset {s['preset'] or '-'}")
    print(f"  folder {s['path']}")
    print(f"  host {s['host'] or '-'}  supervisor pid {s['pid'] or '-'}  processes {s['world_size'] or '-'}  "
          f"started {_fmt_time(s['started_at'])}  updated {_fmt_time(s['updated_at'])}")
    if s.get("scheduler"):
        print(f"  {s['scheduler']['line']}")
    for stage in STAGES:
        info = s["stages"][stage]
        if not info:
            print(f"  {stage:<9} not started")
            continue
        line = f"  {stage:<9} {info.get('status', '-'):<13} step {_progress(info)}"
        if info.get("loss") is not None:
            line += f"  loss {_fmt_loss(info['loss'])}  lr {_fmt_loss(info.get('lr'))}"
        if info.get("samples_per_s") and info.get("status") == "running":
            line += f"  {info['samples_per_s']:.0f} samples/s  data wait {info.get('data_wait') or 0:.0%}{_eta(info)}"
        line += f"  best val {_fmt_loss(info.get('best_val_loss'))}"
        print(line)
        if info.get("checkpoint_step") is not None:
            print(f"            last checkpoint at step {info['checkpoint_step']}")
        if info.get("best_path"):
            print(f"            best model {info['best_path']}")
        if info.get("message") and info.get("status") not in ("completed", "running"):
            print(f"            {info['message']}")
    for request in s.get("pending_requests") or []:
        print(f"  pending: {request}")
    err = s.get("last_error")
    if err:
        print(f"  error ({err.get('kind')}): {err.get('message')}")
        for i, remedy in enumerate(err.get("remedy") or [], 1):
            print(f"    {i}. {remedy}")
    for line in s.get("damaged") or []:
        print(f"  status.json damaged: {line}")
    if s["state"] in ("stopped", "interrupted", "failed", "aborted", "unknown"):
        if run.can_resume():
            print(f"  resumable: kronos-train resume {s['run_id']}")
        for problem in run.checkpoint_problems():
            print(f"  not resumable: {problem}")


def main(args: argparse.Namespace) -> int:
    logs = args.logs or logs_dir_from_env()
    if args.run:
        run = run_from_args(args, "status")
        if run is None:
            return 2
        summary = summarize(run, read_events(run.events_path))
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print_details(summary, run)
        return 0
    rows = [summarize(run, _recent_events(run)) for run in list_runs(logs)]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows)
    return 0
