"""Training: ``train`` (one process per device, or ``--nproc N`` data-parallel processes) and
``data inspect | make-synthetic | download`` (issue 4, seed 001); and the small training
comparison that ``run`` adds (:func:`training_comparison`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from devicebench.cli.options import add_db, add_wide, check_outputs, command_line, fraction, open_store, positive_int
from devicebench.cli.progress import TrainProgressBar, live_bar
from devicebench.errors import ConfigError

if TYPE_CHECKING:
    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui
    from devicebench.devices.discovery import DeviceSpec
    from devicebench.measure.training import TrainConfig
    from devicebench.results.records import RunInfo, TrainingRecord
    from devicebench.results.store import Store

#: The official Tiny-ImageNet-200 archive (Stanford CS231n), over https.
TINY_IMAGENET_URL = "https://cs231n.stanford.edu/tiny-imagenet-200.zip"

__all__ = ["TINY_IMAGENET_URL", "add_parsers", "cmd_train", "cmd_data_inspect", "cmd_data_make_synthetic", "cmd_data_download",
           "training_comparison"]


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("train", help="train an image classifier on each device: curves, epoch times, speedup")
    p.add_argument("--data", default="synthetic", metavar="PATH|synthetic",
                   help="Tiny-ImageNet-200 or ImageFolder dataset, folder or .zip (default: a generated synthetic set)")
    p.add_argument("--model", default="tinycnn", help="a registered image model: tinycnn (default), resnet18, their -tiny variants")
    p.add_argument("--device", default="all", help="cpu, cuda, a comma list, or all (default)")
    p.add_argument("--epochs", type=positive_int, default=4, metavar="N", help="epochs per device (default 4)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the initial weights and the data order, the same on every device (default 0)")
    p.add_argument("--amp", action="store_true", help="mixed precision: bf16 (fp16 without bf16) autocast on GPU, bf16 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--target-acc", type=fraction, metavar="A", help="report the time to reach this validation top-1 (0.5 or 50%%; default: none)")
    p.add_argument("--classes", type=positive_int, metavar="N", help="use the first N classes only (default: all)")
    p.add_argument("--train-per-class", type=positive_int, metavar="K",
                   help="use K training images per class (default: all)")
    p.add_argument("--image-size", type=positive_int, default=64, help="train at this size (default 64)")
    p.add_argument("--loader", choices=["stream", "memory"], default="stream",
                   help="stream (default): DataLoader workers decode each epoch; memory: decode once, keep uint8 on the device")
    p.add_argument("--workers", type=int, default=min(4, max(1, (os.cpu_count() or 2) - 1)),
                   help="DataLoader worker processes (default: min(4, cores - 1))")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--no-augment", action="store_true", help="no random flips and shifts")
    p.add_argument("--checkpoint-dir", metavar="DIR", help="where a checkpoint is kept after each epoch (default: the user cache)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same settings")
    p.add_argument("--plot", metavar="DIR", help="write Figure 1 (loss) and Figure 2 (accuracy) here, PNG and SVG (default: no figures)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train with N DistributedDataParallel processes on this machine (gloo on cpu, nccl on cuda, "
                        "one GPU each) and report the scaling efficiency over one process (default: one process per device)")
    p.add_argument("--baseline", metavar="JSON",
                   help="with --nproc: reuse this single-process run (a `train --json` file) instead of training it (default: train it)")
    add_wide(p)
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("data", help="inspect or generate training datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("inspect", help="classes, images per split, sizes, grayscale and broken files")
    q.add_argument("path", help="dataset folder or .zip")
    q.add_argument("--limit", type=positive_int, metavar="N", help="decode only the first N images of each split (default: all)")
    q.add_argument("--json", metavar="PATH|-", help="write the report as JSON ('-' for stdout; default: none)")
    q.set_defaults(handler=cmd_data_inspect)
    q = data_sub.add_parser("make-synthetic", help="write a small learnable set in the Tiny-ImageNet layout")
    q.add_argument("out", help="new folder (or a .zip with --zip)")
    q.add_argument("--classes", type=positive_int, default=10, metavar="N", help="number of classes (default 10)")
    q.add_argument("--train-per-class", type=positive_int, default=40, metavar="K",
                   help="training images per class (default 40)")
    q.add_argument("--val-per-class", type=positive_int, default=10, metavar="K",
                   help="validation images per class (default 10)")
    q.add_argument("--size", type=positive_int, default=64, help="image side in pixels (default 64)")
    q.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the generated images (default 0)")
    q.add_argument("--zip", action="store_true", help="write a .zip like the official archive")
    q.set_defaults(handler=cmd_data_make_synthetic)
    q = data_sub.add_parser("download", help="fetch a dataset archive (resumable, SHA-256 checked) and extract it")
    q.add_argument("name", choices=["tiny-imagenet"], help="the dataset: tiny-imagenet (Tiny-ImageNet-200, about 237 MB)")
    q.add_argument("--to", required=True, metavar="DIR", help="folder for the archive and the extracted set")
    q.add_argument("--url", default=TINY_IMAGENET_URL, help=f"where to fetch it, e.g. a mirror (default {TINY_IMAGENET_URL})")
    q.add_argument("--sha256", metavar="HEX",
                   help="expected SHA-256 of the archive: a mismatch is an error and the file is removed (default: "
                   "no check; the SHA-256 computed is printed in full, compare it with your source's, see docs/training.md)")
    q.add_argument("--no-extract", action="store_true", help="keep the .zip only (train reads zips too)")
    q.set_defaults(handler=cmd_data_download)


# -- train ------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace, ui: Ui) -> int:
    """Train on each device, print a table per device and the speedup, write figures/JSON."""
    from devicebench.workloads.registry import get_model_entry

    check_outputs(args)  # before the first epoch, not after the last
    store = open_store(args, writing=True)
    try:
        entry = get_model_entry(args.model)
        if entry.task != "image-classification":
            raise ConfigError(f"{args.model} is a {entry.task} model: `train` needs an image classifier")
        if args.nproc is not None and args.nproc != 1:
            return _train_distributed(args, ui, store, args.nproc)
        if args.baseline:
            raise ConfigError("--baseline goes with --nproc N (N > 1): it is the one-process run N processes are compared with")
        return _train(args, ui, store)
    finally:
        if store is not None:
            store.close()


def _train(args: argparse.Namespace, ui: Ui, store: Store | None) -> int:
    """One worker per device, one after the other; the GPU/CPU speedup."""
    from devicebench.devices.discovery import parse_devices
    from devicebench.reports.training import speedup_table
    from devicebench.run.training import execute_training, resolve_data

    devices = parse_devices(args.device)
    _note_synthetic(args, ui)
    config = _config_from_args(args, resolve_data(args.data))
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: training on the CPU only" if args.device == "all"
                     else "CPU only: no GPU requested, so no speedup to report")

    def on_start(spec: DeviceSpec) -> None:
        ui.err.print(f"training {config.model} on {spec} ({config.epochs} epochs)...")

    def on_record(record: TrainingRecord) -> None:
        _print_epochs(ui, record, args.wide)
        skipped = record.dataset.get("skipped_images", 0)
        if skipped:
            ui.err.print(f"[yellow]warning:[/] {skipped} unreadable image(s) skipped (see `devicebench data inspect`)")
        if record.message and record.status == "ok":
            ui.err.print(f"note: {record.message}")

    run, records = execute_training(config, devices, command=command_line(), store=store, json_path=args.json,
                                    on_start=on_start, on_record=on_record, progress=TrainProgressBar())
    table = speedup_table(records)
    if table is not None:
        ui.table(table)
    _say_where_written(args, ui, run, records, store)
    if run.status == "interrupted":
        kept = sum(len(r.epochs) for r in records)
        ui.err.print(f"interrupted: {kept} finished epoch(s) kept; `--resume` continues from the last checkpoint")
        return 130
    return 0 if run.status == "complete" else 1


def _train_distributed(args: argparse.Namespace, ui: Ui, store: Store | None, nproc: int) -> int:
    """`train --nproc N`: one process (or --baseline), then N DDP processes; the scaling."""
    from devicebench.devices.sysinfo import usable_cores
    from devicebench.reports.scaling import scaling_note, scaling_table
    from devicebench.run.training import distributed_device, execute_scaling, load_baseline, plan_distributed, resolve_data

    spec = distributed_device(args.device)
    plan = plan_distributed(spec.type, nproc, args.threads)  # a bad --nproc fails here, before any training
    config = _config_from_args(args, resolve_data(args.data))
    baseline = load_baseline(args.baseline, config, spec.type) if args.baseline else None
    _note_synthetic(args, ui)

    def on_start(spec: DeviceSpec, n: int) -> None:
        if n == 1:
            ui.err.print(f"training {config.model} on {spec} in one process (the baseline, {config.epochs} epochs)...")
        else:
            ui.err.print(f"training {config.model} on {spec.type} with {n} DDP processes ({plan.backend}, "
                         f"{plan.threads_per_rank} thread(s) each, global batch {n * config.batch_size})...")

    run, records = execute_scaling(config, spec, plan, command=command_line(), baseline=baseline, store=store,
                                   progress=TrainProgressBar(), json_path=args.json, on_start=on_start,
                                   on_record=lambda record: _print_epochs(ui, record, args.wide))
    table = scaling_table(records)
    if table is not None:
        ui.table(table, wide=True)
    for record in records:
        note = scaling_note(record, usable_cores())
        if note:
            ui.note(note)
    _say_where_written(args, ui, run, records, store)
    if run.status == "interrupted":
        return 130
    return 0 if run.status == "complete" else 1


def _config_from_args(args: argparse.Namespace, data: str) -> TrainConfig:
    from devicebench.measure.training import TrainConfig
    from devicebench.run.training import default_checkpoint_dir

    return TrainConfig(
        data=data, model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, amp=args.amp, compile=args.compile, target_acc=args.target_acc,
        classes=args.classes, train_per_class=args.train_per_class, loader=args.loader,
        workers=max(0, args.workers), augment=not args.no_augment, threads=args.threads,
        image_size=args.image_size, resume=args.resume,
        checkpoint_dir=str(args.checkpoint_dir or default_checkpoint_dir()),
    )


def _note_synthetic(args: argparse.Namespace, ui: Ui) -> None:
    if args.data in (None, "synthetic"):
        ui.err.print("data: a synthetic set in the Tiny-ImageNet layout, not Tiny-ImageNet (use --data PATH for the real one)")
        return
    from devicebench.workloads.datasets import inner_dataset

    inner = inner_dataset(Path(args.data).expanduser())
    if inner is not None:
        ui.err.print(f"data: using {inner}, the Tiny-ImageNet folder inside {args.data}", markup=False)


def _print_epochs(ui: Ui, record: TrainingRecord, wide: bool = False) -> None:
    """A device's epoch table, and its failure in one line."""
    from devicebench.reports.training import epoch_table

    ui.table(epoch_table(record, wide=wide), wide=wide)
    if record.status not in ("ok", "interrupted"):
        ui.err.print(f"[red]{record.device.label} {record.status}:[/] {record.message.splitlines()[0] if record.message else ''}")


