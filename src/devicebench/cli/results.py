"""Stored runs: ``history``, ``show``, ``report`` and ``compare`` (issue 7: reports people
share), and :func:`write_report`, which ``infer --html`` and ``run`` use too."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicebench._version import __version__
from devicebench.cli.options import add_db, add_prices, add_wide, open_store, positive_int, prices_from_args
from devicebench.errors import ConfigError

if TYPE_CHECKING:
    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui
    from devicebench.reports.cost import Prices
    from devicebench.results.records import InferenceRecord, RunInfo, TrainingRecord

__all__ = ["REPORT_FORMATS", "add_parsers", "cmd_history", "cmd_show", "cmd_report", "cmd_compare", "write_report"]


#: What ``report`` writes, in this order: its option (``--html``...), metavar and help.
REPORT_FORMATS = {
    "html": ("FILE", "self-contained HTML page (inline figures, no network)"),
    "md": ("FILE|-", "the tables as Markdown"),
    "csv": ("FILE|-", "one row per configuration"),
    "json": ("FILE|-", "the run plus derived figures (speedups, energy, cost)"),
}


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("history", help="list stored runs, newest first")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="show the newest N runs (default 20)")
    add_db(p, writing=False)
    p.set_defaults(handler=cmd_history)

    p = sub.add_parser("show", help="print one stored run in full (inference, tuning and training tables)")
    p.add_argument("run", nargs="?", default="last", help="run id, a unique prefix, or 'last' (default)")
    add_wide(p)
    p.add_argument("--json", metavar="PATH|-", help="write the run as JSON ('-' for stdout; default: none)")
    add_db(p, writing=False)
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("report", help="write a shareable report of a stored run (HTML, Markdown, CSV, JSON)")
    p.add_argument("run", nargs="?", default="last", help="run id, a unique prefix, 'last' (default), or a JSON file")
    p.add_argument("--last", action="store_true", help="the newest run (the default)")
    for fmt, (metavar, what) in REPORT_FORMATS.items():
        p.add_argument(f"--{fmt}", metavar=metavar, help=f"{what} (default: none; with no format, Markdown on stdout)")
    add_prices(p)
    add_db(p, writing=False)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("compare", help="compare two runs (ids in the store, or JSON files from two machines)")
    p.add_argument("run_a", help="baseline: run id, prefix, 'last', or a JSON file")
    p.add_argument("run_b", help="contender: run id, prefix, 'last', or a JSON file")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--md", metavar="FILE|-", help="write the comparison as Markdown (default: none)")
    p.add_argument("--json", metavar="FILE|-", help="write the comparison as JSON (default: none)")
    add_db(p, writing=False)
    p.set_defaults(handler=cmd_compare)


def cmd_history(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.reports.lookback import run_result, run_status
    from devicebench.reports.tables import history_table
    from devicebench.results.loading import training_records
    from devicebench.results.store import default_db_path

    if args.db is None and not default_db_path().exists():  # a new user: not an error, and nothing created
        ui.out.print(f"no runs yet: run `devicebench run` first (results are stored in {default_db_path()})",
                     markup=False, soft_wrap=True)
        return 0
    with open_store(args, writing=False) as store:
        runs = store.runs(limit=args.limit)
        if not runs:
            ui.out.print(f"no runs in {store.path} yet: run `devicebench run`", markup=False)
            return 0
        results: dict[str, str] = {}
        shown = []
        for run in runs:
            records = store.records(run.run_id)
            training = training_records(store.raw_records(run.run_id, "training"))
            results[run.run_id] = run_result(records, training)
            shown.append(replace(run, status=run_status(run, records, training)))
    ui.table(history_table(shown, results))
    return 0


def cmd_show(args: argparse.Namespace, ui: Ui) -> int:
    """One stored run in full: its inference (and tuning) tables, every training record's
    epochs, the training speedup and scaling, and its warnings."""
    from devicebench.reports.lookback import run_result, run_status
    from devicebench.reports.scaling import scaling_table
    from devicebench.reports.tables import detail_table, inference_table, seed_table, warnings_for
    from devicebench.reports.training import epoch_table, speedup_table
    from devicebench.results.jsonio import dump_json, run_document
    from devicebench.results.loading import training_records

    with open_store(args, writing=False) as store:
        run = store.find_run(args.run)
        records = store.records(run.run_id)
        training = training_records(store.raw_records(run.run_id, "training"))
        # --json: every record the run holds, in the order stored; inference and training as
        # read (and checked) above, other kinds (LLM, serving, pipeline, later ones) as stored
        typed = {"inference": iter(records), "training": iter(training)}
        every = [next(typed[r["kind"]]) if r["kind"] in typed else r for r in store.raw_records(run.run_id, None)]
    status = run_status(run, records, training)
    if args.json:
        dump_json(run_document(run, every, partial=status not in ("complete", "failed")), args.json)
    if args.json == "-":
        return 0
    ui.out.print(f"run {run.run_id} ({status}), {run.started_at}, {run.hostname or 'host not recorded'}: "
                 f"{run.command}", markup=False)
    ui.out.print(f"result: {run_result(records, training)}", markup=False)
    if records:
        ui.table(seed_table(records))
        ui.table(detail_table(records) if args.wide else inference_table(records), wide=args.wide)
    for record in training:
        ui.table(epoch_table(record, wide=args.wide), wide=args.wide)
    for table in (speedup_table(training), scaling_table(training)):
        if table is not None:
            ui.table(table, wide=True)
    for warning in warnings_for(records):
        ui.note(f"warning: {warning}", out=True)
    for record in training:
        if not record.ok:
            ui.note(f"warning: {record.model} on {record.device.label} {record.status}: "
                    f"{record.message.splitlines()[0] if record.message else 'no message'}", out=True)
    if not records and not training:
        _show_serving(run.run_id, args, ui)
        from devicebench.reports.llm import llm_detail_table, llm_seed_table  # an LLM run (issue 15)
        from devicebench.results.llm import load_llm_run

        _, llm_records = load_llm_run(run.run_id, args.db)
        if llm_records:
            for phase in ("prefill", "decode"):
                ui.table(llm_seed_table(llm_records, phase))
            ui.table(llm_detail_table(llm_records), wide=args.wide)
    return 0


def _show_serving(run_id: str, args: argparse.Namespace, ui: Ui) -> None:
    """A ``serve``/``pipeline`` run (issue 16): its tables."""
    from devicebench.reports.cost import Prices
    from devicebench.reports.serving import pipeline_headline, pipeline_table, serving_table, trials_table
    from devicebench.results.serving import load_serving

    _, served, pipes = load_serving(run_id, args.db)
    if served:
        ui.table(serving_table(served, Prices()))
        for r in served:
            if r.trials:
                ui.table(trials_table(r))
    if pipes:
        ui.table(pipeline_table(pipes))
        for line in pipeline_headline(pipes):
            ui.out.print(line, markup=False, soft_wrap=True)


def cmd_report(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.reports.export import report_markdown
    from devicebench.results.loading import load_run

    run, records, training = load_run("last" if args.last else args.run, args.db)
    prices = prices_from_args(args)
    if not records and not training and (_serving_report(args, ui, prices) or _llm_report(args, ui, prices)):
        return 0
    if not records and not training:
        ui.err.print(f"run {run.run_id} has no records yet: the report shows its environment only")
    wrote = False
    for fmt in REPORT_FORMATS:
        target = getattr(args, fmt)
        if target:
            write_report(fmt, target, run, records, training, prices)
            if target != "-":
                ui.err.print(f"{fmt.upper()} report written to {target}")
            wrote = True
    if not wrote:
        ui.out.print(report_markdown(run, records, training, prices), markup=False, highlight=False)
        ui.err.print("(use --html FILE for the page with figures)")
    return 0


def cmd_compare(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.reports.compare_view import comparison_markdown, comparison_table
    from devicebench.results.compare import compare_runs
    from devicebench.results.jsonio import dump_json, write_text
    from devicebench.results.loading import load_run

    if not 0 < args.alpha < 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {args.alpha}")
    run_a, recs_a, _ = load_run(args.run_a, args.db)
    run_b, recs_b, _ = load_run(args.run_b, args.db)
    result = compare_runs(run_a, recs_a, run_b, recs_b, alpha=args.alpha)
    _compare_serving(args, ui)
    if not recs_a and not recs_b:  # LLM runs (issue 15): prefill and per-token latency
        from devicebench.results.llm import compare_llm_runs, load_llm_run

        (run_a, llm_a), (run_b, llm_b) = load_llm_run(args.run_a, args.db), load_llm_run(args.run_b, args.db)
        if llm_a or llm_b:
            result = compare_llm_runs(run_a, llm_a, run_b, llm_b, alpha=args.alpha)
    if args.json:
        dump_json(result.to_dict(), args.json)
    if args.md:
        write_text(args.md, comparison_markdown(result))
    if args.json != "-" and args.md != "-":
        for warning in result.warnings:
            ui.warn(warning)
        if result.rows:
            ui.table(comparison_table(result))
        for line in result.notes:
            ui.note(line, out=True)
    return 0


def _serving_report(args: argparse.Namespace, ui: Ui, prices: Prices) -> bool:
    """A ``serve``/``pipeline`` run (issue 16) has its own page; True when one was written."""
    from devicebench.reports.serving import serving_html, serving_json, serving_markdown
    from devicebench.results.jsonio import dump_json, write_text
    from devicebench.results.serving import load_serving

    run, served, pipes = load_serving("last" if args.last else args.run, args.db)
    if not served and not pipes:
        return False
    for fmt in REPORT_FORMATS:
        target = getattr(args, fmt)
        if not target:
            continue
        if fmt == "html":
            write_text(target, serving_html(run, served, pipes, prices))
        elif fmt == "json":
            dump_json(serving_json(run, served, pipes, prices), target)
        else:
            write_text(target, serving_markdown(served, prices))
        if target != "-":
            ui.err.print(f"{fmt.upper()} report written to {target}")
    if not any(getattr(args, fmt) for fmt in REPORT_FORMATS):
        ui.out.print(serving_markdown(served, prices), markup=False, highlight=False)
    return True


def _compare_serving(args: argparse.Namespace, ui: Ui) -> None:
    """Serving runs (issue 16): max rates side by side."""
    from devicebench.reports.serving import compare_serving
    from devicebench.results.serving import load_serving

    _, served_a, _ = load_serving(args.run_a, args.db)
    _, served_b, _ = load_serving(args.run_b, args.db)
    if served_a and served_b and args.json != "-" and args.md != "-":
        ui.out.print(compare_serving(served_a, served_b))


def _llm_report(args: argparse.Namespace, ui: Ui, prices: Prices) -> bool:
    """``report`` of an LLM run (issue 15): its own page, Markdown, llama-bench CSV, JSON.
    False when the run has no LLM records."""
    from devicebench.reports.llm import llama_bench_output, llm_html, llm_markdown
    from devicebench.results.jsonio import dump_json, run_document, write_text
    from devicebench.results.llm import load_llm_run

    run, records = load_llm_run("last" if args.last else args.run, args.db)
    if not records:
        return False
    writers = {
        "html": lambda: write_text(args.html, llm_html(run, records, prices, tool_version=__version__)),
        "md": lambda: write_text(args.md, llm_markdown(run, records, prices)),
        "csv": lambda: write_text(args.csv, llama_bench_output(records, "csv", tool_version=__version__)),
        "json": lambda: dump_json(run_document(run, records, partial=run.status != "complete"), args.json),  # type: ignore[arg-type]
    }
    wrote = False
    for fmt, write in writers.items():
        target = getattr(args, fmt)
        if target:
            write()
            if target != "-":
                ui.err.print(f"{fmt.upper()} report written to {target}")
            wrote = True
    if not wrote:
        ui.out.print(llm_markdown(run, records, prices), markup=False, highlight=False)
    return True


#: What the HTML report imports: ``run`` imports it while its fork server starts (it would only
#: wait), and a warm server imports it while it has no command to serve, so that a later
#: command can have its report drawn in a child instead of importing matplotlib itself.
REPORT_PRELOAD = ("devicebench.reports.html", "devicebench.reports.figures", "matplotlib.figure",
                  "matplotlib.backends.backend_svg")


def _render_html(run: RunInfo, records: Sequence[InferenceRecord], training: Sequence[TrainingRecord],
                 prices: Prices) -> str:
    """The HTML report, drawn here, or by a child of the warm server when that server has
    imported matplotlib and this process has not (0.3-0.7 s saved on 2 cores). Never lost:
    a child that fails leaves it to this process."""
    import sys

    from devicebench.reports.html import render_html, render_html_job

    job = (run, list(records), list(training), prices, __version__)
    if "matplotlib.figure" not in sys.modules:
        from devicebench.launchers import forkserver
        from devicebench.launchers.worker import run_in_worker

        with forkserver.running_warm_session() as server:
            if server is not None and "matplotlib.figure" in _loaded(server):
                drawn = run_in_worker(render_html_job, job, timeout=600, server=server)
                if drawn.ok and isinstance(drawn.value, str):
                    return drawn.value
    return render_html(*job[:3], prices=prices, tool_version=__version__)


def _loaded(server: Any) -> tuple[str, ...]:
    from devicebench.launchers.forkserver import ForkUnavailable

    try:
        return tuple(server.wait_ready().get("loaded", ()))
    except ForkUnavailable:
        return ()


def write_report(fmt: str, target: str | Path, run: RunInfo, records: Sequence[InferenceRecord],
                 training: Sequence[TrainingRecord], prices: Prices) -> None:
    """Write a run's report in one of :data:`REPORT_FORMATS` to ``target`` ('-': stdout)."""
    from devicebench.reports import export
    from devicebench.results.jsonio import dump_json, write_text

    if fmt == "html":
        write_text(target, _render_html(run, records, training, prices))
    elif fmt == "md":
        write_text(target, export.report_markdown(run, records, training, prices))
    elif fmt == "csv":
        write_text(target, export.report_csv(records, prices))
    else:
        dump_json(export.report_json(run, records, training, prices, tool_version=__version__), target)
