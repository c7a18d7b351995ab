"""Failure classification (OOM with the guide's remedies, lost ranks, timeouts, killed workers)
and control requests agreed on one step."""
from __future__ import annotations

import time

import pytest
import torch

from kronos_train.config import KronosConfig
from kronos_train.control.runfolder import RunFolder
from kronos_train.train.control import StopPoller
from kronos_train.train.distributed import DistEnv
from kronos_train.control.failures import (Failure, classify_exception, classify_exit, read_failures, root_cause,
                                           torchrun_root_cause, write_failure)


def kaggle_like() -> KronosConfig:
    cfg = KronosConfig()
    cfg.training.batch_size, cfg.training.accumulation_steps, cfg.distributed.num_gpus = 32, 1, 8
    return cfg


def test_cuda_oom_gets_the_guides_remedies_in_order_with_the_arithmetic():
    exc = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                                 "of 79.1 GiB of which 1.2 GiB is free.")
    failure = classify_exception(exc, kaggle_like())
    assert failure.kind == "oom" and "Tried to allocate 2.00 GiB" in failure.message
    remedies = failure.remedy
    assert "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in remedies[0]
    assert "32 x 1 -> 16 x 2" in remedies[1] and "16 x 2 x 8 process(es) = 256" in remedies[1]
    assert "precision: bf16" in remedies[2]
    assert "lookback_window 256 -> 128" in remedies[3] and "max_context 512 -> 256" in remedies[3]
    assert "gradient_checkpointing: true" in remedies[4]
    event = failure.event_fields()
    assert event["kind"] == "oom" and event["remedy"] == remedies


def test_oom_remedies_skip_what_is_already_on():
    cfg = kaggle_like()
    cfg.training.precision, cfg.training.gradient_checkpointing = "bf16", True
    remedies = classify_exception(RuntimeError("CUDA error: out of memory"), cfg).remedy
    assert len(remedies) == 3 and not any("bf16" in r or "checkpointing" in r for r in remedies)


def test_host_oom_and_lost_peers_and_timeouts():
    cfg = kaggle_like()
    host = classify_exception(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"), cfg)
    assert host.kind == "oom" and not any("PYTORCH_CUDA_ALLOC_CONF" in r for r in host.remedy)
    peer = classify_exception(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer"), cfg)
    assert peer.kind == "peer" and peer.event_fields()["kind"] == "nccl"
    timeout = classify_exception(RuntimeError("NCCL watchdog: Timed out waiting 600000ms for ALLREDUCE"), cfg)
    assert timeout.kind == "nccl" and "after 10 min" in timeout.message
    assert classify_exception(ValueError("boom"), cfg).kind == "other"


def test_killed_workers_are_explained_by_their_exit_code():
    assert classify_exit(-9).kind == "worker" and "out of memory" in classify_exit(-9).message
    assert classify_exit(-6).kind == "nccl"
    assert classify_exit(1, rank=3).rank == 3


def test_torchrun_root_cause_is_parsed():
    stderr = """
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
kronos_train.train.stages FAILED
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-27_19:20:00
  host      : vm
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 1234)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 1234
"""
    assert torchrun_root_cause(stderr) == (1, -9)
    assert torchrun_root_cause("nothing here") == (None, None)


def test_root_cause_prefers_the_primary_failure(tmp_path):
    run = RunFolder(tmp_path)
    write_failure(run, Failure("peer", "lost contact", rank=0, stage="basemodel", attempt=1, t=1.0))
    write_failure(run, Failure("oom", "CUDA out of memory", rank=1, stage="basemodel", attempt=1, t=2.0))
    write_failure(run, Failure("other", "old", rank=0, stage="basemodel", attempt=0, t=0.5))
    found = root_cause(read_failures(run, "basemodel", 1))
    assert found is not None and found.kind == "oom" and found.rank == 1
    assert root_cause([]) is None


def test_requests_are_seen_with_priority_and_stage_targeting(tmp_path):
    run = RunFolder(tmp_path)
    poller = StopPoller(run, "basemodel", DistEnv())
    assert poller.poll(1) is None
    run.request("early_stop", source="tui", stage="tokenizer")     # meant for the other stage
    assert poller.poll(1) is None
    run.request("early_stop", source="tui", stage="basemodel")
    assert poller.poll(1) == "early_stop" and poller.source == "tui"
    run.request("stop", source="tui", stage="tokenizer")          # stop is for the whole run
    assert poller.poll(1) == "stop"
    run.clear_request("stop")
    run.clear_request("early_stop")
    assert poller.poll(1) is None


def test_a_planned_request_waits_for_its_stage_and_step(tmp_path):
    run = RunFolder(tmp_path)
    tokenizer, basemodel = StopPoller(run, "tokenizer", DistEnv()), StopPoller(run, "basemodel", DistEnv())
    run.request("stop", source="cli", stage="basemodel", at_step=5)
    assert run.immediate_request("stop") is None and run.pending_request("stop")["at_step"] == 5
    assert tokenizer.poll(9) is None                                # another stage's step 9
    assert [basemodel.poll(step) for step in (4, 5, 6)] == [None, "stop", "stop"]
    run.request("early_stop", source="cli", at_step=2)              # any stage
    assert tokenizer.poll(1) is None and tokenizer.poll(2) == "early_stop"
    for bad in (dict(kind="abort", at_step=3), dict(kind="stop", at_step=0)):
        with pytest.raises(ValueError):
            run.request(bad.pop("kind"), **bad)


def test_the_supervisor_keeps_an_early_stop_planned_for_a_later_stage(tmp_path):
    from kronos_train.control.launch import create_run
    from kronos_train.control.supervisor import Supervisor
    from train_helpers import write_preset
    run = create_run(write_preset(tmp_path), tmp_path / "logs", num_gpus=1)
    supervisor = Supervisor(run, resume=False, foreground=False)
    run.request("early_stop", source="cli", stage="basemodel", at_step=2)
    supervisor.clear_early_stop_after("tokenizer")
    assert run.pending_request("early_stop")["at_step"] == 2        # still waiting for the basemodel stage
    supervisor.clear_early_stop_after("basemodel")
    assert run.pending_request("early_stop") is None
    run.request("early_stop", source="tui", stage="tokenizer")      # pressed too late: gone with its stage
    supervisor.clear_early_stop_after("tokenizer")
    assert run.pending_request("early_stop") is None


def test_a_spent_time_budget_reads_as_a_stop_from_the_time_budget(tmp_path):
    run = RunFolder(tmp_path)
    assert StopPoller(run, "tokenizer", DistEnv(), deadline=time.time() + 3600).poll(1) is None
    late = StopPoller(run, "tokenizer", DistEnv(), deadline=time.time() - 1)
    assert late.poll(1) == "stop" and late.source == "time_budget"
    run.request("early_stop", source="tui", stage="tokenizer")      # weaker: the stop keeps its source
    assert late.poll(2) == "stop" and late.source == "time_budget"
    run.request("abort", source="tui")                              # stronger requests still win
    assert late.poll(2) == "abort"
