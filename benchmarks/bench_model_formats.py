"""The same model as eager PyTorch and as each user-file format, side by side.

Checks the choice made by ``devicebench.compare()`` (an ``nn.Module`` travels to the workers
as a ``torch.export`` program): the exported program should time like the eager module
(ratio within about 0.95-1.05). TorchScript, ONNX Runtime and a state dict loaded into the
registered architecture are shown beside it. Every configuration runs in its own fresh
worker, rounds interleaved (eager, export, TorchScript, ONNX, state dict, eager, ...) so that
slow drift of the machine hits all alike.

Usage (on a quiet machine):
    python benchmarks/bench_model_formats.py [--model resnet50] [--batch-size 1] [--device cpu]
        [--threads N] [--rounds 3] [--max-time 5]

Writes docs/results/model-formats-<host>.md and .json (``--out`` to change the stem).
Validate quickly with ``--model tinycnn-tiny --rounds 1 --max-time 0.3 --out /tmp/formats``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import warnings
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# The worker processes must import this tree too, not another installed devicebench.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)

import torch  # noqa: E402

from devicebench.devices.discovery import parse_devices  # noqa: E402
from devicebench.measure.config import DEFAULT_POLICY  # noqa: E402
from devicebench.run.inference import execute, plan_inference, plan_user_model  # noqa: E402
from devicebench.workloads.registry import create_model  # noqa: E402
from devicebench.workloads.userfile import UserModelSpec  # noqa: E402


def save_formats(model: str, batch: int, folder: Path) -> dict[str, UserModelSpec]:
    """The registered model (seed 0 weights) saved in each format."""
    torch.manual_seed(0)
    workload = create_model(model)
    module = workload.module.eval()
    example = workload.example(batch, 0)
    specs: dict[str, UserModelSpec] = {}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.export.export(module, example)
        torch.export.save(program, str(folder / "model.pt2"))
        specs["torch.export"] = UserModelSpec(str(folder / "model.pt2"))
        torch.jit.save(torch.jit.trace(module, example), str(folder / "model.ts"))
        specs["TorchScript"] = UserModelSpec(str(folder / "model.ts"), input_shapes=tuple(tuple(t.shape) for t in example),
                                             input_dtypes=tuple(str(t.dtype).removeprefix("torch.") for t in example))
        try:
            torch.onnx.export(module, example, str(folder / "model.onnx"), dynamo=False)
            specs["ONNX Runtime"] = UserModelSpec(str(folder / "model.onnx"))
        except Exception as exc:  # noqa: BLE001 - ONNX export is optional here
            print(f"ONNX export failed ({exc}); skipped", file=sys.stderr)
    torch.save(module.state_dict(), folder / "state.pth")
    specs["state dict + --arch"] = UserModelSpec(str(folder / "state.pth"), arch=model)
    return specs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-time", type=float, default=5.0)
    parser.add_argument("--out", default=None, help="output path stem (default docs/results/model-formats-<host>)")
    args = parser.parse_args()

    host = socket.gethostname()
    stem = Path(args.out) if args.out else ROOT / "docs" / "results" / f"model-formats-{host}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    policy = replace(DEFAULT_POLICY, max_time_s=args.max_time, min_time_s=min(DEFAULT_POLICY.min_time_s, args.max_time))
    devices = parse_devices(args.device)
    medians: dict[str, list[float]] = {}
    statuses: dict[str, str] = {}
    environment: dict = {}
    with tempfile.TemporaryDirectory(prefix="devicebench-formats-") as tmp:
        specs = save_formats(args.model, args.batch_size, Path(tmp))
        plans = {"eager (registry)": plan_inference([args.model], devices, [args.batch_size], threads=args.threads, policy=policy)}
        for label, spec in specs.items():
            plans[label] = plan_user_model(spec, devices, [args.batch_size], threads=args.threads, policy=policy)
        for round_ in range(args.rounds):
            for label, configs in plans.items():
                _, records = execute(configs, command=f"bench_model_formats {label}")
                for r in records:
                    statuses[label] = r.status if r.ok else f"{r.status}: {r.message.splitlines()[0][:80]}"
                    environment = environment or r.environment
                    if r.ok and r.latency_ms is not None:
                        medians.setdefault(label, []).append(r.latency_ms.median)
                print(f"round {round_ + 1}/{args.rounds} {label}: {statuses[label]} "
                      f"{medians.get(label, ['-'])[-1]}", file=sys.stderr)
    eager = statistics.median(medians["eager (registry)"]) if medians.get("eager (registry)") else None
    rows = []
    for label in plans:
        values = medians.get(label, [])
        median = statistics.median(values) if values else None
        rows.append({"format": label, "median_ms": median, "rounds_ms": values,
                     "vs_eager": (median / eager) if median and eager else None, "status": statuses.get(label, "")})
    doc = {
        "tool": "devicebench", "benchmark": "model-formats", "model": args.model, "batch_size": args.batch_size,
        "device": args.device, "threads": args.threads, "rounds": args.rounds, "max_time_s": args.max_time,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": rows, "environment": environment,
    }
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    cpu = (environment.get("cpu") or {}).get("model", "?")
    lines = [
        f"# {args.model} batch {args.batch_size} on {args.device}: eager PyTorch vs each model-file format",
        "",
        f"{doc['date']}, {host}, CPU {cpu}, torch {environment.get('torch', '?')}, {args.rounds} interleaved rounds, "
        f"median of the per-round medians (compute latency). Command: `python benchmarks/bench_model_formats.py "
        f"{' '.join(sys.argv[1:])}`",
        "",
        "| Format | Median (ms) | vs eager | Per round (ms) | Status |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        med = f"{row['median_ms']:.3g}" if row["median_ms"] else "-"
        ratio = f"{row['vs_eager']:.2f}x" if row["vs_eager"] else "-"
        lines.append(f"| {row['format']} | {med} | {ratio} | {', '.join(f'{v:.3g}' for v in row['rounds_ms'])} | {row['status']} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.md')} and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
