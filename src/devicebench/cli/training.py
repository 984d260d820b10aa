"""The ``train`` and ``data`` commands of the CLI (kept apart from cli.py, which only wires
them in). Like cli.py, this module parses nothing and prints: it calls the library and renders.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from devicebench.cli.progress import TrainProgressBar
from devicebench.errors import ConfigError, UserError

__all__ = ["cmd_train", "cmd_data", "training_comparison"]


def _config_from_args(args: argparse.Namespace, data: str):  # type: ignore[no-untyped-def]
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


def cmd_train(args: argparse.Namespace, ui: Any, store: Any, command: str) -> int:
    """Train on each device, print a table per device and the speedup, write figures/JSON."""
    from devicebench.devices.discovery import parse_devices
    from devicebench.reports.training import epoch_table, speedup_table
    from devicebench.run.training import execute_training, resolve_data
    from devicebench.workloads.registry import get_model_entry

    entry = get_model_entry(args.model)
    if entry.task != "image-classification":
        raise ConfigError(f"{args.model} is a {entry.task} model: `train` needs an image classifier")
    nproc = getattr(args, "nproc", None)
    if nproc is not None and nproc != 1:
        return _cmd_train_distributed(args, ui, store, command, nproc)
    if getattr(args, "baseline", None):
        raise ConfigError("--baseline goes with --nproc N (N > 1): it is the one-process run N processes are compared with")
    devices = parse_devices(args.device)
    if args.data in (None, "synthetic"):
        ui.err.print("data: the synthetic Tiny-ImageNet-layout set (use --data PATH for the real one)")
    config = _config_from_args(args, resolve_data(args.data))
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: training on the CPU only" if args.device == "all"
                     else "CPU only: no GPU requested, so no speedup to report")

    def on_start(spec) -> None:  # type: ignore[no-untyped-def]
        ui.err.print(f"training {config.model} on {spec} ({config.epochs} epochs)...")

    def on_record(record) -> None:  # type: ignore[no-untyped-def]
        ui.out.print(epoch_table(record))
        if record.status not in ("ok", "interrupted"):
            ui.err.print(f"[red]{record.device.label} {record.status}:[/] {record.message.splitlines()[0] if record.message else ''}")
        skipped = record.dataset.get("skipped_images", 0)
        if skipped:
            ui.err.print(f"[yellow]warning:[/] {skipped} unreadable image(s) skipped (see `devicebench data inspect`)")
        if record.message and record.status == "ok":
            ui.err.print(f"note: {record.message}")

    try:
        run, records = execute_training(config, devices, command=command, store=store, json_path=args.json,
                                         on_start=on_start, on_record=on_record, progress=TrainProgressBar())
    finally:
        if store is not None:
            store.close()
    table = speedup_table(records)
    if table is not None:
        ui.out.print(table)
    _say_where_written(args, ui, run, records, store)
    if run.status == "interrupted":
        kept = sum(len(r.epochs) for r in records)
        ui.err.print(f"interrupted: {kept} finished epoch(s) kept; `--resume` continues from the last checkpoint")
        return 130
    return 0 if run.status == "complete" else 1


def _cmd_train_distributed(args: argparse.Namespace, ui: Any, store: Any, command: str, nproc: int) -> int:
    """`train --nproc N`: one process (or --baseline), then N DDP processes; the scaling."""
    from devicebench.devices.sysinfo import usable_cores
    from devicebench.reports.scaling import scaling_note, scaling_table
    from devicebench.reports.training import epoch_table
    from devicebench.run.training import distributed_device, execute_scaling, load_baseline, plan_distributed, resolve_data

    spec = distributed_device(args.device)
    plan = plan_distributed(spec.type, nproc, args.threads)  # a bad --nproc fails here, before any training
    config = _config_from_args(args, resolve_data(args.data))
    baseline = load_baseline(args.baseline, config, spec.type) if args.baseline else None
    if args.data in (None, "synthetic"):
        ui.err.print("data: the synthetic Tiny-ImageNet-layout set (use --data PATH for the real one)")

    def on_start(spec, n: int) -> None:  # type: ignore[no-untyped-def]
        if n == 1:
            ui.err.print(f"training {config.model} on {spec} in one process (the baseline, {config.epochs} epochs)...")
        else:
            ui.err.print(f"training {config.model} on {spec.type} with {n} DDP processes ({plan.backend}, "
                         f"{plan.threads_per_rank} thread(s) each, global batch {n * config.batch_size})...")

    def on_record(record) -> None:  # type: ignore[no-untyped-def]
        ui.out.print(epoch_table(record))
        if record.status not in ("ok", "interrupted"):
            ui.err.print(f"[red]{record.device.label} {record.status}:[/] {record.message.splitlines()[0] if record.message else ''}")

    try:
        run, records = execute_scaling(config, spec, plan, command=command, baseline=baseline, store=store, progress=TrainProgressBar(),
                                       json_path=args.json, on_start=on_start, on_record=on_record)
    finally:
        if store is not None:
            store.close()
    table = scaling_table(records)
    if table is not None:
        ui.out.print(table)
    for record in records:
        note = scaling_note(record, usable_cores())
        if note:
            ui.err.print(note)
    _say_where_written(args, ui, run, records, store)
    if run.status == "interrupted":
        return 130
    return 0 if run.status == "complete" else 1


def training_comparison(ui: Any, store_path: Any, devices: Any, data: str | None = None,
                        join_run: Any = None) -> tuple[int, list[Any]]:
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
        ui.out.print(epoch_table(record))
    table = speedup_table(records)
    if table is not None:
        ui.out.print(table)
    return (0 if all(r.ok for r in records) else 1), records


def _say_where_written(args: argparse.Namespace, ui: Any, run: Any, records: list[Any], store: Any) -> None:
    """Write the figures (with ``--plot``) and say where the run, JSON and figures went."""
    if args.plot and any(r.epochs for r in records):
        from devicebench.reports.training_figures import write_figures

        written = write_figures(records, args.plot)
        ui.err.print("figures: " + ", ".join(str(p) for p in written))
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.json and args.json != "-":
        ui.err.print(f"JSON written to {args.json}")


def cmd_data(args: argparse.Namespace, ui: Any) -> int:
    if args.data_command == "inspect":
        return _inspect(args, ui)
    if args.data_command == "make-synthetic":
        from devicebench.workloads.datasets import make_synthetic

        path = make_synthetic(args.out, classes=args.classes, train_per_class=args.train_per_class,
                              val_per_class=args.val_per_class, size=args.size, seed=args.seed,
                              as_zip=args.zip)
        ui.out.print(f"wrote {path}: {args.classes} classes, {args.train_per_class} training and "
                     f"{args.val_per_class} validation images each (3 grayscale, 1 broken on purpose)")
        return 0
    if args.data_command == "download":
        return _download(args, ui)
    raise UserError(f"unknown data action {args.data_command!r}")


def _inspect(args: argparse.Namespace, ui: Any) -> int:
    from rich.table import Table

    from devicebench.results.jsonio import dump_json
    from devicebench.workloads.datasets import inspect_dataset

    report = inspect_dataset(args.path, limit=args.limit)
    if args.json:
        dump_json(report.to_dict(), args.json)
    if args.json == "-":
        return 0
    s = report.summary
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
    ui.out.print(table)
    if report.class_names:
        ui.out.print("first classes: " + "; ".join(report.class_names[:5]))
    for rel in report.broken[:10]:
        ui.out.print(f"  unreadable: {rel}")
    return 0


def _download(args: argparse.Namespace, ui: Any) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from devicebench.workloads.download import download_dataset

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=ui.err, auto_refresh=False, transient=False)
    task = progress.add_task(f"downloading {args.url}", total=None)

    def on_progress(done: int, total: int | None) -> None:
        progress.update(task, completed=done, total=total)
        progress.refresh()

    with progress:
        result = download_dataset(args.url, Path(args.to), sha256=args.sha256, extract=not args.no_extract,
                                  on_progress=on_progress)
    if result.resumed_from:
        ui.err.print(f"resumed from byte {result.resumed_from}")
    ui.out.print(f"archive {result.archive} (sha256 {result.sha256[:16]}...)"
                 + (" checked" if args.sha256 else ""))
    if result.extracted is not None:
        ui.out.print(f"extracted to {result.extracted}: train with --data {result.extracted}")
    return 0
