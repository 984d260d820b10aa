#!/usr/bin/env bash
# Benchmark: data-parallel scaling of `devicebench train --nproc N` over one process.
#
# Run on a quiet machine (nothing else running), from the repository root:
#
#     benchmarks/ddp_scaling.sh cpu 2          # gloo, writes docs/results/ddp-scaling-cpu-2-$(hostname).json
#     benchmarks/ddp_scaling.sh cuda 4         # nccl, one GPU per process
#
# It trains tinycnn on the synthetic set (10 classes x 40 images; or $DATA) at 64x64,
# first in one process, then in N, and writes the JSON of both records (the N-process one
# carries settings.scaling) and the terminal output next to it (.txt).
# Tiny check: EPOCHS=1 MODEL=tinycnn-tiny SIZE=32 PER_CLASS=8 benchmarks/ddp_scaling.sh cpu 2
set -euo pipefail
DEVICE=${1:-cpu}
NPROC=${2:-2}
PYTHON=${PYTHON:-python}
OUT=${OUT:-docs/results/ddp-scaling-${DEVICE}-${NPROC}-$(hostname).json}
mkdir -p "$(dirname "$OUT")"
PYTHONPATH=${PYTHONPATH:-src} "$PYTHON" -m devicebench train --nproc "$NPROC" --device "$DEVICE" \
    --data "${DATA:-synthetic}" --model "${MODEL:-tinycnn}" --epochs "${EPOCHS:-3}" \
    --batch-size "${BATCH:-64}" --image-size "${SIZE:-64}" --classes "${CLASSES:-10}" \
    --train-per-class "${PER_CLASS:-40}" --loader memory --workers 0 --no-db \
    --json "$OUT" 2>&1 | tee "${OUT%.json}.txt"
echo "wrote $OUT and ${OUT%.json}.txt"
