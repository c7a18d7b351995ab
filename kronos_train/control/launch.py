"""Create, start and resume runs: what ``kronos-train run/resume`` and the TUI call.

    run = create_run("demo", Path("logs"), num_gpus=2)   # validates; LaunchError lists every problem
    pid = start_supervisor(run)                          # detached: its own session, output to files
    ...
    resume_run(run)                                      # refuses when an exact resume is impossible

Nothing starts on an error: config problems, the data report's errors, model
folders that do not exist, more GPUs than the node has.  The CLI flags become
fields of the run's resolved ``config.yaml`` (``--num-gpus`` is
``distributed.num_gpus``, ``--skip-tokenizer`` is ``experiment.train_tokenizer:
false``, ``--skip-existing`` is ``experiment.skip_existing``), so the run folder
alone says how the run was started and a resume repeats it.

Light module: no torch (the TUI imports it).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import KronosConfig, config_hash, dump_yaml, errors_of, load_preset, to_dict, validate, world_size
from .events import STAGES
from .run_config import (LaunchError, absolute_paths, basemodel_tokenizer, data_fingerprint, load_run_config,
                         official_best_model, skip_reason)
from .runfolder import RunFolder, data_cache_dir, logs_dir_from_env, new_run_id, read_json, write_text_atomic

# The checkout that holds the kronos_train package, wherever in it this module sits.
PROJECT_ROOT = next(p.parent for p in Path(__file__).resolve().parents if p.name == "kronos_train")
SUPERVISOR_START_TIMEOUT_S = 60.0

# Fields a resume may see changed without breaking exactness: naming, stage
# selection, where models are exported, how often to checkpoint, when to stop.
RESUME_SAFE_FIELDS = (
    "extends", "experiment.name", "experiment.description", "experiment.use_comet", "experiment.train_tokenizer",
    "experiment.train_basemodel", "experiment.skip_existing", "training.checkpoint_every_steps",
    "training.num_workers", "training.early_stopping.", "distributed.timeout_minutes", "distributed.rdzv_endpoint",
    "distributed.use_ddp", "evaluation.", "model_paths.base_path", "model_paths.base_save_path",
    "model_paths.exp_name", "model_paths.tokenizer_save_name", "model_paths.basemodel_save_name", "device.device_id",
    "training.time_budget_minutes", "training.hang_timeout_minutes", "checkpoint.",
    "tracking.",                 # where curves are published never changes what is trained
)


def ensure_synthetic(cfg: KronosConfig) -> bool:
    """Generate the data file of a ``data.synthetic.enabled`` preset when it is missing."""
    s = cfg.data.synthetic
    path = Path(cfg.data.data_path)
    if not s.enabled or path.is_file():
        return False
    from ..data.synthetic import write_synthetic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_synthetic(path, n_tickers=s.tickers, n_rows_per_ticker=s.rows_per_ticker, seed=s.seed)
    return True


# --------------------------------------------------------------------------- validation

def _model_problems(cfg: KronosConfig, stages: list[str]) -> list[str]:
    """Model folders or architectures the planned stages start from, and whether they fit."""
    from ..checks.pre import check_model_paths, model_configs

    if stages == list(STAGES):               # both networks are needed: also check they fit together
        result = check_model_paths(cfg)
        if result.status != "error":
            return []
        return [f"{result.title}: {result.detail}"] + [f"  {item}" for item in result.items]
    _, _, problems = model_configs(cfg)      # one stage: only its network matters
    kind = "tokenizer" if stages == ["tokenizer"] else "predictor"
    out = [p for p in problems if f"_{kind}" in p or f".{kind}" in p or f"the {kind} " in p]
    if stages == ["basemodel"] and basemodel_tokenizer(cfg) is None:
        out.append("the basemodel stage needs a trained tokenizer, but stage 1 is skipped and none was found: set "
                   "model_paths.finetuned_tokenizer (or base_path, where stage 1 exports best_model) or "
                   "model_paths.pretrained_tokenizer to a model folder")
    return out


def launch_problems(cfg: KronosConfig, logs_dir: Path, allow_multinode: bool = False) -> list[str]:
    """Everything that must be fixed before anything starts, one line each.

    ``allow_multinode`` (the SLURM script writer): several nodes are fine and
    this machine's GPUs say nothing about the compute nodes'.
    """
    from ..checks.pre import (check_batch_and_time, check_data, check_data_present, check_disk, check_gpus,
                              check_output, data_spec)

    problems = [str(p) for p in errors_of(validate(cfg))]
    if problems:
        return problems
    stages = [s for s in STAGES if skip_reason(cfg, s) is None]
    if not stages:
        return ["every stage is skipped (--skip-tokenizer/--skip-basemodel/--skip-existing): nothing to train"]
    if cfg.distributed.nodes > 1 and not allow_multinode:
        problems.append(f"distributed.nodes = {cfg.distributed.nodes}: several nodes are started by a batch "
                        "scheduler; write the script with `kronos-train slurm --config PRESET --nodes N "
                        "--gpus-per-node G` (it also prints the torchrun lines for other clusters)")
    report = None
    results = [check_data_present(cfg)]
    if Path(cfg.data.data_path).is_file():
        from ..data import inspect_data

        report = inspect_data(data_spec(cfg), data_cache_dir(logs_dir))
        results.append(check_data(cfg, report))
    results += [check_output(cfg, logs_dir), check_disk(cfg, logs_dir), check_batch_and_time(cfg, report)]
    if not allow_multinode:
        results.append(check_gpus(cfg))
    for r in results:
        if r.status == "error":
            problems.append(f"{r.title}: {r.detail}" + (f" ({r.hint})" if r.hint else ""))
            problems += [f"  {item}" for item in r.items]
    problems += _model_problems(cfg, stages)
    return problems


# --------------------------------------------------------------------------- create / start

def prepare_config(preset: str | Path, *, num_gpus: int | None = None, nodes: int | None = None,
                   rdzv_endpoint: str | None = None, skip_tokenizer: bool = False, skip_basemodel: bool = False,
                   skip_existing: bool = False, time_budget_minutes: float | None = None,
                   cpu_only: bool = False) -> KronosConfig:
    """The preset with the command-line flags applied and paths made absolute.
    ``cpu_only``: CPU worker processes (gloo) even where CUDA exists (a SLURM CPU partition)."""
    cfg, problems = load_preset(preset)
    if errors_of(problems):
        raise LaunchError([str(p) for p in errors_of(problems)])
    if num_gpus is not None:
        cfg.distributed.num_gpus = int(num_gpus)
    if nodes is not None:
        cfg.distributed.nodes = int(nodes)
    if rdzv_endpoint is not None:
        cfg.distributed.rdzv_endpoint = rdzv_endpoint
    if skip_tokenizer:
        cfg.experiment.train_tokenizer = False
    if skip_basemodel:
        cfg.experiment.train_basemodel = False
    if skip_existing:
        cfg.experiment.skip_existing = True
    if time_budget_minutes is not None:
        cfg.training.time_budget_minutes = float(time_budget_minutes)
    if cpu_only:
        cfg.device.use_cuda = False
    absolute_paths(cfg, Path.cwd())
    return cfg


def preset_label(preset: str | Path) -> str:
    text = str(preset)
    return Path(text).stem if text.endswith((".yaml", ".yml")) else text


def create_run(preset: str | Path, logs_dir: Path | None = None, *, num_gpus: int | None = None,
               skip_tokenizer: bool = False, skip_basemodel: bool = False, skip_existing: bool = False,
               nodes: int | None = None, rdzv_endpoint: str | None = None, allow_multinode: bool = False,
               time_budget_minutes: float | None = None, cpu_only: bool = False) -> RunFolder:
    """Validate everything, then create ``logs/<run_id>/`` with the resolved config.

    Raises LaunchError (nothing created) on any problem.  Generates the data
    file of a synthetic preset first, so the data check sees it.
    """
    logs_dir = Path(logs_dir) if logs_dir is not None else logs_dir_from_env()
    cfg = prepare_config(preset, num_gpus=num_gpus, nodes=nodes, rdzv_endpoint=rdzv_endpoint,
                         skip_tokenizer=skip_tokenizer, skip_basemodel=skip_basemodel, skip_existing=skip_existing,
                         time_budget_minutes=time_budget_minutes, cpu_only=cpu_only)
    if not errors_of(validate(cfg)):
        try:
            ensure_synthetic(cfg)
        except Exception as exc:  # a generator failure is a launch problem, not a traceback
            raise LaunchError([f"data.synthetic: could not generate {cfg.data.data_path}: {exc}"]) from None
    problems = launch_problems(cfg, logs_dir, allow_multinode=allow_multinode)
    if problems:
        raise LaunchError(problems)
    logs_dir.mkdir(parents=True, exist_ok=True)
    label = preset_label(preset)
    run = RunFolder(logs_dir / new_run_id(label, logs_dir))
    run.path.mkdir(parents=True)
    run.config_path.write_text(dump_yaml(cfg), encoding="utf-8")
    (run.path / "preset.txt").write_text(f"{preset}\n", encoding="utf-8")
    return run


def child_env() -> dict[str, str]:
    """The environment of the supervisor: this checkout importable even when not installed."""
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_supervisor(run: RunFolder, resume: bool = False) -> int:
    """Start the detached supervisor (own session, stdin closed, output to the run's
    files) and return its pid once it holds the run's lock."""
    cmd = [sys.executable, "-m", "kronos_train.control.supervisor", str(run.path)] + (["--resume"] if resume else [])
    with open(run.stdout_path, "ab") as out, open(run.stderr_path, "ab") as err:
        proc = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=child_env(), cwd=os.getcwd(), close_fds=True)
    # Reap it when it ends, so a long-lived caller (the TUI) keeps no zombie.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    deadline = time.monotonic() + SUPERVISOR_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if run.is_alive() and lock_holder(run) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None and run.is_alive() and lock_holder(run) == proc.pid:
        return proc.pid
    if proc.poll() == 2 and run.is_alive():      # another supervisor took the lock first
        raise LaunchError([f"run {run.run_id} is already running (supervisor pid {lock_holder(run)}); "
                           "nothing else was started"])
    tail = _tail(run.stderr_path)
    raise LaunchError([f"the run supervisor did not start (exit code {proc.poll()}); {run.stderr_path} says:"]
                      + [f"  {line}" for line in tail])


