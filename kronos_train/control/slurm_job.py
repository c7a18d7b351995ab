"""A run as a SLURM batch job: the options, the batch script, submission and resubmission.

    options = SlurmOptions(nodes=2, gpus_per_node=0, procs_per_node=1, time="00:30:00")
    run, job_id = submit_run("demo", Path("logs"), options)     # sbatch; scheduler.json records the job
    resubmit_run(run)                                            # `kronos-train resume` of a SLURM run

The script starts the run's supervisor on the first node; the supervisor starts
one torchrun per node through ``srun`` for each stage, all meeting at one c10d
rendezvous on the job's head node.  The endpoint is per job: the head node's
address as SLURM knows it (``scontrol show node``'s NodeAddr, by default the
node's name) and a port derived from the job id,
``RDZV_PORT_BASE + job_id % RDZV_PORT_SPAN`` (20000-29999, below Linux's
ephemeral ports), so jobs sharing a node never meet.  ``--gpus-per-node 0``
is a CPU partition: K gloo worker processes per node and no GPU request at all.

Every value that reaches the shell body is shell-quoted; values in ``#SBATCH``
lines (read by sbatch, not by a shell) must match a strict pattern or the
options are refused.  A resubmission renders the script again from the run's
``config.yaml`` and the options recorded in ``scheduler.json`` (validated as
on the command line): nothing in the run folder is executed.

Light module: no torch.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .heartbeat import local_host
from .launch import PROJECT_ROOT, LaunchError, create_run, resume_problems
from .runfolder import RunFolder, write_text_atomic
from .scheduler import SchedulerError, node_cpus, read_job_record, record_job, submit

RDZV_PORT_BASE = 20000
RDZV_PORT_SPAN = 10000
SLURM_HEAD = "slurm-head-node:0"    # placeholder endpoint in config.yaml; the script sets KRONOS_RDZV_ENDPOINT
PREEMPT_SIGNAL = "USR1"
PREEMPT_WARNING_S = 120
DEFAULT_CPUS_PER_GPU = 8
SCRIPT_NAME = "job.sbatch"
PARTITION = re.compile(r"^[A-Za-z0-9_.,-]*$")
TIME = re.compile(r"^(?:[0-9]+(?:-[0-9]{1,2})?(?::[0-9]{1,2}){0,2}|UNLIMITED|INFINITE)$")
BEGIN = re.compile(r"^[A-Za-z0-9:+.-]*$")

TEMPLATE = """#!/bin/bash
# Kronos fine-tuning, run {run_id}: {nodes} node(s) x {per_node}, preset {preset_comment}.
# Written by `kronos-train slurm`. Submit with:  sbatch {script_comment}
# The run folder must be on a filesystem every node sees; follow it with
#   kronos-train status {run_id}     (or kronos-tui on a login node)
#SBATCH --job-name=kronos-{job_name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
{gpu_line}#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
#SBATCH --signal=B:{signal}@{warning}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output="{run_dir}/slurm-%j.out"
{partition_line}{begin_line}
set -u
RUN_DIR={run_dir_q}
PYTHON={python_q}
export PYTHONPATH={root_q}${{PYTHONPATH:+:$PYTHONPATH}}
export PYTHONFAULTHANDLER=1
unset KRONOS_HOSTNAME               # the submitting (login) host's override: this job is on its own nodes
export NCCL_DEBUG=${{NCCL_DEBUG:-WARN}}
# export NCCL_SOCKET_IFNAME=ib0     # the interface the nodes talk over, if NCCL picks the wrong one

# torchrun on every node, one c10d rendezvous per job: on the first node of the
# allocation, at the address SLURM itself uses for that node (NodeAddr, by default
# its name), on a port derived from the job id ({port_base} + id % {port_span}) so
# jobs sharing a node never meet. The job id survives `scontrol requeue`.
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
head_addr=$(scontrol -o show node "$head_node" 2>/dev/null | tr ' ' '\\n' | sed -n 's/^NodeAddr=//p')
port=$(( {port_base} + SLURM_JOB_ID % {port_span} ))
export KRONOS_LAUNCHER=srun
export KRONOS_SRUN_ARGS={srun_args_q}
export KRONOS_RDZV_ENDPOINT="${{head_addr:-$head_node}}:$port"
export KRONOS_RDZV_ID="$SLURM_JOB_ID"

# {warning} s before the time limit (or on pre-emption) SLURM sends SIG{signal} to this script:
# ask the run to stop at its next optimizer step (it writes a checkpoint and ends "stopped"),
# then requeue the job; the requeued job resumes the run from that checkpoint.
preempted=0
on_preemption() {{
  preempted=1
  "$PYTHON" -c 'import sys, pathlib; from kronos_train.control.runfolder import RunFolder; RunFolder(pathlib.Path(sys.argv[1])).request("stop", source="slurm")' "$RUN_DIR"
}}
trap on_preemption {signal}

