"""Text panels of the monitor: stage progress, run facts, GPUs.

Each is a ``Static`` fed from a snapshot.  Meaning is carried by words and
symbols (status words, ``█░`` bars, ``▁▃▇`` sparklines), never by colour alone.
"""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..series import fmt_duration, fmt_num, sparkline
from ..snapshot import Hardware, Snapshot, StageView

STATUS_MARK = {"pending": "·", "running": "▶", "completed": "✓", "early_stopped": "✓", "stopped": "■",
               "failed": "✗", "skipped": "-", "interrupted": "!", "aborted": "✗"}
STATUS_STYLE = {"running": "bold", "completed": "green", "early_stopped": "green", "failed": "bold red",
                "interrupted": "yellow", "aborted": "bold red",
                "stopped": "yellow", "skipped": "dim", "pending": "dim"}


def bar(fraction: float, width: int, ascii_only: bool = False) -> str:
    full = int(round(max(0.0, min(1.0, fraction)) * width))
    on, off = ("#", "-") if ascii_only else ("█", "░")
    return on * full + off * (width - full)


class StageProgress(Static):
    DEFAULT_CSS = """
    StageProgress { height: auto; max-height: 3; }
    """

    def show(self, stages: list[StageView], ascii_only: bool = False) -> None:
        text = Text()
        if not stages:
            text.append("no stage has started yet", style="dim")
        for i, s in enumerate(stages):
            if i:
                text.append("\n")
            mark = STATUS_MARK.get(s.status, "?")
            total = f"{s.step}/{s.total_steps}" if s.total_steps else f"{s.step}"
            epochs = f"ep {s.epoch:.1f}/{s.epochs}" if s.epochs else ""
            eta = f"ETA {fmt_duration(s.eta_s)}" if s.status == "running" else ""
            text.append(f"{s.name[:9]:<9} ")
            text.append(bar(s.fraction, 10, ascii_only))
            text.append(f" {s.fraction:>4.0%} {total:>11} {epochs:<9} {eta:<11} ")
            text.append(f"{mark} {s.status.replace('_', ' ')}", style=STATUS_STYLE.get(s.status, ""))
        self.update(text)


class RunFacts(Static):
    DEFAULT_CSS = """
    RunFacts { height: auto; }
    """

    def show(self, snap: Snapshot) -> None:
        plot = snap.plot
        view = plot.view
        lines = Text()
        lines.append(f"{plot.stage or '—'}\n", style="bold")
        if plot.last_loss is not None:
            lines.append(f"last  {fmt_num(plot.last_loss, 5)} @ {plot.last_step}\n")
        if plot.best is not None:
            val, step, epoch = plot.best
            lines.append("best val ", style="bold")
            lines.append(f"{val:.6g}\n", style="bold green")
            lines.append(f"  @ step {step} (epoch {epoch})\n")
        if plot.last_lr is not None:
            lines.append(f"lr    {plot.last_lr:.3g}\n")
        active = next((s for s in snap.stages if s.name == plot.stage), None)
        if active is not None and active.samples_per_s:
            lines.append(f"{active.samples_per_s:,.0f} samples/s\n")
        budget_left_s = snap.header.budget_left_s
        if budget_left_s is not None:
            short = active is not None and active.eta_s is not None and active.eta_s > budget_left_s
            lines.append(f"budget {fmt_duration(budget_left_s)} left" + (": stops first" if short else "") + "\n",
                         style="yellow" if short else "")
        lines.append(f"ema {view.smoothing:g} · {'last ' + str(view.zoom_last) if view.zoom_last else 'all'}"
                     f" · {'log' if view.log_y else 'lin'}\n", style="dim")
        for note in plot.notes:
            lines.append(f"{note}\n", style="italic")
        if snap.reading.bad_lines:
            lines.append(f"{snap.reading.bad_lines} unreadable line(s) skipped\n", style="yellow")
        self.update(lines)


def _rss(mb: float | None) -> str:
    if mb is None:
        return "n/a"
    return f"{mb:.0f}M" if mb < 1024 else f"{mb / 1024:.1f}G"


def _mem(mb: float | None) -> str:
    return "n/a" if mb is None else f"{mb / 1024:.0f}"


