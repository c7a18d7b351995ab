"""The one-line bar on top of every screen: where you are, and how to go elsewhere.

The active tab is shown in brackets as well as highlighted, so it reads the
same on a monochrome terminal; each tab is clickable and names its key.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

TABS = (("presets", "1", "Presets"), ("checklist", "2", "Checks"), ("monitor", "3", "Monitor"),
        ("runs", "4", "Runs"), ("advisor", "5", "Advisor"))


class NavTab(Static):
    DEFAULT_CSS = """
    NavTab { width: auto; padding: 0 0; color: $text-muted; }
    NavTab:hover { background: $boost; }
    NavTab.-active { color: $text; background: $primary 40%; text-style: bold; }
    """

    def __init__(self, mode: str, key: str, label: str, active: bool) -> None:
        text = f"[{key} {label}]" if active else f" {key} {label} "
        super().__init__(text, id=f"nav-{mode}", classes="-active" if active else "", markup=False)
        self.mode = mode

    def on_click(self) -> None:
        self.app.action_show(self.mode)  # type: ignore[attr-defined]


class NavBar(Horizontal):
    DEFAULT_CSS = """
    NavBar { height: 1; dock: top; background: $panel; }
    NavBar #nav-context { width: 1fr; text-align: right; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        for mode, key, label in TABS:
            yield NavTab(mode, key, label, mode == self.active)
        yield Static("", id="nav-context", markup=False)

    def on_mount(self) -> None:
        self.refresh_context()

    def on_resize(self) -> None:
        self.refresh_context()

    def refresh_context(self) -> None:
        app = self.app
        preset = getattr(app, "selected_preset", "") or "no preset"
        run = getattr(app, "attached_run", None)
        room = self.size.width - sum(len(label) + 4 for _, _, label in TABS) - 2   # tabs, then the padding
        self.query_one("#nav-context", Static).update(context_text(preset, run.run_id if run else None, room))


def context_text(preset: str, run_id: str | None, room: int) -> str:
    """The longest of these that fits: a run id is never cut while it fits alone
    (it usually ends with the preset's name anyway)."""
    if run_id is None:
        choices = [f"preset {preset}", preset]
    else:
        choices = [f"preset {preset} · run {run_id}", f"{preset} · {run_id}", f"run {run_id}", run_id]
    fitting = [c for c in choices if len(c) <= room]
    if fitting:
        return fitting[0]
    return "…" + choices[-1][-(room - 1):] if room > 1 else ""
