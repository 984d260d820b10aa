"""Your own model, from a file or a folder: recognised by its content, loaded safely.

Formats (recognised from magic bytes, zip members and folder files, never from the name
alone):

========================  ===========================================================
``torchscript``           ``torch.jit.save`` archive (zip with ``code/`` and ``constants.pkl``)
``export``                ``torch.export.save`` program (``.pt2``: zip with ``models/*.json``)
``onnx``                  ONNX protobuf, run with onnxruntime (:class:`OrtModule`)
``huggingface``           folder with ``config.json`` and ``model.safetensors`` /
                          ``pytorch_model.bin`` (transformers, local files only)
``safetensors``           weights only: needs ``arch`` (a registered architecture)
``state-dict``            ``torch.save`` of a dict of tensors: needs ``arch``
``pickle``                ``torch.save`` of a whole module: only with ``trust_pickle``
========================  ===========================================================

Safety: a pickle can run any code when it is loaded. Nothing here unpickles a file with the
unrestricted unpickler unless the user said ``trust_pickle``: ``torch.save`` files are first
read with ``torch.load(weights_only=True)`` (a restricted unpickler that builds tensors and
containers only), and ``.pt2`` archives are checked for pickled members before
``torch.export.load`` (which would fall back to full unpickling for them).

The parent process resolves a file once (:func:`resolve_user_model`: format, inputs, hash),
so that bad input fails fast with one line; each worker then loads it
(:func:`load_user_model`).

Modules: :mod:`.spec` (the spec and its parsers), :mod:`.detect` (formats from content, the
pickle checks), :mod:`.inputs` (input planning), :mod:`.tensors` (input tensors),
:mod:`.loader_registry` (:func:`register_loader`), :mod:`.loaders` (one loader per format),
:mod:`.resolve` (:func:`resolve_user_model`, :func:`load_user_model`). A new format is one
decorated :class:`FormatLoader` subclass in :mod:`.loaders` plus its rule in
:func:`detect_format` (see docs/own-models.md, "Adding a format").
"""

from devicebench.workloads.userfile.detect import detect_format
from devicebench.workloads.userfile.inputs import check_batch_sizes
from devicebench.workloads.userfile.loader_registry import (
    FormatLoader,
    Loaded,
    Resolved,
    get_loader,
    register_loader,
    registered_formats,
)
from devicebench.workloads.userfile.loaders import FORMATS, HFModule
from devicebench.workloads.userfile.resolve import load_user_model, resolve_user_model
from devicebench.workloads.userfile.spec import (
    INPUT_DTYPES,
    InputPlan,
    UserModelSpec,
    looks_like_path,
    parse_shape,
)
from devicebench.workloads.userfile.tensors import PlannedInput, load_tensor_file

__all__ = [
    "FORMATS",
    "INPUT_DTYPES",
    "FormatLoader",
    "HFModule",
    "InputPlan",
    "Loaded",
    "PlannedInput",
    "Resolved",
    "UserModelSpec",
    "check_batch_sizes",
    "detect_format",
    "get_loader",
    "load_tensor_file",
    "load_user_model",
    "looks_like_path",
    "parse_shape",
    "register_loader",
    "registered_formats",
    "resolve_user_model",
]
