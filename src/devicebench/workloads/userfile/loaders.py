"""One registered loader per model format, in the order the docs list them.

Each is a :class:`~devicebench.workloads.userfile.loader_registry.FormatLoader`: ``resolve``
runs in the parent (safety, inputs, the file to hash), ``load`` in each worker. A new format
is one more decorated class here, plus its detection rule in
:func:`~devicebench.workloads.userfile.detect.detect_format`.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from devicebench.errors import DeviceUnavailableError, InputShapeError, ModelFileError
from devicebench.workloads.registry import get_model_entry
from devicebench.workloads.userfile.detect import (
    WEIGHT_FILES,
    check_safetensors_header,
    first_line,
    pt2_pickled_members,
    torch_load_restricted,
    unwrap_checkpoint,
)
from devicebench.workloads.userfile.inputs import (
    declared_export,
    declared_onnx,
    declared_plans,
    hf_inputs,
    plans_from_user,
)
from devicebench.workloads.userfile.loader_registry import (
    FormatLoader,
    Loaded,
    Resolved,
    register_loader,
    registered_formats,
)
from devicebench.workloads.userfile.spec import InputPlan, UserModelSpec

__all__ = ["FORMATS", "HFModule"]


@register_loader("torchscript")
class TorchScriptLoader(FormatLoader):
    """``torch.jit.save`` archive: TorchScript's own loader; inputs from the user."""

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - TorchScript raises RuntimeError and others
            raise ModelFileError(f"cannot load TorchScript {path.name}: {first_line(exc)}") from None
        return Loaded(module)


@register_loader("export")
class ExportLoader(FormatLoader):
    """``torch.export.save`` program (``.pt2``); refused with pickled members unless trusted."""

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        risky = pt2_pickled_members(path)
        if risky and not spec.trust_pickle:
            raise ModelFileError(
                f"{path.name} is a torch.export program with pickled members ({', '.join(risky[:3])}); "
                "torch.export.load would unpickle them, which can run any code, so devicebench did not. "
                "If you trust this file, add --trust-pickle"
            )
        try:
            declared = declared_export(path)
        except (ModelFileError, InputShapeError):
            raise
        except Exception as exc:  # noqa: BLE001 - torch.export.load raises many types
            raise ModelFileError(f"cannot load torch.export program {path.name}: {first_line(exc)}") from None
        plans, fixed = declared_plans(spec, declared, "exported program")
        return Resolved(plans, path, fixed_batch=fixed)

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        if pt2_pickled_members(path) and not spec.trust_pickle:
            raise ModelFileError(f"{path.name} has pickled members: refused without --trust-pickle")
        try:
            module = torch.export.load(str(path)).module()
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(f"cannot load torch.export program {path.name}: {first_line(exc)}") from None
        # An exported graph fixed its train/eval behaviour when it was exported, and its
        # module refuses eval(); the measurement calls eval(), which is a no-op here.
        module.eval = types.MethodType(lambda self, *a, **k: self, module)  # type: ignore[method-assign]
        return Loaded(module)


@register_loader("onnx")
class OnnxLoader(FormatLoader):
    """ONNX protobuf, run with ONNX Runtime (:class:`~devicebench.workloads.onnxrt.OrtModule`)."""

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        plans, fixed = declared_plans(spec, declared_onnx(path), "ONNX model")
        return Resolved(plans, path, fixed_batch=fixed)

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        from devicebench.workloads.onnxrt import OrtModule, ort_available, ort_providers

        if not ort_available():
            raise ModelFileError("running ONNX models needs onnxruntime: pip install 'devicebench[onnx]'")
        providers = ort_providers()
        kind = device.partition(":")[0]
        if kind != "cpu" and not (kind == "cuda" and "CUDAExecutionProvider" in providers):
            raise DeviceUnavailableError(
                f"ONNX Runtime here cannot run on {device} (providers: {', '.join(providers)}): "
                + ("install onnxruntime-gpu for the CUDA provider" if kind == "cuda" else "ONNX runs on cpu or cuda only")
            )
        return Loaded(OrtModule(path, device=device, threads=threads), parameters=_onnx_parameters(path))


@register_loader("huggingface")
class HuggingFaceLoader(FormatLoader):
    """Folder with ``config.json`` and weights: transformers, local files only, no remote code."""

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        plans, tokenizer = hf_inputs(path, spec)
        weights_file = next(path / f for f in WEIGHT_FILES if (path / f).is_file())
        if weights_file.suffix == ".safetensors":
            check_safetensors_header(weights_file)
        return Resolved(plans, weights_file, tokenizer=tokenizer)

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        try:
            from transformers import AutoModel
        except ImportError:
            raise ModelFileError("Hugging Face folders need transformers: pip install 'devicebench[nlp]'") from None
        try:
            hf = AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - transformers raises many types
            raise ModelFileError(f"transformers cannot load {path}: {first_line(exc)}") from None
        return Loaded(HFModule(hf, [p.name for p in spec.inputs]))


