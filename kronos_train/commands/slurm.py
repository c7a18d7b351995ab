"""Write a SLURM batch script that runs a preset on several nodes (torchrun on each, c10d rendezvous)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..launch import PROJECT_ROOT, LaunchError, create_run
from ..runfolder import RunFolder, logs_dir_from_env

RDZV_PORT = 29500
SLURM_HEAD = "slurm-first-node"   # placeholder in config.yaml; the script resolves it (KRONOS_RDZV_ENDPOINT)
PREEMPT_SIGNAL = "USR1"
PREEMPT_WARNING_S = 120

TEMPLATE = """#!/bin/bash
# Kronos fine-tuning, run {run_id}: {nodes} node(s) x {gpus} GPU(s), preset {preset}.
# Written by `kronos-train slurm`. Submit with:  sbatch {script_name}
# The run folder must be on a filesystem every node sees; follow it with
#   kronos-train status {run_id}     (or kronos-tui on a login node)
#SBATCH --job-name=kronos-{job_name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={gpus}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --signal=B:{signal}@{warning}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={run_dir}/slurm-%j.out
{partition}
set -u
RUN_DIR={run_dir_q}
PYTHON={python_q}
export PYTHONPATH={root_q}${{PYTHONPATH:+:$PYTHONPATH}}
export PYTHONFAULTHANDLER=1
export NCCL_DEBUG=${{NCCL_DEBUG:-WARN}}
# export NCCL_SOCKET_IFNAME=ib0     # the interface the nodes talk over, if NCCL picks the wrong one

# torchrun on every node, one c10d rendezvous hosted on the first node of the allocation.
# The job id is the rendezvous id: it survives `scontrol requeue`.
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{{print $1}}')
export KRONOS_LAUNCHER=srun
export KRONOS_SRUN_ARGS="--gpus-per-node={gpus} --cpus-per-task={cpus}"
export KRONOS_RDZV_ENDPOINT="$head_ip:{port}"
export KRONOS_RDZV_ID="$SLURM_JOB_ID"

# {warning} s before the time limit (or on pre-emption) SLURM sends SIG{signal} to this script:
# ask the run to stop at its next optimizer step (it writes a checkpoint and ends "stopped"),
# then requeue the job; the requeued job resumes the run from that checkpoint.
preempted=0
on_preemption() {{
  preempted=1
  "$PYTHON" -c 'import sys, pathlib; from kronos_train.runfolder import RunFolder; RunFolder(pathlib.Path(sys.argv[1])).request("stop", source="slurm")' "$RUN_DIR"
}}
trap on_preemption {signal}

# --auto: a fresh start the first time, an exact resume after a requeue.
"$PYTHON" -m kronos_train.supervisor "$RUN_DIR" --auto &
supervisor=$!
while true; do                      # `wait` returns early when the trap fires: wait again
  wait "$supervisor"; code=$?
  kill -0 "$supervisor" 2>/dev/null || break
done
if [ "$preempted" = 1 ] && [ "$code" = 3 ]; then
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="PRESET_OR_FILE", help="preset name or YAML file")
    parser.add_argument("--nodes", type=int, required=True, metavar="N", help="number of nodes")
    parser.add_argument("--gpus-per-node", type=int, required=True, metavar="G", help="GPUs (processes) per node")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the script here (default: stdout)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder on the shared filesystem (default ./logs)")
    parser.add_argument("--time", default="24:00:00", help="wall-time limit (default 24:00:00)")
    parser.add_argument("--cpus-per-task", type=int, default=None, help="CPU cores per node (default 8 per GPU)")
    parser.add_argument("--partition", default="", help="SLURM partition")
    parser.add_argument("--skip-tokenizer", action="store_true")
    parser.add_argument("--skip-basemodel", action="store_true")
    parser.add_argument("--skip-existing", action="store_true")


def render(run: RunFolder, *, preset: str, nodes: int, gpus: int, cpus: int, time: str, partition: str,
           script_name: str) -> str:
    return TEMPLATE.format(
        run_id=run.run_id, nodes=nodes, gpus=gpus, preset=preset, script_name=script_name,
        job_name=run.run_id.split("-", 2)[-1], cpus=cpus, time=time, signal=PREEMPT_SIGNAL,
        warning=PREEMPT_WARNING_S, run_dir=run.path.resolve(), partition=f"#SBATCH --partition={partition}" if partition else "",
        run_dir_q=shlex.quote(str(run.path.resolve())), python_q=shlex.quote(sys.executable),
        root_q=shlex.quote(str(PROJECT_ROOT)), port=RDZV_PORT)


def manual_lines(run: RunFolder, nodes: int, gpus: int) -> list[str]:
    """The same launch without SLURM: one torchrun per node, per stage, same endpoint and id."""
    lines = []
    for stage in ("tokenizer", "basemodel"):
        lines.append(f"torchrun --nnodes {nodes} --nproc-per-node {gpus} --rdzv-backend c10d "
                     f"--rdzv-endpoint HEAD_IP:{RDZV_PORT} --rdzv-id {run.run_id}-{stage} "
                     f"-m kronos_train.train.stages {run.path.resolve()} {stage}")
    return lines


def main(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.gpus_per_node < 1:
        print("kronos-train slurm: --nodes and --gpus-per-node must be at least 1", file=sys.stderr)
        return 2
    try:
        run = create_run(args.config, args.logs or logs_dir_from_env(), num_gpus=args.gpus_per_node, nodes=args.nodes,
                         skip_tokenizer=args.skip_tokenizer, skip_basemodel=args.skip_basemodel,
                         skip_existing=args.skip_existing, allow_multinode=True,
                         rdzv_endpoint=f"{SLURM_HEAD}:{RDZV_PORT}" if args.nodes > 1 else None)
    except LaunchError as exc:
        print(f"kronos-train slurm: no script written; fix these first ({len(exc.problems)}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    script_name = str(args.out) if args.out else "job.sbatch"
    script = render(run, preset=str(args.config), nodes=args.nodes, gpus=args.gpus_per_node,
                    cpus=args.cpus_per_task or 8 * args.gpus_per_node, time=args.time, partition=args.partition,
                    script_name=script_name)
    if args.out:
        args.out.write_text(script, encoding="utf-8")
        args.out.chmod(0o755)
        print(f"wrote {args.out} for run {run.run_id} ({run.path}); submit it with: sbatch {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(script)
    print("without SLURM, start the stages by hand on every node (same endpoint and id), one after the other:",
          file=sys.stderr)
    for line in manual_lines(run, args.nodes, args.gpus_per_node):
        print(f"  {line}", file=sys.stderr)
    return 0
