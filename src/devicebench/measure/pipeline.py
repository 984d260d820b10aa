"""From files to answers: every stage of an input pipeline timed apart (runs in a worker).

Images: read the JPEG bytes, decode and resize (on the CPU in ``N`` DataLoader workers, or on
the GPU with ``torchvision.io.decode_jpeg(device="cuda")`` batched), copy to the device, run
the model, copy the answer back. Text: tokenise on the CPU (``N`` workers), copy, model.

For each split the end-to-end throughput is measured over the whole set (after one warm-up
batch), and each stage's time per item is recorded: read and decode are timed inside the
loader workers (CPU time spent per item), the wait for the next batch, the copy and the model
in the consuming loop. The bottleneck is the stage with the largest time per item once the
parallel stages are divided by their worker count. Files from a user's folder are hostile:
only regular ``.jpg``/``.jpeg`` files (no links, no recursion, at most 64 MiB) are read, and a
file that does not decode is recorded by name and skipped.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from devicebench.devices.discovery import DeviceSpec
from devicebench.devices.sysinfo import collect_environment
from devicebench.devices.timers import synchronize
from devicebench.errors import ConfigError, DatasetError, UserError
from devicebench.measure.inference import is_out_of_memory, to_host
from devicebench.workloads.registry import TokenInput, create_model, get_model_entry

__all__ = [
    "PipelineConfig",
    "PipelineOutcome",
    "bottleneck_of",
    "list_jpegs",
    "make_synthetic_jpegs",
    "measure_pipeline",
]

_MAX_FILE = 64 * 1024 * 1024
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@dataclass(frozen=True)
class PipelineConfig:
    """One model device's pipeline. ``images``: a folder or ``synthetic``; ``decode``: ``cpu``,
    ``gpu`` or ``auto`` (both where a GPU runs the model); ``workers``: the DataLoader sweep."""

    model: str
    device: DeviceSpec
    images: str = "synthetic"
    decode: str = "auto"
    workers: tuple[int, ...] = (0, 2, 4)
    batch_size: int = 8
    n_items: int = 64
    size: int | None = None  # the model's own input size unless given
    precision: str = "fp32"
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.decode not in ("cpu", "gpu", "auto"):
            raise ConfigError(f"--decode must be cpu, gpu or auto, got {self.decode!r}")
        if not self.workers or any(w < 0 or w > 64 for w in self.workers):
            raise ConfigError("--workers takes whole numbers from 0 to 64 like 0,2,4")
        if self.batch_size < 1 or self.n_items < 1:
            raise ConfigError("--batch-size and --items must be >= 1")

    def label(self) -> str:
        return f"{self.model} {self.device} pipeline"


@dataclass
class PipelineOutcome:
    status: str
    message: str
    device_name: str
    input_kind: str = "images"
    source: str = ""
    n_items: int = 0
    splits: list[dict[str, Any]] = field(default_factory=list)
    model_only_per_s: float | None = None
    decode_errors: list[str] = field(default_factory=list)
    skipped_files: int = 0
    environment: dict[str, Any] = field(default_factory=dict)


# -- the files ----------------------------------------------------------------------------------


def list_jpegs(folder: str | Path, limit: int) -> tuple[list[Path], int]:
    """Up to ``limit`` regular JPEG files directly in ``folder`` (sorted), and how many other
    entries were skipped (links, folders, devices, other names, files over 64 MiB).

    Raises:
        DatasetError: the folder does not exist or is not a folder.
    """
    root = Path(folder)
    try:
        st = os.lstat(root)
    except OSError as exc:
        raise DatasetError(f"image folder {root} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DatasetError(f"{root} is not a folder of JPEG files")
    found: list[Path] = []
    skipped = 0
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DatasetError(f"image folder {root} cannot be listed: {exc.strerror or exc}") from None
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            skipped += 1
            continue
        if (not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_FILE
                or not entry.name.lower().endswith((".jpg", ".jpeg"))):
            skipped += 1
            continue
        if len(found) < limit:
            found.append(Path(entry.path))
    return found, skipped


def make_synthetic_jpegs(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (375, 500)) -> list[Path]:
    """``n`` JPEG files of ImageNet's typical size (smooth random colour fields, quality 90)."""
    from torchvision.io import encode_jpeg

    gen = torch.Generator().manual_seed(seed)
    h, w = size
    paths = []
    for i in range(n):
        coarse = torch.rand((1, 3, h // 25, w // 25), generator=gen)
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
        img = (img * 255).clamp(0, 255).to(torch.uint8)
        path = folder / f"synthetic_{i:05d}.jpg"
        path.write_bytes(encode_jpeg(img, quality=90).numpy().tobytes())
        paths.append(path)
    return paths


# -- datasets: one item with its stage times ----------------------------------------------------


class _ImageFiles(torch.utils.data.Dataset[Any]):
    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int, int, str]:
        from torchvision.io import ImageReadMode, decode_jpeg
        from torchvision.transforms.v2.functional import resize

        t0 = time.perf_counter_ns()
        try:
            with open(self.paths[i], "rb", opener=_no_follow) as fh:
                data = fh.read(_MAX_FILE + 1)
            t1 = time.perf_counter_ns()
            raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            img = decode_jpeg(raw, mode=ImageReadMode.RGB)
            img = resize(img, [self.size, self.size], antialias=True)
            x = (img.float() / 255 - _MEAN) / _STD
            return x, t1 - t0, time.perf_counter_ns() - t1, ""
        except Exception as exc:  # noqa: BLE001 - a bad file is recorded, not raised
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            return None, time.perf_counter_ns() - t0, 0, f"{self.paths[i].name}: {type(exc).__name__}: {first}"


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


class _Sentences(torch.utils.data.Dataset[Any]):
    def __init__(self, n: int, seq_len: int) -> None:
        self.n = n
        self.seq_len = seq_len

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Any, int, int, str]:
        from devicebench.workloads.text import tokenize_batch

        t0 = time.perf_counter_ns()
        ids, mask, types = tokenize_batch(1, self.seq_len, seed=i)
        return (ids[0], mask[0], types[0]), 0, time.perf_counter_ns() - t0, ""


