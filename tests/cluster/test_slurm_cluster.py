"""`kronos-train slurm` against a real SLURM 22.05 cluster (slurmctld + two slurmd on this
machine, see conftest.py): submit, two jobs sharing nodes, the time-limit warning and the
requeue, a queued job cancelled, followed throughout as a login node on another host would."""
from __future__ import annotations

import re
import subprocess

import pytest

from cluster_helpers import (curve, events, first_step_time, job_output, kronos_train, now, squeue_state,
                             status_json, submit, wait_final, wait_until)
from kronos_train.control.events import validate_story

pytestmark = pytest.mark.slow
TIMES: dict[str, float] = {}


def test_two_jobs_sharing_the_nodes_both_complete_with_the_local_losses(slurm_cluster, workspace, reference):
    root, preset, logs = workspace
    t_submit = now()
    jobs = [submit(preset, logs, "--cpus-per-task", "1") for _ in range(2)]   # one core per node each: both fit
    for run, job_id in jobs:
        assert (run.path / "job.sbatch").is_file()
    TIMES["submit_to_first_step_s"] = first_step_time(jobs[0][0]) - t_submit
    # Both run at once, on both nodes; a reader on another host sees them running.
    for run, job_id in jobs:
        wait_until(lambda: events(run, "step"), 300, 0.2, f"a step of job {job_id}")
        status = status_json(run)
        assert status["state"] == "running", status
        assert re.fullmatch(rf"SLURM job {job_id}: running on node\[1-2\], \d+:\d\d left", status["scheduler"]["line"])
    for run, job_id in jobs:
        assert wait_final(run, job_id) == "completed", job_output(run)
    ports = {re.search(r"--rdzv-endpoint (\S+)", (run.path / f"slurm-{job_id}.out").read_text()).group(1)
             for run, job_id in jobs}
    assert len(ports) == 2 and all(p.startswith("127.0.0.1:") for p in ports)   # node1's NodeAddr, per-job ports
    for run, job_id in jobs:
        starts = events(run, "stage_start")
        assert [(r["stage"], r["world_size"]) for r in starts] == [("tokenizer", 2), ("basemodel", 2)]
        assert validate_story(events(run)) == []
        assert curve(run) == curve(reference)
        status = status_json(run)
        assert status["state"] == "completed" and "COMPLETED" in status["scheduler"]["line"]
    first_steps = [events(run, "step")[0]["t"] for run, _ in jobs]
    ends = [events(run, "run_end")[-1]["t"] for run, _ in jobs]
    assert max(first_steps) < min(ends)                 # they trained at the same time
    assert not (root / "PWNED").exists() and not list(logs.glob("**/PWNED"))


def test_the_time_limit_warning_stops_requeues_and_resumes_exactly(slurm_cluster, workspace, reference):
    root, preset, logs = workspace
    run, job_id = submit(preset, logs)
    first_step_time(run)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job_id], check=True)   # what SLURM sends 120 s early
    t_requeue = wait_until(lambda: next((r["t"] for r in events(run, "run_end") if r["status"] == "stopped"), None),
                           300, 0.2, "the stop with a checkpoint")
    assert run.has_committed_checkpoint()
    TIMES["requeue_to_resumed_step_s"] = first_step_time(run, attempt=1) - t_requeue
    restart = next(r["t"] for r in events(run, "run_start") if r["attempt"] == 1)
    TIMES["requeue_to_supervisor_restart_s"] = restart - t_requeue     # SLURM's part: requeue, queue, start
    assert wait_final(run, job_id) == "completed", job_output(run)
    status = status_json(run)
    assert status["scheduler"]["restarts"] == 1 and "requeued 1x" in status["scheduler"]["line"]
    assert [r["status"] for r in events(run, "run_end")] == ["stopped", "completed"]
    assert [r["attempt"] for r in events(run, "run_start")] == [0, 1]
    assert validate_story(events(run)) == []
    assert curve(run) == curve(reference)


def test_a_queued_job_shows_its_reason_and_stop_cancels_it(slurm_cluster, workspace):
    root, preset, logs = workspace
    run, job_id = submit(preset, logs, "--begin", "now+1hour")
    wait_until(lambda: squeue_state(job_id) == "PENDING", 30, 0.2, "the job to be queued")
    status = status_json(run)
    assert status["state"] == "queued"
    assert status["scheduler"]["line"] == f"SLURM job {job_id}: queued (BeginTime)"
    assert f"SLURM job {job_id}: queued (BeginTime)" in kronos_train("status", run.run_id, "--logs", str(logs),
                                                                     reader=True).stdout
    out = kronos_train("stop", run.run_id, "--logs", str(logs), reader=True).stdout
    assert "cancelled (scancel), run cancelled" in out
    wait_until(lambda: squeue_state(job_id) in ("CANCELLED", ""), 30, 0.2, "the job to be cancelled")
    status = status_json(run)
    assert status["state"] == "cancelled" and "CANCELLED" in status["scheduler"]["line"]
    resume = kronos_train("resume", run.run_id, "--logs", str(logs), check=False)
    assert resume.returncode == 2 and "no committed checkpoint" in resume.stdout


def test_abort_from_a_login_node_cancels_the_running_job(slurm_cluster, workspace):
    root, preset, logs = workspace
    run, job_id = submit(preset, logs)
    first_step_time(run)
    out = kronos_train("stop", run.run_id, "--abort", "--logs", str(logs), reader=True).stdout
    assert f"SLURM job {job_id} cancelled (scancel)" in out
    assert wait_final(run, job_id) == "aborted", job_output(run)
    assert events(run, "run_end")[-1]["status"] == "aborted"
    assert "CANCELLED" in status_json(run)["scheduler"]["line"]


def test_report_measured_times():
    """Not a check: the figures the issue asks for, printed with -s."""
    print(f"\nSLURM measured: {TIMES}")
