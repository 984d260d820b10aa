"""Every table the CLI prints, rendered at 80, 100 and 120 columns the way the CLI prints it
(:func:`devicebench.cli.ui.print_table`): no cell is cut ('…' or '...') and no line is wider
than the console. The ``--wide`` detail may be wider (it takes the width it needs) but is
never cut either. Names a user types again (models, devices, run ids) appear whole."""

from __future__ import annotations

import functools
import io
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from report_fixtures import RUN_ID, environment, fixed_run, inference, training

from devicebench.cli.ui import print_table
from devicebench.devices.sysinfo import Environment
from devicebench.measure.inference import ColdStart
from devicebench.measure.parity import ParityResult
from devicebench.reports.compare_view import comparison_table
from devicebench.reports.tables import (
    detail_table,
    devices_table,
    history_table,
    inference_table,
    models_table,
    seed_table,
)
from devicebench.reports.training import epoch_table, speedup_table
from devicebench.reports.tuning import (
    candidates_table,
    crossover_table,
    seed_answer_table,
)
from devicebench.results.compare import compare_runs
from devicebench.results.records import RunInfo

WIDTHS = (80, 100, 120)
LONG_MODEL = "my-classifier-v2.onnx"


def render(table: Table, width: int, *, wide: bool = False) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, highlight=False)
    print_table(console, table, wide=wide)
    return console.export_text()


def check(text: str, width: int | None, *whole: str) -> None:
    assert "…" not in text and "..." not in text, text
    if width is not None:
        too_long = [line for line in text.splitlines() if len(line) > width]
        assert not too_long, "\n".join(too_long)
    assert not [line for line in text.splitlines() if line != line.rstrip()], "a line ends in spaces"
    for name in whole:
        assert name in text, f"{name!r} is cut or missing:\n{text}"


def _records() -> list:
    _, recs = fixed_run()
    slow = inference(LONG_MODEL, "cpu", 8, 1040.0, seed=9, spread=0.01)
    failed = inference("bert-base", "cuda:0", 64, 10.0, seed=10)
    failed.status, failed.message = "oom", "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    failed.latency_ms = failed.e2e_latency_ms = None
    failed.samples_ms, failed.e2e_samples_ms = [], []
    failed.throughput_per_s = failed.e2e_throughput_per_s = None
    return recs + [slow, failed]


def _tuning(device: str) -> SimpleNamespace:
    parity = ParityResult("fp32-exact", True, 1e-6, 1.2e-7, 0.9999999, top1_agreement=1.0, top1_ties=1)
    cands = [
        SimpleNamespace(name="eager fp32", precision="fp32", variant="eager", threads=None, status="ok", reason="",
                        screen_median_ms=70.1, final_median_ms=70.8, final_ci95=(70.1, 72.0), vs_naive=1.0,
                        parity=None, cold_start=ColdStart(0.5, 0.1, 86.2)),
        SimpleNamespace(name="channels_last fp32 t2", precision="fp32", variant="ort", threads=2,
                        status="winner", reason="", screen_median_ms=30.2, final_median_ms=1030.0,
                        final_ci95=(1010.0, 1290.0), vs_naive=2.34, parity=parity, cold_start=ColdStart(0.5, 0.1, 1200.0)),
        SimpleNamespace(name="int8-dynamic fp32", precision="fp32", variant="int8-dynamic", threads=None,
                        status="rejected", reason="parity: top-1 agreement 91% < 99% (tolerance of int8)",
                        screen_median_ms=20.0, final_median_ms=None, final_ci95=None, vs_naive=None,
                        parity=parity, cold_start=None),
    ]
    return SimpleNamespace(model="resnet50", device=device, device_name="NVIDIA H100 80GB HBM3" if device != "cpu"
                           else "Intel(R) Xeon(R) Platinum 8480+", batch_size=1, winner="channels_last fp32 t2",
                           source="measured", why="fastest that passed parity", candidates=cands,
                           speedup_vs_naive=(2.34, 2.2, 2.5), speedup_vs_ort=(1.05, 0.98, 1.1))