class _WeightsOnlyLoader(FormatLoader):
    """Weights without an architecture: loaded into the registered model ``spec.arch``."""

    def read_state(self, path: Path) -> dict[str, torch.Tensor]:
        """The file's tensors by name, read safely.

        Raises:
            ModelFileError: the file cannot be read (safely).
        """
        raise NotImplementedError

    def read_shapes(self, path: Path) -> dict[str, tuple[int, ...]]:
        """The file's tensor names and shapes (read as safely as :meth:`read_state`)."""
        return {k: tuple(v.shape) for k, v in self.read_state(path).items()}

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        if not spec.arch:
            raise ModelFileError(
                f"{path.name} holds weights only ({self.name}), no architecture: add --arch NAME with a "
                "registered model (see `devicebench models`), or save the whole model with "
                "torch.export.save / torch.jit.save / ONNX"
            )
        entry = get_model_entry(spec.arch)
        # Names and shapes against the architecture's, here in the parent: a wrong --arch is
        # one line before any worker starts (devicebench.workloads.weights).
        from devicebench.workloads.weights import check_shapes_fit

        check_shapes_fit(self.read_shapes(path), spec.arch, path.name)
        declared = entry.input.shapes(1)
        given = spec.input_shapes or ()
        if given and (len(given) != len(declared) or any(len(g) != len(d) for g, d in zip(given, declared))):
            want = "; ".join("[N, " + ", ".join(str(x) for x in d[1:]) + "]" for d in declared)
            got = "; ".join("[" + ", ".join(str(x) for x in g) + "]" for g in given)
            raise InputShapeError(f"--arch {spec.arch} takes {len(declared)} input(s) shaped {want}; "
                                  f"--input-shape gave {got}")
        if spec.input_shapes or spec.input_files:
            plans = plans_from_user(spec, self.name)
        else:
            plans = [InputPlan(f"input{i}", tuple(s), "int64" if len(s) == 2 else "float32", "registry", entry.input.source)
                     for i, s in enumerate(entry.input.shapes(1))]
        return Resolved(plans, path)

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        entry = get_model_entry(spec.arch or "")
        module = entry.builder()
        state = self.read_state(path)
        if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
            state = {k.removeprefix("module."): v for k, v in state.items()}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).strip().splitlines()]
            raise ModelFileError(f"weights {path.name} do not fit --arch {spec.arch}: {lines[1] if len(lines) > 1 else lines[0]}") from None
        user_inputs = spec.input_shapes or spec.input_files
        return Loaded(module, task=f"{entry.task} (weights from {self.name})", input=None if user_inputs else entry.input)


@register_loader("safetensors")
class SafetensorsLoader(_WeightsOnlyLoader):
    """safetensors weights, read with ``safetensors.torch.load_file``; needs ``arch``."""

    def read_shapes(self, path: Path) -> dict[str, tuple[int, ...]]:
        from devicebench.workloads.weights import file_shapes

        return file_shapes(path, safetensors=True)  # the header only

    def read_state(self, path: Path) -> dict[str, torch.Tensor]:
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ModelFileError("reading safetensors needs the safetensors package: pip install safetensors") from None
        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(f"cannot read {path.name}: {first_line(exc)}") from None


@register_loader("state-dict")
class StateDictLoader(_WeightsOnlyLoader):
    """``torch.save`` of a dict of tensors, read with ``torch.load(weights_only=True)``; needs ``arch``."""

    def read_state(self, path: Path) -> dict[str, torch.Tensor]:
        try:
            obj = torch_load_restricted(path)
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(f"cannot read {path.name} safely: {first_line(exc)}") from None
        state: dict[str, torch.Tensor] = unwrap_checkpoint(obj)
        return state


@register_loader("pickle")
class PickleLoader(FormatLoader):
    """``torch.save`` of a whole module: unpickled in the worker, only with ``trust_pickle``."""

    def resolve(self, path: Path, spec: UserModelSpec) -> Resolved:
        return replace(super().resolve(path, spec), note="whole pickled module, loaded with --trust-pickle")

    def load(self, path: Path, spec: UserModelSpec, *, device: str, threads: int | None) -> Loaded:
        if not spec.trust_pickle:
            raise ModelFileError(f"{path.name} is a pickle: refused without --trust-pickle")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError, ImportError) as exc:
            raise ModelFileError(
                f"cannot unpickle {path.name}: {first_line(exc)} (the model's class must be importable "
                "by name, e.g. from an installed package: save it with torch.export.save instead)"
            ) from None
        if not isinstance(obj, nn.Module):
            raise ModelFileError(f"{path.name} holds a {type(obj).__name__}, not an nn.Module")
        return Loaded(obj)


#: Formats the loaders above recognise, in the order the docs list them.
FORMATS: tuple[str, ...] = registered_formats()


class HFModule(nn.Module):
    """``module(*tensors) -> first output tensor`` around a transformers model."""

    def __init__(self, model: nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.input_names, inputs)))
        return out[0] if not isinstance(out, torch.Tensor) else out


def _onnx_parameters(path: Path) -> int:
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401

        proto = onnx.load_model_from_string(path.read_bytes())
    except Exception:  # noqa: BLE001 - a count is best effort
        return 0
    total = 0
    for init in proto.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n
    return total
