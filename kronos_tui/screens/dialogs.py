"""Modal dialogs: confirm, prompt for text, pick one of many, a diff table, help.

All keyboard-first: ``y``/``n``/``escape`` in the confirm dialog (Frogmouth's
pattern), ``enter``/``escape`` elsewhere; every one also works with the mouse.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 100%; height: auto; max-height: 100%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; width: 100%; }}
{name} .buttons {{ height: auto; width: 100%; align-horizontal: right; margin-top: 1; }}
{name} .buttons Button {{ margin-left: 1; }}
{name} .error {{ color: $error; }}
"""


class ConfirmDialog(ModalScreen[bool]):
    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, body: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self.title_text, self.body, self.yes, self.no = title, body, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            yield Static(self.body, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.no} (n)", id="no", compact=True)
                yield Button(f"{self.yes} (y)", id="yes", variant="error", compact=True)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class PromptDialog(ModalScreen[str | None]):
    """Ask for one line of text; ``validate`` returns an error message or ''."""

    DEFAULT_CSS = DIALOG_CSS.format(name="PromptDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str = "", value: str = "", placeholder: str = "",
                 validate: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.title_text, self.body, self.value, self.placeholder = title, body, value, placeholder
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            if self.body:
                yield Static(self.body, markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("", id="prompt-error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel", compact=True)
                yield Button("OK (enter)", id="ok", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _error(self, text: str) -> str:
        return self.validate(text) if self.validate else ""

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#prompt-error", Static).update(self._error(event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self._accept(event.value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._accept(self.query_one(Input).value)
        else:
            self.dismiss(None)

    def _accept(self, value: str) -> None:
        error = self._error(value)
        if error:
            self.query_one("#prompt-error", Static).update(error)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickDialog(ModalScreen[str | None]):
    """Choose one option (by id); escape returns None."""

    DEFAULT_CSS = DIALOG_CSS.format(name="PickDialog") + """
    PickDialog OptionList { height: auto; max-height: 16; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: Iterable[tuple[str, str]], body: str = "") -> None:
        super().__init__()
        self.title_text, self.options, self.body = title, list(options), body

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            if self.body:
                yield Static(self.body, markup=False)
            yield OptionList(*[Option(Text(label), id=key) for key, label in self.options], id="pick-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DiffScreen(ModalScreen[None]):
    """Field-by-field differences between two configs, stacked: each field on
    its own line with the two values under it, so two long run ids and long
    values stay readable at 80 columns (side by side, one column went off-screen)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="DiffScreen") + """
    DiffScreen > Vertical { width: 100%; height: 100%; border: none; }
    DiffScreen VerticalScroll { height: 1fr; }
    DiffScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, left: str, right: str, rows: list[tuple[str, Any, Any]]) -> None:
        super().__init__()
        self.title_text, self.left, self.right, self.rows = title, left, right, rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            yield Static(self._legend(), id="diff-legend")
            with VerticalScroll(id="diff-scroll"):
                yield Static(self._body(), id="diff-body")
            yield Static(f"{len(self.rows)} difference(s) · ↑↓ PgUp PgDn scroll · escape close", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#diff-scroll").focus()

    def _legend(self) -> Text:
        return diff_legend(self.left, self.right)

    def _body(self) -> Text:
        return stacked_diff(self.rows)

    def action_close(self) -> None:
        self.dismiss(None)


def diff_legend(left: str, right: str) -> Text:
    text = Text()
    text.append("A ", style="bold")
    text.append(f"{left}\n")
    text.append("B ", style="bold")
    text.append(right)
    return text


def stacked_diff(rows: list[tuple[str, Any, Any]]) -> Text:
    """Each differing field, then its A and B values on lines of their own."""
    if not rows:
        return Text("no differences: every field has the same value")
    text = Text()
    for path, a, b in rows:
        text.append(f"{path}\n", style="bold")
        text.append(f"  A {_cell(a)}\n")
        text.append(f"  B {_cell(b)}\n")
    text.rstrip()
    return text


def _cell(value: Any) -> str:
    return "—" if value is None else repr(value) if isinstance(value, str) else str(value)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="HelpScreen") + """
    HelpScreen > Vertical { width: 100%; height: 100%; }
    HelpScreen VerticalScroll { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("kronos-tui keys (escape closes)", classes="title")
            with VerticalScroll(id="help-scroll"):
                yield Static(self.text.rstrip("\n"), markup=False, id="help-text")
            yield Static("↑↓ PgDn: more below", id="help-more", classes="hint")

    def on_resize(self) -> None:
        self.call_after_refresh(self._say_if_more)

    def _say_if_more(self) -> None:
        """A hint only when the text does not fit: nothing hides without saying so."""
        scroll = self.query_one("#help-scroll", VerticalScroll)
        self.query_one("#help-more").display = scroll.max_scroll_y > 0

    def action_close(self) -> None:
        self.dismiss(None)
