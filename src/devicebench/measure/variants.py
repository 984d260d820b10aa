"""Tuning features: the ways to run one model faster than plain eager PyTorch.

A *variant* is ``eager`` or a ``+``-joined set of features (``channels_last+compile``,
``ort``, ``int8-dynamic``, ``fp16`` is a precision, not a feature). Each feature is
registered with the devices it applies to, a check that says why it cannot run here, and a
``prepare`` step that turns the (already cast and moved) module into the callable that is
timed. Features are applied in a fixed order (quantise, change layout, swap the runtime,
compile, capture), whatever order the name gives.

Nothing here changes global state at import; a feature that sets a process-wide flag (TF32)
does so in ``prepare``, which only ever runs inside the worker process of one configuration.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.prepare import set_fp32_math
from devicebench.devices.sysinfo import Environment, cuda_capability
from devicebench.errors import ConfigError, UserError
from devicebench.measure.config import InferenceConfig
from devicebench.workloads.registry import Workload

__all__ = [
    "Feature",
    "register_feature",
    "get_feature",
    "list_features",
    "parse_variant",
    "variant_unavailable",
    "numeric_class",
    "prepare_variant",
    "cpu_native_bf16",
    "onnx_cache_dir",
    "weights_fingerprint",
]

Inputs = tuple[torch.Tensor, ...]
Prepared = tuple[Callable[..., Any], Inputs]

#: Environment variable that moves the cache of exported ONNX files (default: the user
#: cache folder). Only a location: it changes no result.
CACHE_ENV_VAR = "DEVICEBENCH_CACHE_DIR"


@dataclass(frozen=True)
class PrepareContext:
    """What a feature's ``prepare`` may need besides the module and its inputs."""

    config: InferenceConfig
    device: DeviceSpec
    workload: Workload
    features: tuple[str, ...]


@dataclass(frozen=True)
class Feature:
    """One tuning feature.

    Attributes:
        name: as written in a variant (``channels_last``).
        devices: device types it can run on.
        order: application order (lower first).
        prepare: ``(module_or_callable, inputs, ctx) -> (callable, inputs)``.
        check: ``(device, env, task, precision) -> reason or None``; a reason means the
            feature cannot run here, and says why.
        numeric: the parity class it implies (``int8``, ``tf32``) or ``None`` (keeps the
            precision's class).
        exclusive: replaces the PyTorch runtime (ONNX Runtime): combines with nothing else.
        description: one line for the docs and tables.
    """

    name: str
    devices: tuple[str, ...]
    order: int
    prepare: Callable[[Any, Inputs, PrepareContext], Prepared]
    check: Callable[[DeviceSpec, Environment | None, str, str], str | None] = field(
        default=lambda device, env, task, precision: None
    )
    numeric: str | None = None
    exclusive: bool = False
    description: str = ""


_FEATURES: dict[str, Feature] = {}


def register_feature(feature: Feature) -> Feature:
    """Add a feature to the registry (tests register deliberately broken ones).

    Raises:
        ValueError: the name is taken or contains ``+``.
    """
    if feature.name in _FEATURES or "+" in feature.name or feature.name == "eager":
        raise ValueError(f"bad or duplicate feature name {feature.name!r}")
    _FEATURES[feature.name] = feature
    return feature


def unregister_feature(name: str) -> None:
    _FEATURES.pop(name, None)


def get_feature(name: str) -> Feature:
    """The feature called ``name``.

    Raises:
        ConfigError: unknown name.
    """
    try:
        return _FEATURES[name]
    except KeyError:
        raise ConfigError(
            f"unknown tuning feature {name!r}: use eager or a '+'-joined set of "
            f"{', '.join(sorted(_FEATURES))}"
        ) from None


def list_features() -> list[Feature]:
    return sorted(_FEATURES.values(), key=lambda f: (f.order, f.name))


def parse_variant(variant: str) -> tuple[Feature, ...]:
    """The features of a variant, in application order (``eager`` has none).

    Raises:
        ConfigError: an unknown feature, a repeated one, or an exclusive one combined.
    """
    if variant == "eager":
        return ()
    names = [n.strip() for n in variant.split("+") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"bad variant {variant!r}: features must be distinct, joined by '+'")
    features = sorted((get_feature(n) for n in names), key=lambda f: f.order)
    if len(features) > 1 and any(f.exclusive for f in features):
        raise ConfigError(f"variant {variant!r}: {'/'.join(f.name for f in features if f.exclusive)} combines with nothing")
    return tuple(features)


