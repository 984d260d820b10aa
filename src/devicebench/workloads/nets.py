"""The network classes behind the registered models (imports torch).

Kept apart from :mod:`.vision` and :mod:`.nlp`, which only register names, inputs and
descriptions: listing the models (``devicebench models``) reads those without importing
torch; a builder imports this module when a model is actually built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from devicebench.errors import UserError

__all__ = ["TinyCNN", "ResNet64", "HostDropout", "seed_dropout", "HFEncoder", "bert_from_config",
           "without_default_init", "conv_init_skipped", "parallel_normal_draws", "PARALLEL_DRAW_MIN", "DRAW_PIECES"]

#: A normal draw of at least this many numbers is split into pieces drawn side by side
#: (:func:`parallel_normal_draws`); a smaller one is drawn as torch draws it.
PARALLEL_DRAW_MIN = 1 << 18
#: How many pieces: a fixed count, so that the values never depend on how many cores drew them.
DRAW_PIECES = 8


@contextlib.contextmanager
def parallel_normal_draws(workers: int | None = None) -> Iterator[None]:
    """Random normal initialisation on every usable core while inside (building a model).

    torch draws normal numbers on one core: BERT-base's 110 M weights took ~0.7 s of a
    configuration's build, ResNet-50's 25 M ~0.1 s, while the other cores idled (nothing is
    measured while a model is built). Inside, a CPU tensor's ``normal_(mean, std)`` of at
    least :data:`PARALLEL_DRAW_MIN` numbers (the draws of ``nn.init.normal_``,
    ``kaiming_normal_``, transformers' initialisation alike) takes one number from torch's
    global generator, seeds :data:`DRAW_PIECES` generators from it (that number + piece
    index), and fills one contiguous piece of the tensor from each, on ``workers`` threads
    (default: the usable cores, at most one per piece). Every number is still drawn from
    normal(``mean``, ``std``), the weights are still a function of the seed set before the
    build, and they do not depend on ``workers``; they are not the values a single-threaded
    draw gives from the same seed. A draw with its own generator, on another device, of a
    non-contiguous tensor or of a smaller one is torch's own. Process-wide while inside, like
    :func:`without_default_init`; the threads end on leaving.
    """
    from concurrent.futures import ThreadPoolExecutor

    from devicebench.devices.sysinfo import usable_cores

    count = max(1, min(DRAW_PIECES, workers if workers is not None else usable_cores()))
    original = torch.Tensor.normal_
    own = torch.Tensor.__dict__.get("normal_")
    pool = ThreadPoolExecutor(count, thread_name_prefix="devicebench-init") if count > 1 else None

    def draw(piece: tuple[torch.Tensor, float, float, int]) -> None:
        part, mean, std, seed = piece
        original(part, mean, std, generator=torch.Generator().manual_seed(seed))

    def normal_(self: torch.Tensor, mean: float = 0.0, std: float = 1.0, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if (generator is not None or self.device.type != "cpu" or not self.is_floating_point()
                or self.numel() < PARALLEL_DRAW_MIN or not self.is_contiguous()):
            return original(self, mean, std, generator=generator)
        base = int(torch.randint(0, 1 << 62, (), dtype=torch.int64))  # the seed decides it
        flat = self.detach().view(-1)  # the same storage, outside autograd
        step = -(-flat.numel() // DRAW_PIECES)
        pieces = [(flat[i * step:(i + 1) * step], mean, std, base + i) for i in range(DRAW_PIECES)]
        if pool is None:
            for piece in pieces:
                draw(piece)
        else:
            list(pool.map(draw, pieces))
        return self

    torch.Tensor.normal_ = normal_  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        if own is None:
            del torch.Tensor.normal_
        else:
            torch.Tensor.normal_ = own  # type: ignore[method-assign]
        if pool is not None:
            pool.shutdown(wait=True)


@contextlib.contextmanager
def without_default_init(*classes: type[nn.Module]) -> Iterator[None]:
    """Build modules of ``classes`` without torch's default initialisation of their
    parameters (``reset_parameters`` does nothing inside), for a model whose own
    initialisation then overwrites every one of those parameters.

    Random initialisation is most of the cost of building a large model (drawing 110 M
    numbers twice for BERT-base: torch's uniform default, then transformers' normal one over
    it), and a configuration builds its model in its own fresh process. Skipping the draw
    whose values are thrown away halves that cost. The weights keep their distribution and
    stay a function of the seed, but are not the values an unmodified builder draws from the
    same seed (the generator has advanced less). Process-wide while inside: build nothing
    else on another thread meanwhile.
    """
    saved = [(cls, cls.__dict__.get("reset_parameters")) for cls in classes]
    for cls, _ in saved:
        cls.reset_parameters = _skip_reset  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls, own in saved:
            if own is None:
                del cls.reset_parameters
            else:
                cls.reset_parameters = own  # type: ignore[method-assign]


def _skip_reset(self: nn.Module) -> None:
    return None


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
        self.dropout = HostDropout(dropout)
        self.classifier = nn.Linear(prev, num_classes)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


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
    """A transformers ``BertModel`` with random weights from a ``BertConfig`` (transformers'
    initialisation only: see :func:`without_default_init`).

    Raises:
        UserError: transformers is not installed.
    """
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        raise UserError(
            "BERT models need the transformers package: pip install 'devicebench[nlp]'"
        ) from None
    # transformers' own initialisation (normal weights, zero biases) overwrites every Linear
    # and Embedding parameter: torch's default draw before it is skipped.
    with without_default_init(nn.Linear, nn.Embedding):
        return HFEncoder(BertModel(BertConfig(**config), add_pooling_layer=False))


def conv_init_skipped() -> contextlib.AbstractContextManager[None]:
    """:func:`without_default_init` for convolutions: torchvision's ResNets draw every
    convolution's weights again (Kaiming normal) and have no convolution bias."""
    return without_default_init(nn.modules.conv._ConvNd)
