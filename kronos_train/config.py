"""One typed config tree for a fine-tuning run, loaded from YAML presets.

The tree keeps every field of the seed guide's ``kaggle_config.yaml`` (the
official ``finetune_csv`` layout: ``data``, ``training``, ``model_paths``,
``experiment``, ``device``) with the same names, nesting and defaults, so a
user's existing file loads unchanged.  What the guide's advice needs on top
(schedules, early stopping, precision, distributed settings, evaluation) lives
in extra sections or extra fields next to the official ones.

Everything here is pure and light (no torch): the TUI calls ``load_preset``,
``validate``, ``merge`` and ``dump_yaml`` directly.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, get_origin, get_type_hints

import yaml

SCHEDULERS = ("onecycle", "constant", "cosine", "warmup_cosine", "plateau")
PRECISIONS = ("fp32", "bf16", "fp16")
BACKENDS = ("auto", "nccl", "gloo")
TRACKERS = ("tensorboard", "mlflow", "wandb")
TRACKING_PUBLISH = ("checkpointed", "immediate")
WANDB_MODES = ("", "online", "offline")


# --------------------------------------------------------------------------- tree

@dataclass
class SyntheticDataConfig:
    """Generate ``data_path`` when it is missing (the demo preset), with a
    planted, learnable pattern so a tiny model has something to find."""
    enabled: bool = False
    tickers: int = 24
    rows_per_ticker: int = 600
    seed: int = 7


@dataclass
class DataConfig:
    data_path: str = ""
    lookback_window: int = 256
    predict_window: int = 1
    max_context: int = 512
    clip: float = 5.0
    train_ratio: float = 0.9
    val_ratio: float = 0.1
    test_ratio: float = 0.0
    # Extensions: which column names the series when the file has several, and
    # the explicit promise that a file without one holds a single series.
    ticker_column: str = ""
    single_series: bool = False
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)


@dataclass
class SchedulerConfig:
    name: str = "onecycle"          # the official OneCycleLR is the default
    warmup_ratio: float = 0.03      # onecycle pct_start / warmup share of all steps
    min_lr_ratio: float = 1e-5      # floor of cosine schedules, relative to the peak
    plateau_factor: float = 0.5     # ReduceLROnPlateau: multiply the LR by this ...
    plateau_patience: int = 1       # ... after this many evaluations without progress


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    patience: int = 3               # guide: stop after 3-5 epochs without progress
    min_delta: float = 0.0          # an improvement must beat the best by more than this


@dataclass
class TrainingConfig:
    tokenizer_epochs: int = 20
    basemodel_epochs: int = 15
    batch_size: int = 32
    log_interval: int = 50
    num_workers: int = 4
    seed: int = 42
    tokenizer_learning_rate: float = 2e-4
    predictor_learning_rate: float = 4e-5
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_weight_decay: float = 0.1
    accumulation_steps: int = 1
    # Extensions for the guide's advice.
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    compile: bool = False              # torch.compile the training forward (warm-up cost; measure before use)
    tokenizer_grad_clip: float = 2.0   # official finetune scripts clip at 2.0 ...
    predictor_grad_clip: float = 3.0   # ... and 3.0
    teacher_forcing: bool = False      # official training samples s1 for the s2 head
    train_windows_per_epoch: int = 0   # 0 = every window once per epoch
    val_windows: int = 0               # 0 = every validation window
    checkpoint_every_steps: int = 0    # 0 = at epoch ends and stop requests only
    time_budget_minutes: float = 0.0   # 0 = none; else stop (resumable) once an attempt has run this long
    hang_timeout_minutes: float = 0.0  # 0 = automatic (see docs/reliability.md); no rank progressing this long = hang


@dataclass
class ModelPathsConfig:
    pretrained_tokenizer: str = ""
    pretrained_predictor: str = ""
    exp_name: str = "kaggle_stock_trends"
    base_path: str = ""
    base_save_path: str = ""
    finetuned_tokenizer: str = ""
    tokenizer_save_name: str = "tokenizer"
    basemodel_save_name: str = "basemodel"


@dataclass
class ArchitectureConfig:
    """Networks built from scratch when ``experiment.pre_trained*`` is false.

    A published configuration name (``Kronos-small``, ``tiny-predictor`` ...);
    empty means: take ``config.json`` from the pretrained folder, as upstream.
    """
    tokenizer: str = ""
    predictor: str = ""


@dataclass
class ExperimentConfig:
    name: str = "kaggle_stock_trends"
    description: str = ""
    use_comet: bool = False
    train_tokenizer: bool = True
    train_basemodel: bool = True
    skip_existing: bool = False
    pre_trained: bool = True
    pre_trained_tokenizer: bool = True
    pre_trained_predictor: bool = True


@dataclass
class DeviceConfig:
    use_cuda: bool = True
    device_id: int = 0


@dataclass
class DistributedConfig:
    use_ddp: bool = False           # read for compatibility; num_gpus decides
    backend: str = "auto"           # auto: nccl on GPU, gloo on CPU
    num_gpus: int = 1               # processes per node (CPU workers without GPUs)
    nodes: int = 1
    rdzv_endpoint: str = ""         # host:port for multi-node; empty = local free port
    timeout_minutes: int = 10


@dataclass
class EvaluationConfig:
    horizon: int = 30               # the Kaggle target: close 30 trading days ahead
    sample_count: int = 5
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 0
    max_windows: int = 2000         # cap on validation windows forecast per evaluation


@dataclass
class TrackingConfig:
    """Where rank 0 mirrors the events file live (docs/tracking.md); empty = nowhere."""
    report_to: list[str] = field(default_factory=list)   # any of TRACKERS
    tensorboard_dir: str = ""       # "" = <run folder>/tensorboard
    mlflow_tracking_uri: str = ""   # "" = $MLFLOW_TRACKING_URI (else MLflow's own default)
    experiment: str = ""            # "" = experiment.name (MLflow experiment, W&B group)
    mlflow_log_models: bool = False # upload each stage's best/ folder as artifacts
    wandb_project: str = ""         # "" = the experiment above
    wandb_mode: str = ""            # "" = $WANDB_MODE, else online
    publish: str = "checkpointed"   # checkpointed: a point goes out once a checkpoint covers it


@dataclass
class CheckpointConfig:
    keep_last: int = 2              # committed last/ checkpoints kept per stage: a resume falls back to the newest that verifies


@dataclass
class KronosConfig:
    extends: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    model_paths: ModelPathsConfig = field(default_factory=ModelPathsConfig)
    architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


# --------------------------------------------------------------------------- problems

@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a preset, phrased for the person who wrote it."""
    path: str            # dotted field path, e.g. "training.batch_size"
    value: Any
    message: str         # what is wrong and what is allowed
    source: str = ""     # file the value came from, when known
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path} = {self.value!r}: {self.message}"


