"""The ``devicebench`` command: parse arguments, call the library, render. The only module
that prints.

Exit codes: 0 success; 1 a measurement failed (error or crash in a configuration); 2 bad
input (unknown model, missing file, unavailable device, unreadable database); 130 Ctrl-C;
143 SIGTERM (finished results are kept in both cases).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from devicebench._version import __version__
from devicebench.errors import ConfigError, DevicebenchError, Terminated

__all__ = ["main", "build_parser"]


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes must be integers like 1,8,32, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _seconds(text: str) -> float:
    raw = text.strip().lower().removesuffix("s")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 10 or 10s, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def _add_db(p: argparse.ArgumentParser, *, writing: bool) -> None:
    p.add_argument("--db", metavar="PATH", help="results database (default: $DEVICEBENCH_DB or the user data folder)")
    if writing:
        p.add_argument("--no-db", action="store_true", help="do not store the results")


def _add_tune_options(p: argparse.ArgumentParser, *, crossover: bool) -> None:
    g = p.add_argument_group("tuning (best against best, see docs/tuning.md)")
    g.add_argument("--tune", action="store_true",
                   help="try every faster configuration per device, check its answer against CPU fp32 eager, "
                   "and set the best CPU against the best GPU beside the naive eager comparison")
    g.add_argument("--retune", action="store_true", help="ignore the tuning cache and tune again (implies --tune)")
    g.add_argument("--candidates", metavar="V[,V...]",
                   help="only these variants (e.g. ort,compile,int8-dynamic); eager always runs")
    g.add_argument("--top", type=_positive_int, default=3, metavar="N",
                   help="finalists re-measured fully per device (default 3)")
    if crossover:
        g.add_argument("--crossover", action="store_true",
                       help="sweep batch sizes with each device's tuned winner, copies timed apart, and find "
                       "the batch size where the GPU starts to win (default sizes 1,2,4,...,64)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devicebench",
        description="How much faster is the GPU than the CPU, for this model, on this machine?",
    )
    parser.add_argument("--version", action="version", version=f"devicebench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("devices", help="list the CPU and every accelerator torch can use")
    p.add_argument("--json", metavar="PATH|-", help="write the description as JSON ('-' for stdout)")

    sub.add_parser("models", help="list the registered models")

    p = sub.add_parser("infer", help="time one model on each device and batch size")
    p.add_argument("model", help="a registered model name (see `devicebench models`), or a model file or "
                   "folder: TorchScript, torch.export .pt2, ONNX, Hugging Face folder, state dict with --arch")
    p.add_argument("--device", default="all", help="cpu, cuda, cuda:1, mps, xpu, a comma list, or all (default)")
    p.add_argument("--batch-size", type=_batch_sizes, metavar="N[,N...]", help="batch sizes (default: the model's)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--weights", metavar="PATH", help="local state-dict file (.pt/.pth/.safetensors); random weights otherwise")
    own = p.add_argument_group("your own model file (see docs/own-models.md)")
    own.add_argument("--arch", metavar="NAME", help="registered architecture for a weights-only file (state dict, safetensors)")
    own.add_argument("--trust-pickle", action="store_true",
                     help="allow loading a whole pickled module: this RUNS CODE from the file; only for files you trust")
    own.add_argument("--input-shape", action="append", metavar="N,C,H,W",
                     help="input shape, batch first; repeat (or separate with ';') for several inputs")
    own.add_argument("--input-dtype", action="append", metavar="DTYPE",
                     help="input dtype (float32, float16, bfloat16, int64, int32, bool...); one per input or one for all")
    own.add_argument("--input", action="append", dest="input_files", metavar="FILE",
                     help="input tensors from a .npy (allow_pickle=False) or .pt (weights_only) file")
    p.add_argument("--quick", action="store_true", help="short warm-up and a 3 s cap per configuration")
    p.add_argument("--min-time", type=_seconds, metavar="S", help="measure at least this long (default 1 s)")
    p.add_argument("--max-time", type=_seconds, metavar="S", help="stop measuring after this long (default 15 s)")
    p.add_argument("--min-iters", type=_positive_int, metavar="N", help="measure at least N calls (default 10)")
    p.add_argument("--duration", type=_seconds, metavar="S",
                   help="sustained mode: then keep each device busy S seconds (e.g. 60s) and record throughput, "
                   "clocks and temperature over time")
    p.add_argument("--html", metavar="PATH", help="also write the HTML report here")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_tune_options(p, crossover=True)
    _add_db(p, writing=True)

    p = sub.add_parser("run", help="the default suite: seed 000's table on every device found")
    p.add_argument("--quick", action="store_true", help="batch 1 only, short measurements (under a minute on 2 cores)")
    p.add_argument("--devices", default="all", help="devices to use (default: all found)")
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    p.add_argument("--data", metavar="PATH", help="dataset for the small training comparison (default: synthetic)")
    p.add_argument("--no-train", action="store_true", help="skip the small training comparison")
    p.add_argument("--html", metavar="PATH", help="write the HTML report here (default: beside the database)")
    _add_prices(p)
    _add_tune_options(p, crossover=False)
    _add_db(p, writing=True)

    _add_training_parsers(sub)

    p = sub.add_parser("history", help="list stored runs, newest first")
    p.add_argument("--limit", type=_positive_int, default=20)
    _add_db(p, writing=False)

    p = sub.add_parser("show", help="print one stored run")
    p.add_argument("run", nargs="?", default="last", help="run id, a unique prefix, or 'last' (default)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_db(p, writing=False)
    _add_report_parsers(sub)
    return parser


def _fraction(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an accuracy like 0.5 or 50%, got {text!r}") from None
    value = value / 100 if text.strip().endswith("%") or value > 1 else value
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy in (0, 1], got {text!r}")
    return value


def _add_training_parsers(sub) -> None:  # type: ignore[no-untyped-def]
    """``devicebench train`` and ``devicebench data ...`` (issue 4, seed 001)."""
    p = sub.add_parser("train", help="train an image classifier on each device: curves, epoch times, speedup")
    p.add_argument("--data", default="synthetic", metavar="PATH|synthetic",
                   help="Tiny-ImageNet-200 or ImageFolder dataset, folder or .zip (default: a generated synthetic set)")
    p.add_argument("--model", default="tinycnn", help="a registered image model (tinycnn, resnet18, their -tiny variants...)")
    p.add_argument("--device", default="all", help="cpu, cuda, a comma list, or all (default)")
    p.add_argument("--epochs", type=_positive_int, default=4)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="mixed precision: bf16 (fp16 without bf16) autocast on GPU, bf16 on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--target-acc", type=_fraction, metavar="A", help="report the time to reach this validation top-1 (0.5 or 50%%)")
    p.add_argument("--classes", type=_positive_int, metavar="N", help="use the first N classes only")
    p.add_argument("--train-per-class", type=_positive_int, metavar="K", help="use K training images per class")
    p.add_argument("--image-size", type=_positive_int, default=64, help="train at this size (default 64)")
    p.add_argument("--loader", choices=["stream", "memory"], default="stream",
                   help="stream: DataLoader workers decode each epoch; memory: decode once, keep uint8 on the device")
    p.add_argument("--workers", type=int, default=min(4, max(1, (os.cpu_count() or 2) - 1)),
                   help="DataLoader worker processes (default: min(4, cores - 1))")
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads")
    p.add_argument("--no-augment", action="store_true", help="no random flips and shifts")
    p.add_argument("--checkpoint-dir", metavar="DIR", help="where a checkpoint is kept after each epoch (default: the user cache)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same settings")
    p.add_argument("--plot", metavar="DIR", help="write Figure 1 (loss) and Figure 2 (accuracy) here, PNG and SVG")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train with N DistributedDataParallel processes (torchrun; gloo on cpu, nccl on cuda, "
                        "one GPU each) and report the scaling efficiency over one process")
    p.add_argument("--baseline", metavar="JSON",
                   help="with --nproc: reuse this single-process run (a `train --json` file) instead of training it")
    _add_db(p, writing=True)

    p = sub.add_parser("data", help="inspect or generate training datasets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("inspect", help="classes, images per split, sizes, grayscale and broken files")
    q.add_argument("path", help="dataset folder or .zip")
    q.add_argument("--limit", type=_positive_int, metavar="N", help="decode only the first N images of each split")
    q.add_argument("--json", metavar="PATH|-", help="write the report as JSON")
    q = data_sub.add_parser("make-synthetic", help="write a small learnable set in the Tiny-ImageNet layout")
    q.add_argument("out", help="new folder (or a .zip with --zip)")
    q.add_argument("--classes", type=_positive_int, default=10)
    q.add_argument("--train-per-class", type=_positive_int, default=40)
    q.add_argument("--val-per-class", type=_positive_int, default=10)
    q.add_argument("--size", type=_positive_int, default=64, help="image side in pixels (default 64)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--zip", action="store_true", help="write a .zip like the official archive")
    q = data_sub.add_parser("download", help="fetch a dataset archive (resumable, SHA-256 checked) and extract it")
    q.add_argument("name", choices=["tiny-imagenet"])
    q.add_argument("--to", required=True, metavar="DIR", help="folder for the archive and the extracted set")
    q.add_argument("--url", default="http://cs231n.stanford.edu/tiny-imagenet-200.zip")
    q.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the archive (a mismatch is an error)")
    q.add_argument("--no-extract", action="store_true", help="keep the .zip only (train reads zips too)")


class _Ui:
    """Where output goes: tables to stdout, unless JSON goes there; progress to stderr."""

    def __init__(self, json_to_stdout: bool = False) -> None:
        # Wide enough for the detail table when output goes to a file or a pipe.
        self.out = Console(stderr=json_to_stdout, highlight=False)
        self.err = Console(stderr=True, highlight=False)
        for console in (self.out, self.err):
            if not console.is_terminal:
                console.width = max(console.width, 160)


def _open_store(args: argparse.Namespace, *, writing: bool):  # type: ignore[no-untyped-def]
    from devicebench.results.store import Store

    if writing and getattr(args, "no_db", False):
        return None
    return Store(args.db)


def _cmd_devices(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.devices.sysinfo import collect_environment
    from devicebench.reports.tables import devices_table
    from devicebench.results.jsonio import dump_json

    env = collect_environment()
    if args.json:
        dump_json({"tool": "devicebench", "tool_version": __version__, "environment": env.to_dict()}, args.json)
    if args.json != "-":
        ui.out.print(devices_table(env))
        ui.out.print(f"Python {env.python}, torch {env.torch}, {env.os}")
    return 0


def _cmd_models(args: argparse.Namespace, ui: _Ui) -> int:
    from rich.table import Table

    from devicebench.workloads.registry import list_models

    table = Table(title="Registered models", title_justify="left")
    for col in ("Name", "Task", "Input", "Default batches", "Description"):
        table.add_column(col)
    for entry in list_models():
        table.add_row(entry.name, entry.task, str(entry.input.shapes(1)[0]),
                      ",".join(map(str, entry.default_batch_sizes)), entry.description)
    ui.out.print(table)
    return 0


def _measure(configs, args: argparse.Namespace, ui: _Ui, command: str, after=None) -> int:  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from devicebench.reports.tables import detail_table, fmt_ms, seed_table, warnings_for
    from devicebench.run.inference import execute

    store = _open_store(args, writing=True)
    # The bar is redrawn only on events, never by a timer thread: nothing of the harness
    # may run beside the timed work.
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=ui.err, auto_refresh=False, transient=False,
    )
    task = progress.add_task("measuring", total=len(configs))
    from devicebench.results.records import new_run_id

    run_id = new_run_id()  # known here, so that an interrupted run reports its own records
    finished: list = []  # type: ignore[type-arg]

    def on_start(index: int, config) -> None:  # type: ignore[no-untyped-def]
        progress.update(task, description=f"[{index + 1}/{len(configs)}] {config.label()}")
        progress.refresh()

    def on_record(index: int, record) -> None:  # type: ignore[no-untyped-def]
        lat = record.user_latency
        what = fmt_ms(lat.median) if record.ok and lat else record.status.upper()
        finished.append(record)
        progress.console.print(f"  {record.model} {record.device.label} b{record.batch_size}: {what}")
        progress.advance(task)
        progress.refresh()

    interrupted: KeyboardInterrupt | None = None
    try:
        with progress:
            run, records = execute(configs, command=command, store=store, json_path=args.json,
                                   on_start=on_start, on_record=on_record, run_id=run_id)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        interrupted = exc
        records = finished
    finally:
        if store is not None:
            store.close()
    if records:
        ui.out.print(seed_table(records))
        ui.out.print(detail_table(records))
    for warning in warnings_for(records):
        ui.err.print(f"[yellow]warning:[/] {warning}")
    if interrupted is not None:
        where = [f"run {run_id} in {store.path}"] if store is not None else []
        if args.json and args.json != "-":
            where.append(f"{args.json} (marked partial)")
        ui.err.print(f"interrupted: {len(records)} finished configuration(s) kept"
                     + (f" in {' and '.join(where)}" if where else ""))
        return 143 if isinstance(interrupted, Terminated) else 130
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.json and args.json != "-":
        ui.err.print(f"JSON written to {args.json}")
    if after is not None:
        after(run, records, store.path if store is not None else None)
    failed = [r for r in records if r.status in ("error", "crashed")]
    if records and all(r.status == "unavailable" for r in records):
        return 2  # nothing could run where it was asked to: the user's choice of device/format
    return 1 if failed else 0


def _policy_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY

    policy = QUICK_POLICY if args.quick else DEFAULT_POLICY
    changes = {}
    if args.min_time is not None:
        changes["min_time_s"] = args.min_time
    if args.max_time is not None:
        changes["max_time_s"] = args.max_time
    if args.min_iters is not None:
        changes["min_iters"] = args.min_iters
    if changes and "max_time_s" not in changes and changes.get("min_time_s", 0) > policy.max_time_s:
        changes["max_time_s"] = changes["min_time_s"]
    if "max_time_s" in changes and "min_time_s" not in changes and changes["max_time_s"] < policy.min_time_s:
        changes["min_time_s"] = changes["max_time_s"]  # a short cap alone shortens the minimum too
    return replace(policy, **changes)


def _cmd_infer(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.devices.discovery import parse_devices
    from devicebench.run.inference import plan_inference
    from devicebench.workloads.registry import get_model_entry, list_models

    registered = args.model in {e.name for e in list_models()}
    if not registered and _is_path(args.model):
        return _cmd_infer_file(args, ui)
    own = [flag for flag, value in (("--arch", args.arch), ("--trust-pickle", args.trust_pickle),
                                    ("--input-shape", args.input_shape), ("--input", args.input_files),
                                    ("--input-dtype", args.input_dtype)) if value]
    get_model_entry(args.model)  # UnknownModelError (exit 2) for a name that is neither
    if own:
        raise ConfigError(f"{', '.join(own)} apply to model files; {args.model!r} is a registered model")
    if args.tune or args.retune or args.crossover:
        return _cmd_tune(args, ui, [args.model], parse_devices(args.device))
    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    configs = plan_inference(
        [args.model], parse_devices(args.device), args.batch_size, precision=args.precision,
        threads=args.threads, weights=args.weights, policy=_policy_from_args(args),
    )
    if args.duration:
        from dataclasses import replace

        configs = [replace(c, sustained_s=args.duration) for c in configs]

    def write_report(run, records, db_path) -> None:  # type: ignore[no-untyped-def]
        _write_report("html", args.html, run, records, [], _prices_from_args(args))
        ui.err.print(f"report written to {args.html}")

    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]),
                    after=write_report if args.html else None)


def _is_path(text: str) -> bool:
    from devicebench.workloads.userfile import looks_like_path

    return looks_like_path(text)


def _cmd_infer_file(args: argparse.Namespace, ui: _Ui) -> int:
    """``devicebench infer PATH``: a model file or folder of the user's."""
    from devicebench.devices.discovery import parse_devices
    from devicebench.run.inference import plan_user_model
    from devicebench.workloads.userfile import UserModelSpec, parse_shape

    if args.weights:
        raise ConfigError("--weights applies to registered models; for a weights file use: devicebench infer FILE --arch NAME")
    shapes = tuple(s for text in args.input_shape for s in parse_shape(text)) if args.input_shape else None
    dtypes = tuple(d.strip().lower() for text in args.input_dtype for d in text.split(",") if d.strip()) if args.input_dtype else None
    if shapes and args.input_files:
        raise ConfigError("give either --input-shape or --input FILE, not both")
    spec = UserModelSpec(
        path=args.model, arch=args.arch, trust_pickle=args.trust_pickle, input_shapes=shapes,
        input_dtypes=dtypes, input_files=tuple(args.input_files) if args.input_files else None,
    )
    devices = parse_devices(args.device)
    configs = plan_user_model(spec, devices, args.batch_size, precision=args.precision,
                              threads=args.threads, policy=_policy_from_args(args))
    resolved = configs[0].user_model
    if resolved is not None:
        inputs = ", ".join(f"{p.name} {list(p.shape)} {p.dtype}" for p in resolved.inputs)
        ui.err.print(f"{resolved.name}: {resolved.format} model; inputs {inputs}", markup=False)
        if resolved.format == "pickle":
            ui.err.print("warning: --trust-pickle: this file is unpickled in each worker (it can run code)")
    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]))


