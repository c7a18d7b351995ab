#!/usr/bin/env bash
# One prepared check of a GPU machine, a few minutes on one H100/H200, failing loudly on any error:
#
#   1. devices and versions
#   2. the `gpu` tests (pytest -m gpu): a bf16 run of both stages through the real loop, NVML readings
#      in the events and the TUI's GPU panel, an nccl process group with DDP, fused AdamW, torch.compile
#   3. nccl all_reduce under torchrun on every GPU of the node
#   4. side by side with the official finetune_csv step (benchmarks/bench_official.py):
#      Kronos-Tokenizer-base and Kronos-small, batch 32, window 287, fp32 and bf16, samples/s, peak memory, ratios
#   5. a short real run of the kaggle preset's shape (lookback 256, Tokenizer-base + Kronos-base from scratch,
#      bf16) on a 1M-row synthetic Kaggle-layout file with --num-gpus 1: samples/s, step time, data wait,
#      GPU utilisation from the run's gpu events
#   6. forecast throughput with the KV cache: tickers/s for a 5,000-ticker submission
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR [STEP ...]]     # from anywhere; STEP = 1..6, default all
#
# Everything printed also goes to RESULTS_DIR/<date>_<gpu>.txt (default: $OUT when set, else
# benchmarks/results); the side-by-side figures also to RESULTS_DIR/<date>_<gpu>_official.json. Scratch
# files and the run folders stay in /tmp/kronos-gpu-check.
#
# What the machine needs: a CUDA build of torch, numpy, pandas, pyarrow, pyyaml, safetensors, nvidia-ml-py,
# pytest. What may be missing there is installed from wheels in .whl/ when that folder exists (textual and its
# needs for the GPU panel test; einops and huggingface_hub for the official code), and the official code is
# read from .official/Kronos (override with KRONOS_OFFICIAL=PATH). Both folders are git-ignored; make them
# once, on a machine with PyPI, with `bash benchmarks/gpu_check_prepare.sh [GIT_DIR]`.
#
# With this project's device tool (no internet on the GPU machine; carried folders travel with the working tree):
#
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".official"], timeout_s=600)
#
# and a rerun of some steps only: command="bash benchmarks/gpu_check.sh \"$OUT\" 4 6".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RESULTS=$(realpath -m "${1:-${OUT:-$ROOT/benchmarks/results}}")
shift || true
cd "$ROOT"
STEPS=${*:-1 2 3 4 5 6}
WORK=/tmp/kronos-gpu-check
OFFICIAL=${KRONOS_OFFICIAL:-.official/Kronos}
PY=${PYTHON:-$(command -v python3 || command -v python)}
mkdir -p "$RESULTS" "$WORK"
export PYTHONUNBUFFERED=1 PIP_ROOT_USER_ACTION=ignore
export KRONOS_GPU_SAMPLE_S=1          # one NVML reading per second: stages here last seconds, not hours

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z ' 'a-z-' || true)
LOG="$RESULTS/$(date -u +%Y-%m-%d)_${gpu:-no-gpu}.txt"
JSON="${LOG%.txt}_official.json"

step() { printf '\n== %s ==\n' "$*"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

devices() {
    step "1/6 devices and versions"
    nvidia-smi --query-gpu=index,name,memory.total,driver_version,power.limit --format=csv
    "$PY" - <<'PY'
import torch
n = torch.cuda.device_count()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {n} GPU(s): "
      f"{', '.join(torch.cuda.get_device_name(i) for i in range(n))}")
assert torch.cuda.is_available(), "torch sees no CUDA device"
assert torch.cuda.is_bf16_supported(), "this GPU has no bf16"
PY
}

gpu_tests() {
    step "2/6 the gpu tests (pytest -m gpu)"
    "$PY" -m pytest -m gpu -p no:cacheprovider -q -rs tests/train/test_on_gpu.py
}

