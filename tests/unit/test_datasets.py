"""The dataset reader on generated Tiny-ImageNet and ImageFolder trees, folder and zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from devicebench.errors import UserError
from devicebench.workloads.datasets import (
    DatasetError,
    inspect_dataset,
    load_in_memory,
    make_synthetic,
    open_dataset,
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("ds") / "tiny", classes=4, train_per_class=6,
                          val_per_class=3, test_images=2, size=24)


def test_tiny_imagenet_layout_is_indexed(synthetic: Path) -> None:
    index = open_dataset(synthetic)
    assert index.layout == "tiny-imagenet"
    assert index.num_classes == 4 and index.classes[0] == "n90000000"
    assert index.class_names[0].startswith("synthetic circle")
    assert len(index.train) == 24 and len(index.val) == 12 and len(index.test) == 2
    assert index.boxes_files == 4
    assert {label for _, label in index.val} == {0, 1, 2, 3}
    # val labels come from val_annotations.txt, not from the file order
    lines = (synthetic / "val" / "val_annotations.txt").read_text().splitlines()
    first_name, first_wnid = lines[1].split("\t")[:2]
    assert (f"val/images/{first_name}", index.classes.index(first_wnid)) in index.val


def test_grayscale_converted_and_broken_skipped(synthetic: Path) -> None:
    report = inspect_dataset(synthetic)
    assert report.grayscale == 3
    assert report.broken == ["train/n90000003/images/n90000003_5.JPEG"]
    index = open_dataset(synthetic)
    images, labels, broken = load_in_memory(index.source, index.train, size=24)
    assert broken == 1
    assert images.shape == (23, 3, 24, 24) and images.dtype == torch.uint8
    assert len(labels) == 23
    # the first image of class 0 was saved grayscale: now 3 equal channels
    assert torch.equal(images[0, 0], images[0, 1]) and torch.equal(images[0, 1], images[0, 2])


def test_zip_reads_like_the_folder(tmp_path: Path, synthetic: Path) -> None:
    archive = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # one folder down, as the official archive
        for path in sorted(synthetic.rglob("*")):
            zf.write(path, f"tiny-imagenet-200/{path.relative_to(synthetic).as_posix()}")
    from_zip, from_dir = open_dataset(archive), open_dataset(synthetic)
    assert from_zip.source.is_zip
    assert from_zip.train == from_dir.train and from_zip.val == from_dir.val
    a, _, broken_zip = load_in_memory(from_zip.source, from_zip.val, size=24, workers=1)
    b, _, _ = load_in_memory(from_dir.source, from_dir.val, size=24)
    assert torch.equal(a, b) and broken_zip == 0


def test_subsets(synthetic: Path) -> None:
    index = open_dataset(synthetic, classes=2, train_per_class=3)
    assert index.num_classes == 2 and index.total_classes == 4
    assert len(index.train) == 6 and all(label < 2 for _, label in index.train + index.val)
    with pytest.raises(DatasetError, match="more than the 4 classes"):
        open_dataset(synthetic, classes=5)


def test_image_folder_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            folder = tmp_path / "split" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    index = open_dataset(tmp_path / "split")
    assert index.layout == "imagefolder" and index.classes == ["cat", "dog"]
    assert len(index.train) == 6 and len(index.val) == 2
    images, _, _ = load_in_memory(index.source, index.train, size=16)
    assert images.shape == (6, 3, 16, 16)  # resized from 50x40
    flat = tmp_path / "flat"
    for cls in ("a", "b"):
        (flat / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(flat / cls / f"{i:02d}.jpg")
    index = open_dataset(flat)
    assert len(index.train) == 18 and len(index.val) == 2  # every 10th held out


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "notzip.zip").write_text("hello")
    with pytest.raises(DatasetError, match="neither a folder nor a .zip"):
        open_dataset(tmp_path / "notzip.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset devicebench knows"):
        open_dataset(tmp_path / "empty")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        make_synthetic(out)


def test_synthetic_is_deterministic(tmp_path: Path) -> None:
    a = make_synthetic(tmp_path / "a", classes=2, train_per_class=2, val_per_class=1, size=16)
    b = make_synthetic(tmp_path / "b", classes=2, train_per_class=2, val_per_class=1, size=16)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# -- hostile datasets (issue 12, case 7) --------------------------------------------------

def test_a_folder_holding_one_tiny_imagenet_folder_is_used_as_that_folder(tmp_path: Path, synthetic: Path) -> None:
    import shutil

    data = tmp_path / "data"  # what `data download tiny-imagenet --to ./data` leaves
    data.mkdir()
    shutil.copytree(synthetic, data / "tiny-imagenet-200")
    (data / "tiny-imagenet-200.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    index = open_dataset(data)
    assert index.layout == "tiny-imagenet" and index.num_classes == 4
    assert index.source.path == data / "tiny-imagenet-200"
    assert "tiny-imagenet-200" in index.describe()["notice"] and str(data) in index.describe()["notice"]


def test_fewer_than_two_classes_is_one_line(tmp_path: Path, synthetic: Path) -> None:
    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(one / f"{i}.png")
    with pytest.raises(DatasetError, match="at least two") as info:
        open_dataset(tmp_path / "one")
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="at least two"):
        open_dataset(synthetic, classes=1)
    two = tmp_path / "two"  # two folders, one of them a Tiny-ImageNet folder: not redirected
    two.mkdir()
    (two / "other").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(two / "other" / "0.png")
    import shutil

    shutil.copytree(synthetic, two / "tiny")
    assert open_dataset(two).source.path == two