def _collate(items: list[tuple[Any, int, int, str]]) -> tuple[Any, int, int, list[str]]:
    good = [x for x, _, _, err in items if not err]
    errors = [err for _, _, _, err in items if err]
    read = sum(r for _, r, _, _ in items)
    prep = sum(p for _, _, p, _ in items)
    if not good:
        return None, read, prep, errors
    if isinstance(good[0], tuple):
        batch = tuple(torch.stack([g[k] for g in good]) for k in range(len(good[0])))
    else:
        batch = (torch.stack(good),)
    return batch, read, prep, errors


# -- the splits ---------------------------------------------------------------------------------


def bottleneck_of(stages_ms: dict[str, float], workers: int) -> str:
    """The stage with the largest time per item, the parallel stages (read, decode, tokenise
    in ``workers`` loader processes) divided by their count."""
    parallel = {"read", "decode", "tokenise"}
    effective = {k: v / max(1, workers) if k in parallel else v for k, v in stages_ms.items() if k != "wait"}
    return max(effective, key=lambda k: effective[k]) if effective else "-"


def _cpu_split(model: Any, dataset: Any, device: DeviceSpec, batch: int, workers: int, dtype: torch.dtype,
               errors: list[str], text: bool) -> dict[str, Any]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=_collate,
                                         persistent_workers=False, prefetch_factor=2 if workers else None)
    target = device.torch_device
    sums = {"read": 0.0, "decode": 0.0, "wait": 0.0, "copy": 0.0, "model": 0.0}
    items = 0
    t_start = time.perf_counter()
    it = iter(loader)
    first = True
    t_timed = t_start
    while True:
        t0 = time.perf_counter()
        try:
            xb, read_ns, prep_ns, errs = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        for e in errs:
            if e not in errors:
                errors.append(e)
        if xb is None:
            continue
        dev = tuple(x.to(target).to(dtype) if x.is_floating_point() else x.to(target) for x in xb)
        synchronize(device)
        t2 = time.perf_counter()
        with torch.inference_mode():
            to_host(model(*dev))
        t3 = time.perf_counter()
        if first:  # the first batch pays for worker start-up and the first call: not counted
            first = False
            startup_s = t3 - t_start
            t_timed = t3
            continue
        n = xb[0].shape[0]
        items += n
        sums["read"] += read_ns / 1e6
        sums["decode"] += prep_ns / 1e6
        sums["wait"] += (t1 - t0) * 1e3
        sums["copy"] += (t2 - t1) * 1e3
        sums["model"] += (t3 - t2) * 1e3
    wall = time.perf_counter() - t_timed
    if items == 0:
        return {"decode": "cpu", "workers": workers, "status": "error", "items": 0,
                "message": "no item decoded after the first batch: give more images (--items)"}
    stages = {k: v / items for k, v in sums.items()}
    if text:
        stages["tokenise"] = stages.pop("decode")
        stages.pop("read")
    return {"decode": "cpu", "workers": workers, "status": "ok", "items": items, "wall_s": wall,
            "items_per_s": items / wall, "startup_s": startup_s, "stage_ms_per_item": stages,
            "bottleneck": bottleneck_of(stages, workers)}


