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

from devicebench import __version__
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
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_db(p, writing=True)

    p = sub.add_parser("run", help="the default suite: seed 000's table on every device found")
    p.add_argument("--quick", action="store_true", help="batch 1 only, short measurements (under a minute on 2 cores)")
    p.add_argument("--devices", default="all", help="devices to use (default: all found)")
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_db(p, writing=True)

    p = sub.add_parser("history", help="list stored runs, newest first")
    p.add_argument("--limit", type=_positive_int, default=20)
    _add_db(p, writing=False)

    p = sub.add_parser("show", help="print one stored run")
    p.add_argument("run", nargs="?", default="last", help="run id, a unique prefix, or 'last' (default)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_db(p, writing=False)
    return parser


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


def _measure(configs, args: argparse.Namespace, ui: _Ui, command: str) -> int:  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from devicebench.reports.tables import detail_table, fmt_ms, seed_table, warnings_for
    from devicebench.runner import execute

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
    from devicebench.runner import plan_inference
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
    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    configs = plan_inference(
        [args.model], parse_devices(args.device), args.batch_size, precision=args.precision,
        threads=args.threads, weights=args.weights, policy=_policy_from_args(args),
    )
    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]))


def _is_path(text: str) -> bool:
    from devicebench.workloads.userfile import looks_like_path

    return looks_like_path(text)


def _cmd_infer_file(args: argparse.Namespace, ui: _Ui) -> int:
    """``devicebench infer PATH``: a model file or folder of the user's."""
    from devicebench.devices.discovery import parse_devices
    from devicebench.runner import plan_user_model
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
    from devicebench.runner import plan_suite

    devices = parse_devices(args.devices)
    configs = plan_suite(devices, quick=args.quick, threads=args.threads)
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: measuring the CPU only (the GPU column will say so)")
    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]))


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


_COMMANDS = {
    "devices": _cmd_devices,
    "models": _cmd_models,
    "infer": _cmd_infer,
    "run": _cmd_run,
    "history": _cmd_history,
    "show": _cmd_show,
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
