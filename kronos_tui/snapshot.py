"""What the screens draw: a snapshot of the attached run, built by the follower
(:mod:`kronos_tui.follow`) in its thread and posted to the app as a message.

A small typed tree, so each widget is handed the part it draws (the GPU panel
gets :class:`Hardware`, the loss plot :class:`PlotData`) and no screen touches
the follower's state.  Plain data: no Textual, no engine objects beyond the
checks' results and the advisor's suggestions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kronos_train.checks import CheckResult

from .view import View

if TYPE_CHECKING:        # the app imports this module before its first frame; the advisor loads with a run
    from kronos_train.advisor import Suggestion


@dataclass
class Series:
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.x)


@dataclass
class StageView:
    name: str
    status: str
    fraction: float
    step: int
    total_steps: int | None
    epoch: float
    epochs: int | None
    eta_s: float | None
    samples_per_s: float | None
    best_val: float | None
    best_step: int | None
    best_epoch: Any
    attempt: int


@dataclass
class RunHeader:
    """What the run line says: which run, its state, what may be asked of it."""
    run_id: str
    preset: str
    state: str
    alive: bool
    attempt: int
    host: str
    errors: list[dict[str, Any]]                 # the last few error records
    can_resume: bool = False
    budget_left_s: float | None = None           # training.time_budget_minutes left to this attempt
    pending_requests: list[str] = field(default_factory=list)   # in words, e.g. "stop requested"
    scheduler: str = ""                          # the run's SLURM job in words ("" when not a SLURM run)
    queued: bool = False                         # its job waits in the queue: stop/abort cancel it


@dataclass
class PlotData:
    """The shown stage's curves, already downsampled to the plot's width."""
    view: View
    stage: str | None                            # the stage shown (the active one unless asked)
    raw: Series = field(default_factory=Series)
    smooth: Series = field(default_factory=Series)
    val: Series = field(default_factory=Series)
    lr: Series = field(default_factory=Series)
    best: tuple[float, int, Any] | None = None   # (val_loss, step, epoch)
    last_loss: float | None = None
    last_step: int | None = None
    last_lr: float | None = None
    resume_marks: list[int] = field(default_factory=list)
    overlay: Series | None = None                # another run's curve, same stage
    overlay_label: str = ""
    notes: list[str] = field(default_factory=list)
    # The x axis: steps per epoch (x: epochs) and minutes since the stage's first point (x: time).
    steps_per_epoch: float | None = None
    step_minutes: Series = field(default_factory=Series)


@dataclass
class GpuView:
    host: str
    index: int
    name: str
    util: list[float | None]
    mem_used: list[float | None]
    power: list[float | None]
    mem_total_mb: float | None
    temp_c: float | None
    lost: bool


@dataclass
class WorkerView:
    host: str
    pid: int
    rank: int | None
    cpu: list[float | None]          # % of one core, oldest first
    rss_mb: list[float | None]
    threads: int | None


@dataclass
class Hardware:
    """What the GPU (or, without GPUs, the CPU workers) panels draw."""
    host: str
    alive: bool                                  # the run lives: worker rows are current, not its last reading
    gpus: list[GpuView]
    gpu_state: str                               # "local" | "events" | "none" | "waiting"
    gpu_reason: str
    workers: list[WorkerView] = field(default_factory=list)     # the supervisor's CPU readings (workers events)


@dataclass
class LogLines:
    lines: list[str]
    total: int = 0                               # lines ever added: the monitor appends only new ones


@dataclass
class RunChecks:
    during: list[CheckResult]
    after: list[CheckResult]
    suggestions: list[Suggestion]


@dataclass
class ReadProgress:
    """How far the follower has read ``events.jsonl``."""
    progress: float
    caught_up: bool
    records: int
    bad_lines: int


@dataclass
class Snapshot:
    header: RunHeader
    stages: list[StageView]
    plot: PlotData
    hardware: Hardware
    log: LogLines
    checks: RunChecks
    reading: ReadProgress
    version: int
