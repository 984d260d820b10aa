"""Image models: ResNet-50 (seed 000) and the TinyImage base CNN (seed 001)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import resnet50 as tv_resnet50
from torchvision.models.resnet import Bottleneck, ResNet

from devicebench.workloads.registry import ImageInput, register_model

#: A function that builds a model.
Builder = Callable[[], nn.Module]

__all__ = ["TinyCNN", "ResNet64", "HostDropout", "seed_dropout"]


class HostDropout(nn.Module):
    """Dropout whose mask is drawn on the CPU, then moved to the input's device.

    ``nn.Dropout`` draws its mask from the generator of the device it runs on, so the same
    seed gives one mask on the CPU and another on a GPU, and two devices' training curves part
    from the first step. Here the mask comes from a CPU generator (:attr:`generator`, which
    the training loop seeds per step with :func:`seed_dropout`; torch's global CPU generator
    when unset), so it is the same on every device. Scaling is ``nn.Dropout``'s (kept units
    times ``1 / (1 - p)``); in eval mode it is the identity.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        mask = torch.rand(x.shape, generator=self.generator) < keep  # on the CPU, always
        return x * mask.to(device=x.device, dtype=x.dtype) / keep

    def extra_repr(self) -> str:
        return f"p={self.p}, mask drawn on the CPU"


def seed_dropout(module: nn.Module, seed: int) -> int:
    """Give every :class:`HostDropout` in ``module`` a CPU generator seeded with ``seed``.

    Called before each training step with a seed of (run seed, epoch, step), so the masks
    depend on nothing but those: not on the device, nor on what else drew from torch's
    global generator. Returns how many dropout layers were seeded.
    """
    count = 0
    for layer in module.modules():
        if isinstance(layer, HostDropout):
            layer.generator = torch.Generator().manual_seed(seed)
            count += 1
    return count


class TinyCNN(nn.Module):
    """The TinyImage base CNN: conv-BN-ReLU blocks with max pooling, then a linear classifier.

    Each stage is two 3x3 conv-BN-ReLU layers followed by a 2x2 max pool, halving the image
    (64 -> 32 -> 16 -> 8 -> 4 with four stages); global average pooling and dropout feed the
    classifier, so the same network accepts any input size. The dropout is a
    :class:`HostDropout`, so its masks are the same on every device.
    """

    def __init__(
        self,
        num_classes: int = 200,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        in_channels: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            for _ in range(2):
                layers += [
                    nn.Conv2d(prev, width, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                prev = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = HostDropout(dropout)
        self.classifier = nn.Linear(prev, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


@register_model(
    "resnet50",
    input=ImageInput(3, 224, 224),
    task="image-classification",
    description="torchvision ResNet-50, 1000 classes, 224x224 (25.6 M parameters)",
)
def resnet50() -> nn.Module:
    return tv_resnet50(weights=None)


@register_model(
    "resnet50-tiny",
    input=ImageInput(3, 64, 64),
    task="image-classification",
    description="ResNet-50's bottleneck design with one block per stage, 10 classes, 64x64",
    tiny=True,
    default_batch_sizes=(1, 4),
)
def resnet50_tiny() -> nn.Module:
    return ResNet(Bottleneck, [1, 1, 1, 1], num_classes=10, width_per_group=16)


def _register_64px(name: str, description: str, *, tiny: bool = False) -> Callable[[Builder], Builder]:
    """Register a TinyImage-sized classifier (64x64 RGB in, class scores out), swept at batch
    sizes 1, 32 and 256 (a tiny test variant at 1 and 4)."""
    return register_model(name, input=ImageInput(3, 64, 64), task="image-classification", description=description,
                          tiny=tiny, default_batch_sizes=(1, 4) if tiny else (1, 32, 256))


@_register_64px("tinycnn", "TinyImage base CNN (4 stages of conv-BN-ReLU x2 + max pool), 200 classes, 64x64")
def tinycnn() -> nn.Module:
    return TinyCNN(num_classes=200)


@_register_64px("tinycnn-tiny", "TinyImage base CNN with 2 narrow stages, 10 classes, 64x64", tiny=True)
def tinycnn_tiny() -> nn.Module:
    return TinyCNN(num_classes=10, widths=(8, 16))


class ResNet64(nn.Module):
    """ResNet-18's design adapted to 64x64 images (as is usual for Tiny-ImageNet).

    The ImageNet stem (7x7 stride-2 conv and a 3x3 max pool) would shrink a 64x64 image to
    16x16 before the first block; here the stem is one 3x3 stride-1 conv and there is no max
    pool, so the four stages see 64, 32, 16 and 8 pixels. The blocks are torchvision's.
    """

    def __init__(
        self,
        num_classes: int = 200,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        widths: tuple[int, ...] = (64, 128, 256, 512),
    ) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        prev = widths[0]
        for i, (blocks, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or prev != width:
                down = nn.Sequential(nn.Conv2d(prev, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
            stage = [BasicBlock(prev, width, stride=stride, downsample=down)]
            stage += [BasicBlock(width, width) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            prev = width
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(prev, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


@_register_64px("resnet18", "ResNet-18 for 64x64 (3x3 stride-1 stem, no max pool), 200 classes (11.3 M parameters)")
def resnet18() -> nn.Module:
    return ResNet64(num_classes=200)


@_register_64px("resnet18-tiny", "ResNet-18's 64x64 design with one narrow block per stage, 10 classes, 64x64",
                tiny=True)
def resnet18_tiny() -> nn.Module:
    return ResNet64(num_classes=10, layers=(1, 1, 1, 1), widths=(8, 16, 32, 64))
