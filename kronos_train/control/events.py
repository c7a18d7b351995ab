"""The ``events.jsonl`` contract between the trainer and the TUI.

One JSON object per line, appended and flushed per record by rank 0 and by the
run supervisor.  The schema is documented in ``docs/events.md``; its version
is ``SCHEMA_VERSION`` and is written in every ``run_start`` record.  Both
sides test against ``EVENT_FIELDS`` below, so a field renamed on one side
fails a test on the other.

Light module: no torch.  Uses orjson when present (5x faster to parse).
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

try:  # orjson parses step records about 6x faster than json; fall back quietly.
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None

SCHEMA_VERSION = 2
SCHEMAS_READ = (1, 2)           # 2 added the workers event; version 1 files read unchanged

STAGES = ("tokenizer", "basemodel")
STAGE_STATUSES = ("completed", "early_stopped", "stopped", "failed", "skipped")
RUN_STATUSES = ("completed", "stopped", "failed", "aborted")
ERROR_KINDS = ("oom", "nccl", "data", "config", "checkpoint", "hang", "worker", "other")
REQUEST_KINDS = ("early_stop", "stop", "abort")
# The ``source`` of a ``stop`` event that no one asked for: training.time_budget_minutes ran out.
TIME_BUDGET_SOURCE = "time_budget"

# event -> (required fields, optional fields).  Every record also carries
# "t" (unix seconds, float) and "event"; trainer records carry "attempt"
# (0 for the first launch, +1 per resume) so readers can drop the points an
# interrupted attempt logged past the step the next attempt resumed from.
EVENT_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "run_start": (frozenset({"schema", "run_id", "preset", "stages", "world_size", "attempt"}),
                  frozenset({"config_hash", "host", "pid", "resumed", "nodes", "backend", "device"})),
    "stage_start": (frozenset({"stage", "attempt", "epochs", "steps_per_epoch", "total_steps", "world_size"}),
                    frozenset({"batch_size", "global_batch", "accumulation_steps", "resumed_from", "params",
                               "train_windows", "val_windows", "precision", "compile", "device", "lr"})),
    "step": (frozenset({"stage", "attempt", "step", "epoch", "loss", "lr"}),
             frozenset({"parts", "grad_norm", "samples_per_s", "data_wait", "step_time_s", "mem_gb", "elapsed_s"})),
    "val": (frozenset({"stage", "attempt", "step", "epoch", "val_loss", "best_val_loss", "improved"}),
            frozenset({"baseline", "bad_evals", "patience", "duration_s"})),
    "gpu": (frozenset({"host", "gpus"}), frozenset({"stage", "attempt"})),
    "workers": (frozenset({"host", "workers"}), frozenset({"stage", "attempt"})),
    "checkpoint": (frozenset({"stage", "attempt", "step", "kind", "path"}), frozenset({"epoch", "duration_s"})),
    "early_stop": (frozenset({"stage", "attempt", "step", "reason"}),
                   frozenset({"patience", "bad_evals", "best_val_loss"})),
    "stop": (frozenset({"kind", "step"}), frozenset({"stage", "attempt", "source"})),
    "stage_end": (frozenset({"stage", "status"}),
                  frozenset({"attempt", "best_val_loss", "step", "duration_s", "best_path", "message"})),
    "error": (frozenset({"kind", "message"}), frozenset({"stage", "attempt", "remedy", "rank", "exit_code"})),
    "eval": (frozenset({"horizon", "metrics"}), frozenset({"stage", "attempt", "models", "path", "windows"})),
    "log": (frozenset({"level", "message"}), frozenset({"stage", "attempt"})),
    "run_end": (frozenset({"status"}), frozenset({"attempt", "duration_s", "message"})),
}

GPU_FIELDS = frozenset({"index", "name", "util", "mem_used_mb", "mem_total_mb", "temp_c", "power_w"})
WORKER_FIELDS = frozenset({"pid", "rank", "cpu", "rss_mb", "threads"})

# What readers may rely on, field by field: a record whose required field has another type is
# dropped (counted as a bad line), an optional field of another type is removed.  null stays
# allowed where a number is expected (NaN and infinity are written as null).
NUMBER_FIELDS = frozenset({"t", "epoch", "loss", "lr", "grad_norm", "samples_per_s", "data_wait", "step_time_s",
                           "mem_gb", "elapsed_s", "val_loss", "best_val_loss", "duration_s"})
WHOLE_FIELDS = frozenset({"step", "attempt", "epochs", "steps_per_epoch", "total_steps", "world_size", "batch_size",
                          "global_batch", "accumulation_steps", "resumed_from", "params", "train_windows",
                          "val_windows", "bad_evals", "patience", "rank", "exit_code", "pid", "nodes", "schema",
                          "horizon", "windows"})
TEXT_FIELDS = frozenset({"event", "status", "kind", "message", "level", "path", "best_path", "source", "reason",
                         "host", "run_id", "preset", "precision", "device", "backend", "config_hash"})
FLAG_FIELDS = frozenset({"improved", "baseline", "resumed"})
NEVER_NULL = frozenset({"t", "event", "step"})
MAX_WHOLE = 2**53


def is_number(value: Any) -> bool:
    """A JSON number a reader can compute with (bool is not one; huge integers are not either)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_WHOLE
    return isinstance(value, float)


