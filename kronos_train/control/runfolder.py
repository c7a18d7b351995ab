"""The run folder: the second half of the trainer/TUI contract (see docs/run-folder.md).

``logs/<run_id>/`` holds ``config.yaml`` (resolved, as run), ``preset.txt``
(the preset it came from), ``events.jsonl``, ``status.json`` (written by the
supervisor), ``stdout.log``/``stderr.log``, ``requests/`` (control requests
from the TUI and CLI), ``supervisor.lock`` (held while the supervisor lives)
and ``checkpoints/<stage>/{last,best}/``.

Light module: no torch.  Everything the TUI needs to find, read and steer a
run goes through here.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import REQUEST_KINDS, STAGES, is_number, is_whole

DEFAULT_LOGS_DIR = Path("logs")
RUN_STATES = ("pending", "running", "stopping", "stopped", "completed", "failed", "aborted", "cancelled")
# cancelled: a scheduler job cancelled while queued, before the run trained anything (see docs/cluster.md)
FINAL_STATES = ("stopped", "completed", "failed", "aborted", "cancelled")
COMMIT_MARKER = "COMMITTED"


def logs_dir_from_env(default: str | os.PathLike | None = None) -> Path:
    return Path(os.environ.get("KRONOS_LOGS_DIR") or default or DEFAULT_LOGS_DIR)


def data_cache_dir(logs_dir: Path | None = None) -> Path:
    """The data pipeline's cache root: ``KRONOS_CACHE_DIR``, else ``.kronos-cache``
    beside the logs folder (the pipeline keeps its entries in ``<root>/data``).
    One place for the checklist, the launcher and every rank, so a file
    validated once is never parsed again."""
    env = os.environ.get("KRONOS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(logs_dir or logs_dir_from_env()).resolve().parent / ".kronos-cache"


def new_run_id(preset: str, logs_dir: Path) -> str:
    """``YYYYmmdd-HHMMSS-<preset>``, with a counter when two starts share a second."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", preset).strip("-") or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"
    run_id, n = base, 1
    while (logs_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def write_text_atomic(path: Path, text: str) -> None:
    """Write aside, fsync, rename: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


MAX_JSON_BYTES = 16 * 1024 * 1024      # status, requests, results: a few KiB; more is not ours


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """A JSON object from a run-folder file, or None (missing, not a regular file, too large,
    not UTF-8, not JSON, not an object): readers treat these files as untrusted."""
    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            raw = fh.read(max_bytes + 1)
        if len(raw) > max_bytes:
            return None
        data = json.loads(raw.decode("utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError, RecursionError):
        return None


# status.json field -> what a reader may rely on; anything else is dropped and reported.
_STATUS_TEXT = ("run_id", "preset", "host", "message", "token")
_STATUS_NUMBERS = ("started_at", "updated_at")
_STAGE_FIELDS = {"status": lambda v: isinstance(v, str), "best_val_loss": lambda v: v is None or is_number(v),
                 "step": lambda v: v is None or is_whole(v, 0)}


def _status_field_ok(key: str, value: Any) -> bool:
    if key == "state":
        return value in RUN_STATES
    if key in ("pid", "pgid"):
        return value is None or is_whole(value, 1, 2**22)      # the kernel's pid_max
    if key in ("attempt", "world_size", "exit_code"):
        return value is None or is_whole(value, -255, 2**31)
    if key == "stage":
        return value is None or value in STAGES
    if key == "stages":
        return isinstance(value, dict)
    if key in _STATUS_TEXT:
        return isinstance(value, str)
    if key in _STATUS_NUMBERS:
        return value is None or is_number(value)
    return True


def _clean_stages(stages: dict[str, Any], damaged: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stage, info in stages.items():
        if stage not in STAGES or not isinstance(info, dict):
            damaged.append(f"stages.{str(stage)[:40]}: not a stage record")
            continue
        kept = {k: v for k, v in info.items() if k not in _STAGE_FIELDS or _STAGE_FIELDS[k](v)}
        damaged += [f"stages.{stage}.{k}: {str(info[k])[:40]!r} has the wrong type" for k in info.keys() - kept.keys()]
        out[stage] = kept
    return out


def clean_status(raw: dict[str, Any]) -> dict[str, Any]:
    """status.json as readers may use it: each field of the wrong type dropped and named in
    ``damaged`` (a list of lines; empty when the file was sound)."""
    damaged: list[str] = []
    status = {}
    for key, value in raw.items():
        if key == "damaged":
            continue
        if _status_field_ok(key, value):
            status[key] = value
        else:
            damaged.append(f"{key}: {str(value)[:40]!r} is not valid here")
    status["stages"] = _clean_stages(status.get("stages") or {}, damaged)
    status["damaged"] = damaged
    return status


def clean_request(raw: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    """A request file's fields with their types checked; ``invalid`` says why it is to be ignored."""
    if raw is None:
        return {"invalid": f"{path} is not a readable JSON object"}
    request = dict(raw)
    at_step, stage = request.get("at_step"), request.get("stage")
    if not isinstance(request.get("source"), str):
        request["source"] = "request"
    if at_step is not None and not is_whole(at_step, 1):
        request["invalid"] = f"{path}: at_step {str(at_step)[:40]!r} is not an optimizer step >= 1"
    elif stage is not None and stage not in STAGES:
        request["invalid"] = f"{path}: stage {str(stage)[:40]!r} is not one of {', '.join(STAGES)}"
    return request


@dataclass(frozen=True)
class RunFolder:
    path: Path

    # ---------------------------------------------------------------- paths
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def stdout_path(self) -> Path:
        return self.path / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.path / "stderr.log"

    @property
    def requests_dir(self) -> Path:
        return self.path / "requests"

    @property
    def lock_path(self) -> Path:
        return self.path / "supervisor.lock"

    def checkpoint_dir(self, stage: str, kind: str) -> Path:
        """``checkpoints/<stage>/last`` (exact resume) or ``.../best`` (official layout)."""
        assert stage in STAGES and kind in ("last", "best")
        return self.path / "checkpoints" / stage / kind

    def has_committed_checkpoint(self, stage: str | None = None) -> bool:
        stages = [stage] if stage else list(STAGES)
        return any((self.checkpoint_dir(s, "last") / COMMIT_MARKER).is_file() for s in stages)

    def checkpoint_problems(self) -> list[str]:
        """Committed ``last/`` checkpoints that fail their checksums with no kept one to fall
        back to (hashed once per change: cheap to ask again)."""
        from .commit import stage_checkpoint_problems

        return [problem for stage in STAGES
                for problem in stage_checkpoint_problems(self.checkpoint_dir(stage, "last").parent)]

    # ---------------------------------------------------------------- status
    def read_status(self) -> dict[str, Any]:
        """status.json with every field type-checked (``clean_status``); ``damaged`` lists
        what was wrong, including an unreadable file."""
        if self.status_path.is_symlink():
            return {"run_id": self.run_id, "stages": {},
                    "damaged": [f"state: {self.status_path} is a symbolic link: not read"]}
        raw = read_json(self.status_path)
        if raw is None:
            if not self.status_path.exists():
                return {"run_id": self.run_id, "state": "pending", "stages": {}, "damaged": []}
            return {"run_id": self.run_id, "stages": {},
                    "damaged": [f"state: {self.status_path} is not a readable JSON object"]}
        return clean_status(raw)

    def write_status(self, **changes: Any) -> dict[str, Any]:
        status = self.read_status()
        status.pop("damaged", None)
        status.update(changes)
        status["updated_at"] = time.time()
        write_json_atomic(self.status_path, status)
        return status

    def preset_name(self) -> str:
        try:
            return (self.path / "preset.txt").read_text(encoding="utf-8").strip()
        except OSError:
            return self.read_status().get("preset", "")

    # ---------------------------------------------------------------- liveness
    def is_alive(self) -> bool:
        """True while a supervisor holds the lock.  A flock dies with its process,
        so this never mistakes a recycled pid for a live run.  A supervisor on
        another host (a cluster node) is judged by its heartbeat instead."""
        from .heartbeat import remote_liveness

        remote = remote_liveness(self.path)
        if remote is not None:
            return remote
        if not self.lock_path.exists() or self.lock_path.is_symlink():
            return False                  # a link may point at a lock someone else holds
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def state(self) -> str:
        """The state as a reader should show it: a run whose status says it is
        running but whose supervisor is gone was killed (resumable if it has a
        committed checkpoint)."""
        status = self.read_status()
        state = status.get("state")
        if state is None and any(line.startswith("state:") for line in status["damaged"]):
            return "running" if self.is_alive() else "unknown"     # the file is damaged: say so
        state = state or "pending"
        if state in ("running", "stopping", "pending") and not self.is_alive():
            return "interrupted" if self.status_path.exists() else "pending"
        return state

    def can_resume(self) -> bool:
        """Resumable: not running, not finished, some stage has a committed ``last/``
        checkpoint to continue from (finished stages are skipped), and every committed
        checkpoint verifies or has a kept predecessor that does."""
        return (self.config_path.is_file() and not self.is_alive() and self.state() != "completed"
                and self.has_committed_checkpoint() and not self.checkpoint_problems())

    # ---------------------------------------------------------------- requests
    def request(self, kind: str, source: str = "cli", stage: str | None = None,
                at_step: int | None = None) -> Path:
        """Ask the run to ``early_stop`` (end this stage, go on), ``stop``
        (checkpoint, end, resumable) or ``abort``.  Ranks poll the folder at
        each optimizer step and agree collectively.  ``at_step`` schedules an
        early stop or stop for when ``stage`` (any stage if None) reaches that
        optimizer step, instead of the next one."""
        if kind not in REQUEST_KINDS:
            raise ValueError(f"unknown request {kind!r}; allowed: {', '.join(REQUEST_KINDS)}")
        if at_step is not None and (kind == "abort" or at_step < 1):
            raise ValueError("at_step schedules an early_stop or stop at an optimizer step >= 1")
        self.requests_dir.mkdir(parents=True, exist_ok=True)
        path = self.requests_dir / f"{kind}.json"
        record = {"kind": kind, "t": time.time(), "source": source, "stage": stage, "host": socket.gethostname()}
        if at_step is not None:
            record["at_step"] = int(at_step)
        write_json_atomic(path, record)
        if kind == "abort":
            self.signal_group(signal.SIGTERM)
        return path

    def pending_request(self, kind: str) -> dict[str, Any] | None:
        """A request as the trainer may act on it; one with an ``invalid`` line is to be ignored
        (a hand-written or damaged file must never crash a stage, nor act on a guess)."""
        path = self.requests_dir / f"{kind}.json"
        if not path.exists():
            return None
        return clean_request(read_json(path), path)

    def pending_request_lines(self) -> list[str]:
        """The pending requests in words: 'stop requested', 'early stop planned at basemodel step 40'."""
        lines = []
        for kind in REQUEST_KINDS:
            request = self.pending_request(kind)
            if request is None:
                continue
            what = kind.replace("_", " ")
            if request.get("invalid"):
                lines.append(f"{what} request ignored: {request['invalid']}")
            elif request.get("at_step") is None:
                lines.append(f"{what} requested")
            else:
                lines.append(f"{what} planned at {request.get('stage') or 'any stage'} step {request['at_step']}")
        return lines

    def immediate_request(self, kind: str) -> dict[str, Any] | None:
        """A pending request to act on now, not one scheduled for a later step."""
        request = self.pending_request(kind)
        usable = request is not None and not request.get("invalid")
        return request if usable and request.get("at_step") is None else None

    def clear_request(self, kind: str) -> None:
        try:
            (self.requests_dir / f"{kind}.json").unlink()
        except FileNotFoundError:
            pass

    def signal_group(self, sig: int) -> bool:
        """Signal the supervisor's process group (torchrun and its workers), but only on
        the supervisor's own host and when that group's leader carries the run's token:
        status.json may be stale, copied or crafted, a pgid from another host names some
        other process here, and a recycled pid may belong to anyone."""
        from .heartbeat import remote_liveness

        status = self.read_status()
        pgid, token = status.get("pgid"), status.get("token")
        if not pgid or not token or not self.is_alive() or remote_liveness(self.path) is not None \
                or not process_has_token(pgid, token):
            return False
        try:
            os.killpg(int(pgid), sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False


RUN_TOKEN_ENV = "KRONOS_RUN_TOKEN"


class RunFolderError(OSError):
    """The run folder itself is unusable (a control file is a link, say)."""


def process_has_token(pid: int, token: str) -> bool:
    """True when process ``pid`` was started with ``KRONOS_RUN_TOKEN=<token>`` (Linux /proc)."""
    try:
        with open(f"/proc/{int(pid)}/environ", "rb") as fh:
            environ = fh.read().split(b"\0")
    except (OSError, ValueError, OverflowError):
        return False
    return f"{RUN_TOKEN_ENV}={token}".encode() in environ


def refuse_symlink(path: Path) -> None:
    """Lock and status files are ours, never links elsewhere (a link could point at a file
    another program locks, or one we must not overwrite)."""
    if path.is_symlink():
        raise RunFolderError(f"{path} is a symbolic link; a run's control files are never links. "
                             "Remove it (the run folder may have been tampered with)")



def list_runs(logs_dir: Path | None = None) -> list[RunFolder]:
    """Run folders under ``logs_dir``, newest first."""
    logs_dir = logs_dir or logs_dir_from_env()
    if not logs_dir.is_dir():
        return []
    runs = [RunFolder(p) for p in logs_dir.iterdir()
            if p.is_dir() and ((p / "status.json").exists() or (p / "events.jsonl").exists() or (p / "config.yaml").exists())]
    return sorted(runs, key=lambda r: r.run_id, reverse=True)


def find_run(ref: str, logs_dir: Path | None = None) -> RunFolder:
    """A run by folder path, exact id, unique id prefix or ``last``."""
    logs_dir = logs_dir or logs_dir_from_env()
    if not ref.strip() or ref.strip() in ("-", ".", "/"):
        raise LookupError(f"{ref!r} names no run: give a run id, a unique prefix, a run folder or 'last'")
    path = Path(ref).expanduser()
    if path.is_dir() and ((path / "config.yaml").exists() or (path / "status.json").exists()):
        return RunFolder(path)
    runs = list_runs(logs_dir)
    if ref in ("last", "latest") and runs:
        return runs[0]
    matches = [r for r in runs if r.run_id == ref] or [r for r in runs if r.run_id.startswith(ref)] \
        or [r for r in runs if ref in r.run_id]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(r.run_id for r in runs[:5]) or "none"
        raise LookupError(f"no run '{ref}' under {logs_dir}; recent runs: {known}")
    raise LookupError(f"'{ref}' matches several runs: {', '.join(r.run_id for r in matches[:5])}; give more of the id")


# How a run's state (``RunFolder.state()``) reads on screen: the one table every view uses.
# The short word fits a table column; the long one says what the state allows.
STATE_WORDS: dict[str, tuple[str, str]] = {
    "pending": ("· pending", "· pending"),
    "running": ("▶ running", "▶ running"),
    "stopping": ("■ stopping", "■ stopping"),
    "completed": ("✓ done", "✓ completed"),
    "stopped": ("■ stopped", "■ stopped (resumable)"),
    "failed": ("✗ failed", "✗ failed"),
    "aborted": ("✗ aborted", "✗ aborted"),
    "interrupted": ("! interrupted", "! interrupted"),
    "queued": ("⏸ queued", "⏸ queued"),          # a display word: a SLURM job waiting (never written)
    "cancelled": ("✗ cancelled", "✗ cancelled"),
    "unknown": ("? damaged", "? status.json damaged"),   # read_status found no valid state
}


def state_word(state: str, *, short: bool = False) -> str:
    """The words for a run state (an unknown state reads as itself)."""
    words = STATE_WORDS.get(state)
    return state if words is None else words[0 if short else 1]
