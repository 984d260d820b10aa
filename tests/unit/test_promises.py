"""Documented numbers held to the documents: timing defaults, parity tolerances (and their
boundaries), naive against fair speedups with numbers where the two differ. Expected values
come from the docs' text and from arithmetic here, never from the code under test.
See docs/testing.md."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from conftest import ROOT
from rich.console import Console

from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY
from devicebench.measure.parity import TOLERANCES, compare_outputs
from devicebench.measure.stats import Summary
from devicebench.reports.tuning import seed_answer_table
from devicebench.results.parts import TuningInfo
from devicebench.results.records import DeviceRef, InferenceRecord
from devicebench.run.tuning.tuner import _answers

README = (ROOT / "README.md").read_text()
HOW = (ROOT / "docs" / "how-we-measure.md").read_text()
TUNING = (ROOT / "docs" / "tuning.md").read_text()


def _flat(text: str) -> str:
    return " ".join(text.split())


# -- timing defaults ------------------------------------------------------------------------

def test_timing_defaults_are_the_documented_ones() -> None:
    readme = re.search(r"at least (\d+) calls and ([\d.]+) s, then stop once the 99% interval of the median "
                       r"\(looked at only at geometrically growing counts\) is within (\d+)% of it, so that the 95% "
                       r"interval reported keeps its coverage; or at (\d+) s", _flat(README))
    assert readme, "README's 'Warm-up, then adaptive stopping' sentence changed: update this test with it"
    calls, min_s, pct, cap = readme.groups()
    assert (DEFAULT_POLICY.min_iters, DEFAULT_POLICY.min_time_s) == (int(calls), float(min_s))
    assert DEFAULT_POLICY.target_rel_ci == pytest.approx(int(pct) / 100)
    assert DEFAULT_POLICY.max_time_s == float(cap)

    how = _flat(HOW)
    warm = re.search(r"\*\*Warm-up\*\*: at least (\d+) calls and ([\d.]+) s, at most (\d+) s "
                     r"\(quick mode: (\d+) calls, ([\d.]+) s, (\d+) s\)", how)
    assert warm, "how-we-measure.md's warm-up sentence changed: update this test with it"
    w = [float(g) for g in warm.groups()]
    assert (DEFAULT_POLICY.warmup_iters, DEFAULT_POLICY.warmup_s, DEFAULT_POLICY.warmup_max_s) == tuple(w[:3])
    assert (QUICK_POLICY.warmup_iters, QUICK_POLICY.warmup_s, QUICK_POLICY.warmup_max_s) == tuple(w[3:])
    meas = re.search(r"at least (\d+) calls AND ([\d.]+) s .*? within (\d+)% of the median; otherwise stop at "
                     r"(\d+) s \(with at least 3 samples\) or ([\d,]+) calls\. Quick mode: (\d+) calls, ([\d.]+) s, "
                     r"cap (\d+) s", how)
    assert meas, "how-we-measure.md's measurement sentence changed: update this test with it"
    n, t, pct2, cap2, most, qn, qt, qcap = meas.groups()
    assert (DEFAULT_POLICY.min_iters, DEFAULT_POLICY.min_time_s, DEFAULT_POLICY.max_time_s) == (int(n), float(t), float(cap2))
    assert DEFAULT_POLICY.target_rel_ci == pytest.approx(int(pct2) / 100)
    assert DEFAULT_POLICY.max_iters == int(most.replace(",", ""))
    assert (QUICK_POLICY.min_iters, QUICK_POLICY.min_time_s, QUICK_POLICY.max_time_s) == (int(qn), float(qt), float(qcap))


# -- parity tolerances ----------------------------------------------------------------------

def _documented_tolerances() -> dict[str, tuple[float, float, float]]:
    """docs/tuning.md's table: class -> (max_rel_err, min_cosine, top-1 share)."""
    rows = re.findall(r"^\| (fp32|tf32|fp16|bf16|int8) \|[^|]*\| ([0-9.e-]+) \| ([0-9.]+) \| (\d+)% \|$", TUNING, re.MULTILINE)
    return {name: (float(rel), float(cos), int(top) / 100) for name, rel, cos, top in rows}


