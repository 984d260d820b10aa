"""LLM generation (issue 15): registry shapes, folders, the generation loop and every metric,
parity, records, the llama-bench formats, comparison. Tiny variants only, measured in process."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import pytest
import torch

from devicebench.devices.bandwidth import measure_bandwidth
from devicebench.devices.discovery import DeviceRef, DeviceSpec
from devicebench.errors import ConfigError, ModelFileError, UnknownModelError
from devicebench.measure.llm import LlmConfig, compare_generations, decode_bytes_per_step, measure_llm
from devicebench.reports.llm import (
    EXTRA_FIELDS,
    LLAMA_BENCH_FIELDS,
    llama_bench_output,
    llm_cost_rows,
    llm_html,
    llm_markdown,
    llm_seed_rows,
)
from devicebench.reports.cost import Prices
from devicebench.results.llm import LlmRecord, compare_llm_runs, load_llm_run
from devicebench.results.records import RunInfo
from devicebench.results.store import Store
from devicebench.run.llm import LlmRequest, candidates, execute_llm, measure_llm_one, plan_llm
from devicebench.workloads.llm import LlmShape, get_llm_entry, list_llms, resolve_llm

TINY = "qwen2.5-0.5b-tiny"
CPU = (DeviceSpec("cpu"),)


def _in_process(run_id: str, config: LlmConfig, role: str) -> LlmRecord:
    return measure_llm_one(run_id, config, role, in_process=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunInfo, list[LlmRecord], Path]:
    """One small run measured in process: the parity reference, sdpa fp32 and bf16, static."""
    folder = tmp_path_factory.mktemp("llm")
    plan = plan_llm(LlmRequest(TINY, CPU, prompt=12, gen=6, repetitions=3, variants=("sdpa", "static"),
                               probe_bandwidth=True))
    plan.append((dataclasses.replace(plan[1][0], precision="bf16"), ""))
    run, records = execute_llm(plan, command="test", store=Store(folder / "r.db"), json_path=folder / "run.json",
                               measure=_in_process)
    return run, records, folder


# -- models -------------------------------------------------------------------------------


def test_registry_has_the_published_shapes_and_tiny_variants() -> None:
    names = {e.name for e in list_llms()}
    assert {"qwen2.5-0.5b", "llama-3.2-1b", "qwen2.5-0.5b-tiny", "llama-3.2-1b-tiny"} <= names
    assert {e.name for e in list_llms(include_tiny=False)} == {"qwen2.5-0.5b", "llama-3.2-1b"}


@pytest.mark.parametrize(("name", "params"), [("qwen2.5-0.5b", 494_032_768), ("llama-3.2-1b", 1_235_814_400)])
def test_published_configs_give_the_published_parameter_counts(name: str, params: int) -> None:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):  # the shape only: no memory, no time
        model = AutoModelForCausalLM.from_config(get_llm_entry(name).hf_config())
    assert sum(p.numel() for p in model.parameters()) == params
    shape = LlmShape.from_hf_config(model.config)
    assert shape.tied_embeddings and shape.kv_heads < shape.heads


def test_unknown_model_is_a_one_line_user_error() -> None:
    with pytest.raises(UnknownModelError) as info:
        resolve_llm("qwen9-unknown")
    assert "\n" not in str(info.value) and "qwen2.5-0.5b" in str(info.value)


def test_prompt_longer_than_the_context_is_refused_before_any_worker() -> None:
    with pytest.raises(ConfigError, match="context of 256 tokens"):
        plan_llm(LlmRequest(TINY, CPU, prompt=250, gen=10))


@pytest.mark.parametrize("kwargs", [{"gen": 1}, {"prompt": 0}, {"batch": 0}, {"repetitions": 0}])
def test_bad_values_are_config_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        plan_llm(LlmRequest(TINY, CPU, **{"prompt": 8, "gen": 4, **kwargs}))


def test_int8_dynamic_is_cpu_fp32_only() -> None:
    model = resolve_llm(TINY)
    with pytest.raises(ConfigError, match="CPU"):
        LlmConfig(model, DeviceSpec("cuda", 0), prompt=8, gen=4, variant="int8-dynamic")
    with pytest.raises(ConfigError, match="fp32"):
        LlmConfig(model, prompt=8, gen=4, variant="int8-dynamic", precision="bf16")


def test_tune_tries_bf16_and_int8_on_the_cpu_without_looking_at_its_flags() -> None:
    cpu = candidates(DeviceSpec("cpu"))
    assert ("sdpa", "bf16") in cpu and ("int8-dynamic", "fp32") in cpu and ("static-compile", "fp32") in cpu
    assert ("packed", "bf16") in cpu  # tried everywhere; a CPU without oneDNN bf16 records "unavailable"
    gpu = candidates(DeviceSpec("cuda", 0))
    assert ("sdpa", "fp16") in gpu and ("static-compile", "bf16") in gpu
    assert all(v not in ("int8-dynamic", "packed") for v, _ in gpu)


# -- packed (oneDNN pre-packed Linear weights) ---------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("rows", [(1, 1), (3, 5)])
def test_packed_linear_computes_what_nn_linear_computes(precision: str, rows: tuple[int, int]) -> None:
    from devicebench.measure.llm import PackedLinear, packed_unavailable

    if packed_unavailable(precision):
        pytest.skip(packed_unavailable(precision))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96).to(dtype)
    x = torch.randn(*rows, 64).to(dtype)
    with torch.inference_mode():
        want, got = linear(x).float(), PackedLinear(linear, batch=1)(x).float()
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=2e-2 if precision == "bf16" else 1e-5, atol=2e-2 if precision == "bf16" else 1e-5)


def test_packed_bf16_replaces_every_linear_and_gives_the_reference_answer(tmp_path: Path) -> None:
    from devicebench.measure.llm import PackedLinear, pack_linears, packed_unavailable

    model = resolve_llm(TINY)
    ref_file = str(tmp_path / "ref.pt")
    ref = measure_llm(LlmConfig(model, prompt=8, gen=4, repetitions=1, variant="eager", probe_bandwidth=False,
                                save_reference=ref_file))
    assert ref.status == "ok", ref.message
    packed = measure_llm(LlmConfig(model, prompt=8, gen=4, repetitions=2, variant="packed", precision="bf16",
                                   probe_bandwidth=False, reference=ref_file))
    if packed_unavailable("bf16"):  # e.g. an AVX2-only CPU: recorded, never a crash
        assert packed.status == "unavailable" and packed.message.startswith("packed: ")
        return
    assert packed.status == "ok", packed.message
    assert packed.parity is not None and packed.parity.passed, packed.parity
    assert all(r.tokens == 4 and len(r.step_ns) == 3 for r in packed.repetitions)
    # The packed head is its own copy of the tied table: bytes counted once each, the table
    # read one row a step, the head whole.
    bf16_params = packed.parameters * 2
    head = packed.shape.vocab_size * packed.shape.hidden_size * 2
    buffers = 64  # the rotary embedding's fp32 frequencies
    assert 0 <= packed.sizes.weight_bytes - (bf16_params + head) <= buffers
    assert 0 <= packed.sizes.weight_bytes_per_step - (bf16_params + 2 * packed.shape.hidden_size) <= buffers
    from devicebench.workloads.llm import build_llm

    module = build_llm(model).module
    assert pack_linears(module, 1) == sum(1 for m in module.modules() if isinstance(m, PackedLinear)) > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in module.modules())


def test_packed_where_onednn_cannot_is_unavailable_and_tune_picks_another(monkeypatch, tmp_path: Path) -> None:
    import devicebench.measure.llm as measure

    monkeypatch.setattr(measure, "packed_unavailable", lambda precision: "oneDNN cannot run bf16 on this CPU")
    with pytest.raises(ConfigError, match="CPU only"):
        LlmConfig(resolve_llm(TINY), DeviceSpec("cuda", 0), prompt=8, gen=4, variant="packed")
    plan = plan_llm(LlmRequest(TINY, CPU, prompt=8, gen=3, repetitions=1, variants=("sdpa", "packed"),
                               precision="bf16", probe_bandwidth=False))
    _, records = execute_llm(plan, command="t", tune=True, measure=_in_process)
    packed = next(r for r in records if r.variant == "packed")
    assert packed.status == "unavailable" and "cannot run bf16" in packed.message and not packed.best
    assert [r.variant for r in records if r.best] == ["sdpa"]


def _write_folder(path: Path, config: dict, weights: str = "model.safetensors") -> Path:
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    (path / weights).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return path


@pytest.mark.parametrize(("config", "weights", "message"), [
    ({"model_type": "bert", "architectures": ["BertModel"]}, "model.safetensors", "not a causal language model"),
    ({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}, "pytorch_model.bin", "safetensors weights only"),
    ({"model_type": "qwen2", "auto_map": {"AutoModelForCausalLM": "x.Y"}}, "model.safetensors", "own Python code"),
    ({"architectures": ["Qwen2ForCausalLM"]}, "model.safetensors", "no model_type"),
])
def test_folders_that_are_not_safetensors_causal_lms_are_refused(tmp_path: Path, config: dict, weights: str,
                                                                  message: str) -> None:
    folder = _write_folder(tmp_path / "m", config, weights)
    with pytest.raises(ModelFileError, match=message) as info:
        resolve_llm(str(folder))
    assert "\n" not in str(info.value)


def test_a_folder_without_config_and_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError):
        resolve_llm(str(tmp_path / "empty"))
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="is a file"):
        resolve_llm(str(tmp_path / "f.bin"))


def test_users_causal_lm_folder_is_measured_with_its_own_weights(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_config(get_llm_entry("llama-3.2-1b-tiny").hf_config())
    model.save_pretrained(tmp_path / "mine", safe_serialization=True)
    resolved = resolve_llm(str(tmp_path / "mine"))
    assert resolved.path and resolved.weights.startswith("file:mine sha256:") and resolved.max_context == 256
    outcome = measure_llm(LlmConfig(resolved, prompt=8, gen=4, repetitions=2, probe_bandwidth=False))
    assert outcome.status == "ok", outcome.message
    assert outcome.weights == resolved.weights and outcome.model_file["format"] == "huggingface-causal-lm"
    assert outcome.parameters == sum(p.numel() for p in model.parameters())


# -- the measurement ----------------------------------------------------------------------


def test_every_repetition_makes_exactly_gen_tokens_and_every_metric(tiny_run) -> None:
    _, records, _ = tiny_run
    assert [r.role for r in records] == ["parity-reference", "", "", ""]
    for r in records:
        assert r.ok, r.message
    ref, sdpa, static, bf16 = records
    assert ref.repetitions == 1 and ref.variant == "eager"
    for r in (sdpa, static, bf16):
        assert r.repetitions == 3 and len(r.samples.steps_ns) == 3
        assert all(len(steps) == 6 - 1 for steps in r.samples.steps_ns)  # gen - 1 decode steps
        assert len(r.tokens) == 6
        assert all(t >= p for t, p in zip(r.samples.ttft_ns, r.samples.prefill_ns))
        # derived figures from the raw samples
        assert r.prefill_tps.n == 3 and r.decode_tps.n == 3 and r.itl_ms.n == 15
        expected = sorted(5 * 1e9 / sum(s) for s in r.samples.steps_ns)[1]
        assert r.decode_tps.median == pytest.approx(expected)
        assert r.tpot_ms.median == pytest.approx(sorted(sum(s) / 5 / 1e6 for s in r.samples.steps_ns)[1])
        assert r.ttft_ms.median > 0 and r.itl_ms.p99 >= r.itl_ms.median
        # bytes, bandwidth and FLOP/s
        assert r.sizes.kv_cache_bytes == r.sizes.kv_bytes_per_token * (12 + 6)
        assert r.bandwidth.peak_gbps > 0 and r.bandwidth.device == "cpu"
        assert r.decode_gbps == pytest.approx(r.sizes.decode_bytes_per_step * r.decode_tps.median / 1e9)
        assert r.decode_bandwidth_share == pytest.approx(r.decode_gbps / r.bandwidth.peak_gbps)
        assert r.prefill_tflops > 0
        # energy per token and memory
        assert r.energy is not None and r.energy.source and r.joules_per_token is not None
        assert r.memory.rss_peak_mb > 0
        assert r.cold_start.build_s > 0 and r.cold_start.first_generation_s > 0
    # parameters (and a few buffers: RoPE frequencies) at 4 and 2 bytes
    assert sdpa.parameters * 4 <= sdpa.sizes.weight_bytes < sdpa.parameters * 4 + 1024
    assert bf16.parameters * 2 <= bf16.sizes.weight_bytes < bf16.parameters * 2 + 1024
    assert bf16.sizes.kv_bytes_per_token * 2 == sdpa.sizes.kv_bytes_per_token


def test_every_variant_gives_the_reference_answer(tiny_run) -> None:
    _, records, _ = tiny_run
    ref = records[0]
    for r in records[1:]:
        assert r.parity is not None and r.parity.passed, r.parity
        assert r.parity.tokens_compared == 6
    sdpa, static = records[1], records[2]
    assert sdpa.tokens == ref.tokens == static.tokens
    assert sdpa.parity.numeric_class == "fp32" and records[3].parity.numeric_class == "bf16"
    assert sdpa.parity.max_rel_diff < 1e-4


def test_our_loop_makes_the_tokens_model_generate_makes() -> None:
    from devicebench.measure.llm import _Generator, _prompt_ids
    from devicebench.workloads.llm import build_llm

    config = LlmConfig(resolve_llm("llama-3.2-1b-tiny"), prompt=10, gen=7)
    workload = build_llm(config.model)
    # Scaled weights so that greedy tokens vary (random init repeats one token).
    with torch.no_grad():
        for p in workload.module.parameters():
            p.mul_(25.0)
    prompt = _prompt_ids(config, workload.shape.vocab_size)
    with torch.inference_mode():
        _, ours, _ = _Generator(workload.module, config, workload.shape).run(prompt)
        theirs = workload.module.generate(prompt, max_new_tokens=7, min_new_tokens=7, do_sample=False)
    assert ours.shape == (1, 7)
    assert ours.tolist() == theirs[:, 10:].tolist()


def test_int8_dynamic_measures_int8_weights() -> None:
    config = LlmConfig(resolve_llm(TINY), prompt=8, gen=3, repetitions=1, variant="int8-dynamic", probe_bandwidth=False)
    outcome = measure_llm(config)
    assert outcome.status == "ok", outcome.message
    fp32 = outcome.parameters * 4
    assert outcome.sizes.weight_bytes < 0.7 * fp32


def test_bandwidth_probe_counts_read_and_write() -> None:
    probe = measure_bandwidth(DeviceSpec("cpu"), nbytes=32 * 2**20, repeats=4)
    assert probe.error == "" and len(probe.samples_gbps) == 4
    assert probe.peak_gbps == pytest.approx(max(probe.samples_gbps), rel=1e-2) and probe.median_gbps <= probe.peak_gbps
    assert "read + write" in probe.method


def test_decode_bytes_read_whole_tied_head_and_one_row_of_an_untied_table() -> None:
    shape = LlmShape("x", vocab_size=100, hidden_size=8, layers=2, heads=2, kv_heads=1, head_dim=4, max_context=64,
                     tied_embeddings=False)
    weights, kv = decode_bytes_per_step(10_000, 3_200, shape, batch=2, prompt=10, gen=5, element_bytes=4)
    assert weights == 10_000 - 3_200 + 2 * 32
    # steps attend over 11..14 tokens (mean 12.5), 2 x layers x kv_heads x head_dim x 4 bytes each
    assert kv == pytest.approx(2 * (2 * 2 * 1 * 4 * 4) * 12.5)
    tied = dataclasses.replace(shape, tied_embeddings=True)
    assert decode_bytes_per_step(10_000, 3_200, tied, batch=2, prompt=10, gen=5, element_bytes=4)[0] == 10_000


# -- parity ------------------------------------------------------------------------------


def _logits(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_parity_same_tokens_and_logits_passes() -> None:
    ref = _logits([[0.0, 5.0, 1.0], [4.0, 0.0, 1.0]])
    p = compare_generations([1, 0], ref + 1e-5, [1, 0], ref, "fp32")
    assert p.passed and p.first_diff_index is None and p.shared_prefix == 2 and p.steps_compared == 2


def test_parity_names_the_first_differing_token_and_fails_a_clear_choice() -> None:
    ref = _logits([[0.0, 5.0, 1.0], [4.0, 0.0, 1.0], [0.0, 0.0, 9.0]])
    cand = ref.clone()
    cand[1] = torch.tensor([0.0, 4.5, 1.0])  # the second token flips although the reference chose clearly
    p = compare_generations([1, 1, 2], cand, [1, 0, 2], ref, "bf16")
    assert not p.passed and p.first_diff_index == 1 and p.shared_prefix == 1 and p.steps_compared == 2
    assert p.max_logit_diff == pytest.approx(4.5)


def test_parity_forgives_a_flip_at_a_near_tie_within_tolerance() -> None:
    ref = _logits([[0.0, 5.0, 1.0], [3.0, 3.001, 1.0]])
    cand = ref.clone()
    cand[1, 0] += 0.01
    p = compare_generations([1, 0], cand, [1, 1], ref, "bf16")
    assert p.passed and p.first_diff_index == 1 and p.diff_at_tie


def test_parity_fails_logits_beyond_the_precision_tolerance() -> None:
    ref = _logits([[0.0, 5.0, 1.0]])
    p = compare_generations([1], ref + 0.5, [1], ref, "fp16")  # 10% of the scale > 2e-2
    assert not p.passed and "logits differ" in p.reasons[0]


# -- records, store, outputs ------------------------------------------------------------


def test_records_round_trip_through_json_and_the_store(tiny_run) -> None:
    run, records, folder = tiny_run
    data = json.loads(json.dumps(records[1].to_dict()))
    back = LlmRecord.from_dict(data)
    assert back.samples == records[1].samples and back.decode_tps == records[1].decode_tps
    assert back.parity == records[1].parity and back.kind == "llm"
    run2, from_json = load_llm_run(str(folder / "run.json"), None)
    assert run2.run_id == run.run_id and [r.record_id for r in from_json] == [r.record_id for r in records]
    run3, from_store = load_llm_run(run.run_id, folder / "r.db")
    assert run3.status == "complete" and len(from_store) == 4
    assert from_store[1].itl_ms == records[1].itl_ms


def test_llama_bench_json_jsonl_csv_md_parse_back(tiny_run) -> None:
    _, records, _ = tiny_run
    rows = json.loads(llama_bench_output(records, "json", tool_version="9.9"))
    assert len(rows) == 2 * 3  # the parity reference is not a result row
    for row in rows:
        assert list(row)[: len(LLAMA_BENCH_FIELDS)] == list(LLAMA_BENCH_FIELDS)
        assert set(EXTRA_FIELDS) <= set(row) and len(row["samples_ns"]) == 3 == len(row["samples_ts"])
        assert row["avg_ts"] == pytest.approx(sum(row["samples_ts"]) / 3, rel=1e-5)
        assert row["build_commit"] == "devicebench-9.9" and row["backends"] == "CPU"
    pp, tg = rows[0], rows[1]
    assert (pp["n_prompt"], pp["n_gen"], tg["n_prompt"], tg["n_gen"]) == (12, 0, 0, 6)
    assert tg["timed_tokens"] == 5 and pp["timed_tokens"] == 12
    assert tg["samples_ns"] == records[1].samples.decode_ns
    lines = [json.loads(line) for line in llama_bench_output(records, "jsonl").splitlines()]
    assert [r["avg_ts"] for r in lines] == [r["avg_ts"] for r in rows]
    text = llama_bench_output(records, "csv")
    assert text.splitlines()[0].startswith("build_commit,build_number,cpu_info,")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 6 and float(parsed[1]["avg_ts"]) == pytest.approx(rows[1]["avg_ts"])
    md = llama_bench_output(records, "md").splitlines()
    assert md[0].split("|")[1].strip() == "model" and len(md) == 2 + 6
    tests = [line.split("|")[6].strip() for line in md[2:]]
    assert tests == ["pp12", "tg6"] * 3
    with pytest.raises(ValueError):
        llama_bench_output(records, "sql")


def _as_gpu(record: LlmRecord, factor: float) -> LlmRecord:
    fast = LlmRecord.from_dict(record.to_dict())
    fast.device = DeviceRef("cuda", 0, "NVIDIA H100")
    fast.samples.prefill_ns = [int(n / factor) for n in fast.samples.prefill_ns]
    fast.samples.steps_ns = [[int(n / factor) for n in steps] for steps in fast.samples.steps_ns]
    fast.record_id += "-gpu"
    return fast.derive()


def test_seed_tables_show_speedup_with_interval_for_prefill_and_decode(tiny_run) -> None:
    _, records, _ = tiny_run
    cpu = records[1]
    gpu = _as_gpu(cpu, 4.0)
    for phase in ("prefill", "decode"):
        headers, rows = llm_seed_rows([records[0], cpu, gpu], phase)
        assert headers[:3] == ["Model", "CPU tok/s", "cuda:0 tok/s"] and headers[3].startswith("Speedup cuda:0")
        assert len(rows) == 1  # the parity reference is not a row
        assert rows[0][3].startswith("4.0") and "[" in rows[0][3]
    headers, rows = llm_seed_rows(records[1:2], "decode")
    assert rows[0][-1] == "no GPU found"


def test_compare_works_on_llm_runs(tiny_run) -> None:
    run, records, _ = tiny_run
    slower = [_as_gpu(r, 0.5) for r in records if r.ok]
    for r in slower:
        r.device = records[1].device
    result = compare_llm_runs(run, records, run, slower)
    phases = {row.variant.split()[-1] for row in result.rows}
    assert phases == {"prefill", "decode"} and len(result.rows) == 2 * 4
    decode = [row for row in result.rows if row.variant.endswith("decode")]
    assert all(row.ratio == pytest.approx(2.0, rel=0.05) for row in decode)


def test_markdown_html_and_cost(tiny_run) -> None:
    run, records, _ = tiny_run
    prices = Prices(hourly={"cpu": 1.0})
    cost = llm_cost_rows(records, prices)
    sdpa = next(c for c in cost if c["config"] == records[1].label)
    assert sdpa["usd_per_m_generated"] == pytest.approx(1e6 / records[1].decode_tps.median / 3600)
    assert sdpa["electricity_usd_per_m_tokens"] is not None
    md = llm_markdown(run, records, prices)
    assert "**Prefill**" in md and "**Decode**" in md and "Cost per million tokens" in md
    page = llm_html(run, records, prices, tool_version="1")
    assert page.startswith("<!DOCTYPE html>") and "Per-token latency" in page and "<script" not in page
    assert math.isfinite(records[1].decode_tps.median)


def test_tune_marks_each_devices_fastest_passing_variant(tmp_path: Path) -> None:
    plan = plan_llm(LlmRequest(TINY, CPU, prompt=8, gen=3, repetitions=1, variants=("sdpa", "eager"),
                               probe_bandwidth=False))
    assert plan[0][1] == "reference" and plan[0][0].variant == "eager"  # asked for: it is the reference too
    _, records = execute_llm(plan, command="t", tune=True, measure=_in_process)
    best = [r for r in records if r.best]
    assert len(best) == 1 and best[0].decode_tps.median == max(r.decode_tps.median for r in records)


def test_python_api_returns_the_results_object(tiny_run, tmp_path: Path) -> None:
    import devicebench as db
    from devicebench.api import LlmResults, Results

    with pytest.raises(UnknownModelError):
        db.llm("no-such-llm", devices="cpu")
    with pytest.raises(ConfigError, match="context"):
        db.llm(TINY, devices="cpu", prompt=256, gen=8)
    run, records, _ = tiny_run
    results = LlmResults(run=run, records=records)
    assert isinstance(results, Results) and len(results) == 4 and results.ok
    text = str(results)
    assert "Prefill" in text and "Decode" in text
    assert "**Decode**" in results.markdown() and "<table" in results._repr_html_()
    assert len(results.to_dicts()) == 6 and json.loads(results.llama_bench("json"))[0]["n_prompt"] == 12
    saved = results.save(tmp_path / "api.db")
    _, back = load_llm_run(run.run_id, saved)
    assert [r.record_id for r in back] == [r.record_id for r in records]


def test_static_compile_compiles_the_decode_step_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recompile per token (the static cache's length guarded as a Python int) would make
    the compiled variant fall back to eager after a few tokens: any recompile is an error here.
    Guards and recompiles are dynamo's, whatever the backend: the test uses the ``eager``
    backend so that no C++ is generated (seconds instead of minutes on 2 cores)."""
    import torch._dynamo

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend="eager", dynamic=kw.get("dynamic")))
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    torch._dynamo.reset()
    config = LlmConfig(resolve_llm(TINY), prompt=8, gen=5, repetitions=2, variant="static-compile",
                       probe_bandwidth=False)
    outcome = measure_llm(config)
    torch._dynamo.reset()
    assert outcome.status == "ok", outcome.message
    assert outcome.cold.compile_s is not None and outcome.cold.compile_s > 0
    assert all(len(r.step_ns) == 4 for r in outcome.repetitions)


def test_show_json_holds_every_llm_record(tiny_run, capsys: pytest.CaptureFixture[str]) -> None:
    from devicebench.cli import main

    run, records, folder = tiny_run
    assert main(["show", run.run_id, "--db", str(folder / "r.db"), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in doc["records"]] == ["llm"] * len(records)
    assert [r["record_id"] for r in doc["records"]] == [r.record_id for r in records]
    assert doc["records"] == json.loads((folder / "run.json").read_text())["records"]  # as `llm --json` wrote them


def test_llm_tables_at_80_columns_cut_nothing(tiny_run) -> None:
    from rich.console import Console

    from devicebench.cli.llm import print_tables

    _, records, _ = tiny_run
    out = io.StringIO()
    print_tables(Console(file=out, width=80, highlight=False), records)
    text = out.getvalue()
    assert "Prefill" in text and "Detail" in text and TINY in text
    assert "…" not in text, text  # cells wrap (or the table grows); no value is cut
