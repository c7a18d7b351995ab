"""What every top-level screen shares: the nav bar on top, the footer below."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

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

    def refresh_nav(self) -> None:
        for bar in self.query(NavBar):
            bar.refresh_context()
