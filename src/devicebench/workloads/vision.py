"""Image models: ResNet-50 (seed 000) and the TinyImage base CNN (seed 001)."""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet50 as tv_resnet50
from torchvision.models.resnet import Bottleneck, ResNet

from devicebench.workloads.registry import ImageInput, register_model

__all__ = ["TinyCNN"]


class TinyCNN(nn.Module):
    """The TinyImage base CNN: conv-BN-ReLU blocks with max pooling, then a linear classifier.

    Each stage is two 3x3 conv-BN-ReLU layers followed by a 2x2 max pool, halving the image
    (64 -> 32 -> 16 -> 8 -> 4 with four stages); global average pooling and dropout feed the
    classifier, so the same network accepts any input size.
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
        self.dropout = nn.Dropout(dropout)
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


@register_model(
    "tinycnn",
    input=ImageInput(3, 64, 64),
    task="image-classification",
    description="TinyImage base CNN (4 stages of conv-BN-ReLU x2 + max pool), 200 classes, 64x64",
    default_batch_sizes=(1, 32, 256),
)
def tinycnn() -> nn.Module:
    return TinyCNN(num_classes=200)


@register_model(
    "tinycnn-tiny",
    input=ImageInput(3, 64, 64),
    task="image-classification",
    description="TinyImage base CNN with 2 narrow stages, 10 classes, 64x64",
    tiny=True,
    default_batch_sizes=(1, 4),
)
def tinycnn_tiny() -> nn.Module:
    return TinyCNN(num_classes=10, widths=(8, 16))
