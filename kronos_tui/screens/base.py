"""What every top-level screen shares: the nav bar on top, the footer below."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from ..snapshot import Snapshot
from ..widgets.navbar import NavBar


class KronosScreen(Screen):
    """A screen of one app mode.  Subclasses implement ``compose_body``."""

    MODE = ""

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:  # pragma: no cover - abstract
        yield from ()

    @property
    def kapp(self) -> Any:
        """The app, typed loosely (screens are tested with the real app only)."""
        return self.app

    def on_screen_resume(self) -> None:
        self.refresh_nav()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A background task that raised is said in one line, never as a traceback."""
        if event.state == WorkerState.ERROR:
            report_worker_error(self, event.worker)
            self.worker_failed(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Screens that show progress for a worker mark it finished here."""

    # What the app tells its screens; each screen overrides what concerns it.
    def show_snapshot(self, snap: Snapshot) -> None:
        """A new snapshot of the attached run (the current screen only)."""

    def preset_changed(self) -> None:
        """The user selected another preset."""

    def run_changed(self) -> None:
        """The app attached another run; its first snapshot follows."""

    def refresh_nav(self) -> None:
        for bar in self.query(NavBar):
            bar.refresh_context()


def report_worker_error(node: Any, worker: Worker) -> None:
    error = worker.error
    what = (worker.name or "a background task").strip("_").replace("_", " ")
    node.notify(f"{what} failed: {type(error).__name__}: {error}", severity="error", timeout=10)