def _say_where_written(args: argparse.Namespace, ui: Ui, run: RunInfo, records: Sequence[TrainingRecord],
                       store: Store | None) -> None:
    """Write the figures (with ``--plot``) and say where the run, JSON and figures went."""
    if args.plot and any(r.epochs for r in records):
        from devicebench.reports.training_figures import write_figures

        written = write_figures(records, args.plot)
        ui.err.print("figures: " + ", ".join(str(p) for p in written))
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.json and args.json != "-":
        ui.err.print(f"JSON written to {args.json}")


def training_comparison(ui: Ui, store_path: str | Path | None, devices: Sequence[DeviceSpec], *,
                        data: str | None = None, join_run: RunInfo | None = None,
                        wide: bool = False) -> tuple[int, list[TrainingRecord]]:
    """The small training comparison `devicebench run` adds: tinycnn-tiny, 3 epochs, a subset
    of the synthetic set (or of ``data``), on every device given; about 20-40 s on 2 cores.

    Returns:
        The exit code (0, or 1 when a device's training failed) and the training records.
    """
    from devicebench.measure.training import TrainConfig
    from devicebench.reports.training import epoch_table, speedup_table
    from devicebench.results.store import Store
    from devicebench.run.training import execute_training, resolve_data

    config = TrainConfig(data=resolve_data(data), model="tinycnn-tiny", epochs=3, batch_size=32,
                         lr=5e-3, classes=10, train_per_class=20, image_size=32, loader="memory",
                         workers=0, warmup_steps=5)
    store = Store(store_path) if store_path is not None else None
    try:
        run, records = execute_training(config, devices, command="devicebench run (training comparison)",
                                        store=store, join_run=join_run, progress=TrainProgressBar())
    finally:
        if store is not None:
            store.close()
    for record in records:
        ui.table(epoch_table(record, wide=wide), wide=wide)
    table = speedup_table(records)
    if table is not None:
        ui.table(table)
    return (0 if all(r.ok for r in records) else 1), records


