"""The guide's FAQ ("常见问题") as live diagnostics over a run.

Each rule reads a :class:`~kronos_train.control.summary.RunSummary` (the run's events,
folded) and the config the run used, and may return a :class:`Suggestion`: what
was seen, what the guide advises, and the concrete preset change as a nested
dict.  ``write_suggested_preset`` turns one suggestion into a new preset that
``extends`` the run's preset with just that change, so the next experiment
changes one knob at a time (the guide's best practice 5).

Pure and light: no torch, no clock, no I/O except the one writer at the end.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks.run import UTIL_TARGET
from .control.summary import RunSummary, StageSummary
from .config import KronosConfig, dump_yaml, save_preset

PLATEAU_EVALS = 3            # the guide: "连续3-5个epoch不下降"
OSCILLATION_WINDOW = 60      # recent loss points judged for oscillation


@dataclass
class Suggestion:
    id: str                      # stable key, also the suffix of the preset it writes
    title: str                   # the FAQ entry, in a few words
    evidence: str                # what the run shows, with figures
    advice: str                  # what the guide says to do, with the arithmetic
    change: dict[str, Any]       # nested preset mapping, e.g. {"training": {"batch_size": 16}}
    stage: str | None = None
    severity: str = "warn"       # "error" for failures (OOM), "warn" otherwise
    notes: list[str] = field(default_factory=list)

    def change_text(self) -> str:
        return dump_yaml(self.change).strip()


def lr_field(stage: str) -> str:
    return "tokenizer_learning_rate" if stage == "tokenizer" else "predictor_learning_rate"


def epochs_field(stage: str) -> str:
    return "tokenizer_epochs" if stage == "tokenizer" else "basemodel_epochs"


def _g(x: float) -> str:
    return f"{x:.3g}"


# --------------------------------------------------------------------------- rules

def val_plateau(summary: RunSummary, cfg: KronosConfig, evals: int = PLATEAU_EVALS) -> list[Suggestion]:
    """Q3: val loss not improving for N evaluations → lower the LR 2–5×."""
    out = []
    for st in summary.stages.values():
        vals = [v for v in st.vals if v["val_loss"] is not None]
        if len(vals) < evals + 1 or st.best_val is None:
            continue
        best_index = max(i for i, v in enumerate(vals) if v["val_loss"] == st.best_val)
        since = len(vals) - 1 - best_index
        if since < evals:
            continue
        lr = getattr(cfg.training, lr_field(st.name))
        new_lr = float(f"{lr / 4:.3g}")
        out.append(Suggestion(
            f"{st.name}-lr-down", "Validation loss stopped improving",
            f"{st.name}: best val {_g(st.best_val)} at step {st.best_step}; {since} evaluations since without improvement",
            f"lower the learning rate 2–5× (guide Q3): {lr_field(st.name)} {_g(lr)} → {_g(new_lr)} (÷4); "
            f"÷2 would be {_g(lr / 2)}, ÷5 {_g(lr / 5)}",
            {"training": {lr_field(st.name): new_lr}}, st.name))
    return out


def _oscillation(points: list[float]) -> tuple[float, float, float] | None:
    """(share of direction flips, mean step-to-step move, net drift) of a loss window."""
    if len(points) < 20:
        return None
    deltas = [b - a for a, b in zip(points, points[1:])]
    flips = sum(1 for a, b in zip(deltas, deltas[1:]) if a * b < 0) / max(1, len(deltas) - 1)
    amplitude = statistics.fmean(abs(d) for d in deltas)
    half = len(points) // 2
    drift = abs(statistics.fmean(points[half:]) - statistics.fmean(points[:half]))
    return flips, amplitude, drift


def oscillating_loss(summary: RunSummary, cfg: KronosConfig) -> list[Suggestion]:
    """"训练不稳定（损失震荡）" → lower the LR, or raise accumulation to 2–4."""
    st = summary.active_stage()
    if st is None:
        return []
    points = [loss for _, loss in list(st.recent_losses)[-OSCILLATION_WINDOW:]]
    shape = _oscillation(points)
    if shape is None:
        return []
    flips, amplitude, drift = shape
    scale = statistics.median(abs(p) for p in points) or 1e-8
    if not (flips > 0.55 and amplitude > 0.05 * scale and amplitude > 2 * drift):
        return []
    evidence = (f"{st.name}: the loss changes direction at {flips:.0%} of logged steps, by {_g(amplitude)} on "
                f"average (about {amplitude / scale:.0%} of its level) while drifting only {_g(drift)}")
    lr = getattr(cfg.training, lr_field(st.name))
    acc = cfg.training.accumulation_steps
    new_acc = min(4, max(2, acc * 2))
    out = [Suggestion(f"{st.name}-lr-half", "Loss oscillates", evidence,
                      f"lower the learning rate: {lr_field(st.name)} {_g(lr)} → {_g(lr / 2)} (÷2)",
                      {"training": {lr_field(st.name): float(f"{lr / 2:.3g}")}}, st.name)]
    if new_acc > acc:
        batch, gpus = cfg.training.batch_size, cfg.distributed.num_gpus * cfg.distributed.nodes
        out.append(Suggestion(f"{st.name}-accumulate", "Loss oscillates", evidence,
                              f"raise accumulation_steps {acc} → {new_acc}: effective batch "
                              f"{batch} × {gpus} GPU(s) × {acc} = {batch * gpus * acc} → "
                              f"{batch} × {gpus} × {new_acc} = {batch * gpus * new_acc}",
                              {"training": {"accumulation_steps": new_acc}}, st.name))
    return out


def overfitting(summary: RunSummary, cfg: KronosConfig) -> list[Suggestion]:
    """Q4: training loss falls while validation loss rises → more weight decay, fewer epochs."""
    out = []
    for st in summary.stages.values():
        vals = [v for v in st.vals if v["val_loss"] is not None and not v["baseline"]]
        if len(vals) < 3 or st.best_val is None:
            continue
        last3 = [v["val_loss"] for v in vals[-3:]]
        if not (last3[0] < last3[1] < last3[2] and last3[2] > st.best_val):
            continue
        since_step = vals[-3]["step"]
        train = [loss for step, loss in st.recent_losses if step >= since_step]
        if len(train) < 6:
            continue
        half = len(train) // 2
        if statistics.fmean(train[half:]) >= statistics.fmean(train[:half]):
            continue              # train not falling: not the overfitting pattern
        evidence = (f"{st.name}: val loss rose {_g(last3[0])} → {_g(last3[2])} over the last 3 evaluations "
                    f"while the training loss kept falling; best val {_g(st.best_val)} at epoch {st.best_epoch}")
        wd = cfg.training.adam_weight_decay
        new_wd = round(max(wd * 2, 0.01), 6)
        out.append(Suggestion(f"{st.name}-weight-decay", "Overfitting", evidence,
                              f"raise adam_weight_decay {_g(wd)} → {_g(new_wd)} (guide Q4: 0.1 → 0.2)",
                              {"training": {"adam_weight_decay": new_wd}}, st.name))
        epochs = getattr(cfg.training, epochs_field(st.name))
        best_epoch = st.best_epoch if isinstance(st.best_epoch, int) and st.best_epoch >= 1 else None
        if best_epoch and best_epoch < epochs:
            out.append(Suggestion(f"{st.name}-fewer-epochs", "Overfitting", evidence,
                                  f"train fewer epochs: {epochs_field(st.name)} {epochs} → {best_epoch} "
                                  f"(the best val loss came at epoch {best_epoch})",
                                  {"training": {epochs_field(st.name): best_epoch}}, st.name))
    return out


def out_of_memory(summary: RunSummary, cfg: KronosConfig) -> list[Suggestion]:
    """Q1: GPU out of memory → smaller batch with more accumulation (same effective batch)."""
    ooms = [e for e in summary.errors if e.get("kind") == "oom"]
    if not ooms:
        return []
    stage = ooms[-1].get("stage")
    t, d = cfg.training, cfg.distributed
    gpus = d.num_gpus * d.nodes
    evidence = f"{stage or 'run'}: CUDA out of memory ({str(ooms[-1].get('message', ''))[:120]})"
    if t.batch_size >= 2:
        batch, acc = t.batch_size // 2, t.accumulation_steps * 2
        before = t.batch_size * gpus * t.accumulation_steps
        after = batch * gpus * acc
        advice = (f"batch_size {t.batch_size} → {batch}, accumulation_steps {t.accumulation_steps} → {acc}: "
                  f"effective batch {t.batch_size} × {gpus} GPU(s) × {t.accumulation_steps} = {before} → "
                  f"{batch} × {gpus} × {acc} = {after}" + (" (unchanged)" if before == after else ""))
        return [Suggestion("oom-batch", "GPU out of memory", evidence, advice,
                           {"training": {"batch_size": batch, "accumulation_steps": acc}}, stage, "error")]
    window = cfg.data.lookback_window
    shorter = max(cfg.data.predict_window + 1, window // 2)
    return [Suggestion("oom-window", "GPU out of memory", evidence,
                       f"batch_size is already 1: shorten lookback_window {window} → {shorter} (guide Q1.3)",
                       {"data": {"lookback_window": shorter}}, stage, "error")]


def low_gpu_utilisation(summary: RunSummary, cfg: KronosConfig) -> list[Suggestion]:
    """Q2 / monitoring: utilisation under 80 % → more data workers, or a larger batch."""
    per_gpu = summary.recent_gpu_utils()
    if not per_gpu:
        return []
    mean = statistics.fmean(statistics.fmean(v) for v in per_gpu.values())
    if mean >= UTIL_TARGET:
        return []
    st = summary.active_stage()
    wait = st.data_wait if st else None
    evidence = f"GPU utilisation {mean:.0f} % (target > 80 %)" + (
        f"; {wait:.0%} of each step waits for data" if wait is not None else "")
    t = cfg.training
    workers = max(2, t.num_workers * 2)
    out = [Suggestion("gpu-workers", "GPUs are under-used", evidence,
                      f"more data-loader workers: num_workers {t.num_workers} → {workers} "
                      "(the guide: about half the CPU cores)", {"training": {"num_workers": workers}}, None)]
    shares = [s for _, _, _, s in list(summary.gpu_mem_share)[-200:]]
    if shares and max(shares) < 0.5:
        gpus = cfg.distributed.num_gpus * cfg.distributed.nodes
        batch = t.batch_size * 2
        out.append(Suggestion("gpu-batch", "GPUs are under-used", evidence + f"; memory at most {max(shares):.0%} used",
                              f"a larger batch: batch_size {t.batch_size} → {batch} (effective batch "
                              f"{t.batch_size * gpus * t.accumulation_steps} → {batch * gpus * t.accumulation_steps}); "
                              "watch the validation loss for over-fitting",
                              {"training": {"batch_size": batch}}, None, "warn"))
    # Waiting on data is the likelier cause: put the workers first only then.
    if wait is not None and wait < 0.1 and len(out) == 2:
        out.reverse()
    return out


RULES = (out_of_memory, val_plateau, overfitting, oscillating_loss, low_gpu_utilisation)


def diagnose(summary: RunSummary, cfg: KronosConfig) -> list[Suggestion]:
    """Every FAQ entry that applies to the run now, the most urgent first."""
    out: list[Suggestion] = []
    for rule in RULES:
        out.extend(rule(summary, cfg))
    return out


# --------------------------------------------------------------------------- writing

def suggested_preset(parent: str, suggestion: Suggestion) -> dict[str, Any]:
    """A preset that is the parent plus exactly this change."""
    return {"extends": parent, **suggestion.change}


def suggested_name(parent: str, suggestion: Suggestion, taken: set[str] | None = None) -> str:
    stem = Path(parent).stem if ("/" in parent or parent.endswith((".yaml", ".yml"))) else parent
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{suggestion.id}").strip("-")
    taken = taken or set()
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def write_suggested_preset(parent: str, suggestion: Suggestion, folder: Path,
                           taken: set[str] | None = None) -> Path:
    """Write ``<parent>-<id>.yaml`` into ``folder`` (a new name if that exists)."""
    folder = Path(folder)
    taken = set(taken or ()) | ({p.stem for p in folder.glob("*.yaml")} if folder.is_dir() else set())
    name = suggested_name(parent, suggestion, taken)
    return save_preset(folder / f"{name}.yaml", suggested_preset(parent, suggestion))


__all__ = ["Suggestion", "diagnose", "RULES", "val_plateau", "oscillating_loss", "overfitting", "out_of_memory",
           "low_gpu_utilisation", "suggested_preset", "suggested_name", "write_suggested_preset", "lr_field",
           "epochs_field", "StageSummary"]