def lock_holder(run: RunFolder) -> int | None:
    """The pid the live supervisor wrote into its lock file (take_lock), if readable."""
    try:
        text = run.lock_path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _tail(path: Path, lines: int = 8) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def launch(preset: str | Path, logs_dir: Path | None = None, **kwargs: Any) -> RunFolder:
    """``create_run`` then ``start_supervisor``: the TUI's launch key."""
    run = create_run(preset, logs_dir, **kwargs)
    start_supervisor(run)
    return run


# --------------------------------------------------------------------------- resume

def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    from ..config import diff

    return [f"{path}: {old!r} -> {new!r}" for path, old, new in diff(before, after)
            if not any(path == safe or (safe.endswith(".") and path.startswith(safe)) for safe in RESUME_SAFE_FIELDS)]


def resume_problems(run: RunFolder) -> list[str]:
    """Why ``run`` cannot be resumed exactly (empty when it can)."""
    from .commit import recover

    if not run.config_path.is_file():
        return [f"{run.path} is not a run folder (no config.yaml)"]
    if run.is_alive():
        return [f"run {run.run_id} is still running (supervisor pid {run.read_status().get('pid')}); "
                f"stop it first with `kronos-train stop {run.run_id}`"]
    state = run.state()
    if state == "completed":
        return [f"run {run.run_id} has completed: nothing to resume"]
    for stage in STAGES:
        parent = run.checkpoint_dir(stage, "last").parent
        if parent.is_dir():
            recover(parent, "last")
            recover(parent, "best")
    try:
        cfg = load_run_config(run)
    except LaunchError as exc:
        return [f"{run.config_path} no longer validates:"] + exc.problems
    if not run.has_committed_checkpoint():
        return [f"run {run.run_id} ({state}) has no committed checkpoint to continue from; "
                f"start it again with `kronos-train run --config {run.preset_name() or 'PRESET'}`"]
    problems = [f"{line}; remove that stage's checkpoints folder to train it from its beginning, or start a "
                "new run" for line in run.checkpoint_problems()]
    for stage in STAGES:
        saved = read_json(run.checkpoint_dir(stage, "last") / "train_state.json")
        if not saved:
            continue
        if saved.get("data_file") and saved["data_file"] != data_fingerprint(cfg):
            problems.append(f"{stage}: {cfg.data.data_path} is not the file the checkpoint was trained on "
                            "(missing or changed): the windows would differ. Put the original back or start a new run")
        if saved.get("world_size") != world_size(cfg):
            problems.append(
                f"{stage}: the checkpoint was taken with {saved.get('world_size')} process(es), the run's config now "
                f"asks for {world_size(cfg)}: the data order and the LR schedule would differ. Set "
                f"distributed.num_gpus back in {run.config_path}, or start a new run")
        if saved.get("config_hash") != config_hash(cfg) and isinstance(saved.get("config"), dict):
            changed = _changed_fields(saved["config"], to_dict(cfg))
            if changed:
                problems.append(f"{stage}: {run.config_path} changed since the checkpoint in fields an exact resume "
                                f"depends on; restore them or start a new run:")
                problems += [f"  {line}" for line in changed]
    return problems


def set_time_budget(run: RunFolder, minutes: float) -> None:
    """Give the run's next attempts another time budget (the next session's length):
    it decides when to stop, never what is computed, so exact resume is unaffected."""
    if minutes < 0:
        raise LaunchError([f"time budget {minutes:g}: give minutes, 0 (no budget) or more"])
    cfg = load_run_config(run)
    cfg.training.time_budget_minutes = float(minutes)
    write_text_atomic(run.config_path, dump_yaml(cfg))


def resume_run(run: RunFolder) -> int:
    """Start the supervisor again on an interrupted, stopped or failed run; returns its pid."""
    problems = resume_problems(run)
    if problems:
        raise LaunchError(problems)
    return start_supervisor(run, resume=True)


__all__ = ["LaunchError", "create_run", "start_supervisor", "launch", "resume_run", "resume_problems", "set_time_budget",
           "load_run_config", "official_best_model", "basemodel_tokenizer", "skip_reason"]
