"""Run a preset as a SLURM batch job on several nodes: write the script, or submit it (--submit)."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ..control.launch import LaunchError
from ..control.runfolder import RunFolder, logs_dir_from_env
from ..control.slurm_job import (RDZV_PORT_BASE, RDZV_PORT_SPAN, SlurmOptions, create_slurm_run, render, submit_script,
                                 write_script)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="PRESET_OR_FILE", help="preset name or YAML file")
    parser.add_argument("--nodes", type=int, required=True, metavar="N", help="number of nodes")
    parser.add_argument("--gpus-per-node", type=int, required=True, metavar="G",
                        help="GPUs per node (one process each); 0 = a CPU partition (see --procs-per-node)")
    parser.add_argument("--procs-per-node", type=int, default=None, metavar="K",
                        help="CPU worker processes per node (gloo) with --gpus-per-node 0 (default 1)")
    parser.add_argument("--partition", default="", help="SLURM partition (default: the cluster's default)")
    parser.add_argument("--time", default="24:00:00", help="wall-time limit (default 24:00:00); the job stops with a "
                        "checkpoint 120 s before it and requeues itself")
    parser.add_argument("--cpus-per-task", type=int, default=None, metavar="C",
                        help="cores per node (default: 8 per GPU, or the whole node on a CPU partition, "
                             "at most what the partition's nodes have)")
    parser.add_argument("--begin", default="", metavar="TIME", help="start no earlier than TIME (sbatch --begin)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder on the shared filesystem (default ./logs)")
    parser.add_argument("--submit", action="store_true", help="submit with sbatch and record the job in the run folder")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="also write the script here (default without --submit: stdout)")
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--skip-basemodel", action="store_true")
    parser.add_argument("--skip-existing", action="store_true")


def manual_lines(run: RunFolder, options: SlurmOptions) -> list[str]:
    """The same launch without SLURM: one torchrun per node, per stage, same endpoint and id."""
    return [f"torchrun --nnodes {options.nodes} --nproc-per-node {options.processes_per_node} --rdzv-backend c10d "
            f"--rdzv-endpoint HEAD_NODE:PORT --rdzv-id {run.run_id}-{stage} "
            f"-m kronos_train.train.stages {run.path.resolve()} {stage}" for stage in ("tokenizer", "basemodel")]


def _fail(what: str, problems: list[str]) -> int:
    print(f"kronos-train slurm: {what}; fix these first ({len(problems)}):", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    options = SlurmOptions(nodes=args.nodes, gpus_per_node=args.gpus_per_node, procs_per_node=args.procs_per_node,
                           cpus_per_task=args.cpus_per_task, partition=args.partition, time=args.time,
                           begin=args.begin)
    what = "nothing submitted" if args.submit else "no script written"
    try:
        run = create_slurm_run(args.config, args.logs or logs_dir_from_env(), options,
                               skip_tokenizer=args.skip_tokenizer, skip_basemodel=args.skip_basemodel,
                               skip_existing=args.skip_existing)
    except LaunchError as exc:
        return _fail(what, exc.problems)
    try:
        if args.out:
            args.out.write_text(render(run, options, str(args.config), str(args.out)), encoding="utf-8")
            args.out.chmod(0o755)
        if args.submit:
            job_id = submit_script(run, options, str(args.config))
        else:
            script = write_script(run, options, str(args.config))
    except LaunchError as exc:
        shutil.rmtree(run.path, ignore_errors=True)      # leave no run folder for a job that never was
        return _fail(what, exc.problems)
    if args.submit:
        print(f"run {run.run_id}\n  folder: {run.path}\n  SLURM job {job_id} submitted\n"
              f"  watch:  kronos-train status {run.run_id}\n  stop:   kronos-train stop {run.run_id}")
        return 0
    if args.out:
        print(f"wrote {args.out} for run {run.run_id} ({run.path}); submit it with: sbatch {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(script.read_text(encoding="utf-8"))
        print(f"(also in {script}); `--submit` submits it and lets `kronos-train status` follow the job",
              file=sys.stderr)
    print(f"without SLURM, start the stages by hand on every node (same endpoint and id; PORT in "
          f"{RDZV_PORT_BASE}-{RDZV_PORT_BASE + RDZV_PORT_SPAN - 1}), one after the other:", file=sys.stderr)
    for line in manual_lines(run, options):
        print(f"  {line}", file=sys.stderr)
    return 0
