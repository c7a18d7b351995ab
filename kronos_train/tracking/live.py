"""Rank 0 mirrors its events to the trackers while it trains, off the training path.

``TrackingWriter`` wraps rank 0's ``EventWriter``: each record is written to
events.jsonl first (the source of truth), then handed to ``LiveSink`` with a
non-blocking put.  The sink's thread maps records to scalars (``ScalarMapper``, the
same mapping the after-the-fact export uses), holds each stage's points until a
checkpoint covers them (``CommitGate``), and sends them to every backend.  A tracker
that fails to open or to log is dropped with a warning event; a slow one fills the
bounded queue, and records that do not fit are dropped and counted, never waited for.
"""
from __future__ import annotations

import collections
import queue
import threading
from pathlib import Path
from typing import Any

from ..config import KronosConfig
from ..control.runfolder import RunFolder
from .backends import BACKENDS, Backend, TrackingContext
from .scalars import FINAL_STAGE_STATUSES, Point, ScalarMapper

QUEUE_RECORDS = 10_000        # hours of step records at any sane log_interval
BATCH_RECORDS = 500           # records taken per round trip to the trackers
CLOSE_TIMEOUT_S = 300.0       # what a stage's end waits for the trackers (model uploads included)
EXPORT_HINT = "kronos-train export RUN --to {name} publishes the whole run from its folder later"
_STOP = object()


class CommitGate:
    """Releases a stage's points once no resume can drop them (docs/events.md): at or
    before its latest ``last`` checkpoint, or all of them once the stage completed.
    With ``immediate`` everything goes out at once."""

    def __init__(self, immediate: bool = False):
        self.immediate = immediate
        self.mark: dict[str, float] = {}
        self.held: dict[str, list[Point]] = collections.defaultdict(list)

    def admit(self, rec: dict[str, Any], points: list[Point]) -> list[Point]:
        stage = rec.get("stage")
        if not isinstance(stage, str):
            return []
        self._move_mark(stage, rec)
        held = self.held[stage]
        held += points
        if self.immediate:
            out, self.held[stage] = held, []
            return out
        mark = self.mark.get(stage, -1)
        out = [p for p in held if p.step <= mark]
        self.held[stage] = [p for p in held if p.step > mark]
        return out

    def _move_mark(self, stage: str, rec: dict[str, Any]) -> None:
        event, step = rec.get("event"), rec.get("step")
        if event == "stage_start":
            resumed = rec.get("resumed_from")
            self.mark[stage] = resumed if isinstance(resumed, int) else -1
        elif event == "checkpoint" and rec.get("kind") == "last" and isinstance(step, int):
            self.mark[stage] = max(self.mark.get(stage, -1), step)
        elif event == "stage_end" and rec.get("status") in FINAL_STAGE_STATUSES:
            self.mark[stage] = float("inf")

    def withheld(self) -> int:
        return sum(len(points) for points in self.held.values())


class LiveSink:
    """A bounded queue of records and one thread that publishes them."""

    def __init__(self, ctx: TrackingContext, backends: list[Backend], *, queue_records: int = QUEUE_RECORDS):
        self.ctx, self.backends = ctx, backends
        self.queue: queue.Queue = queue.Queue(maxsize=queue_records)
        self.warnings: collections.deque[str] = collections.deque()
        self.dropped = 0
        self.mapper = ScalarMapper()
        self.gate = CommitGate(immediate=ctx.cfg.tracking.publish == "immediate")
        self.last_status = "completed"
        self.thread = threading.Thread(target=self._run, name="kronos-tracking", daemon=True)

    def start(self) -> "LiveSink":
        self.thread.start()
        return self

    # ---------------------------------------------------------------- training thread side
    def put(self, record: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                self.warn(f"the trackers fell behind: records are being dropped (queue of {self.queue.maxsize} "
                          f"full); {EXPORT_HINT.format(name='<tracker>')}")

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        try:
            self.queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.warn(f"the trackers did not finish within {timeout:.0f} s; {EXPORT_HINT.format(name='<tracker>')}")
        elif self.dropped:
            self.warn(f"{self.dropped} record(s) were not mirrored to the trackers (they fell behind); "
                      f"{EXPORT_HINT.format(name='<tracker>')}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # ---------------------------------------------------------------- the tracking thread
    def _run(self) -> None:
        self.backends = [b for b in list(self.backends) if self._call(b, "open", self.ctx)]
        stopping = False
        while not stopping:
            records = [self.queue.get()]
            while len(records) < BATCH_RECORDS:
                try:
                    records.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(r is _STOP for r in records)
            self._publish([r for r in records if r is not _STOP])
        for backend in self.backends:
            self._call(backend, "close", self.last_status)

    def _publish(self, records: list[dict[str, Any]]) -> None:
        points: list[Point] = []
        models: list[tuple[str, Path]] = []
        for rec in records:
            points += self.gate.admit(rec, self.mapper.points(rec))
            if rec.get("event") == "stage_end":
                self.last_status = str(rec.get("status"))
                if rec.get("best_path") and self.ctx.cfg.tracking.mlflow_log_models:
                    models.append((str(rec["stage"]), Path(rec["best_path"])))
        for backend in list(self.backends):
            if points and not self._call(backend, "log", points):
                continue
            for stage, folder in models:
                self._call(backend, "log_model", stage, folder)

    def _call(self, backend: Backend, method: str, *args: Any) -> bool:
        """One tracker call; a failure drops that tracker with a warning, never the run."""
        try:
            getattr(backend, method)(*args)
            return True
        except Exception as exc:  # noqa: BLE001 - any tracker failure is the tracker's, not the run's
            self.warn(f"{backend.name}: {method} failed, so it is off for the rest of this stage: "
                      f"{type(exc).__name__}: {str(exc)[:300]}; {EXPORT_HINT.format(name=backend.name)}")
            if backend in self.backends:
                self.backends.remove(backend)
            return False


class TrackingWriter:
    """An event writer, mirrored: write the record, then hand it to the sink.

    The owner (rank 0's stage writer) also writes the tracking thread's warnings as
    ``log`` events, from the training thread; mirrors (the GPU sampler's writer, on its
    own thread) only feed the sink."""

    def __init__(self, writer: Any, sink: LiveSink, owner: bool = True):
        self.writer, self.sink, self.owner = writer, sink, owner
        self.defaults = writer.defaults

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        record = self.writer.emit(event, **fields)
        self.sink.put(record)
        if self.owner:
            self.flush_warnings()
        return record

    def flush_warnings(self) -> None:
        while self.sink.warnings:
            self.writer.emit("log", level="warning", message=f"tracking: {self.sink.warnings.popleft()}")

    def mirror(self, writer: Any) -> "TrackingWriter":
        return TrackingWriter(writer, self.sink, owner=False)

    def finish(self) -> None:
        """End of the stage: let the trackers catch up (bounded), then report what went wrong."""
        if self.owner:
            self.sink.close()
            self.flush_warnings()

    def close(self) -> None:
        self.writer.close()


def start_live_tracking(run: RunFolder, cfg: KronosConfig, writer: Any) -> Any:
    """The writer rank 0 should use: ``writer`` itself when nothing is tracked, else a
    ``TrackingWriter`` whose thread is already opening the trackers."""
    names = cfg.tracking.report_to
    if not names:
        return writer
    ctx = TrackingContext(run=run, cfg=cfg, preset=run.preset_name())
    sink = LiveSink(ctx, [BACKENDS[name]() for name in names]).start()
    return TrackingWriter(writer, sink)
