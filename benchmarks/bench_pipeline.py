"""ResNet-50 from JPEG files to answers on the CPU, with a DataLoader worker sweep.

Question: once the CPU must read and decode the JPEGs that feed the model, which stage is the
bottleneck, how many loader workers pay off on this machine, and what end-to-end throughput
is left? On a machine with a GPU (``--device cpu,cuda``) the same script adds GPU decoding
(``torchvision.io.decode_jpeg(device="cuda")``) and the headline "the GPU's speedup on the
model alone is X; with decoding counted it is Y".

Usage:
    python benchmarks/bench_pipeline.py              # 256 synthetic 500x375 JPEGs, workers 0,1,2 (quiet machine)
    python benchmarks/bench_pipeline.py --quick      # resnet50-tiny, 32 images (a check that it runs)
    python benchmarks/bench_pipeline.py --images DIR # your own folder of .jpg files

Writes docs/results/pipeline-<host>.md and .json.
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
from devicebench.measure.pipeline import PipelineConfig  # noqa: E402
from devicebench.reports.serving import pipeline_headline  # noqa: E402
from devicebench.run.serving import pipeline  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", default="synthetic")
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = ap.parse_args(argv)
    model = "resnet50-tiny" if args.quick else "resnet50"
    workers = tuple(int(w) for w in args.workers.split(","))
    configs = [PipelineConfig(model, DeviceSpec.parse(d), images=args.images, workers=workers,
                              n_items=32 if args.quick else args.items, batch_size=8,
                              size=64 if args.quick else 224) for d in args.device.split(",")]
    _, records = pipeline(configs, command="benchmarks/bench_pipeline.py")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [f"# {model} pipeline ({stamp})", "", "ms per image per stage (read and decode: time inside the loader "
             "workers; wait: the model loop waiting for data); * the split to use.", "",
             "| Model on | Decode | Workers | Images/s | read | decode | wait | copy | model | Bottleneck |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        print(f"{r.model} {r.device.label}: {r.status} {r.message[:200]}")
        for s in r.splits:
            st = s.get("stage_ms_per_item") or {}
            mark = " *" if s is r.best else ""

            def f(key: str) -> str:
                v = st.get(key)
                return f"{v:.3g}" if isinstance(v, (int, float)) else "-"
            rate = f"{s['items_per_s']:.3g}{mark}" if s.get("items_per_s") else s.get("status", "?")
            lines.append(f"| {r.device.label} | {s['decode']} | {s['workers']} | {rate} | {f('read')} | {f('decode')} | "
                         f"{f('wait')} | {f('copy')} | {f('model')} | {s.get('bottleneck', s.get('message', ''))} |")
    lines += [""] + [f"- {line}" for line in pipeline_headline(records)]
    text = "\n".join(lines) + "\n"
    print(text)
    suffix = "-quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"pipeline-vm{suffix}.md").write_text(text)
    (args.out / f"pipeline-vm{suffix}.json").write_text(json.dumps({"when": stamp, "records": [r.to_dict() for r in records]},
                                                                    indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
