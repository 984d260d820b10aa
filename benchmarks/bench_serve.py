"""Server scenario on the CPU: the highest Poisson request rate that keeps p99 under a target.

Question: how many requests per second does this CPU serve for ResNet-50 and BERT-base with
the 99th percentile of latency (from each request's scheduled arrival to its answer on the
host) under the target, what does a million requests cost at that rate, and did the load
generator keep its schedule (its slip) while doing it?

Targets (justified in docs/serving.md): MLPerf's server bounds (15 ms for ResNet-50, 130 ms
for BERT) assume data-centre accelerators; on the 2-core development VM one ResNet-50 request
alone takes ~70 ms and one BERT-base request ~150 ms, so those bounds cannot be met at any
rate (devicebench says so in one line). We use about three times the single-request median,
the budget of an interactive request that may queue behind two others: p99 <= 250 ms for
ResNet-50 and p99 <= 500 ms for BERT-base. The model gets 1 thread by default so that the
load generator has a core of its own (``--threads 2`` shows the shared-core warning).

Usage:
    python benchmarks/bench_serve.py                 # the quiet-machine run (~15-25 min)
    python benchmarks/bench_serve.py --quick         # tiny models, short trials (a check that it runs)

Writes docs/results/serve-<host>.md and .json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from devicebench.devices.discovery import DeviceSpec  # noqa: E402
from devicebench.measure.loadgen import TrialSettings  # noqa: E402
from devicebench.measure.serving import ServeConfig  # noqa: E402
from devicebench.reports.cost import Prices  # noqa: E402
from devicebench.reports.serving import serving_markdown, serving_rows  # noqa: E402
from devicebench.run.serving import serve  # noqa: E402

#: (model, p99 target in ms): about 3x the 2-core VM's single-request median, see above.
FULL = (("resnet50", 250.0), ("bert-base", 500.0))
QUICK = (("resnet50-tiny", 100.0), ("bert-base-tiny", 100.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny models, 1.5 s trials, at most 4 of them")
    ap.add_argument("--threads", type=int, default=1, help="model threads (default 1: a core left for the generator)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of schedule per trial (default 30)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each model's result shows as it ends, even in a log file
    host = "vm"
    rows, records_json = [], []
    for model, target in QUICK if args.quick else FULL:
        for dev in args.device.split(","):
            settings = TrialSettings(target_ms=target, duration_s=1.5 if args.quick else args.duration,
                                     max_trials=4 if args.quick else 12, min_requests=30 if args.quick else 200,
                                     tolerance=0.2 if args.quick else 0.05)
            config = ServeConfig(model, DeviceSpec.parse(dev), "server", settings,
                                 threads=args.threads if dev == "cpu" else None,
                                 single_stream_s=0.5 if args.quick else 5.0, calibrate_s=0.5 if args.quick else 2.0)
            _, records = serve([config], command="benchmarks/bench_serve.py")
            for r in records:
                print(f"{r.model} {r.device.label}: {r.status} max rate {r.max_rate} /s "
                      f"(target p99 {target:g} ms); warnings: {r.warnings}", flush=True)
                rows.extend(serving_rows([r], Prices()))
                records_json.append(r.to_dict())
                md = serving_markdown([r], Prices())
                print(md)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    suffix = "-quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"serve-{host}{suffix}.json").write_text(json.dumps({"when": stamp, "rows": rows, "records": records_json},
                                                                     indent=2, default=str))
    lines = [f"# Server scenario on {host} ({stamp})", "", "Latency from scheduled arrival (open-loop Poisson) to the "
             "answer on the host; cost at the default dated price table; energy a labelled estimate where no counter.", "",
             "| Model | Device | Target | Max rate /s | p99 at rate | Goodput /s | USD / 1M | J / req | Gen. slip p99 (trials) | Gen. slip p99 (no-op calibration) | Warnings |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        def f(v: object, fmt: str = "{:.3g}") -> str:
            return fmt.format(v) if isinstance(v, (int, float)) else "-"
        lines.append(f"| {row['model']} | {row['device']} | {row['target']} | {f(row['max_rate_per_s'])} | "
                     f"{f(row['p99_at_rate_ms'])} ms | {f(row['goodput_per_s'])} | {f(row['usd_per_million'])} | "
                     f"{f(row['joules_per_request'])} | {f(row['slip_p99_ms'], '{:.2f}')} ms | "
                     f"{f(row['calibration_slip_p99_ms'], '{:.3f}')} ms | {'; '.join(row['warnings'])} |")
    (args.out / f"serve-{host}{suffix}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / f'serve-{host}{suffix}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
