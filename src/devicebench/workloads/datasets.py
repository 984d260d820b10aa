"""Image datasets for training: Tiny-ImageNet-200 (folder or .zip) and ImageFolder readers
(the generated synthetic set lives in :mod:`.synthetic`).

The reader indexes a dataset without decoding it, then decodes images on demand (in
DataLoader workers) or all at once into one ``uint8`` tensor (``--loader memory``). Images
come out as ``uint8`` ``3 x S x S`` tensors: grayscale files are converted to RGB, other sizes
are resized, and unreadable files are skipped and counted, never fatal.

Layouts understood:

* **Tiny-ImageNet-200**: ``wnids.txt``, ``words.txt``, ``train/<wnid>/images/*.JPEG`` (with
  ``train/<wnid>/<wnid>_boxes.txt``), ``val/images/*.JPEG`` labelled by
  ``val/val_annotations.txt``, and ``test/images/`` (unlabelled, counted only).
* **ImageFolder**: ``train/<class>/*.jpg`` and ``val/<class>/*.jpg`` (or ``valid/``,
  ``validation/``); or just ``<class>/*.jpg``, where every 10th image of a class (by name)
  is kept for validation.

Either may be a folder or a ``.zip`` holding it (at its top or one folder down, as the
official ``tiny-imagenet-200.zip`` is).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from devicebench.errors import DatasetError
from devicebench.workloads.synthetic import make_synthetic  # re-exported: data make-synthetic

__all__ = [
    "DatasetError",
    "DatasetIndex",
    "Source",
    "ImageDataset",
    "InspectReport",
    "open_dataset",
    "decode_image",
    "collate_skip_broken",
    "load_in_memory",
    "inspect_dataset",
    "make_synthetic",
    "IMAGE_EXTENSIONS",
    "MEAN",
    "STD",
]

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")
#: Per-channel mean and std of ImageNet, used to normalise on the device.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# -- where the files are: a folder or a zip ---------------------------------------------
class Source:
    """Files of a dataset, in a folder or a zip, by POSIX path relative to the dataset root.

    Picklable: a zip is (re)opened lazily in each process, so DataLoader workers each get
    their own handle (a ``ZipFile`` must not be shared across ``fork``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise DatasetError(f"dataset not found: {self.path}")
        #: Said to the user when the path was not used as given (see :func:`inner_dataset`).
        self.notice = ""
        inner = inner_dataset(self.path)
        if inner is not None:
            self.notice = f"using {inner}: the Tiny-ImageNet folder inside {self.path}"
            self.path = inner
        self.is_zip = self.path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        self.prefix = ""
        if self.is_zip:
            if not zipfile.is_zipfile(self.path):
                raise DatasetError(f"{self.path} is neither a folder nor a .zip archive")
            try:
                names = [n for n in self._zipfile().namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # a damaged or truncated archive
                raise DatasetError(f"{self.path} is not a readable .zip archive ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
            self.prefix = _zip_root(names)
            self._names = sorted(n[len(self.prefix):] for n in names if n.startswith(self.prefix))
        else:
            root = self.path
            self._names = sorted(
                str(PurePosixPath(*Path(dirpath, f).relative_to(root).parts))
                for dirpath, _dirs, files in os.walk(root)
                for f in files
            )

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    @property
    def names(self) -> list[str]:
        """Every file, sorted, relative to the dataset root."""
        return self._names

    def exists(self, rel: str) -> bool:
        return rel in self._name_set

    @property
    def _name_set(self) -> set[str]:
        cached = self.__dict__.get("_set")
        if cached is None:
            cached = set(self._names)
            self.__dict__["_set"] = cached
        return cached

    def read(self, rel: str) -> bytes:
        """The bytes of one file. Raises OSError (or KeyError for zips) when it cannot be read."""
        if self.is_zip:
            return self._zipfile().read(self.prefix + rel)
        return (self.path / rel).read_bytes()

    def read_text(self, rel: str) -> str:
        try:
            return self.read(rel).decode("utf-8", errors="replace")
        except (OSError, KeyError) as exc:
            raise DatasetError(f"cannot read {rel} in {self.path}: {exc}") from None

    def describe(self) -> str:
        return f"{self.path} (zip)" if self.is_zip else str(self.path)


def inner_dataset(path: Path) -> Path | None:
    """The Tiny-ImageNet folder inside ``path`` when that is all ``path`` holds, else ``None``.

    ``data download tiny-imagenet --to ./data`` leaves ``./data/tiny-imagenet-200/`` (and the
    archive) in ``./data``; ``train --data ./data`` means that folder. Read as an image
    folder, ``./data`` would be one class, trained to a meaningless 100%.
    """
    if not path.is_dir() or (path / "wnids.txt").exists():
        return None
    try:
        folders = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return None
    if len(folders) == 1 and (folders[0] / "wnids.txt").is_file():
        return folders[0]
    return None


def _zip_root(names: Sequence[str]) -> str:
    """The folder inside a zip that holds the dataset ('' or e.g. 'tiny-imagenet-200/')."""
    markers = [n for n in names if PurePosixPath(n).name == "wnids.txt"]
    if markers:
        parent = str(PurePosixPath(min(markers, key=len)).parent)
        return "" if parent == "." else parent + "/"
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if len(tops) == 1 and not any("/" not in n for n in names):
        top = tops.pop()
        if not {"train", "val"} & {top}:
            return top + "/"
    return ""


# -- the index: which file has which label ----------------------------------------------
@dataclass
class DatasetIndex:
    """A dataset, indexed but not decoded.

    Attributes:
        layout: ``tiny-imagenet`` or ``imagefolder``.
        classes: class ids (wnids for Tiny-ImageNet, folder names otherwise), label order.
        class_names: human-readable names (from ``words.txt`` when present).
        train, val: ``(relative path, label)`` pairs.
        test: unlabelled test images (counted, never trained on).
        boxes_files: how many ``<wnid>_boxes.txt`` files were found.
    """

    source: Source
    layout: str
    classes: list[str]
    class_names: list[str]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[str] = field(default_factory=list)
    boxes_files: int = 0
    total_classes: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        return {
            "path": str(self.source.path),
            "format": "zip" if self.source.is_zip else "folder",
            "layout": self.layout,
            "classes": self.num_classes,
            "classes_available": self.total_classes,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "test_images": len(self.test),
            # `data make-synthetic` names every class "synthetic ..." in words.txt: figures
            # and reports then call the data synthetic, whatever its layout.
            "synthetic": bool(self.class_names) and all(n.startswith("synthetic ") for n in self.class_names),
            "notice": self.source.notice,
        }


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def open_dataset(path: str | Path, *, classes: int | None = None, train_per_class: int | None = None) -> DatasetIndex:
    """Index a dataset folder or zip, optionally keeping a subset for quick runs.

    Args:
        path: the dataset root folder, or a .zip holding it.
        classes: keep the first N classes (in ``wnids.txt`` order, or sorted folder names).
        train_per_class: keep the first K training images of each class (by file name).

    Raises:
        DatasetError: missing path, unknown layout, missing annotation file, empty dataset,
            or a subset larger than the dataset.
    """
    if classes is not None and classes < 1:
        raise DatasetError(f"--classes must be >= 1, got {classes}")
    if train_per_class is not None and train_per_class < 1:
        raise DatasetError(f"--train-per-class must be >= 1, got {train_per_class}")
    source = Source(path)
    if source.exists("wnids.txt"):
        index = _index_tiny_imagenet(source, classes)
    else:
        index = _index_image_folder(source, classes)
    if train_per_class is not None:
        kept: dict[int, int] = {}
        train = []
        for rel, label in index.train:
            if kept.get(label, 0) < train_per_class:
                kept[label] = kept.get(label, 0) + 1
                train.append((rel, label))
        index.train = train
    if not index.train:
        raise DatasetError(f"no training images found in {source.describe()} ({index.layout} layout)")
    if index.num_classes < 2:
        raise DatasetError(
            f"{source.describe()} has {index.num_classes} class ({', '.join(index.classes)[:60]}): a classifier "
            "needs at least two (one folder per class, or the Tiny-ImageNet folder itself)"
            + (" - --classes must be at least 2" if classes is not None else "")
        )
    return index


def _index_tiny_imagenet(source: Source, classes: int | None) -> DatasetIndex:
    wnids = [w.strip() for w in source.read_text("wnids.txt").splitlines() if w.strip()]
    if not wnids:
        raise DatasetError(f"{source.describe()}: wnids.txt is empty")
    total = len(wnids)
    if classes is not None:
        if classes > total:
            raise DatasetError(f"--classes {classes} is more than the {total} classes in {source.describe()}")
        wnids = wnids[:classes]
    words: dict[str, str] = {}
    if source.exists("words.txt"):
        for line in source.read_text("words.txt").splitlines():
            wnid, _, name = line.partition("\t")
            words[wnid.strip()] = name.strip()
    label_of = {w: i for i, w in enumerate(wnids)}
    train: list[tuple[str, int]] = []
    boxes = 0
    for rel in source.names:
        parts = rel.split("/")
        if parts[0] != "train" or len(parts) < 3:
            continue
        wnid = parts[1]
        if wnid not in label_of:
            continue
        if len(parts) == 4 and parts[2] == "images" and _is_image(rel):
            train.append((rel, label_of[wnid]))
        elif len(parts) == 3 and parts[2] == f"{wnid}_boxes.txt":
            boxes += 1
    train.sort(key=lambda item: (item[1], item[0]))
    val: list[tuple[str, int]] = []
    if source.exists("val/val_annotations.txt"):
        for line in source.read_text("val/val_annotations.txt").splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].strip() in label_of:
                rel = f"val/images/{fields[0].strip()}"
                if source.exists(rel):
                    val.append((rel, label_of[fields[1].strip()]))
    elif any(n.startswith("val/images/") for n in source.names):
        raise DatasetError(f"{source.describe()}: val/images/ exists but val/val_annotations.txt is missing")
    test = [n for n in source.names if n.startswith("test/images/") and _is_image(n)]
    return DatasetIndex(source, "tiny-imagenet", wnids, [words.get(w, w) for w in wnids],
                        train, val, test, boxes, total)


_VAL_DIRS = ("val", "valid", "validation")


def _index_image_folder(source: Source, classes: int | None) -> DatasetIndex:
    images = [n for n in source.names if _is_image(n)]
    split_root = next((d for d in _VAL_DIRS if any(n.startswith(d + "/") for n in images)), None)
    has_train = any(n.startswith("train/") for n in images)
    if has_train:
        train_files = [n for n in images if n.startswith("train/") and n.count("/") >= 2]
        val_files = [n for n in images if split_root and n.startswith(split_root + "/") and n.count("/") >= 2]
        class_of = lambda rel: rel.split("/")[1]  # noqa: E731
    else:
        train_files = [n for n in images if n.count("/") >= 1]
        val_files = []
        class_of = lambda rel: rel.split("/")[0]  # noqa: E731
    names = sorted({class_of(n) for n in train_files})
    if not names:
        raise DatasetError(
            f"{source.describe()} is not a dataset devicebench knows: expected Tiny-ImageNet "
            "(wnids.txt, train/, val/) or ImageFolder (train/<class>/*.jpg or <class>/*.jpg)"
        )
    total = len(names)
    if classes is not None:
        if classes > total:
            raise DatasetError(f"--classes {classes} is more than the {total} classes in {source.describe()}")
        names = names[:classes]
    label_of = {c: i for i, c in enumerate(names)}
    train = sorted(((n, label_of[class_of(n)]) for n in train_files if class_of(n) in label_of),
                   key=lambda item: (item[1], item[0]))
    val = sorted(((n, label_of[class_of(n)]) for n in val_files if class_of(n) in label_of),
                 key=lambda item: (item[1], item[0]))
    if not has_train:
        # One folder per class and no split: every 10th image of a class is held out.
        held, kept, seen = [], [], {}
        for rel, label in train:
            seen[label] = seen.get(label, -1) + 1
            (held if seen[label] % 10 == 9 else kept).append((rel, label))
        train, val = kept, held
    return DatasetIndex(source, "imagefolder", names, list(names), train, val, [], 0, total)


# -- decoding -------------------------------------------------------------------------
def decode_image(data: bytes, size: int = 64) -> tuple[torch.Tensor, bool]:
    """Decode image bytes to a ``uint8`` ``3 x size x size`` tensor.

    Returns:
        The tensor and whether the file was grayscale (converted to RGB).

    Raises:
        ValueError: the bytes are not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            gray = img.mode in ("L", "LA", "1", "I", "I;16", "F")
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"unreadable image: {exc}") from None
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous(), gray


class ImageDataset(torch.utils.data.Dataset):
    """A torch Dataset over indexed files: item ``i`` is ``(uint8 image, label)``, or ``None``
    for an unreadable file (see :func:`collate_skip_broken`)."""

    def __init__(self, source: Source, items: Sequence[tuple[str, int]], size: int = 64) -> None:
        self.source = source
        self.items = list(items)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | None:
        rel, label = self.items[i]
        try:
            image, _gray = decode_image(self.source.read(rel), self.size)
        except (ValueError, OSError, KeyError, zipfile.BadZipFile):
            return None
        return image, label


def collate_skip_broken(batch: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack a batch, dropping unreadable images; returns ``(images, labels, n_broken)``."""
    good = [b for b in batch if b is not None]
    broken = len(batch) - len(good)
    if not good:
        return torch.empty(0, 3, 1, 1, dtype=torch.uint8), torch.empty(0, dtype=torch.long), broken
    images = torch.stack([b[0] for b in good])
    labels = torch.tensor([b[1] for b in good], dtype=torch.long)
    return images, labels, broken


def load_in_memory(
    source: Source, items: Sequence[tuple[str, int]], *, size: int = 64, workers: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Decode every image once into one ``uint8`` tensor (Tiny-ImageNet train: about 1.2 GB).

    Returns:
        ``(images N x 3 x size x size uint8, labels N int64, n_broken)``, in ``items`` order
        with unreadable files left out.
    """
    loader = torch.utils.data.DataLoader(
        ImageDataset(source, items, size), batch_size=256, shuffle=False,
        num_workers=workers, collate_fn=collate_skip_broken,
        generator=torch.Generator().manual_seed(0),  # leave the global RNG alone
    )
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    broken = 0
    for x, y, n_broken in loader:
        broken += n_broken
        if len(y):
            images.append(x)
            labels.append(y)
    if not images:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), torch.empty(0, dtype=torch.long), broken
    return torch.cat(images), torch.cat(labels), broken


# -- inspect ----------------------------------------------------------------------------
@dataclass
class InspectReport:
    """What ``devicebench data inspect`` found. Sizes map ``"WxH"`` to a count."""

    summary: dict
    checked: int = 0
    grayscale: int = 0
    broken: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.summary, "checked": self.checked, "grayscale": self.grayscale,
                "broken": len(self.broken), "broken_files": self.broken[:50], "sizes": self.sizes}


def inspect_dataset(path: str | Path, *, limit: int | None = None) -> InspectReport:
    """Index a dataset and decode its images (all, or the first ``limit`` of each split) to
    count grayscale and unreadable files and image sizes.

    Raises:
        DatasetError: see :func:`open_dataset`.
    """
    from PIL import Image

    index = open_dataset(path)
    report = InspectReport(summary=index.describe(), class_names=index.class_names)
    splits = [[rel for rel, _ in index.train], [rel for rel, _ in index.val], list(index.test)]
    for files in splits:
        for rel in files[:limit] if limit else files:
            report.checked += 1
            try:
                with Image.open(io.BytesIO(index.source.read(rel))) as img:
                    img.load()
                    key = f"{img.size[0]}x{img.size[1]}"
                    report.sizes[key] = report.sizes.get(key, 0) + 1
                    if img.mode in ("L", "LA", "1", "I", "I;16", "F"):
                        report.grayscale += 1
            except Exception:  # noqa: BLE001 - any decoder failure means "broken"
                report.broken.append(rel)
    return report
