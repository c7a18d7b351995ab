"""Messages that workers post to the app and the screens (``post_message`` is thread-safe)."""
from __future__ import annotations

from typing import Any

from textual.message import Message

from kronos_train.checks import CheckResult
from kronos_train.control.runfolder import RunFolder

from .snapshot import Snapshot


class RunSnapshot(Message):
    """A drawable state of the attached run.  A newer one replaces an older one
    still queued, so a slow screen never works through a backlog."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunSnapshot)


class OverlayLoaded(Message):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class ChecksUpdated(Message):
    """Some checklist lines finished (or were found in the cache)."""

    def __init__(self, key: str, phase: str, results: list[CheckResult], done: int, total: int,
                 running: str = "") -> None:
        super().__init__()
        self.key, self.phase, self.results = key, phase, results
        self.done, self.total, self.running = done, total, running


class ModelChecked(Message):
    """The model-load check of a run finished; the follower's after-checks show it."""

    def __init__(self, run_id: str, results: list[CheckResult]) -> None:
        super().__init__()
        self.run_id, self.results = run_id, results


class RunsListed(Message):
    def __init__(self, rows: list[Any]) -> None:
        super().__init__()
        self.rows = rows


class RunAttached(Message):
    """The app attached to a run (after launch, resume, or a pick in the run list)."""

    def __init__(self, run: RunFolder) -> None:
        super().__init__()
        self.run = run


