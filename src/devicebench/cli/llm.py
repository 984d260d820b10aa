"""``devicebench llm MODEL``: prefill and decode tokens/s, TTFT and per-token latency on every
device, each configuration in its own worker; llama-bench's output formats with ``--output``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from devicebench._version import __version__
from devicebench.cli.options import add_db, add_prices, command_line, open_store, positive_int, prices_from_args
from devicebench.errors import ConfigError, Terminated

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from devicebench.cli.options import Subparsers
    from devicebench.cli.ui import Ui
    from devicebench.measure.llm import LlmConfig
    from devicebench.results.llm import LlmRecord

__all__ = ["add_parsers", "cmd_llm"]


def _variants(text: str) -> list[str]:
    from devicebench.measure.llm import VARIANTS

    items = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in items if v not in VARIANTS]
    if not items or bad:
        raise argparse.ArgumentTypeError(f"unknown variant {', '.join(bad) or text!r}: use one of {', '.join(VARIANTS)}")
    return items


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("llm", help="LLM generation: prefill and decode tokens/s, TTFT, per-token latency, CPU against GPU")
    p.add_argument("model", help="a registered LLM (qwen2.5-0.5b, llama-3.2-1b, their -tiny variants; see "
                   "`devicebench models`) or a Hugging Face causal-LM folder (safetensors, no remote code)")
    p.add_argument("--device", default="all", help="cpu, cuda, cuda:1, mps, xpu, a comma list, or all (default)")
    p.add_argument("--prompt", "-p", type=positive_int, default=512, metavar="N", help="prompt tokens (default 512: llama-bench's pp512)")
    p.add_argument("--gen", "-n", type=positive_int, default=128, metavar="M",
                   help="new tokens, exactly (default 128: tg128); EOS is ignored")
    p.add_argument("--batch", type=positive_int, default=1, metavar="B", help="sequences generated together (default 1)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="number format of weights, activations and KV cache (default fp32)")
    p.add_argument("--variant", type=_variants, default=["sdpa"], metavar="V[,V...]",
                   help="eager, sdpa (default: transformers' default), static (static KV cache), static-compile "
                   "(static cache + torch.compile, compile time reported apart), int8-dynamic (CPU), "
                   "packed (CPU: oneDNN pre-packed weights, what makes bf16 decode fast)")
    p.add_argument("--tune", action="store_true",
                   help="try each device's variants and precisions (CPU: bf16, packed bf16 and int8 too, GPU: bf16/fp16, compile), "
                   "check each against CPU fp32, and mark each device's fastest passing one")
    p.add_argument("--repetitions", "-r", type=positive_int, default=5, metavar="N", help="timed repetitions (default 5)")
    p.add_argument("--threads", type=positive_int, help="CPU intra-op threads (default: torch's choice, recorded)")
    p.add_argument("--no-parity", action="store_true", help="skip the CPU fp32 reference and the same-answer check")
    p.add_argument("--output", "-o", choices=["md", "csv", "json", "jsonl"],
                   help="print the results to stdout in llama-bench's format (tables then go to stderr; default: none)")
    p.add_argument("--json", metavar="PATH|-", help="write the run as devicebench JSON ('-' for stdout; default: none)")
    p.add_argument("--html", metavar="PATH", help="write an HTML report of the run (default: none)")
    add_prices(p)
    add_db(p, writing=True)
    p.set_defaults(handler=cmd_llm)


def cmd_llm(args: argparse.Namespace, ui: Ui) -> int:
    from devicebench.devices.discovery import parse_devices
    from devicebench.reports.llm import llama_bench_output, llm_warnings
    from devicebench.results.jsonio import write_text
    from devicebench.results.records import new_run_id
    from devicebench.run.llm import LlmRequest, execute_llm, plan_llm

    if args.output and args.json == "-":
        raise ConfigError("--output and --json - both want stdout: write the JSON to a file")
    out = ui.err if (args.output or args.json == "-") else ui.out
    request = LlmRequest(
        model=args.model, devices=tuple(parse_devices(args.device)), prompt=args.prompt, gen=args.gen,
        batch=args.batch, precision=args.precision, variants=tuple(args.variant), repetitions=args.repetitions,
        threads=args.threads, parity=not args.no_parity, tune=args.tune,
    )
    plan = plan_llm(request)  # bad model, folder, context or variant: one line, before any worker
    prices = prices_from_args(args)
    if not any(c.device.is_accelerator for c, _ in plan):
        ui.err.print("no GPU found: measuring the CPU only (the GPU column will say so)")
    store = open_store(args, writing=True)
    run_id = new_run_id()
    finished: list[LlmRecord] = []

    def on_start(index: int, config: LlmConfig) -> None:
        ui.err.print(f"[{index + 1}/{len(plan)}] {config.label()}", markup=False, highlight=False)

    def on_record(index: int, record: LlmRecord) -> None:
        finished.append(record)
        if record.ok and record.decode_tps and record.prefill_tps:
            what = f"prefill {record.prefill_tps.median:.4g} tok/s, decode {record.decode_tps.median:.4g} tok/s"
        else:
            what = record.status.upper() + (f": {record.message.splitlines()[0]}" if record.message else "")
        ui.err.print(f"  {record.device.label} {record.precision} {record.variant}: {what}", markup=False, highlight=False)

    interrupted: KeyboardInterrupt | None = None
    try:
        run, records = execute_llm(plan, command=command_line(), store=store, json_path=args.json, run_id=run_id,
                                   tune=args.tune, on_start=on_start, on_record=on_record)
    except KeyboardInterrupt as exc:
        interrupted, records = exc, finished
    finally:
        if store is not None:
            store.close()
    if records:
        print_tables(out, records)
    for warning in llm_warnings(records):
        ui.err.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    if args.output:
        write_text("-", llama_bench_output(records, args.output, tool_version=__version__))
    if interrupted is not None:
        ui.err.print(f"interrupted: {len(records)} finished configuration(s) kept"
                     + (f" in run {run_id} in {store.path}" if store is not None else ""))
        return 143 if isinstance(interrupted, Terminated) else 130
    if store is not None:
        ui.err.print(f"stored as run {run.run_id} in {store.path}")
    if args.json and args.json != "-":
        ui.err.print(f"JSON written to {args.json}")
    if args.html:
        from devicebench.reports.llm import llm_html

        write_text(args.html, llm_html(run, records, prices, tool_version=__version__))
        ui.err.print(f"report written to {args.html}")
    failed = [r for r in records if r.status in ("error", "crashed", "oom")]
    return 1 if failed else 0


def print_tables(console: Console, records: Sequence[LlmRecord]) -> None:
    """The seed tables (prefill, decode) and the detail table, fitted to the console's width
    (cells wrap, nothing is cut: see :func:`~devicebench.cli.ui.print_table`)."""
    from devicebench.cli.ui import print_table
    from devicebench.reports.llm import llm_detail_table, llm_seed_table

    for table in (llm_seed_table(records, "prefill"), llm_seed_table(records, "decode"), llm_detail_table(records)):
        print_table(console, table)
