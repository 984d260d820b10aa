"""Benchmark: epoch time of `devicebench train` and loader throughput (images/s).

Run on a quiet machine (nothing else running); it writes a Markdown summary and the JSON of
the training run under docs/results/:

    PYTHONPATH=src python benchmarks/training_epoch.py --data synthetic --epochs 3 \
        --out docs/results/training-tinycnn-$(hostname).md

Tiny check (what CI runs): --model tinycnn-tiny --epochs 1 --train-per-class 8 --image-size 32
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from devicebench.devices.sysinfo import collect_environment
from devicebench.run.training import resolve_data
from devicebench.workloads.datasets import ImageDataset, collate_skip_broken, load_in_memory, open_dataset


def loader_throughput(data: str, workers: int, batch: int, size: int, classes: int | None, per_class: int | None) -> dict:
    """Images/s decoded by the streaming DataLoader (one full pass, after one warm-up pass
    that starts the workers) and by the one-off in-memory decode."""
    index = open_dataset(data, classes=classes, train_per_class=per_class)
    loader = torch.utils.data.DataLoader(ImageDataset(index.source, index.train, size), batch_size=batch,
                                         num_workers=workers, collate_fn=collate_skip_broken,
                                         persistent_workers=workers > 0)
    for _ in loader:  # warm-up: worker start, file cache
        pass
    start = time.perf_counter()
    n = sum(len(y) for _, y, _ in loader)
    stream = n / (time.perf_counter() - start)
    start = time.perf_counter()
    images, _, _ = load_in_memory(index.source, index.train, size=size, workers=workers)
    memory = len(images) / (time.perf_counter() - start)
    return {"images": n, "workers": workers, "stream_images_per_s": stream, "memory_decode_images_per_s": memory}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--model", default="tinycnn")
    parser.add_argument("--device", default="all")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--classes", type=int)
    parser.add_argument("--train-per-class", type=int)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", default="docs/results/training-benchmark.md")
    args = parser.parse_args()

    data = resolve_data(args.data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    throughput = loader_throughput(data, args.workers, args.batch_size, args.image_size,
                                   args.classes, args.train_per_class)
    cmd = [sys.executable, "-m", "devicebench", "train", "--data", data, "--model", args.model,
           "--device", args.device, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--workers", str(args.workers), "--image-size", str(args.image_size), "--no-db",
           "--json", str(json_path), "--plot", str(out.parent / (out.stem + "-figures"))]
    if args.classes:
        cmd += ["--classes", str(args.classes)]
    if args.train_per_class:
        cmd += ["--train-per-class", str(args.train_per_class)]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        return done.returncode
    records = json.loads(json_path.read_text())["records"]
    env = collect_environment()
    lines = [f"# Training benchmark: {args.model}, batch {args.batch_size}, {args.image_size}x{args.image_size}", "",
             f"Machine: {env.cpu.model}, {env.cpu.logical_cores} logical cores; "
             + (", ".join(a.name for a in env.accelerators) or "no GPU") + f"; torch {env.torch}", "",
             f"Loader ({throughput['workers']} workers, {throughput['images']} images): streaming "
             f"{throughput['stream_images_per_s']:.0f} images/s, in-memory decode "
             f"{throughput['memory_decode_images_per_s']:.0f} images/s", "",
             "| device | epoch | epoch time (s) | samples/s | data wait (s) | compute (s) | val top-1 |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        for e in r["epochs"]:
            lines.append(f"| {r['device']['type']} | {e['epoch']} | {e['epoch_s']:.2f} | {e['samples_per_s']:.0f} | "
                         f"{e['data_wait_s']:.2f} | {e['compute_s']:.2f} | {e['val_top1']:.3f} |")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
