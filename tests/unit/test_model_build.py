"""Building the registered models without the random draw their own initialisation throws
away (issue 14, point 2: the model build was a large part of each configuration's overhead)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from devicebench.workloads import nets
from devicebench.workloads.registry import create_model

MODELS = ["resnet50-tiny", "bert-base-tiny"]


def _poison(self: nn.Module) -> None:
    """Stands in for the skipped default draw: a parameter the model's own initialisation
    does not overwrite stays NaN and is caught below."""
    with torch.no_grad():
        for p in self.parameters(recurse=False):
            p.fill_(math.nan)


@pytest.mark.parametrize("name", MODELS)
def test_every_skipped_parameter_is_drawn_by_the_model_itself(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchvision" if name.startswith("resnet") else "transformers")
    monkeypatch.setattr(nets, "_skip_reset", _poison)
    torch.manual_seed(0)
    module = create_model(name).module
    left = [k for k, v in module.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    assert left == []


@pytest.mark.parametrize("name", MODELS)
def test_weights_are_still_a_function_of_the_seed(name: str) -> None:
    pytest.importorskip("torchvision" if name.startswith("resnet") else "transformers")
    states = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        states.append(create_model(name).module.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_the_default_initialisation_is_back_afterwards() -> None:
    with nets.without_default_init(nn.Linear, nn.modules.conv._ConvNd):
        assert nn.Linear.reset_parameters is nets._skip_reset
    assert "reset_parameters" not in nn.Conv2d.__dict__ and "reset_parameters" in nn.modules.conv._ConvNd.__dict__
    assert nn.Linear.reset_parameters is not nets._skip_reset
    torch.manual_seed(0)
    layer = nn.Linear(64, 64)
    top = float(layer.weight.detach().abs().max())
    assert 0 < top <= 1 / 8  # drawn by torch (Kaiming uniform bound 1/sqrt(64))


def test_a_failing_build_restores_the_default_initialisation() -> None:
    with pytest.raises(RuntimeError), nets.without_default_init(nn.Embedding):
        raise RuntimeError("builder failed")
    assert nn.Embedding.reset_parameters is not nets._skip_reset
