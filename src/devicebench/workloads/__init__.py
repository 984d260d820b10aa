"""Stage 2: models and their inputs: the registry, built-in models, weight loading."""

from devicebench.workloads.registry import (
    ImageInput,
    InputSpec,
    ModelEntry,
    TokenInput,
    Workload,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

# Importing the modules registers their models.
from devicebench.workloads import nlp as _nlp  # noqa: E402,F401
from devicebench.workloads import vision as _vision  # noqa: E402,F401

__all__ = [
    "ImageInput",
    "InputSpec",
    "ModelEntry",
    "TokenInput",
    "Workload",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
]
