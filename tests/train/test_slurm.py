"""`kronos-train slurm`: a batch script that starts torchrun on every node and turns the
scheduler's warning signal into a stop request plus a requeue."""
from __future__ import annotations

import subprocess

import yaml

from kronos_train.cli import main as cli

from train_helpers import write_preset


def test_slurm_script_runs_torchrun_per_node_and_requeues_on_preemption(tmp_path, capsys):
    out = tmp_path / "job.sbatch"
    logs = tmp_path / "logs"
    assert cli(["slurm", "--config", str(write_preset(tmp_path)), "--nodes", "2", "--gpus-per-node", "4",
                "--out", str(out), "--logs", str(logs), "--partition", "gpu"]) == 0
    script = out.read_text()
    assert subprocess.run(["bash", "-n", str(out)]).returncode == 0
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --signal=B:USR1@120", "#SBATCH --requeue", "#SBATCH --partition=gpu",
                 "scontrol show hostnames", 'KRONOS_RDZV_ID="$SLURM_JOB_ID"', "trap on_preemption USR1",
                 'request("stop", source="slurm")', 'scontrol requeue "$SLURM_JOB_ID"', "--auto &"):
        assert line in script, line
    run_dir = next(logs.iterdir())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["distributed"]["nodes"] == 2 and config["distributed"]["num_gpus"] == 4
    assert "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d" in capsys.readouterr().err


def test_supervisor_builds_the_srun_torchrun_line(tmp_path, monkeypatch):
    from kronos_train.launch import create_run
    from kronos_train.supervisor import Supervisor

    run = create_run(write_preset(tmp_path), tmp_path / "logs", nodes=2, num_gpus=4,
                     rdzv_endpoint="head:29500", allow_multinode=True)
    monkeypatch.setenv("KRONOS_LAUNCHER", "srun")
    monkeypatch.setenv("KRONOS_SRUN_ARGS", "--gpus-per-node=4")
    monkeypatch.setenv("KRONOS_RDZV_ENDPOINT", "10.0.0.1:29500")
    monkeypatch.setenv("KRONOS_RDZV_ID", "777")
    cmd = Supervisor(run, resume=False, foreground=False).torchrun_command("tokenizer")
    assert cmd[:5] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gpus-per-node=4"]
    text = " ".join(cmd)
    assert "--nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint 10.0.0.1:29500" in text
    assert "--rdzv-id 777-tokenizer-0" in text and text.endswith("tokenizer --attempt 0")


def test_a_single_node_run_picks_a_free_local_port(tmp_path):
    from kronos_train.launch import create_run
    from kronos_train.supervisor import Supervisor

    run = create_run(write_preset(tmp_path), tmp_path / "logs")
    text = " ".join(Supervisor(run, resume=False, foreground=False).torchrun_command("basemodel"))
    assert "--rdzv-backend c10d --rdzv-endpoint localhost:0" in text and "--nproc-per-node 2" in text
