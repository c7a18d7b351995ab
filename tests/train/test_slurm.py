"""`kronos-train slurm` without a cluster: the batch script it writes, the options it refuses,
the SLURM answers it parses (garbage included), and liveness judged from another host.
Submitting, following, requeueing and cancelling real jobs: tests/cluster/ (a real SLURM)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import yaml

from kronos_train.cli import main as cli
from kronos_train.control.heartbeat import HEARTBEAT_FILE, STALE_AFTER_S, read_heartbeat, write_heartbeat
from kronos_train.control.runfolder import RunFolder
from kronos_train.control.scheduler import (SCHEDULER_FILE, JobInfo, describe, display_state, parse_scontrol, parse_squeue,
                                            read_job_record)
from kronos_train.control.slurm_job import SlurmOptions, rendezvous_port
from kronos_train.control.supervisor import cpu_share_threads

from train_helpers import write_preset


def only_run(logs) -> RunFolder:
    (path,) = list(logs.iterdir())
    return RunFolder(path)


def test_a_cpu_partition_script_asks_for_no_gpu_and_meets_at_a_per_job_rendezvous(tmp_path, capsys):
    logs = tmp_path / "logs"
    assert cli(["slurm", "--config", str(write_preset(tmp_path)), "--nodes", "2", "--gpus-per-node", "0",
                "--procs-per-node", "3", "--cpus-per-task", "6", "--logs", str(logs), "--time", "1-00:00:00"]) == 0
    script = capsys.readouterr().out
    run = only_run(logs)
    assert (run.path / "job.sbatch").read_text() == script
    assert subprocess.run(["bash", "-n", str(run.path / "job.sbatch")]).returncode == 0
    assert "gpu" not in script.replace("GPU(s)", "").lower().replace("--gpus-per-node 0", "")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --cpus-per-task=6",
                 "#SBATCH --time=1-00:00:00", "#SBATCH --signal=B:USR1@120", "#SBATCH --requeue",
                 "KRONOS_SRUN_ARGS=--cpus-per-task=6", 'scontrol show hostnames "$SLURM_JOB_NODELIST"',
                 "port=$(( 20000 + SLURM_JOB_ID % 10000 ))", 'KRONOS_RDZV_ENDPOINT="${head_addr:-$head_node}:$port"',
                 'KRONOS_RDZV_ID="$SLURM_JOB_ID"', "trap on_preemption USR1", 'scontrol requeue "$SLURM_JOB_ID"',
                 "unset KRONOS_HOSTNAME", "--auto &"):
        assert line in script, line
    config = yaml.safe_load(run.config_path.read_text())
    assert (config["distributed"]["nodes"], config["distributed"]["num_gpus"], config["device"]["use_cuda"]) == (2, 3, False)
    assert rendezvous_port(12345) == 22345 and rendezvous_port(22345) == 22345


def test_a_gpu_script_asks_for_the_gpus_in_the_job_and_in_each_srun(tmp_path, capsys):
    logs = tmp_path / "logs"
    assert cli(["slurm", "--config", str(write_preset(tmp_path)), "--nodes", "2", "--gpus-per-node", "4",
                "--partition", "gpu", "--logs", str(logs)]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH --gpus-per-node=4", "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=",
                 "KRONOS_SRUN_ARGS='--gpus-per-node=4 --cpus-per-task="):
        assert line in script, line
    assert yaml.safe_load(only_run(logs).config_path.read_text())["distributed"]["num_gpus"] == 4


def test_a_preset_path_with_a_newline_quotes_and_a_command_reaches_the_script_harmlessly(tmp_path, capsys):
    folder = tmp_path / "it's \"odd\"\n$(touch PWNED) `touch PWNED2`"
    folder.mkdir()
    preset = write_preset(folder)
    logs = tmp_path / "logs"
    assert cli(["slurm", "--config", str(preset), "--nodes", "1", "--gpus-per-node", "0", "--logs", str(logs)]) == 0
    script = capsys.readouterr().out
    lines = script.splitlines()
    assert all(line.startswith("#") for line in lines if "PWNED" in line)   # only in an escaped comment
    assert sum("PWNED" in line for line in lines) == 1
    assert subprocess.run(["bash", "-n", str(only_run(logs).path / "job.sbatch")]).returncode == 0


def test_values_sbatch_or_the_shell_would_misread_are_refused_before_anything_is_created(tmp_path, capsys):
    logs = tmp_path / "logs"
    preset = str(write_preset(tmp_path))
    cases = [(["--nodes", "0", "--gpus-per-node", "1"], "--nodes 0"),
             (["--nodes", "1", "--gpus-per-node", "-1"], "--gpus-per-node -1"),
             (["--nodes", "1", "--gpus-per-node", "2", "--procs-per-node", "3"], "each process drives one GPU"),
             (["--nodes", "1", "--gpus-per-node", "0", "--time", "1:00\n#SBATCH --uid=0"], "not a SLURM time"),
             (["--nodes", "1", "--gpus-per-node", "0", "--partition", "a b"], "not a SLURM partition"),
             (["--nodes", "1", "--gpus-per-node", "0", "--begin", "$(reboot)"], "not a SLURM begin")]
    for args, message in cases:
        assert cli(["slurm", "--config", preset, "--logs", str(logs), *args]) == 2
        assert message in capsys.readouterr().err, args
    assert not logs.exists()


def test_submitting_where_sbatch_is_missing_says_so_and_leaves_no_run(tmp_path, capsys, monkeypatch):
    logs = tmp_path / "logs"
    preset = str(write_preset(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert cli(["slurm", "--config", preset, "--nodes", "1", "--gpus-per-node", "0", "--cpus-per-task", "1",
                "--logs", str(logs), "--submit"]) == 2
    err = capsys.readouterr().err
    assert "nothing submitted" in err and "`sbatch` is not installed here" in err
    assert list(logs.iterdir()) == []


def test_squeue_and_scontrol_answers_are_parsed_and_garbage_is_skipped():
    text = "42|PENDING|BeginTime|||1:00:00\ngarbage\n7|RUNNING|None|node[1-2]|12:34|15:00\n|||||\n1;rm|R|x|y|z|w\n"
    jobs = parse_squeue(text)
    assert set(jobs) == {"42", "7"} and jobs["7"]["nodes"] == "node[1-2]" and jobs["42"]["reason"] == "BeginTime"
    fields = parse_scontrol("JobId=7 JobName=kronos demo run UserId=root(0) JobState=RUNNING Reason=None "
                            "Restarts=2 NodeList=node[1-2] ExitCode=0:0 Command=/a b/job.sbatch\n")
    assert fields["JobName"] == "kronos demo run" and fields["Restarts"] == "2" and fields["Command"] == "/a b/job.sbatch"
    assert parse_scontrol("") == {} and parse_scontrol("\x00\xff no pairs here") == {}


def test_the_job_is_described_in_words_and_a_waiting_job_makes_the_run_queued():
    queued = JobInfo("42", state="PENDING", reason="Priority")
    assert describe(queued) == "SLURM job 42: queued (Priority)"
    assert display_state("pending", queued) == "queued" and display_state("stopped", queued) == "queued"
    running = JobInfo("7", state="RUNNING", nodes="node[1-2]", time_left="12:34", restarts=1)
    assert describe(running) == "SLURM job 7: running on node[1-2], requeued 1x, 12:34 left"
    assert display_state("running", running) == "running"
    ended = JobInfo("7", state="FAILED", exit_code="3:0")
    assert describe(ended) == "SLURM job 7: FAILED, exit 3:0 (the run stopped, resumable)"
    assert "cannot ask SLURM: slurmctld down" in describe(JobInfo("7", error="slurmctld down"))
    assert "no longer known" in describe(JobInfo("7"))


def test_a_scheduler_record_that_is_not_a_plain_job_id_is_ignored(tmp_path):
    run = RunFolder(tmp_path)
    for garbage in ('{"scheduler": "slurm", "job_id": "1; rm -rf /"}', '["slurm", 1]', "not json",
                    '{"scheduler": "slurm", "job_id": null}', '{"scheduler": "pbs", "job_id": "12"}'):
        (tmp_path / SCHEDULER_FILE).write_text(garbage)
        assert read_job_record(run) is None, garbage
    (tmp_path / SCHEDULER_FILE).write_text(json.dumps({"scheduler": "slurm", "job_id": "12", "jobs": ["9", "x;y", 12],
                                                       "options": "nodes=2"}))
    record = read_job_record(run)
    assert (record.job_id, record.jobs, record.options) == ("12", ("9", "12"), {})


def test_options_read_back_from_the_run_folder_are_judged_like_command_line_options():
    options = SlurmOptions.from_record({"nodes": "2; reboot", "gpus_per_node": 0, "time": "15:00", "evil": 1})
    assert any("--nodes" in p for p in options.problems())
    assert SlurmOptions.from_record({"nodes": 2, "gpus_per_node": 0, "time": "15:00"}).problems() == []


def test_a_reader_on_another_host_judges_the_run_by_its_heartbeat(tmp_path, monkeypatch):
    run = RunFolder(tmp_path)
    run.write_status(state="running")
    monkeypatch.setenv("KRONOS_HOSTNAME", "gpu-node-17")
    write_heartbeat(tmp_path)                               # the supervisor, on the compute node
    assert read_heartbeat(tmp_path).host == "gpu-node-17"
    monkeypatch.setenv("KRONOS_HOSTNAME", "login-node")     # the reader, elsewhere: no lock it could see
    assert run.is_alive() and run.state() == "running"
    beat = json.loads((tmp_path / HEARTBEAT_FILE).read_text())
    (tmp_path / HEARTBEAT_FILE).write_text(json.dumps({**beat, "t": time.time() - STALE_AFTER_S - 1}))
    assert not run.is_alive() and run.state() == "interrupted"          # stale: the node or supervisor is gone
    (tmp_path / HEARTBEAT_FILE).write_text(json.dumps({**beat, "t": time.time(), "ended": True}))
    assert not run.is_alive()                                           # the supervisor said it ended
    monkeypatch.setenv("KRONOS_HOSTNAME", "gpu-node-17")
    (tmp_path / HEARTBEAT_FILE).write_text(json.dumps({**beat, "t": time.time()}))
    assert not run.is_alive()              # on the supervisor's own host the flock decides: none is held
    for garbage in ("{", '{"host": 3, "pid": "x", "t": "now"}', '{"host": "h", "pid": true, "t": 1}'):
        (tmp_path / HEARTBEAT_FILE).write_text(garbage)
        assert read_heartbeat(tmp_path) is None and not run.is_alive()


def test_cpu_workers_take_their_share_of_the_slurm_cores(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert cpu_share_threads(4) == 2 and cpu_share_threads(16) == 1
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert cpu_share_threads(1) == len(os.sched_getaffinity(0))


def test_supervisor_builds_the_srun_torchrun_line(tmp_path, monkeypatch):
    from kronos_train.control.launch import create_run
    from kronos_train.control.supervisor import Supervisor

    run = create_run(write_preset(tmp_path), tmp_path / "logs", nodes=2, num_gpus=4,
                     rdzv_endpoint="head:29500", allow_multinode=True)
    monkeypatch.setenv("KRONOS_LAUNCHER", "srun")
    monkeypatch.setenv("KRONOS_SRUN_ARGS", "--gpus-per-node=4")
    monkeypatch.setenv("KRONOS_RDZV_ENDPOINT", "node1:20777")
    monkeypatch.setenv("KRONOS_RDZV_ID", "777")
    cmd = Supervisor(run, resume=False, foreground=False).torchrun_command("tokenizer")
    assert cmd[:5] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gpus-per-node=4"]
    text = " ".join(cmd)
    assert "--nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint node1:20777" in text
    assert "--rdzv-id 777-tokenizer-0" in text and text.endswith("tokenizer --attempt 0")


def test_a_single_node_run_picks_a_free_local_port(tmp_path):
    from kronos_train.control.launch import create_run
    from kronos_train.control.supervisor import Supervisor

    run = create_run(write_preset(tmp_path), tmp_path / "logs")
    text = " ".join(Supervisor(run, resume=False, foreground=False).torchrun_command("basemodel"))
    assert "--rdzv-backend c10d --rdzv-endpoint localhost:0" in text and "--nproc-per-node 2" in text


def test_an_abort_from_another_host_signals_nothing_here(tmp_path, monkeypatch):
    run = RunFolder(tmp_path)
    run.write_status(state="running", pgid=os.getpgid(0))    # this very test's group, were it signalled
    monkeypatch.setenv("KRONOS_HOSTNAME", "gpu-node-17")
    write_heartbeat(tmp_path)
    monkeypatch.setenv("KRONOS_HOSTNAME", "login-node")
    assert run.is_alive()
    run.request("abort", source="test")                      # the request file only; we are still here
    assert run.pending_request("abort") is not None