def _gpu_split(model: Any, paths: list[Path], device: DeviceSpec, batch: int, size: int, dtype: torch.dtype,
               errors: list[str]) -> dict[str, Any]:
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2.functional import resize

    mean, std = _MEAN.to(device.torch_device), _STD.to(device.torch_device)
    sums = {"read": 0.0, "decode": 0.0, "model": 0.0}
    items = 0
    t_timed = time.perf_counter()
    for b, start in enumerate(range(0, len(paths), batch)):
        t0 = time.perf_counter()
        datas = []
        for p in paths[start:start + batch]:
            try:
                with open(p, "rb", opener=_no_follow) as fh:
                    datas.append((p, torch.frombuffer(bytearray(fh.read(_MAX_FILE + 1)), dtype=torch.uint8)))
            except OSError as exc:
                errors.append(f"{p.name}: {exc.strerror or exc}")
        t1 = time.perf_counter()
        imgs = []
        try:
            imgs = decode_jpeg([d for _, d in datas], mode=ImageReadMode.RGB, device=device.torch_device)
        except Exception:  # noqa: BLE001 - decode one by one to name the bad file
            for p, d in datas:
                try:
                    imgs.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device.torch_device))
                except Exception as exc:  # noqa: BLE001
                    msg = f"{p.name}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
                    if msg not in errors:
                        errors.append(msg)
        if not imgs:
            continue
        x = torch.stack([((resize(i, [size, size], antialias=True).float() / 255) - mean) / std for i in imgs]).to(dtype)
        synchronize(device)
        t2 = time.perf_counter()
        with torch.inference_mode():
            to_host(model(x))
        t3 = time.perf_counter()
        if b == 0:
            t_timed = t3
            continue
        items += len(imgs)
        sums["read"] += (t1 - t0) * 1e3
        sums["decode"] += (t2 - t1) * 1e3
        sums["model"] += (t3 - t2) * 1e3
    wall = time.perf_counter() - t_timed
    if items == 0:
        return {"decode": "gpu", "workers": 0, "status": "error", "items": 0, "message": "no image decoded on the GPU"}
    stages = {k: v / items for k, v in sums.items()}
    return {"decode": "gpu", "workers": 0, "status": "ok", "items": items, "wall_s": wall,
            "items_per_s": items / wall, "stage_ms_per_item": stages, "bottleneck": bottleneck_of(stages, 0)}