def _cmd_run(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.devices.discovery import parse_devices
    from devicebench.run.inference import plan_suite

    devices = parse_devices(args.devices)
    if args.tune or args.retune:
        from devicebench.run.inference import QUICK_SUITE

        args.batch_size, args.weights, args.crossover = [1], None, False
        args.min_time = args.max_time = args.min_iters = None
        return _cmd_tune(args, ui, [item.model for item in QUICK_SUITE], devices)
    configs = plan_suite(devices, quick=args.quick, threads=args.threads)
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: measuring the CPU only (the GPU column will say so)")
    status = {"code": 0}

    def after(run, records, db_path) -> None:  # type: ignore[no-untyped-def]
        # The training comparison runs once the inference suite is stored, and the report
        # covers both.
        training = []
        if not args.no_train:
            code, training = _run_training_comparison(args, ui, devices, run)
            status["code"] = code
        path = Path(args.html) if args.html else _default_report_path(run.run_id, db_path)
        _write_report("html", path, run, records, training, _prices_from_args(args))
        ui.err.print(f"report written to {path}")

    code = _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]), after=after)
    return max(code, status["code"]) if code in (0, 1) else code


def _run_training_comparison(args: argparse.Namespace, ui: _Ui, devices, run):  # type: ignore[no-untyped-def]
    from devicebench.cli.training import training_comparison
    from devicebench.results.store import default_db_path

    ui.err.print("training comparison (tinycnn-tiny, 3 short epochs): `devicebench train` for the full one")
    store_path = None if args.no_db else (args.db or default_db_path())
    return training_comparison(ui, store_path, devices, data=args.data, join_run=run)


