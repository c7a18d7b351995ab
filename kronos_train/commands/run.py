"""Start a training run: validate, create logs/<run_id>/, run the stages in a detached supervisor."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..control.launch import LaunchError, create_run, start_supervisor
from ..control.runfolder import logs_dir_from_env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="PRESET_OR_FILE",
                        help="preset name (see `kronos-train presets`) or a YAML file such as kaggle_config.yaml")
    gpus = parser.add_mutually_exclusive_group()
    gpus.add_argument("--num-gpus", type=int, metavar="N", dest="num_gpus",
                      help="processes per node: GPUs, or CPU worker processes (gloo) on a machine without GPUs")
    gpus.add_argument("--multi-gpu", type=int, metavar="N", dest="num_gpus", help="same as --num-gpus (train_kaggle.sh)")
    parser.add_argument("--skip-tokenizer", action="store_true", help="do not train stage 1 (basemodel uses an existing tokenizer)")
    parser.add_argument("--skip-basemodel", action="store_true", help="train the tokenizer only")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip a stage whose best model already exists at <base_save_path>/<stage>/best_model")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES", dest="time_budget_minutes",
                        help="stop with a checkpoint (resumable) once an attempt has run this long, e.g. 510 for a "
                             "9-hour Kaggle session (overrides training.time_budget_minutes; 0 = none)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")
    parser.add_argument("--foreground", action="store_true",
                        help="run the supervisor in this process (batch scripts); output also goes to the terminal")


def main(args: argparse.Namespace) -> int:
    if args.num_gpus is not None and args.num_gpus < 1:
        print(f"kronos-train run: --num-gpus {args.num_gpus}: must be at least 1")
        return 2
    try:
        run = create_run(args.config, args.logs or logs_dir_from_env(), num_gpus=args.num_gpus,
                         skip_tokenizer=args.skip_tokenizer, skip_basemodel=args.skip_basemodel,
                         skip_existing=args.skip_existing, time_budget_minutes=args.time_budget_minutes)
    except LaunchError as exc:
        print(f"kronos-train run: nothing was started; fix these first ({len(exc.problems)}):")
        for problem in exc.problems:
            print(f"  {problem}" if not problem.startswith("  ") else f"  {problem}")
        return 2
    print(f"run {run.run_id}\n  folder: {run.path}")
    if args.foreground:
        from ..control import supervisor

        return supervisor.main([str(run.path), "--foreground"])
    try:
        pid = start_supervisor(run)
    except LaunchError as exc:
        print("\n".join(exc.problems))
        return 1
    print(f"  supervisor pid {pid} (detached: closing this terminal does not stop it)\n"
          f"  watch:  kronos-train status {run.run_id}   or   tail -f {run.stdout_path}\n"
          f"  stop:   kronos-train stop {run.run_id} [--early | --abort]")
    return 0