@functools.lru_cache(maxsize=1)
def _tables() -> dict[str, tuple[Table, tuple[str, ...]]]:
    recs = _records()
    run, base = fixed_run()
    other = [inference(r.model, r.device.label, r.batch_size, r.latency_ms.median * 1.1, seed=20 + i)
             for i, r in enumerate(base)]
    run_b = RunInfo(run_id="20261129-101010-fedcba", command="devicebench run", environment=environment())
    answers = [{"model": "resnet50", "batch_size": 1, "accelerator": "cuda:0", "cpu_naive_ms": 70.8,
                "cpu_best_ms": 30.1, "cpu_best": "channels_last fp32 t2", "gpu_naive_ms": 5.1,
                "gpu_best_ms": 2.2, "gpu_best": "cudagraphs fp16", "naive_speedup": {"ratio": 13.9, "ci95": [13.1, 14.5]},
                "fair_speedup": {"ratio": 13.7, "ci95": [12.9, 14.6]}}]
    crossover = {"crossover": {"cuda:0": {"text": "cuda:0 wins from batch 4 (between b2 and b4)"}},
                 "curves": {"cpu": [{"configuration": "channels_last fp32 t2", "batch_size": b,
                                     "latency_ms": 30.0 * b, "compute_ms": 30.0 * b, "items_per_s": 33.0, "status": "ok"}
                                    for b in (1, 2, 64)],
                            "cuda:0": [{"configuration": "cudagraphs fp16", "batch_size": b, "latency_ms": 2.0 + b,
                                        "compute_ms": 1.0 + b, "h2d_ms": 0.4, "d2h_ms": 0.05, "items_per_s": 1234.5,
                                        "status": "ok"} for b in (1, 2, 64)]}}
    runs = [RunInfo(run_id=RUN_ID, command="devicebench infer resnet50 --device all --batch-size 1,8,32",
                    started_at="2026-11-28T00:00:00+00:00", status="failed", hostname="bench-host", n_records=6),
            RunInfo(run_id="20261129-101010-fedcba", command=f"devicebench infer ./models/{LONG_MODEL} --name classifier",
                    started_at="2026-11-29T10:10:10+00:00", status="complete", hostname="other-host", n_records=2)]
    results = {RUN_ID: "all 6 configurations failed: error (ImportError: onnxruntime is not installed)",
               "20261129-101010-fedcba": "classifier cpu b1 70.8 ms; cuda:0 13.9x faster"}
    entries = [SimpleNamespace(name=n, task=t, input=SimpleNamespace(shapes=lambda b: [(b, 3, 224, 224)]),
                               default_batch_sizes=(1, 8, 32), description=d) for n, t, d in [
        ("bert-base", "text-classification", ("BERT-base (110M parameters), sequence classification with real "
                                               "sentences through the WordPiece tokenizer")),
        ("resnet50-tiny", "image-classification", "ResNet-50 with 4 channels per stage, for tests"),
        ("tinycnn", "image-classification", "the base CNN of the TinyImage project (64x64 inputs, 200 classes)"),
    ]]
    env = Environment.from_dict(environment(cpu_model="Intel(R) Xeon(R) Platinum 8480+ @ 2.0GHz"))
    return {
        "seed": (seed_table(recs), ("resnet50", LONG_MODEL)),
        "seed-cpu-only": (seed_table([r for r in recs if r.device.type == "cpu"]), ("resnet50",)),
        "inference": (inference_table(recs), ("resnet50", LONG_MODEL, "cuda:0", "1.04 s")),
        "epochs": (epoch_table(training("cuda:0")), ()),
        "train-speedup": (speedup_table([training("cpu"), training("cuda:0", epoch_s=2.0, reach=5.0)]), ()),
        "candidates": (candidates_table(_tuning("cpu")), ("channels_last fp32 t2",)),
        "answers": (seed_answer_table(answers), ("resnet50",)),
        "crossover": (crossover_table(crossover), ("cuda:0",)),
        "compare": (comparison_table(compare_runs(run, base, run_b, other)), ("resnet50", "bert-base")),
        "history": (history_table(runs, results), (RUN_ID, "20261129-101010-fedcba")),
        "models": (models_table(entries), ("bert-base", "resnet50-tiny", "tinycnn")),
        "devices": (devices_table(env), ("cuda:0",)),
    }


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", sorted(_tables()))
def test_every_cli_table_fits_and_nothing_is_cut(name: str, width: int) -> None:
    table, whole = _tables()[name]
    check(render(table, width), width, *whole)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_wide_detail_is_never_cut(width: int) -> None:
    text = render(detail_table(_records()), width, wide=True)
    check(text, None, LONG_MODEL, "cuda:0", "1.04 s [", "Thr = CPU threads")


def test_times_have_human_units_and_no_exponent() -> None:
    text = render(inference_table(_records()), 80) + render(detail_table(_records()), 80, wide=True)
    assert "e+0" not in text and "e-0" not in text
    assert "1.04 s [" in text and "50.0 ms [" in text


def test_piped_output_takes_columns_and_warnings_stay_whole(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """When stdout is a pipe, the width is $COLUMNS (80 without it), not a 160-column minimum;
    a warning is one line, whatever its length (the terminal wraps it, grep sees it whole)."""
    from devicebench.cli.ui import Ui

    monkeypatch.setenv("COLUMNS", "100")
    assert Ui.create().out.width == 100
    monkeypatch.delenv("COLUMNS")
    ui = Ui.create()
    assert ui.out.width == 80 and ui.err.width == 80
    ui.warn("x" * 150 + " [not markup]")
    err = capsys.readouterr().err
    assert err == "warning: " + "x" * 150 + " [not markup]\n"
