"""What the app talks to outside itself, gathered so tests can swap each part.

The defaults are the real thing: ``kronos_train.control.launch`` for launching and
resuming (imported on first use), NVML through ``GpuMonitor``, and the
torch-importing checks in a ``kronos-train check`` subprocess, never in the
TUI's own process.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kronos_train.checks import CheckResult
from kronos_train.checks.out_of_process import preset_model_check, run_model_check
from kronos_train.control.runfolder import RunFolder, logs_dir_from_env


def _launch(preset: str, logs_dir: Path, **kwargs: Any) -> RunFolder:
    from kronos_train.control.launch import launch

    return launch(preset, logs_dir, **kwargs)


def _resume(run: RunFolder) -> int | str:
    """A local run's supervisor pid; a SLURM run is resubmitted (its new job id)."""
    from kronos_train.control.launch import resume_run
    from kronos_train.control.slurm_job import is_slurm_run, resubmit_run

    return resubmit_run(run) if is_slurm_run(run) else resume_run(run)


def _submit_slurm(preset: str, logs_dir: Path, options: Any, **kwargs: Any) -> RunFolder:
    """Create the run and sbatch it (kronos_train.control.slurm_job.submit_run); the run folder."""
    from kronos_train.control.slurm_job import submit_run

    return submit_run(preset, logs_dir, options, **kwargs)[0]


def launch_problems(exc: BaseException) -> list[str] | None:
    """The problem lines of a LaunchError (or any error carrying ``.problems``)."""
    problems = getattr(exc, "problems", None)
    return [str(p) for p in problems] if isinstance(problems, (list, tuple)) else None


@dataclass
class Services:
    logs_dir: Path = field(default_factory=logs_dir_from_env)
    nvml: Any = None                                    # a fake pynvml in tests
    launch: Callable[..., RunFolder] = _launch
    resume: Callable[[RunFolder], int | str] = _resume
    submit_slurm: Callable[..., RunFolder] = _submit_slurm  # the launch dialog's "SLURM" choice
    preset_model_check: Callable[[str], list[CheckResult]] = preset_model_check
    run_model_check: Callable[[RunFolder], list[CheckResult]] = run_model_check
    clock: Callable[[], float] = time.time
    poll_interval: float = 0.5                          # how often the run folder is looked at
    refresh_interval: float = 1.0                       # new data redraws the monitor at most this often
    extra_preset_dirs: tuple[Path, ...] = ()
    user_presets_dir: Path | None = None                # default: kronos_train.config.user_presets_dir()
    auto_model_check: bool = True                       # run the subprocess checks without asking

    def presets_target_dir(self) -> Path:
        from kronos_train.config import user_presets_dir

        return self.user_presets_dir or user_presets_dir()
