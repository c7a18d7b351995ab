"""The guide's "before training" checklist (训练前), as pure check functions.

Each ``check_*`` takes the resolved config (and what else it needs) and returns
one ``CheckResult``.  They come in three parts a caller may run apart (the TUI
runs each in its own thread): ``quick_checks``, ``data_checks`` (parses the data
file) and ``check_models`` (loads the networks); ``run_pre_checks`` runs them
one after the other, in the guide's order (``in_guide_order``).  Only
``check_models`` touches torch, imported inside the function.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..architectures import ARCHITECTURES, count_params, kind_of_config, resolve_architecture
from ..config import ConfigProblem, KronosConfig, errors_of, validate, world_size
from ..control.runfolder import data_cache_dir
from . import CheckResult

# Rough training throughputs for the time estimate, in FLOP/s per device.  The
# CPU figure is what the official tiny networks reach on this project's 2-core
# machines (official-baselines.md: 98.9 samples/s x 0.26 GFLOP/sample ~ 26 GFLOP/s,
# i.e. ~13 GFLOP/s per core); the GPU figures assume a modest utilisation of a
# current data-centre card, since 5-100M-parameter models rarely fill one.
CPU_FLOPS_PER_CORE = 13e9
GPU_FLOPS = {"fp32": 15e12, "bf16": 60e12, "fp16": 60e12}


# --------------------------------------------------------------------------- config

def check_config(cfg: KronosConfig, problems: list[ConfigProblem] | None = None) -> CheckResult:
    problems = validate(cfg) if problems is None else problems
    errors = errors_of(problems)
    warnings = [p for p in problems if p.level == "warning"]
    items = [str(p) for p in errors + warnings]
    if errors:
        return CheckResult("config.valid", "Config file valid", "error", f"{len(errors)} error(s), {len(warnings)} warning(s)",
                           "fix the fields listed; every problem names the field, its value and what is allowed", items=items)
    if warnings:
        return CheckResult("config.valid", "Config file valid", "warn", f"{len(warnings)} warning(s)",
                           "the run can start; read the warnings first", items=items)
    return CheckResult("config.valid", "Config file valid", "ok", "every field has an allowed value")


# --------------------------------------------------------------------------- data

def data_spec(cfg: KronosConfig) -> Any:
    from ..data import DataSpec

    return DataSpec.from_config(cfg.data)


def check_data_present(cfg: KronosConfig) -> CheckResult:
    title = "Data prepared (file present)"
    path = Path(cfg.data.data_path)
    if not cfg.data.data_path:
        return CheckResult("data.present", title, "error", "data.data_path is empty",
                           "set data.data_path to your train.csv / train_combined.csv (CSV, CSV.gz or Parquet)")
    if path.is_file():
        return CheckResult("data.present", title, "ok", f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    if path.exists() and not path.is_dir():
        return CheckResult("data.present", title, "error",
                           f"{path} is not a regular file (a device, pipe or socket): it cannot be read as data",
                           "point data.data_path at one CSV, CSV.gz or Parquet file")
    if cfg.data.synthetic.enabled:
        s = cfg.data.synthetic
        return CheckResult("data.present", title, "info",
                           f"{path} will be generated: {s.tickers} tickers x {s.rows_per_ticker} rows (seed {s.seed})")
    if path.is_dir():
        return CheckResult("data.present", title, "error", f"{path} is a folder, not a file",
                           "point data.data_path at one CSV, CSV.gz or Parquet file")
    return CheckResult("data.present", title, "error", f"{path} does not exist (working directory {Path.cwd()})",
                       "check the path; relative paths are taken from the folder you start kronos-train/kronos-tui in")


def check_data(cfg: KronosConfig, report: Any | None = None, cache_dir: Path | None = None) -> CheckResult:
    """Data format validated (数据格式验证通过): the data report's errors and warnings."""
    title = "Data format valid"
    path = Path(cfg.data.data_path)
    if not path.is_file():
        if cfg.data.synthetic.enabled:
            return CheckResult("data.valid", title, "skip", "generated data is validated when the run starts")
        return CheckResult("data.valid", title, "skip", "no data file to validate")
    if report is None:
        from ..data import inspect_data

        report = inspect_data(data_spec(cfg), cache_dir=cache_dir)
    items = [_issue_line(i) for i in list(report.errors) + list(report.warnings)]
    figures = (f"{report.n_rows:,} rows, {report.n_tickers:,} tickers, "
               f"{report.n_train_windows:,} train / {report.n_val_windows:,} val windows")
    data = {"n_rows": report.n_rows, "n_tickers": report.n_tickers,
            "n_train_windows": report.n_train_windows, "n_val_windows": report.n_val_windows}
    if report.errors:
        return CheckResult("data.valid", title, "error", f"{len(report.errors)} error(s); {figures}",
                           "fix the file as each line says; nothing is launched until it validates", items=items, data=data)
    if report.warnings:
        return CheckResult("data.valid", title, "warn", f"{len(report.warnings)} automatic fix(es); {figures}",
                           "each warning says what was fixed; check they are what you want", items=items, data=data)
    return CheckResult("data.valid", title, "ok", figures, data=data)