# --auto: a fresh start the first time, an exact resume after a requeue.
"$PYTHON" -m kronos_train.control.supervisor "$RUN_DIR" --auto &
supervisor=$!
while true; do                      # `wait` returns early when the trap fires: wait again
  wait "$supervisor"; code=$?
  kill -0 "$supervisor" 2>/dev/null || break
done
if [ "$preempted" = 1 ] && [ "$code" = 3 ]; then
  scontrol requeue "$SLURM_JOB_ID"  # kills this script at once: nothing below runs then
fi
exit "$code"
"""


@dataclass
class SlurmOptions:
    nodes: int = 1
    gpus_per_node: int = 1
    procs_per_node: int | None = None     # default: one per GPU, or 1 on a CPU partition
    cpus_per_task: int | None = None      # default: see default_cpus
    partition: str = ""
    time: str = "24:00:00"
    begin: str = ""                        # sbatch --begin: start no earlier than (now+1hour, 2026-12-01T22:00)

    @property
    def processes_per_node(self) -> int:
        return self.procs_per_node or max(1, self.gpus_per_node)

    def problems(self) -> list[str]:
        """What is wrong with these options, one line each, naming the option, the value and the remedy."""
        out = []
        if not isinstance(self.nodes, int) or self.nodes < 1:
            out.append(f"--nodes {self.nodes}: give 1 or more nodes")
        if not isinstance(self.gpus_per_node, int) or self.gpus_per_node < 0:
            out.append(f"--gpus-per-node {self.gpus_per_node}: give 0 (a CPU partition) or more GPUs")
        if self.procs_per_node is not None and (not isinstance(self.procs_per_node, int) or self.procs_per_node < 1):
            out.append(f"--procs-per-node {self.procs_per_node}: give 1 or more processes")
        elif self.procs_per_node and isinstance(self.gpus_per_node, int) and self.gpus_per_node > 0 \
                and self.procs_per_node != self.gpus_per_node:
            out.append(f"--procs-per-node {self.procs_per_node} with --gpus-per-node {self.gpus_per_node}: "
                       "on GPUs each process drives one GPU; leave --procs-per-node out (it is for CPU partitions)")
        if self.cpus_per_task is not None and (not isinstance(self.cpus_per_task, int) or self.cpus_per_task < 1):
            out.append(f"--cpus-per-task {self.cpus_per_task}: give 1 or more cores per node")
        for name, value, pattern, example in (("--partition", self.partition, PARTITION, "gpu"),
                                              ("--time", self.time, TIME, "24:00:00 or 2-00:00:00"),
                                              ("--begin", self.begin, BEGIN, "now+1hour")):
            if not isinstance(value, str) or not pattern.match(value):
                out.append(f"{name} {value!r}: not a SLURM {name[2:]}; e.g. {example}")
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "SlurmOptions":
        """Options read back from scheduler.json: only known fields; ``problems()`` still judges them."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def default_cpus(options: SlurmOptions) -> int:
    """Cores per node when not given: 8 per GPU, or the whole node on a CPU partition,
    never more than the partition's smallest node has (sinfo; unknown: as asked)."""
    available = node_cpus(options.partition)
    wanted = DEFAULT_CPUS_PER_GPU * options.gpus_per_node if options.gpus_per_node else (available or
                                                                                          options.processes_per_node)
    return max(1, min(wanted, available) if available else wanted)


def _comment(text: str) -> str:
    """A value shown in a comment line: escaped, so a newline cannot end the comment."""
    return json.dumps(text)[1:-1]


def render(run: RunFolder, options: SlurmOptions, preset: str, script_name: str = SCRIPT_NAME) -> str:
    run_dir = str(run.path.resolve())
    if "\n" in run_dir or '"' in run_dir:
        raise LaunchError([f"the run folder {run_dir!r} has a newline or a double quote in its path: sbatch "
                           "cannot take it in #SBATCH --output; use a plainer --logs folder"])
    gpus, procs = options.gpus_per_node, options.processes_per_node
    cpus = options.cpus_per_task or default_cpus(options)
    srun_args = (f"--gpus-per-node={gpus} " if gpus else "") + f"--cpus-per-task={cpus}"
    return TEMPLATE.format(
        run_id=run.run_id, nodes=options.nodes, preset_comment=_comment(preset), script_comment=_comment(script_name),
        per_node=f"{gpus} GPU(s)" if gpus else f"{procs} CPU process(es) (gloo)",
        job_name=re.sub(r"[^A-Za-z0-9_.-]", "-", run.run_id.split("-", 2)[-1]), cpus=cpus, time=options.time,
        gpu_line=f"#SBATCH --gpus-per-node={gpus}\n" if gpus else "", signal=PREEMPT_SIGNAL, warning=PREEMPT_WARNING_S,
        run_dir=run_dir, partition_line=f"#SBATCH --partition={options.partition}\n" if options.partition else "",
        begin_line=f"#SBATCH --begin={options.begin}\n" if options.begin else "",
        run_dir_q=shlex.quote(run_dir), python_q=shlex.quote(sys.executable), root_q=shlex.quote(str(PROJECT_ROOT)),
        srun_args_q=shlex.quote(srun_args), port_base=RDZV_PORT_BASE, port_span=RDZV_PORT_SPAN)


