"""The run supervisor: runs the stages of one run, in order, and records the run's state.

    python -m kronos_train.control.supervisor RUN_DIR [--resume | --auto] [--foreground]

Started detached by ``kronos-train run`` and the TUI (its own session, stdin
closed, output appended to the run's ``stdout.log``/``stderr.log``), so closing
the terminal or losing SSH never stops it.  It holds ``supervisor.lock`` (an
exclusive flock: ``RunFolder.is_alive``) for its whole life, writes
``status.json`` and the run-level events (``run_start``, ``log``, ``error``,
``stage_end`` for skipped and failed stages, ``run_end``), and starts one
``torchrun`` process group per stage.

Each torchrun gets its own session; its process group id is ``status.json``'s
``pgid`` while the stage runs, so ``RunFolder.request("abort")`` (SIGTERM to
that group) stops the training processes while the supervisor survives to
record ``aborted``.  torchrun dies with the supervisor (parent-death signal)
and the workers die with torchrun, so a killed supervisor leaves no orphans.

A stage's outcome is what its rank 0 wrote to ``results/`` (see train/outcome.py) with
torchrun's exit code, never parsed from events.jsonl; while it runs, a hang watchdog
ends it when no rank reports progress for the hang timeout (error kind ``hang``).

Exit codes: 0 completed, 1 failed, 2 not started (lock held / bad run
folder), 3 stopped (resumable), 4 aborted.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from ..config import config_hash, world_size
from .events import REQUEST_KINDS, SCHEMA_VERSION, STAGES, TIME_BUDGET_SOURCE, EventWriter, read_events
from .heartbeat import HeartbeatThread
from .launch import LaunchError, child_env, ensure_synthetic, load_run_config, skip_reason
from .process import set_parent_death_signal
from .procstat import WorkerRecorder
from .runfolder import RUN_TOKEN_ENV, RunFolder, RunFolderError, refuse_symlink
from .failures import (SECONDARY_KINDS, Failure, classify_exit, hang_failure, read_failures, root_cause,
                       torchrun_root_cause)
from .outcome import finished_attempts, hang_timeout_s, last_progress, read_result

EXIT_CODES = {"completed": 0, "failed": 1, "stopped": 3, "aborted": 4}
FINISHED = ("completed", "early_stopped")
WATCH_EVERY_S = 1.0                 # how often the hang watchdog looks at the progress files


def take_lock(run: RunFolder) -> int | None:
    """The exclusive flock that says 'a supervisor lives'; None when another holds it.
    RunFolderError when the lock or status file is a symbolic link."""
    refuse_symlink(run.lock_path)
    refuse_symlink(run.status_path)
    fd = os.open(run.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def cpu_share_threads(procs_per_node: int) -> int:
    """Threads per CPU worker: its share of the cores it may use.  Under SLURM
    that is the job's ``SLURM_CPUS_PER_TASK`` on each node (one task per node
    runs torchrun), elsewhere the cores this process may run on."""
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm_cpus.isdigit() and int(slurm_cpus) > 0:
        cores = int(slurm_cpus)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, procs_per_node))


def _tee(pipe: BinaryIO, path: Path, echo: BinaryIO, mute: threading.Event) -> None:
    """Foreground mode: a stage's output goes to the run's file and the terminal; once the
    user has asked to end the run (``mute``), torchrun's teardown tracebacks go to the file only."""
    with open(path, "ab") as out:
        for line in iter(pipe.readline, b""):
            out.write(line)
            out.flush()
            if mute.is_set():
                continue
            try:
                echo.write(line)
                echo.flush()
            except (BrokenPipeError, ValueError):    # the terminal went away: the file has it all
                mute.set()


def next_attempt(run: RunFolder, previous: dict[str, Any]) -> int:
    """One more than any attempt status.json or events.jsonl knows of (either may be damaged)."""
    attempts = [previous.get("attempt")] + [r.get("attempt") for r in read_events(run.events_path)]
    return max((a for a in attempts if isinstance(a, int) and a >= 0), default=-1) + 1