# -- data -------------------------------------------------------------------------------------


def cmd_data_make_synthetic(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.workloads.datasets import make_synthetic

    path = make_synthetic(args.out, classes=args.classes, train_per_class=args.train_per_class,
                          val_per_class=args.val_per_class, size=args.size, seed=args.seed,
                          as_zip=args.zip)
    ui.out.print(f"wrote {path}: {args.classes} classes, {args.train_per_class} training and "
                 f"{args.val_per_class} validation images each (3 grayscale, 1 broken on purpose)")
    return 0


def cmd_data_inspect(args: argparse.Namespace, ui: Ui) -> int:
    from rich.table import Table

    from devicebench.results.jsonio import dump_json
    from devicebench.workloads.datasets import inspect_dataset

    report = inspect_dataset(args.path, limit=args.limit)
    if args.json:
        dump_json(report.to_dict(), args.json)
    if args.json == "-":
        return 0
    s = report.summary
    if s.get("notice"):
        ui.err.print(f"data: {s['notice']}", markup=False)
    table = Table(title=f"{s['path']} ({s['format']}, {s['layout']} layout)", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    classes = f"{s['classes']}"
    table.add_row("classes", classes)
    for split in ("train", "val", "test"):
        table.add_row(f"{split} images", str(s[f"{split}_images"]))
    table.add_row("images decoded", str(report.checked) + (" (sample)" if args.limit else ""))
    table.add_row("image sizes", ", ".join(f"{k}: {v}" for k, v in sorted(report.sizes.items(), key=lambda kv: -kv[1])[:5]) or "-")
    table.add_row("grayscale (converted to RGB)", str(report.grayscale))
    table.add_row("unreadable (skipped)", str(len(report.broken)))
    ui.table(table)
    if report.class_names:
        ui.out.print("first classes: " + "; ".join(report.class_names[:5]))
    for rel in report.broken[:10]:
        ui.out.print(f"  unreadable: {rel}")
    return 0


def cmd_data_download(args: argparse.Namespace, ui: Ui) -> int:
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn

    from devicebench.workloads.download import download_dataset

    progress = live_bar(ui.err, TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    task = progress.add_task(f"downloading {args.url}", total=None)

    def on_progress(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)
        progress.refresh()

    with progress:
        result = download_dataset(args.url, Path(args.to), sha256=args.sha256, extract=not args.no_extract,
                                  on_progress=on_progress)
    if result.resumed_from:
        ui.err.print(f"resumed from byte {result.resumed_from}")
    ui.out.print(f"archive {result.archive}", markup=False)
    ui.out.print(f"sha256 {result.sha256}: " + ("matches --sha256" if args.sha256 else
                 "not checked (no --sha256 given); compare it with the checksum your source publishes"), markup=False)
    if result.extracted is not None:
        ui.out.print(f"extracted to {result.extracted}: train with --data {result.extracted}")
    return 0
