"""Editing one preset: a validated form, raw YAML, and the diff against its parent.

The form shows every field of the config tree with its effective value; ``•``
marks the values this preset sets itself (the rest are inherited through
``extends``, or defaults).  Each keystroke re-validates the merged preset with
the config schema's own messages (``validate_raw``), shown under the field they
concern.  The YAML tab edits the file's text; parse errors and schema problems
show beside it, and saving from YAML writes the text as typed (comments kept).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static, TabbedContent, TabPane, Tabs, TextArea

from kronos_train.config import (ConfigError, ConfigProblem, KronosConfig, PresetInfo, diff, errors_of, field_paths,
                                 from_dict, load_raw_chain, merge, merged_raw, parse_yaml, dump_yaml,
                                 save_preset, validate_raw)

from .dialogs import ConfirmDialog, PromptDialog, diff_legend, stacked_diff
from .presets import name_problem

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def field_id(path: str) -> str:
    return "f-" + path.replace(".", "--")


def get_in(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_in(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value
    return out


def drop_in(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """Remove one own value (the field then inherits again); prune empty sections."""
    out = copy.deepcopy(raw)
    parts = path.split(".")
    trail = [out]
    for part in parts[:-1]:
        node = trail[-1].get(part)
        if not isinstance(node, dict):
            return out
        trail.append(node)
    trail[-1].pop(parts[-1], None)
    for depth in range(len(parts) - 1, 0, -1):
        if not trail[depth]:
            trail[depth - 1].pop(parts[depth - 1], None)
    return out


def value_from_text(typ: Any, text: str) -> Any:
    """What a typed value means for a field of type ``typ``.  Text that is not a
    valid value is kept as typed, so the schema's own message explains it."""
    stripped = text.strip()
    if typ is bool:
        low = stripped.lower()
        return True if low in TRUE_WORDS else False if low in FALSE_WORDS else text
    if typ in (int, float):
        try:
            value = yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text
    return text


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class FieldRow(Vertical):
    DEFAULT_CSS = """
    FieldRow { height: auto; }
    FieldRow Horizontal { height: 1; }
    FieldRow Label { width: 38; }
    FieldRow Input { width: 1fr; }
    FieldRow .field-error { color: $error; padding-left: 2; display: none; }
    FieldRow.-error .field-error { display: block; }
    FieldRow.-own Label { text-style: bold; }
    """

    def __init__(self, path: str, typ: Any) -> None:
        super().__init__(id=f"row-{field_id(path)}")
        self.path, self.typ = path, typ

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(f"  {self.path}", markup=False)
            yield Input(id=field_id(self.path), compact=True)
        yield Static("", classes="field-error", markup=False)

    def show(self, value: Any, own: bool, problems: list[ConfigProblem]) -> None:
        self.set_class(own, "-own")
        self.query_one(Label).update(f"{'•' if own else ' '} {self.path}")
        box = self.query_one(Input)
        text = text_of(value)
        if box.value != text and not box.has_focus:
            with box.prevent(Input.Changed):
                box.value = text
        self.show_problems(problems)

    def show_problems(self, problems: list[ConfigProblem]) -> None:
        self.set_class(bool(problems), "-error")
        message = "; ".join(f"{'✗' if p.level == 'error' else '!'} {p.message}" for p in problems)
        self.query_one(".field-error", Static).update(message)


