"""LLM decode: devicebench against a hand-timed ``model.generate``, and against the memory bound.

Questions (issue 15's targets):

1. Does devicebench's decode tokens/s agree within 5% with a plain ``model.generate`` loop
   timed by hand on the same model and settings? ``generate`` runs at ``max_new_tokens =
   min_new_tokens = gen`` with a stopping criterion that only stamps the clock (device
   synchronised) each time a token has been appended, so its decode rate is ``(gen - 1) /
   (last stamp - first stamp)``: from the first token to the last, the definition devicebench
   uses, inside the same call. (The first version of this script subtracted a separate
   ``generate(max_new_tokens=1)`` call: two independent prefills in one difference, which
   doubled the noise.) The machine's speed drifts between processes (see
   bench_vs_torch_timer.py), so the verdict comes from *paired* repetitions in one worker:
   devicebench's generation loop (the exact class ``devicebench llm`` times, from
   devicebench.measure.llm) and generate, alternating order pair by pair; the ratio is the
   median of the per-pair ratios, its spread the interquartile range of those ratios. The
   per-token time generate adds (its logits processors, stopping criteria, attention-mask
   and cache-position updates) is shown in milliseconds.
2. What share of the device's measured copy bandwidth does decode reach for qwen2.5-0.5b at
   fp32 and bf16 on the CPU (target >= 60%)? And, where a GPU is present, is compiled
   static-cache bf16 decode >= 2x eager (sdpa, dynamic cache) and >= 60% of its bandwidth?

The optional peer (llama.cpp through llama-cpp-python, GGUF via the ``gguf`` package) is run
only where ``llama_cpp`` imports; on the development machine no wheel exists for it on the
package index (``pip download --only-binary=:all: llama-cpp-python`` finds none), so it is
reported as not measured.

Usage:
    python benchmarks/bench_llm_decode.py                 # qwen2.5-0.5b, pp128 tg64, every device
    python benchmarks/bench_llm_decode.py --quick         # the tiny shape, a minute: checks it runs
Writes docs/results/llm-decode-<host>.md and .json (``--out`` to change; ``--no-write`` not at all).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# Workers are fresh interpreters: they must import this checkout's devicebench too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)

from devicebench.launchers.worker import run_in_worker


@dataclass(frozen=True)
class PairJob:
    model: str
    device: str
    precision: str
    prompt: int
    gen: int
    pairs: int
    threads: int | None = None
    variant: str = "sdpa"


def paired(job: PairJob) -> dict:
    """In one worker: devicebench's loop and generate, alternating, ``pairs`` times."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from devicebench.devices.discovery import DeviceSpec
    from devicebench.devices.timers import synchronize
    from devicebench.measure.llm import _DTYPES, LlmConfig, _Generator, _prompt_ids
    from devicebench.measure.llm import pack_linears as pack
    from devicebench.workloads.llm import build_llm, resolve_llm

    if job.threads:
        torch.set_num_threads(job.threads)
    device = DeviceSpec.parse(job.device)
    config = LlmConfig(resolve_llm(job.model), device=device, prompt=job.prompt, gen=job.gen,
                       precision=job.precision, variant=job.variant)
    workload = build_llm(config.model, attn="sdpa")
    model = workload.module.to(device=device.torch_device, dtype=_DTYPES[job.precision]).eval()
    if job.variant == "packed":
        pack(model, config.batch)  # what a user does to the model before calling generate
    prompt = _prompt_ids(config, workload.shape.vocab_size)
    ours = _Generator(model, config, workload.shape)
    dev_prompt = prompt.to(device.torch_device)
    mask = torch.ones_like(dev_prompt)

    class Stamp(StoppingCriteria):
        """Never stops generation; stamps the clock once a token is appended (synchronised)."""

        def __init__(self) -> None:
            self.ns: list[int] = []

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
            synchronize(device)
            self.ns.append(time.perf_counter_ns())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    def generate_steps() -> list[int]:
        stamp = Stamp()
        out = model.generate(dev_prompt, attention_mask=mask, max_new_tokens=job.gen, min_new_tokens=job.gen,
                             do_sample=False, pad_token_id=0, stopping_criteria=StoppingCriteriaList([stamp]))
        assert out.shape[1] == job.prompt + job.gen, f"generate made {out.shape[1] - job.prompt} tokens, not {job.gen}"
        assert len(stamp.ns) == job.gen, f"{len(stamp.ns)} stamps for {job.gen} tokens"
        return [b - a for a, b in zip(stamp.ns, stamp.ns[1:])]

    def devicebench_steps() -> list[int]:
        rep, tokens, _ = ours.run(prompt)
        assert tokens.shape[1] == job.gen
        return rep.step_ns

    def tps(steps: list[int]) -> float:
        return len(steps) * 1e9 / sum(steps)

    with torch.inference_mode():
        devicebench_steps(), generate_steps()  # warm-up both
        rows, ours_ns, gen_ns = [], [], []
        for i in range(job.pairs):
            order = (devicebench_steps, generate_steps) if i % 2 == 0 else (generate_steps, devicebench_steps)
            got = {f: f() for f in order}
            a, b = got[devicebench_steps], got[generate_steps]
            ours_ns += a
            gen_ns += b
            rows.append((tps(a), tps(b)))
    ratios = sorted(a / b for a, b in rows)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"variant": job.variant, "pairs": rows, "ratio_median": statistics.median(ratios),
            "ratio_iqr": [q[0], q[2]],
            "devicebench_tps_median": statistics.median(a for a, _ in rows),
            "generate_tps_median": statistics.median(b for _, b in rows),
            "generate_extra_ms_per_token": (statistics.mean(gen_ns) - statistics.mean(ours_ns)) / 1e6,
            "threads": torch.get_num_threads()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registered LLM (default qwen2.5-0.5b; --quick: its tiny shape)")
    parser.add_argument("--prompt", type=int, default=None)
    parser.add_argument("--gen", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny shape, short: checks the script runs")
    parser.add_argument("--out", default=None, help="output stem (default docs/results/llm-decode-<host>)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import torch

    from devicebench.api import llm

    model = args.model or ("qwen2.5-0.5b-tiny" if args.quick else "qwen2.5-0.5b")
    prompt = args.prompt or (32 if args.quick else 128)
    gen = args.gen or (16 if args.quick else 64)
    pairs = args.pairs or (3 if args.quick else 6)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report: dict = {"model": model, "prompt": prompt, "gen": gen, "pairs": pairs, "quick": args.quick,
                    "host": socket.gethostname(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "agreement": [], "bandwidth": [], "gpu_compile": None}
    lines = [f"# LLM decode: devicebench against hand-timed generate, and the bandwidth bound ({model}, pp{prompt} tg{gen})", ""]

    # 1. agreement with generate (paired, one worker per device and precision)
    lines += ["## Decode tok/s: devicebench's loop / generate (paired, median of per-pair ratios; target 0.95-1.05)", "",
              "| Device | Precision | Variant | devicebench tok/s | generate tok/s | ratio [IQR] | generate's extra ms/token | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for device in devices:
        # packed: the same model with its Linear weights pre-packed (CPU), under both loops.
        for precision, variant in [("fp32", "sdpa"), ("bf16", "sdpa")] + ([("bf16", "packed")] if device == "cpu" else []):
            res = run_in_worker(paired, PairJob(model, device, precision, prompt, gen, pairs, args.threads, variant))
            if not res.ok:
                lines.append(f"| {device} | {precision} | {variant} | failed: {res.error} | | | | |")
                continue
            v = res.value
            ok = 0.95 <= v["ratio_median"] <= 1.05
            report["agreement"].append({"device": device, "precision": precision, **v, "within_5_percent": ok})
            lo, hi = v["ratio_iqr"]
            lines.append(f"| {device} | {precision} | {variant} | {v['devicebench_tps_median']:.4g} | "
                         f"{v['generate_tps_median']:.4g} | {v['ratio_median']:.3f} [{lo:.3f}-{hi:.3f}] | "
                         f"{v['generate_extra_ms_per_token']:.2f} | {'ok' if ok else 'OUTSIDE 5%'} |")

    # 2. the bandwidth bound, through devicebench llm itself (fresh workers)
    lines += ["", "## Decode bandwidth: bytes per step x steps/s over the measured copy bandwidth (target >= 60%)", "",
              "| Device | Precision | Variant | decode tok/s [95% CI] | GB/s | peak GB/s | share | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    runs = {}
    for device in devices:
        for precision in ("fp32", "bf16"):
            # packed (CPU, bf16): oneDNN pre-packed weights, what makes bf16 decode read-bound.
            variants = (("sdpa", "static-compile") if device == "cuda"
                        else ("sdpa", "packed") if precision == "bf16" else ("sdpa",))
            result = llm(model, devices=device, prompt=prompt, gen=gen, precision=precision, variants=variants,
                         repetitions=3 if args.quick else 5, threads=args.threads, parity=False)
            for r in result.records:
                runs[(device, precision, r.variant)] = r
                if not r.ok:
                    first = r.message.splitlines()[0] if r.message else ""
                    lines.append(f"| {device} | {precision} | {r.variant} | {r.status}: {first} | | | | |")
                    continue
                share = r.decode_bandwidth_share or 0.0
                report["bandwidth"].append({"device": device, "precision": precision, "variant": r.variant,
                                            "decode_tps": r.decode_tps.median, "ci95": list(r.decode_tps.ci95),
                                            "decode_gbps": r.decode_gbps, "peak_gbps": r.bandwidth.peak_gbps,
                                            "share": share, "cold_start": r.cold_start.to_dict() if r.cold_start else None})
                lines.append(f"| {device} | {precision} | {r.variant} | {r.decode_tps.median:.4g} "
                             f"[{r.decode_tps.ci95[0]:.4g}-{r.decode_tps.ci95[1]:.4g}] | {r.decode_gbps:.3g} | "
                             f"{r.bandwidth.peak_gbps:.3g} | {share:.0%} | {'ok' if share >= 0.6 else 'below 60%'} |")
    eager, compiled = runs.get(("cuda", "bf16", "sdpa")), runs.get(("cuda", "bf16", "static-compile"))
    if eager is not None and compiled is not None and eager.ok and compiled.ok:
        ratio = compiled.decode_tps.median / eager.decode_tps.median
        report["gpu_compile"] = {"speedup": ratio, "compile_s": compiled.cold_start.compile_s if compiled.cold_start else None}
        lines += ["", f"GPU bf16: static cache + torch.compile decodes {ratio:.2f}x eager (target >= 2x); compile time "
                  f"{report['gpu_compile']['compile_s'] or 0:.1f} s, apart from the timings."]

    try:
        import llama_cpp  # noqa: F401

        peer = "llama-cpp-python is installed, but the GGUF side-by-side is not implemented in this script yet"
    except ImportError:
        peer = ("llama.cpp peer not measured: llama-cpp-python is not installed (no binary wheel on the package index "
                "for this platform; it is never compiled from source here)")
    report["peer"] = peer
    lines += ["", peer, "", f"Machine: {socket.gethostname()}, torch {torch.__version__}, "
              f"{'quick mode (tiny shape: Python overhead dominates, ratios are not meaningful)' if args.quick else 'full run'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        stem = Path(args.out) if args.out else ROOT / "docs" / "results" / f"llm-decode-{socket.gethostname()}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".md").write_text(text)
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"written: {stem}.md, {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
