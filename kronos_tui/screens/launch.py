"""The launch dialog: stages, GPU count, then a detached run through kronos_train.control.launch.

The launcher validates everything before it creates anything; its problems
(LaunchError.problems) are shown here, one per line, and nothing starts.  On
success the dialog returns the RunFolder and the app moves to the monitor.
The run is its own session with its output in files, so quitting the app or
losing SSH never stops it.
"""
from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from kronos_train.control.runfolder import RunFolder

from ..services import launch_problems
from .dialogs import DIALOG_CSS
from .launch_slurm import SlurmSection


class TickBox(Checkbox):
    """A checkbox whose state reads without colour: X when on, blank when off."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]
        return "X" if self.value else " "

    def watch_value(self) -> None:
        super().watch_value()          # Checkbox.Changed: the summary and the SLURM fields follow the box
        self.refresh()


class LaunchDialog(ModalScreen[RunFolder | None]):
    DEFAULT_CSS = DIALOG_CSS.format(name="LaunchDialog") + """
    LaunchDialog Checkbox { height: 1; border: none; padding: 0; }
    LaunchDialog .field-row { height: 1; }
    LaunchDialog .field-row Label { width: 18; }
    LaunchDialog .field-row Input { width: 8; }
    LaunchDialog #launch-problems { max-height: 10; }
    LaunchDialog #launch-notes { color: $warning; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("t", "toggle('#stage-tokenizer')", "Tokenizer", show=False),
        Binding("b", "toggle('#stage-basemodel')", "Basemodel", show=False),
        Binding("k", "toggle('#skip-existing')", "Skip done", show=False),
        Binding("u", "toggle('#slurm')", "SLURM", show=False),
        Binding("ctrl+l", "launch", "Launch"),
    ]

    def __init__(self, preset: str, cfg: Any, services: Any) -> None:
        super().__init__()
        self.preset, self.cfg, self.services = preset, cfg, services
        self.busy = False

    def compose(self) -> ComposeResult:
        x = self.cfg.experiment
        with Vertical():
            yield Label(f"Launch preset {self.preset}", classes="title", markup=False)
            yield TickBox("tokenizer stage (t)", x.train_tokenizer, id="stage-tokenizer", compact=True)
            yield TickBox("basemodel stage (b)", x.train_basemodel, id="stage-basemodel", compact=True)
            yield TickBox("skip stages already done (--skip-existing) (k)", x.skip_existing, id="skip-existing",
                          compact=True)
            with Horizontal(id="gpus-row", classes="field-row"):
                yield Label("GPUs / processes")
                yield Input(str(self.cfg.distributed.num_gpus), id="gpus", restrict=r"[0-9]*", compact=True)
            yield Static("", id="gpu-hint", markup=False)          # its own line: never cut at 80 columns
            with Horizontal(id="budget-row", classes="field-row"):
                yield Label("time budget, min")
                yield Input(f"{self.cfg.training.time_budget_minutes:g}", id="budget", restrict=r"[0-9.]*",
                            compact=True)
                yield Static("  0 = none; else a resumable stop", markup=False)
            yield SlurmSection(TickBox("where: SLURM job from this login node, else this node (u)", False,
                                       id="slurm", compact=True))
            yield Static("", id="launch-summary", markup=False)
            note = self._created_folder_note()
            yield Static(note, id="launch-notes", markup=False).set_styles(f"display: {'block' if note else 'none'};")
            yield Static("", id="launch-problems", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Cancel (esc)", id="cancel", compact=True)
                yield Button("Launch (ctrl+l)", id="launch", variant="success", compact=True)

    def on_mount(self) -> None:
        self.query_one("#launch").focus()
        self._update_summary()
        self._count_gpus()

    @work(thread=True, exclusive=True, group="launch-gpus", exit_on_error=False)
    def _count_gpus(self) -> None:
        from kronos_train.control.gpu import gpu_count

        count, reason = gpu_count(self.services.nvml)
        if not self.cfg.device.use_cuda:
            text = f"device.use_cuda is false: CPU worker processes (gloo); this node has {count} NVIDIA GPU(s)"
        elif count:
            text = f"this node: {count} NVIDIA GPU(s), one process each (nccl)"
        else:
            text = "this node: no NVIDIA GPU: CPU worker processes (gloo)"
        self.app.call_from_thread(self.query_one("#gpu-hint", Static).update, text)

    def _created_folder_note(self) -> str:
        from kronos_train.checks.pre import created_folder_words, folder_created_here

        folder = folder_created_here(self.cfg)
        return f"! {created_folder_words(folder)}" if folder else ""

    def action_toggle(self, selector: str) -> None:
        box = self.query_one(selector, Checkbox)
        box.value = not box.value

    @on(Checkbox.Changed)
    @on(Input.Changed)
    def _update_summary(self) -> None:
        self.query_one(SlurmSection).show_fields()
        stages = [s for s in ("tokenizer", "basemodel") if self.query_one(f"#stage-{s}", Checkbox).value]
        gpus = self._gpus() * self.query_one(SlurmSection).nodes_chosen()
        t = self.cfg.training
        text = (f"stages: {' → '.join(stages) or 'none'}; effective batch {t.batch_size} × {gpus or '?'} × "
                f"{t.accumulation_steps} = {t.batch_size * (gpus or 0) * t.accumulation_steps}")
        self.query_one("#launch-summary", Static).update(text)

    def _gpus(self) -> int:
        try:
            return int(self.query_one("#gpus", Input).value)
        except ValueError:
            return 0

    def _budget(self) -> float | None:
        """Minutes, or None when the box does not hold a number."""
        try:
            return float(self.query_one("#budget", Input).value or 0)
        except ValueError:
            return None

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_launch()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_launch(self) -> None:
        if self.busy:
            return
        tok = self.query_one("#stage-tokenizer", Checkbox).value
        base = self.query_one("#stage-basemodel", Checkbox).value
        gpus = self._gpus()
        problems = []
        if not (tok or base):
            problems.append("choose at least one stage")
        if gpus < 1:
            problems.append("GPU count must be at least 1")
        budget = self._budget()
        if budget is None:
            problems.append(f"time budget {self.query_one('#budget', Input).value!r}: give minutes, e.g. 510 (0 = none)")
        slurm = self.query_one(SlurmSection)
        options, slurm_problems = slurm.options(gpus) if slurm.chosen else (None, [])
        problems += slurm_problems
        if problems:
            self.query_one("#launch-problems", Static).update("\n".join(problems))
            return
        self.busy = True
        self.query_one("#launch-problems", Static).update("submitting to SLURM…" if options else
                                                          "starting the run supervisor…")
        flags = dict(skip_tokenizer=not tok, skip_basemodel=not base,
                     skip_existing=self.query_one("#skip-existing", Checkbox).value, time_budget_minutes=budget)
        self._launch(dict(flags, num_gpus=gpus) if options is None else dict(flags, slurm=options))

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch(self, options: dict[str, Any]) -> None:
        try:
            slurm = options.pop("slurm", None)
            if slurm is not None:
                run = self.services.submit_slurm(self.preset, self.services.logs_dir, slurm, **options)
            else:
                run = self.services.launch(self.preset, self.services.logs_dir, **options)
        except Exception as exc:  # LaunchError carries .problems; anything else is shown as is
            lines = launch_problems(exc) or [f"{type(exc).__name__}: {exc}"]
            self.app.call_from_thread(self._failed, lines)
            return
        self.app.call_from_thread(self.dismiss, run)

    def _failed(self, lines: list[str]) -> None:
        self.busy = False
        self.query_one("#launch-problems", Static).update("nothing was started:\n" + "\n".join(f"• {l}" for l in lines))