def _model_only(model: Any, example: tuple[torch.Tensor, ...], device: DeviceSpec, rounds: int = 5) -> float:
    dev = tuple(x.to(device.torch_device) for x in example)
    with torch.inference_mode():
        to_host(model(*dev))
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(rounds):
            to_host(model(*dev))
        synchronize(device)
    return rounds * example[0].shape[0] / (time.perf_counter() - t0)


def measure_pipeline(config: PipelineConfig) -> PipelineOutcome:
    """Measure every split of one model device's pipeline; never raises for a failure."""
    device = config.device
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = PipelineOutcome(status="error", message="", device_name=device.torch_device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[config.precision]
    try:
        env = collect_environment()
        out.environment = env.to_dict()
        out.device_name = env.cpu.model if device.type == "cpu" else next(
            (a.name for a in env.accelerators if a.device in (device.torch_device, f"{device.type}:0")), device.torch_device)
        entry = get_model_entry(config.model)
        text = isinstance(entry.input, TokenInput)
        out.input_kind = "text" if text else "images"
        size = config.size if config.size else int(getattr(entry.input, "height", 224))
        workload = create_model(config.model)
        model = workload.module.to(device=device.torch_device, dtype=dtype).eval()
        example = tuple(x.to(dtype) if x.is_floating_point() else x for x in workload.example(config.batch_size, config.seed))
        out.model_only_per_s = _model_only(model, example, device)
        errors: list[str] = []
        with tempfile.TemporaryDirectory(prefix="devicebench-jpegs-") as tmp:
            paths: list[Path] = []
            if text:
                out.source = "synthetic sentences"
                dataset: Any = _Sentences(config.n_items, getattr(entry.input, "seq_len", 128))
            else:
                if config.images == "synthetic":
                    out.source = "synthetic"
                    paths = make_synthetic_jpegs(Path(tmp), config.n_items, config.seed)
                else:
                    out.source = str(config.images)
                    paths, out.skipped_files = list_jpegs(config.images, config.n_items)
                    if not paths:
                        raise DatasetError(f"no .jpg/.jpeg files in {config.images} ({out.skipped_files} other entries skipped)")
                dataset = _ImageFiles(paths, size)
            out.n_items = len(dataset)
            decode_cpu = config.decode in ("cpu", "auto") or text or device.type != "cuda"
            if decode_cpu:
                for w in config.workers:
                    try:
                        out.splits.append(_cpu_split(model, dataset, device, config.batch_size, w, dtype, errors, text))
                    except Exception as exc:  # noqa: BLE001 - one split failing does not end the sweep
                        out.splits.append({"decode": "cpu", "workers": w, "status": "oom" if is_out_of_memory(exc) else "error",
                                           "message": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"})
            if not text and config.decode in ("gpu", "auto"):
                if device.type == "cuda":
                    try:
                        out.splits.append(_gpu_split(model, paths, device, config.batch_size, size, dtype, errors))
                    except Exception as exc:  # noqa: BLE001
                        out.splits.append({"decode": "gpu", "workers": 0, "status": "error",
                                           "message": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"})
                elif config.decode == "gpu":
                    out.splits.append({"decode": "gpu", "workers": 0, "status": "unavailable",
                                       "message": f"GPU decoding needs the model on a CUDA GPU, not {device}"})
        out.decode_errors = errors[:50]
        out.status, out.message = "ok", ""
    except Exception as exc:  # noqa: BLE001
        out.status = "oom" if is_out_of_memory(exc) else "error"
        first = (str(exc).strip().splitlines() or [""])[0]
        out.message = f"{type(exc).__name__}: {first}"[:500]
        if isinstance(exc, UserError):
            out.status = "bad-input"
            out.message = str(exc)
        elif not is_out_of_memory(exc):
            out.message += "\n" + "".join(traceback.format_exception(exc))[-2000:]
    return out
