"""Inference: ``devices``, ``models``, ``infer`` (a registered model or a model file) and
``run`` (the default suite), with their ``--tune`` / ``--crossover`` path."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicebench._version import __version__
from devicebench.cli.options import (
    add_db,
    add_prices,
    add_tune_options,
    add_wide,
    batch_sizes,
    check_outputs,
    command_line,
    model_name,
    open_store,
    policy_from_args,
    positive_int,
    prices_from_args,
    seconds,
)
from devicebench.errors import ConfigError, Terminated

if TYPE_CHECKING:
    from typing import TypeAlias

    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui
    from devicebench.devices.discovery import DeviceSpec
    from devicebench.measure.config import InferenceConfig
    from devicebench.measure.progress import Progress as WorkerProgress
    from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord

    #: Called once the run is finished and stored: the run, its records, its database (or None).
    AfterRun: TypeAlias = Callable[[RunInfo, list[InferenceRecord], Path | None], None]

__all__ = ["add_parsers", "cmd_devices", "cmd_models", "cmd_infer", "cmd_run", "CROSSOVER_SIZES"]

#: Default batch sizes of a crossover sweep.
CROSSOVER_SIZES = (1, 2, 4, 8, 16, 32, 64)


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("devices", help="list the CPU and every accelerator torch can use")
    p.add_argument("--json", metavar="PATH|-", help="write the description as JSON ('-' for stdout; default: none)")
    p.add_argument("--no-copies", action="store_true",
                   help="skip measuring host-device copy speed (a second per accelerator, in a worker; default: measured)")
    p.add_argument("--bandwidth", action="store_true",
                   help="also measure each device's memory bandwidth (a large copy on each device, in a "
                        "worker; several seconds; `llm` measures it anyway; default: off)")
    p.set_defaults(handler=cmd_devices)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("infer", help="time one model on each device and batch size")
    p.add_argument("model", help="a registered model name (see `devicebench models`), or a model file or "
                   "folder: TorchScript, torch.export .pt2, ONNX, Hugging Face folder, state dict with --arch")
    p.add_argument("--device", default="all", help="cpu, cuda, cuda:1, mps, xpu, a comma list, or all (default)")
    p.add_argument("--batch-size", type=batch_sizes, metavar="N[,N...]", help="batch sizes (default: the model's)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                   help="number format of weights and inputs (default fp32)")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--weights", metavar="PATH", help="local state-dict file (.pt/.pth/.safetensors) (default: random weights)")
    own = p.add_argument_group("your own model file (see docs/own-models.md)")
    own.add_argument("--name", type=model_name, metavar="NAME",
                     help="the model's name in tables and the store (default: the file name); give two formats "
                     "of one model the same name to compare them with `devicebench compare`")
    own.add_argument("--arch", metavar="NAME", help="registered architecture for a weights-only file (state dict, safetensors; default: none)")
    own.add_argument("--trust-pickle", action="store_true",
                     help="allow loading a whole pickled module: this RUNS CODE from the file; only for files you trust")
    own.add_argument("--input-shape", action="append", metavar="N,C,H,W",
                     help="input shape, batch first; repeat (or separate with ';') for several inputs "
                     "(default: read from the file where it records them)")
    own.add_argument("--input-dtype", action="append", metavar="DTYPE",
                     help="input dtype (float32, float16, bfloat16, int64, int32, bool...); one per input or one for all "
                     "(default: from the file, else float32)")
    own.add_argument("--input", action="append", dest="input_files", metavar="FILE",
                     help="input tensors from a .npy (allow_pickle=False) or .pt (weights_only) file "
                     "(default: random inputs of the planned shapes)")
    p.add_argument("--quick", action="store_true",
                   help="warm-up of at most 3 s, then at most 3 s of timed calls per loop (build and first call on top)")
    p.add_argument("--min-time", type=seconds, metavar="S", help="measure at least this long (default 1 s)")
    p.add_argument("--max-time", type=seconds, metavar="S", help="stop measuring after this long (default 15 s)")
    p.add_argument("--min-iters", type=positive_int, metavar="N", help="measure at least N calls (default 10)")
    p.add_argument("--pinned", action="store_true",
                   help="end to end on a GPU from pinned (page-locked) host buffers, copied asynchronously "
                   "(default: pageable, what a plain tensor is); the record says which")
    p.add_argument("--duration", type=seconds, metavar="S",
                   help="sustained mode: then keep each device busy S seconds (e.g. 60s) and record throughput, "
                   "clocks and temperature over time (default: no sustained phase)")
    p.add_argument("--html", metavar="PATH", help="also write the HTML report here (default: none)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    add_wide(p)
    add_tune_options(p, crossover=True)
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_infer)

    p = sub.add_parser("run", help="the default suite: ResNet-50 and BERT-base, CPU against each GPU found")
    p.add_argument("--quick", action="store_true", help="batch 1 only, short measurements (under a minute on 2 cores)")
    p.add_argument("--devices", default="all", help="devices to use (default: all found)")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    p.add_argument("--data", metavar="PATH", help="dataset for the small training comparison (default: synthetic)")
    p.add_argument("--no-train", action="store_true", help="skip the small training comparison")
    p.add_argument("--pinned", action="store_true",
                   help="end to end on a GPU from pinned host buffers (default: pageable); the record says which")
    p.add_argument("--html", metavar="PATH", help="write the HTML report here (default: beside the database)")
    add_wide(p)
    add_prices(p)
    add_tune_options(p, crossover=False)
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_run)


def cmd_devices(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.devices.sysinfo import collect_environment
    from devicebench.reports.tables import devices_table
    from devicebench.results.jsonio import dump_json

    env = collect_environment()
    transfers = [] if args.no_copies else _copy_probes(env)
    probes = []
    if args.bandwidth:
        from devicebench.devices.discovery import available_devices
        from devicebench.run.bandwidth import probe_devices

        probes = probe_devices(available_devices())  # each in a worker: the parent never starts CUDA
    if args.json:
        doc = {"tool": "devicebench", "tool_version": __version__, "environment": env.to_dict(),
               "transfer": [t.to_dict() for t in transfers]}
        if probes:
            doc["bandwidth"] = [p.to_dict() for p in probes]
        dump_json(doc, args.json)
    if args.json != "-":
        ui.table(devices_table(env, transfers))
        for probe in probes:
            text = (f"{probe.peak_gbps:.1f} GB/s peak, {probe.median_gbps:.1f} median ({probe.method})"
                    if not probe.error else f"not measured: {probe.error}")
            ui.out.print(f"memory bandwidth {probe.device}: {text}", markup=False, highlight=False)
        ui.out.print(f"Python {env.python}, torch {env.torch}, {env.os}")
    return 0


def _copy_probes(env: Any) -> list[Any]:
    """Host<->device copy speed of each accelerator, measured in one worker (this process
    never initialises a device); the CPU's says "not applicable"."""
    from devicebench.devices.discovery import DeviceSpec
    from devicebench.devices.transfer import NOT_APPLICABLE, TransferProbe, measure_transfers

    probes: list[Any] = [TransferProbe("cpu", applicable=False, note=NOT_APPLICABLE)]
    specs = [DeviceSpec.parse(a.device) for a in env.accelerators]
    if specs:  # only then a worker (a CPU-only machine imports torch once, here)
        from devicebench.launchers.worker import run_in_worker

        result = run_in_worker(measure_transfers, specs, timeout=300)
        if result.ok:
            probes += result.value
        else:
            probes += [TransferProbe(s.torch_device, note=f"copy probe failed: {result.error}") for s in specs]
    return probes


