"""Ask a run to stop: resumable by default, --early ends the current stage, --abort kills it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..control.events import STAGES
from ..control.launch import LaunchError
from ..control.scheduler import SchedulerError
from ..control.slurm_job import control_slurm_job, is_slurm_run
from . import run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, folder, or 'last'")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--early", action="store_true",
                      help="early stop: end the current stage now (its best model is kept) and go on with the next")
    kind.add_argument("--abort", action="store_true",
                      help="SIGTERM the training processes now; the last committed checkpoint stays loadable")
    parser.add_argument("--at-step", type=int, default=None, metavar="N",
                        help="plan the stop (or early stop) for when the stage reaches optimizer step N "
                             "instead of the next step")
    parser.add_argument("--stage", choices=STAGES, default=None,
                        help="the stage --at-step counts in (default: the stage running now)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")


def main(args: argparse.Namespace) -> int:
    if args.at_step is not None and (args.abort or args.at_step < 1):
        print(f"kronos-train stop: --at-step {args.at_step}: give an optimizer step >= 1, "
              "without --abort (an abort is immediate)")
        return 2
    run = run_from_args(args, "stop")
    if run is None:
        return 2
    kind = "abort" if args.abort else "early_stop" if args.early else "stop"
    try:
        done = control_slurm_job(run, kind, source="cli", at_step=args.at_step)
    except (SchedulerError, LaunchError) as exc:
        print(f"kronos-train stop: {exc}")
        return 1
    if done is not None:                 # a SLURM job: cancelled while queued, or aborted with scancel
        print(done)
        return 0
    if not run.is_alive() and args.at_step is not None and is_slurm_run(run) and run.state() == "pending":
        run.request(kind, source="cli", stage=args.stage, at_step=args.at_step)
        print(f"run {run.run_id}: {kind.replace('_', ' ')} planned at step {args.at_step}; the SLURM job has not "
              "started yet and sees it when it does")
        return 0
    if not run.is_alive():
        print(f"run {run.run_id} is not running (state: {run.state()}); nothing to stop")
        return 1
    stage = args.stage or run.read_status().get("stage")
    when = (f"when the {stage or 'current'} stage reaches step {args.at_step}" if args.at_step
            else "at the next optimizer step")
    if args.abort:
        run.request("abort", source="cli")
        print(f"run {run.run_id}: abort sent (SIGTERM to the training processes)")
    elif args.early:
        run.request("early_stop", source="cli", stage=stage, at_step=args.at_step)
        print(f"run {run.run_id}: early stop requested for the {stage or 'current'} stage; "
              f"it ends {when} and the next stage starts")
    else:
        run.request("stop", source="cli", stage=stage if args.at_step else None, at_step=args.at_step)
        print(f"run {run.run_id}: stop requested; it checkpoints {when}. "
              f"Continue later with `kronos-train resume {run.run_id}`")
    return 0
