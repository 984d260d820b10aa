"""The ``devicebench`` command: parse arguments, call the library, render. The only module
that prints.

Exit codes: 0 success; 1 a measurement failed (error or crash in a configuration); 2 bad
input (unknown model, missing file, unavailable device, unreadable database); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from devicebench import __version__
from devicebench.errors import ConfigError, DevicebenchError

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
    p.add_argument("model", help="a registered model name (see `devicebench models`)")
    p.add_argument("--device", default="all", help="cpu, cuda, cuda:1, mps, xpu, a comma list, or all (default)")
    p.add_argument("--batch-size", type=_batch_sizes, metavar="N[,N...]", help="batch sizes (default: the model's)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--weights", metavar="PATH", help="local state-dict file (.pt/.pth/.safetensors); random weights otherwise")
    p.add_argument("--quick", action="store_true", help="short warm-up and a 3 s cap per configuration")
    p.add_argument("--min-time", type=_seconds, metavar="S", help="measure at least this long (default 1 s)")
    p.add_argument("--max-time", type=_seconds, metavar="S", help="stop measuring after this long (default 15 s)")
    p.add_argument("--min-iters", type=_positive_int, metavar="N", help="measure at least N calls (default 10)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_tune_options(p, crossover=True)
    _add_db(p, writing=True)

    p = sub.add_parser("run", help="the default suite: seed 000's table on every device found")
    p.add_argument("--quick", action="store_true", help="batch 1 only, short measurements (under a minute on 2 cores)")
    p.add_argument("--devices", default="all", help="devices to use (default: all found)")
    p.add_argument("--threads", type=_positive_int, help="CPU intra-op threads")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout)")
    _add_tune_options(p, crossover=False)
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

    def on_start(index: int, config) -> None:  # type: ignore[no-untyped-def]
        progress.update(task, description=f"[{index + 1}/{len(configs)}] {config.label()}")
        progress.refresh()

    def on_record(index: int, record) -> None:  # type: ignore[no-untyped-def]
        lat = record.user_latency
        what = fmt_ms(lat.median) if record.ok and lat else record.status.upper()
        progress.console.print(f"  {record.model} {record.device.label} b{record.batch_size}: {what}")
        progress.advance(task)
        progress.refresh()

    interrupted = False
    try:
        with progress:
            run, records = execute(configs, command=command, store=store, json_path=args.json,
                                   on_start=on_start, on_record=on_record)
    except KeyboardInterrupt:
        interrupted = True
        if store is not None:
            run_id = store.runs(limit=1)[0].run_id if store.runs(limit=1) else None
            records = store.records(run_id) if run_id else []
        else:
            records = []
    finally:
        if store is not None:
            store.close()
    if records:
        ui.out.print(seed_table(records))
        ui.out.print(detail_table(records))
    for warning in warnings_for(records):
        ui.err.print(f"[yellow]warning:[/] {warning}")
    if interrupted:
        ui.err.print(f"interrupted: {len(records)} finished configuration(s) kept"
                     + (f" in {store.path}" if store is not None else ""))
        return 130
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.json and args.json != "-":
        ui.err.print(f"JSON written to {args.json}")
    failed = [r for r in records if r.status in ("error", "crashed")]
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
    return replace(policy, **changes)


def _cmd_infer(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.devices.discovery import parse_devices
    from devicebench.runner import plan_inference

    if args.tune or args.retune or args.crossover:
        return _cmd_tune(args, ui, [args.model], parse_devices(args.device))
    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    configs = plan_inference(
        [args.model], parse_devices(args.device), args.batch_size, precision=args.precision,
        threads=args.threads, weights=args.weights, policy=_policy_from_args(args),
    )
    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]))


def _cmd_run(args: argparse.Namespace, ui: _Ui) -> int:
    from devicebench.devices.discovery import parse_devices
    from devicebench.runner import plan_suite

    devices = parse_devices(args.devices)
    if args.tune or args.retune:
        from devicebench.runner import QUICK_SUITE

        args.batch_size, args.weights, args.crossover = [1], None, False
        args.min_time = args.max_time = args.min_iters = None
        return _cmd_tune(args, ui, [item.model for item in QUICK_SUITE], devices)
    configs = plan_suite(devices, quick=args.quick, threads=args.threads)
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: measuring the CPU only (the GPU column will say so)")
    return _measure(configs, args, ui, "devicebench " + shlex.join(sys.argv[1:]))


#: Default batch sizes of a crossover sweep.
CROSSOVER_SIZES = (1, 2, 4, 8, 16, 32, 64)


def _cmd_tune(args: argparse.Namespace, ui: _Ui, models: list[str], devices) -> int:  # type: ignore[no-untyped-def]
    """--tune / --crossover: tune each device, print every candidate and both answers."""
    from devicebench.reports.tuning import candidates_table, crossover_table, seed_answer_table
    from devicebench.measure.tuning import QUICK_SCREEN_POLICY, SCREEN_POLICY
    from devicebench.results.jsonio import dump_json
    from devicebench.results.tuning_cache import TuningCache, default_cache_path
    from devicebench.tuner import TuneRequest, tune_and_compare

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


_COMMANDS = {
    "devices": _cmd_devices,
    "models": _cmd_models,
    "infer": _cmd_infer,
    "run": _cmd_run,
    "history": _cmd_history,
    "show": _cmd_show,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devicebench`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    ui = _Ui(json_to_stdout=getattr(args, "json", None) == "-")
    try:
        return _COMMANDS[args.command](args, ui)
    except DevicebenchError as exc:
        if args.debug:
            raise
        ui.err.print(f"devicebench: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        ui.err.print("interrupted")
        return 130
    except BrokenPipeError:
        os._exit(1)