def _issue_line(issue: Any) -> str:
    text = f"{issue.level}: {issue.message}"
    return f"{text} → {issue.hint}" if getattr(issue, "hint", "") else text


# --------------------------------------------------------------------------- models

def _read_model_config(folder: str) -> tuple[dict[str, Any] | None, str]:
    path = Path(folder)
    if not path.exists():
        return None, f"{path} does not exist"
    if not path.is_dir():
        return None, f"{path} is not a folder (expected a model folder with config.json + model.safetensors)"
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        return None, f"{path} has no config.json: not a downloaded Kronos model folder"
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{cfg_file} is not valid JSON ({exc})"
    if not ((path / "model.safetensors").is_file() or (path / "pytorch_model.bin").is_file()):
        return None, f"{path} has no model.safetensors or pytorch_model.bin: the download is incomplete"
    return config, ""


def model_configs(cfg: KronosConfig) -> tuple[dict[str, Any] | None, dict[str, Any] | None, list[str]]:
    """The tokenizer and predictor configs the run will start from, and what is wrong."""
    problems: list[str] = []
    configs: list[dict[str, Any] | None] = []
    for kind, pre, folder, arch in (
        ("tokenizer", cfg.experiment.pre_trained_tokenizer, cfg.model_paths.pretrained_tokenizer, cfg.architecture.tokenizer),
        ("predictor", cfg.experiment.pre_trained_predictor, cfg.model_paths.pretrained_predictor, cfg.architecture.predictor),
    ):
        config: dict[str, Any] | None = None
        if pre or not arch:
            if not folder:
                problems.append(f"model_paths.pretrained_{kind} is empty")
            else:
                config, why = _read_model_config(folder)
                if why:
                    problems.append(f"model_paths.pretrained_{kind}: {why}")
        else:
            try:
                config = resolve_architecture(arch)
            except KeyError as exc:
                problems.append(f"architecture.{kind}: {exc.args[0]}")
        if config is not None and kind_of_config(config) != kind:
            found = kind_of_config(config) or "neither a tokenizer nor a predictor"
            problems.append(f"the {kind} folder holds a {found} config; swap the two paths or fix the download")
            config = None
        configs.append(config)
    return configs[0], configs[1], problems


def check_model_paths(cfg: KronosConfig) -> CheckResult:
    """Pretrained model paths correct (预训练模型路径正确), from config.json alone (no torch)."""
    title = "Pretrained model paths correct"
    tok, pred, problems = model_configs(cfg)
    if problems:
        return CheckResult("models.paths", title, "error", "; ".join(problems),
                           "download Kronos-Tokenizer-base and Kronos-small/base (or -2k and -mini) yourself and point "
                           "model_paths.pretrained_tokenizer / pretrained_predictor at the folders")
    pair = pair_problems(tok, pred, cfg.data.max_context, cfg.data.lookback_window + cfg.data.predict_window)
    errors = [m for level, m in pair if level == "error"]
    warnings = [m for level, m in pair if level == "warning"]
    detail = (f"tokenizer {count_params(tok):,} params ({tok['s1_bits']}+{tok['s2_bits']} bits), "
              f"predictor {count_params(pred):,} params")
    data = {"tokenizer_params": count_params(tok), "predictor_params": count_params(pred)}
    if errors:
        return CheckResult("models.paths", title, "error", detail, "use a tokenizer and predictor trained together",
                           items=errors + warnings, data=data)
    if warnings:
        return CheckResult("models.paths", title, "warn", detail, "see the lines below", items=warnings, data=data)
    return CheckResult("models.paths", title, "ok", detail, data=data)


