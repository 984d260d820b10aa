"""Best against best: tune each device, check every candidate's answer, sweep batch sizes.

This module joins the stages for ``--tune`` and ``--crossover`` (as :mod:`.runner` does for
plain runs):

1. the reference: CPU fp32 eager on the example inputs, whose output every candidate must
   match (:mod:`.measure.parity`);
2. per device, a short screening of every candidate that applies (one worker each), then a
   full measurement of the fastest few that passed, beside the naive configuration;
3. the winner is cached per model, device, batch size and environment, and re-measured (not
   re-tuned) on the next run unless ``retune``;
4. seed 000's answer: the naive speedup (GPU eager / CPU eager) and the fair one (GPU best /
   CPU best), each with its bootstrap interval;
5. the crossover: each device's winner at each batch size, end to end, with host-to-device
   and device-to-host copies timed apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devicebench.devices.discovery import DeviceSpec
from devicebench.errors import ConfigError
from devicebench.measure.config import DEFAULT_POLICY, InferenceConfig, TimingPolicy
from devicebench.measure.crossover import CrossoverPoint, measure_crossover_point
from devicebench.measure.inference import InferenceOutcome, measure_in_worker, measure_inference
from devicebench.measure.parity import ParityResult, compare_outputs
from devicebench.measure.stats import ratio_ci
from devicebench.run.tuning.candidates import (
    NAIVE,
    SCREEN_POLICY,
    Candidate,
    CandidateResult,
    DeviceTuning,
    plan_candidates,
    rank_for_final,
)
from devicebench.measure.variants import numeric_class, parse_variant
from devicebench.launchers import forkserver
from devicebench.launchers.worker import WorkerResult, run_in_worker
from devicebench.results.jsonio import run_document
from devicebench.results.parts import TransferTimes, TuningInfo
from devicebench.results.records import InferenceRecord, RunInfo
from devicebench.results.store import Store
from devicebench.results.tuning_cache import TuningCache
from devicebench.run.context import RunContext
from devicebench.run.inference import failed_record
from devicebench.run.tuning.sweep import crossover_analysis
from devicebench.workloads.registry import get_model_entry

__all__ = ["TuneRequest", "TuneReport", "SeedAnswer", "tune_and_compare", "Runner", "in_process"]

#: Calls ``func(arg)`` somewhere and returns what came back (a fresh worker by default).
Runner = Callable[[Any, Any], WorkerResult]
#: The peer every CPU result is set against: ONNX Runtime alone, its default threads.
PEER = Candidate(variant="ort")
#: A screening worker may compile a large model on a small CPU: give it time.
SCREEN_TIMEOUT_S = 1800.0


def in_process(func: Any, arg: Any) -> WorkerResult:
    """Run in this process (tests and debugging only: state leaks between configurations)."""
    return WorkerResult(ok=True, value=func(arg))


@dataclass(frozen=True)
class TuneRequest:
    """What to tune and how hard.

    Attributes:
        model: registered model name.
        devices: where to tune (the CPU reference is measured whether or not it is listed).
        batch_sizes: tune at each of these.
        policy: timing of the full measurements (naive and finalists).
        screen_policy: timing of the screening.
        top_k: finalists re-measured fully per device.
        only: restrict candidates to these variants (``None``: all).
        retune: ignore the cache.
        crossover: sweep these batch sizes with each device's winner (empty: no sweep).
        weights, seed: as in :class:`InferenceConfig`.
    """

    model: str
    devices: tuple[DeviceSpec, ...]
    batch_sizes: tuple[int, ...] = (1,)
    policy: TimingPolicy = DEFAULT_POLICY
    screen_policy: TimingPolicy = SCREEN_POLICY
    top_k: int = 3
    only: tuple[str, ...] | None = None
    retune: bool = False
    crossover: tuple[int, ...] = ()
    weights: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"--top must be >= 1, got {self.top_k}")
        if not self.devices:
            raise ConfigError("no device to tune")
        for variant in self.only or ():
            parse_variant(variant.split()[0])  # an unknown name fails now, not after the reference


@dataclass
class SeedAnswer:
    """Seed 000's question for one model and batch size on one accelerator."""

    model: str
    batch_size: int
    accelerator: str | None
    cpu_naive_ms: float | None
    cpu_best_ms: float | None
    cpu_best: str
    gpu_naive_ms: float | None = None
    gpu_best_ms: float | None = None
    gpu_best: str = ""
    naive_speedup: tuple[float, float, float] | None = None
    fair_speedup: tuple[float, float, float] | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for key in ("naive_speedup", "fair_speedup"):
            if data[key] is not None:
                data[key] = {"ratio": data[key][0], "ci95": [data[key][1], data[key][2]]}
        return data