class ConfigError(ValueError):
    """Raised by the strict helpers; carries every problem at once."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --------------------------------------------------------------------------- dict <-> tree

def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The tree as plain nested dicts (YAML-ready, key order as declared)."""
    return dataclasses.asdict(cfg)


# Whole numbers beyond this are typos (1e23 epochs); they would overflow torch's int64 later.
MAX_WHOLE_NUMBER = 2**53
MAX_EPOCHS = 1_000_000


def _coerce(value: Any, typ: Any, path: str, problems: list[ConfigProblem]) -> Any:
    """Check one scalar against its declared type; YAML's own types mostly fit."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        problems.append(ConfigProblem(path, value, "expected true or false"))
        return None
    if typ is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(ConfigProblem(path, value, "expected a whole number"))
            return None
        if abs(value) > MAX_WHOLE_NUMBER:
            problems.append(ConfigProblem(path, value, f"is too large: whole numbers here are at most "
                                          f"{MAX_WHOLE_NUMBER:,} (did an exponent slip in?)"))
            return None
        return value
    if typ is float:
        if isinstance(value, bool):
            problems.append(ConfigProblem(path, value, "expected a number"))
            return None
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads "2e-4" as a string; users write it that way all the time.
            try:
                return float(value)
            except ValueError:
                pass
        problems.append(ConfigProblem(path, value, "expected a number"))
        return None
    if get_origin(typ) is list:
        return _coerce_names(value, path, problems)
    if typ is str:
        if value is None:
            return ""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        problems.append(ConfigProblem(path, value, "expected text"))
        return None
    return value


def _coerce_names(value: Any, path: str, problems: list[ConfigProblem]) -> list[str] | None:
    """A list of names; a single name or nothing (null) is accepted as the list of it."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and all(isinstance(item, str) for item in items):
        return list(items)
    problems.append(ConfigProblem(path, value, "expected a list of names, e.g. [tensorboard, mlflow]"))
    return None


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}allowed here: {', '.join(allowed)}"


