"""devicebench's timing against torch.utils.benchmark's blocked_autorange, side by side.

Question: does devicebench's measurement (its timer, warm-up and adaptive loop) report the
same median as torch's own benchmark Timer on the same model, input and threads? The ratio
devicebench / Timer must be within 0.95-1.05.

Method. The machine's speed is not constant: on the 2-core development VM the same ResNet-50
call took 66 ms for some seconds and 90 ms for the next, with no other process running (no
CPU steal either). Long measurements taken one after the other therefore differ by up to 30%
for reasons that have nothing to do with either tool. So the verdict comes from short
*paired* windows inside one worker process: devicebench's loop for ``--window`` seconds, then
Timer.blocked_autorange for the same time, the order alternating pair by pair (A B, B A, ...),
and the ratio is the median of the per-pair ratios. For context the script also runs whole
`devicebench infer`-style measurements (default policy, a fresh worker each) beside a Timer
run in a fresh worker, which shows how much the machine drifts between processes.

Usage:
    python benchmarks/bench_vs_torch_timer.py [--model resnet50] [--threads N] [--pairs 10]

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
from devicebench.launchers.worker import run_in_worker  # noqa: E402


@dataclass(frozen=True)
class Job:
    model: str
    batch_size: int
    threads: int
    pairs: int = 10
    window_s: float = 2.0
    seed: int = 0


def _build(job: Job):  # type: ignore[no-untyped-def]
    import torch

    from devicebench.workloads.registry import create_model

    torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    wl = create_model(job.model)
    return wl.module.eval(), wl.example(job.batch_size, job.seed)


def paired_in_process(job: Job) -> dict[str, object]:
    """In one worker: alternate devicebench's adaptive loop and Timer on the same model."""
    import torch
    from torch.utils.benchmark import Timer

    from devicebench.devices.discovery import DeviceSpec
    from devicebench.devices.timers import make_timer
    from devicebench.measure.timing import measure_adaptive

    model, inputs = _build(job)
    timer = make_timer(DeviceSpec("cpu"))
    # devicebench's own loop and stopping rule, bounded to the window so both tools look at
    # the machine for the same length of time.
    policy = TimingPolicy(warmup_iters=2, warmup_s=0.0, min_iters=10, min_time_s=job.window_s,
                          max_time_s=job.window_s)
    pairs = []
    with torch.inference_mode():
        for _ in range(5):
            model(*inputs)

        def devicebench_median() -> tuple[float, int]:
            run = measure_adaptive(timer, lambda: model(*inputs), policy)
            return statistics.median(run.samples_ms), len(run.samples_ms)

        def timer_median() -> tuple[float, int]:
            t = Timer(stmt="model(*inputs)", globals={"model": model, "inputs": inputs}, num_threads=job.threads)
            m = t.blocked_autorange(min_run_time=job.window_s)
            return m.median * 1e3, len(m.times)

        for k in range(job.pairs):
            if k % 2 == 0:
                (d, dn), (t, tn) = devicebench_median(), timer_median()
            else:
                (t, tn), (d, dn) = timer_median(), devicebench_median()
            pairs.append({"pair": k + 1, "first": "devicebench" if k % 2 == 0 else "timer",
                          "devicebench_ms": d, "devicebench_n": dn, "timer_ms": t, "timer_blocks": tn,
                          "ratio": d / t})
    return {"pairs": pairs}