def pair_problems(tok: dict[str, Any], pred: dict[str, Any], max_context: int, window: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if (tok.get("s1_bits"), tok.get("s2_bits")) != (pred.get("s1_bits"), pred.get("s2_bits")):
        out.append(("error", f"tokenizer bits {tok.get('s1_bits')}/{tok.get('s2_bits')} do not match predictor bits "
                             f"{pred.get('s1_bits')}/{pred.get('s2_bits')}: they were not trained together"))
    published = _published_context(pred)
    if published and max_context > published:
        out.append(("warning", f"data.max_context {max_context} exceeds the {published} positions this predictor was "
                               f"trained with; forecasts past it are untested"))
    if window > max_context:
        out.append(("error", f"the training window ({window}) is longer than max_context ({max_context})"))
    return out


def _published_context(pred: dict[str, Any]) -> int | None:
    for arch in ARCHITECTURES.values():
        if arch.kind == "predictor" and arch.context and all(arch.config.get(k) == pred.get(k)
                                                               for k in ("d_model", "n_layers", "n_heads", "ff_dim")):
            return arch.context
    return None


def check_models(cfg: KronosConfig) -> CheckResult:
    """The networks load (with torch) and fit together: the slow, heavy check."""
    title = "Pretrained models load and fit together"
    tok_cfg, pred_cfg, problems = model_configs(cfg)
    if problems:
        return CheckResult("models.load", title, "error", "; ".join(problems), "fix the model paths first")
    from ..model import ModelLoadError, build_predictor, build_tokenizer, load_predictor, load_tokenizer

    try:
        tok = (load_tokenizer(cfg.model_paths.pretrained_tokenizer) if cfg.experiment.pre_trained_tokenizer
               else build_tokenizer(tok_cfg))
        pred = (load_predictor(cfg.model_paths.pretrained_predictor) if cfg.experiment.pre_trained_predictor
                else build_predictor(pred_cfg))
    except ModelLoadError as exc:
        return CheckResult("models.load", title, "error", str(exc), "re-download the folder or fix the path")
    n_tok = sum(p.numel() for p in tok.parameters())
    n_pred = sum(p.numel() for p in pred.parameters())
    return CheckResult("models.load", title, "ok", f"tokenizer {n_tok:,} and predictor {n_pred:,} parameters loaded")


# --------------------------------------------------------------------------- machine

def check_output(cfg: KronosConfig, logs_dir: Path) -> CheckResult:
    """Config paths correct (配置文件路径正确): the run folder and save paths are writable."""
    title = "Output folders writable"
    targets = [Path(logs_dir)]
    if cfg.model_paths.base_save_path or cfg.model_paths.base_path:
        targets.append(Path(cfg.model_paths.base_save_path or cfg.model_paths.base_path))
    bad = [str(t) for t in targets if not _writable(t)]
    if bad:
        return CheckResult("paths.output", title, "error", f"cannot write to {', '.join(bad)}",
                           "choose a folder you own (--logs DIR, model_paths.base_path)")
    created = folder_created_here(cfg)
    if created:
        return CheckResult("paths.output", title, "warn", created_folder_words(created),
                           "set model_paths.base_path to an absolute folder, or to \"\" to keep the models "
                           "in the run folder only")
    return CheckResult("paths.output", title, "ok", ", ".join(str(t) for t in targets))


def folder_created_here(cfg: KronosConfig) -> Path | None:
    """The folder a relative ``base_path``/``base_save_path`` (often inherited, e.g. the
    kaggle preset's ``./kaggle_finetuned/``) makes in the working directory for the
    official best_model export, when it does not exist yet."""
    from ..control.run_config import official_save_root

    root = official_save_root(cfg)
    if root is None or root.is_absolute() or not root.parts:
        return None
    top = Path(root.parts[0])
    return None if top.exists() else top


def created_folder_words(folder: Path) -> str:
    return f"creates ./{folder}/ in the working directory {Path.cwd()} (model_paths.base_path: the official best_model export)"


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def check_gpus(cfg: KronosConfig, nvml: Any | None = None) -> CheckResult:
    """GPU available and count correct (GPU可用且数量正确)."""
    from ..control.gpu import GpuMonitor

    title = "GPUs available for the requested count"
    wanted = cfg.distributed.num_gpus
    snap = GpuMonitor(nvml).sample()
    if not cfg.device.use_cuda:
        return CheckResult("gpus.count", title, "info", f"device.use_cuda is false: {wanted} CPU worker process(es), gloo")
    if snap.count == 0:
        return CheckResult("gpus.count", title, "warn",
                           f"{snap.reason or 'no NVIDIA GPU found'}; the run would use {wanted} CPU worker process(es)",
                           "run on a GPU node, or set device.use_cuda: false to train on CPU knowingly")
    names = ", ".join(sorted({g.name or "?" for g in snap.gpus}))
    if wanted > snap.count:
        return CheckResult("gpus.count", title, "error", f"{wanted} requested, {snap.count} present ({names})",
                           f"use --num-gpus {snap.count} or fewer (like train_kaggle.sh, which caps at nvidia-smi's count)")
    busy = [g.index for g in snap.gpus if (g.mem_used_mb or 0) > 0.5 * (g.mem_total_mb or float("inf"))]
    if busy:
        return CheckResult("gpus.count", title, "warn", f"{snap.count} present ({names}); GPU {busy} already over half full",
                           "another job is using them: expect OOM or slow steps")
    return CheckResult("gpus.count", title, "ok", f"{wanted} of {snap.count} GPU(s): {names}")


def checkpoint_bytes(params: int) -> int:
    """``last/`` holds weights + two AdamW moments (fp32); ``best/`` the weights."""
    return params * 4 * 4


def check_disk(cfg: KronosConfig, logs_dir: Path) -> CheckResult:
    title = "Disk room for checkpoints"
    tok, pred, problems = model_configs(cfg)
    if tok is None and pred is None:
        return CheckResult("disk.room", title, "skip", "model sizes unknown until the model paths are fixed")
    need = sum(checkpoint_bytes(count_params(c)) for c in (tok, pred) if c is not None)
    probe = Path(logs_dir)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    detail = f"{free / 2**30:.1f} GiB free at {probe}, checkpoints need about {need / 2**30:.2f} GiB"
    if free < need * 2:
        return CheckResult("disk.room", title, "error", detail, "free disk space or choose another --logs folder")
    if free < need * 10:
        return CheckResult("disk.room", title, "warn", detail, "little room left for more runs")
    return CheckResult("disk.room", title, "ok", detail)


def check_batch_and_time(cfg: KronosConfig, data_report: Any | None = None) -> CheckResult:
    """Effective batch, steps per epoch and a rough time estimate."""
    t = cfg.training
    ws = world_size(cfg)
    effective = t.batch_size * ws * t.accumulation_steps
    detail = f"effective batch {t.batch_size} x {ws} process(es) x {t.accumulation_steps} accumulation = {effective}"
    data: dict[str, Any] = {"effective_batch": effective, "world_size": ws}
    if data_report is None or not getattr(data_report, "n_train_windows", 0):
        return CheckResult("batch.time", "Effective batch, steps and time", "info", detail + "; steps need the data check",
                           data=data)
    windows = data_report.n_train_windows
    if t.train_windows_per_epoch:
        windows = min(windows, t.train_windows_per_epoch)
    steps = windows // effective
    data.update(steps_per_epoch=steps, windows_per_epoch=windows)
    if steps == 0:
        return CheckResult("batch.time", "Effective batch, steps and time", "error",
                           f"{detail}; {windows} training windows make no full step",
                           "lower batch_size or accumulation_steps, or add data", data=data)
    estimate = estimate_hours(cfg, windows)
    data["estimate_hours"] = estimate
    text = f"{detail}; {steps:,} steps/epoch"
    hint = "the time is a FLOP-count estimate; benchmarks/bench_train.py measures the real rate"
    if estimate is None:
        return CheckResult("batch.time", "Effective batch, steps and time", "info", text, hint, data=data)
    text += f"; roughly {_fmt_hours(estimate['tokenizer'])} tokenizer + {_fmt_hours(estimate['basemodel'])} basemodel"
    budget_hours = t.time_budget_minutes / 60
    if budget_hours and estimate["tokenizer"] + estimate["basemodel"] > budget_hours:
        return CheckResult("batch.time", "Effective batch, steps and time", "warn",
                           f"{text}: more than the time budget of {_fmt_hours(budget_hours)}",
                           "the run will stop at the budget with a checkpoint; resume it in the next session "
                           "(or shorten it: fewer epochs, train_windows_per_epoch)", data=data)
    return CheckResult("batch.time", "Effective batch, steps and time", "info", text, hint, data=data)


def estimate_hours(cfg: KronosConfig, windows_per_epoch: int) -> dict[str, float] | None:
    tok, pred, _ = model_configs(cfg)
    if tok is None or pred is None:
        return None
    tokens = cfg.data.lookback_window + cfg.data.predict_window + 1
    gpu = cfg.device.use_cuda
    rate = GPU_FLOPS[cfg.training.precision] if gpu else CPU_FLOPS_PER_CORE * max(1, (os.cpu_count() or 2) // world_size(cfg))
    rate *= world_size(cfg)
    n_tok, n_pred = count_params(tok), count_params(pred)
    tok_flops = 6 * n_tok * tokens * windows_per_epoch * cfg.training.tokenizer_epochs
    # The basemodel stage also runs the frozen tokenizer's encoder forward (~1/3 of 2 x params).
    pred_flops = (6 * n_pred + n_tok) * tokens * windows_per_epoch * cfg.training.basemodel_epochs
    return {"tokenizer": tok_flops / rate / 3600, "basemodel": pred_flops / rate / 3600}


def _fmt_hours(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


# --------------------------------------------------------------------------- trackers

def check_tracking(cfg: KronosConfig) -> CheckResult | None:
    """The trackers of tracking.report_to are installed (found without importing them)."""
    from ..tracking import install_line, missing_packages

    tr = cfg.tracking
    if not tr.report_to:
        return None
    title = "Trackers installed"
    missing = missing_packages(tr.report_to)
    if missing:
        return CheckResult("tracking.installed", title, "warn", f"not installed: {', '.join(missing)}",
                           "; ".join(install_line(name) for name in missing) + " (the run goes on without them)",
                           items=[install_line(name) for name in missing])
    notes = []
    if "mlflow" in tr.report_to and not (tr.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
        notes.append("mlflow: no tracking.mlflow_tracking_uri nor $MLFLOW_TRACKING_URI: MLflow's own default "
                     "store in the trainer's working folder")
    return CheckResult("tracking.installed", title, "ok", ", ".join(tr.report_to), items=notes)


# --------------------------------------------------------------------------- all

# The guide's order of the "before" lines, by CheckResult id.
BEFORE_ORDER = ("config.valid", "data.present", "data.valid", "models.paths", "models.load", "paths.output",
                "gpus.count", "disk.room", "batch.time", "tracking.installed")


def quick_checks(cfg: KronosConfig, *, logs_dir: Path, problems: list[ConfigProblem] | None = None,
                 nvml: Any | None = None) -> list[CheckResult]:
    """The lines that read no file's content: fast enough for every preset switch.
    (The time estimate here assumes no data report; ``data_checks`` refines it.)"""
    results = [check_config(cfg, problems), check_data_present(cfg), check_model_paths(cfg),
               check_output(cfg, logs_dir), check_gpus(cfg, nvml), check_disk(cfg, logs_dir),
               check_batch_and_time(cfg, None)]
    tracking = check_tracking(cfg)
    return results + ([tracking] if tracking is not None else [])


def data_checks(cfg: KronosConfig, *, logs_dir: Path) -> list[CheckResult]:
    """Validate the data file, and the time estimate from its real window count."""
    if not Path(cfg.data.data_path).is_file():
        return [check_data(cfg)]
    from ..data import inspect_data

    # Shares the trainer's cache: a file validated here is not parsed again at launch.
    report = inspect_data(data_spec(cfg), cache_dir=data_cache_dir(logs_dir))
    return [check_data(cfg, report), check_batch_and_time(cfg, report)]


def in_guide_order(results: list[CheckResult]) -> list[CheckResult]:
    """One line per check id (a later result refines an earlier one), in the guide's order."""
    by_id = {r.id: r for r in results}
    rank = {key: i for i, key in enumerate(BEFORE_ORDER)}
    return sorted(by_id.values(), key=lambda r: rank.get(r.id, len(rank)))


def run_pre_checks(cfg: KronosConfig, *, logs_dir: Path, problems: list[ConfigProblem] | None = None,
                   include_data: bool = True, include_models: bool = False, nvml: Any | None = None) -> list[CheckResult]:
    """The whole "before" checklist, in the guide's order: the parts above, run one after the other."""
    results = quick_checks(cfg, logs_dir=logs_dir, problems=problems, nvml=nvml)
    if include_data:
        results += data_checks(cfg, logs_dir=logs_dir)
    if include_models:
        results.append(check_models(cfg))
    return in_guide_order(results)