def is_whole(value: Any, low: int = -MAX_WHOLE, high: int = MAX_WHOLE) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _field_ok(key: str, value: Any, required: frozenset[str] = frozenset()) -> bool:
    if value is None:       # null: a NaN loss, an unknown optional value; never a required text or step
        return key not in NEVER_NULL and (key not in required or key in NUMBER_FIELDS)
    if key in NUMBER_FIELDS:
        return is_number(value) and (key != "t" or math.isfinite(value))
    if key in WHOLE_FIELDS:
        return is_whole(value)
    if key in TEXT_FIELDS:
        return isinstance(value, str)
    if key in FLAG_FIELDS:
        return isinstance(value, bool)
    if key == "stage":
        return value in STAGES
    if key == "parts":
        return isinstance(value, dict) and all(v is None or is_number(v) for v in value.values())
    if key in ("remedy", "stages", "models"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if key == "gpus":
        return isinstance(value, list) and all(isinstance(g, dict) for g in value)
    if key == "metrics":
        return isinstance(value, dict)
    return True


def clean_record(rec: Any) -> dict[str, Any] | None:
    """``rec`` with the types readers rely on, or None when it cannot be one (see NUMBER_FIELDS)."""
    if not isinstance(rec, dict) or not isinstance(rec.get("event"), str):
        return None
    required = EVENT_FIELDS.get(rec["event"], (frozenset(), frozenset()))[0] | NEVER_NULL
    bad = [key for key, value in rec.items() if not _field_ok(key, value, required)]
    if any(key in required for key in bad):
        return None
    for key in bad:
        del rec[key]
    return rec


# --------------------------------------------------------------------------- encoding

def finite_json(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def encode(record: dict[str, Any]) -> bytes:
    record = finite_json(record)
    if _orjson is not None:
        return _orjson.dumps(record, option=_orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    if _orjson is not None:
        return _orjson.loads(line)
    return json.loads(line)


def make_record(event: str, **fields: Any) -> dict[str, Any]:
    return {"t": round(time.time(), 3), "event": event, **fields}


# --------------------------------------------------------------------------- writing

# The ``log`` record a writer adds when it finds its file deleted or replaced (docs/events.md).
REOPENED_MESSAGE = ("events.jsonl was deleted or replaced while the run wrote it; this writer continues in a new "
                    "file (records before this line are in the old file, if it still exists)")

class EventWriter:
    """Appends records, one ``write`` per line, so a kill never leaves a half line
    in the middle of the file (at worst a torn last line, which readers skip).
    Thread-safe: the supervisor's worker sampler emits beside its main thread."""

    def __init__(self, path: str | os.PathLike, defaults: dict[str, Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._lock = threading.Lock()
        self._open()
        self.defaults = dict(defaults or {})

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _still_ours(self) -> bool:
        """Whether ``path`` is still the file this writer appends to (not deleted or replaced)."""
        try:
            here, ours = os.stat(self.path), os.fstat(self._fd)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (ours.st_dev, ours.st_ino)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one record.  Checked after the write, so a record that went into a deleted
        or replaced file is written again into the new one: nothing is lost from then on."""
        record = make_record(event, **{**self.defaults, **fields})
        line = encode(record)
        with self._lock:
            os.write(self._fd, line)
            if not self._still_ours():
                self._open()
                note = make_record("log", **{**self.defaults, "level": "warning", "message": REOPENED_MESSAGE})
                os.write(self._fd, encode(note) + line)
        return record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class NullWriter:
    """What ranks other than 0 hold: same interface, writes nothing."""

    defaults: dict[str, Any] = {}

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        return make_record(event, **fields)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- reading

class LineTail:
    """The one tailer of a run folder's growing files: each ``read`` returns the
    complete lines appended since the last one, as bytes.

    Only new bytes are read.  A torn last line (a writer mid-line, or a kill)
    waits for its end.  A file truncated or replaced (another inode) is read
    again from its start, and ``restarted`` says so until the reader clears it:
    what was read before belongs to another story.  With ``start_near_end`` the
    first read (and a restart) begins that many bytes before the end and drops
    the partial line it lands in, so a long log shows its end at once;
    ``max_pending`` bounds what a line that never ends may hold.
    """

    def __init__(self, path: str | os.PathLike, *, start_near_end: int = 0, max_pending: int | None = None):
        self.path = Path(path)
        self.offset = 0
        self.restarted = False
        self._start_near_end = start_near_end
        self._max_pending = max_pending
        self._pending = b""
        self._inode: int | None = None

    def read(self, max_bytes: int = -1) -> bytes:
        """The complete lines appended since the last read, each ending in a newline
        (b"" when none is complete yet).  At most ``max_bytes`` new bytes are read."""
        try:
            st = os.stat(self.path)
        except OSError:
            return b""
        first = self._inode is None
        replaced = (not first and st.st_ino != self._inode) or st.st_size < self.offset
        skip_partial = False
        if replaced or (first and self._start_near_end):
            self.restarted = self.restarted or replaced
            self.offset, self._pending = self._start_offset(st.st_size), b""
            skip_partial = self.offset > 0            # we start inside a line: drop its tail end
        self._inode = st.st_ino
        if st.st_size == self.offset:
            return b""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(max_bytes)
        self.offset += len(chunk)
        if skip_partial:
            chunk = chunk[chunk.find(b"\n") + 1:] if b"\n" in chunk else b""
        return self._complete_lines(self._pending + chunk)

    def _start_offset(self, size: int) -> int:
        return max(0, size - self._start_near_end) if self._start_near_end else 0

    def _complete_lines(self, data: bytes) -> bytes:
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            self._pending = data if self._max_pending is None else data[-self._max_pending:]
            return b""
        self._pending = data[cut:]
        return data[:cut]


class EventTail(LineTail):
    """The tailer of ``events.jsonl``: ``read_new`` returns only the records
    appended since the last call; a bulk reader (the TUI's fold) takes the raw
    lines with ``read`` instead.  Unparseable lines are counted in ``bad_lines``,
    not fatal."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self.bad_lines = 0

    def read_new(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        return self._parse(self.read(max_bytes or -1))

    def _parse(self, block: bytes) -> list[dict[str, Any]]:
        out = []
        for line in block.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = decode(line)
            except ValueError:
                self.bad_lines += 1
                continue
            rec = clean_record(rec)
            if rec is not None:
                out.append(rec)
            else:
                self.bad_lines += 1
        return out


def read_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record of a file (a torn last line is left out)."""
    return EventTail(Path(path)).read_new()


# --------------------------------------------------------------------------- schema checks

def validate_record(rec: dict[str, Any]) -> list[str]:
    """Schema problems of one record (empty when it is valid)."""
    problems: list[str] = []
    event = rec.get("event")
    if not isinstance(rec.get("t"), (int, float)):
        problems.append("missing or non-numeric 't'")
    if event not in EVENT_FIELDS:
        return problems + [f"unknown event {event!r}"]
    required, optional = EVENT_FIELDS[event]
    missing = required - rec.keys()
    if missing:
        problems.append(f"{event}: missing {sorted(missing)}")
    extra = rec.keys() - required - optional - {"t", "event", "stage", "attempt"}
    if extra:
        problems.append(f"{event}: undocumented fields {sorted(extra)}")
    if "stage" in rec and rec["stage"] is not None and rec["stage"] not in STAGES:
        problems.append(f"{event}: stage {rec['stage']!r} not in {STAGES}")
    if event == "stage_end" and rec.get("status") not in STAGE_STATUSES:
        problems.append(f"stage_end: status {rec.get('status')!r} not in {STAGE_STATUSES}")
    if event == "run_end" and rec.get("status") not in RUN_STATUSES:
        problems.append(f"run_end: status {rec.get('status')!r} not in {RUN_STATUSES}")
    if event == "error" and rec.get("kind") not in ERROR_KINDS:
        problems.append(f"error: kind {rec.get('kind')!r} not in {ERROR_KINDS}")
    if event == "stop" and rec.get("kind") not in REQUEST_KINDS:
        problems.append(f"stop: kind {rec.get('kind')!r} not in {REQUEST_KINDS}")
    if event == "gpu":
        for gpu in rec.get("gpus") or []:
            if not isinstance(gpu, dict) or "index" not in gpu:
                problems.append("gpu: each entry needs an 'index'")
            elif gpu.keys() - GPU_FIELDS:
                problems.append(f"gpu: undocumented fields {sorted(gpu.keys() - GPU_FIELDS)}")
    if event == "workers":
        for worker in rec.get("workers") or []:
            if not isinstance(worker, dict) or "pid" not in worker:
                problems.append("workers: each entry needs a 'pid'")
            elif worker.keys() - WORKER_FIELDS:
                problems.append(f"workers: undocumented fields {sorted(worker.keys() - WORKER_FIELDS)}")
    if event == "run_start" and rec.get("schema") not in SCHEMAS_READ:
        problems.append(f"run_start: schema {rec.get('schema')!r}, this reader knows {SCHEMAS_READ}")
    return problems


def validate_story(records: list[dict[str, Any]]) -> list[str]:
    """Problems with a whole file: every record valid, and the run told in order
    (run_start first, each stage_start closed by a stage_end, a run_end last)."""
    problems = [f"line {i + 1}: {msg}" for i, rec in enumerate(records) for msg in validate_record(rec)]
    if not records or records[0].get("event") != "run_start":
        problems.append("the first record is not run_start")
    # Evaluations and notes may follow a finished run (`kronos-train evaluate` appends them).
    story = [r for r in records if r.get("event") not in ("eval", "log")]
    if story and story[-1].get("event") != "run_end":
        problems.append("the last record is not run_end")
    open_stage: str | None = None
    for rec in records:
        if rec.get("event") == "run_start":       # a resume starts a new attempt
            open_stage = None
        elif rec.get("event") == "stage_start":
            open_stage = rec.get("stage")
        elif rec.get("event") == "stage_end":
            if rec.get("status") != "skipped" and rec.get("stage") != open_stage:
                problems.append(f"stage_end for {rec.get('stage')!r} without its stage_start")
            open_stage = None
    return problems