class GpuPanel(Static):
    """Per-GPU utilisation, memory and power with short histories.

    ``detailed`` adds a sparkline per quantity; the compact form fits the
    monitor's side column.
    """

    DEFAULT_CSS = """
    GpuPanel { height: auto; }
    """

    def __init__(self, detailed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.detailed = detailed

    def show(self, hw: Hardware, ascii_only: bool = False) -> None:
        text = Text()
        if not hw.gpus and (hw.gpu_state == "none" or hw.workers):
            self.update(self._cpu_workers(hw, ascii_only))
            return
        text.append("GPUs" + (f" · {hw.host}" if self.detailed and hw.host else "") + "\n", style="bold")
        if not hw.gpus:
            text.append("waiting for GPU readings…" if hw.gpu_state == "waiting" else "no GPU readings", style="dim")
            self.update(text)
            return
        hosts = {g.host for g in hw.gpus}
        for g in hw.gpus:
            label = f"{g.host[:8]}:{g.index}" if len(hosts) > 1 else f"{g.index}"
            if g.lost:
                text.append(f"{label} LOST — stopped answering\n", style="bold red")
                continue
            util = g.util[-1] if g.util else None
            used = g.mem_used[-1] if g.mem_used else None
            power = g.power[-1] if g.power else None
            util_txt = "n/a" if util is None else f"{util:3.0f}%"
            power_txt = "n/a" if power is None else f"{power:.0f}W"
            if self.detailed:
                text.append(f"{label:<3} {g.name[:22]}\n", style="bold")
                text.append(f"  util  {util_txt:>5} {sparkline(g.util, 24, 0, 100, ascii_only)}\n")
                text.append(f"  mem {_mem(used):>4}/{_mem(g.mem_total_mb)}G "
                            f"{sparkline(g.mem_used, 24, 0, g.mem_total_mb, ascii_only)}\n")
                text.append(f"  power {power_txt:>5} {sparkline(g.power, 24, None, None, ascii_only)}\n")
            else:
                style = "yellow" if util is not None and util < 80 else ""
                text.append(f"{label:<2} {util_txt:>4} ", style=style)
                text.append(sparkline(g.util, 5, 0, 100, ascii_only))
                text.append(f" {_mem(used)}/{_mem(g.mem_total_mb)}G {power_txt}\n")
        if hw.gpu_reason and hw.gpu_state != "none":
            text.append(f"{hw.gpu_reason}\n", style="yellow")
        if self.detailed and hw.workers:
            text.append("\n")
            text.append_text(self._cpu_workers(hw, ascii_only, heading=False))
        self.update(text)

    def _cpu_workers(self, hw: Hardware, ascii_only: bool, heading: bool = True) -> Text:
        """What a CPU run needs instead of GPUs: each worker's CPU %, memory and
        threads, as the run's supervisor recorded them (``workers`` events)."""
        text = Text()
        host = f" · {hw.workers[0].host}" if self.detailed and hw.workers else ""
        ended = " · last reading" if hw.workers and not hw.alive else ""    # those processes are gone
        text.append(f"CPU workers{host}{ended}\n", style="bold")
        if heading and hw.gpu_state == "none":
            reason = hw.gpu_reason or "no NVIDIA GPU on this node"
            text.append(f"{reason if self.detailed else 'no NVIDIA GPU'}\n", style="dim")
        if not hw.workers:
            text.append("no worker readings yet (the supervisor records them every few seconds while a stage "
                        "runs)" if self.detailed else "no worker readings yet", style="dim")
            return text
        for w in hw.workers:
            cpu = w.cpu[-1] if w.cpu else None
            rss = w.rss_mb[-1] if w.rss_mb else None
            cpu_txt = "n/a" if cpu is None else f"{cpu:.0f}%"
            threads = "?" if w.threads is None else str(w.threads)
            label = f"rank {w.rank}" if w.rank is not None else f"pid {w.pid}"
            if self.detailed:
                text.append(f"{label} · pid {w.pid} · {threads} threads\n", style="bold")
                text.append(f"  cpu {cpu_txt:>6} {sparkline(w.cpu, 20, 0, None, ascii_only)} of one core\n")
                text.append(f"  rss {_rss(rss):>6} {sparkline(w.rss_mb, 20, 0, None, ascii_only)}\n")
            else:
                short = f"r{w.rank}" if w.rank is not None else f"{w.pid}"
                text.append(f"{short:<3}{cpu_txt:>5} {sparkline(w.cpu, 5, 0, None, ascii_only)} {_rss(rss)} {threads}t\n")
        return text