def cmd_models(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.reports.tables import models_table
    from devicebench.workloads.registry import list_models

    from devicebench.reports.tables import llm_models_table
    from devicebench.workloads.llm import list_llms

    ui.table(models_table(list_models()))
    ui.table(llm_models_table(list_llms()))
    return 0


def cmd_infer(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.run.inference import find_devices, plan_inference
    from devicebench.workloads.registry import get_model_entry, list_models

    registered = {e.name: e for e in list_models()}
    # The workers' fork server imports torch while this process plans and checks the run.
    prestart(registered[args.model].preload if args.model in registered else (), report=bool(args.html))
    if args.model not in registered:
        from devicebench.workloads.userfile import looks_like_path

        if looks_like_path(args.model):
            return _infer_file(args, ui)
    own = [flag for flag, value in (("--name", args.name), ("--arch", args.arch), ("--trust-pickle", args.trust_pickle),
                                    ("--input-shape", args.input_shape), ("--input", args.input_files),
                                    ("--input-dtype", args.input_dtype)) if value]
    get_model_entry(args.model)  # UnknownModelError (exit 2) for a name that is neither
    if own:
        raise ConfigError(f"{', '.join(own)} apply to model files; {args.model!r} is a registered model")
    if args.tune or args.retune or args.crossover:
        return _tune(args, ui, [args.model], find_devices(args.device))
    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    configs = plan_inference(
        [args.model], find_devices(args.device), args.batch_size, precision=args.precision,
        threads=args.threads, weights=args.weights, policy=policy_from_args(args),
    )
    if args.duration:
        from dataclasses import replace

        configs = [replace(c, sustained_s=args.duration) for c in configs]

    return _measure(configs, args, ui, after=_html_after(args, ui))


def _html_after(args: argparse.Namespace, ui: Ui) -> AfterRun | None:
    """Write ``--html`` once the run is stored (``None`` without ``--html``)."""
    if not args.html:
        return None

    def write_html(run: RunInfo, records: list[InferenceRecord], db_path: Path | None) -> None:
        from devicebench.cli.results import write_report

        write_report("html", args.html, run, records, [], prices_from_args(args))
        ui.err.print(f"report written to {args.html}")

    return write_html


def _infer_file(args: argparse.Namespace, ui: Ui) -> int:
    """``devicebench infer PATH``: a model file or folder of the user's."""
    from devicebench.run.inference import find_devices, plan_user_model
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
    devices = find_devices(args.device)
    configs = plan_user_model(spec, devices, args.batch_size, precision=args.precision,
                              threads=args.threads, policy=policy_from_args(args))
    resolved = configs[0].user_model
    if args.name:
        from dataclasses import replace

        configs = [replace(c, model=args.name) for c in configs]
    if resolved is not None:
        inputs = ", ".join(f"{p.name} {list(p.shape)} {p.dtype}" for p in resolved.inputs)
        named = f" (named {args.name})" if args.name else ""
        ui.err.print(f"{resolved.name}{named}: {resolved.format} model; inputs {inputs}", markup=False)
        if resolved.format == "pickle":
            ui.err.print("warning: --trust-pickle: this file is unpickled in each worker (it can run code)")
    return _measure(configs, args, ui, after=_html_after(args, ui))


def cmd_run(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.workloads.registry import get_model_entry
    from devicebench.run.inference import QUICK_SUITE, plan_suite

    # First of all: the workers' fork server imports torch while this process imports the
    # rest and plans the run (nothing above imports torch: tests/unit/test_forkserver.py).
    prestart(tuple(m for item in QUICK_SUITE for m in get_model_entry(item.model).preload), report=True)
    from devicebench.cli.results import REPORT_PRELOAD, write_report
    from devicebench.cli.training import training_comparison
    from devicebench.results.store import default_db_path
    from devicebench.run.inference import find_devices

    devices = find_devices(args.devices)
    if args.tune or args.retune:
        args.batch_size, args.weights, args.crossover = [1], None, False
        args.min_time = args.max_time = args.min_iters = None
        return _tune(args, ui, [item.model for item in QUICK_SUITE], devices)
    configs = plan_suite(devices, quick=args.quick, threads=args.threads)
    if not any(d.is_accelerator for d in devices):
        ui.err.print("no GPU found: measuring the CPU only (the GPU column will say so)")
    training_code = 0

    def after(run: RunInfo, records: list[InferenceRecord], db_path: Path | None) -> None:
        # The training comparison runs once the inference suite is stored, and the report
        # covers both.
        nonlocal training_code
        training: list[TrainingRecord] = []
        if not args.no_train:
            ui.err.print("training comparison (tinycnn-tiny, 3 short epochs): `devicebench train` for the full one")
            store_path = None if args.no_db else (args.db or default_db_path())
            training_code, training = training_comparison(ui, store_path, devices, data=args.data, join_run=run,
                                                          wide=args.wide)
        path = Path(args.html) if args.html else _default_report_path(run.run_id, db_path)
        write_report("html", path, run, records, training, prices_from_args(args))
        ui.err.print(f"report written to {path}")

    import_while_the_server_starts(REPORT_PRELOAD)
    code = _measure(configs, args, ui, after=after)
    return max(code, training_code) if code in (0, 1) else code


def prestart(preload: Sequence[str], *, report: bool = False) -> None:
    """Start (or reach) the workers' fork server now (:func:`forkserver.prestart`); with
    ``report``, a warm server also imports what the HTML report needs once it is idle (for
    the next command's report, drawn in one of its children: see ``cli.results``)."""
    from devicebench.cli.results import REPORT_PRELOAD
    from devicebench.launchers import forkserver

    forkserver.prestart(tuple(preload), REPORT_PRELOAD if report else ())


def _started_warm_server() -> str:
    """`` (started a warm server...)`` when this command started the warm server it uses:
    said once measuring starts (a command that stops at a bad argument says only that)."""
    from devicebench.launchers import forkserver, warmserver

    server = forkserver.active() or forkserver.early()
    if server is None or server.warm is None or not server.warm.get("started"):
        return ""
    return (f"; started a warm server that keeps torch imported for the next commands (it exits after "
            f"{warmserver.idle_seconds() / 60:.0f} min idle; `devicebench server` shows it, "
            "`devicebench server stop` stops it)")


def import_while_the_server_starts(modules: Sequence[str]) -> list[str]:
    """Import ``modules`` now if the fork server is still importing torch: this process
    would only wait for it (the first configuration cannot start before the server is
    ready, and the request for it is sent only after this returns, so nothing measured
    shares the CPU with these imports). Stops as soon as the server is ready; returns what
    it imported."""
    import importlib

    from devicebench.launchers import forkserver

    done = []
    for module in modules:
        if not forkserver.starting():
            break
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        done.append(module)
    return done


def _default_report_path(run_id: str, db_path: Path | None) -> Path:
    folder = (db_path.parent if db_path is not None else Path.cwd()) / "reports"
    return folder / f"devicebench-{run_id}.html"


def _measure(configs: Sequence[InferenceConfig], args: argparse.Namespace, ui: Ui, after: AfterRun | None = None) -> int:
    """Measure each configuration with a progress bar, print the tables, say where the run
    went; then ``after``. Returns the exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from devicebench.cli.progress import live_bar
    from devicebench.reports.progress import RunEstimate, progress_text, run_line
    from devicebench.reports.tables import detail_table, fmt_ms, inference_table, seed_table, warnings_for
    from devicebench.results.records import new_run_id
    from devicebench.run.inference import execute

    if getattr(args, "pinned", False):
        from dataclasses import replace

        configs = [replace(c, pinned=True) for c in configs]
    check_outputs(args)  # before the first configuration, not after the last
    store = open_store(args, writing=True)
    # The bar is redrawn only on events, never by a timer thread: nothing of the harness
    # may run beside the timed work.
    # (on a terminal only: a pipe or a file gets the plain line per finished configuration)
    progress = live_bar(ui.err, TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = progress.add_task("measuring", total=len(configs))
    run_id = new_run_id()  # known here, so that an interrupted run reports its own records
    finished: list[InferenceRecord] = []
    estimate = RunEstimate(len(configs))
    ui.err.print(f"measuring {len(configs)} configuration{'s' if len(configs) != 1 else ''}, "
                 f"each in a fresh process{_started_warm_server()}", markup=False, highlight=False)

    def describe(index: int, config: InferenceConfig, what: str) -> str:
        return run_line(index, len(configs), config.label(), what, estimate)

    def on_start(index: int, config: InferenceConfig) -> None:
        estimate.start()
        progress.update(task, description=describe(index, config, "starting"))
        progress.refresh()

    def on_progress(index: int, config: InferenceConfig, report: WorkerProgress) -> None:
        progress.update(task, description=describe(index, config, progress_text(report)))
        progress.refresh()  # at most once a second: the worker reports no more often

    def on_record(index: int, record: InferenceRecord) -> None:
        lat = record.user_latency
        what = fmt_ms(lat.median) if record.ok and lat else record.status.upper()
        if not record.ok and record.message:
            what += f": {record.message.splitlines()[0]}"  # the cause, at once
        finished.append(record)
        estimate.finish()
        progress.console.print(f"  {record.model} {record.device.label} b{record.batch_size}: {what}")
        progress.advance(task)
        progress.refresh()

    interrupted: KeyboardInterrupt | None = None
    try:
        with progress:
            run, records = execute(configs, command=command_line(), store=store, json_path=args.json,
                                   on_start=on_start, on_record=on_record, run_id=run_id, on_progress=on_progress)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        interrupted = exc
        records = finished
    finally:
        if store is not None:
            store.close()
    if records:
        ui.table(seed_table(records))
        ui.table(detail_table(records) if args.wide else inference_table(records), wide=args.wide)
    for warning in warnings_for(records):
        ui.warn(warning)
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
    if records and not any(r.ok for r in records):
        return 1  # nothing measured (out of memory everywhere, say): 0 would say it all was
    return 1 if failed else 0


def _tune(args: argparse.Namespace, ui: Ui, models: list[str], devices: Sequence[DeviceSpec]) -> int:
    """--tune / --crossover: tune each device, print every candidate and both answers."""
    from devicebench.reports.tuning import candidates_table, crossover_table, seed_answer_table
    from devicebench.results.jsonio import dump_json
    from devicebench.results.tuning_cache import TuningCache, default_cache_path
    from devicebench.run.tuning.candidates import QUICK_SCREEN_POLICY, SCREEN_POLICY
    from devicebench.run.tuning.tuner import TuneRequest, tune_and_compare

    if args.weights and not Path(args.weights).is_file():
        raise ConfigError(f"weights file not found: {args.weights}")
    if getattr(args, "threads", None):
        ui.err.print("note: --threads is ignored with --tune: thread counts are among the candidates")
    if getattr(args, "pinned", False):
        ui.err.print("note: --pinned is ignored with --tune: tuning times pageable host buffers")
    sweep: tuple[int, ...] = ()
    tune_sizes = tuple(args.batch_size or (1,))
    if getattr(args, "crossover", False):
        sweep = tuple(sorted(set(args.batch_size or CROSSOVER_SIZES)))
        tune_sizes = (sweep[0],)
    only = tuple(v.strip() for v in args.candidates.split(",") if v.strip()) if args.candidates else None
    cache = TuningCache(default_cache_path(args.db))
    store = open_store(args, writing=True)
    documents: list[dict[str, Any]] = []
    failed = False
    try:
        for model in models:
            request = TuneRequest(
                model=model, devices=tuple(devices), batch_sizes=tune_sizes, policy=policy_from_args(args),
                screen_policy=QUICK_SCREEN_POLICY if args.quick else SCREEN_POLICY,
                top_k=args.top, only=only, retune=args.retune, crossover=sweep, weights=args.weights,
            )
            report = tune_and_compare(request, command=command_line(), store=store, cache=cache,
                                      on_event=lambda m: ui.err.print(m, markup=False, highlight=False))
            documents.append(report.document())
            for tuning in report.tunings:
                ui.table(candidates_table(tuning, wide=args.wide), wide=args.wide)
            ui.table(seed_answer_table(report.answers, wide=args.wide), wide=args.wide)
            if report.crossover is not None:
                ui.table(crossover_table(report.crossover))
            failed |= any(r.status in ("error", "crashed") and r.tuning is not None and r.tuning.role in ("naive", "best")
                          for r in report.records)
            if store is not None:
                ui.err.print(f"stored as run {report.run.run_id} in {store.path}")
    finally:
        if store is not None:
            store.close()
    if cache.warning:
        ui.warn(cache.warning)
    if args.json:
        dump_json(documents[0] if len(documents) == 1 else {"tool": "devicebench", "runs": documents}, args.json)
        if args.json != "-":
            ui.err.print(f"JSON written to {args.json}")
    return 1 if failed else 0
