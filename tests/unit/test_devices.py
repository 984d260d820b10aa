"""Device discovery and parsing, and the environment record."""

from __future__ import annotations

import pytest
import torch

from devicebench.devices import available_devices, collect_environment, parse_devices
from devicebench.devices.discovery import DeviceSpec
from devicebench.errors import DeviceUnavailableError


def test_cpu_is_always_first() -> None:
    devices = available_devices()
    assert devices[0] == DeviceSpec("cpu")
    assert parse_devices("all") == devices
    assert parse_devices(None) == devices


def test_parse_lists_and_duplicates() -> None:
    assert parse_devices("cpu, cpu") == [DeviceSpec("cpu")]
    assert DeviceSpec.parse("cuda:1") == DeviceSpec("cuda", 1)
    assert DeviceSpec.parse("gpu").type == "cuda"


@pytest.mark.parametrize("text", ["tpu", "cuda:x"])
def test_unknown_devices_are_refused(text: str) -> None:
    with pytest.raises(DeviceUnavailableError):
        parse_devices(text)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_gpu_is_an_error_not_a_silent_cpu_run() -> None:
    with pytest.raises(DeviceUnavailableError, match="not available"):
        parse_devices("cuda")


def test_environment_describes_the_machine() -> None:
    env = collect_environment()
    assert env.cpu.logical_cores and env.cpu.logical_cores >= 1
    assert env.cpu.memory_total_gb > 0
    assert env.torch == torch.__version__
    assert env.packages["torch"]
    data = env.to_dict()
    assert type(env).from_dict(data) == env
    fp = env.fingerprint()
    assert fp["cpu"] == env.cpu.model and fp["torch"] == env.torch