def _build(cls: type, raw: Any, prefix: str, problems: list[ConfigProblem]) -> Any:
    obj = cls()
    if raw is None:
        return obj
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(prefix or "<root>", raw, "expected a mapping of keys to values"))
        return obj
    types = _field_types(cls)
    for key, value in raw.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in types:
            problems.append(ConfigProblem(path, value, _did_you_mean(str(key), types)))
            continue
        typ = types[key]
        if is_dataclass(typ):
            setattr(obj, key, _build(typ, value, path, problems))
        else:
            coerced = _coerce(value, typ, path, problems)
            if coerced is not None:
                setattr(obj, key, coerced)
    return obj


def _apply_official_aliases(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept the spellings the official loader accepts, mapped onto our fields.

    ``training.epochs`` sets both stages; ``distributed.*`` and the
    ``pre_trained`` switch keep their upstream meaning.
    """
    raw = copy.deepcopy(raw)
    training = raw.get("training")
    if isinstance(training, dict) and "epochs" in training:
        epochs = training.pop("epochs")
        training.setdefault("tokenizer_epochs", epochs)
        training.setdefault("basemodel_epochs", epochs)
    experiment = raw.get("experiment")
    if isinstance(experiment, dict) and "pre_trained" in experiment:
        flag = experiment["pre_trained"]
        experiment.setdefault("pre_trained_tokenizer", flag)
        experiment.setdefault("pre_trained_predictor", flag)
    return raw


def from_dict(raw: dict[str, Any], source: str = "") -> tuple[KronosConfig, list[ConfigProblem]]:
    """Build the tree from a (merged) mapping; returns every problem found."""
    problems: list[ConfigProblem] = []
    cfg = _build(KronosConfig, _apply_official_aliases(raw or {}), "", problems)
    problems += validate(cfg)
    if source:
        problems = [dataclasses.replace(p, source=p.source or source) for p in problems]
    return cfg, problems


# --------------------------------------------------------------------------- validation

def _check(problems: list, ok: bool, path: str, value: Any, message: str, level: str = "error") -> None:
    if not ok:
        problems.append(ConfigProblem(path, value, message, level=level))  # type: ignore[arg-type]


def validate(cfg: KronosConfig) -> list[ConfigProblem]:
    """Every value-level problem of a built tree, errors and warnings together."""
    p: list[ConfigProblem] = []
    d, t, s, e = cfg.data, cfg.training, cfg.training.scheduler, cfg.training.early_stopping
    _check(p, d.lookback_window >= 1, "data.lookback_window", d.lookback_window, "must be at least 1 (the guide uses 256)")
    _check(p, d.predict_window >= 1, "data.predict_window", d.predict_window, "must be at least 1")
    _check(p, d.max_context >= 1, "data.max_context", d.max_context, "must be at least 1 (512 for Kronos-small/base, 2048 for Kronos-mini)")
    window = d.lookback_window + d.predict_window
    _check(p, window <= d.max_context, "data.lookback_window", d.lookback_window,
           f"lookback_window + predict_window = {window} exceeds max_context {d.max_context}; "
           "shorten the window or raise max_context")
    _check(p, d.synthetic.tickers >= 1, "data.synthetic.tickers", d.synthetic.tickers, "must be at least 1")
    _check(p, d.synthetic.rows_per_ticker >= 1, "data.synthetic.rows_per_ticker", d.synthetic.rows_per_ticker, "must be at least 1")
    _check(p, d.clip > 0, "data.clip", d.clip, "must be positive (the guide uses 5.0)")
    for name in ("train_ratio", "val_ratio", "test_ratio"):
        value = getattr(d, name)
        _check(p, 0.0 <= value <= 1.0, f"data.{name}", value, "must lie between 0 and 1")
    _check(p, d.train_ratio > 0, "data.train_ratio", d.train_ratio, "must be above 0: no rows would be left to train on")
    total = d.train_ratio + d.val_ratio + d.test_ratio
    _check(p, total <= 1.0 + 1e-9, "data.train_ratio", d.train_ratio,
           f"train_ratio + val_ratio + test_ratio = {total:g} exceeds 1")
    _check(p, d.val_ratio > 0, "data.val_ratio", d.val_ratio,
           "is 0: no validation loss, so no early stopping and no best model (upstream then saves epoch 1 forever)",
           level="warning")

    for name in ("tokenizer_epochs", "basemodel_epochs", "batch_size", "accumulation_steps", "log_interval"):
        value = getattr(t, name)
        _check(p, value >= 1, f"training.{name}", value, "must be at least 1")
    for name in ("tokenizer_epochs", "basemodel_epochs"):
        value = getattr(t, name)
        _check(p, value <= MAX_EPOCHS, f"training.{name}", value, f"must be at most {MAX_EPOCHS:,}")
    _check(p, t.hang_timeout_minutes >= 0, "training.hang_timeout_minutes", t.hang_timeout_minutes,
           "must be 0 (automatic, from the measured step time) or positive")
    _check(p, 1 <= cfg.checkpoint.keep_last <= 100, "checkpoint.keep_last", cfg.checkpoint.keep_last,
           "must lie between 1 (only the newest) and 100")
    _check(p, t.num_workers >= 0, "training.num_workers", t.num_workers, "must be 0 or more (the guide: half the CPU cores)")
    for name in ("tokenizer_learning_rate", "predictor_learning_rate"):
        value = getattr(t, name)
        _check(p, 0 < value < 1, f"training.{name}", value, "must lie between 0 and 1 (the guide: 2e-4 tokenizer, 4e-5 predictor)")
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(t, name)
        _check(p, 0 <= value < 1, f"training.{name}", value, "must lie in [0, 1)")
    _check(p, t.adam_weight_decay >= 0, "training.adam_weight_decay", t.adam_weight_decay, "must be 0 or more (the guide: 0.1, 0.2 against overfitting)")
    _check(p, t.precision in PRECISIONS, "training.precision", t.precision, f"allowed: {', '.join(PRECISIONS)}")
    for name in ("tokenizer_grad_clip", "predictor_grad_clip"):
        value = getattr(t, name)
        _check(p, value >= 0, f"training.{name}", value, "must be 0 (off) or positive")
    for name in ("train_windows_per_epoch", "val_windows", "checkpoint_every_steps"):
        value = getattr(t, name)
        _check(p, value >= 0, f"training.{name}", value, "must be 0 (off / all) or positive")
    _check(p, t.time_budget_minutes >= 0, "training.time_budget_minutes", t.time_budget_minutes,
           "must be 0 (no budget) or positive, e.g. 510 for a 9-hour Kaggle session with a margin")
    _check(p, s.name in SCHEDULERS, "training.scheduler.name", s.name, f"allowed: {', '.join(SCHEDULERS)}")
    _check(p, 0 <= s.warmup_ratio < 1, "training.scheduler.warmup_ratio", s.warmup_ratio, "must lie in [0, 1)")
    _check(p, 0 <= s.min_lr_ratio <= 1, "training.scheduler.min_lr_ratio", s.min_lr_ratio, "must lie in [0, 1]")
    _check(p, 0 < s.plateau_factor < 1, "training.scheduler.plateau_factor", s.plateau_factor, "must lie in (0, 1)")
    _check(p, s.plateau_patience >= 0, "training.scheduler.plateau_patience", s.plateau_patience, "must be 0 or more")
    _check(p, e.patience >= 1, "training.early_stopping.patience", e.patience, "must be at least 1 (the guide: 3-5)")
    _check(p, e.min_delta >= 0, "training.early_stopping.min_delta", e.min_delta, "must be 0 or more")

    dist = cfg.distributed
    _check(p, dist.backend in BACKENDS, "distributed.backend", dist.backend, f"allowed: {', '.join(BACKENDS)}")
    _check(p, dist.num_gpus >= 1, "distributed.num_gpus", dist.num_gpus, "must be at least 1")
    _check(p, dist.nodes >= 1, "distributed.nodes", dist.nodes, "must be at least 1")
    _check(p, dist.timeout_minutes >= 1, "distributed.timeout_minutes", dist.timeout_minutes, "must be at least 1")
    _check(p, dist.nodes == 1 or bool(dist.rdzv_endpoint), "distributed.rdzv_endpoint", dist.rdzv_endpoint,
           "several nodes need a rendezvous endpoint host:port reachable from every node")

    ev = cfg.evaluation
    _check(p, ev.horizon >= 1, "evaluation.horizon", ev.horizon, "must be at least 1 (the Kaggle target is 30 trading days)")
    _check(p, ev.sample_count >= 1, "evaluation.sample_count", ev.sample_count, "must be at least 1")
    _check(p, ev.temperature > 0, "evaluation.temperature", ev.temperature, "must be positive")
    _check(p, 0 < ev.top_p <= 1, "evaluation.top_p", ev.top_p, "must lie in (0, 1]")
    _check(p, ev.top_k >= 0, "evaluation.top_k", ev.top_k, "must be 0 (off) or positive")
    _check(p, ev.max_windows >= 1, "evaluation.max_windows", ev.max_windows, "must be at least 1")
    _check(p, d.predict_window == ev.horizon, "data.predict_window", d.predict_window,
           f"differs from evaluation.horizon = {ev.horizon}: the model is trained for a {d.predict_window}-step "
           f"target but judged {ev.horizon} steps ahead (the Kaggle competition scores the close 30 trading days on)",
           level="warning")

    p += validate_tracking(cfg.tracking)

    x = cfg.experiment
    _check(p, x.train_tokenizer or x.train_basemodel, "experiment.train_basemodel", x.train_basemodel,
           "both stages are switched off: nothing to train")
    needs_tok = x.pre_trained_tokenizer
    needs_pred = x.pre_trained_predictor and x.train_basemodel
    _check(p, not needs_tok or bool(cfg.model_paths.pretrained_tokenizer), "model_paths.pretrained_tokenizer", "",
           "is empty; point it at a downloaded Kronos-Tokenizer folder, or set experiment.pre_trained_tokenizer: false "
           "with architecture.tokenizer to train one from scratch")
    _check(p, not needs_pred or bool(cfg.model_paths.pretrained_predictor), "model_paths.pretrained_predictor", "",
           "is empty; point it at a downloaded Kronos-mini/small/base folder, or set experiment.pre_trained_predictor: false "
           "with architecture.predictor to train one from scratch")
    _check(p, not cfg.data.data_path == "", "data.data_path", "", "is empty; point it at a CSV, CSV.gz or Parquet file")
    return p


def validate_tracking(tr: TrackingConfig) -> list[ConfigProblem]:
    p: list[ConfigProblem] = []
    for name in tr.report_to:
        _check(p, name in TRACKERS, "tracking.report_to", tr.report_to,
               f"unknown tracker {name!r}; allowed: {', '.join(TRACKERS)}")
    _check(p, len(set(tr.report_to)) == len(tr.report_to), "tracking.report_to", tr.report_to,
           "names a tracker twice; list each once")
    _check(p, tr.publish in TRACKING_PUBLISH, "tracking.publish", tr.publish,
           f"allowed: {', '.join(TRACKING_PUBLISH)}")
    _check(p, tr.wandb_mode in WANDB_MODES, "tracking.wandb_mode", tr.wandb_mode,
           "allowed: online, offline, or empty for $WANDB_MODE")
    _check(p, not tr.mlflow_log_models or "mlflow" in tr.report_to, "tracking.mlflow_log_models", True,
           "has no effect without mlflow in tracking.report_to", level="warning")
    return p


def errors_of(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    return [p for p in problems if p.level == "error"]


# --------------------------------------------------------------------------- presets and extends

PRESET_SUFFIXES = (".yaml", ".yml")


def bundled_presets_dir() -> Path:
    """Presets shipped with the package: ``kronos_train/presets`` is a link to
    the repo's top-level ``presets/`` and a real folder inside the wheel."""
    return Path(__file__).resolve().parent / "presets"


def user_presets_dir() -> Path:
    base = os.environ.get("KRONOS_TUI_PRESETS")
    if base:
        return Path(base).expanduser()
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "kronos-tui" / "presets"


def preset_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Search order: explicit folders, the user's folder, ./presets, the bundled ones."""
    dirs = [Path(p) for p in extra] + [user_presets_dir(), Path.cwd() / "presets", bundled_presets_dir()]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != s.resolve() for s in seen):
            seen.append(d)
    return seen


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    origin: str          # "project", "user" or "bundled"


