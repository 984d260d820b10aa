"""Measure one LLM generation configuration in a worker: prefill, decode, per-token latency.

One *repetition* is what a user of a chat model waits for, done exactly:

1. **prefill**: a prompt of ``prompt`` random token ids (the same ids on every device, from
   the seed) is copied to the device and run through the model in one call, with a fresh KV
   cache; the clock stops when the last position's logits exist (device synchronised):
   ``prefill tok/s = batch x prompt / that time``. The first token is the arg-max of those
   logits; **time to first token** (TTFT) stops when it is on the host.
2. **decode**: ``gen - 1`` more forward passes of one token each, greedy, reusing the cache,
   the device synchronised after every token and each token's time kept: the **inter-token
   latencies** (ITL; p50, p99). ``decode tok/s = batch x (gen - 1) / their sum``; **time per
   output token** (TPOT) is their mean. End-of-sequence tokens are ignored: the loop is ours,
   so exactly ``gen`` new tokens come out of every repetition, and that count is checked.

A warm-up repetition comes first and is reported apart (for ``static-compile`` it holds the
compilation: the cold start). The tokens and, for the parity check, the logits of the first
sequence are taken from one extra, untimed repetition, so copying logits never slows a timed
one.

Variants (how the model runs; see :data:`VARIANTS`) are checked against the CPU fp32
reference (``eager`` attention): the first token index where the greedy sequences differ,
and the largest logit difference over the steps whose inputs were still the same, judged by
the precision's tolerance (:data:`devicebench.measure.parity.TOLERANCES`).
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from devicebench.devices.bandwidth import BandwidthProbe, measure_bandwidth
from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import Environment, collect_environment
from devicebench.devices.timers import synchronize
from devicebench.errors import ConfigError, UserError
from devicebench.measure.energy import EnergySession
from devicebench.measure.memory import MemoryStats, read_memory, reset_device_peak, rss_mb
from devicebench.measure.parity import TOLERANCES
from devicebench.workloads.llm import LlmShape, LlmWorkload, ResolvedLlm, build_llm

__all__ = [
    "VARIANTS",
    "LlmCold",
    "LlmConfig",
    "LlmOutcome",
    "LlmParity",
    "LlmSizes",
    "PackedLinear",
    "Repetition",
    "compare_generations",
    "decode_bytes_per_step",
    "measure_llm",
    "pack_linears",
    "packed_unavailable",
    "prefill_flops",
]

#: How the model runs. ``eager``: transformers' plain attention (matmul, softmax, matmul);
#: ``sdpa``: torch's scaled_dot_product_attention (transformers' default); ``static``: sdpa
#: with a pre-allocated (static) KV cache; ``static-compile``: that plus ``torch.compile``
#: (CUDA graphs on CUDA); ``int8-dynamic``: CPU only, every Linear layer's weights in int8
#: with activations quantised per call (torch dynamic quantisation), fp32 otherwise;
#: ``packed``: CPU only, sdpa with every Linear layer's weight reordered once, before timing,
#: into oneDNN's blocked layout (what torch.compile's inductor does with ``freezing=True``,
#: without the compile): a bf16 ``nn.Linear`` otherwise reorders its weight on every call,
#: which makes one-token decode compute-bound (see docs/llm.md, "bf16 decode on CPUs").
VARIANTS = ("eager", "sdpa", "static", "static-compile", "int8-dynamic", "packed")
PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class LlmConfig:
    """One LLM configuration: a model on a device, a prompt length, a generation length.

    Attributes:
        model: the resolved model (registered shape or checked folder).
        device: where to run.
        prompt: prompt tokens per sequence (llama-bench's ``n_prompt``).
        gen: new tokens per sequence, exactly (``n_gen``); at least 2 (one decode step).
        batch: sequences generated together.
        precision: weights and activations: ``fp32``, ``fp16``, ``bf16``.
        variant: one of :data:`VARIANTS`.
        repetitions: timed repetitions (llama-bench's ``-r``; default 5).
        warmup: untimed repetitions before them (the first is reported as the cold start).
        threads: CPU intra-op threads (``None``: torch's default, recorded).
        seed: seeds the random weights and the prompt.
        reference: a file of the CPU fp32 reference's tokens and logits to compare with.
        save_reference: write this configuration's tokens and logits here (the reference).
        probe_bandwidth: measure the device's copy bandwidth first (for the decode share).
    """

    model: ResolvedLlm
    device: DeviceSpec = field(default_factory=lambda: DeviceSpec("cpu"))
    prompt: int = 512
    gen: int = 128
    batch: int = 1
    precision: str = "fp32"
    variant: str = "sdpa"
    repetitions: int = 5
    warmup: int = 1
    threads: int | None = None
    seed: int = 0
    reference: str | None = None
    save_reference: str | None = None
    probe_bandwidth: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.device, str):
            object.__setattr__(self, "device", DeviceSpec.parse(self.device))
        if self.prompt < 1:
            raise ConfigError(f"--prompt must be >= 1 token, got {self.prompt}")
        if self.gen < 2:
            raise ConfigError(f"--gen must be >= 2 tokens (the first comes from the prefill, the rest are decode), got {self.gen}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be >= 1, got {self.batch}")
        if self.repetitions < 1:
            raise ConfigError(f"--repetitions must be >= 1, got {self.repetitions}")
        if self.warmup < 0:
            raise ConfigError(f"warm-up repetitions must be >= 0, got {self.warmup}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown LLM variant {self.variant!r}: use one of {', '.join(VARIANTS)}")
        if self.variant == "int8-dynamic" and (self.device.type != "cpu" or self.precision != "fp32"):
            raise ConfigError("int8-dynamic runs on the CPU at --precision fp32 (int8 weights, fp32 activations)")
        if self.variant == "packed" and self.device.type != "cpu":
            raise ConfigError("packed (oneDNN pre-packed weights) runs on the CPU only")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        context = self.model.max_context
        if context and self.prompt + self.gen > context:
            raise ConfigError(
                f"prompt {self.prompt} + gen {self.gen} = {self.prompt + self.gen} tokens is longer than "
                f"{self.model.name}'s context of {context} tokens (max_position_embeddings): use a shorter --prompt or --gen")

    @property
    def numeric(self) -> str:
        """The tolerance class of this configuration's answers."""
        return "int8" if self.variant == "int8-dynamic" else self.precision

    def label(self) -> str:
        return (f"{self.model.name} {self.device} pp{self.prompt} tg{self.gen} b{self.batch} "
                f"{self.precision} {self.variant}")


@dataclass
class Repetition:
    """One timed repetition (nanoseconds): prefill to logits, TTFT, each decode step."""

    prefill_ns: int
    ttft_ns: int
    step_ns: list[int]
    tokens: int  # new tokens produced, all sequences (checked == batch x gen)

    @property
    def decode_ns(self) -> int:
        return sum(self.step_ns)

    @property
    def total_ns(self) -> int:
        return self.ttft_ns + self.decode_ns


@dataclass
class LlmCold:
    """What happens before the first timed repetition (seconds).

    Attributes:
        build_s: building the model on the CPU (random weights, or reading the folder).
        to_device_s: casting and moving it, synchronised.
        prepare_s: quantising (int8-dynamic) or wrapping with torch.compile (lazy: cheap).
        first_generation_s: the first (warm-up) repetition, end to end: for
            ``static-compile`` this holds the compilation (the compile time, apart from
            every timed figure).
        compile_s: for ``static-compile``: the first repetition minus the median timed one,
            the time the compiler took; ``None`` otherwise.
        bandwidth_probe_s: the copy-bandwidth probe.
    """

    build_s: float = 0.0
    to_device_s: float = 0.0
    prepare_s: float = 0.0
    first_generation_s: float | None = None
    compile_s: float | None = None
    bandwidth_probe_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LlmSizes:
    """Bytes that decide memory-bound speed, and what prefill computes.

    Attributes:
        weight_bytes: every parameter and buffer of the model as it ran (int8 weights count 1 byte).
        weight_bytes_per_step: weights read by one decode step: all but the input embedding
            table, of which one row per sequence is read (with tied embeddings the table is the
            output head and is read whole).
        kv_bytes_per_token: K and V of one token of context, all layers, one sequence.
        kv_cache_bytes: the cache at full length (prompt + gen), all sequences.
        kv_read_bytes_mean: K and V read by a decode step, averaged over the steps.
        decode_bytes_per_step: weight_bytes_per_step + kv_read_bytes_mean.
        prefill_flops: floating-point operations of one prefill (see :func:`prefill_flops`).
    """

    weight_bytes: int = 0
    weight_bytes_per_step: int = 0
    kv_bytes_per_token: int = 0
    kv_cache_bytes: int = 0
    kv_read_bytes_mean: float = 0.0
    decode_bytes_per_step: float = 0.0
    prefill_flops: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LlmParity:
    """Greedy tokens and logits of one configuration against the CPU fp32 reference.

    Attributes:
        numeric_class: the tolerance used (``fp32``, ``bf16``, ``fp16``, ``int8``).
        passed: the same answer within tolerance.
        tokens_compared: tokens per sequence compared (``gen``).
        first_diff_index: index (0-based, among the new tokens) of the first token that
            differs in the first sequence; ``None`` when all ``gen`` agree.
        shared_prefix: tokens equal before it (== first_diff_index, or gen).
        steps_compared: generation steps whose inputs were identical on both sides (the shared
            prefix plus the step where they part): the logits compared.
        max_logit_diff: largest |candidate - reference| logit over those steps.
        max_rel_diff: that over the largest |reference| logit of those steps.
        diff_at_tie: the token that differs was a near tie in the reference (its top two
            logits closer than the tolerance allows): no precision can be asked to keep it.
        tolerance: the relative logit tolerance of the numeric class.
        reasons: why it failed (empty when it passed).
    """

    numeric_class: str
    passed: bool
    tokens_compared: int
    first_diff_index: int | None
    shared_prefix: int
    steps_compared: int
    max_logit_diff: float
    max_rel_diff: float
    diff_at_tie: bool = False
    tolerance: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        where = "all tokens equal" if self.first_diff_index is None else f"first diff at token {self.first_diff_index}"
        tie = " (a near tie)" if self.diff_at_tie else ""
        return f"{where}{tie}, max logit diff {self.max_logit_diff:.2e} (rel {self.max_rel_diff:.1e})"


@dataclass
class LlmOutcome:
    """Everything one LLM configuration measured, returned from the worker."""

    status: str  # ok | oom | error | unavailable
    message: str
    device_name: str
    weights: str = "random"
    parameters: int = 0
    shape: LlmShape | None = None
    threads: int = 0
    repetitions: list[Repetition] = field(default_factory=list)
    cold: LlmCold | None = None
    sizes: LlmSizes | None = None
    bandwidth: BandwidthProbe | None = None
    memory: MemoryStats | None = None
    energy: dict[str, Any] | None = None
    parity: LlmParity | None = None
    environment: Environment | None = None
    model_file: dict[str, Any] | None = None
    #: Greedy tokens of the first sequence (for the record; a reference keeps them too).
    tokens: list[int] = field(default_factory=list)
    timer: str = "perf_counter"


# -- sizes ------------------------------------------------------------------------------


def _tensor_bytes(module: torch.nn.Module) -> int:
    total = 0
    seen: set[int] = set()
    for t in list(module.parameters()) + list(module.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    # Dynamically quantised Linear layers keep their int8 weights in packed params, not
    # parameters: 1 byte per weight, the fp32 bias beside it.
    for sub in module.modules():
        packed = getattr(sub, "_packed_params", None)
        if packed is not None:
            try:
                weight, bias = packed._weight_bias()
                total += weight.numel() * 1 + (bias.numel() * 4 if bias is not None else 0)
            except Exception:  # noqa: BLE001 - a quantised module of another kind: skip
                continue
        if isinstance(sub, PackedLinear):
            total += sub.weight_bytes + (sub.bias.numel() * sub.bias.element_size() if sub.bias is not None else 0)
    return total


def decode_bytes_per_step(weight_bytes: int, embedding_bytes: int, shape: LlmShape, *, batch: int,
                          prompt: int, gen: int, element_bytes: int) -> tuple[int, float]:
    """(weights read per decode step, mean K/V bytes read per step).

    A decode step reads every weight once, except an untied input embedding table, of which
    it reads one row per sequence. Step ``i`` (1..gen-1) attends over ``prompt + i`` cached
    tokens per sequence.
    """
    row = embedding_bytes // max(1, shape.vocab_size)
    weights = weight_bytes if shape.tied_embeddings else weight_bytes - embedding_bytes + batch * row
    steps = gen - 1
    mean_context = prompt + (steps + 1) / 2.0  # mean of prompt+1 .. prompt+steps
    kv = batch * shape.kv_bytes_per_token(element_bytes) * mean_context
    return int(weights), float(kv)


def prefill_flops(params_no_embedding: int, shape: LlmShape, *, batch: int, prompt: int) -> float:
    """FLOPs of one prefill: 2 per weight per token for the layers (every position), the
    output head on the last position only, and causal attention (QK^T and AV over half the
    square: 2 x 2 x prompt^2 / 2 x heads x head_dim per layer)."""
    head = shape.vocab_size * shape.hidden_size
    layers = max(0, params_no_embedding - (0 if shape.tied_embeddings else head))
    dense = 2.0 * layers * prompt + 2.0 * head
    attention = 2.0 * shape.layers * prompt * prompt * shape.heads * shape.head_dim
    return batch * (dense + attention)


# -- the generation loop ----------------------------------------------------------------


class _Generator:
    """Greedy generation with a KV cache, each token's time kept (see the module docstring)."""

    def __init__(self, model: Any, config: LlmConfig, shape: LlmShape) -> None:
        self.model = model
        self.config = config
        self.device = config.device
        self.static = config.variant in ("static", "static-compile")
        self.max_len = config.prompt + config.gen
        self.forward = self.decode_forward = model.forward
        self._static_cache: Any = None
        if self.static:
            from transformers import StaticCache

            self._static_cache = StaticCache(config=model.config, max_cache_len=self.max_len)
        if config.variant == "static-compile":
            # As transformers' generate does: only the decode step is compiled (one shape, the
            # static cache at fixed addresses, CUDA graphs on CUDA); the prefill runs eagerly,
            # so the cache is initialised outside the graph and nothing recompiles per token.
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.decode_forward = torch.compile(model.forward, mode=mode, fullgraph=False, dynamic=False)
        # transformers >= 5.x names the argument `cache`; older ones `past_key_values`.
        import inspect

        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"

    def _cache(self) -> Any:
        if self.static:
            self._static_cache.reset()
            return self._static_cache
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:
            return DynamicCache()

    def _step(self, ids: torch.Tensor, cache: Any, start: int) -> torch.Tensor:
        n = ids.shape[1]
        forward = self.forward if start == 0 else self.decode_forward
        pos = torch.arange(start, start + n, device=ids.device)
        kwargs = {self.cache_arg: cache, "use_cache": True, "logits_to_keep": 1,
                  "position_ids": pos.unsqueeze(0).expand(ids.shape[0], -1)}
        if self.static:
            kwargs["cache_position"] = pos
        out = forward(input_ids=ids, **kwargs)
        # A clone: with CUDA graphs the output buffer is overwritten by the next replay.
        return out.logits[:, -1, :].clone() if forward is not self.forward else out.logits[:, -1, :]

    def run(self, prompt: torch.Tensor, *, capture: bool = False) -> tuple[Repetition, torch.Tensor, list[torch.Tensor]]:
        """One repetition: (timings, new tokens batch x gen on the host, first sequence's
        logits per step when ``capture``)."""
        gen, device = self.config.gen, self.device
        clock = time.perf_counter_ns
        captured: list[torch.Tensor] = []
        tokens: list[torch.Tensor] = []
        cache = self._cache()
        synchronize(device)
        t0 = clock()
        ids = prompt.to(device.torch_device, non_blocking=False)
        logits = self._step(ids, cache, 0)
        synchronize(device)
        t_logits = clock()
        nxt = logits.argmax(dim=-1)
        nxt.cpu()  # the first token copied to the host: what a user sees first
        t_first = clock()
        tokens.append(nxt)
        if capture:
            captured.append(logits[0].float().cpu())
        steps: list[int] = []
        last = t_first
        position = self.config.prompt
        for _ in range(gen - 1):
            logits = self._step(nxt.unsqueeze(1), cache, position)
            nxt = logits.argmax(dim=-1)
            synchronize(device)
            now = clock()
            steps.append(now - last)
            tokens.append(nxt)
            position += 1
            if capture:
                captured.append(logits[0].float().cpu())
                last = clock()  # the copy above is not a decode step's time
            else:
                last = now
        out = torch.stack(tokens, dim=1).cpu()
        rep = Repetition(prefill_ns=t_logits - t0, ttft_ns=t_first - t0, step_ns=steps, tokens=int(out.numel()))
        return rep, out, captured


# -- parity -------------------------------------------------------------------------------


def compare_generations(tokens: list[int], logits: torch.Tensor, ref_tokens: list[int], ref_logits: torch.Tensor,
                        numeric: str) -> LlmParity:
    """Compare a candidate's greedy tokens and per-step logits (``steps x vocab``) with the
    reference's, over the steps whose inputs were the same.

    Raises:
        KeyError: unknown numeric class.
    """
    tol = TOLERANCES[numeric].max_rel_err
    n = min(len(tokens), len(ref_tokens))
    first = next((i for i in range(n) if tokens[i] != ref_tokens[i]), None)
    shared = n if first is None else first
    steps = min(n, shared + 1, logits.shape[0], ref_logits.shape[0])
    cand = logits[:steps].double()
    ref = ref_logits[:steps].double()
    parity = LlmParity(numeric, False, n, first, shared, steps, math.inf, math.inf, tolerance=tol)
    if cand.shape != ref.shape:
        parity.reasons.append(f"logits of shape {list(cand.shape)} differ from the reference's {list(ref.shape)}")
        return parity
    if not torch.isfinite(cand).all():
        parity.reasons.append("logits hold NaN or infinite values")
        return parity
    scale = float(ref.abs().max()) or 1.0
    parity.max_logit_diff = float((cand - ref).abs().max()) if cand.numel() else 0.0
    parity.max_rel_diff = parity.max_logit_diff / scale
    if parity.max_rel_diff > tol:
        parity.reasons.append(f"logits differ by {parity.max_rel_diff:.2e} of their scale (> {tol:.0e})")
    if first is not None and first < ref.shape[0]:
        top2 = ref[first].topk(2).values
        gap = float(top2[0] - top2[1])
        # A token may flip only where the reference itself barely chose it.
        parity.diff_at_tie = gap <= 2 * max(parity.max_logit_diff, tol * scale)
        if not parity.diff_at_tie:
            parity.reasons.append(f"token {first} differs although the reference's choice was clear "
                                  f"(top-2 gap {gap:.3g} > twice the logit difference)")
    if len(tokens) != len(ref_tokens):
        parity.reasons.append(f"{len(tokens)} tokens against the reference's {len(ref_tokens)}")
    parity.passed = not parity.reasons
    return parity


# -- the worker's entry point ----------------------------------------------------------


def _device_name(device: DeviceSpec, env: Environment | None) -> str:
    if env is None:
        return device.torch_device
    if device.type == "cpu":
        return env.cpu.model
    names = [a.name for a in env.accelerators if a.device in (device.torch_device, device.type)]
    return names[0] if names else device.torch_device


def _prompt_ids(config: LlmConfig, vocab: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(config.seed + 1)
    return torch.randint(0, vocab, (config.batch, config.prompt), generator=gen, dtype=torch.long)


class VariantUnavailable(Exception):
    """This variant cannot run here (recorded as status ``unavailable``, the sweep goes on)."""


def packed_unavailable(precision: str) -> str | None:
    """Why oneDNN pre-packed Linear layers cannot run at ``precision`` on this CPU (``None``:
    they can). Asked of torch, never guessed from CPU flags: oneDNN runs bf16 on CPUs with
    AVX-512 BF16/AMX (and emulates it on other AVX-512 ones), not on AVX2-only CPUs."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
        return "this torch build has no oneDNN (mkldnn) linear ops"
    if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "oneDNN cannot run bf16 on this CPU (torch.ops.mkldnn._is_mkldnn_bf16_supported() is False)"
    if precision == "fp16" and not torch.ops.mkldnn._is_mkldnn_fp16_supported():
        return "oneDNN cannot run fp16 on this CPU (torch.ops.mkldnn._is_mkldnn_fp16_supported() is False)"
    return None


class PackedLinear(torch.nn.Module):
    """An ``nn.Linear`` whose weight was reordered once into oneDNN's blocked layout.

    ``F.linear`` hands oneDNN a plain row-major weight, which its matmul reorders into the
    blocked (VNNI) layout it computes from on every call; for one token (M = batch) that
    reorder costs as much as reading the weight. Packed once, a decode step only streams the
    packed weight: torch.compile's inductor does the same (``mkldnn._reorder_linear_weight``
    and ``mkldnn._linear_pointwise``) when ``freezing`` is on.
    """

    def __init__(self, linear: torch.nn.Linear, batch: int) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_bytes = weight.numel() * weight.element_size()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, batch)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def pack_linears(model: torch.nn.Module, batch: int) -> int:
    """Replace every ``nn.Linear`` of ``model`` by a :class:`PackedLinear` (the output head
    too: with tied embeddings it then holds its own packed copy of the table). Returns how
    many were replaced."""
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if isinstance(child, torch.nn.Linear)]
    for parent, name, child in targets:
        setattr(parent, name, PackedLinear(child, batch))
    return len(targets)


def _prepare(model: Any, config: LlmConfig) -> Any:
    if config.variant == "packed":
        reason = packed_unavailable(config.precision)
        if reason:
            raise VariantUnavailable(f"packed: {reason}")
        pack_linears(model, config.batch)
        return model
    if config.variant == "int8-dynamic":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def measure_llm(config: LlmConfig) -> LlmOutcome:
    """Measure one configuration (in a worker); never raises for a failed measurement."""
    device = config.device
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    outcome = LlmOutcome(status="error", message="", device_name=device.torch_device, threads=torch.get_num_threads())
    outcome.timer = "perf_counter" if device.type == "cpu" else "perf_counter+sync"
    cold = LlmCold()
    outcome.cold = cold
    try:
        outcome.environment = collect_environment()
        outcome.device_name = _device_name(device, outcome.environment)
        if config.variant == "packed" and (reason := packed_unavailable(config.precision)):
            raise VariantUnavailable(f"packed: {reason}")  # before building the model for nothing
        if device.type == "cuda":
            torch.cuda.set_device(device.torch_device)
        if config.probe_bandwidth:
            t0 = time.perf_counter()
            outcome.bandwidth = measure_bandwidth(device)
            cold.bandwidth_probe_s = time.perf_counter() - t0
        baseline = round(rss_mb(), 1)
        attn = "eager" if config.variant == "eager" else "sdpa"
        t0 = time.perf_counter()
        workload: LlmWorkload = build_llm(config.model, attn=attn, seed=config.seed)
        cold.build_s = time.perf_counter() - t0
        shape = workload.shape
        outcome.shape, outcome.weights = shape, workload.weights
        outcome.parameters, outcome.model_file = workload.parameters, workload.model_file
        if shape.max_context and config.prompt + config.gen > shape.max_context:
            raise ConfigError(f"prompt + gen = {config.prompt + config.gen} tokens exceeds the model's context of {shape.max_context}")
        prompt = _prompt_ids(config, shape.vocab_size)

        dtype = _DTYPES[config.precision]
        reset_device_peak(device)
        t0 = time.perf_counter()
        model = workload.module.to(device=device.torch_device, dtype=dtype)
        synchronize(device)
        cold.to_device_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = _prepare(model, config)
        cold.prepare_s = time.perf_counter() - t0

        embedding = model.get_input_embeddings().weight
        embedding_bytes = embedding.numel() * embedding.element_size()
        weight_bytes = _tensor_bytes(model)
        element = torch.empty((), dtype=dtype).element_size()
        # A packed head is its own copy of a tied table: the table is then read one row a step.
        read_shape = replace(shape, tied_embeddings=False) if config.variant == "packed" else shape
        per_step, kv_mean = decode_bytes_per_step(weight_bytes, embedding_bytes, read_shape, batch=config.batch,
                                                  prompt=config.prompt, gen=config.gen, element_bytes=element)
        no_embedding = workload.parameters - embedding.numel()
        outcome.sizes = LlmSizes(
            weight_bytes=weight_bytes, weight_bytes_per_step=per_step,
            kv_bytes_per_token=shape.kv_bytes_per_token(element),
            kv_cache_bytes=config.batch * shape.kv_bytes_per_token(element) * (config.prompt + config.gen),
            kv_read_bytes_mean=kv_mean, decode_bytes_per_step=per_step + kv_mean,
            prefill_flops=prefill_flops(no_embedding, shape, batch=config.batch, prompt=config.prompt))

        generator = _Generator(model, config, shape)
        expected = config.batch * config.gen
        with torch.inference_mode():
            for i in range(config.warmup):
                t0 = time.perf_counter()
                rep, _, _ = generator.run(prompt)
                if i == 0:
                    cold.first_generation_s = time.perf_counter() - t0
            energy = EnergySession(device.type, device.index, outcome.device_name, cores=outcome.threads)
            energy.begin()
            for _ in range(config.repetitions):
                rep, new_tokens, _ = generator.run(prompt)
                if rep.tokens != expected or new_tokens.shape != (config.batch, config.gen):
                    raise RuntimeError(f"generated {rep.tokens} tokens, expected exactly {expected}")
                outcome.repetitions.append(rep)
            outcome.energy = energy.end(config.repetitions, expected)
            # Tokens and logits from one more, untimed repetition (copying logits would
            # slow the timed ones).
            _, new_tokens, logits = generator.run(prompt, capture=True)
        outcome.tokens = [int(t) for t in new_tokens[0].tolist()]
        if config.variant == "static-compile" and cold.first_generation_s is not None:
            totals = sorted(r.total_ns for r in outcome.repetitions)
            cold.compile_s = max(0.0, cold.first_generation_s - totals[len(totals) // 2] / 1e9)
        stacked = torch.stack(logits)
        if config.save_reference:
            torch.save({"tokens": outcome.tokens, "logits": stacked}, config.save_reference)
        if config.reference:
            ref = torch.load(config.reference, weights_only=True)
            outcome.parity = compare_generations(outcome.tokens, stacked, list(ref["tokens"]), ref["logits"],
                                                 config.numeric)
        outcome.memory = read_memory(device, baseline)
        outcome.status, outcome.message = "ok", ""
    except VariantUnavailable as exc:
        outcome.status, outcome.message = "unavailable", str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded status
        from devicebench.measure.inference import is_out_of_memory

        oom = is_out_of_memory(exc)
        outcome.status = "oom" if oom else "error"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        outcome.message = f"{type(exc).__name__}: {first}"[:500]
        if not oom and not isinstance(exc, UserError):
            outcome.message += "\n" + "".join(traceback.format_exception(exc))[-2000:]
        try:
            outcome.memory = read_memory(device, None)
        except Exception:  # noqa: BLE001
            pass
    return outcome


def reference_path(folder: str | Path) -> str:
    """Where a run keeps its CPU fp32 reference's tokens and logits."""
    return str(Path(folder) / "reference.pt")
