#!/usr/bin/env bash
# A full report on a quiet machine (ideally with an NVIDIA GPU, for NVML energy and clocks):
# seed 000's suite, a batch sweep for the crossover, a 60 s sustained run, then the HTML report.
# Writes docs/results/report-<host>.{html,json,csv}. Usage: benchmarks/full_report.sh [QUICK]
set -euo pipefail
host=$(hostname -s)
out=docs/results
db=$(mktemp -d)/report.db
mkdir -p "$out"
if [ "${1:-}" = "QUICK" ]; then   # a seconds-long check that the script works
  python -m devicebench infer tinycnn-tiny --batch-size 1,4 --quick --db "$db"
  python -m devicebench infer tinycnn-tiny --batch-size 4 --quick --duration 3s --db "$db"
else
  python -m devicebench run --db "$db" --html "$out/report-$host-suite.html"
  python -m devicebench infer resnet50 --batch-size 1,2,4,8,16,32,64 --db "$db"
  python -m devicebench infer resnet50 --batch-size 32 --duration 60s --db "$db"
fi
# One page per run; the last one (the sustained run) plus the sweep are the interesting ones.
for run in $(python - "$db" <<'PY'
import sys
from devicebench.results.store import Store
with Store(sys.argv[1]) as s:
    print(" ".join(r.run_id for r in s.runs()))
PY
); do
  python -m devicebench report "$run" --db "$db" --html "$out/report-$host-$run.html" \
    --json "$out/report-$host-$run.json" --csv "$out/report-$host-$run.csv"
done
echo "reports written under $out (database: $db)"