def list_presets(extra: Iterable[Path] = ()) -> list[PresetInfo]:
    """Every preset by name; an earlier folder shadows a later one of the same name."""
    found: dict[str, PresetInfo] = {}
    user = user_presets_dir().resolve() if user_presets_dir().is_dir() else None
    bundled = bundled_presets_dir().resolve()
    for folder in preset_dirs(extra):
        origin = "bundled" if folder.resolve() == bundled else "user" if folder.resolve() == user else "project"
        for path in sorted(folder.iterdir()):
            if path.suffix in PRESET_SUFFIXES and path.stem not in found:
                found[path.stem] = PresetInfo(path.stem, path, origin)
    return sorted(found.values(), key=lambda p: p.name)


def resolve_preset_path(name_or_path: str | os.PathLike, extra: Iterable[Path] = (), relative_to: Path | None = None) -> Path:
    """A file path as given, or a preset name looked up in the preset folders."""
    candidate = Path(name_or_path).expanduser()
    if relative_to is not None and not candidate.is_absolute():
        beside = relative_to / candidate
        for path in (beside, beside.with_suffix(".yaml")):
            if path.is_file():
                return path
    if candidate.is_file():
        return candidate
    for info in list_presets(extra):
        if info.name == str(name_or_path):
            return info.path
    names = [p.name for p in list_presets(extra)]
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError([ConfigProblem("extends" if relative_to else "config", str(name_or_path),
                                     f"no such preset or file.{hint} Known presets: {', '.join(names) or 'none'}")])


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML file into a mapping, turning parser errors into a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("<file>", str(path), f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem("<file>", str(path), f"is not UTF-8 text (byte {exc.start}: "
                                         f"{exc.object[exc.start:exc.start + 1]!r}); a preset is a YAML text file",
                                         source=str(path))]) from None
    return parse_yaml(text, source=str(path))