def rendezvous_port(job_id: int) -> int:
    """The port the batch script derives from the job id (documented; the script computes it in bash)."""
    return RDZV_PORT_BASE + int(job_id) % RDZV_PORT_SPAN


def create_slurm_run(preset: str | Path, logs_dir: Path, options: SlurmOptions, **stage_flags: Any) -> RunFolder:
    """Validate the options and the preset, then create the run folder (nothing is submitted)."""
    problems = options.problems()
    if problems:
        raise LaunchError(problems)
    return create_run(preset, logs_dir, num_gpus=options.processes_per_node, nodes=options.nodes,
                      allow_multinode=True, cpu_only=options.gpus_per_node == 0,
                      rdzv_endpoint=SLURM_HEAD if options.nodes > 1 else None, **stage_flags)


def write_script(run: RunFolder, options: SlurmOptions, preset: str) -> Path:
    script = run.path / SCRIPT_NAME
    write_text_atomic(script, render(run, options, preset, str(script)))
    return script


def submit_script(run: RunFolder, options: SlurmOptions, preset: str) -> str:
    """Write the run's script, sbatch it, record the job; the job id."""
    script = write_script(run, options, preset)
    try:
        job_id = submit(script)
    except SchedulerError as exc:
        raise LaunchError([str(exc)]) from None
    record_job(run, job_id, asdict(options), local_host())
    return job_id


def submit_run(preset: str | Path, logs_dir: Path, options: SlurmOptions, **stage_flags: Any) -> tuple[RunFolder, str]:
    """Create the run and submit it: the TUI's launch on SLURM and `kronos-train slurm --submit`."""
    run = create_slurm_run(preset, logs_dir, options, **stage_flags)
    try:
        return run, submit_script(run, options, str(preset))
    except LaunchError:
        shutil.rmtree(run.path, ignore_errors=True)     # nothing was submitted: leave no run that never was
        raise


def resubmit_run(run: RunFolder) -> str:
    """`kronos-train resume` of a SLURM run: the same run folder in a new job (exact resume by --auto)."""
    from .scheduler import query_job

    record = read_job_record(run)
    if record is None:
        raise LaunchError([f"{run.path} records no SLURM job (scheduler.json missing or unreadable)"])
    info = query_job(record.job_id)
    if info.active:
        raise LaunchError([f"run {run.run_id}: its SLURM job {record.job_id} is still {info.state.lower()}; "
                           f"stop it first with `kronos-train stop {run.run_id}`"])
    problems = resume_problems(run)
    options = SlurmOptions.from_record(record.options)
    problems += [f"{run.path / 'scheduler.json'}: {p}" for p in options.problems()]
    if problems:
        raise LaunchError(problems)
    return submit_script(run, options, run.preset_name())


def is_slurm_run(run: RunFolder) -> bool:
    return read_job_record(run) is not None


def cancel_waiting_job(run: RunFolder, job_id: str) -> str:
    """scancel a job whose supervisor has not started; the run ends ``stopped``
    when an earlier attempt left a checkpoint (resumable), else ``cancelled``."""
    from .scheduler import cancel

    cancel(job_id)
    state = "stopped" if run.has_committed_checkpoint() else "cancelled"
    run.write_status(state=state, preset=run.preset_name(), pgid=None, stage=None,
                     message=f"SLURM job {job_id} cancelled before it started"
                             + ("; resumable" if state == "stopped" else ""))
    return state


def control_slurm_job(run: RunFolder, kind: str, source: str = "cli", at_step: int | None = None) -> str | None:
    """Stop, early stop or abort a SLURM run where a request file alone cannot:
    a queued job is cancelled (scancel), an abort also cancels a running job.
    Returns what was done, in words; None when the run is not a SLURM run or the
    request file is the way (stop and early stop of a running supervisor, a
    planned stop, a job that has ended).  SchedulerError when SLURM cannot be asked."""
    from .scheduler import cancel, describe, query_job

    record = read_job_record(run)
    if record is None:
        return None
    alive = run.is_alive()
    if alive and kind != "abort":
        return None
    info = query_job(record.job_id)
    if info.error:
        raise SchedulerError(describe(info))
    if alive:                                   # abort: SIGTERM where we can, then the scheduler's own kill
        run.request("abort", source=source)
        cancel(record.job_id)
        return f"run {run.run_id}: abort sent and SLURM job {record.job_id} cancelled (scancel)"
    if not info.active:
        return None
    if at_step is not None:                     # the job will start later and see the planned request
        return None
    if kind == "early_stop":
        return (f"run {run.run_id}: SLURM job {record.job_id} has not started training yet: nothing to end early "
                f"(`kronos-train stop {run.run_id}` cancels it)")
    state = cancel_waiting_job(run, record.job_id)
    return f"run {run.run_id}: SLURM job {record.job_id} was {info.state.lower()}; cancelled (scancel), run {state}"
