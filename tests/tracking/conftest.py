"""Real trackers for the tracking tests: a real `mlflow server` (SQLite backend, a free
port on 127.0.0.1, stopped at teardown), and one tracked `demo` run, stopped by a planned
request and resumed, shared by every test of the session."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "train"))

from tracking_helpers import STOP_AT, need  # noqa: E402
from train_helpers import free_port, wait_finished  # noqa: E402

from kronos_train.control.launch import create_run, resume_run, start_supervisor  # noqa: E402
from kronos_train.control.runfolder import RunFolder  # noqa: E402

SERVER_START_S = 180.0            # a cold `mlflow server` migrates its SQLite store first: slow on 2 cores


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    need("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(folder / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)     # its own group: its workers go with it
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(uri, server, folder / "server.log")
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(5)              # its graceful shutdown can take 15 s on a busy machine: not worth waiting
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def wait_for_health(uri: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server not healthy after {SERVER_START_S:.0f} s:\n{log.read_text()[-3000:]}")


def demo_preset(folder: Path, tracking: dict) -> Path:
    """The bundled `demo` preset, shortened to seconds per stage on 2 CPU workers."""
    raw = {"extends": "demo",
           "data": {"data_path": str(folder / "data" / "demo.csv")},
           "training": {"tokenizer_epochs": 2, "basemodel_epochs": 2, "train_windows_per_epoch": 256,
                        "val_windows": 64, "batch_size": 16, "log_interval": 3, "checkpoint_every_steps": 5},
           "distributed": {"num_gpus": 2},
           "tracking": tracking}
    path = folder / "demo-tracked.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tracked_run(tmp_path_factory, mlflow_server) -> RunFolder:
    """A `demo` run published live to TensorBoard, MLflow and W&B (offline), stopped at
    basemodel step 5 by a planned request, then resumed to the end."""
    need("tensorboard")
    need("wandb")
    folder = tmp_path_factory.mktemp("tracked")
    preset = demo_preset(folder, {"report_to": ["tensorboard", "mlflow", "wandb"], "mlflow_tracking_uri": mlflow_server,
                                  "wandb_mode": "offline", "mlflow_log_models": True})
    os.environ["WANDB_SILENT"] = "true"
    run = create_run(preset, folder / "logs")
    run.request("stop", source="test", stage="basemodel", at_step=STOP_AT)
    start_supervisor(run)
    assert wait_finished(run) == "stopped", run.stderr_path.read_text()[-3000:]
    resume_run(run)
    assert wait_finished(run) == "completed", run.stderr_path.read_text()[-3000:]
    return run
