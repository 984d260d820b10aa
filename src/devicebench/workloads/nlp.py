"""Text models: BERT-base (seed 000), built from its configuration with random weights.

The transformers model returns a ``ModelOutput``; it is wrapped so that every registered
model is a plain ``module(*tensors) -> tensor`` (the last hidden state), which keeps the
timing, parity and export code free of per-library cases. The wrapper lives in :mod:`.nets`
(it needs torch); this module only registers the models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devicebench.workloads.registry import TokenInput, register_model

if TYPE_CHECKING:
    from torch import nn

    from devicebench.workloads.nets import HFEncoder, bert_from_config

__all__ = ["HFEncoder", "bert_from_config"]


@register_model(
    "bert-base",
    input=TokenInput(seq_len=128),
    task="text-embedding",
    description="BERT-base encoder (12 layers, hidden 768, 110 M parameters), sequence 128",
    default_batch_sizes=(1, 8, 32),
    preload=("transformers", "transformers.models.bert.modeling_bert"),
)
def bert_base() -> nn.Module:
    from devicebench.workloads.nets import bert_from_config

    return bert_from_config()


@register_model(
    "bert-base-tiny",
    input=TokenInput(seq_len=32),
    task="text-embedding",
    description="BERT architecture with 2 layers, hidden 32, 2 heads, sequence 32",
    tiny=True,
    default_batch_sizes=(1, 4),
    preload=("transformers", "transformers.models.bert.modeling_bert"),
)
def bert_base_tiny() -> nn.Module:
    from devicebench.workloads.nets import bert_from_config

    return bert_from_config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )


def __getattr__(name: str) -> object:
    # HFEncoder and bert_from_config live in .nets (they need torch); still importable here.
    if name in ("HFEncoder", "bert_from_config"):
        from devicebench.workloads import nets

        return getattr(nets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