def timer_whole(job: Job) -> float:
    """In a fresh worker: Timer.blocked_autorange for 5 s, as a user of torch's tool would."""
    import torch
    from torch.utils.benchmark import Timer

    model, inputs = _build(job)
    with torch.inference_mode():
        for _ in range(5):
            model(*inputs)
        t = Timer(stmt="model(*inputs)", globals={"model": model, "inputs": inputs}, num_threads=job.threads)
        return t.blocked_autorange(min_run_time=5.0).median * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="default: torch's default")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--window", type=float, default=2.0, help="seconds per tool per pair")
    ap.add_argument("--process-rounds", type=int, default=2, help="whole fresh-process rounds, for context")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args()

    import torch

    threads = args.threads or torch.get_num_threads()
    job = Job(args.model, args.batch_size, threads, args.pairs, args.window)
    res = run_in_worker(paired_in_process, job)
    if not res.ok:
        print(f"paired run failed: {res.error}\n{res.detail}", file=sys.stderr)
        return 1
    pairs = res.value["pairs"]
    for p in pairs:
        print(f"pair {p['pair']:2d} ({p['first']} first): devicebench {p['devicebench_ms']:.2f} ms, "
              f"Timer {p['timer_ms']:.2f} ms, ratio {p['ratio']:.3f}", flush=True)
    ratio = statistics.median(p["ratio"] for p in pairs)
    verdict = "PASS" if 0.95 <= ratio <= 1.05 else "FAIL"

    rounds = []
    env = None
    for rnd in range(args.process_rounds):
        db = run_in_worker(measure_inference, InferenceConfig(args.model, "cpu", args.batch_size, threads=threads))
        tm = run_in_worker(timer_whole, job)
        if not (db.ok and db.value.status == "ok" and tm.ok):
            print("a fresh-process round failed", file=sys.stderr)
            return 1
        env = env or db.value.environment
        d = statistics.median(db.value.compute.samples_ms)
        rounds.append({"round": rnd + 1, "devicebench_ms": d, "devicebench_n": len(db.value.compute.samples_ms),
                       "devicebench_stop": db.value.compute.stop_reason, "timer_ms": tm.value, "ratio": d / tm.value})
        print(f"fresh processes {rnd + 1}: devicebench {d:.2f} ms, Timer {tm.value:.2f} ms", flush=True)

    host = socket.gethostname()
    result = {
        "benchmark": "devicebench vs torch.utils.benchmark.Timer.blocked_autorange",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": args.model, "batch_size": args.batch_size, "device": "cpu", "threads": threads,
        "window_s": args.window, "pairs": pairs, "ratio": ratio,
        "ratio_statistic": "median of per-pair ratios (paired windows in one process)",
        "target": [0.95, 1.05], "verdict": verdict, "fresh_process_rounds": rounds,
        "environment": env.to_dict() if env else {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-vs-torch-timer-{host}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    cpu = env.cpu if env else None
    ratios = sorted(p["ratio"] for p in pairs)
    lines = [
        "# devicebench vs torch.utils.benchmark.Timer",
        "",
        f"Measured {result['date']} on `{host}`: {cpu.model if cpu else '?'}, "
        f"{cpu.logical_cores if cpu else '?'} logical cores, torch {env.torch if env else '?'}; "
        f"{args.model}, batch {args.batch_size}, CPU, {threads} threads, fp32, random weights.",
        "",
        f"**Median of {len(pairs)} paired ratios devicebench / Timer: {ratio:.3f}** (target 0.95-1.05: "
        f"{verdict}; pair ratios range {ratios[0]:.3f}-{ratios[-1]:.3f}).",
        "",
        f"Paired windows of {args.window:g} s per tool in one worker process, the order alternating "
        "(the machine's speed drifts by up to 30% over seconds, so only paired ratios are compared):",
        "",
        "| Pair | First | devicebench median | Timer median | Ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    for p in pairs:
        lines.append(f"| {p['pair']} | {p['first']} | {p['devicebench_ms']:.2f} ms (n={p['devicebench_n']}) "
                     f"| {p['timer_ms']:.2f} ms ({p['timer_blocks']} blocks) | {p['ratio']:.3f} |")
    if rounds:
        lines += ["", "For context, whole measurements in fresh processes (devicebench's default policy as "
                  "`devicebench infer` runs it; Timer for 5 s), one after the other:", "",
                  "| Round | devicebench | Timer | Ratio |", "|---:|---:|---:|---:|"]
        for r in rounds:
            lines.append(f"| {r['round']} | {r['devicebench_ms']:.2f} ms (n={r['devicebench_n']}, {r['devicebench_stop']}) "
                         f"| {r['timer_ms']:.2f} ms | {r['ratio']:.3f} |")
    lines += ["", f"Re-run: `python benchmarks/bench_vs_torch_timer.py --model {args.model} --threads {threads} "
              f"--pairs {args.pairs} --window {args.window:g}`", ""]
    stem.with_suffix(".md").write_text("\n".join(lines))
    print(f"ratio {ratio:.3f} ({verdict}); wrote {stem}.md and .json")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