#: Default batch sizes of a crossover sweep.
CROSSOVER_SIZES = (1, 2, 4, 8, 16, 32, 64)


def _cmd_tune(args: argparse.Namespace, ui: _Ui, models: list[str], devices) -> int:  # type: ignore[no-untyped-def]
    """--tune / --crossover: tune each device, print every candidate and both answers."""
    from devicebench.reports.tuning import candidates_table, crossover_table, seed_answer_table
    from devicebench.run.tuning.candidates import QUICK_SCREEN_POLICY, SCREEN_POLICY
    from devicebench.results.jsonio import dump_json
    from devicebench.results.tuning_cache import TuningCache, default_cache_path
    from devicebench.run.tuning.tuner import TuneRequest, tune_and_compare

    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    if getattr(args, "threads", None):
        ui.err.print("note: --threads is ignored with --tune: thread counts are among the candidates")
    sweep: tuple[int, ...] = ()
    tune_sizes = tuple(args.batch_size or (1,))
    if getattr(args, "crossover", False):
        sweep = tuple(sorted(set(args.batch_size or CROSSOVER_SIZES)))
        tune_sizes = (sweep[0],)
    only = tuple(v.strip() for v in args.candidates.split(",") if v.strip()) if args.candidates else None
    cache = TuningCache(default_cache_path(args.db))
    command = "devicebench " + shlex.join(sys.argv[1:])
    store = _open_store(args, writing=True)
    documents = []
    failed = False
    try:
        for model in models:
            request = TuneRequest(
                model=model, devices=tuple(devices), batch_sizes=tune_sizes, policy=_policy_from_args(args),
                screen_policy=QUICK_SCREEN_POLICY if args.quick else SCREEN_POLICY,
                top_k=args.top, only=only, retune=args.retune, crossover=sweep, weights=args.weights,
            )
            report = tune_and_compare(request, command=command, store=store, cache=cache,
                                      on_event=lambda m: ui.err.print(m, markup=False, highlight=False))
            documents.append(report.document())
            for tuning in report.tunings:
                ui.out.print(candidates_table(tuning))
            ui.out.print(seed_answer_table(report.answers))
            if report.crossover is not None:
                ui.out.print(crossover_table(report.crossover))
            failed |= any(r.status in ("error", "crashed") and (r.tuning or {}).get("role") in ("naive", "best")
                          for r in report.records)
            if store is not None:
                ui.err.print(f"stored as run {report.run.run_id} in {store.path}")
    finally:
        if store is not None:
            store.close()
    if cache.warning:
        ui.err.print(f"[yellow]warning:[/] {cache.warning}")
    if args.json:
        dump_json(documents[0] if len(documents) == 1 else {"tool": "devicebench", "runs": documents}, args.json)
        if args.json != "-":
            ui.err.print(f"JSON written to {args.json}")
    return 1 if failed else 0


