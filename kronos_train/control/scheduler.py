"""The run's scheduler job: what the run folder records of it and what SLURM says about it.

``scheduler.json`` in the run folder (written at submission, JSON only) names the
job — ``{scheduler: "slurm", job_id, jobs: [...], submitted_at, submit_host,
options: {...}}`` — and is treated as untrusted input when read back: a job id
that is not a plain number is ignored, never passed to a command.

SLURM is asked with ``squeue -j ID -h -o ...`` (state, reason, nodes, time left)
and ``scontrol show job -o ID`` (requeue count, time limit, exit code, and the
final state for a while after the job ended); ``sacct`` is not used, since
accounting is often off.  Every query has a timeout and returns a
:class:`JobInfo` — with ``error`` set when SLURM could not be asked — never an
exception, and the parsers survive any text.

Light module: standard library only (the TUI calls it from a worker thread).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runfolder import RunFolder, read_json, write_json_atomic

SCHEDULER_FILE = "scheduler.json"
QUERY_TIMEOUT_S = 5.0
JOB_ID = re.compile(r"^[0-9]{1,12}$")
SQUEUE_FORMAT = "%i|%T|%r|%N|%L|%l"          # job id | state | reason | nodes | time left | time limit
# The batch script exits with the supervisor's code (kronos_train/control/supervisor.py).
SUPERVISOR_EXITS = {"1": "a stage failed", "2": "the run did not start", "3": "the run stopped, resumable",
                    "4": "the run was aborted"}
# Job states in which SLURM will still start (or is starting) the job: no supervisor yet.
WAITING_STATES = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED", "RESV_DEL_HOLD")
ACTIVE_STATES = WAITING_STATES + ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED")


class SchedulerError(Exception):
    """A scheduler command failed; the message says which, why and what to do."""


# --------------------------------------------------------------------------- the record in the run folder

@dataclass(frozen=True)
class JobRecord:
    job_id: str
    jobs: tuple[str, ...]
    options: dict[str, Any]


def scheduler_path(run: RunFolder) -> Path:
    return run.path / SCHEDULER_FILE


def read_job_record(run: RunFolder) -> JobRecord | None:
    """The run's SLURM job, or None (no file, garbage, or an id that is not a number)."""
    data = read_json(scheduler_path(run))
    if data is None or data.get("scheduler") != "slurm":
        return None
    job_id = str(data.get("job_id", ""))
    if not JOB_ID.match(job_id):
        return None
    jobs = tuple(str(j) for j in data.get("jobs") or [] if JOB_ID.match(str(j))) or (job_id,)
    options = data.get("options") if isinstance(data.get("options"), dict) else {}
    return JobRecord(job_id=job_id, jobs=jobs, options=options)


def record_job(run: RunFolder, job_id: str, options: dict[str, Any], submit_host: str) -> None:
    """Remember the job (and every earlier job of the run: a resume submits a new one)."""
    earlier = read_job_record(run)
    jobs = [*(earlier.jobs if earlier else ()), job_id]
    write_json_atomic(scheduler_path(run), {"scheduler": "slurm", "job_id": job_id, "jobs": jobs,
                                            "submitted_at": time.time(), "submit_host": submit_host,
                                            "options": options})


# --------------------------------------------------------------------------- asking SLURM

