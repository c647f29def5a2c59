#!/usr/bin/env bash
# The GPU check: one short run (under 8 minutes on one GPU) of what CPU machines cannot
# exercise. Installs nasfcn, runs the tests that need CUDA, a 16-trial search on
# fcn_small.yaml packing 4 trials per GPU, and the trainer benchmark on the GPU; prints
# trials/hour, nvidia-smi utilization samples and images/s of fit() vs a bare loop.
#
#   bash benchmarks/gpu_check.sh [--wheels DIR] [--out DIR]
#
# The environment reuses the machine's CUDA build of torch (a venv with system site
# packages; nasfcn's torch range accepts it). --wheels installs the rest offline from a
# folder of wheels, for GPU machines without a package registry.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=""
OUT="${OUT:-gpu_check_out}"
while (($#)); do
    case "$1" in
        --wheels) WHEELS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument $1 (use --wheels DIR, --out DIR)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
SECONDS=0
step() { printf '\n== [%4ds] %s\n' "$SECONDS" "$*"; }

step "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__)"

step "install (venv with the system's CUDA torch)"
VENV=.venv-gpu
python3 -m venv --system-site-packages "$VENV"
PY="$VENV/bin/python"
if [[ -n "$WHEELS" ]]; then
    "$PY" -m pip install -q --no-index --no-build-isolation --find-links "$WHEELS" -e ".[dev]"
else
    "$PY" -m pip install -q -e ".[dev]"
fi
"$PY" -c "import nasfcn, ray, torch; print('nasfcn', nasfcn.__version__, 'ray', ray.__version__, 'torch', torch.__version__)"

step "tests that need CUDA"
"$PY" -m pytest -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.log" | tail -5

step "trainer on the GPU: fit() vs a bare loop (AMP + channels-last in both)"
"$PY" benchmarks/trainer_overhead.py --device cuda --epochs 3 --repeats 3 --train-samples 2048 \
    --image-size 128 2>&1 | tee "$OUT/trainer_overhead.log" | tail -3

step "16-trial search on fcn_small.yaml, --gpus-per-trial 0.25 (4 trials per GPU)"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 2 \
    >"$OUT/nvidia_smi.csv" 2>/dev/null &
SMI=$!
started=$SECONDS
"$VENV/bin/nasfcn" search --space search_spaces/fcn_small.yaml --data shapes --name gpu-check \
    --trials 16 --epochs 4 --gpus-per-trial 0.25 --cpus-per-trial 2 --concurrency 4 \
    --train-samples 2048 --image-size 64 --scheduler fifo --strategy random \
    --db "sqlite:///$OUT/gpu_check.db" --storage-path "$OUT/runs" 2>&1 | tail -4
wall=$((SECONDS - started))
kill "$SMI" 2>/dev/null || true

step "results"
"$PY" - "$OUT" "$wall" <<'PY'
import sys

import pandas as pd

from nasfcn.store import leaderboard_frame, open_store

out, wall = sys.argv[1], float(sys.argv[2])
board = leaderboard_frame(open_store(f"sqlite:///{out}/gpu_check.db", create=False), "gpu-check")
finished = board[board["status"].isin(["completed", "stopped_early"])]
print(f"trials: {len(board)} ({len(finished)} trained) in {wall:.0f} s -> {len(board) / wall * 3600:.0f} trials/hour")
print("devices:", ", ".join(sorted(set(board["train_device"].dropna()))))
print(f"peak training memory per trial: median {board['peak_train_memory_mb'].median():.0f} MiB, "
      f"max {board['peak_train_memory_mb'].max():.0f} MiB")
print(f"best val mIoU {board['best_miou'].max():.3f}")
smi = pd.read_csv(f"{out}/nvidia_smi.csv", header=None, names=["time", "util", "memory"])
util = smi["util"].str.rstrip(" %").astype(float)
print(f"GPU utilization over {len(smi)} samples: median {util.median():.0f}%, max {util.max():.0f}%")
print("samples:", " ".join(f"{u:.0f}" for u in util.iloc[:: max(1, len(util) // 20)]))
PY
step "done in ${SECONDS}s; logs in $OUT"
