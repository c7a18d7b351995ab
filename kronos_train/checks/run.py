"""The "during" and "after" lines of the guide's checklist, judged from a run.

Everything here is a pure function of what a run left behind: its events,
folded by the control plane into a :class:`~kronos_train.control.summary.RunSummary`,
and its folder.

Light module: no torch.  The one line that needs torch, "the model loads for
inference", is answered by ``kronos-train check --json --run RUN`` in a
subprocess (``checks.out_of_process.run_model_check``); until that has run it
reports ``pending``.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from ..control.runfolder import RunFolder
from ..control.summary import GPU_WINDOW_S, RunSummary, summarize_run
from . import CheckResult

UTIL_TARGET = 80.0           # the guide: "GPU利用率 ... 应该保持在80%以上"
STALE_AFTER_S = 300.0        # no event for five minutes while alive: something hangs


# --------------------------------------------------------------------------- during

def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.4g}"


def check_loss_falling(summary: RunSummary) -> CheckResult:
    title = "Training loss falls"
    st = summary.active_stage()
    if st is None or len(st.early_losses) + len(st.recent_losses) < 10:
        return CheckResult("run.loss_falling", title, "pending", "fewer than 10 loss points so far", phase="during")
    # Compare the start of the curve with its recent end.
    head = [loss for _, loss in st.early_losses[:50]]
    tail = [loss for _, loss in list(st.recent_losses)[-50:]]
    first, last = statistics.fmean(head), statistics.fmean(tail)
    scale = max(abs(first), abs(last), 1e-8)
    change = (last - first) / scale
    detail = f"{st.name}: mean loss {_fmt(first)} at the start → {_fmt(last)} now ({change:+.1%})"
    if change < -0.01:
        return CheckResult("run.loss_falling", title, "ok", detail, phase="during", data={"change": change})
    return CheckResult("run.loss_falling", title, "warn", detail,
                       "if it stays flat: check the data, raise the learning rate a little (at most 2×); "
                       "if it rises: lower it 2–5×", phase="during", data={"change": change})


def check_val_falling(summary: RunSummary, patience: int | None = None) -> CheckResult:
    title = "Validation loss falls"
    st = summary.active_stage()
    vals = [v for v in (st.vals if st else []) if v["val_loss"] is not None]
    if st is None or len(vals) < 2:
        return CheckResult("run.val_falling", title, "pending", "needs two validation passes", phase="during")
    since_best = len(vals) - 1 - max(i for i, v in enumerate(vals) if v["val_loss"] == st.best_val)
    base = st.baseline_val if st.baseline_val is not None else vals[0]["val_loss"]
    detail = (f"{st.name}: best {_fmt(st.best_val)} at step {st.best_step} (start {_fmt(base)}); "
              f"last {_fmt(vals[-1]['val_loss'])}")
    limit = patience or 3
    if since_best == 0:
        return CheckResult("run.val_falling", title, "ok", detail, phase="during")
    status = "warn" if since_best >= min(2, limit) else "ok"
    return CheckResult("run.val_falling", title, status,
                       f"{detail}; no improvement for {since_best} evaluation(s)",
                       "the guide: lower the learning rate 2–5×, or stop early (see the advisor)" if status == "warn" else "",
                       phase="during", data={"since_best": since_best})


def check_gpu_utilisation(summary: RunSummary, window_s: float = GPU_WINDOW_S) -> CheckResult:
    title = "GPU utilisation above 80 %"
    per_gpu = summary.recent_gpu_utils(window_s)
    if not per_gpu:
        return CheckResult("run.gpu_util", title, "skip", "no GPU readings (CPU run, or no NVML on the node)",
                           phase="during")
    means = {key: statistics.fmean(v) for key, v in per_gpu.items()}
    items = [f"{host} GPU {index}: {mean:.0f} %" for (host, index), mean in sorted(means.items(), key=lambda kv: str(kv[0]))]
    overall = statistics.fmean(means.values())
    low = [k for k, m in means.items() if m < UTIL_TARGET]
    detail = f"mean {overall:.0f} % over the last {window_s:.0f} s on {len(means)} GPU(s)"
    if not low:
        return CheckResult("run.gpu_util", title, "ok", detail, phase="during", items=items)
    hint = "more data-loader workers (training.num_workers) or a larger batch; see the advisor"
    st = summary.active_stage()
    if st and st.data_wait is not None and st.data_wait > 0.2:
        hint = f"{st.data_wait:.0%} of step time waits for data: raise training.num_workers first"
    return CheckResult("run.gpu_util", title, "warn", f"{detail}; {len(low)} below 80 %", hint,
                       phase="during", items=items, data={"mean": overall})


def check_no_oom(summary: RunSummary) -> CheckResult:
    title = "No out-of-memory errors"
    ooms = [e for e in summary.errors if e.get("kind") == "oom"]
    others = [e for e in summary.errors if e.get("kind") != "oom"]
    if ooms:
        e = ooms[-1]
        remedy = e.get("remedy") or ["smaller batch_size with more accumulation_steps",
                                    "shorter lookback_window", "smaller max_context"]
        return CheckResult("run.no_oom", title, "error",
                           f"{e.get('stage') or 'run'}: {str(e.get('message', ''))[:200]}",
                           "; ".join(str(r) for r in remedy), phase="during", items=[str(r) for r in remedy])
    if others:
        e = others[-1]
        return CheckResult("run.no_oom", title, "warn", "no OOM, but another error: "
                           f"{e.get('kind')}: {str(e.get('message', ''))[:200]}",
                           "; ".join(str(r) for r in e.get("remedy") or []), phase="during")
    return CheckResult("run.no_oom", title, "ok", "no error recorded", phase="during")


def check_log_fresh(summary: RunSummary, *, now: float | None = None, alive: bool | None = None,
                    stale_after_s: float = STALE_AFTER_S) -> CheckResult:
    title = "The log is being written"
    if summary.last_t is None:
        return CheckResult("run.log_fresh", title, "pending", "no events yet", phase="during")
    if summary.finished:
        status = (summary.run_end or {}).get("status", "?")
        return CheckResult("run.log_fresh", title, "ok", f"the run ended ({status})", phase="during")
    now = time.time() if now is None else now
    age = max(0.0, now - summary.last_t)
    detail = f"last event {_age(age)} ago"
    if alive is False:
        return CheckResult("run.log_fresh", title, "error", f"{detail}; the supervisor is gone (interrupted)",
                           "resume the run (its last committed checkpoint is kept)", phase="during")
    if age > stale_after_s:
        return CheckResult("run.log_fresh", title, "warn", detail,
                           "no event for a while: a hung rank or an NCCL timeout? see stderr.log", phase="during")
    return CheckResult("run.log_fresh", title, "ok", detail, phase="during")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def during_checks(summary: RunSummary, *, now: float | None = None, alive: bool | None = None,
                  patience: int | None = None) -> list[CheckResult]:
    """The guide's "训练中" lines, in its order."""
    return [check_loss_falling(summary), check_val_falling(summary, patience), check_gpu_utilisation(summary),
            check_no_oom(summary), check_log_fresh(summary, now=now, alive=alive)]