def test_parity_tolerances_are_the_documented_ones() -> None:
    documented = _documented_tolerances()
    assert set(documented) == {"fp32", "tf32", "fp16", "bf16", "int8"}, documented
    assert set(TOLERANCES) == set(documented)
    for name, (rel, cos, top1) in documented.items():
        tol = TOLERANCES[name]
        assert (tol.max_rel_err, tol.min_cosine, tol.min_top1) == (rel, cos, top1), name


def _with_error_at(ref: torch.Tensor, rel: float) -> torch.Tensor:
    """ref with one element moved by ``rel`` x max |ref|: max_rel_err is exactly ``rel``."""
    cand = ref.clone()
    cand[3, 7] += rel * float(ref.abs().max())
    return cand


def _cosine(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    x, y = a.reshape(a.shape[0], -1).double().numpy(), b.reshape(b.shape[0], -1).double().numpy()
    return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))


@pytest.mark.parametrize("numeric", ["fp32", "tf32", "fp16", "bf16", "int8"])
@pytest.mark.parametrize("factor", [0.5, 0.9, 1.1, 2.0])
def test_relative_error_is_judged_at_the_documented_boundary(numeric: str, factor: float) -> None:
    rel_tol, cos_tol, _ = _documented_tolerances()[numeric]
    ref = torch.randn(8, 10000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cand = _with_error_at(ref, factor * rel_tol)
    # Independently: the error is where we put it, and the cosine stays well inside its bound.
    assert (cand - ref).abs().max().item() / ref.abs().max().item() == pytest.approx(factor * rel_tol, rel=1e-9)
    assert 1 - _cosine(cand, ref).min() < 0.1 * (1 - cos_tol)
    result = compare_outputs(cand, ref, task="text-embedding", numeric=numeric)
    assert result.max_rel_err == pytest.approx(factor * rel_tol, rel=1e-9)
    assert result.passed is (factor < 1), (numeric, factor, result.reasons)


def _with_cosine(ref: torch.Tensor, one_minus_cos: float) -> torch.Tensor:
    """ref plus an error orthogonal to each sample, sized so that 1 - cosine = ``one_minus_cos``,
    spread over every element so that the largest absolute error stays small."""
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    r = ref.reshape(ref.shape[0], -1)
    n = noise.reshape(ref.shape[0], -1)
    n = n - (n * r).sum(1, keepdim=True) / (r * r).sum(1, keepdim=True) * r  # orthogonal to the sample
    # cos = |r| / sqrt(|r|^2 + |e|^2)  =>  |e| = |r| sqrt(1 / cos^2 - 1)
    cos = 1 - one_minus_cos
    n = n / n.norm(dim=1, keepdim=True) * r.norm(dim=1, keepdim=True) * math.sqrt(1 / cos**2 - 1)
    return (r + n).reshape(ref.shape)


@pytest.mark.parametrize("numeric", ["fp32", "tf32", "fp16", "bf16", "int8"])
@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_cosine_is_judged_at_the_documented_boundary(numeric: str, factor: float) -> None:
    rel_tol, cos_tol, _ = _documented_tolerances()[numeric]
    # A large spike sets the output's scale, so the spread error stays far under rel_tol.
    ref = torch.randn(4, 20000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ref[:, 0] = 1000.0
    cand = _with_cosine(ref, factor * (1 - cos_tol))
    assert 1 - _cosine(cand, ref).min() == pytest.approx(factor * (1 - cos_tol), rel=1e-3)
    assert (cand - ref).abs().max().item() / ref.abs().max().item() < 0.5 * rel_tol
    result = compare_outputs(cand, ref, task="text-embedding", numeric=numeric)
    assert result.passed is (factor < 1), (numeric, factor, result.reasons)
    if factor > 1:
        assert any("cosine" in r for r in result.reasons)


def test_a_decisive_top1_flip_fails_even_inside_the_error_tolerance() -> None:
    rel_tol = _documented_tolerances()["fp32"][0]
    ref = torch.zeros(4, 10, dtype=torch.float64)
    ref[:, 0] = 10.0  # the scale: max |ref| = 10
    ref[1, 0], ref[1, 1] = 5.0, 5.0 - 1.2 * rel_tol * 10  # decisive: the gap is 1.2 x the tolerance
    cand = ref.clone()
    cand[1, 0] -= 0.61 * rel_tol * 10  # each moved by 0.61 x the tolerance: class 1 now wins
    cand[1, 1] += 0.61 * rel_tol * 10
    assert cand[1].argmax() == 1 and ref[1].argmax() == 0
    result = compare_outputs(cand, ref, task="image-classification", numeric="fp32")
    assert result.max_rel_err < rel_tol
    assert not result.passed and result.top1_agreement == pytest.approx(0.75)
    assert any("top-1" in r for r in result.reasons)


# -- naive and fair speedups ----------------------------------------------------------------

def _record(device: str, median: float, role: str, name: str) -> InferenceRecord:
    samples = [median * f for f in (0.99, 1.0, 1.01, 0.995, 1.005, 1.0, 0.998, 1.002, 1.0)]
    dtype, _, idx = device.partition(":")
    rec = InferenceRecord(run_id="r", model="m", device=DeviceRef(dtype, int(idx) if idx else None, device),
                          batch_size=1, precision="fp32", status="ok", tuning=TuningInfo(role=role, candidate=name))
    rec.samples_ms = samples
    rec.latency_ms = Summary.from_samples(samples)
    if dtype != "cpu":
        rec.e2e_samples_ms = samples
        rec.e2e_latency_ms = rec.latency_ms
    return rec


def test_naive_and_fair_speedups_are_not_swapped() -> None:
    # CPU eager 100 ms, CPU best 40 ms; GPU eager 10 ms, GPU best 8 ms:
    # naive = 100 / 10 = 10x, fair = 40 / 8 = 5x (and the crossed ratios 100/8 = 12.5, 40/10 = 4).
    per_device = {
        "cpu": (_record("cpu", 100.0, "naive", "eager fp32"), _record("cpu", 40.0, "best", "ort fp32")),
        "cuda:0": (_record("cuda:0", 10.0, "naive", "eager fp32"), _record("cuda:0", 8.0, "best", "eager fp16")),
    }
    (answer,) = _answers("m", 1, per_device)
    ratio, lo, hi = answer.naive_speedup
    assert ratio == pytest.approx(10.0) and 5.0 < lo <= 10.0 <= hi < 12.5
    ratio, lo, hi = answer.fair_speedup
    assert ratio == pytest.approx(5.0) and 4.0 < lo <= 5.0 <= hi < 10.0
    assert (answer.cpu_naive_ms, answer.cpu_best_ms) == (pytest.approx(100.0), pytest.approx(40.0))
    assert (answer.gpu_naive_ms, answer.gpu_best_ms) == (pytest.approx(10.0), pytest.approx(8.0))
    doc = answer.to_dict()
    assert doc["naive_speedup"]["ratio"] == pytest.approx(10.0) and doc["fair_speedup"]["ratio"] == pytest.approx(5.0)
    # What a reader sees: the naive column says 10x, the fair column 5x.
    console = Console(width=250, record=True, color_system=None)
    console.print(seed_answer_table([answer]))
    header, row = (line for line in console.export_text().splitlines() if "Naive speedup" in line or line.startswith("│ m "))
    assert header.index("Naive speedup") < header.index("Fair speedup")
    ratios = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)x \[", row)]  # in column order
    assert ratios == [pytest.approx(10.0), pytest.approx(5.0)], row
