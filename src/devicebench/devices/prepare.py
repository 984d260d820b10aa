"""What a worker does to its device before it measures anything: make it the current device,
and say what "fp32" means there.

Both are process-wide settings, so only a worker (one configuration per process) calls them,
never the parent that plans a run.

* **The current device.** ``torch.cuda.Event`` and ``torch.cuda.Stream`` are created on the
  *current* device, and an event recorded without a stream goes on the current device's
  stream. Without ``torch.cuda.set_device``, a configuration on ``cuda:1`` would record its
  timing events, and capture its CUDA graph, on ``cuda:0``: the time read would be about the
  launch time. :func:`use_device` makes the measured device current.
* **fp32 is IEEE fp32.** cuDNN runs fp32 convolutions in TF32 by default (a 10-bit mantissa
  in the products), and ``torch.set_float32_matmul_precision("high")`` does the same to matrix
  products. A column labelled fp32 must be fp32, so :func:`set_fp32_math` turns TF32 off
  unless the configuration asked for it (the ``tf32`` variant, its own numeric class).
"""

from __future__ import annotations

from typing import Any

from devicebench.devices.discovery import DeviceSpec

__all__ = ["fp32_math_in_force", "set_fp32_math", "use_device"]


def use_device(device: DeviceSpec, cuda: Any | None = None) -> None:
    """Make ``device`` the current device of this process (CUDA/ROCm and XPU; a no-op elsewhere).

    Args:
        device: the device this worker measures.
        cuda: a module with ``torch.cuda``'s ``set_device`` (tests pass a recorder).
    """
    import torch

    if device.type == "cuda":
        if cuda is None:
            if not torch.cuda.is_available():
                return  # nothing to make current: what runs next says the device is missing
            cuda = torch.cuda
        cuda.set_device(device.index or 0)
    elif device.type == "xpu" and torch.xpu.is_available():
        torch.xpu.set_device(device.index or 0)


def set_fp32_math(*, tf32: bool) -> str:
    """Set how fp32 matrix products and convolutions run on CUDA in this process.

    ``tf32=False`` (every configuration but the ``tf32`` variant): IEEE fp32 for cuBLAS and
    cuDNN, and the ``highest`` fp32 matmul precision (which also keeps oneDNN on the CPU from
    using bf16 inside fp32 products). ``tf32=True``: TF32 for both.

    Returns:
        ``"ieee"`` or ``"tf32"``, what is now in force (see :func:`fp32_math_in_force`).
    """
    import torch

    if tf32:
        torch.set_float32_matmul_precision("high")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return fp32_math_in_force()


def fp32_math_in_force() -> str:
    """``"ieee"`` when neither cuBLAS nor cuDNN may use TF32 for fp32 work, ``"tf32"`` when
    both may, ``"mixed"`` otherwise (a process that set one flag and not the other)."""
    import torch

    flags = (bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32))
    if flags == (False, False):
        return "ieee"
    return "tf32" if flags == (True, True) else "mixed"