@dataclass
class TuneReport:
    """Everything ``--tune`` / ``--crossover`` produced."""

    run: RunInfo
    records: list[InferenceRecord]
    tunings: list[DeviceTuning] = field(default_factory=list)
    answers: list[SeedAnswer] = field(default_factory=list)
    crossover: dict[str, Any] | None = None

    def document(self, *, partial: bool = False) -> dict[str, Any]:
        doc = run_document(self.run, self.records, partial=partial)
        doc["tuning"] = [t.to_dict() for t in self.tunings]
        doc["seed000"] = [a.to_dict() for a in self.answers]
        if self.crossover is not None:
            doc["crossover"] = self.crossover
        return doc


def _fingerprint_hash(environment: dict[str, Any]) -> str:
    from devicebench.devices.sysinfo import Environment

    try:
        fp = Environment.from_dict(environment).fingerprint()
    except (KeyError, TypeError):
        fp = {"unknown": True}
    fp["onnxruntime"] = environment.get("packages", {}).get("onnxruntime")
    if environment.get("packages", {}).get("openvino"):  # a new OpenVINO may change the winner
        fp["openvino"] = environment["packages"]["openvino"]
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


class _Session:
    """One tuning run: measures through the runner, keeps each record in the run at once."""

    def __init__(self, request: TuneRequest, runner: Runner, ctx: RunContext[InferenceRecord],
                 cache: TuningCache | None, on_event: Callable[[str], None] | None) -> None:
        self.req = request
        self.runner = runner
        self.ctx = ctx
        self.cache = cache
        self.on_event = on_event or (lambda message: None)
        self.entry = get_model_entry(request.model)

    @property
    def run(self) -> RunInfo:
        return self.ctx.run

    # -- measuring ---------------------------------------------------------------------
    def config(self, device: DeviceSpec, batch: int, cand: Candidate, policy: TimingPolicy, *, keep: bool) -> InferenceConfig:
        return InferenceConfig(
            model=self.req.model, device=device, batch_size=batch, precision=cand.precision,
            threads=cand.threads if device.type == "cpu" else None, weights=self.req.weights,
            policy=policy, seed=self.req.seed, variant=cand.variant, keep_output=keep,
        )

    def call(self, func: Any, arg: Any) -> WorkerResult:
        if self.runner is run_in_worker:
            # In a worker of its own, a configuration is measured with what the worker held
            # before it frozen (measure_in_worker: 0.3 s less per candidate).
            func = measure_in_worker if func is measure_inference else func
            return run_in_worker(func, arg, timeout=SCREEN_TIMEOUT_S)
        return self.runner(func, arg)

    def measure(self, config: InferenceConfig) -> tuple[InferenceOutcome | None, str]:
        result = self.call(measure_inference, config)
        if result.ok and isinstance(result.value, InferenceOutcome):
            outcome = result.value
            if outcome.status != "ok":
                return outcome, outcome.message.splitlines()[0] if outcome.message else outcome.status
            return outcome, ""
        return None, result.error or "worker failed"

    def keep(self, record: InferenceRecord) -> None:
        self.ctx.keep(record)

    # -- tuning ------------------------------------------------------------------------
    def reference(self, batch: int) -> InferenceOutcome:
        """CPU fp32 eager with its output: the parity reference, measured with the full policy
        so that it is also the CPU's naive measurement (one worker fewer per run)."""
        self.on_event(f"reference: {self.req.model} cpu b{batch} eager fp32 (also the CPU's naive measurement)")
        config = self.config(DeviceSpec("cpu"), batch, NAIVE, self.req.policy, keep=True)
        outcome, error = self.measure(config)
        if outcome is None or outcome.status != "ok" or outcome.output is None:
            from devicebench.errors import MeasurementError

            raise MeasurementError(f"the CPU fp32 eager reference failed, nothing to compare with: {error}")
        self.reference_config = replace(config, keep_output=False)
        return outcome

    def naive_from_reference(self, reference: InferenceOutcome, batch: int, source: str) -> InferenceRecord:
        output, reference.output = reference.output, None
        try:
            record = InferenceRecord.from_outcome(self.run.run_id, self.reference_config, reference)
        finally:
            reference.output = output
        record.tuning = TuningInfo(role="naive", candidate=NAIVE.name, batch_size=batch, source=source)
        return record

    def screen(self, device: DeviceSpec, batch: int, cand: Candidate, reference: InferenceOutcome,
               reuse: InferenceOutcome | None = None) -> tuple[CandidateResult, InferenceOutcome | None]:
        result = CandidateResult(cand.name, cand.precision, cand.variant, cand.threads, status="failed")
        if reuse is not None:
            outcome, error = reuse, ""
        else:
            self.on_event(f"screening {device} b{batch}: {cand.name}")
            outcome, error = self.measure(self.config(device, batch, cand, self.req.screen_policy, keep=True))
        if outcome is None or outcome.status != "ok":
            result.reason = error
            return result, None
        samples = (outcome.e2e or outcome.compute).samples_ms  # type: ignore[union-attr]
        from devicebench.measure.stats import Summary

        summary = Summary.from_samples(samples)
        result.screen_median_ms, result.screen_ci95 = summary.median, summary.ci95
        result.cold_start = outcome.cold_start
        parity = compare_outputs(outcome.output, reference.output, task=reference.task,
                                 numeric=numeric_class(cand.precision, cand.variant))
        result.parity = parity
        if parity.passed:
            result.status = "ok"
        else:
            result.status, result.reason = "rejected", "; ".join(parity.reasons)
        if outcome is not reference:
            outcome.output = None  # the reference keeps its output for the next candidates
        return result, outcome

    def full(self, device: DeviceSpec, batch: int, cand: Candidate, role: str, source: str) -> InferenceRecord | None:
        self.on_event(f"measuring {device} b{batch}: {cand.name} ({role})")
        config = self.config(device, batch, cand, self.req.policy, keep=False)
        outcome, error = self.measure(config)
        if outcome is None:
            record = failed_record(self.run.run_id, config, error, "")
        else:
            record = InferenceRecord.from_outcome(self.run.run_id, config, outcome)
        record.variant = cand.variant
        record.tuning = TuningInfo(role=role, candidate=cand.name, batch_size=batch, source=source)
        return record

    def tune_device(self, device: DeviceSpec, batch: int, reference: InferenceOutcome) -> tuple[DeviceTuning, InferenceRecord | None, InferenceRecord | None]:
        env = reference.environment
        planned = plan_candidates(device, reference.task, env, only=self.req.only)
        cache_key = None
        fp = _fingerprint_hash(env.to_dict()) if env else "unknown"
        if self.cache is not None:
            cache_key = self.cache.key(self.req.model, device.torch_device, batch, self.req.weights, self.req.seed, fp)
        cached = self.cache.get(cache_key) if (self.cache is not None and cache_key and not self.req.retune) else None
        why = ""
        if cached is not None:
            done = self._from_cache(device, batch, reference, planned, cached)
            if isinstance(done, tuple):
                return self._conclude(device, batch, *done, cache_key=None, fp=fp)
            why = done
            self.on_event(f"  {why.strip()}")
        results: list[CandidateResult] = []
        parity_of: dict[Candidate, ParityResult] = {}
        for p in planned:
            cand = p.candidate
            if p.skip_reason:
                results.append(CandidateResult(cand.name, cand.precision, cand.variant, cand.threads,
                                               status="skipped", reason=p.skip_reason))
                continue
            reuse = reference if (device.type == "cpu" and cand == NAIVE) else None
            res, _ = self.screen(device, batch, cand, reference, reuse=reuse)
            results.append(res)
            if res.parity is not None:
                parity_of[cand] = res.parity
        ranked = rank_for_final(results, self.req.top_k) if any(r.status == "ok" for r in results) else []
        finalists = [Candidate(r.precision, r.variant, r.threads) for r in ranked]
        # ONNX Runtime alone is the peer to beat on the CPU: always measured fully when it ran
        # (even when its answer differs: it is then shown, and cannot win).
        if device.type == "cpu" and PEER not in finalists and any(
            r.name == PEER.name and r.status in ("ok", "rejected") for r in results
        ):
            finalists.append(PEER)
        naive_rec, finals = self._measure_finals(device, batch, reference, finalists, "measured")
        winner = self._fastest(finals, parity_of)
        others = len([r for r in results if r.status in ("ok", "rejected")])
        if winner is not None:
            why += (f"fastest of {len(finals)} finalist(s) re-measured fully, out of {others} candidate(s) "
                    f"screened with parity checked ({sum(r.status == 'rejected' for r in results)} rejected, "
                    f"{sum(r.status == 'failed' for r in results)} failed, {sum(r.status == 'skipped' for r in results)} skipped)")
        return self._conclude(device, batch, results, parity_of, naive_rec, finals, winner, "measured", why,
                              cache_key=cache_key, fp=fp)

    def _from_cache(self, device: DeviceSpec, batch: int, reference: InferenceOutcome, planned: list[Any],
                    cached: dict[str, Any]) -> tuple[Any, ...] | str:
        """Re-measure a cached winner side by side with the naive configuration and, on the CPU,
        ONNX Runtime alone. Returns what :meth:`_conclude` needs when the winner still stands,
        or why it does not (the device is then tuned again)."""
        try:
            winner = Candidate.from_dict(cached["candidate"])
            parse_variant(winner.variant)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            return f"the cached winner is unreadable ({exc}); tuned again. "
        results: list[CandidateResult] = []
        parity_of: dict[Candidate, ParityResult] = {}
        checks = [winner]
        peer_runs = device.type == "cpu" and any(p.candidate == PEER and not p.skip_reason for p in planned)
        if peer_runs and winner != PEER:
            checks.append(PEER)
        for cand in checks:
            res, _ = self.screen(device, batch, cand, reference,
                                 reuse=reference if (device.type == "cpu" and cand == NAIVE) else None)
            results.append(res)
            if res.parity is not None:
                parity_of[cand] = res.parity
        if results[0].status != "ok":
            return f"the cached winner {winner.name} now {results[0].status}: {results[0].reason}; tuned again. "
        finalists = [winner] + ([PEER] if PEER in parity_of and winner != PEER else [])
        naive_rec, finals = self._measure_finals(device, batch, reference, finalists, "cache")
        stale = self._stale(winner, finals, naive_rec)
        if stale:
            return (f"the cached winner {winner.name} (tuned {cached.get('tuned_at', '?')} in run "
                    f"{cached.get('run_id', '?')}) re-measured now is {stale}; tuned again. ")
        why = (f"reused from the tuning cache (tuned {cached.get('tuned_at', '?')} in run "
               f"{cached.get('run_id', '?')}); re-measured now side by side with eager fp32"
               + (" and ONNX Runtime alone" if PEER in finals else "")
               + ", not slower than either beyond its interval, parity re-checked; --retune to tune again")
        return results, parity_of, naive_rec, finals, winner, "cache", why

    @staticmethod
    def _stale(winner: Candidate, finals: dict[Candidate, InferenceRecord | None],
               naive_rec: InferenceRecord | None) -> str:
        """Why a re-measured cached winner cannot stand: it failed, or it is slower than the naive
        configuration or ONNX Runtime alone beyond the 95% interval of the ratio; "" when it stands."""
        rec = finals.get(winner)
        if rec is None or not rec.ok or rec.user_latency is None:
            return "failing in its full measurement"
        for label, cand in (("eager fp32 (naive)", NAIVE), ("ONNX Runtime alone", PEER)):
            other = finals.get(cand) if cand != NAIVE else naive_rec
            if cand == winner or other is None or not other.ok or other.user_latency is None:
                continue
            ratio, low, high = ratio_ci(other.user_samples, rec.user_samples)
            if high < 1.0:  # other / winner below 1 with 95% confidence: the winner is slower
                return (f"slower than {label}: {rec.user_latency.median:.4g} ms against "
                        f"{other.user_latency.median:.4g} ms ({label} / winner {ratio:.2f}x [{low:.2f}-{high:.2f}])")
        return ""

    def _measure_finals(self, device: DeviceSpec, batch: int, reference: InferenceOutcome,
                        finalists: Sequence[Candidate], source: str) -> tuple[InferenceRecord | None, dict[Candidate, InferenceRecord | None]]:
        naive_rec = (self.naive_from_reference(reference, batch, source) if device.type == "cpu"
                     else self.full(device, batch, NAIVE, "naive", source))
        finals: dict[Candidate, InferenceRecord | None] = {}
        for cand in finalists:
            finals[cand] = naive_rec if cand == NAIVE and naive_rec is not None else self.full(device, batch, cand, "finalist", source)
        if naive_rec is not None:
            finals.setdefault(NAIVE, naive_rec)  # the naive is always measured fully
        return naive_rec, finals

    @staticmethod
    def _fastest(finals: dict[Candidate, InferenceRecord | None], parity_of: dict[Candidate, ParityResult]) -> Candidate | None:
        """The finalist with the lowest full median among those measured and within parity."""
        eligible = {c: r for c, r in finals.items() if r is not None and r.ok and r.user_latency is not None
                    and c in parity_of and parity_of[c].passed}
        if not eligible:
            return None
        return min(eligible, key=lambda c: eligible[c].user_latency.median)  # type: ignore[union-attr]

    def _conclude(self, device: DeviceSpec, batch: int, results: list[CandidateResult],
                  parity_of: dict[Candidate, ParityResult], naive_rec: InferenceRecord | None,
                  finals: dict[Candidate, InferenceRecord | None], winner: Candidate | None, source: str,
                  why: str, *, cache_key: str | None, fp: str) -> tuple[DeviceTuning, InferenceRecord | None, InferenceRecord | None]:
        ok_finals = {c: r for c, r in finals.items() if r is not None and r.ok and r.user_latency is not None}
        by_name = {r.name: r for r in results}
        for cand, rec in finals.items():
            entry = by_name.get(cand.name)
            if entry is not None and rec is not None and rec.ok and rec.user_latency:
                entry.final_median_ms = rec.user_latency.median
                entry.final_ci95 = rec.user_latency.ci95
            elif entry is not None and rec is not None:
                entry.status, entry.reason = "failed", f"full measurement {rec.status}: {rec.message.splitlines()[0] if rec.message else ''}"
        if winner is None:
            best_cand, best_rec = NAIVE, naive_rec
            why += "no candidate passed both measurement and parity: the naive configuration stands"
            naive_parity = parity_of.get(NAIVE)
            if naive_parity is not None and not naive_parity.passed:
                why += f" (it failed parity too: {'; '.join(naive_parity.reasons)})"
        else:
            best_cand, best_rec = winner, ok_finals[winner]
        for r in results:
            if r.name == best_cand.name and r.status == "ok":
                r.status = "winner"
        speedup = None
        if naive_rec is not None and naive_rec.ok and best_rec is not None and best_rec.ok:
            speedup = ratio_ci(naive_rec.user_samples, best_rec.user_samples)
            for r in results:
                if r.final_median_ms and naive_rec.user_latency:
                    r.vs_naive = naive_rec.user_latency.median / r.final_median_ms
        device_name = naive_rec.device.name if naive_rec is not None else device.torch_device
        tuning = DeviceTuning(self.req.model, device.torch_device, device_name, batch, best_cand.name, source,
                              why.strip(), results, speedup)
        peer = ok_finals.get(PEER)
        if peer is not None and best_rec is not None and best_rec.ok:
            tuning.speedup_vs_ort = ratio_ci(peer.user_samples, best_rec.user_samples)
        verdict: dict[str, Any] = {"winner": best_cand.name, "source": source, "why": tuning.why,
                                   "speedup_vs_naive": speedup, "speedup_vs_ort": tuning.speedup_vs_ort}
        if naive_rec is not None:
            naive_rec.tuning = replace(naive_rec.tuning or TuningInfo("naive", NAIVE.name), **verdict)
            naive_rec.parity = parity_of.get(NAIVE)
            self.keep(naive_rec)
        if best_rec is not None:
            best_copy = replace(best_rec, tuning=replace(best_rec.tuning or TuningInfo(), **verdict, role="best"),
                                parity=parity_of.get(best_cand))
            if best_copy.record_id == (naive_rec.record_id if naive_rec else None):
                import uuid

                best_copy.record_id = uuid.uuid4().hex
            self.keep(best_copy)
            best_rec = best_copy
        if self.cache is not None and cache_key and source == "measured" and best_rec is not None and best_rec.ok:
            self.cache.put(cache_key, {
                "model": self.req.model, "device": device.torch_device, "device_name": best_rec.device.name,
                "batch_size": batch, "candidate": best_cand.to_dict(), "run_id": self.run.run_id,
                "tuned_at": best_rec.timestamp, "median_ms": best_rec.headline_ms,
                "naive_median_ms": naive_rec.headline_ms if naive_rec else None,
                "fingerprint": fp,
            })
        return tuning, naive_rec, best_rec

    # -- crossover ---------------------------------------------------------------------
    def sweep(self, device: DeviceSpec, cand: Candidate, sizes: Sequence[int]) -> list[CrossoverPoint]:
        points: list[CrossoverPoint] = []
        for batch in sizes:
            self.on_event(f"crossover {device} b{batch}: {cand.name}")
            config = self.config(device, batch, cand, self.req.policy, keep=False)
            result = self.call(measure_crossover_point, config)
            if result.ok and isinstance(result.value, CrossoverPoint):
                point = result.value
                record = InferenceRecord.from_outcome(self.run.run_id, config, point.outcome)
            else:
                point = CrossoverPoint(batch_size=batch, outcome=None)
                record = failed_record(self.run.run_id, config, result.error, result.detail)
            record.variant = cand.variant
            record.tuning = TuningInfo(role="crossover", candidate=cand.name, batch_size=batch)
            record.transfer_ms = TransferTimes.from_samples(point.h2d_samples_ms, point.d2h_samples_ms)
            point.record = record
            point.outcome = None  # the record holds what is needed
            self.keep(record)
            points.append(point)
            if record.status == "oom":
                self.on_event(f"  out of memory at batch {batch} on {device}: larger batches skipped")
                break
        return points


