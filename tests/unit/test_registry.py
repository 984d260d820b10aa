"""The model registry: names, tiny variants, inputs, weights loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from devicebench.errors import UnknownModelError, UserError
from devicebench.workloads import create_model, get_model_entry, list_models, register_model
from devicebench.workloads.registry import ImageInput
from devicebench.workloads.text import tokenize_batch, tokenizer_name

FULL = ["resnet50", "bert-base", "tinycnn"]


def test_seed_models_and_their_tiny_variants_are_registered() -> None:
    names = {e.name for e in list_models()}
    for name in FULL:
        assert name in names and f"{name}-tiny" in names
        assert get_model_entry(f"{name}-tiny").tiny
    assert all(not e.tiny for e in list_models(include_tiny=False))


def test_resnet50_is_the_real_architecture() -> None:
    wl = create_model("resnet50")
    assert wl.parameters == 25_557_032  # torchvision's ResNet-50
    assert wl.input.shapes(2) == [[2, 3, 224, 224]]
    assert wl.weights == "random"


@pytest.mark.parametrize("name", ["resnet50-tiny", "tinycnn-tiny", "bert-base-tiny"])
def test_tiny_models_run_on_their_example(name: str) -> None:
    wl = create_model(name)
    example = wl.example(3)
    assert [list(t.shape) for t in example] == wl.input.shapes(3)
    with torch.inference_mode():
        out = wl.module(*example)
    assert out.shape[0] == 3
    assert torch.isfinite(out).all()


def test_bert_input_is_a_real_tokenized_batch() -> None:
    ids, mask, types = tokenize_batch(4, 128)
    assert ids.shape == (4, 128) and ids.dtype == torch.long
    assert (ids[:, 0] == 101).all() and (ids[:, -1] == 102).all()  # [CLS] ... [SEP]
    assert mask.all() and not types.any()
    assert len(set(ids[:, 1].tolist())) > 1  # rows start with different sentences
    if "WordPiece" in tokenizer_name():
        # "processors" -> WordPiece ids of the real uncased BERT vocabulary
        assert ids[0, 1].item() == 18017


def test_unknown_model_names_the_close_ones() -> None:
    with pytest.raises(UnknownModelError, match="resnet50"):
        get_model_entry("resnet")


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError):
        register_model("resnet50", input=ImageInput(), task="x", description="x")(lambda: nn.Identity())


def test_local_weights_are_loaded_and_named(tmp_path: Path) -> None:
    source = create_model("tinycnn-tiny").module
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(0.5)
    path = tmp_path / "w.pt"
    torch.save({"state_dict": source.state_dict()}, path)
    wl = create_model("tinycnn-tiny", weights=path)
    assert wl.weights.startswith("file:w.pt sha256:")
    assert all(torch.all(p == 0.5) for p in wl.module.parameters())


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(create_model("resnet50-tiny").module.state_dict(), path)
    with pytest.raises(UserError, match="do not fit tinycnn-tiny"):
        create_model("tinycnn-tiny", weights=path)


def test_a_pickled_object_is_not_loaded_as_weights(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(create_model("tinycnn-tiny").module, path)  # a whole pickled module
    with pytest.raises(UserError, match="safely"):
        create_model("tinycnn-tiny", weights=path)
    with pytest.raises(UserError, match="not found"):
        create_model("tinycnn-tiny", weights=tmp_path / "missing.pt")
