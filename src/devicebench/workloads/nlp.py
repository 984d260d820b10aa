"""Text models: BERT-base (seed 000), built from its configuration with random weights.

The transformers model returns a ``ModelOutput``; it is wrapped so that every registered
model is a plain ``module(*tensors) -> tensor`` (the last hidden state), which keeps the
timing, parity and export code free of per-library cases.
"""

from __future__ import annotations

import torch
from torch import nn

from devicebench.errors import UserError
from devicebench.workloads.registry import TokenInput, register_model

__all__ = ["HFEncoder", "bert_from_config"]


class HFEncoder(nn.Module):
    """``(input_ids, attention_mask, token_type_ids) -> last_hidden_state`` around an HF encoder."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return out.last_hidden_state


def bert_from_config(**config: int) -> nn.Module:
    """A transformers ``BertModel`` with random weights from a ``BertConfig``.

    Raises:
        UserError: transformers is not installed.
    """
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        raise UserError(
            "BERT models need the transformers package: pip install 'devicebench[nlp]'"
        ) from None
    return HFEncoder(BertModel(BertConfig(**config), add_pooling_layer=False))


@register_model(
    "bert-base",
    input=TokenInput(seq_len=128),
    task="text-embedding",
    description="BERT-base encoder (12 layers, hidden 768, 110 M parameters), sequence 128",
    default_batch_sizes=(1, 8, 32),
)
def bert_base() -> nn.Module:
    return bert_from_config()


@register_model(
    "bert-base-tiny",
    input=TokenInput(seq_len=32),
    task="text-embedding",
    description="BERT architecture with 2 layers, hidden 32, 2 heads, sequence 32",
    tiny=True,
    default_batch_sizes=(1, 4),
)
def bert_base_tiny() -> nn.Module:
    return bert_from_config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
