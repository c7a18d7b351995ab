"""Side by side in one process: the official finetune_csv training step and kronos_train's.

    python benchmarks/bench_official.py --official PATH [--tokenizer Kronos-Tokenizer-base] \
        [--predictor Kronos-small] [--batch 32] [--window 287] [--steps 20] [--warmup 5] [--rounds 1] \
        [--device cuda] [--compile] [--tiny] [--json FILE]

PATH is a checkout of the official repository, which this project cannot ship:

    git clone --depth 1 https://github.com/shiyu-coder/Kronos /somewhere/Kronos
    pip install einops huggingface_hub tqdm     # what its model package imports (its requirements.txt)

Both sides run the same networks, built with random weights from the published
configurations (no hub download): the official ``KronosTokenizer``/``Kronos``
from PATH, and this project's, which load the official state dict, so both do
exactly the same arithmetic on the same batch.  Per network and variant it
prints samples/s, ms per step, peak GPU memory (median round), and the ratio to
the official step as shipped (fp32) and to the official step under bf16
autocast, all measured in this run (median of the ratios within each round).

The official step is that of ``finetune_csv`` (``finetune_tokenizer.py::train_tokenizer``,
``finetune_base_model.py::train_model``): forward, its loss, backward, clip
(2.0 / 3.0), AdamW (torch's default implementation), OneCycleLR, and the
``loss.item()`` it does every step.  It runs in fp32 as shipped (no TF32, as
torch's default), and once more under ``torch.autocast(bfloat16)`` for a fair
mixed-precision comparison.  kronos_train's step is its loop's own
``train_step`` (autocast from ``training.precision``, the quantiser in fp32,
fused AdamW and TF32 on CUDA, no host sync), optionally compiled
(``--compile``, the ``training.compile`` switch).  The batch is fixed and
already on the device: data loading is measured by the real run
(benchmarks/bench_train.py), not here.

``--tiny`` swaps in the small networks of reference/official-baselines.md (so
it runs on a CPU in seconds); every other figure stays as given.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kronos_train.architectures import resolve_architecture  # noqa: E402
from kronos_train.config import KronosConfig, SchedulerConfig  # noqa: E402
from kronos_train.model import build_predictor, build_tokenizer, predictor_loss, tokenizer_loss  # noqa: E402
from kronos_train.model.checkpoint import is_optional_buffer  # noqa: E402
from kronos_train.train.distributed import DistEnv  # noqa: E402
from kronos_train.train.loop import Stage, train_step  # noqa: E402
from kronos_train.train.schedules import LRSchedule  # noqa: E402
from kronos_train.train.stages import OFFICIAL_TOKENIZER_BETAS, build_optimizer, compiled, use_tf32  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import random_batch  # noqa: E402  (the same random batch as the model benchmark)

TINY = ("baseline-tiny-tokenizer", "baseline-tiny-predictor")
# Official fine-tuning settings (finetune_csv and the kaggle config): lr, AdamW betas, clip.
TOKENIZER_SETTINGS = (2e-4, OFFICIAL_TOKENIZER_BETAS, 2.0)
PREDICTOR_SETTINGS = (4e-5, (0.9, 0.95), 3.0)
WEIGHT_DECAY = 0.1
ONECYCLE_STEPS = 1_000_000                  # long enough never to run out while timing


class OfficialCodeMissing(SystemExit):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", required=True, type=Path, help="checkout of github.com/shiyu-coder/Kronos")
    p.add_argument("--tokenizer", default="Kronos-Tokenizer-base", help="published configuration name")
    p.add_argument("--predictor", default="Kronos-small", help="published configuration name")
    p.add_argument("--batch", type=int, default=32, help="windows per step (the kaggle preset's batch_size)")
    p.add_argument("--window", type=int, default=287, help="rows per window: lookback 256 + horizon 30 + 1")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant and round")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile, cuDNN/cuBLAS choices)")
    p.add_argument("--rounds", type=int, default=1, help="repeat every variant; the median round is reported")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true", help="also time kronos_train bf16 under torch.compile")
    p.add_argument("--tiny", action="store_true", help="the tiny official-baseline networks (CPU smoke runs)")
    p.add_argument("--fp32-only", action="store_true",
                   help="skip the bf16 variants (CPUs without bf16 arithmetic, where they only cost time)")
    p.add_argument("--only", choices=("tokenizer", "predictor"), default=None, help="time one network only")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.tiny:
        args.tokenizer, args.predictor = TINY
    return args


# --------------------------------------------------------------------------- the official code

def import_official(path: Path) -> tuple[Any, Any, str]:
    """(KronosTokenizer, Kronos, provenance) from a checkout, or a clear reason to stop."""
    if not (path / "model" / "kronos.py").is_file():
        raise OfficialCodeMissing(
            f"--official {path}: no model/kronos.py there. This benchmark needs a checkout of the official code:\n"
            f"    git clone --depth 1 https://github.com/shiyu-coder/Kronos {path}")
    sys.path.insert(0, str(path.resolve()))
    try:
        official = importlib.import_module("model.kronos")
    except ImportError as exc:
        raise OfficialCodeMissing(
            f"the official code in {path} does not import ({exc}); it needs the packages of its "
            "requirements.txt (einops, huggingface_hub, tqdm): pip install einops huggingface_hub tqdm") from exc
    return official.KronosTokenizer, official.Kronos, f"{path} @ {official_commit(path)}"


def official_commit(path: Path) -> str:
    """The checkout's commit (or what a COMMIT file beside it says, for copies made without .git)."""
    marker = path / "COMMIT"
    if marker.is_file():
        return marker.read_text().strip()
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown commit"
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"


