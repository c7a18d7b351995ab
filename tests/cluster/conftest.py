"""A real SLURM cluster for the tests in this folder: started once per session, stopped after.

Skipped (with the reason) where SLURM is not installed or we are not root,
except in CI (``CI=true``), where a missing cluster is a failure: the cluster
tests are the proof that `kronos-train slurm` works.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_helpers import kronos_train, write_short_demo  # noqa: E402
from slurm_daemons import LocalCluster, missing_binaries  # noqa: E402

from kronos_train.control.runfolder import RunFolder  # noqa: E402


def _unavailable() -> str | None:
    missing = missing_binaries()
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} missing): apt-get install slurmctld slurmd "
                "slurm-client munge")
    if os.geteuid() != 0:
        return "the SLURM test cluster runs as root (it writes /etc/slurm/slurm.conf and starts the daemons)"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the SLURM cluster tests: {reason}")
        pytest.skip(reason)
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A preset whose path holds a quote, a newline and a command substitution (all
    must reach the batch script quoted), its data, and a logs folder on the "shared" disk."""
    root = tmp_path_factory.mktemp("cluster")
    preset = write_short_demo(root / "odd 'name'\n$(touch PWNED)", root / "data")
    return root, preset, root / "logs"


@pytest.fixture(scope="session")
def reference(workspace) -> RunFolder:
    """The same preset on this machine: `kronos-train run --num-gpus 2`, two local workers."""
    root, preset, logs = workspace
    out = kronos_train("run", "--config", str(preset), "--num-gpus", "2", "--logs", str(logs), "--foreground",
                       timeout=600).stdout
    run = RunFolder(logs / re.search(r"^run (\S+)$", out, re.M).group(1))
    assert run.read_status()["state"] == "completed"
    return run
