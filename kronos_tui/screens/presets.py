"""Presets: the list (project, user and bundled folders), one key to switch,
and the doors to editing, diffing, importing, checking and launching."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from kronos_train.config import (ConfigError, KronosConfig, PresetInfo, diff, errors_of, list_presets,
                                 load_preset, load_raw_chain, read_yaml, save_preset)

from .base import KronosScreen
from .dialogs import DiffScreen, PromptDialog

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def name_problem(name: str) -> str:
    if not name.strip():
        return "type a name"
    if not set(name) <= NAME_CHARS:
        return "letters, digits, - _ . only"
    return ""


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it (short, and the same on every checkout)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def describe(info: PresetInfo | None, name: str, cfg: KronosConfig, problems: list[Any], chain: list[str]) -> Text:
    """The detail pane: where the preset lives, what it inherits, whether it is valid, the knobs that matter."""
    t = Text()
    where = f"{info.origin} · {display_path(info.path)}" if info else "not found in the preset folders"
    t.append(f"{name}\n", style="bold")
    t.append(f"{where}\n", style="dim")
    t.append(f"extends  {' ← '.join(chain) if chain else '—'}\n")
    errors = errors_of(problems)
    warnings = [p for p in problems if p.level == "warning"]
    if errors:
        t.append(f"✗ {len(errors)} error(s), {len(warnings)} warning(s)\n", style="bold red")
    elif warnings:
        t.append(f"! valid, {len(warnings)} warning(s)\n", style="yellow")
    else:
        t.append("✓ valid\n", style="green")
    for p in (errors + warnings)[:8]:
        t.append(f"  {'✗' if p.level == 'error' else '!'} {p.path} = {p.value!r}: {p.message}\n")
    d, tr, dist = cfg.data, cfg.training, cfg.distributed
    gpus = dist.num_gpus * dist.nodes
    t.append("\n")
    t.append(f"data     {d.data_path or '—'}{' (generated)' if d.synthetic.enabled else ''}\n")
    t.append(f"windows  lookback {d.lookback_window} + predict {d.predict_window} ≤ context {d.max_context}\n")
    t.append(f"stages   tokenizer {tr.tokenizer_epochs} ep @ {tr.tokenizer_learning_rate:g}"
             f"{'' if cfg.experiment.train_tokenizer else ' (off)'}\n")
    t.append(f"         basemodel {tr.basemodel_epochs} ep @ {tr.predictor_learning_rate:g}"
             f"{'' if cfg.experiment.train_basemodel else ' (off)'}\n")
    unit = "GPU" if cfg.device.use_cuda else "process"
    t.append(f"runs on  {where_it_runs(cfg)}\n")
    t.append(f"batch    {tr.batch_size} × {gpus} {unit} × acc {tr.accumulation_steps} = "
             f"{tr.batch_size * gpus * tr.accumulation_steps} effective\n")
    x, mp, arch = cfg.experiment, cfg.model_paths, cfg.architecture
    t.append(f"models   tokenizer {starting_model(x.pre_trained_tokenizer, mp.pretrained_tokenizer, arch.tokenizer)}\n")
    t.append(f"         predictor {starting_model(x.pre_trained_predictor, mp.pretrained_predictor, arch.predictor)}\n")
    es = tr.early_stopping
    t.append(f"schedule {tr.scheduler.name} · early stop {'patience ' + str(es.patience) if es.enabled else 'off'}"
             f" · {tr.precision} · wd {tr.adam_weight_decay:g}\n")
    return t


MODEL_INDENT = " " * 11


def where_it_runs(cfg: KronosConfig) -> str:
    """CPU worker processes or GPUs, as the launcher will start them."""
    d = cfg.distributed
    nodes = f" on each of {d.nodes} nodes" if d.nodes > 1 else ""
    if not cfg.device.use_cuda:
        return f"{d.num_gpus} CPU worker process{'es' if d.num_gpus != 1 else ''} (gloo){nodes}"
    return f"{d.num_gpus} GPU{'s' if d.num_gpus != 1 else ''} (nccl){nodes}"


def starting_model(pretrained: bool, folder: str, architecture: str) -> str:
    """What a stage starts from, by the trainer's own rule (train.stages.starting_config);
    a path goes on its own indented line, where the narrow pane does not break it."""
    if pretrained:
        return f"fine-tuned from\n{MODEL_INDENT}{folder}" if folder else "fine-tuned from — (no path set)"
    if architecture:
        return f"from scratch: {architecture}"
    return f"from scratch, as the config.json of\n{MODEL_INDENT}{folder}" if folder else "— (nothing says what to build)"


class PresetsScreen(KronosScreen):
    MODE = "presets"
    BINDINGS = [
        Binding("enter", "select", "Select", show=False),
        Binding("e", "edit", "Edit"),
        Binding("y", "edit_yaml", "YAML"),
        Binding("n", "new", "New"),
        Binding("d", "diff", "Diff"),
        Binding("i", "import_file", "Import"),
        Binding("c", "checklist", "Checks"),
        Binding("l", "launch", "Launch"),
        Binding("r", "reload", "Reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[PresetInfo] = []
        self._cursor: int | None = None         # the row that carries the cursor mark

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="presets-body"):
            yield OptionList(id="preset-list")
            with VerticalScroll(id="preset-detail-box"):
                yield Static("", id="preset-detail")

    def on_mount(self) -> None:
        self.reload_list()
        self.query_one(OptionList).focus()

    # ---------------------------------------------------------------- list
    def reload_list(self, highlight: str | None = None) -> None:
        try:
            self.infos = list_presets(self.kapp.services.extra_preset_dirs)
        except OSError as exc:
            self.notify(f"cannot list presets: {exc}", severity="error")
            self.infos = []
        ol = self.query_one(OptionList)
        ol.clear_options()
        current = self.kapp.selected_preset
        self._cursor = None
        for info in self.infos:
            ol.add_option(Option(self._label(info, False), id=info.name))
        target = highlight or current
        names = [i.name for i in self.infos]
        if target in names:
            ol.highlighted = names.index(target)
        elif names:
            ol.highlighted = 0
        if current and current not in names and not Path(current).is_file():
            self.notify(f"no preset '{current}'; known: {', '.join(names[:8])}", severity="warning")

    def _label(self, info: PresetInfo, highlighted: bool) -> Text:
        """``›`` marks the cursor and ``▶`` the selected preset: both read without colour."""
        cursor = (">" if self.kapp.ascii_only else "›") if highlighted else " "
        mark = "▶" if info.name == self.kapp.selected_preset else " "
        label = Text(f"{cursor}{mark} {info.name}")
        if info.origin != "bundled":
            label.append(f" ({info.origin})", style="dim")
        return label

    def _move_cursor_mark(self, index: int | None) -> None:
        ol = self.query_one(OptionList)
        for i in {self._cursor, index} - {None}:
            if i < len(self.infos) and i < ol.option_count:
                ol.replace_option_prompt_at_index(i, self._label(self.infos[i], i == index))
        self._cursor = index

    def preset_changed(self) -> None:
        self.reload_list()

    def highlighted_name(self) -> str | None:
        ol = self.query_one(OptionList)
        if ol.highlighted is None or not self.infos:
            return None
        return self.infos[ol.highlighted].name

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._move_cursor_mark(event.option_index)
        if event.option_id:
            self.load_detail(event.option_id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_id:
            self._select(event.option_id)

    def _select(self, name: str) -> None:
        self.kapp.select_preset(name)
        self.notify(f"preset {name} selected")

    @work(thread=True, exclusive=True, group="preset-detail", exit_on_error=False)
    def load_detail(self, name: str) -> None:
        extra = self.kapp.services.extra_preset_dirs
        info = next((i for i in self.infos if i.name == name), None)
        cfg, problems = load_preset(name, extra)
        try:
            chain = [p.stem for p, _ in load_raw_chain(name, extra)][1:]
        except ConfigError:
            chain = []
        text = describe(info, name, cfg, problems, chain)
        self.app.call_from_thread(self._show_detail, name, text)

    def _show_detail(self, name: str, text: str) -> None:
        # A thread worker cannot be stopped: an older one may finish after a newer
        # one, so only the detail of the preset still highlighted is shown.
        if self.highlighted_name() == name:
            self.query_one("#preset-detail", Static).update(text)

    # ---------------------------------------------------------------- actions
    def action_select(self) -> None:
        name = self.highlighted_name()
        if name:
            self._select(name)

    def _info(self, name: str | None) -> PresetInfo | None:
        return next((i for i in self.infos if i.name == name), None)

    def action_edit(self, yaml_mode: bool = False) -> None:
        from .editor import PresetEditor

        info = self._info(self.highlighted_name())
        if info is None:
            return

        def closed(saved_name: str | None) -> None:
            self.reload_list(highlight=saved_name or info.name)
            if saved_name:
                self.load_detail(saved_name)

        self.app.push_screen(PresetEditor(info, yaml_mode=yaml_mode), closed)

    def action_edit_yaml(self) -> None:
        self.action_edit(yaml_mode=True)

    def action_new(self) -> None:
        parent = self.highlighted_name() or self.kapp.selected_preset
        target_dir = self.kapp.services.presets_target_dir()
        taken = {i.name for i in self.infos}

        def validate(name: str) -> str:
            return name_problem(name) or ("that name exists" if name.strip() in taken else "")

        def chosen(name: str | None) -> None:
            if not name:
                return
            path = save_preset(target_dir / f"{name.strip()}.yaml", {"extends": parent})
            self.notify(f"created {path} (extends {parent})")
            self.kapp.select_preset(name.strip())      # reloads the list with the new one marked ▶
            self.reload_list(highlight=name.strip())
            self.action_edit()

        self.app.push_screen(PromptDialog(f"New preset extending {parent}", f"saved in {target_dir}",
                                          value=f"{parent}-exp1", validate=validate), chosen)

    def action_diff(self) -> None:
        name = self.highlighted_name()
        if name:
            self._diff(name)

    @work(thread=True, exclusive=True, group="preset-diff", exit_on_error=False)
    def _diff(self, name: str) -> None:
        extra = self.kapp.services.extra_preset_dirs
        cfg, _ = load_preset(name, extra)
        parent = cfg.extends
        parent_cfg = load_preset(parent, extra)[0] if parent else KronosConfig()
        rows = diff(parent_cfg, cfg)
        label = parent or "defaults (the guide's kaggle_config.yaml)"
        self.app.call_from_thread(self.app.push_screen, DiffScreen(f"{name} vs {label}", label, name, rows))

    def action_import_file(self) -> None:
        def path_problem(text: str) -> str:
            path = Path(text).expanduser()
            if not text.strip():
                return "type the path of a kaggle_config.yaml"
            if not path.is_file():
                return f"no file {path}"
            return ""

        def got_path(text: str | None) -> None:
            if text:
                self._ask_import_name(Path(text).expanduser())

        self.app.push_screen(PromptDialog("Import a kaggle_config.yaml",
                                          "The official finetune_csv layout loads as is; it is copied into your "
                                          "preset folder unchanged.", value="kaggle_config.yaml",
                                          validate=path_problem), got_path)

    def _ask_import_name(self, source: Path) -> None:
        taken = {i.name for i in self.infos}
        target_dir = self.kapp.services.presets_target_dir()

        def validate(name: str) -> str:
            return name_problem(name) or ("that name exists" if name.strip() in taken else "")

        def chosen(name: str | None) -> None:
            if not name:
                return
            try:
                read_yaml(source)                       # refuse what is not YAML at all
            except ConfigError as exc:
                self.notify(f"not imported: {exc}", severity="error", timeout=8)
                return
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{name.strip()}.yaml"
            shutil.copyfile(source, target)
            cfg, problems = load_preset(target)
            errors = errors_of(problems)
            self.reload_list(highlight=name.strip())
            self.kapp.select_preset(name.strip())
            self.notify(f"imported {source.name} as {name.strip()}"
                        + (f": {len(errors)} error(s) to fix (e to edit)" if errors else ": valid"),
                        severity="warning" if errors else "information")

        stem = source.stem.replace("_", "-")
        self.app.push_screen(PromptDialog("Name of the imported preset", f"from {source}", value=stem,
                                          validate=validate), chosen)

    def action_checklist(self) -> None:
        name = self.highlighted_name()
        if name and name != self.kapp.selected_preset:
            self.kapp.select_preset(name)
        self.kapp.action_show("checklist")

    def action_launch(self) -> None:
        name = self.highlighted_name()
        if name and name != self.kapp.selected_preset:
            self.kapp.select_preset(name)
        self.kapp.open_launch()

    def action_reload(self) -> None:
        self.reload_list(highlight=self.highlighted_name())
