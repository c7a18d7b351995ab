"""The launch dialog's "where" section: this node, or a SLURM job submitted from this (login) node.

Ticked, it shows one row — partition, nodes, GPUs per node (0 = a CPU partition,
where the dialog's "GPUs / processes" count is the worker processes per node)
and the time limit — and ``options()`` turns it into ``SlurmOptions``; the
submission itself (``kronos_train.control.slurm_job.submit_run``) runs in the dialog's
worker, since sbatch talks to slurmctld.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label

from kronos_train.control.slurm_job import SlurmOptions


class SlurmSection(Vertical):
    DEFAULT_CSS = """
    SlurmSection { height: auto; }
    SlurmSection #slurm-row { height: 1; display: none; }
    SlurmSection #slurm-row Label { width: auto; padding: 0 1 0 0; }
    SlurmSection #slurm-row Input { width: 7; margin-right: 1; }
    SlurmSection #slurm-row #slurm-partition { width: 9; }
    SlurmSection #slurm-row #slurm-time { width: 10; }
    """

    def __init__(self, checkbox: Checkbox, nodes: int = 2) -> None:
        super().__init__(id="slurm-section")
        self.checkbox, self.nodes = checkbox, nodes

    def compose(self) -> ComposeResult:
        yield self.checkbox
        with Horizontal(id="slurm-row"):
            yield Label("partition")
            yield Input("", id="slurm-partition", restrict=r"[A-Za-z0-9_.,-]*", compact=True)
            yield Label("nodes")
            yield Input(str(self.nodes), id="slurm-nodes", restrict=r"[0-9]*", compact=True)
            yield Label("GPUs/node")
            yield Input("0", id="slurm-gpus", restrict=r"[0-9]*", compact=True)
            yield Label("time")
            yield Input("24:00:00", id="slurm-time", restrict=r"[0-9:-]*", compact=True)

    @property
    def chosen(self) -> bool:
        return bool(self.checkbox.value)

    def show_fields(self) -> None:
        self.query_one("#slurm-row").display = self.chosen

    def nodes_chosen(self) -> int:
        """The node count the world size is multiplied by: 1 on this node."""
        return max(0, self._int("#slurm-nodes")) if self.chosen else 1

    def _int(self, selector: str) -> int:
        try:
            return int(self.query_one(selector, Input).value)
        except ValueError:
            return -1

    def options(self, processes: int) -> tuple[SlurmOptions, list[str]]:
        """The SLURM options the fields say (``processes``: the dialog's count), and what is wrong with them."""
        gpus = self._int("#slurm-gpus")
        options = SlurmOptions(nodes=self._int("#slurm-nodes"), gpus_per_node=gpus,
                               procs_per_node=processes if gpus == 0 else None,
                               partition=self.query_one("#slurm-partition", Input).value,
                               time=self.query_one("#slurm-time", Input).value)
        return options, options.problems()
