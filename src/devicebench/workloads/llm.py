"""Language models that generate text: registered shapes and the user's own causal-LM folder.

Registered entries are common small LLM *shapes* built offline from their published
configurations with random weights (nothing is downloaded): the hyperparameters below are
copied from each model's public ``config.json``. Random weights time exactly like trained
ones (same matrices, same cache), but the tokens they produce mean nothing; every record says
``weights: random``.

A user's Hugging Face folder is read with transformers' ``AutoModelForCausalLM``, local files
only, never with remote code, and from safetensors only (a ``pytorch_model.bin`` is a pickle:
refused). The folder's format is recognised by the same rules as ``devicebench infer``'s
(:func:`devicebench.workloads.userfile.detect_format`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicebench.errors import ModelFileError, UnknownModelError, UserError

__all__ = [
    "LlmEntry",
    "LlmShape",
    "LlmWorkload",
    "build_llm",
    "folder_config",
    "get_llm_entry",
    "list_llms",
    "llm_known",
    "register_llm",
    "resolve_llm",
]


@dataclass(frozen=True)
class LlmShape:
    """What the measurement needs to know of a causal LM's shape (from its config).

    Attributes:
        family: ``model_type`` (``qwen2``, ``llama``...).
        vocab_size, hidden_size, layers, heads, kv_heads, head_dim: the transformer's shape.
        max_context: ``max_position_embeddings``: the longest prompt + generation allowed.
        tied_embeddings: the output head shares the input embedding matrix.
    """

    family: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    max_context: int
    tied_embeddings: bool = False

    def kv_bytes_per_token(self, element_bytes: int) -> int:
        """Bytes of K and V cached per token of context, all layers, one sequence."""
        return 2 * self.layers * self.kv_heads * self.head_dim * element_bytes

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_hf_config(cls, config: Any) -> LlmShape:
        heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(
            family=str(config.model_type),
            vocab_size=int(config.vocab_size),
            hidden_size=int(config.hidden_size),
            layers=int(config.num_hidden_layers),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(head_dim),
            max_context=int(getattr(config, "max_position_embeddings", 0) or 0),
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        )


@dataclass(frozen=True)
class LlmEntry:
    """A registered LLM shape: its transformers config class and the published values."""

    name: str
    config_class: str  # "Qwen2Config", "LlamaConfig"
    config: dict[str, Any]
    description: str
    tiny: bool = False

    def hf_config(self) -> Any:
        import transformers

        return getattr(transformers, self.config_class)(**self.config)

    @property
    def max_context(self) -> int:
        return int(self.config["max_position_embeddings"])


_LLMS: dict[str, LlmEntry] = {}


def register_llm(name: str, *, config_class: str, description: str, tiny: bool = False,
                 **config: Any) -> LlmEntry:
    """Register an LLM shape by its transformers config (``config_class`` and its values).

    Raises:
        ValueError: the name is registered twice.
    """
    if name in _LLMS:
        raise ValueError(f"LLM {name!r} is registered twice")
    entry = LlmEntry(name, config_class, dict(config), description, tiny)
    _LLMS[name] = entry
    return entry


def list_llms(include_tiny: bool = True) -> list[LlmEntry]:
    """The registered LLM shapes, sorted by name."""
    return sorted((e for e in _LLMS.values() if include_tiny or not e.tiny), key=lambda e: e.name)


def llm_known(name: str) -> bool:
    return name in _LLMS


def get_llm_entry(name: str) -> LlmEntry:
    """The entry for ``name``.

    Raises:
        UnknownModelError: no LLM of that name (the message lists them).
    """
    try:
        return _LLMS[name]
    except KeyError:
        raise UnknownModelError(name, list(_LLMS)) from None


# -- published shapes ---------------------------------------------------------------------
# Qwen/Qwen2.5-0.5B config.json (494 M parameters, tied embeddings, 2 KV heads).
register_llm(
    "qwen2.5-0.5b", config_class="Qwen2Config",
    description="Qwen2.5-0.5B shape (24 layers, hidden 896, 14 heads / 2 KV heads, vocab 151936, 494 M parameters)",
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=True,
    use_sliding_window=False, sliding_window=32768, max_window_layers=21,
    bos_token_id=151643, eos_token_id=151643,
)
# meta-llama/Llama-3.2-1B config.json (1.24 B parameters, tied embeddings, llama3 RoPE scaling).
register_llm(
    "llama-3.2-1b", config_class="LlamaConfig",
    description="Llama-3.2-1B shape (16 layers, hidden 2048, 32 heads / 8 KV heads, vocab 128256, 1.24 B parameters)",
    vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
    rope_theta=500000.0, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=True,
    rope_scaling={"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                  "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    attention_bias=False, mlp_bias=False, bos_token_id=128000, eos_token_id=128001,
)
# Tiny variants: the same architectures, small enough for tests (context 256 tokens).
register_llm(
    "qwen2.5-0.5b-tiny", config_class="Qwen2Config", tiny=True,
    description="Qwen2.5 architecture with 2 layers, hidden 64, 4 heads / 2 KV heads, vocab 512, context 256",
    vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
    bos_token_id=1, eos_token_id=2,
)
register_llm(
    "llama-3.2-1b-tiny", config_class="LlamaConfig", tiny=True,
    description="Llama-3.2 architecture with 2 layers, hidden 64, 4 heads / 2 KV heads, vocab 512, context 256",
    vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
    rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
    bos_token_id=1, eos_token_id=2,
)


# -- the user's folder ---------------------------------------------------------------------

#: Weights a causal-LM folder may hold: safetensors only (a .bin is a pickle).
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
#: Architectures whose name ends like this are causal LMs.
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def folder_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of a causal-LM folder, checked: a Hugging Face folder by devicebench's
    rules, no remote code, safetensors weights, a causal-LM architecture.

    Raises:
        ModelFileError: not a folder, not a Hugging Face folder, no safetensors weights, code
            of its own (``auto_map``), or not a causal LM.
    """
    from devicebench.workloads.userfile import detect_format

    if not path.exists():
        raise ModelFileError(f"no such model or folder: {path} (registered LLMs: {', '.join(e.name for e in list_llms())})")
    if not path.is_dir():
        raise ModelFileError(f"{path} is a file; `devicebench llm` takes a registered LLM name or a Hugging Face causal-LM folder")
    fmt = detect_format(path)  # ModelFileError for a folder without config.json or weights
    if fmt != "huggingface":
        raise ModelFileError(f"{path} is not a Hugging Face model folder")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path / 'config.json'} is not readable JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelFileError(f"{path / 'config.json'} has no model_type: not a transformers model config")
    if config.get("auto_map"):
        raise ModelFileError(f"{path} needs its own Python code (auto_map in config.json); devicebench never runs "
                             "code from a model folder (trust_remote_code): use a standard transformers architecture")
    if not any((path / f).is_file() for f in SAFETENSORS_FILES):
        raise ModelFileError(f"{path} has no model.safetensors: `devicebench llm` reads safetensors weights only "
                             "(a pytorch_model.bin is a pickle); convert it with save_pretrained(safe_serialization=True)")
    archs = config.get("architectures")
    if isinstance(archs, list) and archs:
        if not any(isinstance(a, str) and a.endswith(_CAUSAL_SUFFIXES) for a in archs):
            raise ModelFileError(f"{path} is not a causal language model (architectures: {', '.join(map(str, archs))}); "
                                 "`devicebench llm` needs a *ForCausalLM model; use `devicebench infer` for others")
    else:
        try:
            from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        except ImportError:
            raise ModelFileError("LLM folders need transformers: pip install 'devicebench[nlp]'") from None
        if config["model_type"] not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise ModelFileError(f"{path} is not a causal language model (model_type {config['model_type']!r})")
    return config


