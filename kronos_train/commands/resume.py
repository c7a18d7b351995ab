"""Resume a stopped or interrupted run exactly where its last committed checkpoint left it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..control.launch import LaunchError, resume_problems, set_time_budget, start_supervisor
from ..control.runfolder import RunFolder
from ..control.slurm_job import is_slurm_run, resubmit_run
from . import run_from_args


def resubmit(run: RunFolder, args: argparse.Namespace) -> int:
    """A SLURM run resumes in a new job: same run folder, exact resume on the compute nodes."""
    try:
        if args.time_budget_minutes is not None:
            set_time_budget(run, args.time_budget_minutes)
        job_id = resubmit_run(run)
    except LaunchError as exc:
        print(f"kronos-train resume: run {run.run_id} cannot be resumed exactly:")
        for problem in exc.problems:
            print(f"  {problem}")
        return 2
    print(f"resuming run {run.run_id} ({run.state()}) in SLURM job {job_id}\n  folder: {run.path}\n"
          f"  watch:  kronos-train status {run.run_id}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, folder, or 'last'")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES", dest="time_budget_minutes",
                        help="a new training.time_budget_minutes for this and later attempts (e.g. the next "
                             "Kaggle session's length); 0 = none")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")
    parser.add_argument("--foreground", action="store_true", help="run the supervisor in this process")


def main(args: argparse.Namespace) -> int:
    run = run_from_args(args, "resume")
    if run is None:
        return 2
    if is_slurm_run(run) and not args.foreground:
        return resubmit(run, args)
    problems = resume_problems(run)
    if problems:
        print(f"kronos-train resume: run {run.run_id} cannot be resumed exactly:")
        for problem in problems:
            print(f"  {problem}")
        return 2
    if args.time_budget_minutes is not None:
        try:
            set_time_budget(run, args.time_budget_minutes)
        except LaunchError as exc:
            print(f"kronos-train resume: {exc.problems[0]}")
            return 2
    print(f"resuming run {run.run_id} ({run.state()})\n  folder: {run.path}")
    if args.foreground:
        from ..control import supervisor

        return supervisor.main([str(run.path), "--resume", "--foreground"])
    try:
        pid = start_supervisor(run, resume=True)
    except LaunchError as exc:
        print("\n".join(exc.problems))
        return 1
    print(f"  supervisor pid {pid}")
    return 0
