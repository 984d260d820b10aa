"""Compare your own PyTorch model on the CPU and every GPU found, from a script.

Run:  python examples/compare_own_model.py            (a small CNN, batch 1 and 8)
      python examples/compare_own_model.py --quick    (shorter measurements)

Each configuration runs in a fresh process: the module is sent there as a torch.export
program saved in a private temporary folder (see docs/own-models.md).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import devicebench as db


class SmallCNN(nn.Module):
    """Your model: any nn.Module works."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short measurements")
    parser.add_argument("--max-time", type=float, default=None, help="seconds per configuration")
    parser.add_argument("--batch-sizes", default="1,8", help="comma list (default 1,8)")
    parser.add_argument("--devices", default="all", help="cpu, cuda, all (default)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    model = SmallCNN().eval()
    example = torch.randn(1, 3, 64, 64)  # one image, batch first
    results = db.compare(
        model, example, devices=args.devices,
        batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
        quick=args.quick, max_time=args.max_time,
    )
    print(results)  # the seed table: CPU | GPU | speedup [95% CI]
    for row in results.to_dicts():
        median = f"{row['median_ms']:.3g} ms" if row["median_ms"] is not None else "-"
        print(f"{row['device']:>7} batch {row['batch_size']:>3}: {row['status']}, median {median}")
    if args.json:
        results.to_json(args.json)
        print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()
