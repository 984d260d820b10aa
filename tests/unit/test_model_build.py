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


# -- random normal weights drawn on every usable core (nets.parallel_normal_draws) ------------------

BIG = nets.PARALLEL_DRAW_MIN * 2


def _draw(seed: int, workers: int, n: int = BIG, std: float = 0.02) -> torch.Tensor:
    torch.manual_seed(seed)
    with nets.parallel_normal_draws(workers=workers):
        layer = nn.Linear(n // 512, 512, bias=False)  # weight: 512 x n/512
        nn.init.normal_(layer.weight, mean=0.0, std=std)  # as transformers and torchvision draw
    return layer.weight.detach().clone()


def test_a_large_normal_draw_is_spread_over_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    drawn_on: set[int] = set()
    torch_normal = torch.Tensor.normal_

    def noting(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        drawn_on.add(threading.get_ident())
        return torch_normal(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "normal_", noting, raising=False)
    _draw(0, workers=2)
    assert len(drawn_on) == 2  # before: one thread drew it all


def test_parallel_draws_are_a_function_of_the_seed_not_of_the_cores() -> None:
    one, two, three = _draw(0, 1), _draw(0, 2), _draw(0, 3)
    assert torch.equal(one, two) and torch.equal(one, three)
    assert not torch.equal(one, _draw(1, 2))


def test_parallel_draws_keep_the_distribution() -> None:
    values = _draw(0, 2, n=nets.PARALLEL_DRAW_MIN * 8, std=0.02).flatten().double()
    n = values.numel()
    assert abs(float(values.mean())) < 5 * 0.02 / n**0.5
    assert abs(float(values.std()) / 0.02 - 1) < 0.01
    # a normal's kurtosis is 3; each piece comes from its own generator, none a copy of another
    z = (values - values.mean()) / values.std()
    assert abs(float((z**4).mean()) - 3) < 0.05
    pieces = values.view(nets.DRAW_PIECES, -1)
    corr = torch.corrcoef(pieces[:2])[0, 1]
    assert abs(float(corr)) < 5 / pieces.shape[1] ** 0.5


def test_other_draws_are_torchs_own_and_normal_is_back_afterwards() -> None:
    small = torch.empty(nets.PARALLEL_DRAW_MIN - 1)
    gen = torch.Generator().manual_seed(3)
    with nets.parallel_normal_draws(workers=2):
        torch.manual_seed(0)
        small.normal_(0.0, 1.0)
        big_own_generator = torch.empty(BIG).normal_(0.0, 1.0, generator=gen)
    torch.manual_seed(0)
    assert torch.equal(small, torch.empty(nets.PARALLEL_DRAW_MIN - 1).normal_(0.0, 1.0))
    assert torch.equal(big_own_generator, torch.empty(BIG).normal_(0.0, 1.0, generator=torch.Generator().manual_seed(3)))
    assert "normal_" not in torch.Tensor.__dict__
    with pytest.raises(RuntimeError), nets.parallel_normal_draws(workers=2):
        raise RuntimeError("builder failed")
    assert "normal_" not in torch.Tensor.__dict__
