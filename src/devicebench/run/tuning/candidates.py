"""Which configurations to try on each device, and how to pick a winner from what was measured.

Tuning is a short screening of every candidate that applies (each in its own worker), then a
full re-measurement of the fastest few that pass the parity check, beside the naive
configuration (eager fp32, torch's default threads). The orchestration (workers, records,
cache) lives in :mod:`devicebench.run.tuning.tuner`; this module is pure planning and selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import Environment, cuda_capability
from devicebench.errors import ConfigError
from devicebench.measure.config import TimingPolicy
from devicebench.measure.inference import ColdStart
from devicebench.measure.parity import ParityResult
from devicebench.measure.variants import cpu_native_bf16, parse_variant, variant_unavailable

__all__ = [
    "Candidate",
    "PlannedCandidate",
    "CandidateResult",
    "NAIVE",
    "SCREEN_POLICY",
    "QUICK_SCREEN_POLICY",
    "plan_candidates",
    "thread_options",
    "rank_for_final",
]

#: Screening: enough to rank candidates, not to publish (a 2 s cap after the first call).
SCREEN_POLICY = TimingPolicy(
    warmup_iters=2, warmup_s=0.2, warmup_max_s=5.0, min_iters=5, min_time_s=0.5, max_time_s=2.0,
    target_rel_ci=0.05,
)
#: Screening with ``--quick``.
QUICK_SCREEN_POLICY = TimingPolicy(
    warmup_iters=2, warmup_s=0.1, warmup_max_s=3.0, min_iters=5, min_time_s=0.2, max_time_s=1.0,
    target_rel_ci=0.05,
)


@dataclass(frozen=True)
class Candidate:
    """One configuration to try: precision, variant and CPU threads (``None``: default)."""

    precision: str = "fp32"
    variant: str = "eager"
    threads: int | None = None

    @property
    def name(self) -> str:
        thr = "" if self.threads is None else f" t{self.threads}"
        return f"{self.variant} {self.precision}{thr}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(precision=data["precision"], variant=data["variant"], threads=data.get("threads"))


#: The naive configuration every result is set against: what a user gets by default.
NAIVE = Candidate()


@dataclass
class PlannedCandidate:
    """A candidate and, when it cannot run here, why."""

    candidate: Candidate
    skip_reason: str | None = None


@dataclass
class CandidateResult:
    """What happened to one candidate during tuning (JSON-ready via :meth:`to_dict`).

    ``status``: ``winner``, ``ok`` (passed, not the fastest), ``rejected`` (parity failed),
    ``failed`` (error or crash), ``skipped`` (cannot run here), ``not_screened`` (filtered).
    """

    name: str
    precision: str
    variant: str
    threads: int | None
    status: str
    reason: str = ""
    screen_median_ms: float | None = None
    screen_ci95: tuple[float, float] | None = None
    final_median_ms: float | None = None
    final_ci95: tuple[float, float] | None = None
    vs_naive: float | None = None
    parity: ParityResult | None = None
    cold_start: ColdStart | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("screen_ci95", "final_ci95"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data


def thread_options(env: Environment | None) -> list[int]:
    """CPU thread counts worth trying: 1, the physical cores, the usable logical cores."""
    logical = (env.cpu.affinity_cores or env.cpu.logical_cores) if env else None
    physical = env.cpu.physical_cores if env else None
    options = {1}
    for n in (physical, logical):
        if n:
            options.add(int(n))
    return sorted(options)


def _cpu_candidates(task: str, env: Environment | None) -> list[PlannedCandidate]:
    vision = task.startswith("image")
    text = task.startswith("text")
    default_threads = torch.get_num_threads()
    out = [PlannedCandidate(NAIVE)]
    out += [PlannedCandidate(Candidate(threads=t)) for t in thread_options(env) if t != default_threads]
    out.append(PlannedCandidate(Candidate(variant="channels_last")))
    out.append(PlannedCandidate(Candidate(variant="compile")))
    if vision:
        out.append(PlannedCandidate(Candidate(variant="channels_last+compile")))
    out.append(PlannedCandidate(Candidate(variant="ort")))
    # onnxruntime defaults to the physical cores: try the other counts explicitly.
    physical = env.cpu.physical_cores if env else None
    out += [PlannedCandidate(Candidate(variant="ort", threads=t)) for t in thread_options(env) if t != physical]
    out.append(PlannedCandidate(Candidate(variant="int8-dynamic")))
    if text:
        out.append(PlannedCandidate(Candidate(variant="int8-dynamic", threads=1)))
    out.append(PlannedCandidate(Candidate(variant="ort-int8")))
    if text:
        out.append(PlannedCandidate(Candidate(variant="ort-int8", threads=1)))
    # Past ONNX Runtime alone (issue 13): its other graph level, OpenVINO's CPU runtime in fp32
    # and bf16, and static int8 calibrated on the workload's inputs (convolution nets) run by
    # each runtime. Each runs only where its check passes, and wins only by measurement.
    out.append(PlannedCandidate(Candidate(variant="ort-extended")))
    if vision:
        out.append(PlannedCandidate(Candidate(variant="ort-int8-static")))
    out.append(PlannedCandidate(Candidate(variant="openvino")))
    out.append(PlannedCandidate(Candidate(variant="openvino-bf16")))
    if vision:
        out.append(PlannedCandidate(Candidate(variant="openvino-int8")))
    native, why = cpu_native_bf16(env)
    bf16 = [Candidate(precision="bf16")]
    if vision:
        # With native bf16 (AVX512-BF16/AMX), oneDNN's fastest convolutions want NHWC.
        bf16.append(Candidate(precision="bf16", variant="channels_last"))
        bf16.append(Candidate(precision="bf16", variant="channels_last+compile"))
    out += [PlannedCandidate(c, None if native else why) for c in bf16]
    out.append(PlannedCandidate(Candidate(precision="fp16"),
                                "fp16 on the CPU runs through conversions in most kernels (slower than fp32)"))
    return out


def _accelerator_candidates(device: DeviceSpec, task: str, env: Environment | None) -> list[PlannedCandidate]:
    vision = task.startswith("image")
    text = task.startswith("text")
    halves = ["fp16", "bf16"]
    bf16_reason = None
    # Judged from the capability a worker recorded, never by asking CUDA here: the parent
    # that plans a run does not touch the device (bf16 tensor cores: Ampere, 8.0, and newer).
    capability = cuda_capability(env, device)
    if capability is not None and capability < (8, 0):
        bf16_reason = f"this GPU (compute capability {capability[0]}.{capability[1]}) has no native bf16"
    out = [PlannedCandidate(NAIVE), PlannedCandidate(Candidate(variant="tf32"))]
    for p in halves:
        reason = bf16_reason if p == "bf16" else None
        out.append(PlannedCandidate(Candidate(precision=p), reason))
        if vision:
            out.append(PlannedCandidate(Candidate(precision=p, variant="channels_last"), reason))
            out.append(PlannedCandidate(Candidate(precision=p, variant="channels_last+compile"), reason))
        if text:
            out.append(PlannedCandidate(Candidate(precision=p, variant="sdpa"), reason))
            out.append(PlannedCandidate(Candidate(precision=p, variant="sdpa+compile"), reason))
        if not vision and not text:
            out.append(PlannedCandidate(Candidate(precision=p, variant="compile"), reason))
        out.append(PlannedCandidate(Candidate(precision=p, variant="cudagraphs"), reason))
        out.append(PlannedCandidate(Candidate(precision=p, variant="compile+cudagraphs"), reason))
    out.append(PlannedCandidate(Candidate(variant="ort")))
    return out


def plan_candidates(
    device: DeviceSpec,
    task: str,
    env: Environment | None,
    *,
    only: Sequence[str] | None = None,
) -> list[PlannedCandidate]:
    """Every candidate for ``device``: those that can run, and those that cannot, with why.

    Args:
        device: where the candidates run.
        task: the model's task (``image-classification``, ``text-embedding``...).
        env: this machine (CPU flags, cores); ``None`` skips what needs it.
        only: keep only candidates whose variant (or ``variant precision``) is listed
            (``eager`` always stays: it is the naive reference); a listed variant that the
            default plan lacks is added (fp32 unless a precision is given).

    Raises:
        ConfigError: ``only`` names an unknown feature.
    """
    planned = _cpu_candidates(task, env) if device.type == "cpu" else _accelerator_candidates(device, task, env)
    if only:
        wanted = {w.strip() for w in only if w.strip()}
        for w in wanted:
            parse_variant(w.split()[0])  # unknown names are a user error, not a silent no-op
        kept = [
            p for p in planned
            if p.candidate == NAIVE or p.candidate.variant in wanted
            or f"{p.candidate.variant} {p.candidate.precision}" in wanted
        ]
        # A combination the default plan lacks (``bf16 compile``, a new feature) is tried as asked.
        for w in sorted(wanted):
            variant, _, precision = w.partition(" ")
            if not any(p.candidate.variant == variant and (not precision or p.candidate.precision == precision)
                       for p in kept):
                kept.append(PlannedCandidate(Candidate(precision=precision or "fp32", variant=variant)))
        planned = kept
    seen: set[Candidate] = set()
    result: list[PlannedCandidate] = []
    for p in planned:
        if p.candidate in seen:
            continue
        seen.add(p.candidate)
        if p.skip_reason is None:
            reason = variant_unavailable(p.candidate.variant, device, env, task, p.candidate.precision)
            if reason:
                p = replace(p, skip_reason=reason)
        result.append(p)
    return result


def rank_for_final(results: Sequence[CandidateResult], top_k: int) -> list[CandidateResult]:
    """The ``top_k`` fastest screened candidates that passed parity, fastest first."""
    if top_k < 1:
        raise ConfigError(f"top must be >= 1, got {top_k}")
    passed = [r for r in results if r.status == "ok" and r.screen_median_ms is not None]
    return sorted(passed, key=lambda r: r.screen_median_ms)[:top_k]  # type: ignore[arg-type,return-value]


@dataclass
class DeviceTuning:
    """The tuning of one model at one batch size on one device (JSON via :meth:`to_dict`).

    ``speedup_vs_naive`` and ``speedup_vs_ort`` are (ratio, low, high): the naive's (or
    ONNX Runtime alone's) median over the winner's, with a 95% bootstrap interval; above 1
    means the winner is faster. ``source`` is ``measured`` (tuned in this run) or ``cache`` (the winner of an earlier run
    with the same model, device and environment, re-measured now).
    """

    model: str
    device: str
    device_name: str
    batch_size: int
    winner: str
    source: str
    why: str
    candidates: list[CandidateResult] = field(default_factory=list)
    speedup_vs_naive: tuple[float, float, float] | None = None
    speedup_vs_ort: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "device": self.device, "device_name": self.device_name,
            "batch_size": self.batch_size, "winner": self.winner, "source": self.source,
            "why": self.why,
            "speedup_vs_naive": list(self.speedup_vs_naive) if self.speedup_vs_naive else None,
            "speedup_vs_ort": list(self.speedup_vs_ort) if self.speedup_vs_ort else None,
            "candidates": [c.to_dict() for c in self.candidates],
        }