nccl_torchrun() {
    local ngpu
    ngpu=$("$PY" -c "import torch; print(torch.cuda.device_count())")
    step "3/6 nccl under torchrun on $ngpu GPU(s) (c10d rendezvous on a free local port)"
    cat > "$WORK/nccl_check.py" <<'PY'
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
    "$PY" -m torch.distributed.run --nnodes 1 --nproc-per-node "$ngpu" --rdzv-backend c10d \
        --rdzv-endpoint localhost:0 --rdzv-id nccl-check "$WORK/nccl_check.py"
}

side_by_side() {
    step "4/6 side by side with the official finetune_csv step: Kronos-Tokenizer-base, Kronos-small"
    "$PY" benchmarks/bench_official.py --official "$OFFICIAL" --tokenizer Kronos-Tokenizer-base \
        --predictor Kronos-small --batch 32 --window 287 --warmup 10 --steps 50 --rounds 2 --compile --json "$JSON"
}

kaggle_run() {
    step "5/6 the kaggle preset's shape on a 1M-row synthetic Kaggle-layout file, --num-gpus 1, bf16"
    rm -rf "$WORK/logs"
    cat > "$WORK/kaggle-shape.yaml" <<YAML
extends: kaggle
data:
  data_path: "$WORK/data/kaggle-1m.csv"
  synthetic: {enabled: true, tickers: 400, rows_per_ticker: 2500, seed: 11}
training:
  tokenizer_epochs: 1
  basemodel_epochs: 1
  log_interval: 25
  train_windows_per_epoch: 16000
  val_windows: 2048
  precision: bf16
  early_stopping: {enabled: false}
model_paths: {pretrained_tokenizer: "", pretrained_predictor: "", base_path: "", exp_name: gpu-check}
architecture: {tokenizer: Kronos-Tokenizer-base, predictor: Kronos-base}
experiment: {name: gpu-check, pre_trained: false}
YAML
    "$PY" benchmarks/bench_train.py --config "$WORK/kaggle-shape.yaml" --num-gpus 1 --logs "$WORK/logs"
}

forecast() {
    step "6/6 forecast throughput with the KV cache: a 5,000-ticker submission (Kronos-base, lookback 256, 30 steps, 5 samples, kronos-train predict's batch 64)"
    "$PY" benchmarks/bench_predict.py --device cuda --predictor Kronos-base --tickers 5000 --lookback 256 \
        --horizon 30 --sample-count 5 --batch 64
    echo "-- a larger batch (the KV cache of 256 tickers x 5 samples is about 32 GB for Kronos-base):"
    "$PY" benchmarks/bench_predict.py --device cuda --predictor Kronos-base --tickers 5000 --lookback 256 \
        --horizon 30 --sample-count 5 --batch 256
    echo "-- the KV cache against the full recompute (640 tickers, batch 64):"
    "$PY" benchmarks/bench_predict.py --device cuda --predictor Kronos-base --tickers 640 --lookback 256 \
        --horizon 30 --sample-count 5 --batch 64 --no-cache
}

run_step() {
    # Each step in its own subshell with errexit: one failure is reported and the next steps still run
    # (device time is scarce; a rerun can then name only the failed steps).
    # (Not `if ( ... )`: bash ignores errexit inside a condition, so a failing command would pass unseen.)
    local number=$1 fn=$2 rc
    if ! wanted "$number"; then return 0; fi
    set +e
    ( set -euo pipefail; "$fn" )
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed+=("$number")
    else
        echo "gpu_check: step $number FAILED (exit $rc)"
        failed+=("$number")
    fi
}

main() {
    local started=$SECONDS
    passed=() failed=()
    echo "gpu_check $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), steps: $STEPS"
    run_step 1 devices
    run_step 2 gpu_tests
    run_step 3 nccl_torchrun
    run_step 4 side_by_side
    run_step 5 kaggle_run
    run_step 6 forecast
    echo
    if [ ${#failed[@]} -gt 0 ]; then
        echo "gpu_check: FAILED steps: ${failed[*]} (ok: ${passed[*]:-none}) in $(( SECONDS - started )) s;" \
             "rerun them with: bash benchmarks/gpu_check.sh RESULTS_DIR ${failed[*]}"
        return 1
    fi
    echo "gpu_check: all steps ok (${passed[*]}) in $(( SECONDS - started )) s; output in $LOG; run folders under $WORK/logs"
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
