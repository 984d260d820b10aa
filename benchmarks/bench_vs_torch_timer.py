"""devicebench's median against torch.utils.benchmark's blocked_autorange, side by side.

Both measure the same model (same weights, same input, same thread count) in fresh worker
processes, interleaved A B A B ... so that slow drift of the machine hits both alike. The
ratio devicebench / Timer should be within 0.95-1.05: devicebench adds per-call device
synchronisation and keeps every sample, but must not add overhead of its own.

Usage:
    python benchmarks/bench_vs_torch_timer.py [--model resnet50] [--threads N] [--rounds 3]

Writes docs/results/bench-vs-torch-timer-<host>.md and .json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from devicebench.measure.config import InferenceConfig, TimingPolicy  # noqa: E402
from devicebench.measure.inference import measure_inference  # noqa: E402
from devicebench.measure.worker import run_in_worker  # noqa: E402


@dataclass(frozen=True)
class TimerJob:
    model: str
    batch_size: int
    threads: int
    min_run_time: float
    seed: int = 0


def torch_timer_median_ms(job: TimerJob) -> dict[str, float]:
    """In a fresh worker: build the same model and input, time it with torch's Timer."""
    import torch
    from torch.utils.benchmark import Timer

    from devicebench.workloads.registry import create_model

    torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    wl = create_model(job.model)
    model = wl.module.eval()
    inputs = wl.example(job.batch_size, job.seed)
    with torch.inference_mode():
        for _ in range(5):  # the same warm-up devicebench gives at least
            model(*inputs)
        timer = Timer(stmt="model(*inputs)", globals={"model": model, "inputs": inputs},
                      num_threads=job.threads)
        m = timer.blocked_autorange(min_run_time=job.min_run_time)
    return {"median_ms": m.median * 1e3, "iqr_ms": m.iqr * 1e3, "runs": float(len(m.times)),
            "number_per_run": float(m.number_per_run)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="default: torch's default in a worker")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-run-time", type=float, default=5.0, help="Timer's min_run_time (s)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args()

    import torch

    threads = args.threads or torch.get_num_threads()
    policy = TimingPolicy()  # devicebench's defaults, as `devicebench infer` uses them
    rows = []
    env = None
    for rnd in range(args.rounds):
        db = run_in_worker(measure_inference, InferenceConfig(args.model, "cpu", args.batch_size, threads=threads, policy=policy))
        if not db.ok or db.value.status != "ok":
            print(f"devicebench failed: {db.error or db.value.message}", file=sys.stderr)
            return 1
        outcome = db.value
        env = env or outcome.environment
        db_median = statistics.median(outcome.compute.samples_ms)
        tm = run_in_worker(torch_timer_median_ms, TimerJob(args.model, args.batch_size, threads, args.min_run_time))
        if not tm.ok:
            print(f"torch Timer failed: {tm.error}", file=sys.stderr)
            return 1
        rows.append({"round": rnd + 1, "devicebench_median_ms": db_median, "devicebench_n": len(outcome.compute.samples_ms),
                     "devicebench_stop": outcome.compute.stop_reason, "timer_median_ms": tm.value["median_ms"],
                     "timer_runs": tm.value["runs"], "timer_number_per_run": tm.value["number_per_run"],
                     "ratio": db_median / tm.value["median_ms"]})
        print(f"round {rnd + 1}: devicebench {db_median:.2f} ms, torch Timer {tm.value['median_ms']:.2f} ms, "
              f"ratio {rows[-1]['ratio']:.3f}", flush=True)

    db_all = statistics.median(r["devicebench_median_ms"] for r in rows)
    tm_all = statistics.median(r["timer_median_ms"] for r in rows)
    ratio = db_all / tm_all
    verdict = "PASS" if 0.95 <= ratio <= 1.05 else "FAIL"
    host = socket.gethostname()
    result = {
        "benchmark": "devicebench vs torch.utils.benchmark.Timer.blocked_autorange",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": args.model, "batch_size": args.batch_size, "device": "cpu", "threads": threads,
        "rounds": rows, "devicebench_median_ms": db_all, "timer_median_ms": tm_all,
        "ratio": ratio, "target": [0.95, 1.05], "verdict": verdict,
        "environment": env.to_dict() if env else {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-vs-torch-timer-{host}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    cpu = env.cpu if env else None
    lines = [
        "# devicebench vs torch.utils.benchmark.Timer",
        "",
        f"Measured {result['date']} on `{host}`: {cpu.model if cpu else '?'}, "
        f"{cpu.logical_cores if cpu else '?'} logical cores, torch {env.torch if env else '?'}; "
        f"{args.model}, batch {args.batch_size}, CPU, {threads} threads, fp32, random weights.",
        "Each side runs in a fresh worker process; rounds alternate devicebench then Timer.",
        "",
        "| Round | devicebench median | Timer.blocked_autorange median | Ratio |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['round']} | {r['devicebench_median_ms']:.2f} ms (n={r['devicebench_n']}, {r['devicebench_stop']}) "
                     f"| {r['timer_median_ms']:.2f} ms ({int(r['timer_runs'])} blocks of {int(r['timer_number_per_run'])}) "
                     f"| {r['ratio']:.3f} |")
    lines += ["", f"**Median of rounds: devicebench {db_all:.2f} ms, Timer {tm_all:.2f} ms, ratio {ratio:.3f}** "
              f"(target 0.95-1.05: {verdict}).", "",
              f"Re-run: `python benchmarks/bench_vs_torch_timer.py --model {args.model} --threads {threads} --rounds {args.rounds}`", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print(f"ratio {ratio:.3f} ({verdict}); wrote {stem}.md and .json")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
