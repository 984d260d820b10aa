"""``serve`` (a model under load, at a latency target) and ``pipeline`` (files to answers, every
stage timed apart). See docs/serving.md."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from devicebench.cli.options import (
    add_db,
    add_prices,
    command_line,
    open_store,
    positive_int,
    prices_from_args,
)
from devicebench.errors import ConfigError, Terminated

if TYPE_CHECKING:
    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui

__all__ = ["add_parsers", "cmd_pipeline", "cmd_serve"]


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="serve a model under load: the highest request rate that keeps p99 under a target")
    p.add_argument("model", help="a registered model (see `devicebench models`)")
    p.add_argument("--device", default="all", help="cpu, cuda, a comma list, or all (default); each in its own worker")
    p.add_argument("--scenario", default="server", help="server (default), single-stream, offline or concurrency")
    p.add_argument("--slo", default="p99=15ms", metavar="pQ=LATENCY",
                   help="latency target of the server scenario (default p99=15ms, MLPerf's ResNet-50 server bound)")
    p.add_argument("--max-batch", default="1", metavar="N", help="dynamic batching: at most N requests per batch (default 1)")
    p.add_argument("--max-delay", default="0", metavar="MS",
                   help="dynamic batching: close a batch this long after its first request arrived (default 0)")
    p.add_argument("--duration", default="10", metavar="S", help="seconds of schedule per trial (default 10; stretched to 100 requests, never past 3x)")
    p.add_argument("--concurrency", default="1,2,4,8", metavar="N[,N...]", help="the concurrency scenario's sweep (default 1,2,4,8)")
    p.add_argument("--offline-max-batch", type=positive_int, default=64, metavar="N",
                   help="offline scenario: largest batch tried (default 64)")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads (default: torch's choice; leave a core for the load generator)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                   help="number format of weights and inputs (default fp32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson schedule and the inputs (default 0)")
    p.add_argument("--quick", action="store_true", help="short trials (2 s) and at most 6 of them")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    p.add_argument("--html", metavar="PATH", help="write the serving report (table, p99 curve, trials) here (default: none)")
    add_prices(p)
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("pipeline", help="JPEG files (or text) to answers: read, decode, copy and model timed apart")
    p.add_argument("model", help="a registered model: an image model (resnet50...) or a text model (bert-base...)")
    p.add_argument("--device", default="all", help="where the model runs: cpu, cuda, a comma list, or all (default)")
    p.add_argument("--images", default="synthetic", metavar="DIR|synthetic",
                   help="a folder of .jpg files (read, never written; links and other files skipped), or synthetic (default)")
    p.add_argument("--decode", default="auto", help="cpu, gpu or auto (default: both where the model is on a GPU)")
    p.add_argument("--workers", default="0,2,4", metavar="N[,N...]", help="DataLoader worker counts for CPU decoding (default 0,2,4)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="items per batch (default 8)")
    p.add_argument("--items", type=positive_int, default=64, help="images (or sentences) per split (default 64)")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads of the model (default: torch's choice, recorded)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    p.add_argument("--html", metavar="PATH", help="write the pipeline report here (default: none)")
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_pipeline)


def _number(text: str, what: str, *, integer: bool = False, allow_zero: bool = False, suffix: str = "") -> Any:
    raw = str(text).strip().lower().removesuffix(suffix)
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise ConfigError(f"{what} must be a {'whole ' if integer else ''}number, got {text!r}") from None
    if value < 0 or (value == 0 and not allow_zero) or not math.isfinite(value):
        raise ConfigError(f"{what} must be {'>= 0' if allow_zero else 'positive'}, got {text!r}")
    return value


def _int_list(text: str, what: str, *, allow_zero: bool) -> tuple[int, ...]:
    items = [t for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{what} takes whole numbers like 1,2,4, got {text!r}")
    return tuple(_number(t, what, integer=True, allow_zero=allow_zero) for t in items)


def cmd_serve(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.measure.serving import ServeConfig
    from devicebench.reports.serving import serving_table, trials_table
    from devicebench.run.serving import plan_serve, serve

    duration = _number(args.duration, "--duration", suffix="s")
    max_batch = _number(args.max_batch, "--max-batch", integer=True)
    max_delay = _number(args.max_delay, "--max-delay", allow_zero=True, suffix="ms")
    concurrency = _int_list(args.concurrency, "--concurrency", allow_zero=False)
    configs = plan_serve(args.model, args.device, scenario=args.scenario, slo=args.slo, max_batch=max_batch,
                         max_delay_ms=max_delay, duration_s=duration, concurrency=concurrency,
                         offline_max_batch=args.offline_max_batch, threads=args.threads, precision=args.precision,
                         seed=args.seed, quick=args.quick)
    if max_batch > 1 and max_delay == 0 and args.scenario == "server":
        ui.err.print("note: --max-batch without --max-delay batches only requests already waiting")
    prices = prices_from_args(args)
    store = open_store(args, writing=True)

    def on_start(index: int, config: ServeConfig) -> None:
        ui.err.print(f"[{index + 1}/{len(configs)}] serving {config.label()} ({args.slo})...", markup=False)

    try:
        run, records = serve(configs, command=command_line(), store=store, json_path=args.json, on_start=on_start)
    except KeyboardInterrupt as exc:
        ui.err.print("interrupted: finished devices are kept" + (f" in {store.path}" if store else ""))
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if store is not None:
            store.close()
    if args.json != "-":
        ui.table(serving_table(records, prices))
        for r in records:
            if r.trials:
                ui.table(trials_table(r))
            if r.calibration:
                c = r.calibration
                ui.out.print(f"load generator against a no-op system at {c['rate']:.0f}/s ({r.device.label}): slip p50 "
                             f"{c['slip_p50_ms']:.3f} ms, p99 {c['slip_p99_ms']:.3f} ms; loop overhead p99 "
                             f"{c['overhead_p99_ms']:.3f} ms", markup=False)
            if r.search_note:
                ui.out.print(f"note ({r.device.label}): {r.search_note}", markup=False)
    for r in records:
        for w in r.warnings:
            ui.err.print(f"warning ({r.device.label}): {w}", markup=False, soft_wrap=True)
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.html:
        from devicebench.reports.serving import serving_html
        from devicebench.results.jsonio import write_text

        write_text(args.html, serving_html(run, records, [], prices))
        ui.err.print(f"report written to {args.html}")
    infeasible = [r for r in records if r.status == "infeasible"]
    if infeasible:
        ui.err.print(f"devicebench: error: {infeasible[0].message}", markup=False, soft_wrap=True)
        return 2
    return 1 if any(r.status in ("error", "crashed", "oom") for r in records) else 0


def cmd_pipeline(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.reports.serving import pipeline_headline, pipeline_table
    from devicebench.run.serving import pipeline, plan_pipeline

    workers = _int_list(args.workers, "--workers", allow_zero=True)
    configs = plan_pipeline(args.model, args.device, images=args.images, decode=args.decode, workers=workers,
                            batch_size=args.batch_size, items=args.items, threads=args.threads)
    store = open_store(args, writing=True)
    try:
        run, records = pipeline(configs, command=command_line(), store=store, json_path=args.json,
                                on_start=lambda i, c: ui.err.print(f"[{i + 1}/{len(configs)}] {c.label()}...", markup=False))
    except KeyboardInterrupt as exc:
        ui.err.print("interrupted: finished devices are kept")
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if store is not None:
            store.close()
    if args.json != "-":
        ui.table(pipeline_table(records))
        for line in pipeline_headline(records):
            ui.out.print(line, markup=False, soft_wrap=True)
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.html:
        from devicebench.reports.serving import serving_html
        from devicebench.results.jsonio import write_text

        write_text(args.html, serving_html(run, [], records, prices_from_args(argparse.Namespace())))
        ui.err.print(f"report written to {args.html}")
    bad = [r for r in records if r.status == "bad-input"]
    if bad:
        ui.err.print(f"devicebench: error: {bad[0].message}", markup=False)
        return 2
    return 1 if any(r.status in ("error", "crashed", "oom") for r in records) else 0
