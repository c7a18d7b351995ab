#!/usr/bin/env bash
# One check of a GPU machine (an H100), under 5 minutes: bf16 autocast, nccl under torchrun, NVML
# readings, then both training stages of a Kronos-small-sized config (networks built from scratch,
# synthetic data, bf16, torchrun + nccl on every GPU of the node) with samples/s per stage, GPU
# utilisation (from the run's gpu events) and peak memory.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from the repository root; OUT_DIR default /tmp/kronos-gpu-check
#
# Needs a CUDA build of torch and nvidia-ml-py on the machine. Every step prints "ok" or stops with
# the reason; the run folder is kept under OUT_DIR/logs for a closer look.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/kronos-gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KRONOS_GPU_SAMPLE_S=1          # one NVML reading per second: stages here last seconds, not hours
step() { printf '\n== %s ==\n' "$*"; }
started=$(date +%s)

step "1/4 devices and bf16 autocast"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || echo "nvidia-smi not found"
python - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
      f"{', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))}")
assert torch.cuda.is_available(), "torch sees no CUDA device"
assert torch.cuda.is_bf16_supported(), "this GPU has no bf16"
a, b = torch.randn(512, 512, device="cuda"), torch.randn(512, 512, device="cuda")
with torch.autocast("cuda", dtype=torch.bfloat16):
    c = a @ b
assert c.dtype == torch.bfloat16, c.dtype
err = ((c.float() - a @ b).abs().max() / (a @ b).abs().max()).item()
assert err < 2e-2, f"bf16 matmul relative error {err}"
from kronos_train.architectures import resolve_architecture
from kronos_train.model import build_tokenizer, tokenizer_loss
tok = build_tokenizer(resolve_architecture("Kronos-Tokenizer-base")).cuda()
x = torch.randn(8, 287, 6, device="cuda")
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss, parts = tokenizer_loss(tok, x)
loss.backward()
assert torch.isfinite(loss), loss
print(f"bf16 autocast: ok (matmul relative error {err:.1e}; tokenizer loss {loss.item():.4f} under autocast)")
PY

step "2/4 NVML readings"
python - <<'PY'
from kronos_train.gpu import GpuMonitor
snap = GpuMonitor().sample()
assert snap.available and snap.gpus, f"NVML: {snap.reason}"
for g in snap.gpus:
    print(f"GPU {g.index} {g.name}: util {g.util} %, memory {g.mem_used_mb}/{g.mem_total_mb} MiB, "
          f"{g.temp_c} C, {g.power_w} W")
print("NVML: ok")
PY

step "3/4 nccl under torchrun (c10d rendezvous on a free local port)"
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")
cat > "$OUT/nccl_check.py" <<'PY'
import datetime, os
import torch, torch.distributed as dist
local = int(os.environ["LOCAL_RANK"])
torch.cuda.set_device(local)
dist.init_process_group("nccl", timeout=datetime.timedelta(minutes=2), device_id=torch.device("cuda", local))
t = torch.full((1 << 20,), float(dist.get_rank() + 1), device="cuda")
dist.all_reduce(t)
want = sum(range(1, dist.get_world_size() + 1))
assert bool((t == want).all()), t[:4]
if dist.get_rank() == 0:
    print(f"nccl all_reduce over {dist.get_world_size()} GPU(s): ok")
dist.destroy_process_group()
PY
python -m torch.distributed.run --nnodes 1 --nproc-per-node "$NGPU" --rdzv-backend c10d \
    --rdzv-endpoint localhost:0 --rdzv-id nccl-check "$OUT/nccl_check.py"

step "4/4 both stages, Kronos-Tokenizer-base + Kronos-small from scratch, bf16, torchrun/nccl on $NGPU GPU(s)"
cat > "$OUT/kronos-small-check.yaml" <<YAML
data:
  data_path: "$OUT/data/synthetic.csv"
  lookback_window: 256
  predict_window: 30
  max_context: 512
  train_ratio: 0.9
  val_ratio: 0.1
  synthetic: {enabled: true, tickers: 64, rows_per_ticker: 2500, seed: 11}
training:
  tokenizer_epochs: 2
  basemodel_epochs: 2
  batch_size: 64
  log_interval: 10
  num_workers: 4
  tokenizer_learning_rate: 0.0002
  predictor_learning_rate: 0.00004
  train_windows_per_epoch: 12800
  val_windows: 2048
  precision: bf16
model_paths: {exp_name: gpu-check}
architecture: {tokenizer: Kronos-Tokenizer-base, predictor: Kronos-small}
experiment: {name: gpu-check, pre_trained: false}
device: {use_cuda: true}
distributed: {num_gpus: $NGPU, backend: auto}
evaluation: {horizon: 30}
YAML
python benchmarks/bench_train.py --config "$OUT/kronos-small-check.yaml" --num-gpus "$NGPU" --logs "$OUT/logs"
echo
echo "gpu_check: all steps ok in $(( $(date +%s) - started )) s; run folder under $OUT/logs"
