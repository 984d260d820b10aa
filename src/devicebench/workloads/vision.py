"""Image models: ResNet-50 (seed 000) and the TinyImage base CNN (seed 001).

Only names, inputs and descriptions are registered here (no torch import); the networks are
built by :mod:`.nets` and torchvision when a builder runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from devicebench.workloads.registry import ImageInput, register_model

if TYPE_CHECKING:
    from torch import nn

    from devicebench.workloads.nets import ResNet64, TinyCNN

#: A function that builds a model.
Builder = Callable[[], "nn.Module"]

__all__ = ["TinyCNN", "ResNet64"]


@register_model(
    "resnet50",
    input=ImageInput(3, 224, 224),
    task="image-classification",
    description="torchvision ResNet-50, 1000 classes, 224x224 (25.6 M parameters)",
    preload=("torchvision.models",),
)
def resnet50() -> nn.Module:
    from torchvision.models import resnet50 as tv_resnet50

    from devicebench.workloads.nets import conv_init_skipped

    with conv_init_skipped():  # torchvision redraws every convolution (Kaiming normal)
        return tv_resnet50(weights=None)


@register_model(
    "resnet50-tiny",
    input=ImageInput(3, 64, 64),
    task="image-classification",
    description="ResNet-50's bottleneck design with one block per stage, 10 classes, 64x64",
    tiny=True,
    default_batch_sizes=(1, 4),
    preload=("torchvision.models",),
)
def resnet50_tiny() -> nn.Module:
    from torchvision.models.resnet import Bottleneck, ResNet

    from devicebench.workloads.nets import conv_init_skipped

    with conv_init_skipped():
        return ResNet(Bottleneck, [1, 1, 1, 1], num_classes=10, width_per_group=16)


def _register_64px(name: str, description: str, *, tiny: bool = False,
                   preload: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Register a TinyImage-sized classifier (64x64 RGB in, class scores out), swept at batch
    sizes 1, 32 and 256 (a tiny test variant at 1 and 4)."""
    return register_model(name, input=ImageInput(3, 64, 64), task="image-classification", description=description,
                          tiny=tiny, default_batch_sizes=(1, 4) if tiny else (1, 32, 256), preload=preload)


@_register_64px("tinycnn", "TinyImage base CNN (4 stages of conv-BN-ReLU x2 + max pool), 200 classes, 64x64")
def tinycnn() -> nn.Module:
    from devicebench.workloads.nets import TinyCNN

    return TinyCNN(num_classes=200)


@_register_64px("tinycnn-tiny", "TinyImage base CNN with 2 narrow stages, 10 classes, 64x64", tiny=True)
def tinycnn_tiny() -> nn.Module:
    from devicebench.workloads.nets import TinyCNN

    return TinyCNN(num_classes=10, widths=(8, 16))


@_register_64px("resnet18", "ResNet-18 for 64x64 (3x3 stride-1 stem, no max pool), 200 classes (11.3 M parameters)",
                preload=("torchvision.models",))
def resnet18() -> nn.Module:
    from devicebench.workloads.nets import ResNet64

    return ResNet64(num_classes=200)


@_register_64px("resnet18-tiny", "ResNet-18's 64x64 design with one narrow block per stage, 10 classes, 64x64",
                tiny=True, preload=("torchvision.models",))
def resnet18_tiny() -> nn.Module:
    from devicebench.workloads.nets import ResNet64

    return ResNet64(num_classes=10, layers=(1, 1, 1, 1), widths=(8, 16, 32, 64))


def __getattr__(name: str) -> object:
    # The networks live in .nets (they need torch); still importable from here.
    if name in ("TinyCNN", "ResNet64", "HostDropout", "seed_dropout"):
        from devicebench.workloads import nets

        return getattr(nets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
