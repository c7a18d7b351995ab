"""The advisor: the guide's FAQ applied to the attached run, live.

Suggestions come with every snapshot (``kronos_train.advisor.diagnose``); each
carries the preset change as a mapping, and ``w`` (or enter) writes a new preset
that ``extends`` the run's preset with exactly that change, into the user's
preset folder, and selects it: the next experiment changes one knob.
"""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from kronos_train.advisor import Suggestion, suggested_name, write_suggested_preset

from ..snapshot import Snapshot
from .base import KronosScreen


class AdvisorScreen(KronosScreen):
    MODE = "advisor"
    BINDINGS = [
        Binding("w", "write", "Write preset"),
        Binding("enter", "write", "Write preset", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.suggestions: list[Suggestion] = []
        self._shown_ids: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="advisor-head", markup=False)
        with Horizontal(id="advisor-body"):
            yield OptionList(id="advice-list")
            with VerticalScroll(id="advice-detail-box"):
                yield Static("", id="advice-detail")

    def on_mount(self) -> None:
        self.show_snapshot(self.kapp.snapshot)
        self.query_one(OptionList).focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_snapshot(self.kapp.snapshot)

    def run_changed(self) -> None:
        if self.is_mounted:
            self.show_snapshot(None)

    def parent_preset(self, snap: Snapshot | None) -> str:
        run = self.kapp.attached_run
        return (run.preset_name() if run is not None else "") or (snap.header.preset if snap else "")

    def show_snapshot(self, snap: Snapshot | None) -> None:
        head = self.query_one("#advisor-head", Static)
        run = self.kapp.attached_run
        if run is None:
            head.update("No run attached: the advisor reads a run's events (4: Runs, enter to attach).")
            self._set_suggestions([])
            return
        if snap is None:
            head.update(f"reading {run.run_id} …")
            return
        run_id, suggestions = snap.header.run_id, snap.checks.suggestions
        if not suggestions:
            head.update(f"{run_id}: nothing to advise — no OOM, validation loss not stuck, loss steady, "
                        "GPUs busy (or no GPU readings)")
        else:
            head.update(f"{run_id}: {len(suggestions)} suggestion(s) from the guide's FAQ; "
                        f"w writes a preset extending {self.parent_preset(snap)}")
        self._set_suggestions(list(suggestions))

    def _set_suggestions(self, suggestions: list[Suggestion]) -> None:
        ids = [s.id for s in suggestions]
        self.suggestions = suggestions
        ol = self.query_one(OptionList)
        if ids != self._shown_ids:
            keep = ol.highlighted
            ol.clear_options()
            for s in suggestions:
                mark = "✗" if s.severity == "error" else "!"
                ol.add_option(Option(Text(f"{mark} {s.title}: {s.id}"), id=s.id))
            self._shown_ids = ids
            if suggestions:
                ol.highlighted = min(keep or 0, len(suggestions) - 1)
        self._show_detail()

    def current(self) -> Suggestion | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None or ol.highlighted >= len(self.suggestions):
            return None
        return self.suggestions[ol.highlighted]

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_write()

    def _show_detail(self) -> None:
        s = self.current()
        detail = self.query_one("#advice-detail", Static)
        if s is None:
            detail.update("")
            return
        parent = self.parent_preset(self.kapp.snapshot)
        text = Text()
        text.append(f"{s.title}\n", style="bold")
        text.append("seen:   ", style="bold")
        text.append(f"{s.evidence}\n")
        text.append("advice: ", style="bold")
        text.append(f"{s.advice}\n\n")
        text.append(f"w writes preset {suggested_name(parent, s)}:\n", style="bold")
        text.append(f"extends: {parent}\n{s.change_text()}\n")
        detail.update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "write":
            return True if self.suggestions else None
        return True

    def action_write(self) -> None:
        s = self.current()
        if s is None:
            return
        parent = self.parent_preset(self.kapp.snapshot)
        if not parent:
            self.notify("the run does not name its preset (preset.txt); cannot extend it", severity="error")
            return
        folder = self.kapp.services.presets_target_dir()
        try:
            from kronos_train.config import list_presets

            taken = {p.name for p in list_presets(self.kapp.services.extra_preset_dirs)}
            path = write_suggested_preset(parent, s, folder, taken)
        except OSError as exc:
            self.notify(f"not written: {exc}", severity="error")
            return
        self.kapp.select_preset(path.stem)
        self.notify(f"wrote {path} (extends {parent}) and selected it; 2 runs its checklist, l launches it",
                    timeout=6)
