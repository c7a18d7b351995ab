"""The run supervisor: runs the stages of one run, in order, and records the run's state.

    python -m kronos_train.supervisor RUN_DIR [--resume | --auto] [--foreground]

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

Exit codes: 0 completed, 1 failed, 2 not started (lock held / bad run
folder), 3 stopped (resumable), 4 aborted.
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from .config import config_hash, world_size
from .events import REQUEST_KINDS, SCHEMA_VERSION, STAGES, TIME_BUDGET_SOURCE, EventWriter, read_events
from .launch import LaunchError, child_env, ensure_synthetic, load_run_config, skip_reason
from .procstat import WorkerRecorder
from .runfolder import RunFolder
from .train.failures import (SECONDARY_KINDS, Failure, classify_exit, read_failures, root_cause,
                             torchrun_root_cause)

EXIT_CODES = {"completed": 0, "failed": 1, "stopped": 3, "aborted": 4}
FINISHED = ("completed", "early_stopped")


def set_parent_death_signal(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))           # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def take_lock(run: RunFolder) -> int | None:
    """The exclusive flock that says 'a supervisor lives'; None when another holds it."""
    fd = os.open(run.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _tee(pipe: BinaryIO, path: Path, echo: BinaryIO) -> None:
    """Foreground mode: a stage's output goes to the run's file and the terminal."""
    with open(path, "ab") as out:
        for line in iter(pipe.readline, b""):
            out.write(line)
            out.flush()
            echo.write(line)
            echo.flush()


class Supervisor:
    def __init__(self, run: RunFolder, resume: bool, foreground: bool):
        self.run = run
        self.resume = resume
        self.foreground = foreground
        self.cfg = load_run_config(run)
        previous = run.read_status()
        self.attempt = int(previous.get("attempt", -1)) + 1 if resume else 0
        self.started = time.time()
        self.events = EventWriter(run.events_path)
        self.proc: subprocess.Popen | None = None
        self.signalled: int | None = None
        self.stages: dict[str, Any] = dict(previous.get("stages") or {}) if resume else {}
        budget = self.cfg.training.time_budget_minutes
        # Each attempt gets the whole budget: a resume is typically the next session.
        self.deadline = self.started + 60 * budget if budget > 0 else None
        self.budget_reached = False

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
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def abort_requested(self) -> bool:
        return self.signalled is not None or self.run.pending_request("abort") is not None

    def stage_records(self, stage: str) -> list[dict[str, Any]]:
        return [r for r in read_events(self.run.events_path) if r.get("stage") == stage]

    def finished_earlier(self, stage: str) -> bool:
        """A resume skips the stages an earlier attempt completed or early-stopped."""
        return self.resume and any(r.get("event") == "stage_end" and r.get("status") in FINISHED
                                   and r.get("attempt", 0) < self.attempt for r in self.stage_records(stage))

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
        if "OMP_NUM_THREADS" not in env and not self.cfg.device.use_cuda:
            # CPU workers share the cores; torchrun would otherwise pin each to one thread.
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.cfg.distributed.num_gpus))
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
            threading.Thread(target=_tee, args=(pipe, path, echo), daemon=True).start()
        return proc

    # ------------------------------------------------------------ one stage
    def run_stage(self, stage: str) -> str:
        """Run one stage's torchrun; returns completed | early_stopped | stopped | failed | aborted."""
        stderr_offset = self.run.stderr_path.stat().st_size if self.run.stderr_path.exists() else 0
        self.set_stage_status(stage, status="running")
        self.proc = self.start_torchrun(stage)
        self.status(stage=stage, pgid=self.proc.pid)
        recorder = self.record_workers(stage, self.proc.pid)
        exit_code = self.proc.wait()
        recorder.stop()
        self.proc = None
        self.status(pgid=None)
        records = [r for r in self.stage_records(stage) if r.get("attempt") == self.attempt]
        started = any(r.get("event") == "stage_start" for r in records)
        end = next((r for r in reversed(records) if r.get("event") == "stage_end"), None)
        if end is not None:                             # the trainer told the story itself
            self.set_stage_status(stage, status=end["status"], best_val_loss=end.get("best_val_loss"),
                                  step=end.get("step"))
            if end["status"] == "stopped" and self.abort_requested():
                return "aborted"
            return end["status"]
        if self.abort_requested():                      # SIGTERM reached the workers first
            if started:
                self.events.emit("stage_end", stage=stage, attempt=self.attempt, status="stopped",
                                 message="aborted on request; the last committed checkpoint stays loadable")
            self.set_stage_status(stage, status="stopped")
            return "aborted"
        failure = self.diagnose(stage, exit_code, stderr_offset)
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
            if outcome == "stopped" and any(r.get("event") == "stop" and r.get("source") == TIME_BUDGET_SOURCE
                                            and r.get("attempt") == self.attempt for r in self.stage_records(stage)):
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
        self.status(run_id=self.run.run_id, preset=self.run.preset_name(), state="running", pid=os.getpid(),
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
    parser = argparse.ArgumentParser(prog="python -m kronos_train.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted, stopped or failed run")
    parser.add_argument("--auto", action="store_true", help="resume when the run has started before (batch requeue)")
    parser.add_argument("--foreground", action="store_true", help="also echo the stages' output to this terminal")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir.resolve())
    if not run.config_path.is_file():
        print(f"{run.path} is not a run folder (no config.yaml)", file=sys.stderr)
        return 2
    lock = take_lock(run)
    if lock is None:
        print(f"run {run.run_id} already has a live supervisor", file=sys.stderr)
        return 2
    resume = args.resume or (args.auto and run.status_path.exists())
    try:
        supervisor = Supervisor(run, resume=resume, foreground=args.foreground)
    except LaunchError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    return supervisor.main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
