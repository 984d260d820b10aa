"""What this machine is: CPU, memory, accelerators, and the software that runs on them.

Recorded with every result, so that two results are never compared without knowing whether
they came from the same kind of machine.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from devicebench.devices.discovery import DeviceSpec, device_kind_available
from devicebench.devices.nvml import normalise_uuid

__all__ = ["CpuInfo", "AcceleratorInfo", "Environment", "collect_environment", "cpu_info", "usable_cores",
           "cuda_capability"]

#: ISA extensions worth knowing for inference speed (matrix and vector units).
_INTERESTING_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    # Arm
    "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm",
)

#: Python packages whose versions change results.
_PACKAGES = (
    "devicebench", "torch", "torchvision", "numpy", "transformers", "onnxruntime",
    "onnxruntime-gpu", "timm", "nvidia-ml-py", "openvino",
)


@dataclass
class CpuInfo:
    model: str
    arch: str
    physical_cores: int | None
    logical_cores: int | None
    affinity_cores: int | None
    flags: list[str]
    torch_capability: str | None
    memory_total_gb: float
    freq_max_mhz: float | None = None


@dataclass
class AcceleratorInfo:
    device: str
    type: str
    name: str
    memory_total_gb: float | None = None
    compute_capability: str | None = None
    multiprocessors: int | None = None
    driver: str | None = None
    runtime: str | None = None
    #: What identifies the card physically (NVML is matched by these, never by index).
    uuid: str | None = None
    pci_bus_id: str | None = None


@dataclass
class Environment:
    """The machine and software a result was measured on."""

    hostname: str
    os: str
    python: str
    torch: str
    cpu: CpuInfo
    accelerators: list[AcceleratorInfo] = field(default_factory=list)
    torch_threads: int = 0
    torch_interop_threads: int = 0
    cuda_version: str | None = None
    hip_version: str | None = None
    cudnn_version: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    #: How fp32 matrix products and convolutions ran on CUDA in the process that measured:
    #: ``ieee`` (fp32 proper: every measuring worker unless the ``tf32`` variant), ``tf32``
    #: or ``mixed`` (torch's defaults: cuDNN TF32 on, cuBLAS off); ``None`` in older files.
    fp32_math: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Environment:
        data = dict(data)
        data["cpu"] = CpuInfo(**data["cpu"])
        data["accelerators"] = [AcceleratorInfo(**a) for a in data.get("accelerators", [])]
        return cls(**data)

    def fingerprint(self) -> dict[str, Any]:
        """The fields that must match before two results are compared without a warning."""
        return {
            "cpu": self.cpu.model,
            "cores": self.cpu.affinity_cores or self.cpu.logical_cores,
            "accelerators": [a.name for a in self.accelerators],
            "driver": sorted({a.driver for a in self.accelerators if a.driver}),
            "torch": self.torch,
            "cuda": self.cuda_version,
            "os": self.os,
        }


def _proc_cpuinfo() -> tuple[str | None, list[str]]:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return None, []
    model = None
    flags: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = value.split()
    return model, flags


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_info() -> CpuInfo:
    """The CPU: model, cores (physical, logical, usable by this process), ISA flags, memory."""
    import psutil
    import torch

    model, flags = _proc_cpuinfo()
    if model is None and sys.platform == "darwin":
        model = _sysctl("machdep.cpu.brand_string")
        extra = (_sysctl("machdep.cpu.features") or "") + " " + (
            _sysctl("machdep.cpu.leaf7_features") or ""
        )
        flags = [f.lower().replace(".", "_") for f in extra.split()]
    if not model:
        model = platform.processor() or platform.machine() or "unknown"
    try:
        affinity = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        affinity = None
    try:
        freq = psutil.cpu_freq()
        fmax = float(freq.max) if freq and freq.max else None
    except (OSError, NotImplementedError, AttributeError):
        fmax = None
    capability = None
    get_cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if get_cap is not None:
        try:
            capability = str(get_cap())
        except RuntimeError:
            capability = None
    flagset = set(flags)
    return CpuInfo(
        model=model,
        arch=platform.machine(),
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        affinity_cores=affinity,
        flags=[f for f in _INTERESTING_FLAGS if f in flagset],
        torch_capability=capability,
        memory_total_gb=round(psutil.virtual_memory().total / 2**30, 2),
        freq_max_mhz=fmax,
    )


def _nvidia_driver() -> str | None:
    try:
        import pynvml  # from nvidia-ml-py, optional
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML raises its own hierarchy; any failure means unknown
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def accelerators() -> list[AcceleratorInfo]:
    """Every accelerator torch can use, with what it says about itself."""
    import torch

    found: list[AcceleratorInfo] = []
    n_cuda = device_kind_available("cuda")
    if n_cuda:
        driver = _nvidia_driver() if torch.version.hip is None else None
        for i in range(n_cuda):
            props = torch.cuda.get_device_properties(i)
            found.append(_from_properties(
                f"cuda:{i}", props, compute_capability=f"{props.major}.{props.minor}",
                multiprocessors=props.multi_processor_count, driver=driver,
                runtime=f"HIP {torch.version.hip}" if torch.version.hip else f"CUDA {torch.version.cuda}",
                uuid=normalise_uuid(getattr(props, "uuid", None)), pci_bus_id=_pci_text(props)))
    if device_kind_available("mps"):
        found.append(
            AcceleratorInfo(device="mps", type="mps", name=f"Apple MPS ({platform.machine()})",
                            runtime=f"macOS {platform.mac_ver()[0]}")
        )
    for i in range(device_kind_available("xpu")):
        props = torch.xpu.get_device_properties(i)
        found.append(_from_properties(f"xpu:{i}", props, driver=getattr(props, "driver_version", None)))
    return found


def _pci_text(props: Any) -> str | None:
    try:
        return f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    except (AttributeError, TypeError):
        return None


def _from_properties(device: str, props: Any, **extra: Any) -> AcceleratorInfo:
    """An accelerator as torch's device properties (CUDA and XPU alike) describe it."""
    return AcceleratorInfo(device=device, type=device.partition(":")[0], name=props.name,
                           memory_total_gb=round(props.total_memory / 2**30, 2), **extra)


def _package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect_environment() -> Environment:
    """Describe this machine and its software, as recorded with every result."""
    import torch

    from devicebench.devices.prepare import fp32_math_in_force

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    interesting_env = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                       "CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "OPENBLAS_CORETYPE")
    return Environment(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        torch=str(torch.__version__),  # a plain str: reading a record must not import torch
        cpu=cpu_info(),
        accelerators=accelerators(),
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        cuda_version=torch.version.cuda,
        hip_version=torch.version.hip,
        cudnn_version=str(cudnn) if cudnn else None,
        packages=_package_versions(),
        env_vars={k: os.environ[k] for k in interesting_env if k in os.environ},
        fp32_math=fp32_math_in_force(),
    )


def cuda_capability(env: Environment | None, device: DeviceSpec) -> tuple[int, int] | None:
    """The compute capability of a CUDA device as a worker recorded it in ``env``, or ``None``
    when ``env`` does not say (no environment, no such device, a ROCm build).

    The parent of a run plans from this (bf16, TF32) rather than asking CUDA itself: only
    workers touch the device.
    """
    if env is None or device.type != "cuda" or env.hip_version:
        return None
    wanted = f"cuda:{device.index or 0}"
    for acc in env.accelerators:
        if acc.device == wanted and acc.compute_capability:
            major, _, minor = acc.compute_capability.partition(".")
            if major.isdigit() and minor.isdigit():
                return int(major), int(minor)
    return None