def numeric_class(precision: str, variant: str) -> str:
    """The parity class of a configuration: ``int8``, ``fp16``, ``bf16``, ``tf32`` or ``fp32``."""
    features = parse_variant(variant)
    if any(f.numeric == "int8" for f in features):
        return "int8"
    if precision in ("fp16", "bf16"):
        return precision
    if any(f.numeric == "bf16" for f in features):
        return "bf16"
    if any(f.numeric == "tf32" for f in features):
        return "tf32"
    return "fp32"


def variant_unavailable(variant: str, device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    """Why ``variant`` cannot run on ``device`` here, or ``None`` when it can."""
    for feature in parse_variant(variant):
        if device.type not in feature.devices:
            return f"{feature.name} does not apply to {device.type} (only {', '.join(feature.devices)})"
        reason = feature.check(device, env, task, precision)
        if reason:
            return reason if reason.startswith(feature.name) else f"{feature.name}: {reason}"
    return None


def prepare_variant(
    config: InferenceConfig, module: nn.Module, inputs: Inputs, device: DeviceSpec, workload: Workload
) -> Prepared:
    """Turn the cast, moved module into the callable that is timed, and its inputs.

    Raises:
        ConfigError: unknown variant.
        Exception: whatever the feature raises (the caller records it as the failure reason).
    """
    features = parse_variant(config.variant)
    ctx = PrepareContext(config, device, workload, tuple(f.name for f in features))
    fn: Any = module
    for feature in features:
        fn, inputs = feature.prepare(fn, inputs, ctx)
    return fn, inputs


# -- checks -------------------------------------------------------------------------------


def cpu_native_bf16(env: Environment | None) -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and what that judgement rests on.

    x86 needs AVX512-BF16 or AMX-BF16 (without them, oneDNN emulates bf16 and it runs
    slower than fp32); Arm needs the BF16 extension. oneDNN must agree.
    """
    flags = set(env.cpu.flags) if env is not None else set()
    isa = sorted(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    onednn = False
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is not None and torch.backends.mkldnn.is_available():
        try:
            onednn = bool(probe())
        except RuntimeError:
            onednn = False
    if isa and onednn:
        return True, f"CPU flags {', '.join(isa)}; oneDNN bf16 supported"
    if not isa:
        return False, "the CPU lacks native bf16 (no avx512_bf16, amx_bf16 or Arm bf16 flag): emulated bf16 is slower than fp32"
    return False, f"CPU flags {', '.join(isa)} but this torch's oneDNN reports no bf16 support"


def _vision_only(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if not task.startswith("image"):
        return "channels_last applies to convolutional (image) models only"
    return None


def _text_only_linear(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if not task.startswith("text"):
        return ("dynamic int8 quantises Linear layers only; this model's time is spent in "
                "convolutions, which it leaves in fp32")
    if precision != "fp32":
        return "dynamic int8 starts from the fp32 model"
    return None


def _compile_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if device.type == "cpu" and not _have_cxx():
        return "torch.compile's CPU backend needs a C++ compiler (none found on PATH)"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch.compile's GPU backend needs triton (not installed)"
    return None


def _have_cxx() -> bool:
    from shutil import which

    return any(which(c) for c in ("c++", "g++", "clang++"))


def _ort_check(provider: str) -> Callable[[DeviceSpec, Environment | None, str, str], str | None]:
    def check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
        from devicebench.workloads.onnxrt import ort_available, ort_providers

        if not ort_available():
            return "onnxruntime is not installed (pip install 'devicebench[onnx]')"
        if provider not in ort_providers():
            return f"this onnxruntime build has no {provider} (install onnxruntime-gpu)"
        if precision != "fp32":
            return "the ONNX candidates run the exported fp32 graph"
        try:
            import onnx  # noqa: F401
        except ImportError:
            return "exporting to ONNX needs the onnx package"
        return None

    return check


def _ort_int8_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    reason = _ort_check("CPUExecutionProvider")(device, env, task, precision)
    if reason:
        return reason
    return _text_only_linear(device, env, task, precision)


def _ort_static_int8_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    reason = _ort_check("CPUExecutionProvider")(device, env, task, precision)
    if reason:
        return reason
    if not task.startswith("image"):
        return ("static int8 (calibrated activations) is planned for convolutional (image) models; "
                "text models use dynamic int8 (ort-int8, int8-dynamic)")
    return None


def _openvino_check(numeric: str) -> Callable[[DeviceSpec, Environment | None, str, str], str | None]:
    def check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
        from devicebench.workloads.openvino import ov_available

        if not ov_available():
            return "openvino is not installed (pip install 'devicebench[openvino]')"
        if precision != "fp32":
            return "the OpenVINO candidates start from the exported fp32 graph"
        try:
            import onnx  # noqa: F401
        except ImportError:
            return "exporting to ONNX needs the onnx package"
        if numeric == "bf16":
            native, why = cpu_native_bf16(env)
            if not native:
                return why
        if numeric == "int8":
            return _ort_static_int8_check(device, env, task, precision)  # the QDQ model comes from onnxruntime
        return None

    return check


def _tf32_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if precision != "fp32":
        return "TF32 only changes fp32 matrix products"
    # From the capability a worker recorded: checks run in the parent, which never starts CUDA.
    capability = cuda_capability(env, device)
    if capability is not None and capability < (8, 0):
        return "TF32 needs an Ampere (compute capability 8.0) or newer GPU"
    return None


def _sdpa_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if not task.startswith("text"):
        return "SDPA attention applies to transformer (text) models only"
    return None


def _cudagraph_check(device: DeviceSpec, env: Environment | None, task: str, precision: str) -> str | None:
    if not hasattr(torch.cuda, "CUDAGraph"):
        return f"torch {torch.__version__} has no CUDA graph API"
    return None  # ROCm builds offer HIP graphs behind the same API


# -- prepare steps ------------------------------------------------------------------------


def _prep_int8_dynamic(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notices
        from torch.ao.quantization import quantize_dynamic

        quantised = quantize_dynamic(fn, {nn.Linear}, dtype=torch.qint8)
    return quantised, inputs


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _prep_channels_last(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    module = fn.to(memory_format=torch.channels_last)

    # The conversion is inside the call so that end-to-end timing pays for it; on inputs
    # already in channels_last (compute-only timing) it is a no-op.
    def run(*xs: torch.Tensor) -> Any:
        return module(*(_channels_last(x) for x in xs))

    return run, tuple(_channels_last(x) for x in inputs)


def _prep_tf32(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    # Process-wide, but this process measures this one configuration only; every other
    # configuration runs IEEE fp32 (measure_inference sets it before anything runs).
    set_fp32_math(tf32=True)
    return fn, inputs


def _prep_sdpa(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    inner = getattr(fn, "model", None)
    setter = getattr(inner, "set_attn_implementation", None)
    if setter is not None:
        setter("sdpa")
    elif inner is not None and hasattr(inner, "config"):
        inner.config._attn_implementation = "sdpa"
    else:
        raise UserError("SDPA needs a transformers model (HFEncoder)")
    return fn, inputs


def _prep_compile(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    # Lazy: the compilation happens in the first call, which is timed apart as cold start.
    mode = "reduce-overhead" if "cudagraphs" in ctx.features else None
    return torch.compile(fn, mode=mode), inputs


def _prep_cudagraphs(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    if "compile" in ctx.features:
        return fn, inputs  # torch.compile(mode="reduce-overhead") already captures graphs
    static = tuple(x.clone() for x in inputs)
    # On the measured device explicitly (the worker also made it current): a stream or a
    # graph on another GPU would capture nothing of this model's work.
    target = ctx.device.torch_device
    stream = torch.cuda.Stream(device=target)
    stream.wait_stream(torch.cuda.current_stream(target))
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):  # warm up on a side stream before capture, as the docs require
            fn(*static)
    torch.cuda.current_stream(target).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_out = fn(*static)

    def run(*xs: torch.Tensor) -> Any:
        for dst, src in zip(static, xs):
            if dst is not src:
                dst.copy_(src, non_blocking=True)
        graph.replay()
        return static_out

    return run, static


def onnx_cache_dir() -> Path:
    """Where exported ONNX files are kept (``$DEVICEBENCH_CACHE_DIR`` or the user cache folder)."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser() / "onnx"
    import platformdirs

    return platformdirs.user_cache_path("devicebench", appauthor=False) / "onnx"


def weights_fingerprint(module: nn.Module, *, sample: int = 4096) -> str:
    """A short digest of a module's parameters and buffers (names, shapes, dtypes and values).

    Each tensor contributes its name, shape, dtype, its sum in float64 and up to ``sample``
    evenly strided values, so the cost stays small for a large model (BERT-base: ~0.1 s)
    while any change of how the weights were drawn changes the digest.
    """
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            if not isinstance(tensor, torch.Tensor):
                continue
            flat = tensor.detach().reshape(-1).to("cpu")
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
            if flat.numel() == 0:
                continue
            if flat.is_floating_point() or flat.is_complex():
                digest.update(repr(float(flat.double().sum())).encode())
            step = max(1, flat.numel() // sample)
            picked = flat[::step][:sample].contiguous()
            digest.update(picked.view(torch.uint8).numpy().tobytes() if picked.dtype != torch.bool
                          else picked.to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _export_onnx(module: nn.Module, inputs: Inputs, ctx: PrepareContext, *, int8: bool) -> Path:
    """Export (or find in the cache) the model as ONNX, with a dynamic batch dimension.

    The cache key covers everything that changes the graph or its weights: model, weights
    source, seed, input shapes past the batch, torch and onnxruntime versions, and a
    fingerprint of the weights themselves (:func:`weights_fingerprint`): a builder that
    draws its random weights differently for the same seed (as a new devicebench may) must
    never be served an export of the old weights, which would fail parity for a reason that
    has nothing to do with the backend.
    """
    import onnxruntime

    cfg = ctx.config
    shapes = [list(x.shape[1:]) for x in inputs]
    key_text = repr((cfg.model, ctx.workload.weights, cfg.seed, shapes, torch.__version__,
                     onnxruntime.__version__, "int8" if int8 else "fp32", 1, weights_fingerprint(module)))
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    folder = onnx_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cfg.model}-{key}{'-int8' if int8 else ''}.onnx"
    if path.is_file():
        return path
    fp32_path = path if not int8 else folder / f"{cfg.model}-{key}-fp32src.onnx"
    host_module = module.to("cpu").float().eval()
    host_inputs = tuple(x.detach().to("cpu") for x in inputs)
    names = [f"input{i}" for i in range(len(host_inputs))]
    tmp = fp32_path.with_name(fp32_path.name + f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # The TorchScript exporter: fast and present in every torch this project supports.
            torch.onnx.export(
                host_module, host_inputs, str(tmp), dynamo=False, opset_version=17,
                input_names=names, output_names=["output"],
                dynamic_axes={n: {0: "batch"} for n in names + ["output"]},
            )
        except Exception:  # noqa: BLE001 - fall back to the dynamo exporter
            program = torch.onnx.export(host_module, host_inputs, dynamo=True,
                                        dynamic_shapes=[{0: torch.export.Dim("batch")}] * len(host_inputs))
            program.save(str(tmp))
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        qtmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        quantize_dynamic(str(tmp), str(qtmp), weight_type=QuantType.QInt8)
        tmp.unlink(missing_ok=True)
        tmp = qtmp
    os.replace(tmp, path)  # another process exporting the same file at once is harmless
    return path


#: Static int8: calibration batches drawn from the workload's own input generator, with seeds
#: other than the measured inputs' (so the parity check runs on inputs the calibration never saw).
CALIBRATION_BATCHES = 16
CALIBRATION_SEED_OFFSET = 1000


def _static_int8_onnx(fp32_path: Path, inputs: Inputs, ctx: PrepareContext) -> Path:
    """The QDQ static int8 model (``onnxruntime.quantization.quantize_static``) of an export.

    Weights int8 per output channel, activations uint8 with ranges calibrated (min-max) on
    :data:`CALIBRATION_BATCHES` batches of one from the workload's input generator (seeds
    ``seed + 1000 + i``: never the measured inputs). Cached beside the fp32 file.
    """
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    path = fp32_path.with_name(fp32_path.stem + f"-int8static-c{CALIBRATION_BATCHES}.onnx")
    if path.is_file():
        return path
    names = [f"input{i}" for i in range(len(inputs))]
    cfg = ctx.config

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(CALIBRATION_BATCHES))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self.batches, None)
            if i is None:
                return None
            example = ctx.workload.example(1, cfg.seed + CALIBRATION_SEED_OFFSET + i)
            return {n: x.detach().to("cpu").numpy() for n, x in zip(names, example)}

    source = fp32_path
    pre = fp32_path.with_name(fp32_path.name + f".{os.getpid()}.pre.onnx")
    try:  # shape inference and folding first, as onnxruntime recommends; optional
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        source = pre
    except Exception:  # noqa: BLE001 - quantise the plain export instead
        pre.unlink(missing_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            quantize_static(str(source), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            pre.unlink(missing_ok=True)
    os.replace(tmp, path)
    return path


def _prep_ort(fn: Any, inputs: Inputs, ctx: PrepareContext, *, int8: bool = False,
              static_int8: bool = False, optimization: str = "all") -> Prepared:
    from devicebench.workloads.onnxrt import OrtModule

    if not isinstance(fn, nn.Module):
        raise UserError("ort must be the only feature of a variant")
    path = _export_onnx(fn, inputs, ctx, int8=int8)
    if static_int8:
        path = _static_int8_onnx(path, inputs, ctx)
    session = OrtModule(path, device=ctx.device.torch_device, threads=ctx.config.threads, optimization=optimization)
    return session, inputs


def _prep_ort_static_int8(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    return _prep_ort(fn, inputs, ctx, static_int8=True)


def _prep_ort_extended(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    return _prep_ort(fn, inputs, ctx, optimization="extended")


def _prep_openvino(fn: Any, inputs: Inputs, ctx: PrepareContext, *, precision: str = "f32",
                   static_int8: bool = False) -> Prepared:
    from devicebench.workloads.openvino import OvModule

    if not isinstance(fn, nn.Module):
        raise UserError("openvino must be the only feature of a variant")
    path = _export_onnx(fn, inputs, ctx, int8=False)
    if static_int8:
        path = _static_int8_onnx(path, inputs, ctx)
    module = OvModule(path, shapes=[list(x.shape) for x in inputs], precision=precision, threads=ctx.config.threads)
    return module, inputs


def _prep_openvino_bf16(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    return _prep_openvino(fn, inputs, ctx, precision="bf16")


def _prep_openvino_int8(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    return _prep_openvino(fn, inputs, ctx, static_int8=True)


def _prep_ort_int8(fn: Any, inputs: Inputs, ctx: PrepareContext) -> Prepared:
    return _prep_ort(fn, inputs, ctx, int8=True)


_ACCEL = ("cuda", "mps", "xpu")
register_feature(Feature("int8-dynamic", ("cpu",), 10, _prep_int8_dynamic, _text_only_linear, numeric="int8",
                         description="torch dynamic int8 quantisation of Linear layers (weights int8, activations quantised per call)"))
register_feature(Feature("channels_last", ("cpu",) + _ACCEL, 20, _prep_channels_last, _vision_only,
                         description="NHWC memory layout for convolutions"))
register_feature(Feature("sdpa", ("cuda", "xpu", "mps"), 25, _prep_sdpa, _sdpa_check,
                         description="transformers attention through torch's scaled_dot_product_attention (flash / memory-efficient kernels)"))
register_feature(Feature("tf32", ("cuda",), 30, _prep_tf32, _tf32_check, numeric="tf32",
                         description="TensorFloat-32 matrix products and convolutions (fp32 storage, 10-bit mantissa products)"))
register_feature(Feature("ort", ("cpu", "cuda"), 40, _prep_ort, lambda d, e, t, p: _ort_check(
    "CUDAExecutionProvider" if d.type == "cuda" else "CPUExecutionProvider")(d, e, t, p), exclusive=True,
    description="ONNX Runtime session, full graph optimisation, the candidate's thread count"))
register_feature(Feature("ort-int8", ("cpu",), 41, _prep_ort_int8, _ort_int8_check, numeric="int8", exclusive=True,
                         description="ONNX Runtime with onnxruntime.quantization dynamic int8 weights"))
register_feature(Feature("ort-int8-static", ("cpu",), 42, _prep_ort_static_int8, _ort_static_int8_check,
                         numeric="int8", exclusive=True,
                         description="ONNX Runtime with static QDQ int8 (per-channel int8 weights, uint8 activations "
                                     "calibrated on the workload's own inputs)"))
register_feature(Feature("ort-extended", ("cpu",), 43, _prep_ort_extended, lambda d, e, t, p: _ort_check(
    "CPUExecutionProvider")(d, e, t, p), exclusive=True,
    description="ONNX Runtime with graph optimisation 'extended' (no NCHWc layout transformation)"))
register_feature(Feature("openvino", ("cpu",), 45, _prep_openvino, _openvino_check("fp32"), exclusive=True,
                         description="OpenVINO CPU runtime on the exported ONNX graph, fp32 (precision hint f32), latency hint"))
register_feature(Feature("openvino-bf16", ("cpu",), 46, _prep_openvino_bf16, _openvino_check("bf16"), numeric="bf16",
                         exclusive=True,
                         description="OpenVINO CPU runtime computing in bf16 (precision hint bf16; native bf16 CPUs only)"))
register_feature(Feature("openvino-int8", ("cpu",), 47, _prep_openvino_int8, _openvino_check("int8"), numeric="int8",
                         exclusive=True,
                         description="OpenVINO CPU runtime on the static QDQ int8 model (calibrated as ort-int8-static)"))
register_feature(Feature("compile", ("cpu",) + _ACCEL, 50, _prep_compile, _compile_check,
                         description="torch.compile (inductor); compile time counts as cold start"))
register_feature(Feature("cudagraphs", ("cuda",), 60, _prep_cudagraphs, _cudagraph_check,
                         description="CUDA graph capture and replay (static input buffers)"))