def _answers(model: str, batch: int, per_device: dict[str, tuple[InferenceRecord | None, InferenceRecord | None]]) -> list[SeedAnswer]:
    cpu_naive, cpu_best = per_device.get("cpu", (None, None))

    def med(rec: InferenceRecord | None) -> float | None:
        return rec.headline_ms if rec is not None and rec.ok else None

    def label(rec: InferenceRecord | None) -> str:
        return rec.tuning.candidate if rec is not None and rec.tuning is not None else ""

    accels = [d for d in per_device if d != "cpu"]
    if not accels:
        return [SeedAnswer(model, batch, None, med(cpu_naive), med(cpu_best), label(cpu_best),
                           note="no GPU found: only the CPU side was measured")]
    out = []
    for dev in accels:
        gpu_naive, gpu_best = per_device[dev]
        answer = SeedAnswer(model, batch, dev, med(cpu_naive), med(cpu_best), label(cpu_best),
                            med(gpu_naive), med(gpu_best), label(gpu_best))
        if med(cpu_naive) and med(gpu_naive):
            answer.naive_speedup = ratio_ci(cpu_naive.user_samples, gpu_naive.user_samples)  # type: ignore[union-attr]
        if med(cpu_best) and med(gpu_best):
            answer.fair_speedup = ratio_ci(cpu_best.user_samples, gpu_best.user_samples)  # type: ignore[union-attr]
        if med(cpu_naive) is None or med(gpu_naive) is None:
            answer.note = "a naive configuration failed"
        out.append(answer)
    return out


