"""The GPU fast path, checked where it runs on CPU too: the batch prefetcher's order and errors,
the torch.compile switch (off unless asked), the optimizer factory, and a whole bf16 stage on CPU
autocast.  The CUDA sides (side-stream copies, fused AdamW, nccl) are in tests/test_gpu_device.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kronos_train.config import KronosConfig
from kronos_train.control.events import EventWriter, validate_story
from kronos_train.control.launch import create_run, load_run_config
from kronos_train.train.distributed import DistEnv
from kronos_train.train.loop import Prefetcher
from kronos_train.train.stages import build_optimizer, compiled, run_stage

from train_helpers import events, write_preset


class NumberedWindows:
    """get_batch(idx) -> (x, stamp) whose values are the window numbers, so order is visible."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at

    def get_batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fail_at is not None and self.fail_at in idx:
            raise ValueError(f"window {self.fail_at} is broken")
        x = np.repeat(idx.astype(np.float32)[:, None, None], 6, axis=2).repeat(3, axis=1)
        return x, np.zeros((len(idx), 3, 5), dtype=np.float32)


def drain(feed: Prefetcher, count: int) -> list[list[int]]:
    return [feed.next()[0][:, 0, 0].long().tolist() for _ in range(count)]


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_the_prefetcher_hands_out_every_batch_once_in_order(depth):
    batches = [np.arange(k * 4, k * 4 + 4) for k in range(7)]
    feed = Prefetcher(NumberedWindows(), batches, torch.device("cpu"), depth=depth)
    try:
        assert drain(feed, 7) == [b.tolist() for b in batches]
        assert feed.remaining == 0 and feed.staged is None        # nothing fetched past the end
        assert feed.wait_s >= 0
    finally:
        feed.close()


def test_the_prefetcher_raises_the_producers_error_in_the_loop():
    batches = [np.arange(k * 2, k * 2 + 2) for k in range(4)]
    feed = Prefetcher(NumberedWindows(fail_at=5), batches, torch.device("cpu"), depth=2)
    try:
        # The good batches come out; the error is raised when the broken batch is asked for.
        assert drain(feed, 2) == [[0, 1], [2, 3]]
        with pytest.raises(ValueError, match="window 5 is broken"):
            feed.next()
    finally:
        feed.close()


def test_a_prefetcher_closed_early_stops_its_thread():
    batches = [np.arange(k, k + 1) for k in range(50)]
    feed = Prefetcher(NumberedWindows(), batches, torch.device("cpu"), depth=2)
    drain(feed, 2)
    feed.close()
    assert not feed._thread.is_alive()


def test_compile_is_off_unless_asked_and_the_optimizer_is_the_official_adamw():
    assert KronosConfig().training.compile is False
    model = torch.nn.Linear(3, 2)
    assert compiled(model, False) is model
    optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, torch.device("cpu"))
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-3, (0.9, 0.95), 0.1)
    assert not group["fused"]                      # fused AdamW is for CUDA only


def test_a_bf16_stage_trains_on_cpu_autocast(tmp_path):
    run = create_run(write_preset(tmp_path, training={"precision": "bf16", "tokenizer_epochs": 1,
                                                      "train_windows_per_epoch": 64}),
                     tmp_path / "logs", num_gpus=1, skip_basemodel=True)
    EventWriter(run.events_path).emit("run_start", schema=1, run_id=run.run_id, preset="tiny", stages=["tokenizer"],
                                      world_size=1, attempt=0)
    assert run_stage(run, load_run_config(run), "tokenizer", 0, DistEnv()) == "completed"
    EventWriter(run.events_path).emit("run_end", status="completed", attempt=0)
    start = events(run, "stage_start")[0]
    assert (start["precision"], start["compile"]) == ("bf16", False)
    steps = events(run, "step")
    assert steps and all(math.isfinite(r["loss"]) and 0.0 <= r["data_wait"] <= 1.0 for r in steps)
    assert validate_story(events(run)) == []