def parse_yaml(text: str, source: str = "") -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("<yaml>", "", f"{where}{problem}; fix the YAML syntax", source=source)]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem("<root>", raw, "a preset must be a mapping of sections", source=source)])
    return raw


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``override`` wins."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw_chain(name_or_path: str | os.PathLike, extra: Iterable[Path] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The preset and its ``extends`` ancestors, child first; cycles refused."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    path = resolve_preset_path(name_or_path, extra)
    while True:
        if any(path.resolve() == seen.resolve() for seen, _ in chain):
            names = " -> ".join(p.stem for p, _ in chain) + f" -> {path.stem}"
            raise ConfigError([ConfigProblem("extends", path.stem, f"inheritance cycle: {names}; remove one of the extends", source=str(chain[-1][0]))])
        raw = read_yaml(path)
        chain.append((path, raw))
        parent = raw.get("extends")
        if not parent:
            return chain
        if not isinstance(parent, str):
            raise ConfigError([ConfigProblem("extends", parent, "must be the name of one preset", source=str(path))])
        path = resolve_preset_path(parent, extra, relative_to=path.parent)


def merged_raw(chain: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, raw in reversed(chain):
        merged = merge(merged, raw)
    merged["extends"] = chain[0][1].get("extends", "") or ""
    return merged


def load_preset(name_or_path: str | os.PathLike, extra: Iterable[Path] = ()) -> tuple[KronosConfig, list[ConfigProblem]]:
    """Load a preset by name or path, with its extends chain, and validate it.

    Never raises for bad content: YAML errors, unknown keys, bad values and
    broken ``extends`` all come back as problems (the config is then the
    defaults where a value was unusable).
    """
    try:
        chain = load_raw_chain(name_or_path, extra)
    except ConfigError as exc:
        return KronosConfig(), exc.problems
    cfg, problems = from_dict(merged_raw(chain), source=str(chain[0][0]))
    resolve_relative_paths(cfg, chain[0][0].parent)
    return cfg, problems


def load_preset_strict(name_or_path: str | os.PathLike, extra: Iterable[Path] = ()) -> KronosConfig:
    cfg, problems = load_preset(name_or_path, extra)
    if errors_of(problems):
        raise ConfigError(errors_of(problems))
    return cfg


# The fields that hold paths (section, field): expanded on load, made absolute when a run is
# created, compared as paths rather than text when two runs are diffed.
PATH_FIELDS = (("data", "data_path"), ("model_paths", "pretrained_tokenizer"), ("model_paths", "pretrained_predictor"),
               ("model_paths", "base_path"), ("model_paths", "base_save_path"), ("model_paths", "finetuned_tokenizer"))


def resolve_relative_paths(cfg: KronosConfig, base: Path) -> None:
    """Leave paths as written; only expand ``~`` and environment variables.

    Relative paths stay relative to the working directory, as with the
    official scripts, so a user's file behaves the same here.
    """
    for section, name in PATH_FIELDS:
        obj = getattr(cfg, section)
        value = getattr(obj, name)
        if value:
            setattr(obj, name, os.path.expandvars(os.path.expanduser(value)))


# --------------------------------------------------------------------------- saving and diffs

def dump_yaml(data: dict[str, Any] | KronosConfig) -> str:
    if is_dataclass(data):
        data = to_dict(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def save_preset(path: Path, raw: dict[str, Any]) -> Path:
    """Write a preset atomically (temp file, then rename): never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_yaml(raw), encoding="utf-8")
    os.replace(tmp, path)
    return path


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def diff(a: dict[str, Any] | KronosConfig, b: dict[str, Any] | KronosConfig) -> list[tuple[str, Any, Any]]:
    """Leaf-level differences ``(path, a_value, b_value)`` in field order."""
    fa = flatten(to_dict(a) if is_dataclass(a) else a)
    fb = flatten(to_dict(b) if is_dataclass(b) else b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k), fb.get(k)) for k in keys if k != "extends" and fa.get(k) != fb.get(k)]


def config_hash(cfg: KronosConfig) -> str:
    """Stable hash of the resolved tree (what a checkpoint was taken under)."""
    return hashlib.sha256(dump_yaml(cfg).encode()).hexdigest()[:16]


def world_size(cfg: KronosConfig) -> int:
    """Processes in each stage's process group: per node times nodes."""
    return cfg.distributed.num_gpus * cfg.distributed.nodes


def get_field(cfg: KronosConfig, path: str) -> Any:
    obj: Any = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def field_paths(cls: type = KronosConfig, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf field path with its declared type, for forms and docs."""
    out: list[tuple[str, Any]] = []
    for f in fields(cls):
        typ = _field_types(cls)[f.name]
        path = f"{prefix}.{f.name}" if prefix else f.name
        if is_dataclass(typ):
            out += field_paths(typ, path)
        else:
            out.append((path, typ))
    return out


def validate_raw(raw: dict[str, Any], source: str = "") -> list[ConfigProblem]:
    """Problems of a raw mapping (used by the form and the YAML editor as you type)."""
    return from_dict(raw, source)[1]


__all__ = [
    "KronosConfig", "DataConfig", "SyntheticDataConfig", "TrainingConfig", "SchedulerConfig", "EarlyStoppingConfig",
    "ModelPathsConfig", "ArchitectureConfig", "ExperimentConfig", "DeviceConfig",
    "DistributedConfig", "EvaluationConfig", "TrackingConfig", "ConfigProblem", "ConfigError", "PresetInfo",
    "from_dict", "to_dict", "validate", "validate_raw", "errors_of", "load_preset", "load_preset_strict",
    "load_raw_chain", "merged_raw", "merge", "read_yaml", "parse_yaml", "dump_yaml", "save_preset",
    "diff", "flatten", "config_hash", "world_size", "list_presets", "preset_dirs", "resolve_preset_path",
    "bundled_presets_dir", "user_presets_dir", "get_field", "field_paths",
    "SCHEDULERS", "PRECISIONS", "BACKENDS", "TRACKERS", "TRACKING_PUBLISH", "validate_tracking",
]
