"""Training-step throughput of the Kronos tokenizer and predictor (forward + backward + AdamW step).

Losses and optimiser settings are those of the official fine-tuning scripts
(tokenizer: AdamW lr 2e-4 wd 0.1, clip 2.0; predictor: frozen tokenizer encode,
no teacher forcing, AdamW betas (0.9, 0.95) wd 0.1, clip 3.0). The
official-baseline tiny configurations are measured too, for comparison with the
figures in reference/official-baselines.md (98.9 / 117.0 samples/s, batch 32,
window 258, 2 CPU threads, torch 2.13).

    python benchmarks/bench_model.py --tokenizer Kronos-Tokenizer-base --predictor Kronos-small \
        --batch 8 --window 258 --steps 3 --device cpu --precision fp32
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kronos_train.model import (  # noqa: E402
    build_predictor,
    build_tokenizer,
    predictor_loss,
    set_gradient_checkpointing,
    tokenizer_loss,
)

OFFICIAL_SAMPLES_PER_S = {"baseline-tiny-tokenizer": 98.9, "baseline-tiny-predictor": 117.0}
STAMP_SIZES = (60, 24, 7, 32, 13)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", default="baseline-tiny-tokenizer", help="PUBLISHED_CONFIGS name")
    p.add_argument("--predictor", default="baseline-tiny-predictor", help="PUBLISHED_CONFIGS name")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--window", type=int, default=258, help="rows per sample (lookback + horizon + 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (after --warmup untimed ones)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--no-baseline", action="store_true", help="skip the official-baseline tiny configs")
    return p.parse_args(argv)


def random_batch(batch: int, window: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, window, 6, generator=g).clamp(-5, 5)
    stamp = torch.stack([torch.randint(0, n, (batch, window), generator=g) for n in STAMP_SIZES], dim=-1)
    return x.to(device), stamp.float().to(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Seconds per step: (median, best) over the timed steps. On a shared machine the
    best step is the least disturbed one; quote the median unless the load is high."""
    for _ in range(args.warmup):
        step()
    synchronize(device)
    durations = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        durations.append(time.perf_counter() - start)
    durations.sort()
    return durations[len(durations) // 2], durations[0]


def tokenizer_step_fn(name: str, args: argparse.Namespace, device: torch.device) -> tuple[Callable[[], None], int]:
    model = build_tokenizer(name).to(device).train()
    set_gradient_checkpointing(model, args.grad_checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.1)
    x, _ = random_batch(args.batch, args.window, device)

    def step() -> None:
        with autocast(device, args.precision):
            loss, _ = tokenizer_loss(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def predictor_step_fn(
    tokenizer_name: str, name: str, args: argparse.Namespace, device: torch.device
) -> tuple[Callable[[], None], int]:
    tokenizer = build_tokenizer(tokenizer_name).to(device).eval()
    model = build_predictor(name).to(device).train()
    if (tokenizer.s1_bits, tokenizer.s2_bits) != (model.s1_bits, model.s2_bits):
        raise SystemExit(f"{tokenizer_name} and {name} have different s1/s2 bits; pick a matching pair")
    set_gradient_checkpointing(model, args.grad_checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-5, betas=(0.9, 0.95), weight_decay=0.1)
    x, stamp = random_batch(args.batch, args.window, device)

    def step() -> None:
        with autocast(device, args.precision):
            loss, _ = predictor_loss(model, tokenizer, x, stamp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters() if p.requires_grad)


def report(kind: str, name: str, params: int, timing: tuple[float, float], batch: int) -> None:
    median, best = timing
    rate = batch / median
    official = OFFICIAL_SAMPLES_PER_S.get(name)
    note = f"  (official code: {official} samples/s, x{rate / official:.2f})" if official else ""
    print(
        f"{kind:9s} {name:24s} {params:>12,} params  {median * 1000:9.1f} ms/step  {rate:8.1f} samples/s "
        f"(best step {batch / best:.1f}){note}"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}  device={device}  precision={args.precision}  threads={torch.get_num_threads()}  "
        f"batch={args.batch}  window={args.window}  steps={args.steps} (+{args.warmup} warm-up)  "
        f"grad_checkpointing={args.grad_checkpointing}  load average={os.getloadavg()[0]:.2f}"
    )
    runs = [] if args.no_baseline else [("baseline-tiny-tokenizer", "baseline-tiny-predictor")]
    if (args.tokenizer, args.predictor) not in runs:
        runs.append((args.tokenizer, args.predictor))
    for tokenizer_name, predictor_name in runs:
        torch.manual_seed(0)
        step, params = tokenizer_step_fn(tokenizer_name, args, device)
        report("tokenizer", tokenizer_name, params, time_steps(step, args, device), args.batch)
        step, params = predictor_step_fn(tokenizer_name, predictor_name, args, device)
        report("predictor", predictor_name, params, time_steps(step, args, device), args.batch)


if __name__ == "__main__":
    main()