class Supervisor:
    def __init__(self, run: RunFolder, resume: bool, foreground: bool):
        self.run = run
        self.resume = resume
        self.foreground = foreground
        self.cfg = load_run_config(run)
        previous = run.read_status()
        self.attempt = next_attempt(run, previous) if resume else 0
        self.started = time.time()
        self.events = EventWriter(run.events_path)
        self.proc: subprocess.Popen | None = None
        self.signalled: int | None = None
        self.stages: dict[str, Any] = dict(previous.get("stages") or {}) if resume else {}
        budget = self.cfg.training.time_budget_minutes
        # Each attempt gets the whole budget: a resume is typically the next session.
        self.deadline = self.started + 60 * budget if budget > 0 else None
        self.budget_reached = False
        self.mute_echo = threading.Event()
        self.hang: Failure | None = None            # set by the watchdog while a stage runs
        self.last_result: dict[str, Any] | None = None
        self.token = secrets.token_hex(16)   # proves to `stop --abort` that a process group is this run's

    # ------------------------------------------------------------ helpers
    def say(self, text: str) -> None:
        print(f"[supervisor] {time.strftime('%H:%M:%S')} {text}", flush=True)

    def status(self, **changes: Any) -> None:
        self.run.write_status(**changes)

    def set_stage_status(self, stage: str, **fields: Any) -> None:
        self.stages[stage] = {**self.stages.get(stage, {}), **fields}
        self.status(stages=self.stages)

    def on_signal(self, signum: int, _frame: Any) -> None:
        """SIGTERM/SIGINT: abort the run, stopping the stage's process group first."""
        self.signalled = signum
        self.mute_echo.set()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def abort_requested(self) -> bool:
        request = self.run.pending_request("abort")
        return self.signalled is not None or (request is not None and not request.get("invalid"))

    def stage_records(self, stage: str) -> list[dict[str, Any]]:
        return [r for r in read_events(self.run.events_path) if r.get("stage") == stage]

    def finished_earlier(self, stage: str) -> bool:
        """A resume skips the stages an earlier attempt completed or early-stopped, by the
        stages' own result files (events.jsonl of runs from before result files as well)."""
        if not self.resume:
            return False
        return bool(finished_attempts(self.run, stage, self.attempt)) or any(
            r.get("event") == "stage_end" and r.get("status") in FINISHED and r.get("attempt", 0) < self.attempt
            for r in self.stage_records(stage))

    # ------------------------------------------------------------ torchrun
    def torchrun_command(self, stage: str) -> list[str]:
        d = self.cfg.distributed
        endpoint = os.environ.get("KRONOS_RDZV_ENDPOINT") or (d.rdzv_endpoint if d.nodes > 1 else "") or "localhost:0"
        rdzv_id = f"{os.environ.get('KRONOS_RDZV_ID') or self.run.run_id}-{stage}-{self.attempt}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(d.nodes),
               "--nproc-per-node", str(d.num_gpus), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
               "--rdzv-id", rdzv_id, "--max-restarts", "0",
               "-m", "kronos_train.train.stages", str(self.run.path), stage, "--attempt", str(self.attempt)]
        if self.deadline is not None:
            cmd += ["--deadline", f"{self.deadline:.3f}"]
        if os.environ.get("KRONOS_LAUNCHER") == "srun":     # set by the batch script of `kronos-train slurm`
            extra = shlex.split(os.environ.get("KRONOS_SRUN_ARGS", ""))
            cmd = ["srun", f"--nodes={d.nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *extra] + cmd
        return cmd

    def worker_env(self) -> dict[str, str]:
        env = child_env()
        env[RUN_TOKEN_ENV] = self.token
        if "OMP_NUM_THREADS" not in env and not self.cfg.device.use_cuda:
            # CPU workers share the cores; torchrun would otherwise pin each to one thread.
            env["OMP_NUM_THREADS"] = str(cpu_share_threads(self.cfg.distributed.num_gpus))
        return env

    def start_torchrun(self, stage: str) -> subprocess.Popen:
        cmd = self.torchrun_command(stage)
        self.say(f"{stage}: {' '.join(cmd)}")
        common = dict(start_new_session=True, stdin=subprocess.DEVNULL, env=self.worker_env(), close_fds=True,
                      preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM))
        if not self.foreground:
            with open(self.run.stdout_path, "ab") as out, open(self.run.stderr_path, "ab") as err:
                return subprocess.Popen(cmd, stdout=out, stderr=err, **common)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **common)
        for pipe, path, echo in ((proc.stdout, self.run.stdout_path, sys.stdout.buffer),
                                 (proc.stderr, self.run.stderr_path, sys.stderr.buffer)):
            threading.Thread(target=_tee, args=(pipe, path, echo, self.mute_echo), daemon=True).start()
        return proc

    # ------------------------------------------------------------ one stage
    def run_stage(self, stage: str) -> str:
        """Run one stage's torchrun; returns completed | early_stopped | stopped | failed | aborted."""
        stderr_offset = self.run.stderr_path.stat().st_size if self.run.stderr_path.exists() else 0
        self.set_stage_status(stage, status="running")
        self.proc = self.start_torchrun(stage)
        self.status(stage=stage, pgid=self.proc.pid)
        self.hang = None
        recorder = self.record_workers(stage, self.proc.pid)
        exit_code = self.wait_watching(stage)
        recorder.stop()
        self.proc = None
        self.status(pgid=None)
        told = {r.get("event") for r in self.stage_records(stage) if r.get("attempt") == self.attempt}
        started = last_progress(self.run, stage, self.attempt)[0] is not None or "stage_start" in told
        if self.hang is not None:
            return self.record_failure(stage, self.hang, started)
        self.last_result = end = read_result(self.run, stage, self.attempt)
        if end is not None:                             # the stage reported its own ending
            self.set_stage_status(stage, status=end["status"], best_val_loss=end.get("best_val_loss"),
                                  step=end.get("step"))
            if end["status"] == "stopped" and self.abort_requested():
                return "aborted"
            return end["status"]
        if self.abort_requested():                      # SIGTERM reached the workers first
            # Rank 0 may have told the stage's end and been killed before writing its
            # result: the story then has its stage_end already (the outcome is ours).
            if started and "stage_end" not in told:
                self.events.emit("stage_end", stage=stage, attempt=self.attempt, status="stopped",
                                 message="aborted on request; the last committed checkpoint stays loadable")
            self.set_stage_status(stage, status="stopped")
            return "aborted"
        return self.record_failure(stage, self.diagnose(stage, exit_code, stderr_offset), started)

    def wait_watching(self, stage: str) -> int:
        """torchrun's exit code.  Meanwhile the hang watchdog: once the stage reported progress,
        no rank reporting any for the hang timeout ends the stage's processes (SIGKILL: a stopped
        or stuck process handles nothing else; the committed checkpoint stays loadable)."""
        assert self.proc is not None
        while True:
            try:
                return self.proc.wait(timeout=WATCH_EVERY_S)
            except subprocess.TimeoutExpired:
                pass
            if self.hang is not None:
                continue                            # already ended: wait for torchrun to go
            self.hang = self.hang_seen(stage)
            if self.hang is not None:
                self.say(f"{stage}: {self.hang.message}")
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def hang_seen(self, stage: str) -> Failure | None:
        last, slowest = last_progress(self.run, stage, self.attempt)
        if last is None:
            return None
        limit = hang_timeout_s(self.cfg.training.hang_timeout_minutes, slowest)
        silence = time.time() - last
        return hang_failure(self.run, silence, limit) if silence > limit else None

    def record_failure(self, stage: str, failure: Failure, started: bool) -> str:
        """The error event, the stage_end (when the stage had started) and status.json of a failed stage."""
        self.events.emit("error", stage=stage, attempt=self.attempt, **failure.event_fields())
        self.say(f"{stage} failed: {failure.message}")
        for line in failure.remedy:
            self.say(f"  try: {line}")
        if started:
            self.events.emit("stage_end", stage=stage, attempt=self.attempt, status="failed",
                             message=failure.message[:500])
        self.set_stage_status(stage, status="failed")
        self.status(message=failure.message[:500])
        return "failed"

    def record_workers(self, stage: str, torchrun_pid: int) -> WorkerRecorder:
        """``workers`` events: CPU %, memory and threads of torchrun's children, so a
        reader on any host sees what a CPU run's workers do (and after a re-attach)."""
        host = socket.gethostname()
        return WorkerRecorder(torchrun_pid, lambda workers: self.events.emit(
            "workers", host=host, stage=stage, attempt=self.attempt, workers=workers)).start()

    def diagnose(self, stage: str, exit_code: int, stderr_offset: int) -> Failure:
        """The root cause: a rank's own report of what went wrong (OOM, data, config ...),
        else a worker killed by a signal (torchrun's summary), else whatever was seen."""
        reports = read_failures(self.run, stage, self.attempt)
        primary = root_cause([f for f in reports if f.kind not in SECONDARY_KINDS])
        if primary is not None:
            return primary
        try:
            with open(self.run.stderr_path, "rb") as fh:
                fh.seek(stderr_offset)
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        rank, code = torchrun_root_cause(text)
        if code is not None and (code < 0 or not reports):
            return classify_exit(code, rank)        # e.g. SIGKILL by the host's OOM killer: no report
        if reports:
            return root_cause(reports)
        failure = classify_exit(exit_code)
        failure.message = (f"torchrun exited with code {exit_code} before the stage reported anything; "
                           f"the end of {self.run.stderr_path} says why")
        return failure

    # ------------------------------------------------------------ the run
    def start_events(self) -> None:
        planned = [s for s in STAGES if skip_reason(self.cfg, s) is None]
        d = self.cfg.distributed
        self.events.emit("run_start", schema=SCHEMA_VERSION, run_id=self.run.run_id, preset=self.run.preset_name(),
                         stages=planned, world_size=world_size(self.cfg), attempt=self.attempt,
                         config_hash=config_hash(self.cfg), host=socket.gethostname(), pid=os.getpid(),
                         resumed=self.resume, nodes=d.nodes, backend=d.backend,
                         device="cuda" if self.cfg.device.use_cuda else "cpu")

    def execute(self) -> str:
        for stage in STAGES:
            if self.finished_earlier(stage):
                self.events.emit("log", level="info", stage=stage, attempt=self.attempt,
                                 message=f"{stage}: finished in an earlier attempt, not run again")
                continue
            reason = skip_reason(self.cfg, stage)
            if reason:
                self.events.emit("stage_end", stage=stage, attempt=self.attempt, status="skipped", message=reason)
                self.set_stage_status(stage, status="skipped")
                self.say(f"{stage}: skipped ({reason})")
                continue
            if self.abort_requested():
                return "aborted"
            if self.run.immediate_request("stop") is not None:   # arrived while no stage was running
                return "stopped"
            if self.deadline is not None and time.time() >= self.deadline:
                self.events.emit("log", level="info", stage=stage, attempt=self.attempt,
                                 message=f"{stage}: not started, the time budget is spent; resume to run it")
                self.budget_reached = True
                return "stopped"
            outcome = self.run_stage(stage)
            if outcome == "stopped" and (self.last_result or {}).get("source") == TIME_BUDGET_SOURCE:
                self.budget_reached = True
            self.clear_early_stop_after(stage)
            if outcome not in FINISHED:
                return outcome
        return "completed"

    def clear_early_stop_after(self, stage: str) -> None:
        """A late early stop was meant for the stage that just ended; one aimed at a
        later stage (planned with ``at_step``) stays for it."""
        request = self.run.pending_request("early_stop")
        if request is None:
            return
        later = STAGES[STAGES.index(stage) + 1:]
        if request.get("stage") not in later:
            self.run.clear_request("early_stop")

    def clear_requests(self) -> None:
        """At the end of an attempt its requests were honoured or can no longer be,
        so none may stay pending for readers; a resume starts with none either."""
        for kind in REQUEST_KINDS:
            self.run.clear_request(kind)

    def main(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_signal)
        signal.signal(signal.SIGHUP, self.on_signal if self.foreground else signal.SIG_IGN)
        if self.resume:
            self.clear_requests()
        status = self.run.read_status()
        self.status(run_id=self.run.run_id, preset=self.run.preset_name(), state="running", pid=os.getpid(), token=self.token,
                    pgid=None, host=socket.gethostname(), attempt=self.attempt, world_size=world_size(self.cfg),
                    started_at=status.get("started_at") or self.started, exit_code=None, message="",
                    stages=self.stages)
        self.start_events()
        self.say(f"run {self.run.run_id}, attempt {self.attempt}{' (resume)' if self.resume else ''}")
        try:
            ensure_synthetic(self.cfg)
            final = self.execute()
        except Exception as exc:                        # the supervisor's own failure, still told in the log
            self.events.emit("error", kind="other", message=f"supervisor: {type(exc).__name__}: {exc}",
                             attempt=self.attempt)
            final = "failed"
            self.say(f"failed: {exc}")
        budget = f"time budget of {self.cfg.training.time_budget_minutes:g} min reached; resumable"
        messages = {"completed": "all stages done",
                    "stopped": budget if self.budget_reached else "stopped on request; resumable",
                    "aborted": "aborted on request", "failed": "a stage failed; see the error event"}
        self.clear_requests()
        self.events.emit("run_end", status=final, attempt=self.attempt,
                         duration_s=round(time.time() - self.started, 3), message=messages[final])
        code = EXIT_CODES[final]
        self.status(state=final, exit_code=code, pgid=None, stage=None,
                    message=self.run.read_status().get("message") or messages[final])
        self.say(f"run {final}")
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kronos_train.control.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted, stopped or failed run")
    parser.add_argument("--auto", action="store_true", help="resume when the run has started before (batch requeue)")
    parser.add_argument("--foreground", action="store_true", help="also echo the stages' output to this terminal")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir.resolve())
    if not run.config_path.is_file():
        print(f"{run.path} is not a run folder (no config.yaml)", file=sys.stderr)
        return 2
    try:
        lock = take_lock(run)
    except RunFolderError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if lock is None:
        print(f"run {run.run_id} already has a live supervisor", file=sys.stderr)
        return 2
    resume = args.resume or (args.auto and run.status_path.exists())
    try:
        supervisor = Supervisor(run, resume=resume, foreground=args.foreground)
    except LaunchError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    heartbeat = HeartbeatThread(run.path).start()     # liveness for readers on other hosts
    try:
        return supervisor.main()
    finally:
        heartbeat.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
