"""A synthetic, learnable image set in the Tiny-ImageNet-200 layout: coloured shapes on noise,
one class per (colour, shape), with a few grayscale files and one broken file on purpose, so
that training, the readers and ``data inspect`` can be tried offline and tested in seconds."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from devicebench.errors import UserError

__all__ = ["make_synthetic"]

_PALETTE = [
    (220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40), (160, 60, 200),
    (40, 200, 200), (240, 130, 30), (120, 120, 120), (250, 120, 180), (100, 60, 20),
]
_SHAPES = ("circle", "square", "triangle", "bars", "cross")


def _draw(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    fg = _PALETTE[label % len(_PALETTE)]
    shape = _SHAPES[(label // len(_PALETTE) + label) % len(_SHAPES)]
    bg = tuple(int(v) for v in rng.integers(0, 90, 3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fg)
    elif shape == "square":
        draw.rectangle(box, fill=fg)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif shape == "bars":
        for x in range(cx - r, cx + r, max(2, r // 2)):
            draw.rectangle((x, cy - r, x + max(1, r // 4), cy + r), fill=fg)
    else:
        draw.rectangle((cx - r, cy - r // 4, cx + r, cy + r // 4), fill=fg)
        draw.rectangle((cx - r // 4, cy - r, cx + r // 4, cy + r), fill=fg)
    array = np.asarray(img, dtype=np.int16)
    noise = rng.normal(0, 18, array.shape)
    return np.clip(array + noise, 0, 255).astype(np.uint8)


def make_synthetic(
    out: str | Path,
    *,
    classes: int = 10,
    train_per_class: int = 40,
    val_per_class: int = 10,
    test_images: int = 10,
    size: int = 64,
    seed: int = 0,
    grayscale: int = 3,
    broken: int = 1,
    as_zip: bool = False,
) -> Path:
    """Write a small deterministic, learnable dataset in the Tiny-ImageNet-200 layout.

    Class ``c`` is a shape of one colour (from a 10-colour palette and 5 shapes) at a random
    place and size on a dark random background, plus Gaussian noise: a small CNN learns it
    in a few epochs, and chance is ``1 / classes``. ``grayscale`` training images are saved
    as single-channel JPEGs and ``broken`` training files hold bytes that are not an image,
    as in the real set.

    Returns:
        The dataset folder, or the ``.zip`` when ``as_zip`` (then ``out`` names the zip).

    Raises:
        UserError: ``out`` exists and is not an empty folder, or a count is out of range.
    """
    from PIL import Image

    if classes < 2 or train_per_class < 1 or val_per_class < 0 or size < 8:
        raise UserError("make-synthetic needs classes >= 2, train-per-class >= 1 and size >= 8")
    out = Path(out)
    root = out.with_suffix("") if as_zip else out
    if as_zip and out.exists():
        raise UserError(f"{out} already exists: choose another name")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(f"{root} already exists and is not empty: choose another folder")
    rng = np.random.default_rng(seed)
    wnids = [f"n{90000000 + c:08d}" for c in range(classes)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(
        f"{w}\tsynthetic {_SHAPES[(c // len(_PALETTE) + c) % len(_SHAPES)]}, colour {c % len(_PALETTE)}\n"
        for c, w in enumerate(wnids)))

    def save(array: np.ndarray, path: Path, gray: bool = False) -> None:
        img = Image.fromarray(array)
        if gray:
            img = img.convert("L")
        img.save(path, format="JPEG", quality=90)

    gray_left, broken_left = grayscale, broken
    for c, wnid in enumerate(wnids):
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True)
        boxes = []
        for k in range(train_per_class):
            name = f"{wnid}_{k}.JPEG"
            array = _draw(c, rng, size)
            if broken_left and k == train_per_class - 1 and c == classes - 1:
                (images / name).write_bytes(b"this is not a JPEG file\n" * 4)
                broken_left -= 1
            else:
                gray = gray_left > 0 and k == 0
                gray_left -= int(gray)
                save(array, images / name, gray)
            boxes.append(f"{name}\t0\t0\t{size - 1}\t{size - 1}\n")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for k in range(val_per_class * classes):
        c = k % classes
        name = f"val_{k}.JPEG"
        save(_draw(c, rng, size), root / "val" / "images" / name)
        lines.append(f"{name}\t{wnids[c]}\t0\t0\t{size - 1}\t{size - 1}\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    (root / "test" / "images").mkdir(parents=True)
    for k in range(test_images):
        save(_draw(int(rng.integers(classes)), rng, size), root / "test" / "images" / f"test_{k}.JPEG")
    if not as_zip:
        return root
    import shutil

    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
    shutil.rmtree(root)
    return out