def tune_and_compare(
    request: TuneRequest,
    *,
    command: str = "api tune",
    store: Store | None = None,
    cache: TuningCache | None = None,
    json_path: str | Path | None = None,
    runner: Runner = run_in_worker,
    on_event: Callable[[str], None] | None = None,
) -> TuneReport:
    """Tune every requested device, answer seed 000 naively and fairly, sweep if asked.

    Raises:
        MeasurementError: the CPU fp32 eager reference failed (nothing to check parity with).
        UserError: unknown model or variant.
    """
    get_model_entry(request.model)
    report = TuneReport(run=RunInfo(run_id="", command=command), records=[])

    def document(run: RunInfo, records: list[InferenceRecord], partial: bool) -> dict[str, Any]:
        report.run, report.records = run, records
        return report.document(partial=partial)

    # One fork server for the run's workers (each candidate still gets a process of its own).
    with RunContext[InferenceRecord](command, store=store, json_path=json_path, document=document) as ctx, \
            forkserver.session() if runner is run_in_worker else contextlib.nullcontext():
        session = _Session(request, runner, ctx, cache, on_event)
        report.records = ctx.records
        winners: dict[str, Candidate] = {}
        for batch in request.batch_sizes:
            reference = session.reference(batch)
            per_device: dict[str, tuple[InferenceRecord | None, InferenceRecord | None]] = {}
            for device in request.devices:
                tuning, naive_rec, best_rec = session.tune_device(device, batch, reference)
                report.tunings.append(tuning)
                per_device[device.torch_device] = (naive_rec, best_rec)
                won = [c for c in tuning.candidates if c.status == "winner"]
                winners.setdefault(device.torch_device,
                                   Candidate(won[0].precision, won[0].variant, won[0].threads) if won else NAIVE)
            report.answers += _answers(request.model, batch, per_device)
        if request.crossover:
            curves: dict[str, list[CrossoverPoint]] = {}
            for device in request.devices:
                curves[device.torch_device] = session.sweep(device, winners.get(device.torch_device, NAIVE), request.crossover)
            report.crossover = crossover_analysis(curves, {d: c.name for d, c in winners.items()})
    report.run = ctx.run
    return report