def _cmd_history(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.reports.tables import history_table

    with _open_store(args, writing=False) as store:
        runs = store.runs(limit=args.limit)
        if not runs:
            ui.out.print(f"no runs in {store.path} yet: run `devicebench run`")
            return 0
        ui.out.print(history_table(runs))
    return 0


def _cmd_show(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.reports.tables import detail_table, seed_table, warnings_for
    from devicebench.results.jsonio import write_json

    with _open_store(args, writing=False) as store:
        run = store.find_run(args.run)
        records = store.records(run.run_id)
    if args.json:
        write_json(args.json, run, records, partial=run.status != "complete")
    if args.json != "-":
        ui.out.print(f"run {run.run_id} ({run.status}), {run.started_at}, {run.hostname}: {run.command}")
        if records:
            ui.out.print(seed_table(records))
            ui.out.print(detail_table(records))
        for warning in warnings_for(records):
            ui.out.print(f"warning: {warning}")
    return 0


def _cmd_train(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.cli.training import cmd_train

    return cmd_train(args, ui, _open_store(args, writing=True), "devicebench " + shlex.join(sys.argv[1:]))


def _cmd_data(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.cli.training import cmd_data

    return cmd_data(args, ui)


_COMMANDS = {
    "train": _cmd_train,
    "data": _cmd_data,
    "devices": _cmd_devices,
    "models": _cmd_models,
    "infer": _cmd_infer,
    "run": _cmd_run,
    "history": _cmd_history,
    "show": _cmd_show,
    "report": lambda args, ui: _cmd_report(args, ui),
    "compare": lambda args, ui: _cmd_compare(args, ui),
}


def _on_sigterm(signum: int, frame: object) -> None:
    # Raised in the main thread wherever it is (usually waiting for a worker): the same
    # clean-up as Ctrl-C runs, then the command exits with 143.
    raise Terminated(f"received signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devicebench`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    ui = _Ui(json_to_stdout=getattr(args, "json", None) == "-")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (main() called from a thread): leave it alone
        previous = None
    try:
        return _COMMANDS[args.command](args, ui)
    except DevicebenchError as exc:
        if args.debug:
            raise
        ui.err.print(f"devicebench: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        ui.err.print("interrupted")
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        os._exit(1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# -- issue 7: reports people share (report, compare, prices) ----------------------------------


def _add_prices(p: argparse.ArgumentParser) -> None:
    p.add_argument("--price", action="append", default=[], metavar="DEVICE=USD_PER_HOUR",
                   help="hourly price of a device: cpu=0.34, cuda=2.5, cuda:1=1.2 or 'RTX 4090=0.4' (repeatable)")
    p.add_argument("--prices", metavar="FILE", help='JSON price file: {"hourly_usd": {...}, "electricity_usd_per_kwh": N}')
    p.add_argument("--electricity", type=float, metavar="USD_PER_KWH", help="electricity price (default 0.15, assumed)")
    p.add_argument("--no-default-prices", action="store_true", help="use only the prices given, not the dated default table")


def _add_report_parsers(sub) -> None:  # type: ignore[no-untyped-def]
    p = sub.add_parser("report", help="write a shareable report of a stored run (HTML, Markdown, CSV, JSON)")
    p.add_argument("run", nargs="?", default="last", help="run id, a unique prefix, 'last' (default), or a JSON file")
    p.add_argument("--last", action="store_true", help="the newest run (the default)")
    p.add_argument("--html", metavar="FILE", help="self-contained HTML page (inline figures, no network)")
    p.add_argument("--md", metavar="FILE|-", help="the tables as Markdown")
    p.add_argument("--csv", metavar="FILE|-", help="one row per configuration")
    p.add_argument("--json", metavar="FILE|-", help="the run plus derived figures (speedups, energy, cost)")
    _add_prices(p)
    _add_db(p, writing=False)

    p = sub.add_parser("compare", help="compare two runs (ids in the store, or JSON files from two machines)")
    p.add_argument("run_a", help="baseline: run id, prefix, 'last', or a JSON file")
    p.add_argument("run_b", help="contender: run id, prefix, 'last', or a JSON file")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--md", metavar="FILE|-", help="write the comparison as Markdown")
    p.add_argument("--json", metavar="FILE|-", help="write the comparison as JSON")
    _add_db(p, writing=False)


def _prices_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from devicebench.reports.cost import Prices, load_price_file, parse_price_option

    prices = load_price_file(args.prices) if getattr(args, "prices", None) else Prices()
    for text in getattr(args, "price", []) or []:
        key, usd = parse_price_option(text)
        prices.hourly[key] = usd
        if not args.prices:
            prices.hourly_source = "option"
    if getattr(args, "electricity", None) is not None:
        if args.electricity < 0:
            raise ConfigError(f"electricity price must be >= 0, got {args.electricity}")
        prices.electricity_usd_per_kwh = args.electricity
        prices.electricity_source = "option"
    if getattr(args, "no_default_prices", False):
        prices.use_defaults = False
    return prices


def _default_report_path(run_id: str, db_path: Path | None) -> Path:
    folder = (db_path.parent if db_path is not None else Path.cwd()) / "reports"
    return folder / f"devicebench-{run_id}.html"


def _write_report(fmt: str, target: str | Path, run, records, training, prices) -> None:  # type: ignore[no-untyped-def]
    from devicebench.reports import export
    from devicebench.results.jsonio import write_text as _write_text

    if fmt == "html":
        from devicebench.reports.html import render_html

        _write_text(target, render_html(run, records, training, prices=prices, tool_version=__version__))
    elif fmt == "md":
        _write_text(target, export.report_markdown(run, records, training, prices))
    elif fmt == "csv":
        _write_text(target, export.report_csv(records, prices))
    else:
        from devicebench.results.jsonio import dump_json

        dump_json(export.report_json(run, records, training, prices, tool_version=__version__), target)


def _cmd_report(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.reports.export import report_markdown
    from devicebench.results.loading import load_run as _load_run

    run, records, training = _load_run("last" if args.last else args.run, args.db)
    prices = _prices_from_args(args)
    if not records and not training:
        ui.err.print(f"run {run.run_id} has no records yet: the report shows its environment only")
    wrote = False
    for fmt in ("html", "md", "csv", "json"):
        target = getattr(args, fmt)
        if target:
            _write_report(fmt, target, run, records, training, prices)
            if target != "-":
                ui.err.print(f"{fmt.upper()} report written to {target}")
            wrote = True
    if not wrote:
        ui.out.print(report_markdown(run, records, training, prices), markup=False, highlight=False)
        ui.err.print("(use --html FILE for the page with figures)")
    return 0


def _cmd_compare(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.reports.compare_view import comparison_markdown, comparison_table
    from devicebench.results.compare import compare_runs
    from devicebench.results.jsonio import write_text as _write_text
    from devicebench.results.loading import load_run as _load_run

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {args.alpha}")
    run_a, recs_a, _ = _load_run(args.run_a, args.db)
    run_b, recs_b, _ = _load_run(args.run_b, args.db)
    result = compare_runs(run_a, recs_a, run_b, recs_b, alpha=args.alpha)
    if args.json:
        from devicebench.results.jsonio import dump_json

        dump_json(result.to_dict(), args.json)
    if args.md:
        _write_text(args.md, comparison_markdown(result))
    if args.json != "-" and args.md != "-":
        for warning in result.warnings:
            ui.err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        if result.rows:
            ui.out.print(comparison_table(result))
        for line in result.notes:
            ui.out.print(line, markup=False)
    return 0