@dataclass
class JobInfo:
    job_id: str
    state: str = ""              # SLURM's JobState (PENDING, RUNNING, COMPLETED, ...); "" when unknown
    reason: str = ""             # why it waits (Resources, Priority, BeginTime, JobHeldUser, ...)
    nodes: str = ""              # NodeList, e.g. node[1-2]
    time_left: str = ""          # squeue's %L, e.g. 1:23:45
    time_limit: str = ""
    restarts: int = 0            # requeues so far
    exit_code: str = ""
    error: str = ""              # SLURM could not be asked: why
    details: dict[str, str] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return bool(self.state)

    @property
    def waiting(self) -> bool:
        return self.state in WAITING_STATES

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); exit code 127 and a message when the command is missing or hangs."""
    if shutil.which(cmd[0]) is None:
        return 127, "", f"`{cmd[0]}` is not installed here (is this a SLURM login node?)"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 124, "", f"`{' '.join(cmd)}` did not answer within {timeout:g} s (slurmctld busy or down?)"
    except OSError as exc:
        return 126, "", f"`{cmd[0]}` could not run: {exc}"
    return proc.returncode, proc.stdout, proc.stderr.strip()


def parse_squeue(text: str) -> dict[str, dict[str, str]]:
    """``squeue -h -o SQUEUE_FORMAT`` lines by job id; lines that do not fit are skipped."""
    jobs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 6 or not JOB_ID.match(parts[0]):
            continue
        jobs[parts[0]] = dict(zip(("job_id", "state", "reason", "nodes", "time_left", "time_limit"), parts))
    return jobs


KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def parse_scontrol(text: str) -> dict[str, str]:
    """``scontrol show job -o ID``: ``Key=value`` pairs (values may hold spaces) of the first job."""
    line = next((l for l in text.splitlines() if l.strip()), "")
    matches = list(KEY.finditer(line))
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        fields.setdefault(m.group(1), line[m.end():end].strip())
    return fields


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _nodes(value: str) -> str:
    return "" if value in ("", "(null)", "None") else value


def query_job(job_id: str, timeout: float = QUERY_TIMEOUT_S) -> JobInfo:
    """What SLURM says about one job now; ``error`` set when it cannot be asked."""
    info = JobInfo(job_id)
    if not JOB_ID.match(job_id):
        info.error = f"job id {job_id!r} is not a SLURM job id"
        return info
    code, out, err = _run(["squeue", "-j", job_id, "-h", "-o", SQUEUE_FORMAT], timeout)
    row = parse_squeue(out).get(job_id) if code == 0 else None
    if row is not None:
        info.state, info.reason, info.nodes = row["state"], row["reason"], _nodes(row["nodes"])
        info.time_left, info.time_limit = row["time_left"], row["time_limit"]
    elif code != 0 and "invalid job id" not in err.lower():   # not a job slurmctld forgot: it could not be asked
        info.error = err.splitlines()[-1] if err else f"squeue exited with code {code}"
        return info
    code, out, err = _run(["scontrol", "-o", "show", "job", job_id], timeout)
    fields = parse_scontrol(out) if code == 0 else {}
    if fields.get("JobId") == job_id:
        info.details = fields
        info.state = info.state or fields.get("JobState", "").split(" ")[0]
        info.reason = info.reason or fields.get("Reason", "")
        info.nodes = info.nodes or _nodes(fields.get("NodeList", ""))
        info.time_limit = info.time_limit or fields.get("TimeLimit", "")
        info.restarts = _int(fields.get("Restarts", ""))
        info.exit_code = fields.get("ExitCode", "")
    return info


def describe(info: JobInfo) -> str:
    """One line for people: 'SLURM job 42: queued (Resources)', '... running on node[1-2], requeued 1x, 0:42 left'."""
    head = f"SLURM job {info.job_id}"
    if info.error:
        return f"{head}: cannot ask SLURM: {info.error}"
    if not info.known:
        return f"{head}: no longer known to SLURM (it ended a while ago; the run's own state is above)"
    requeued = f", requeued {info.restarts}x" if info.restarts else ""
    if info.waiting:
        reason = f" ({info.reason})" if info.reason and info.reason != "None" else ""
        return f"{head}: queued{reason}{requeued}"
    if info.state == "RUNNING":
        left = f", {info.time_left} left" if info.time_left and info.time_left not in ("INVALID", "UNLIMITED") else ""
        return f"{head}: running on {info.nodes or '?'}{requeued}{left}"
    exit_code = f", exit {info.exit_code}" if info.exit_code and info.exit_code != "0:0" else ""
    meaning = SUPERVISOR_EXITS.get(info.exit_code.split(":")[0]) if exit_code else None
    exit_code += f" ({meaning})" if meaning else ""
    return f"{head}: {info.state}{exit_code}{requeued}"


def job_of_run(run: RunFolder, timeout: float = QUERY_TIMEOUT_S) -> JobInfo | None:
    """The run's SLURM job as SLURM sees it now; None for a run that is not a SLURM job."""
    record = read_job_record(run)
    return query_job(record.job_id, timeout) if record is not None else None


def display_state(run_state: str, info: JobInfo | None) -> str:
    """The run's state with the scheduler's word where it adds one: a run whose
    supervisor has not started yet while its job waits is 'queued'."""
    if info is not None and info.waiting and run_state in ("pending", "interrupted", "stopped"):
        return "queued"
    return run_state


# --------------------------------------------------------------------------- submitting and cancelling

def submit(script: Path, timeout: float = 30.0) -> str:
    """``sbatch --parsable SCRIPT``; the job id, or SchedulerError saying why not."""
    code, out, err = _run(["sbatch", "--parsable", str(script)], timeout)
    job_id = out.strip().split(";")[0]
    if code != 0 or not JOB_ID.match(job_id):
        raise SchedulerError(f"sbatch refused {script}: {err or out.strip() or f'exit code {code}'}")
    return job_id


def cancel(job_id: str, timeout: float = 30.0) -> None:
    """``scancel ID``; SchedulerError when SLURM refused."""
    if not JOB_ID.match(job_id):
        raise SchedulerError(f"job id {job_id!r} is not a SLURM job id")
    code, out, err = _run(["scancel", job_id], timeout)
    if code != 0:
        raise SchedulerError(f"scancel {job_id} failed: {err or out.strip() or f'exit code {code}'}")


def node_cpus(partition: str = "", timeout: float = QUERY_TIMEOUT_S) -> int | None:
    """The CPUs of the smallest node of ``partition`` (default partition when empty), or None."""
    cmd = ["sinfo", "-h", "-o", "%c"] + (["-p", partition] if partition else [])
    code, out, _ = _run(cmd, timeout)
    counts = [int(tok.rstrip("+")) for tok in out.split() if tok.rstrip("+").isdigit()] if code == 0 else []
    return min(counts) if counts else None


class JobWatch:
    """A run's SLURM job for a reader that polls (the TUI's follower and Runs
    table, from worker threads): SLURM is asked at most every ``every_s``
    seconds, each query bounded by its timeout."""

    def __init__(self, run: RunFolder, every_s: float = 10.0, timeout: float = QUERY_TIMEOUT_S):
        self.run, self.every_s, self.timeout = run, every_s, timeout
        self.info: JobInfo | None = None
        self._asked_at = -1e18

    def poll(self, force: bool = False) -> bool:
        """Ask again when due; True when what a reader shows changed."""
        now = time.monotonic()
        if not force and now - self._asked_at < self.every_s:
            return False
        self._asked_at = now
        before = self.line
        self.info = job_of_run(self.run, self.timeout)
        return self.line != before

    def ask_at_next_poll(self) -> None:
        self._asked_at = -1e18

    @property
    def line(self) -> str:
        return describe(self.info) if self.info is not None else ""

    @property
    def waiting(self) -> bool:
        return self.info is not None and self.info.waiting

    def state(self, run_state: str) -> str:
        return display_state(run_state, self.info)
