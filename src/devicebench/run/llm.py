"""LLM runs: a request becomes configurations, each measured in its own worker, each record
kept at once through :class:`~devicebench.run.context.RunContext`.

The CPU fp32 reference (``eager`` attention) runs first whenever parity is asked for: its
greedy tokens and logits go to a file in a private temporary folder, and every later
configuration compares itself with them in its own worker. With ``tune`` each device tries
its candidate variants (:func:`candidates`); the fastest decode whose answer passed is marked
``best`` for that device. Nothing is assumed about the CPU's matrix units (AMX, VNNI): bf16
and int8 are measured like every other candidate and win only by measurement.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from devicebench.devices.discovery import DeviceSpec
from devicebench.errors import ConfigError
from devicebench.launchers.worker import run_in_worker
from devicebench.measure.llm import VARIANTS, LlmConfig, LlmOutcome, measure_llm, reference_path
from devicebench.results.llm import LlmRecord
from devicebench.results.records import RunInfo
from devicebench.results.store import Store
from devicebench.run.context import RunContext
from devicebench.workloads.llm import resolve_llm

__all__ = ["REFERENCE", "LlmRequest", "candidates", "execute_llm", "measure_llm_one", "plan_llm"]

#: The configuration every answer is compared with.
REFERENCE = ("eager", "fp32")


@dataclass(frozen=True)
class LlmRequest:
    """What ``devicebench llm`` (or ``db.llm``) asks for.

    Attributes:
        model: a registered LLM name or a Hugging Face causal-LM folder.
        devices: where to measure.
        prompt, gen, batch: tokens per prompt, new tokens per sequence, sequences.
        precision: fp32, bf16 or fp16 (ignored by ``tune``, which tries the device's own).
        variants: how to run the model (:data:`~devicebench.measure.llm.VARIANTS`).
        repetitions: timed repetitions per configuration.
        threads: CPU threads.
        parity: compare every configuration with the CPU fp32 reference.
        tune: try each device's candidates and mark the best passing one.
        seed: weights and prompt.
        probe_bandwidth: measure each device's copy bandwidth in its worker.
    """

    model: str
    devices: tuple[DeviceSpec, ...]
    prompt: int = 512
    gen: int = 128
    batch: int = 1
    precision: str = "fp32"
    variants: tuple[str, ...] = ("sdpa",)
    repetitions: int = 5
    threads: int | None = None
    parity: bool = True
    tune: bool = False
    seed: int = 0
    probe_bandwidth: bool = True


#: Variants that exist only on the CPU: accelerators skip them when a run asks for several devices.
CPU_ONLY = ("int8-dynamic", "packed")


def candidates(device: DeviceSpec) -> list[tuple[str, str]]:
    """(variant, precision) pairs ``--tune`` tries on a device: every one is measured and
    checked; none is skipped on a guess about the hardware."""
    if device.type == "cpu":
        return [("sdpa", "fp32"), ("eager", "fp32"), ("static-compile", "fp32"), ("sdpa", "bf16"),
                ("packed", "bf16"), ("static-compile", "bf16"), ("int8-dynamic", "fp32")]
    return [("sdpa", "fp32"), ("eager", "fp32"), ("sdpa", "bf16"), ("sdpa", "fp16"),
            ("static-compile", "bf16"), ("static-compile", "fp16")]


def plan_llm(request: LlmRequest) -> list[tuple[LlmConfig, str]]:
    """(configuration, role) in the order they run: the reference first when parity is asked
    (role ``reference`` when it is one of the asked configurations, ``parity-reference`` when
    it was added only to check the others: one repetition, shown apart from the tables).

    Raises:
        UnknownModelError: not a registered LLM and not a path.
        ModelFileError: a folder that is not a safetensors causal LM.
        ConfigError: a value out of range, a prompt + gen longer than the model's context,
            a variant that cannot run where asked.
    """
    model = resolve_llm(request.model)
    for v in request.variants:
        if v not in VARIANTS:
            raise ConfigError(f"unknown LLM variant {v!r}: use one of {', '.join(VARIANTS)}")
    base = LlmConfig(model=model, prompt=request.prompt, gen=request.gen, batch=request.batch,
                     precision=request.precision, repetitions=request.repetitions, seed=request.seed,
                     probe_bandwidth=request.probe_bandwidth)  # validates the shared values once
    plan: list[tuple[LlmConfig, str]] = []
    for device in request.devices:
        if request.tune:
            pairs = candidates(device)
        else:
            pairs = [(v, request.precision) for v in request.variants]
            if device.type != "cpu" and set(CPU_ONLY) & set(request.variants):
                pairs = [p for p in pairs if p[0] not in CPU_ONLY]
                if not pairs:
                    raise ConfigError(f"{' and '.join(v for v in CPU_ONLY if v in request.variants)} runs on the CPU "
                                      "only: add another --variant for accelerators")
        for variant, precision in pairs:
            plan.append((replace(base, device=device, variant=variant, precision=precision,
                                 threads=request.threads if device.type == "cpu" else None), ""))
    if request.parity:
        ref_key = (DeviceSpec("cpu"), *REFERENCE)
        index = next((i for i, (c, _) in enumerate(plan) if (c.device, c.variant, c.precision) == ref_key), None)
        if index is None:
            # Not asked for: one untimed-quality run (one repetition, no warm-up, no probe).
            ref = replace(base, device=DeviceSpec("cpu"), variant=REFERENCE[0], precision=REFERENCE[1],
                          repetitions=1, warmup=0, probe_bandwidth=False, threads=request.threads)
            plan.insert(0, (ref, "parity-reference"))
        else:
            plan.insert(0, (plan.pop(index)[0], "reference"))
    return plan


def measure_llm_one(run_id: str, config: LlmConfig, role: str = "", *, in_process: bool = False) -> LlmRecord:
    """One configuration in a fresh worker (or this process, for tests)."""
    if in_process:
        return LlmRecord.from_outcome(run_id, config, measure_llm(config), role=role)
    result = run_in_worker(measure_llm, config)
    if result.ok and isinstance(result.value, LlmOutcome):
        return LlmRecord.from_outcome(run_id, config, result.value, role=role)
    return LlmRecord.failed(run_id, config, result.error, result.detail, role=role)


def _mark_best(records: list[LlmRecord]) -> list[LlmRecord]:
    """Per device, the fastest decode among passing records (the reference passes by
    definition) is marked ``best``; returns the records marked."""
    changed = []
    for label in dict.fromkeys(r.device.label for r in records):
        fair = [r for r in records if r.device.label == label and r.ok and r.decode_tps is not None
                and r.role != "parity-reference"
                and (r.role == "reference" or (r.parity is not None and r.parity.passed))]
        if fair:
            best = max(fair, key=lambda r: r.decode_tps.median if r.decode_tps else 0.0)
            best.best = True
            changed.append(best)
    return changed


def execute_llm(
    plan: Sequence[tuple[LlmConfig, str]],
    *,
    command: str,
    store: Store | None = None,
    json_path: str | Path | None = None,
    run_id: str | None = None,
    tune: bool = False,
    on_start: Callable[[int, LlmConfig], None] | None = None,
    on_record: Callable[[int, LlmRecord], None] | None = None,
    measure: Callable[[str, LlmConfig, str], LlmRecord] | None = None,
) -> tuple[RunInfo, list[LlmRecord]]:
    """Measure each configuration in its own worker, reference first; keep each record at once.

    A Ctrl-C marks the run ``interrupted`` and keeps every finished record (RunContext).
    """
    with tempfile.TemporaryDirectory(prefix="devicebench-llm-") as tmp, \
            RunContext[LlmRecord](command, store=store, json_path=json_path, run_id=run_id) as ctx:
        ref_file = reference_path(tmp)
        have_reference = False
        for index, (config, role) in enumerate(plan):
            if role in ("reference", "parity-reference"):
                config = replace(config, save_reference=ref_file)
            elif have_reference:
                config = replace(config, reference=ref_file)
            if on_start is not None:
                on_start(index, config)
            record = (measure or measure_llm_one)(ctx.run.run_id, config, role)
            if role in ("reference", "parity-reference") and record.ok and Path(ref_file).is_file():
                have_reference = True
            ctx.keep(record)
            if on_record is not None:
                on_record(index, record)
        if tune:
            for record in _mark_best(ctx.records):
                if ctx.store is not None:
                    ctx.store.put_record(record)
    return ctx.run, ctx.records
