"""The product's GPU paths on a real NVIDIA GPU (``pytest -m gpu``; skipped without CUDA).

A bf16 run of both stages through the real loop (side-stream batch copies, fused AdamW,
autocast with the quantiser in fp32), NVML readings reaching the events and the TUI's GPU
panel, an nccl process group with DDP, and the torch.compile switch.  benchmarks/gpu_check.sh
runs them on a GPU machine; CPU-side counterparts are in test_fast_path.py.
"""
from __future__ import annotations

import asyncio
import datetime
import math

import numpy as np
import pytest
import torch

from kronos_train.control.launch import create_run, load_run_config
from kronos_train.model import build_predictor, build_tokenizer, predictor_loss, tokenizer_loss
from kronos_train.train.distributed import DistEnv, init_distributed
from kronos_train.train.loop import Prefetcher
from kronos_train.train.stages import build_optimizer, compiled, run_stage

from test_fast_path import NumberedWindows, drain
from train_helpers import events, free_port, write_preset

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with a CUDA build of torch")]

CUDA = torch.device("cuda", 0)


def panel_text(snapshot) -> str:
    """What the monitor's detailed GPU panel shows for a follower snapshot."""
    from textual.app import App

    from kronos_tui.widgets.panels import GpuPanel

    class PanelApp(App):
        def compose(self):
            yield GpuPanel(detailed=True)

    async def render() -> str:
        app = PanelApp()
        async with app.run_test(size=(70, 16)) as pilot:
            panel = app.query_one(GpuPanel)
            panel.show(snapshot.hardware)
            await pilot.pause()
            return str(panel.render())

    return asyncio.run(render())


def test_a_bf16_run_of_both_stages_on_the_gpu_reaches_the_events_and_the_gpu_panel(tmp_path):
    from kronos_tui.follow import RunFollower
    from kronos_tui.view import View

    preset = write_preset(tmp_path, training={"precision": "bf16", "tokenizer_epochs": 1, "basemodel_epochs": 1},
                          device={"use_cuda": True}, distributed={"num_gpus": 1})
    run = create_run(preset, tmp_path / "logs", num_gpus=1)
    cfg = load_run_config(run)
    dist = init_distributed(cfg)
    assert dist.device.type == "cuda"
    for stage in ("tokenizer", "basemodel"):
        assert run_stage(run, cfg, stage, 0, dist) == "completed"
        start = events(run, "stage_start", stage)[0]
        assert start["device"].startswith("cuda") and start["precision"] == "bf16" and start["compile"] is False
        steps = events(run, "step", stage)
        assert steps and all(math.isfinite(r["loss"]) and r["mem_gb"] > 0 and 0 <= r["data_wait"] <= 1 for r in steps)

    readings = [g for r in events(run, "gpu") for g in r["gpus"]]
    assert readings, "the GPU sampler wrote no gpu event"
    g = readings[-1]
    assert "NVIDIA" in g["name"] and g["mem_total_mb"] > 0 and g["mem_used_mb"] > 0
    assert g["util"] is not None and g["power_w"] is not None and g["power_w"] > 0

    follower = RunFollower(run, sample_gpus=False, local_host="another-node")   # read the events, not NVML
    follower.poll()
    snapshot = follower.snapshot(View())
    assert snapshot.hardware.gpus and snapshot.hardware.gpu_state == "events"
    text = panel_text(snapshot)
    assert g["name"][:22] in text and "util" in text and "%" in text and "W" in text


def test_the_prefetcher_copies_batches_to_the_gpu_on_a_side_stream_in_order():
    batches = [np.arange(k * 8, k * 8 + 8) for k in range(12)]
    feed = Prefetcher(NumberedWindows(), batches, CUDA, depth=2)
    try:
        assert feed.copy_stream is not None
        got = drain(feed, 12)
        assert got == [b.tolist() for b in batches]
    finally:
        feed.close()


def test_fused_adamw_on_cuda_takes_the_same_step_as_the_plain_one():
    torch.manual_seed(0)
    fused_model = torch.nn.Linear(64, 32).to(CUDA)
    plain_model = torch.nn.Linear(64, 32).to(CUDA)
    plain_model.load_state_dict(fused_model.state_dict())
    fused = build_optimizer(fused_model, 1e-3, (0.9, 0.95), 0.1, CUDA)
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    assert fused.param_groups[0]["fused"]
    x = torch.randn(16, 64, device=CUDA)
    for model, optimizer in ((fused_model, fused), (plain_model, plain)):
        for _ in range(3):
            model(x).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_an_nccl_process_group_reduces_on_the_gpu_and_ddp_trains_a_bf16_step():
    import torch.distributed as dist

    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
                            timeout=datetime.timedelta(minutes=2), device_id=CUDA)
    try:
        assert dist.get_backend() == "nccl"
        t = torch.full((1 << 20,), 3.0, device=CUDA)
        dist.all_reduce(t)
        assert bool((t == 3.0).all())
        env = DistEnv(rank=0, world_size=1, device=CUDA, backend="nccl")
        assert env.all_reduce_sum(torch.ones(2, device=CUDA)).tolist() == [1.0, 1.0]

        torch.manual_seed(0)
        tokenizer = build_tokenizer("tiny-tokenizer").to(CUDA).eval().requires_grad_(False)
        model = build_predictor("tiny-predictor").to(CUDA).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[0])
        optimizer = build_optimizer(model, 1e-3, (0.9, 0.95), 0.1, CUDA)
        x = torch.randn(8, 33, 6, device=CUDA)
        stamp = torch.stack([torch.randint(0, n, (8, 33), device=CUDA) for n in (60, 24, 7, 32, 13)], -1).float()
        before = [p.detach().clone() for p in model.parameters()]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = predictor_loss(ddp, tokenizer, x, stamp)
        loss.backward()                          # gradients all-reduced by nccl
        optimizer.step()
        assert torch.isfinite(loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    finally:
        dist.destroy_process_group()


def test_the_compile_switch_trains_like_eager_on_the_gpu():
    torch.manual_seed(0)
    eager = build_tokenizer("tiny-tokenizer").to(CUDA).train()
    fast = build_tokenizer("tiny-tokenizer").to(CUDA).train()
    fast.load_state_dict(eager.state_dict())
    x = torch.randn(16, 33, 6, device=CUDA)
    losses = []
    for model in (eager, compiled(fast, True)):
        optimizer = build_optimizer(model, 1e-3, (0.9, 0.999), 0.1, CUDA)
        run = []
        for _ in range(3):
            loss, _ = tokenizer_loss(model, x)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            run.append(loss.item())
        losses.append(run)
    assert losses[0] == pytest.approx(losses[1], rel=1e-3, abs=1e-4)