class PresetEditor(Screen[str | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("f2", "save_as", "Save as"),
        Binding("f3", "tab('form')", "Form"),
        Binding("f4", "tab('yaml')", "YAML"),
        Binding("f5", "tab('diff')", "Diff"),
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),   # q must not quit the app from an editor
    ]
    DEFAULT_CSS = """
    PresetEditor #editor-title { height: 1; background: $panel; padding: 0 1; }
    PresetEditor TabbedContent { height: 1fr; }
    PresetEditor #yaml-box { height: 1fr; }
    PresetEditor #yaml-text { width: 1fr; height: 1fr; }
    PresetEditor #yaml-problems { width: 34; height: 1fr; padding: 0 1; border-left: solid $primary; }
    PresetEditor #editor-status { height: 2; padding: 0 1; }
    PresetEditor #editor-diff-scroll { height: 1fr; }
    """

    def __init__(self, info: PresetInfo, yaml_mode: bool = False) -> None:
        super().__init__()
        self.info = info
        self.name_ = info.name
        self.path = Path(info.path)
        self.read_only = info.origin == "bundled" or not os.access(self.path, os.W_OK)
        self.yaml_mode = yaml_mode
        self.text = ""
        self.raw: dict[str, Any] = {}
        self.load_error = ""
        self.parent_raw: dict[str, Any] = {}
        self.parent_error = ""
        self.problems: list[ConfigProblem] = []
        self.yaml_error = ""
        self.dirty = False
        self.edited_in = "yaml" if yaml_mode else "form"
        self.saved_name: str | None = None
        self._yaml_timer: Timer | None = None
        self._shown_problems: dict[str, str] = {}
        self._shown_text: dict[str, str] = {}
        self.fields = field_paths()          # "extends" comes first
        self._read()

    # ---------------------------------------------------------------- loading
    def _read(self) -> None:
        try:
            self.text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            self.text, self.load_error = "", f"cannot read {self.path}: {exc}"
        try:
            self.raw = parse_yaml(self.text, source=str(self.path))
        except ConfigError as exc:
            self.raw, self.yaml_error = {}, "; ".join(p.message for p in exc.problems)
            self.edited_in = "yaml"
        self._load_parent()

    def _load_parent(self) -> None:
        parent = self.raw.get("extends")
        self.parent_raw, self.parent_error = {}, ""
        if not parent:
            return
        if not isinstance(parent, str):
            self.parent_error = "extends must be the name of one preset"
            return
        try:
            chain = load_raw_chain(parent) if not Path(parent).is_absolute() else load_raw_chain(Path(parent))
            if any(p.resolve() == self.path.resolve() for p, _ in chain):
                self.parent_error = f"inheritance cycle through {parent}"
                return
            self.parent_raw = merged_raw(chain)
            self.parent_raw.pop("extends", None)
        except ConfigError as exc:
            self.parent_error = "; ".join(p.message for p in exc.problems)

    def merged(self) -> dict[str, Any]:
        out = merge(self.parent_raw, self.raw)
        out["extends"] = self.raw.get("extends", "") or ""
        return out

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="editor-title", markup=False)
        with TabbedContent(initial="yaml" if self.yaml_mode else "form"):
            with TabPane("Form (f3)", id="form"):
                with VerticalScroll(id="form-scroll"):
                    for path, typ in self.fields:
                        yield FieldRow(path, typ)
            with TabPane("YAML (f4)", id="yaml"):
                with Horizontal(id="yaml-box"):
                    yield self._text_area()
                    yield Static("", id="yaml-problems", markup=False)
            with TabPane("Diff vs parent (f5)", id="diff"):
                yield Static("", id="editor-diff-legend")
                with VerticalScroll(id="editor-diff-scroll"):
                    yield Static("", id="editor-diff")
        yield Static("", id="editor-status", markup=False)
        yield Footer(compact=True)

    def _text_area(self) -> TextArea:
        area = TextArea.code_editor(self.text, language="yaml", id="yaml-text", soft_wrap=False)
        return area

    def _set(self, selector: str, content: Any) -> None:
        """Update a Static only when its text changes: every update re-lays out
        the screen, and the form has a few hundred widgets."""
        key = content.plain if isinstance(content, Text) else str(content)
        if self._shown_text.get(selector) != key:
            self._shown_text[selector] = key
            self.query_one(selector, Static).update(content)

    def _title(self) -> str:
        where = "bundled, read-only: ctrl+s saves a copy" if self.read_only else str(self.path)
        star = " *" if self.dirty else ""
        return f"Editing {self.name_}{star} — {where}"

    def on_mount(self) -> None:
        area = self.query_one("#yaml-text", TextArea)
        if not area.is_syntax_aware:
            area.border_subtitle = "plain text (no tree-sitter)"
        self.refresh_all()
        # f3/f4/f5 switch tabs, so Tab walks the fields only, starting on the first one.
        self.query_one(TabbedContent).query_one(Tabs).can_focus = False
        if self.yaml_mode:
            area.focus()
        else:
            self.query_one("#form-scroll").query(Input).first().focus()

    # ---------------------------------------------------------------- validation and display
    def revalidate(self) -> None:
        merged = self.merged()
        self.problems = validate_raw(merged, source=str(self.path))
        if self.parent_error:
            self.problems.insert(0, ConfigProblem("extends", self.raw.get("extends"), self.parent_error))

    def refresh_all(self) -> None:
        self.revalidate()
        self.refresh_form()
        self.refresh_side()

    def refresh_form(self) -> None:
        merged = self.merged()
        by_path: dict[str, list[ConfigProblem]] = {}
        for p in self.problems:
            by_path.setdefault(p.path, []).append(p)
        for path, _ in self.fields:
            own, _ = get_in(self.raw, path)
            _, value = get_in(merged, path) if path != "extends" else (True, merged.get("extends"))
            if value is None and path != "extends":
                _, value = get_in(_defaults(), path)
            self.query_one(f"#row-{field_id(path)}", FieldRow).show(value, own, by_path.get(path, []))
        self._shown_problems = {path: "|".join(p.message for p in ps) for path, ps in by_path.items()}

    def refresh_side(self) -> None:
        errors = errors_of(self.problems)
        warnings = [p for p in self.problems if p.level == "warning"]
        side = Text()
        if self.yaml_error:
            side.append("YAML does not parse\n", style="bold red")
            side.append(self.yaml_error + "\n\n")
        if not self.problems and not self.yaml_error:
            side.append("✓ valid\n", style="green")
        for p in self.problems:
            side.append(f"{'✗' if p.level == 'error' else '!'} {p.path}", style="bold" if p.level == "error" else "")
            side.append(f" = {p.value!r}: {p.message}\n")
        self._set("#yaml-problems", side)
        status = Text()
        if self.yaml_error:
            status.append("✗ YAML parse error: " + self.yaml_error, style="bold red")
        elif errors:
            status.append(f"✗ {len(errors)} error(s), {len(warnings)} warning(s): ", style="bold red")
            status.append(_short(errors[0]))
        elif warnings:
            status.append(f"! valid with {len(warnings)} warning(s): {_short(warnings[0])}", style="yellow")
        else:
            status.append("✓ valid", style="green")
        if self.dirty:
            status.append("  · unsaved (ctrl+s)")
        self._set("#editor-status", status)
        self._set("#editor-title", self._title())
        if self.query_one(TabbedContent).active == "diff":
            self.refresh_diff()                 # otherwise rebuilt when its tab opens

    def refresh_diff(self) -> None:
        """Stacked like the run diff (dialogs.stacked_diff): long values stay whole at 80 columns."""
        parent = str(self.raw.get("extends") or "defaults")
        parent_cfg = from_dict(self.parent_raw)[0] if self.parent_raw else KronosConfig()
        rows = diff(parent_cfg, from_dict(self.merged())[0])
        self.query_one("#editor-diff-legend", Static).update(diff_legend(parent, self.name_))
        self.query_one("#editor-diff", Static).update(stacked_diff(rows))

    # ---------------------------------------------------------------- editing
    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        box = event.input
        if not (box.id or "").startswith("f-"):
            return
        path = box.id[2:].replace("--", ".")
        typ = dict(self.fields).get(path, str)
        if event.value == "" and path != "extends":
            self.raw = drop_in(self.raw, path)            # empty: inherit again
        elif path == "extends":
            self.raw = set_in(self.raw, "extends", event.value) if event.value else drop_in(self.raw, "extends")
            self._load_parent()
        else:
            self.raw = set_in(self.raw, path, value_from_text(typ, event.value))
        self.dirty, self.edited_in, self.yaml_error = True, "form", ""
        self.revalidate()
        own = get_in(self.raw, path)[0]
        row = self.query_one(f"#row-{field_id(path)}", FieldRow)
        if row.has_class("-own") != own:
            row.set_class(own, "-own")
            row.query_one(Label).update(f"{'•' if own else ' '} {path}")
        self.refresh_problems()
        self.refresh_side()
        row.scroll_visible()          # its error line sits under the input

    def refresh_problems(self) -> None:
        """Update the error line of the rows whose problems changed (a keystroke
        can fix or break another field, e.g. lookback_window vs max_context)."""
        by_path: dict[str, list[ConfigProblem]] = {}
        for p in self.problems:
            by_path.setdefault(p.path, []).append(p)
        for path in set(by_path) | set(self._shown_problems):
            problems = by_path.get(path, [])
            key = "|".join(p.message for p in problems)
            if self._shown_problems.get(path, "") == key:
                continue
            found = self.query(f"#row-{field_id(path)}")
            if found:
                found.first(FieldRow).show_problems(problems)
            if key:
                self._shown_problems[path] = key
            else:
                self._shown_problems.pop(path, None)

    @on(TextArea.Changed, "#yaml-text")
    def _yaml_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.text == self.text:
            return
        if self._yaml_timer is not None:
            self._yaml_timer.stop()
        self._yaml_timer = self.set_timer(0.3, self._parse_yaml_text)

    def _parse_yaml_text(self) -> None:
        self.text = self.query_one("#yaml-text", TextArea).text
        self.dirty, self.edited_in = True, "yaml"
        try:
            raw = parse_yaml(self.text, source=str(self.path))
        except ConfigError as exc:
            self.yaml_error = "; ".join(p.message for p in exc.problems)
            self.refresh_side()
            return
        self.yaml_error = ""
        extends_changed = raw.get("extends") != self.raw.get("extends")
        self.raw = raw
        if extends_changed:
            self._load_parent()
        self.revalidate()
        self.refresh_side()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if pane == "yaml" and self.edited_in == "form" and self.dirty:
            # The form is the newer truth: regenerate the text (comments are lost then).
            self.text = dump_yaml(self.raw)
            area = self.query_one("#yaml-text", TextArea)
            area.load_text(self.text)
        elif pane == "form":
            if self._yaml_timer is not None:
                self._yaml_timer.stop()
                if self.query_one("#yaml-text", TextArea).text != self.text:
                    self._parse_yaml_text()
            self.refresh_form()
        elif pane == "diff":
            self.refresh_diff()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    # ---------------------------------------------------------------- saving
    def _content_to_save(self) -> tuple[str | None, dict[str, Any] | None]:
        if self._yaml_timer is not None:
            self._yaml_timer.stop()
            if self.query_one("#yaml-text", TextArea).text != self.text:
                self._parse_yaml_text()
        if self.yaml_error:
            self.notify(f"not saved: the YAML does not parse ({self.yaml_error})", severity="error", timeout=8)
            return None, None
        if self.edited_in == "yaml":
            return self.text, None
        return None, self.raw

    def action_save(self) -> None:
        if self.read_only:
            self.action_save_as()
            return
        self._write(self.path)

    def _write(self, path: Path) -> bool:
        text, raw = self._content_to_save()
        if text is None and raw is None:
            return False
        try:
            if text is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
                os.replace(tmp, path)
            else:
                save_preset(path, raw or {})
        except OSError as exc:
            self.notify(f"not saved: {exc}", severity="error")
            return False
        self.path, self.name_, self.dirty = path, path.stem, False
        self.read_only = False
        self.saved_name = path.stem
        errors = errors_of(self.problems)
        self.notify(f"saved {path}" + (f" with {len(errors)} error(s)" if errors else ""),
                    severity="warning" if errors else "information")
        self.refresh_side()
        return True

    def action_save_as(self) -> None:
        target_dir = self.app.services.presets_target_dir()  # type: ignore[attr-defined]

        def validate(name: str) -> str:
            problem = name_problem(name)
            if problem:
                return problem
            target = target_dir / f"{name.strip()}.yaml"
            return "" if target.resolve() != self.path.resolve() or not self.read_only else "that is the read-only file"

        def chosen(name: str | None) -> None:
            if name:
                self._write(target_dir / f"{name.strip()}.yaml")

        self.app.push_screen(PromptDialog("Save preset as", f"into {target_dir}", value=f"{self.name_}-copy",
                                          validate=validate), chosen)

    def action_close(self) -> None:
        if not self.dirty:
            self.dismiss(self.saved_name)
            return

        def answer(discard: bool | None) -> None:
            if discard:
                self.dismiss(self.saved_name)

        self.app.push_screen(ConfirmDialog("Discard changes?", f"{self.name_} has unsaved changes.",
                                           yes="Discard", no="Keep editing"), answer)


def _short(problem: ConfigProblem) -> str:
    """A problem without its source file (the title bar names the file)."""
    return f"{problem.path} = {problem.value!r}: {problem.message}"


_DEFAULTS: dict[str, Any] | None = None


def _defaults() -> dict[str, Any]:
    global _DEFAULTS
    if _DEFAULTS is None:
        from kronos_train.config import to_dict

        _DEFAULTS = to_dict(KronosConfig())
    return _DEFAULTS
