"""Runs: every run folder side by side (the guide: record every experiment,
change one knob at a time), with what each changed relative to its preset's
parent.  Attach, compare configs, overlay curves, resume.

The table is built in a thread worker from ``status.json`` (written by the
supervisor), the resolved ``config.yaml`` and, only when the status lacks the
stages, the head and tail of ``events.jsonl``; a million-line file is never read
whole here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from kronos_train.control.summary import RunSummary
from kronos_train.config import PATH_FIELDS, ConfigError, KronosConfig, diff, load_preset
from kronos_train.control.run_config import read_run_config
from kronos_train.control.events import decode
from kronos_train.control.runfolder import FINAL_STATES, RunFolder, list_runs, state_word
from kronos_train.control.scheduler import SCHEDULER_FILE, JobWatch

from ..messages import RunsListed
from ..series import fmt_duration
from ..widgets.panels import STATUS_MARK
from .base import KronosScreen
from .dialogs import DiffScreen

PATH_FIELD_NAMES = frozenset(f"{section}.{name}" for section, name in PATH_FIELDS)
HEAD_BYTES = 64 << 10
TAIL_BYTES = 256 << 10
REFRESH_S = 3.0
DETAIL_DIFFS = 4               # changed knobs spelled out under the table; d shows them all


@dataclass
class RunRow:
    run: RunFolder
    preset: str = ""
    state: str = ""
    alive: bool = False
    can_resume: bool = False
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_val: float | None = None
    best_stage: str = ""
    duration_s: float | None = None
    parent: str = ""
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)
    message: str = ""
    scheduler: str = ""              # the run's SLURM job in words ("" when not a SLURM run)

    @property
    def run_id(self) -> str:
        return self.run.run_id


def _same_path(path: str, a: Any, b: Any) -> bool:
    if path not in PATH_FIELD_NAMES or not isinstance(a, str) or not isinstance(b, str) or not a or not b:
        return False
    return os.path.abspath(os.path.expanduser(a)) == os.path.abspath(os.path.expanduser(b))


def config_of_run(run: RunFolder) -> tuple[KronosConfig | None, str]:
    """The resolved config a run used, and the preset it extends ('' if none)."""
    try:
        cfg, _ = read_run_config(run.path)
    except ConfigError:
        return None, ""
    parent, cfg.extends = cfg.extends, ""       # the parent has its own column, not a diff line
    return cfg, parent


def parent_config(parent: str, cache: dict[str, KronosConfig]) -> KronosConfig:
    if parent not in cache:
        cache[parent] = load_preset(parent)[0] if parent else KronosConfig()
    return cache[parent]


def differences(a: KronosConfig, b: KronosConfig) -> list[tuple[str, Any, Any]]:
    return [(p, x, y) for p, x, y in diff(a, b) if not _same_path(p, x, y)]


def _edges(path: Path) -> list[dict[str, Any]]:
    """Records from the first and last few hundred kilobytes of an events file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            fh.seek(max(HEAD_BYTES, size - TAIL_BYTES))
            tail = fh.read() if size > HEAD_BYTES else b""
    except OSError:
        return []
    lines = head.split(b"\n")[:-1]
    if tail:
        lines += tail.split(b"\n")[1:-1]     # the first tail line may be cut; the last may be torn
    out = []
    for line in lines:
        try:
            rec = decode(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def follow_job(row: RunRow, jobs: dict[str, JobWatch]) -> None:
    """The SLURM job of a run the table shows (asked at most every JobWatch.every_s;
    runs that ended are asked once, SLURM forgets them anyway)."""
    if not (row.run.path / SCHEDULER_FILE).is_file():
        return
    watch = jobs.setdefault(row.run_id, JobWatch(row.run))
    if watch.info is None or row.state not in FINAL_STATES or watch.info.active:
        watch.poll()
    row.scheduler, row.state = watch.line, watch.state(row.state)


def scan_run(run: RunFolder, parents: dict[str, KronosConfig], now: float,
             diff_cache: dict[str, tuple[int, str, list[tuple[str, Any, Any]]]] | None = None,
             jobs: dict[str, JobWatch] | None = None) -> RunRow:
    row = RunRow(run)
    status = run.read_status()
    row.preset = run.preset_name() or str(status.get("preset") or "")
    row.alive = run.is_alive()
    row.state = run.state()
    if jobs is not None:
        follow_job(row, jobs)
    row.can_resume = run.can_resume()
    row.message = str(status.get("message") or "")
    stages = status.get("stages") if isinstance(status.get("stages"), dict) else {}
    summary = RunSummary().add_all(_edges(run.events_path)) if not stages or not status.get("started_at") else None
    if summary is not None and not stages:
        stages = {name: {"status": st.status, "best_val_loss": st.best_val, "step": st.last_step}
                  for name, st in summary.stages.items()}
    row.stages = {str(k): v for k, v in stages.items() if isinstance(v, dict)}
    for name, info in row.stages.items():
        if isinstance(info.get("best_val_loss"), (int, float)):
            row.best_val, row.best_stage = float(info["best_val_loss"]), name
    started = status.get("started_at") or (summary.first_t if summary else None)
    ended = now if row.alive else (status.get("updated_at") or (summary.last_t if summary else None))
    if isinstance(started, (int, float)) and isinstance(ended, (int, float)):
        row.duration_s = max(0.0, ended - started)
    # The config of a run does not change: parse and diff it once per mtime
    # (the table refreshes every few seconds and may list hundreds of runs).
    stamp = _mtime_ns(run.config_path)
    cached = diff_cache.get(run.run_id) if diff_cache is not None else None
    if cached is not None and cached[0] == stamp:
        row.parent, row.diffs = cached[1], cached[2]
        return row
    cfg, parent = config_of_run(run)
    row.parent = parent
    if cfg is not None:
        try:
            row.diffs = differences(parent_config(parent, parents), cfg)
        except Exception:               # a parent preset deleted or broken since
            row.diffs = []
    if diff_cache is not None:
        diff_cache[run.run_id] = (stamp, row.parent, row.diffs)
    return row


def stage_status(status: Any, run_state: str) -> str:
    """A stage the status file still calls running, in a run that is not, ended as the run did."""
    if status == "running" and run_state in ("interrupted", "failed", "aborted", "stopped"):
        return run_state
    return str(status)


def stages_text(row: RunRow) -> str:
    return " ".join(f"{name[:1].upper()}{STATUS_MARK.get(stage_status(info.get('status'), row.state), '?')}"
                    for name, info in row.stages.items()) or "—"


def diff_text(diffs: list[tuple[str, Any, Any]]) -> str:
    """How many knobs changed: the names and values are on the detail line below the
    table, where they have the whole width (a column of them was cut at 80 columns)."""
    return f"{len(diffs)} knob{'s' if len(diffs) != 1 else ''}" if diffs else "none"


class RunsScreen(KronosScreen):
    MODE = "runs"
    BINDINGS = [
        Binding("enter", "attach", "Attach"),
        Binding("space", "mark", "Mark"),
        Binding("d", "diff", "Diff"),
        Binding("o", "overlay", "Overlay"),
        Binding("r", "resume", "Resume"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RunRow] = []
        self.marked: list[str] = []
        self._parents: dict[str, KronosConfig] = {}
        self._diffs: dict[str, tuple[int, str, list[tuple[str, Any, Any]]]] = {}
        self._jobs: dict[str, JobWatch] = {}

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark", width=1)
        table.add_column("run", key="run")           # whole: the id ends with the preset's name
        table.add_column("state", key="state")
        table.add_column("stages", key="stages")
        table.add_column("best val", key="best")
        table.add_column("time", key="time")
        table.add_column("vs parent", key="diff")
        table.focus()
        self.scan()
        self.set_interval(REFRESH_S, self._tick)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.scan()

    def _tick(self) -> None:
        if self.is_current and self.app.screen is self:
            self.scan()

    @work(thread=True, exclusive=True, group="runs-scan", exit_on_error=False)
    def scan(self) -> None:
        app = self.kapp
        now = app.services.clock()
        rows = []
        for run in list_runs(app.services.logs_dir):
            try:
                rows.append(scan_run(run, self._parents, now, self._diffs, self._jobs))
            except Exception as exc:       # one broken folder must not hide the others
                rows.append(RunRow(run, state="unreadable", message=f"{type(exc).__name__}: {exc}"))
        self.post_message(RunsListed(rows))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        table = self.query_one(DataTable)
        keep = self.highlighted()
        self.rows = message.rows
        table.clear()
        attached = self.kapp.attached_run
        for row in self.rows:
            mark = "*" if row.run_id in self.marked else ("▶" if attached and attached.run_id == row.run_id else "")
            best = "—" if row.best_val is None else f"{row.best_val:.4g}"
            table.add_row(mark, row.run_id, state_word(row.state, short=True), stages_text(row), best,
                          fmt_duration(row.duration_s), diff_text(row.diffs), key=row.run_id)
        if keep is not None and keep.run_id in [r.run_id for r in self.rows]:
            table.move_cursor(row=[r.run_id for r in self.rows].index(keep.run_id))
        if not self.rows:
            self.query_one("#run-detail", Static).update(
                f"No runs in {self.kapp.services.logs_dir} yet. Launch one from Presets (1, then l).")
        else:
            self._show_detail()
        self.refresh_bindings()

    def highlighted(self) -> RunRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_attach()

    def _show_detail(self) -> None:
        row = self.highlighted()
        detail = self.query_one("#run-detail", Static)
        if row is None:
            return
        text = Text()
        text.append(f"{row.run_id}", style="bold")
        text.append(f" · preset {row.preset or '?'} · extends {row.parent or '— (vs defaults)'}")
        if row.best_val is not None:
            text.append(f" · best val {row.best_val:.6g} ({row.best_stage})")
        if row.can_resume:
            text.append(" · resumable (r)")
        text.append("\n")
        if row.scheduler:                  # where the job is: above the settings, which do not change
            text.append(f"{row.scheduler}\n")
        if row.diffs:
            shown = DETAIL_DIFFS
            text.append("; ".join(f"{p} {a!r}→{b!r}" for p, a, b in row.diffs[:shown]))
            if len(row.diffs) > shown:
                text.append(f"; +{len(row.diffs) - shown} more (d)")
        else:
            text.append("no setting differs from the parent")
        if row.message:
            text.append(f"\n{row.message}", style="italic")
        detail.update(text)

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":
            row = self.highlighted() if self.is_mounted else None
            return True if row is not None and row.can_resume and row.state != "queued" else None
        if action in ("attach", "mark", "overlay", "diff"):
            return True if self.is_mounted and self.rows else None
        return True

    def action_attach(self) -> None:
        row = self.highlighted()
        if row is not None:
            self.kapp.attach(row.run)

    def action_mark(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        if row.run_id in self.marked:
            self.marked.remove(row.run_id)
        else:
            self.marked = (self.marked + [row.run_id])[-2:]
        table = self.query_one(DataTable)
        for r in self.rows:
            table.update_cell(r.run_id, "mark", "*" if r.run_id in self.marked else "")
        self.notify(f"marked: {', '.join(self.marked) or 'none'}" + (" — d compares them" if len(self.marked) == 2 else ""),
                    timeout=2)

    def action_diff(self) -> None:
        by_id = {r.run_id: r for r in self.rows}
        if len(self.marked) == 2 and all(m in by_id for m in self.marked):
            a, b = (by_id[m] for m in self.marked)
            self._diff_runs(a.run, b.run)
            return
        row = self.highlighted()
        if row is not None:
            self._diff_parent(row)

    @work(thread=True, exclusive=True, group="runs-diff", exit_on_error=False)
    def _diff_runs(self, a: RunFolder, b: RunFolder) -> None:
        ca, _ = config_of_run(a)
        cb, _ = config_of_run(b)
        if ca is None or cb is None:
            self.notify("a run has no readable config.yaml", severity="error")
            return
        rows = differences(ca, cb)
        self.app.call_from_thread(self.app.push_screen, DiffScreen(f"{a.run_id} vs {b.run_id}", a.run_id, b.run_id, rows))

    def _diff_parent(self, row: RunRow) -> None:
        label = row.parent or "defaults"
        self.app.push_screen(DiffScreen(f"{row.run_id} vs its parent {label}", label, row.run_id, row.diffs))

    def action_overlay(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        attached = self.kapp.attached_run
        if attached is None or attached.run_id == row.run_id:
            self.notify("attach the run to compare with first (enter), then overlay another one", severity="warning")
            return
        self.kapp.set_overlay(row.run)
        self.kapp.action_show("monitor")

    def action_resume(self) -> None:
        row = self.highlighted()
        if row is not None and row.can_resume and row.state != "queued":   # a queued job resumes by itself
            self.kapp.resume(row.run)

    def action_refresh(self) -> None:
        self._parents.clear()              # presets may have been edited since
        self._diffs.clear()
        self.scan()

    def run_changed(self) -> None:
        if self.is_mounted:
            self.scan()