# --------------------------------------------------------------------------- batch and variants

def bf16_autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


@dataclass
class Result:
    network: str
    variant: str
    samples_per_s: float
    ms_per_step: float
    peak_mib: float | None
    first_loss: float
    vs_official_fp32: float | None = None
    vs_official_bf16: float | None = None


@dataclass
class Variant:
    name: str
    build: Callable[[], Callable[[], float]]   # -> one training step, returning its loss as a float only when asked
    tf32: bool


class FixedBatch:
    """The loop's feed, always handing out the same device batch."""

    def __init__(self, x: torch.Tensor, stamp: torch.Tensor):
        self.batch = (x, stamp)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch


def official_tokenizer_step(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], float]:
    lr, _, clip = TOKENIZER_SETTINGS
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=ONECYCLE_STEPS,
                                                    pct_start=0.03, div_factor=10)

    def step() -> float:
        with bf16_autocast(x.device, bf16):
            (z_pre, z), bsq_loss, _, _ = model(x)
            loss = (F.mse_loss(z_pre, x) + F.mse_loss(z, x) + bsq_loss) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        return loss.item()                      # the official loop syncs here every step

    return step


def official_predictor_step(model: torch.nn.Module, tokenizer: torch.nn.Module, x: torch.Tensor,
                            stamp: torch.Tensor, bf16: bool) -> Callable[[], float]:
    lr, betas, clip = PREDICTOR_SETTINGS
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=ONECYCLE_STEPS,
                                                    pct_start=0.03, div_factor=10)

    def step() -> float:
        with bf16_autocast(x.device, bf16):
            with torch.no_grad():
                s1, s2 = tokenizer.encode(x, half=True)
            logits = model(s1[:, :-1], s2[:, :-1], stamp[:, :-1, :])
            loss, _, _ = model.head.compute_loss(logits[0], logits[1], s1[:, 1:], s2[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
        optimizer.step()
        scheduler.step()
        return loss.item()

    return step


def project_step(model: torch.nn.Module, loss_fn: Any, settings: tuple, x: torch.Tensor, stamp: torch.Tensor,
                 precision: str, compile_model: bool) -> Callable[[], float]:
    """kronos_train's own train_step on a Stage built as build_stage builds it (one process)."""
    lr, betas, clip = settings
    cfg = KronosConfig()
    cfg.training.precision = precision
    device = x.device
    optimizer = build_optimizer(model, lr, betas, WEIGHT_DECAY, device)
    stage = Stage(name="bench", cfg=cfg, run=None, attempt=0, dist=DistEnv(device=device),
                  model=compiled(model, compile_model), raw_model=model, train_loss=loss_fn, val_loss=None,
                  optimizer=optimizer, schedule=LRSchedule(optimizer, SchedulerConfig(), ONECYCLE_STEPS, lr),
                  scaler=torch.amp.GradScaler(device.type, enabled=False), train_set=None, val_set=None,
                  sampler=None, val_sampler=None, epochs=1, peak_lr=lr, grad_clip=clip, writer=None)
    feed = FixedBatch(x, stamp)

    def step() -> torch.Tensor:
        values, _ = train_step(stage, feed)
        return values["loss"]                   # a device tensor: no sync, as in the loop

    return step


def same_weights(project: torch.nn.Module, official: torch.nn.Module) -> torch.nn.Module:
    """The project's network holding the official one's weights (proves the architecture is the same)."""
    missing, unexpected = project.load_state_dict(official.state_dict(), strict=False)
    missing = [k for k in missing if not is_optional_buffer(k)]
    if missing or unexpected:
        raise SystemExit(f"the official state dict does not fit kronos_train's network: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return project


def tokenizer_variants(args: argparse.Namespace, official_cls: Any, device: torch.device) -> list[Variant]:
    config = resolve_architecture(args.tokenizer)
    torch.manual_seed(0)
    reference = official_cls(**config)
    x, stamp = random_batch(args.batch, args.window, device)

    def official(bf16: bool) -> Callable[[], Callable[[], float]]:
        return lambda: official_tokenizer_step(copy.deepcopy(reference).to(device).train(), x, bf16)

    def ours(precision: str, compile_model: bool = False) -> Callable[[], Callable[[], float]]:
        def build() -> Callable[[], float]:
            model = same_weights(build_tokenizer(config), reference).to(device).train()
            return project_step(model, lambda m, xb, sb: tokenizer_loss(m, xb), TOKENIZER_SETTINGS, x, stamp,
                                precision, compile_model)
        return build

    return variant_list(official, ours, args)


def predictor_variants(args: argparse.Namespace, official_tok_cls: Any, official_cls: Any,
                       device: torch.device) -> list[Variant]:
    tok_config, config = resolve_architecture(args.tokenizer), resolve_architecture(args.predictor)
    torch.manual_seed(0)
    reference_tok, reference = official_tok_cls(**tok_config), official_cls(**config)
    x, stamp = random_batch(args.batch, args.window, device)

    def official(bf16: bool) -> Callable[[], Callable[[], float]]:
        # finetune_csv leaves the tokenizer in train mode in the predictor stage (spec §7.6); encode is the same.
        return lambda: official_predictor_step(copy.deepcopy(reference).to(device).train(),
                                               copy.deepcopy(reference_tok).to(device), x, stamp, bf16)

    def ours(precision: str, compile_model: bool = False) -> Callable[[], Callable[[], float]]:
        def build() -> Callable[[], float]:
            tokenizer = same_weights(build_tokenizer(tok_config), reference_tok).to(device).eval()
            tokenizer.requires_grad_(False)
            model = same_weights(build_predictor(config), reference).to(device).train()
            return project_step(model, lambda m, xb, sb: predictor_loss(m, tokenizer, xb, sb), PREDICTOR_SETTINGS,
                                x, stamp, precision, compile_model)
        return build

    return variant_list(official, ours, args)


def variant_list(official: Callable, ours: Callable, args: argparse.Namespace) -> list[Variant]:
    variants = [Variant("official fp32 (as shipped)", official(False), tf32=False),
                Variant("official bf16 autocast", official(True), tf32=False),
                Variant("kronos_train fp32", ours("fp32"), tf32=True),
                Variant("kronos_train bf16", ours("bf16"), tf32=True)]
    if args.fp32_only:
        variants = [v for v in variants if "bf16" not in v.name]
    if args.compile:
        variants.append(Variant("kronos_train bf16 + compile", ours("bf16", True), tf32=True))
    return variants


# --------------------------------------------------------------------------- timing

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(variant: Variant, args: argparse.Namespace, device: torch.device) -> tuple[float, float | None, float]:
    """(seconds per step, peak MiB or None, loss of the first step) for one fresh build of the variant."""
    if device.type == "cuda":
        use_tf32(variant.tf32)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(1)                        # same dropout masks and s1 samples for every variant
    step = variant.build()
    first_loss = float(step())
    for _ in range(max(0, args.warmup - 1)):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - started) / args.steps
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return seconds, peak, first_loss


def measure(network: str, variants: list[Variant], args: argparse.Namespace, device: torch.device,
            failures: dict[str, str]) -> list[Result]:
    """Every variant once per round, rounds interleaved; per variant the median round, and ratios as
    the median over rounds of the ratio within a round (a shared machine's load drifts between rounds)."""
    timings: dict[str, list[tuple[float, float | None, float]]] = {v.name: [] for v in variants}
    for round_index in range(args.rounds):
        for variant in [v for v in variants if f"{network}: {v.name}" not in failures]:
            where = f"[{network}, round {round_index + 1}/{args.rounds}] {variant.name}"
            try:
                timings[variant.name].append(time_variant(variant, args, device))
            except Exception as exc:       # one broken variant (a compile error, say) must not hide the others
                if variant.name.startswith("official fp32"):
                    raise                  # the baseline of every ratio
                failures[f"{network}: {variant.name}"] = f"{type(exc).__name__}: {exc}"
                print(f"  {where}: FAILED: {exc}", file=sys.stderr, flush=True)
                continue
            print(f"  {where}: {timings[variant.name][-1][0] * 1000:.1f} ms/step", file=sys.stderr, flush=True)
    results = []
    for variant in [v for v in variants if timings[v.name] and f"{network}: {v.name}" not in failures]:
        seconds, peak, first_loss = median_round(timings[variant.name])
        results.append(Result(network, variant.name, args.batch / seconds, seconds * 1000, peak, first_loss))
    for r in results:
        r.vs_official_fp32 = speedup(timings, r.variant, "official fp32 (as shipped)")
        r.vs_official_bf16 = speedup(timings, r.variant, "official bf16 autocast")
    return results


def median_round(rounds: list[tuple[float, float | None, float]]) -> tuple[float, float | None, float]:
    return sorted(rounds)[len(rounds) // 2]


def speedup(timings: dict[str, list[tuple[float, float | None, float]]], variant: str, baseline: str) -> float | None:
    """Median over rounds of (baseline seconds / variant seconds) within the same round."""
    if not timings.get(baseline):
        return None
    return statistics.median(b[0] / v[0] for v, b in zip(timings[variant], timings[baseline]))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.2f}"


def print_table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    print(f"  {'variant':<29} {'samples/s':>10} {'ms/step':>9} {'peak MiB':>9} {'x official fp32':>16} "
          f"{'x official bf16':>16} {'first loss':>11}")
    for r in results:
        peak = "n/a" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        vs_bf16 = "n/a" if r.vs_official_bf16 is None else f"{r.vs_official_bf16:.2f}"
        print(f"  {r.variant:<29} {r.samples_per_s:10.1f} {r.ms_per_step:9.2f} {peak:>9} "
              f"{r.vs_official_fp32:16.2f} {vs_bf16:>16} {r.first_loss:11.5f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    official_tok_cls, official_pred_cls, provenance = import_official(args.official)
    print(f"bench_official: torch {torch.__version__}, {device} ({device_name(device)}); official code {provenance}")
    print(f"  batch {args.batch}, window {args.window}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.rounds} round(s); the same random weights on both sides")
    results: list[Result] = []
    failures: dict[str, str] = {}
    if args.only in (None, "tokenizer"):
        tok = tokenizer_variants(args, official_tok_cls, device)
        results += measure(args.tokenizer, tok, args, device, failures)
        print_table(f"tokenizer {args.tokenizer}", results)
    if args.only in (None, "predictor"):
        pred = predictor_variants(args, official_tok_cls, official_pred_cls, device)
        pred_results = measure(args.predictor, pred, args, device, failures)
        results += pred_results
        print_table(f"predictor {args.predictor} (tokens from a frozen {args.tokenizer})", pred_results)
    print("\n  first loss: the same weights and batch, so official and kronos_train agree at fp32 (the predictor "
          "samples s1, so its values differ by sampling noise)")
    if args.json:
        args.json.write_text(json.dumps({"device": device_name(device), "torch": torch.__version__,
                                         "official": provenance, "batch": args.batch, "window": args.window,
                                         "results": [asdict(r) for r in results], "failures": failures}, indent=1))
    for name, reason in failures.items():
        print(f"FAILED: {name} ({reason})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
