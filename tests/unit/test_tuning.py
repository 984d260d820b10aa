"""Tuning: which candidates apply and why not, parity gating, the cache, the crossover method.

Measurements here run in this process on -tiny models with a very short policy: they check
the logic (what is screened, rejected, cached, swept), never which configuration is faster.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import collect_environment
from devicebench.errors import ConfigError
from devicebench.measure.config import TimingPolicy
from devicebench.measure.crossover import CrossoverPoint
from devicebench.run.tuning.sweep import crossover_analysis
from devicebench.measure.parity import TOLERANCES, compare_outputs
from devicebench.measure.stats import Summary
from devicebench.run.tuning.candidates import NAIVE, Candidate, plan_candidates
from devicebench.measure.variants import Feature, numeric_class, register_feature, unregister_feature
from devicebench.results.parts import TuningInfo
from devicebench.results.records import DeviceRef, InferenceRecord
from devicebench.results.tuning_cache import TuningCache
from devicebench.run.tuning.tuner import TuneRequest, _answers, in_process, tune_and_compare

TINY = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=1.0, min_iters=3, min_time_s=0.0,
                    max_time_s=0.2, target_rel_ci=0.5)
CPU = DeviceSpec("cpu")


@pytest.fixture(scope="module")
def env():
    return collect_environment()


def _env_without_bf16(env):
    return replace(env, cpu=replace(env.cpu, flags=[f for f in env.cpu.flags
                                                     if f not in ("avx512_bf16", "amx_bf16", "bf16")]))


def _by_name(planned):
    return {p.candidate.name: p for p in planned}


# -- candidate selection --------------------------------------------------------------------

def test_cpu_candidates_for_an_image_model(env) -> None:
    plan = _by_name(plan_candidates(CPU, "image-classification", _env_without_bf16(env)))
    assert plan["eager fp32"].skip_reason is None and plan["eager fp32"].candidate == NAIVE
    for runnable in ("channels_last fp32", "ort fp32", "eager fp32 t1"):
        assert plan[runnable].skip_reason is None, runnable
    assert "Linear" in plan["int8-dynamic fp32"].skip_reason  # convolutions stay fp32
    assert "native bf16" in plan["eager bf16"].skip_reason
    assert "fp16" in plan["eager fp16"].skip_reason
    # GPU-only features are never planned on the CPU.
    assert not any(n.startswith(("tf32", "cudagraphs", "sdpa")) for n in plan)


def test_cpu_candidates_for_a_text_model(env) -> None:
    plan = _by_name(plan_candidates(CPU, "text-embedding", env))
    assert plan["int8-dynamic fp32"].skip_reason is None
    assert plan["ort-int8 fp32"].skip_reason is None
    assert "image" in plan["channels_last fp32"].skip_reason


def test_bf16_follows_the_cpu_flags(env) -> None:
    fake = replace(env, cpu=replace(env.cpu, flags=sorted(set(env.cpu.flags) | {"avx512_bf16"})))
    plan = _by_name(plan_candidates(CPU, "image-classification", fake))
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None and torch.backends.mkldnn.is_available() and probe():
        assert plan["eager bf16"].skip_reason is None
    else:
        assert "oneDNN" in plan["eager bf16"].skip_reason


def test_gpu_candidates_are_planned_without_a_gpu(env) -> None:
    plan = _by_name(plan_candidates(DeviceSpec("cuda", 0), "text-embedding", env))
    for name in ("eager fp32", "tf32 fp32", "eager fp16", "sdpa fp16", "cudagraphs fp16", "compile+cudagraphs fp16"):
        assert name in plan, name
    assert "channels_last fp16" not in plan  # text model
    from devicebench.workloads.onnxrt import ort_providers

    if "CUDAExecutionProvider" not in ort_providers():
        assert "CUDAExecutionProvider" in plan["ort fp32"].skip_reason


def test_only_filter_and_unknown_names(env) -> None:
    plan = plan_candidates(CPU, "image-classification", env, only=["channels_last"])
    assert {p.candidate.variant for p in plan} == {"eager", "channels_last"}
    with pytest.raises(ConfigError, match="unknown tuning feature"):
        plan_candidates(CPU, "image-classification", env, only=["warp-drive"])
    with pytest.raises(ConfigError):
        TuneRequest("tinycnn-tiny", (CPU,), only=("warp-drive",))


def test_numeric_classes() -> None:
    assert numeric_class("fp32", "ort") == "fp32"
    assert numeric_class("fp32", "tf32") == "tf32"
    assert numeric_class("bf16", "channels_last+compile") == "bf16"
    assert numeric_class("fp32", "int8-dynamic") == "int8"
    with pytest.raises(ConfigError):
        numeric_class("fp32", "ort+compile")  # ONNX Runtime combines with nothing


# -- parity ---------------------------------------------------------------------------------

def test_parity_accepts_the_same_answer_and_rejects_broken_ones() -> None:
    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(8, 10, generator=gen)
    assert compare_outputs(ref.clone(), ref, task="image-classification", numeric="fp32").passed
    small = ref + 1e-5 * torch.randn(8, 10, generator=gen)
    assert compare_outputs(small, ref, task="image-classification", numeric="fp32").passed

    noisy = compare_outputs(ref + 0.3 * torch.randn(8, 10, generator=gen), ref,
                            task="image-classification", numeric="bf16")
    assert not noisy.passed and any("relative error" in r for r in noisy.reasons)

    wrong = compare_outputs(ref.flip(1), ref, task="image-classification", numeric="int8")
    assert not wrong.passed and wrong.top1_agreement is not None and wrong.top1_agreement < 1
    assert any("top-1" in r for r in wrong.reasons)

    nan = ref.clone()
    nan[0, 0] = float("nan")
    assert "NaN" in compare_outputs(nan, ref, task="x", numeric="fp16").reasons[0]
    assert "shape" in compare_outputs(ref[:4], ref, task="x", numeric="fp32").reasons[0]


def test_near_ties_do_not_count_against_top1() -> None:
    ref = torch.tensor([[1.0, 1.0 - 1e-6, 0.0], [3.0, 0.0, 0.0]])
    cand = torch.tensor([[1.0 - 1e-6, 1.0, 0.0], [3.0, 0.0, 0.0]])  # swaps a near tie only
    result = compare_outputs(cand, ref, task="image-classification", numeric="fp32")
    assert result.passed and result.top1_ties == 1 and result.top1_agreement == 1.0


def test_tolerances_tighten_with_precision() -> None:
    order = ["fp32", "tf32", "fp16", "bf16", "int8"]
    rel = [TOLERANCES[k].max_rel_err for k in order]
    assert rel == sorted(rel)


# -- a broken candidate cannot win ------------------------------------------------------------

def _noise(fn, inputs, ctx):
    def run(*xs):
        out = fn(*xs)
        return out + 0.5 * out.abs().max() * torch.randn_like(out)
    return run, inputs


def _fast_wrong(fn, inputs, ctx):
    def run(*xs):  # "fast" and wrong: the classes in reverse order
        return fn(*xs).flip(-1)
    return run, inputs


@pytest.fixture
def broken_features():
    register_feature(Feature("test-noise", ("cpu",), 98, _noise))
    register_feature(Feature("test-wrong", ("cpu",), 99, _fast_wrong))
    yield
    unregister_feature("test-noise")
    unregister_feature("test-wrong")


def _request(model: str, **kw) -> TuneRequest:
    return TuneRequest(model, (CPU,), policy=TINY, screen_policy=TINY, top_k=kw.pop("top_k", 2), **kw)


def test_broken_candidates_are_rejected_and_cannot_win(broken_features, tmp_path: Path) -> None:
    report = tune_and_compare(_request("tinycnn-tiny", only=("test-noise", "test-wrong")),
                              runner=in_process, cache=TuningCache(tmp_path / "c.json"))
    (tuning,) = report.tunings
    by_name = {c.name: c for c in tuning.candidates}
    for name in ("test-noise fp32", "test-wrong fp32"):
        assert by_name[name].status == "rejected", by_name[name]
        assert by_name[name].parity and not by_name[name].parity.passed
        assert by_name[name].final_median_ms is None  # never re-measured as a finalist
    assert tuning.winner == "eager fp32"
    assert "2 rejected" in tuning.why
    best = [r for r in report.records if r.tuning.role == "best"]
    assert best and best[0].variant == "eager"


# -- candidates past ONNX Runtime alone -----------------------------------------------------------

def test_cpu_plan_has_the_candidates_past_onnx_runtime(env) -> None:
    image = _by_name(plan_candidates(CPU, "image-classification", _env_without_bf16(env)))
    for name in ("ort-extended fp32", "ort-int8-static fp32", "openvino fp32", "openvino-int8 fp32"):
        assert name in image, name
    assert "bf16" in image["openvino-bf16 fp32"].skip_reason  # judged by the CPU, never assumed
    text = _by_name(plan_candidates(CPU, "text-embedding", env))
    assert "openvino fp32" in text and "ort-int8-static fp32" not in text and "openvino-int8 fp32" not in text
    asked = _by_name(plan_candidates(CPU, "text-embedding", env, only=["ort-int8-static"]))
    assert "image" in asked["ort-int8-static fp32"].skip_reason


def test_numeric_classes_of_the_new_runtimes() -> None:
    assert numeric_class("fp32", "openvino") == "fp32"
    assert numeric_class("fp32", "openvino-bf16") == "bf16"
    assert numeric_class("fp32", "openvino-int8") == "int8"
    assert numeric_class("fp32", "ort-int8-static") == "int8"
    assert numeric_class("fp32", "ort-extended") == "fp32"


def test_openvino_missing_is_a_reason_not_a_failure(env, monkeypatch) -> None:
    import devicebench.workloads.openvino as ovmod

    monkeypatch.setattr(ovmod, "ov_available", lambda: False)
    plan = _by_name(plan_candidates(CPU, "image-classification", env))
    for name in ("openvino fp32", "openvino-int8 fp32"):
        assert "pip install 'devicebench[openvino]'" in plan[name].skip_reason


def test_static_int8_and_onnx_runtime_settings_are_parity_checked(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    monkeypatch.setenv("DEVICEBENCH_CACHE_DIR", str(tmp_path / "onnx-cache"))
    report = tune_and_compare(_request("tinycnn-tiny", only=("ort-int8-static", "ort-extended"), top_k=3),
                              runner=in_process, cache=TuningCache(tmp_path / "c.json"))
    by_name = {c.name: c for c in report.tunings[0].candidates}
    static = by_name["ort-int8-static fp32"]
    assert static.status in ("ok", "winner"), static.reason
    assert static.parity.numeric_class == "int8" and static.parity.passed
    assert 0 < static.parity.max_rel_err < TOLERANCES["int8"].max_rel_err  # really quantised, within tolerance
    assert by_name["ort-extended fp32"].parity.numeric_class == "fp32"
    assert list((tmp_path / "onnx-cache" / "onnx").glob("*-int8static-c16.onnx"))  # calibrated once, cached
    assert report.tunings[0].speedup_vs_ort is not None or "ort fp32" not in by_name


def test_openvino_candidates_run_with_their_own_numeric_class(tmp_path: Path, monkeypatch, env) -> None:
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'devicebench[openvino]')")
    pytest.importorskip("onnx", reason="onnx is not installed")
    monkeypatch.setenv("DEVICEBENCH_CACHE_DIR", str(tmp_path / "onnx-cache"))
    report = tune_and_compare(_request("tinycnn-tiny", only=("openvino", "openvino-bf16", "openvino-int8"), top_k=4),
                              runner=in_process, cache=TuningCache(tmp_path / "c.json"))
    by_name = {c.name: c for c in report.tunings[0].candidates}
    fp32 = by_name["openvino fp32"]
    assert fp32.status in ("ok", "winner") and fp32.parity.numeric_class == "fp32"
    assert fp32.parity.max_rel_err < 1e-5  # fp32 really: bf16 (OpenVINO's default on such CPUs) gives ~1e-3
    assert by_name["openvino-int8 fp32"].parity.numeric_class == "int8"
    from devicebench.measure.variants import cpu_native_bf16

    bf16 = by_name["openvino-bf16 fp32"]
    if cpu_native_bf16(env)[0]:
        assert bf16.parity.numeric_class == "bf16" and bf16.status in ("ok", "winner", "rejected")
    else:
        assert bf16.status == "skipped"


def test_openvino_compiles_in_the_precision_asked(tmp_path: Path) -> None:
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'devicebench[openvino]')")
    pytest.importorskip("onnx", reason="onnx is not installed")
    from devicebench.workloads.openvino import OvModule

    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU()).eval()
    x = torch.randn(2, 8)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input0"], output_names=["output"])
    ov = OvModule(path, shapes=[[2, 8]], precision="f32")
    assert ov.precision == "f32"
    assert torch.allclose(ov(x), model(x), atol=1e-6)
    first = ov(x)
    ov(x + 1)
    assert torch.allclose(first, model(x), atol=1e-6)  # outputs are not overwritten by the next call


# -- cache ------------------------------------------------------------------------------------

def _channels_last_100x_slower(func, arg):  # type: ignore[no-untyped-def]
    """``in_process``, but channels_last's samples come back 100x slower (the record is
    summarised again from them: the worker's summary no longer matches): the winner is the
    naive configuration by construction, not by a coin flip between two equal variants (a
    cached winner slower than the naive one is re-tuned: the next test's subject, not this one's)."""
    result = in_process(func, arg)
    out = result.value
    if getattr(arg, "variant", None) == "channels_last" and getattr(out, "status", None) == "ok":
        out.compute.samples_ms = [s * 100 for s in out.compute.samples_ms]
    return result


def test_cache_is_reused_then_retuned(tmp_path: Path) -> None:
    cache = TuningCache(tmp_path / "tuning-cache.json")
    runner = _channels_last_100x_slower
    first = tune_and_compare(_request("tinycnn-tiny", only=("channels_last fp32",)), runner=runner, cache=cache)
    assert first.tunings[0].source == "measured"
    entries = json.loads(cache.path.read_text())["entries"]
    (key,) = entries
    assert key.startswith("tinycnn-tiny|cpu|b1|random|seed0|env:")
    assert entries[key]["candidate"]["variant"] == "eager"
    assert {c.name for c in first.tunings[0].candidates} == {"eager fp32", "channels_last fp32"}

    second = tune_and_compare(_request("tinycnn-tiny", only=("channels_last fp32",)), runner=runner, cache=cache)
    tuning = second.tunings[0]
    assert tuning.source == "cache" and "reused from the tuning cache" in tuning.why
    assert tuning.winner == first.tunings[0].winner
    assert len(tuning.candidates) == 1 and tuning.candidates[0].parity.passed
    assert {r.tuning.source for r in second.records} == {"cache"}

    third = tune_and_compare(_request("tinycnn-tiny", only=("channels_last fp32",), retune=True),
                             runner=runner, cache=cache)
    assert third.tunings[0].source == "measured" and len(third.tunings[0].candidates) > 1


def test_cache_key_depends_on_the_environment_and_survives_damage(tmp_path: Path) -> None:
    a = TuningCache.key("m", "cpu", 1, None, 0, "aaaa")
    assert a != TuningCache.key("m", "cpu", 1, None, 0, "bbbb")
    cache = TuningCache(tmp_path / "tuning-cache.json")
    cache.path.write_text("{not json")
    assert cache.get(a) is None and "unreadable" in cache.warning
    cache.put(a, {"candidate": NAIVE.to_dict()})
    assert cache.get(a)["candidate"] == NAIVE.to_dict()


def _slow(fn, inputs, ctx):
    import time

    def run(*xs):  # the right answer, deliberately slow: a winner tuned on a busy machine
        time.sleep(0.05)
        return fn(*xs)
    return run, inputs


@pytest.fixture
def slow_feature():
    # One thread: on a shared 2-core machine, two threads' barriers make a tiny model's calls
    # stall for 100+ ms at random; one thread is only ever time-sliced.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    register_feature(Feature("test-slow", ("cpu",), 97, _slow))
    yield
    unregister_feature("test-slow")
    torch.set_num_threads(threads)


def test_a_stale_slow_cached_winner_is_retuned(slow_feature, tmp_path: Path) -> None:
    cache = TuningCache(tmp_path / "tuning-cache.json")
    request = _request("tinycnn-tiny", only=("test-slow",))
    first = tune_and_compare(request, runner=in_process, cache=cache)
    assert first.tunings[0].winner == "eager fp32"  # 50 ms of sleep per call never wins
    (key,) = cache.entries()
    # Poison the cache as a busy machine would: the slow variant recorded as the winner.
    cache.put(key, {**cache.entries()[key], "candidate": Candidate(variant="test-slow").to_dict(),
                    "tuned_at": "earlier", "run_id": "busy"})
    events: list[str] = []
    second = tune_and_compare(request, runner=in_process, cache=cache, on_event=events.append)
    tuning = second.tunings[0]
    assert tuning.source == "measured" and tuning.winner == "eager fp32"
    assert "the cached winner test-slow fp32" in tuning.why and "slower than eager fp32" in tuning.why
    assert "tuned again" in tuning.why and any("tuned again" in e for e in events)
    assert {c.name for c in tuning.candidates} == {"eager fp32", "test-slow fp32"}  # screened afresh
    best = [r for r in second.records if r.tuning.role == "best"]
    assert best[0].variant == "eager" and "tuned again" in best[0].tuning.why
    assert cache.entries()[key]["candidate"]["variant"] == "eager"  # the poison is replaced


def test_a_cached_winner_is_measured_beside_onnx_runtime_alone(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cache = TuningCache(tmp_path / "tuning-cache.json")
    request = _request("tinycnn-tiny", only=("channels_last fp32", "ort fp32"))
    first = tune_and_compare(request, runner=in_process, cache=cache)
    assert first.tunings[0].speedup_vs_ort is not None
    (key,) = cache.entries()
    cache.put(key, {**cache.entries()[key], "candidate": Candidate(variant="channels_last").to_dict()})
    second = tune_and_compare(request, runner=in_process, cache=cache)
    tuning = second.tunings[0]
    # Whichever way the re-measurement goes, ONNX Runtime alone was measured in this run.
    assert tuning.speedup_vs_ort is not None
    assert "ort fp32" in {c.name for c in tuning.candidates}
    if tuning.source == "cache":
        assert "ONNX Runtime alone" in tuning.why
    else:
        assert "tuned again" in tuning.why


# -- seed 000 and the crossover ---------------------------------------------------------------

def _record(device: str, samples: list[float], batch: int = 1, role: str = "naive", name: str = "eager fp32") -> InferenceRecord:
    spec = DeviceSpec.parse(device)
    rec = InferenceRecord(run_id="r", model="m", device=DeviceRef(spec.type, spec.index, device), batch_size=batch,
                          precision="fp32", status="ok", tuning=TuningInfo(role=role, candidate=name))
    rec.samples_ms = samples
    rec.latency_ms = Summary.from_samples(samples)
    if spec.is_accelerator:
        rec.e2e_samples_ms = samples
        rec.e2e_latency_ms = rec.latency_ms
    return rec


def test_seed_answer_naive_and_fair_side_by_side() -> None:
    per_device = {
        "cpu": (_record("cpu", [100.0, 101, 99, 100, 102]), _record("cpu", [50.0, 51, 49, 50, 52], role="best", name="ort fp32")),
        "cuda:0": (_record("cuda:0", [10.0, 10.5, 9.5, 10, 10.2]), _record("cuda:0", [5.0, 5.1, 4.9, 5, 5.2], role="best", name="eager fp16")),
    }
    (answer,) = _answers("m", 1, per_device)
    assert answer.naive_speedup[0] == pytest.approx(10.0)
    assert answer.fair_speedup[0] == pytest.approx(10.0)
    assert answer.naive_speedup[1] <= 10.0 <= answer.naive_speedup[2]
    assert answer.cpu_best == "ort fp32" and answer.gpu_best == "eager fp16"
    (cpu_only,) = _answers("m", 1, {"cpu": per_device["cpu"]})
    assert cpu_only.fair_speedup is None and "no GPU found" in cpu_only.note


def test_crossover_finds_the_first_batch_from_which_the_gpu_wins() -> None:
    def points(device, latencies):
        out = []
        for batch, ms in latencies.items():
            p = CrossoverPoint(batch, None)
            p.record = _record(device, [ms * f for f in (0.98, 0.99, 1.0, 1.01, 1.02, 1.0, 0.995)], batch, "crossover")
            out.append(p)
        return out

    curves = {
        "cpu": points("cpu", {1: 2.0, 2: 4.0, 4: 8.0, 8: 16.0}),
        "cuda:0": points("cuda:0", {1: 5.0, 2: 5.0, 4: 5.0, 8: 5.0}),
    }
    data = crossover_analysis(curves, {"cpu": "ort fp32", "cuda:0": "eager fp16"})
    assert data["crossover"]["cuda:0"]["batch_size"] == 4
    assert data["curves"]["cpu"][3]["items_per_s"] == pytest.approx(8 / 0.016)
    cpu_only = crossover_analysis({"cpu": curves["cpu"]}, {})
    assert cpu_only["crossover"]["none"]["batch_size"] is None


def test_crossover_sweep_runs_on_the_cpu(tmp_path: Path) -> None:
    report = tune_and_compare(_request("tinycnn-tiny", only=("channels_last fp32",), crossover=(1, 2, 4)),
                              runner=in_process, cache=TuningCache(tmp_path / "c.json"))
    rows = report.crossover["curves"]["cpu"]
    assert [r["batch_size"] for r in rows] == [1, 2, 4]
    assert all(r["status"] == "ok" and r["items_per_s"] > 0 and r["h2d_ms"] is None for r in rows)
    assert rows[0]["configuration"] == report.tunings[0].winner
    assert "no GPU found" in report.crossover["crossover"]["none"]["text"]
    sweep = [r for r in report.records if r.tuning.role == "crossover"]
    assert [r.batch_size for r in sweep] == [1, 2, 4] and all(r.transfer_ms is None for r in sweep)
    doc = report.document()
    assert doc["crossover"]["curves"]["cpu"][0]["batch_size"] == 1
    assert json.loads(json.dumps(doc, default=str))["seed000"][0]["note"].startswith("no GPU found")


def test_candidate_names_round_trip() -> None:
    c = Candidate("bf16", "channels_last+compile", 2)
    assert Candidate.from_dict(c.to_dict()) == c and c.name == "channels_last+compile bf16 t2"


def test_an_export_of_other_weights_is_never_reused(tmp_path: Path, monkeypatch) -> None:
    """The ONNX export cache is keyed by the weights themselves: when a builder draws its
    random weights differently for the same seed (a new devicebench did: issue 14 skipped
    torch's throw-away default init), the old export must not be served. Before the key held
    a weights fingerprint, every exported candidate (ONNX Runtime, OpenVINO, int8) failed
    parity against the new eager model with a cosine near 0, and "ONNX Runtime alone" was
    dropped from the comparison."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    from devicebench.workloads import registry

    monkeypatch.setenv("DEVICEBENCH_CACHE_DIR", str(tmp_path / "onnx-cache"))

    def ort_parity() -> tuple[str, bool]:
        report = tune_and_compare(_request("tinycnn-tiny", only=("ort",), top_k=2), runner=in_process,
                                  cache=TuningCache(tmp_path / f"c{len(list(tmp_path.iterdir()))}.json"))
        ort = {c.name: c for c in report.tunings[0].candidates}["ort fp32"]
        return ort.status, ort.parity is not None and ort.parity.passed

    assert ort_parity()[1]
    entry = registry._REGISTRY["tinycnn-tiny"]
    original = entry.builder

    def drawn_differently() -> torch.nn.Module:
        module = original()
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(-1.5)  # same seed, other values: what a changed builder gives
        return module

    monkeypatch.setitem(registry._REGISTRY, "tinycnn-tiny", replace(entry, builder=drawn_differently))
    status, passed = ort_parity()
    assert passed, f"ORT ran a stale export of the old weights (status {status})"
    assert len(list((tmp_path / "onnx-cache" / "onnx").glob("tinycnn-tiny-*.onnx"))) == 2  # one export per weights


def test_weights_fingerprint_sees_values_not_only_shapes() -> None:
    from devicebench.measure.variants import weights_fingerprint

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(300, 300), torch.nn.BatchNorm1d(300)).eval()
    b = torch.nn.Sequential(torch.nn.Linear(300, 300), torch.nn.BatchNorm1d(300)).eval()
    b.load_state_dict(a.state_dict())
    assert weights_fingerprint(a) == weights_fingerprint(b)
    with torch.no_grad():
        b[0].weight[123, 45] += 1e-3  # one value, not on the sampled stride: the sum still sees it
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert weights_fingerprint(a.to(torch.bfloat16)) != weights_fingerprint(a.float())
