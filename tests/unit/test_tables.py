"""What people see: the seed table rendered into a fixed-width console."""

from __future__ import annotations

import numpy as np
from rich.console import Console

from devicebench.measure.stats import Summary
from devicebench.reports.tables import detail_table, fmt_ms, seed_table, seed_table_markdown, warnings_for
from devicebench.results.parts import TimingInfo
from devicebench.results.records import DeviceRef, InferenceRecord


def _rec(device: DeviceRef, median: float, *, e2e: float | None = None, status: str = "ok", noise: float = 0.01) -> InferenceRecord:
    rng = np.random.default_rng(int(median * 10))
    samples = list(median * (1 + noise * rng.standard_normal(100)))
    rec = InferenceRecord(run_id="r", model="resnet50", device=device, batch_size=1, precision="fp32",
                          status=status, threads=2)
    if status == "ok":
        rec.samples_ms = samples
        rec.latency_ms = Summary.from_samples(samples)
        if e2e is not None:
            rec.e2e_samples_ms = list(e2e * (1 + noise * rng.standard_normal(100)))
            rec.e2e_latency_ms = Summary.from_samples(rec.e2e_samples_ms)
    else:
        rec.message = "OutOfMemoryError: CUDA out of memory"
    return rec


def _render(table) -> str:  # type: ignore[no-untyped-def]
    console = Console(width=200, record=True, color_system=None)
    console.print(table)
    return console.export_text()


CPU = DeviceRef("cpu", None, "Test CPU")
GPU = DeviceRef("cuda", 0, "Test GPU")


def test_seed_table_shows_cpu_gpu_and_speedup_with_interval() -> None:
    text = _render(seed_table([_rec(CPU, 80.0), _rec(GPU, 9.0, e2e=10.0)]))
    assert "80.0 ms" in text and "10.0 ms" in text
    assert "8.00x [" in text  # CPU / GPU end to end, not CPU / GPU compute (8.9x)
    assert "Test GPU" in text


def test_without_a_gpu_the_table_says_so() -> None:
    text = _render(seed_table([_rec(CPU, 80.0)]))
    assert "no GPU found" in text


def test_failed_configurations_are_shown_not_hidden() -> None:
    recs = [_rec(CPU, 80.0), _rec(GPU, 0, status="oom")]
    assert "OOM" in _render(seed_table(recs))
    assert any("oom: OutOfMemoryError" in w for w in warnings_for(recs))


def test_noisy_results_are_flagged() -> None:
    recs = [_rec(CPU, 50.0, noise=0.3)]
    assert "(noisy)" in _render(seed_table(recs))
    assert any("noisy" in w for w in warnings_for(recs))


def test_detail_and_markdown() -> None:
    recs = [_rec(CPU, 80.0), _rec(GPU, 9.0, e2e=10.0)]
    detail = _render(detail_table(recs))
    assert "= compute" in detail and "cuda:0" in detail
    md = seed_table_markdown(recs)
    assert md.splitlines()[0].startswith("| Model | Batch | Precision | CPU |")
    assert "8.00x" in md


def test_fmt_ms() -> None:
    assert fmt_ms(207.4) == "207 ms"
    assert fmt_ms(12.34) == "12.3 ms"
    assert fmt_ms(1.234) == "1.23 ms"
    assert fmt_ms(0.04123) == "0.0412 ms"
    assert fmt_ms(999.4) == "999 ms" and fmt_ms(1040.0) == "1.04 s" and fmt_ms(123456.0) == "123 s"
    assert fmt_ms(0.0000123) == "0.0000123 ms"  # never an exponent


def test_a_busy_machine_is_warned_about() -> None:
    quiet, busy = _rec(CPU, 80.0), _rec(CPU, 80.0)
    quiet.timing = TimingInfo(other_cpu_load=0.02)
    busy.timing = TimingInfo(other_cpu_load=1.7)
    assert not any("other programs used" in w for w in warnings_for([quiet]))
    assert any("other programs used 1.7 cores" in w for w in warnings_for([busy]))