# --------------------------------------------------------------------------- after

TRAINED = ("completed", "early_stopped", "stopped")


def check_models_saved(summary: RunSummary, run: RunFolder | None) -> CheckResult:
    title = "Model files saved"
    trained = [st for st in summary.stages.values() if st.status in TRAINED]
    if not trained:
        return CheckResult("run.models_saved", title, "pending", "no stage has finished yet", phase="after")
    found, missing = [], []
    for st in trained:
        folder = Path(st.best_path) if st.best_path else (run.checkpoint_dir(st.name, "best") if run and st.name in ("tokenizer", "basemodel") else None)
        if folder is not None and (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            found.append(f"{st.name}: {folder}")
        else:
            missing.append(f"{st.name}: {folder or 'no best/ folder recorded'}")
    if missing:
        return CheckResult("run.models_saved", title, "error", f"missing for {len(missing)} stage(s)",
                           "best/ needs config.json and model.safetensors; see stderr.log of the run",
                           phase="after", items=missing + found)
    return CheckResult("run.models_saved", title, "ok", f"{len(found)} model folder(s)", phase="after", items=found)


def check_val_beats_baseline(summary: RunSummary) -> CheckResult:
    title = "Validation loss better than before training"
    rows, worse = [], []
    for st in summary.stages.values():
        if st.best_val is None or st.baseline_val is None:
            continue
        gain = (st.baseline_val - st.best_val) / max(abs(st.baseline_val), 1e-12)
        rows.append(f"{st.name}: {_fmt(st.baseline_val)} → {_fmt(st.best_val)} ({-gain:+.1%})")
        if st.best_val >= st.baseline_val:
            worse.append(st.name)
    if not rows:
        return CheckResult("run.val_vs_baseline", title, "pending", "needs the baseline pass and one epoch",
                           phase="after")
    if worse:
        return CheckResult("run.val_vs_baseline", title, "warn", f"no gain for {', '.join(worse)}",
                           "fine-tuning did not beat the starting model: keep the pretrained one, or retry with a "
                           "much smaller learning rate (about 1e-5) and more epochs", phase="after", items=rows)
    return CheckResult("run.val_vs_baseline", title, "ok", "; ".join(rows), phase="after", items=rows)


def check_model_loads(model_check: list[CheckResult] | None) -> CheckResult:
    title = "The model loads for inference"
    if model_check is None:
        return CheckResult("run.model_loads", title, "pending", "not checked yet",
                           "run `kronos-train check --json --run RUN` (the checklist runs it for you)", phase="after")
    if model_check and all(r.status == "pending" for r in model_check):
        return CheckResult("run.model_loads", title, "pending", model_check[0].detail, model_check[0].hint,
                           phase="after")
    bad = [r for r in model_check if r.status == "error"]
    if bad:
        return CheckResult("run.model_loads", title, "error", bad[0].detail, bad[0].hint, phase="after",
                           items=[f"{r.title}: {r.detail}" for r in model_check])
    return CheckResult("run.model_loads", title, "ok", "; ".join(r.detail for r in model_check if r.detail)[:200]
                       or "loaded", phase="after", items=[f"{r.title}: {r.detail}" for r in model_check])


TRACKING_PREFIX = "tracking: "


def check_published(summary: RunSummary, run: RunFolder | None) -> CheckResult | None:
    """Where the run's curves were published (tracking.json), and what the trackers
    reported; None for a run that published nowhere and was not asked to."""
    from ..tracking.state import read_state

    published = read_state(run) if run is not None else {}
    problems = [str(r.get("message", ""))[len(TRACKING_PREFIX):] for r in summary.logs
                if r.get("level") == "warning" and str(r.get("message", "")).startswith(TRACKING_PREFIX)]
    if not published and not problems:
        return None
    title = "Published to trackers"
    items = [f"{name}: {entry.location}" + (f" (run {entry.run_id})" if entry.run_id else "")
             for name, entry in published.items()]
    if problems:
        return CheckResult("run.published", title, "warn", f"{len(problems)} tracker problem(s)",
                           "kronos-train export RUN --to TRACKER publishes the whole run from its folder",
                           phase="after", items=items + problems[-5:])
    return CheckResult("run.published", title, "ok", ", ".join(published), phase="after", items=items)


def after_checks(summary: RunSummary, run: RunFolder | None = None,
                 model_check: list[CheckResult] | None = None) -> list[CheckResult]:
    """The guide's "训练后" lines, in its order, then where the run was published."""
    results = [check_models_saved(summary, run), check_val_beats_baseline(summary), check_model_loads(model_check)]
    published = check_published(summary, run)
    return results + ([published] if published is not None else [])


def run_checks(run: RunFolder, *, now: float | None = None,
               model_check: list[CheckResult] | None = None) -> list[CheckResult]:
    """During and after lines of one run folder (reads its whole events file)."""
    summary = summarize_run(run)
    return during_checks(summary, now=now, alive=run.is_alive()) + after_checks(summary, run, model_check)


__all__ = ["during_checks", "after_checks", "run_checks",
           "check_loss_falling", "check_val_falling", "check_gpu_utilisation", "check_no_oom", "check_log_fresh",
           "check_models_saved", "check_val_beats_baseline", "check_model_loads"]
