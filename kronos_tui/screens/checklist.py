"""The guide's checklist (训练检查清单), automated.

Before training: the checks of ``kronos_train.checks.pre`` for the selected
preset, in three workers so the fast lines show at once: the quick checks, the
data validation (reads the whole file), and the model load (a ``kronos-train
check --only models`` subprocess, because it imports torch).  Results are
cached by the config's hash and the mtimes of the files they read, so coming
back to the screen costs nothing until an input changes.

During and after: the lines of ``kronos_train.checks.run``, judged from the
attached run by the app's follower; ``m`` runs the model-load check of the run
(a subprocess again).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import ProgressBar, Static

from kronos_train.checks import CheckResult
from kronos_train.config import KronosConfig, config_hash, load_preset

from ..messages import ChecksUpdated, ModelChecked
from ..snapshot import Snapshot
from .base import KronosScreen

SYMBOL = {"ok": "✓", "warn": "!", "error": "✗", "info": "i", "skip": "-", "pending": "…"}
STYLE = {"ok": "green", "warn": "yellow", "error": "bold red", "info": "cyan", "skip": "dim", "pending": "dim"}
PARTS = ("quick", "data", "models")


def _mtime(path: str) -> str:
    try:
        return f"{os.stat(path).st_mtime_ns}"
    except OSError:
        return "-"


def cache_key(preset: str, cfg: KronosConfig) -> str:
    """Inputs of the before-checks: the resolved config and the files it points at."""
    paths = [cfg.data.data_path, cfg.model_paths.pretrained_tokenizer, cfg.model_paths.pretrained_predictor]
    stamps = [_mtime(p) for p in paths if p]
    stamps += [_mtime(str(Path(p) / "config.json")) for p in paths[1:] if p]
    return f"{preset}:{config_hash(cfg)}:{':'.join(stamps)}"


def render_results(title: str, results: list[CheckResult], expanded: bool) -> Text:
    text = Text()
    text.append(title + "\n", style="bold underline")
    if not results:
        text.append("  nothing yet\n", style="dim")
    for r in results:
        text.append(f"[{SYMBOL.get(r.status, '?')}] ", style=STYLE.get(r.status, ""))
        text.append(f"{r.status.upper():<7} ", style=STYLE.get(r.status, ""))
        text.append(r.title, style="bold")
        if r.detail:
            text.append(f" — {r.detail}")
        text.append("\n")
        if r.status in ("error", "warn") or expanded:
            for item in r.items[: (50 if expanded else 6)]:
                text.append(f"        - {item}\n")
            if len(r.items) > 6 and not expanded:
                text.append(f"        … {len(r.items) - 6} more (x expands)\n", style="dim")
        if r.hint and (r.status in ("error", "warn", "pending") or expanded):
            text.append(f"        → {r.hint}\n", style="italic")
    return text


class ChecklistScreen(KronosScreen):
    MODE = "checklist"
    BINDINGS = [
        Binding("r", "rerun", "Re-run"),
        Binding("m", "model_check", "Model check"),
        Binding("x", "expand", "Expand"),
        Binding("l", "launch", "Launch"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.key = ""
        self.parts: dict[str, list[CheckResult]] = {}
        self.expanded = False
        self.running: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="check-head", markup=False)
        yield ProgressBar(total=len(PARTS), show_eta=False, id="check-progress")
        with VerticalScroll(id="check-scroll"):
            yield Static("", id="check-before")
            yield Static("", id="check-during")
            yield Static("", id="check-after")

    def on_mount(self) -> None:
        self.start_checks()
        self.show_run_checks()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.start_checks()
        self.show_run_checks()

    def preset_changed(self) -> None:
        if self.is_current:
            self.start_checks()

    def run_changed(self) -> None:
        if self.is_mounted:
            self.show_run_checks()

    # ---------------------------------------------------------------- before
    def start_checks(self, force: bool = False) -> None:
        app = self.kapp
        preset = app.selected_preset
        cfg, problems = load_preset(preset, app.services.extra_preset_dirs)
        key = cache_key(preset, cfg)
        cached = app.check_cache.get(key)
        if not force and key == self.key and self.running:
            return                                   # already running for these inputs
        self.key = key
        if not force and cached is not None and all(part in cached for part in PARTS):
            self.parts = dict(cached)
            self.running = {}
            self.show_before()
            return
        app.check_cache[key] = {}
        self.parts = {}
        self.running = {"quick": "quick checks", "data": "validating the data file", "models": "loading the models"}
        self.show_before()
        self._quick(key, preset, cfg, problems)
        self._data(key, cfg)
        self._models(key, preset, cfg, problems, force)

    def _pre(self) -> Any:
        from kronos_train.checks import pre

        return pre

    @work(thread=True, group="checks-quick", exit_on_error=False)
    def _quick(self, key: str, preset: str, cfg: KronosConfig, problems: list[Any]) -> None:
        services = self.kapp.services
        results = self._pre().quick_checks(cfg, logs_dir=services.logs_dir, problems=problems, nvml=services.nvml)
        self.post_message(ChecksUpdated(key, "quick", results, 1, len(PARTS)))

    @work(thread=True, group="checks-data", exit_on_error=False)
    def _data(self, key: str, cfg: KronosConfig) -> None:
        try:
            results = self._pre().data_checks(cfg, logs_dir=self.kapp.services.logs_dir)
        except Exception as exc:      # a reader bug must show as a line, not a traceback
            results = [CheckResult("data.valid", "Data format valid", "error", f"{type(exc).__name__}: {exc}")]
        self.post_message(ChecksUpdated(key, "data", results, 2, len(PARTS)))

    @work(thread=True, group="checks-models", exit_on_error=False)
    def _models(self, key: str, preset: str, cfg: KronosConfig, problems: list[Any], force: bool = False) -> None:
        pre = self._pre()
        paths = pre.check_model_paths(cfg)
        title = "Pretrained models load and fit together"
        if paths.status == "error":
            results = [CheckResult("models.load", title, "skip", "fix the model paths first")]
        elif not (self.kapp.services.auto_model_check or force):
            results = [CheckResult("models.load", title, "pending", "not run", "press r to run every check")]
        else:
            results = [r for r in self.kapp.services.preset_model_check(preset) if r.id == "models.load"] or [
                CheckResult("models.load", title, "error", "`kronos-train check --only models` gave no result")]
        self.post_message(ChecksUpdated(key, "models", results, 3, len(PARTS)))

    def worker_failed(self, worker: Any) -> None:
        part = {"_quick": "quick", "_data": "data", "_models": "models"}.get(worker.name)
        if part and part in self.running:
            failed = CheckResult(f"{part}.failed", f"{self.running[part]} (crashed)", "error",
                                 f"{type(worker.error).__name__}: {worker.error}", "this is a bug; please report it")
            self.post_message(ChecksUpdated(self.key, part, [failed], 0, len(PARTS)))

    @on(ChecksUpdated)
    def _updated(self, message: ChecksUpdated) -> None:
        cache = self.kapp.check_cache.setdefault(message.key, {})
        cache[message.phase] = message.results
        if message.key != self.key:
            return                              # results for inputs that changed meanwhile: cached only
        self.parts[message.phase] = message.results
        self.running.pop(message.phase, None)
        self.show_before()

    def combined_before(self) -> list[CheckResult]:
        # Later parts refine earlier ones (batch.time with the data).
        results = [r for part in PARTS for r in self.parts.get(part, [])]
        by_id = {r.id: r for r in results}
        for part, what in self.running.items():
            if part == "data" and "data.valid" not in by_id:
                by_id["data.valid"] = CheckResult("data.valid", "Data format valid", "pending", what + "…")
            if part == "models" and "models.load" not in by_id:
                by_id["models.load"] = CheckResult("models.load", "Pretrained models load and fit together",
                                                   "pending", what + " (subprocess)…")
        return self._pre().in_guide_order(list(by_id.values()))

    def show_before(self) -> None:
        preset = self.kapp.selected_preset
        done = len(PARTS) - len(self.running)
        bar = self.query_one("#check-progress", ProgressBar)
        bar.update(total=len(PARTS), progress=done)
        bar.display = bool(self.running)
        head = f"Checklist for preset {preset}"
        head += f" · running: {', '.join(self.running.values())}" if self.running else " · all checks done (r re-runs)"
        self.query_one("#check-head", Static).update(head)
        self.query_one("#check-before", Static).update(
            render_results("Before training (训练前)", self.combined_before(), self.expanded))

    # ---------------------------------------------------------------- during / after
    def show_snapshot(self, snap: Snapshot) -> None:
        self._render_run(snap)

    def show_run_checks(self) -> None:
        self._render_run(self.kapp.snapshot)

    def _render_run(self, snap: Snapshot | None) -> None:
        run = self.kapp.attached_run
        if run is None:
            hint = [CheckResult("run.none", "No run attached", "skip", "launch one (l) or pick one in Runs (4)")]
            during, after, label = hint, hint, ""
        elif snap is None:
            wait = [CheckResult("run.reading", "Reading the run", "pending", run.run_id)]
            during, after, label = wait, wait, f" — run {run.run_id}"
        else:
            head = snap.header
            during, after, label = snap.checks.during, snap.checks.after, f" — run {head.run_id} ({head.state})"
        self.query_one("#check-during", Static).update(
            render_results(f"During training (训练中){label}", during, self.expanded))
        self.query_one("#check-after", Static).update(
            render_results(f"After training (训练后){label}", after, self.expanded))

    # ---------------------------------------------------------------- actions
    def action_rerun(self) -> None:
        self.start_checks(force=True)

    def action_expand(self) -> None:
        self.expanded = not self.expanded
        self.show_before()
        self.show_run_checks()

    def action_launch(self) -> None:
        self.kapp.open_launch()

    def action_model_check(self) -> None:
        run = self.kapp.attached_run
        if run is None:
            self.notify("attach a run first (4: Runs)", severity="warning")
            return
        self.notify(f"loading the models of {run.run_id} in a subprocess…")
        self._run_model_check(run)

    @work(thread=True, exclusive=True, group="run-model-check", exit_on_error=False)
    def _run_model_check(self, run: Any) -> None:
        self.app.post_message(ModelChecked(run.run_id, self.kapp.services.run_model_check(run)))