@dataclass(frozen=True)
class ResolvedLlm:
    """A model to measure, resolved in the parent: a registered name or a checked folder.

    Attributes:
        name: the registered name, or the folder's name.
        path: the folder (``None`` for a registered shape).
        max_context: the longest prompt + generation the model takes.
        weights: ``random`` or ``file:<folder> sha256:<weights' hash prefix>``.
    """

    name: str
    path: str | None
    max_context: int
    weights: str = "random"


def resolve_llm(model: str | Path) -> ResolvedLlm:
    """A registered LLM name or a causal-LM folder, checked before any worker starts.

    Raises:
        UnknownModelError: a name that is neither registered nor an existing path.
        ModelFileError: a folder that is not a safetensors causal LM (see :func:`folder_config`).
    """
    text = str(model)
    if llm_known(text):
        entry = get_llm_entry(text)
        return ResolvedLlm(entry.name, None, entry.max_context)
    from devicebench.workloads.userfile import looks_like_path

    path = Path(text).expanduser()
    if not path.exists() and not looks_like_path(text):
        raise UnknownModelError(text, list(_LLMS))
    config = folder_config(path)
    from devicebench.workloads.files import file_sha256

    weights_file = next(path / f for f in SAFETENSORS_FILES if (path / f).is_file())
    digest = file_sha256(weights_file)[:12]
    context = int(config.get("max_position_embeddings") or config.get("n_positions") or 0)
    return ResolvedLlm(path.name or str(path), str(path.resolve()), context, f"file:{path.name} sha256:{digest}")


@dataclass
class LlmWorkload:
    """A built causal LM on the CPU, ready to move and measure."""

    name: str
    module: Any  # a transformers PreTrainedModel (…ForCausalLM)
    shape: LlmShape
    weights: str
    parameters: int
    source: str = "registry"  # or "folder"
    model_file: dict[str, Any] | None = field(default=None)


def build_llm(resolved: ResolvedLlm, *, attn: str = "sdpa", seed: int = 0,
              from_config: Callable[..., Any] | None = None) -> LlmWorkload:
    """Build the model on the CPU in fp32: random weights from the seed for a registered shape,
    the folder's safetensors for a user's model.

    Args:
        resolved: what :func:`resolve_llm` returned.
        attn: transformers' ``attn_implementation`` (``eager`` or ``sdpa``).
        seed: seeds the random weights.

    Raises:
        UserError: transformers is missing.
        ModelFileError: transformers cannot load the folder.
    """
    import torch

    try:
        from transformers import AutoModelForCausalLM
    except ImportError:
        raise UserError("LLMs need the transformers package: pip install 'devicebench[nlp]'") from None
    if resolved.path is None:
        entry = get_llm_entry(resolved.name)
        torch.manual_seed(seed)
        module = (from_config or AutoModelForCausalLM.from_config)(
            entry.hf_config(), attn_implementation=attn, dtype=torch.float32)
        source, model_file = "registry", None
    else:
        try:
            module = AutoModelForCausalLM.from_pretrained(
                resolved.path, local_files_only=True, trust_remote_code=False, use_safetensors=True,
                attn_implementation=attn, dtype=torch.float32)
        except Exception as exc:  # noqa: BLE001 - transformers raises many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"transformers cannot load {resolved.path} as a causal LM: {first}") from None
        source = "folder"
        model_file = {"path": resolved.path, "format": "huggingface-causal-lm", "weights": resolved.weights}
    module.eval()
    shape = LlmShape.from_hf_config(module.config)
    return LlmWorkload(name=resolved.name, module=module, shape=shape, weights=resolved.weights,
                       parameters=sum(p.numel() for p in module.parameters()), source=source,
                       model_file=model_file)
