"""The three trackers behind one small interface: open, log points, log a model, close.

Each backend imports its package inside ``open`` (the base install and the TUI never
import tensorboard, mlflow or wandb).  A backend continues the tracker run the run
folder's ``tracking.json`` names (a resume, or the next stage) unless told to start a
fresh one (the after-the-fact export), and records what it opened there.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import KronosConfig, flatten, to_dict
from ..control.runfolder import RunFolder
from .scalars import Point
from .state import TrackerState, read_state, remember

# MLflow limits: params and metrics per log_batch call, characters per param value.
MLFLOW_PARAMS_PER_BATCH, MLFLOW_METRICS_PER_BATCH, MLFLOW_PARAM_CHARS = 100, 1000, 6000


class TrackerUnavailable(RuntimeError):
    """The tracker cannot be used (package missing, server unreachable); the message says what to do."""


@dataclass
class TrackingContext:
    """What every backend needs to know about the run it publishes."""
    run: RunFolder
    cfg: KronosConfig
    preset: str
    fresh: bool = False                       # True: a new tracker run, whatever tracking.json says
    target: str = ""                          # export --to X TARGET: a directory or a tracking URI

    @property
    def params(self) -> dict[str, Any]:
        """The resolved config, one entry per dotted field."""
        return {k: v for k, v in flatten(to_dict(self.cfg)).items() if k != "extends"}

    @property
    def experiment(self) -> str:
        return self.cfg.tracking.experiment or self.cfg.experiment.name

    @property
    def tags(self) -> dict[str, str]:
        return {"kronos.run_id": self.run.run_id, "kronos.preset": self.preset,
                "kronos.run_folder": str(self.run.path.resolve())}


def import_tracker(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TrackerUnavailable(f"{module} is not installed ({exc}); pip install 'kronos-tui[{extra}]'") from None


def by_step(points: list[Point]) -> list[tuple[str, int, list[Point]]]:
    """Consecutive points of one (stage, step) together: one tracker row each."""
    groups: list[tuple[str, int, list[Point]]] = []
    for p in points:
        if groups and groups[-1][0] == p.stage and groups[-1][1] == p.step:
            groups[-1][2].append(p)
        else:
            groups.append((p.stage, p.step, [p]))
    return groups


class Backend:
    name = ""

    def open(self, ctx: TrackingContext) -> None:
        raise NotImplementedError

    def log(self, points: list[Point]) -> None:
        raise NotImplementedError

    def log_model(self, stage: str, folder: Path) -> None:
        """Only MLflow stores models (tracking.mlflow_log_models)."""

    def close(self, status: str = "completed") -> None:
        """status: the last stage_end status this process saw (or 'completed')."""

    def where(self) -> str:
        raise NotImplementedError


# --------------------------------------------------------------------------- TensorBoard

def tensorboard_dir(ctx: TrackingContext) -> Path:
    """Default ``<run>/tensorboard``; a configured folder gets one subfolder per run, so
    ``tensorboard --logdir`` on it compares runs."""
    if ctx.target:
        return Path(ctx.target).expanduser()
    configured = ctx.cfg.tracking.tensorboard_dir
    if not configured:
        return ctx.run.path / "tensorboard"
    base = Path(os.path.expandvars(configured)).expanduser()
    return (base if base.is_absolute() else ctx.run.path / base) / ctx.run.run_id


class TensorBoardBackend(Backend):
    """Event files written with TensorBoard's own writer; a resume appends a new file to
    the same folder, its steps continuing where the checkpoint left them."""
    name = "tensorboard"

    def open(self, ctx: TrackingContext) -> None:
        import_tracker("tensorboard", "tensorboard")
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = Event, Summary
        self.dir = tensorboard_dir(ctx)
        first = not any(self.dir.glob("events.out.tfevents.*"))
        if ctx.fresh and not first:
            raise TrackerUnavailable(f"{self.dir} already holds TensorBoard event files; name another folder "
                                     "(--to tensorboard DIR) or remove them")
        self.writer = EventFileWriter(str(self.dir))
        if first:
            self._write_hparams(ctx)
        if not ctx.fresh:
            remember(ctx.run, "tensorboard", TrackerState(location=str(self.dir)))

    def _write_hparams(self, ctx: TrackingContext) -> None:
        from tensorboard.plugins.hparams import summary_v2 as hp

        hparams = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in ctx.params.items()}
        summary = hp.hparams_pb(hparams, trial_id=ctx.run.run_id)
        self.writer.add_event(self._event(wall_time=time.time(), summary=summary))
        tags = ", ".join(f"{k} = {v}" for k, v in ctx.tags.items())
        text = self._summary(value=[self._summary.Value(tag="run", tensor=_text_tensor(tags))])
        text.value[0].metadata.plugin_data.plugin_name = "text"
        self.writer.add_event(self._event(wall_time=time.time(), summary=text))

    def log(self, points: list[Point]) -> None:
        for _stage, step, group in by_step(points):
            values = [self._summary.Value(tag=p.tag, simple_value=p.value) for p in group]
            self.writer.add_event(self._event(wall_time=group[0].t, step=step, summary=self._summary(value=values)))
        self.writer.flush()

    def close(self, status: str = "completed") -> None:
        self.writer.close()

    def where(self) -> str:
        return str(self.dir)


def _text_tensor(text: str) -> Any:
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto

    return TensorProto(dtype=7, string_val=[text.encode()], tensor_shape=TensorShapeProto(dim=[]))  # 7 = DT_STRING


# --------------------------------------------------------------------------- MLflow

def mlflow_uri(ctx: TrackingContext) -> str:
    return ctx.target or ctx.cfg.tracking.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")


class MlflowBackend(Backend):
    """One MLflow run per kronos run (both stages, names prefixed by the stage), continued
    by id after a resume.  Uses MlflowClient only: no global "active run" state."""
    name = "mlflow"

    def open(self, ctx: TrackingContext) -> None:
        # MLflow retries an unreachable server for minutes by default; a tracker that is
        # down should cost a warning soon, not hold the stage's exit.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        import_tracker("mlflow", "mlflow")
        from mlflow.tracking import MlflowClient

        self.uri = mlflow_uri(ctx)
        self.client = MlflowClient(tracking_uri=self.uri or None)
        self.uri = self.uri or str(self.client.tracking_uri)
        stored = None if ctx.fresh else read_state(ctx.run).get("mlflow")
        if stored is not None and stored.location == self.uri and self._exists(stored.run_id):
            self.run_id = stored.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self._create(ctx)
        if not ctx.fresh:
            remember(ctx.run, "mlflow", TrackerState(location=self.uri, run_id=self.run_id))

    def _exists(self, run_id: str) -> bool:
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:            # noqa: BLE001 - gone, deleted or on another server: start a new one
            return False

    def _create(self, ctx: TrackingContext) -> str:
        from mlflow.entities import Param

        experiment = self.client.get_experiment_by_name(ctx.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(ctx.experiment)
        tags = {**ctx.tags, "kronos.source": "export" if ctx.fresh else "live"}
        run_id = self.client.create_run(experiment_id, run_name=ctx.run.run_id, tags=tags).info.run_id
        params = [Param(k, str(v)[:MLFLOW_PARAM_CHARS]) for k, v in ctx.params.items()]
        for i in range(0, len(params), MLFLOW_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i:i + MLFLOW_PARAMS_PER_BATCH])
        return run_id

    def log(self, points: list[Point]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(p.tag, p.value, int(p.t * 1000), p.step) for p in points]
        for i in range(0, len(metrics), MLFLOW_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + MLFLOW_METRICS_PER_BATCH])

    def log_model(self, stage: str, folder: Path) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path=f"{stage}/best")

    def close(self, status: str = "completed") -> None:
        state = {"failed": "FAILED", "stopped": "KILLED"}.get(status, "FINISHED")
        self.client.set_terminated(self.run_id, status=state)

    def where(self) -> str:
        return f"{self.uri} run {self.run_id}"


# --------------------------------------------------------------------------- Weights & Biases

class WandbBackend(Backend):
    """A W&B run resumed by its stored id; each stage has its own x axis (``<stage>/step``)."""
    name = "wandb"

    def open(self, ctx: TrackingContext) -> None:
        wandb = import_tracker("wandb", "wandb")
        tr = ctx.cfg.tracking
        stored = None if ctx.fresh else read_state(ctx.run).get("wandb")
        run_id = stored.run_id if stored is not None else uuid.uuid4().hex[:16]
        settings = wandb.Settings(silent=True, console="off")
        self.run = wandb.init(project=tr.wandb_project or ctx.experiment, group=ctx.experiment, name=ctx.run.run_id,
                              id=run_id, resume="allow", mode=tr.wandb_mode or None, dir=str(ctx.run.path),
                              config=ctx.params, tags=[ctx.preset], settings=settings, reinit="create_new")
        self.run.summary.update(ctx.tags)
        self.defined: set[str] = set()
        if not ctx.fresh:
            remember(ctx.run, "wandb", TrackerState(location=str(self.run.dir), run_id=run_id))

    def log(self, points: list[Point]) -> None:
        for stage, step, group in by_step(points):
            if stage not in self.defined:
                self.run.define_metric(f"{stage}/step")
                self.run.define_metric(f"{stage}/*", step_metric=f"{stage}/step")
                self.defined.add(stage)
            self.run.log({f"{stage}/step": step, **{p.tag: p.value for p in group}})

    def close(self, status: str = "completed") -> None:
        self.run.finish(exit_code=0 if status != "failed" else 1)

    def where(self) -> str:
        where = self.run.dir if self.run.offline else self.run.url      # offline runs have no URL yet
        return f"{where} (run {self.run.id})"


BACKENDS: dict[str, type[Backend]] = {"tensorboard": TensorBoardBackend, "mlflow": MlflowBackend,
                                      "wandb": WandbBackend}
