"""Ask a run to stop: resumable by default, --early ends the current stage, --abort kills it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..runfolder import find_run, logs_dir_from_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, folder, or 'last'")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--early", action="store_true",
                      help="early stop: end the current stage now (its best model is kept) and go on with the next")
    kind.add_argument("--abort", action="store_true",
                      help="SIGTERM the training processes now; the last committed checkpoint stays loadable")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")


def main(args: argparse.Namespace) -> int:
    try:
        run = find_run(args.run, args.logs or logs_dir_from_env())
    except LookupError as exc:
        print(f"kronos-train stop: {exc}")
        return 2
    if not run.is_alive():
        print(f"run {run.run_id} is not running (state: {run.state()}); nothing to stop")
        return 1
    status = run.read_status()
    if args.abort:
        run.request("abort", source="cli")
        print(f"run {run.run_id}: abort sent (SIGTERM to the training processes)")
    elif args.early:
        stage = status.get("stage")
        run.request("early_stop", source="cli", stage=stage)
        print(f"run {run.run_id}: early stop requested for the {stage or 'current'} stage; "
              "it ends at the next optimizer step and the next stage starts")
    else:
        run.request("stop", source="cli")
        print(f"run {run.run_id}: stop requested; it checkpoints at the next optimizer step. "
              f"Continue later with `kronos-train resume {run.run_id}`")
    return 0
