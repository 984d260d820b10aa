"""Energy sources with fake counters (RAPL files, an NVML module) and the cost arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devicebench.errors import ConfigError
from devicebench.reports import cost
from devicebench.measure.energy import (
    EnergyMeter,
    EnergySession,
    NvmlCounter,
    RaplCounter,
    find_rapl_packages,
    lookup_tdp,
    tdp_estimate,
)


def _zone(root: Path, name: str, energy_uj: int, max_uj: int = 262_143_328_850) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    (zone / "name").write_text("package-" + name.split(":")[1] + "\n")
    return zone


class FakeNvml:
    """Stands in for pynvml: an energy counter in mJ that a test moves forward."""

    def __init__(self, supported: bool = True) -> None:
        self.mj = 1_000_000
        self.supported = supported
        self.shutdown = False

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-0000aaaa"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if not self.supported:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return self.mj


@pytest.fixture(autouse=True)
def _torch_sees_the_fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's cuda:0 is the fake NVML device (matched by UUID, as on a real machine)."""
    from devicebench.devices import nvml

    monkeypatch.setattr(nvml, "torch_identity", lambda index: nvml.GpuIdentity("0000aaaa"))


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rapl_packages_found_and_subzones_skipped(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", 5_000_000)
    _zone(tmp_path, "intel-rapl:1", 7_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 1)  # core sub-zone
    found = find_rapl_packages(tmp_path)
    assert [c.domain for c in found] == ["package-0", "package-1"]
    assert found[0].read_j() == pytest.approx(5.0)


def test_unreadable_rapl_is_skipped(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "intel-rapl:0", 5)
    (zone / "energy_uj").unlink()  # as when only root may read it
    assert find_rapl_packages(tmp_path) == []


def test_rapl_wrap_around_is_undone(tmp_path: Path) -> None:
    counter = RaplCounter(_zone(tmp_path, "intel-rapl:0", 0, max_uj=10_000_000))
    assert counter.delta_j(9.5, 0.5) == pytest.approx(1.0)  # 9.5 J -> wrapped at 10 J -> 0.5 J


def test_meter_subtracts_the_idle_baseline(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "intel-rapl:0", 0)
    clock = FakeClock()

    def sleep(s: float) -> None:  # idle: 20 W
        clock.t += s
        (zone / "energy_uj").write_text(str(int(float((zone / "energy_uj").read_text()) + 20e6 * s)))

    meter = EnergyMeter(find_rapl_packages(tmp_path), clock=clock, sleep=sleep)
    meter.idle(1.0)
    meter.start()
    clock.t += 2.0  # the loop: 2 s at 70 W = 140 J, of which 40 J idle
    (zone / "energy_uj").write_text(str(int(float((zone / "energy_uj").read_text()) + 140e6)))
    (reading,) = meter.stop(calls=100, items_per_call=4)
    assert reading.source == "rapl" and reading.measured
    assert reading.idle_power_w == pytest.approx(20.0)
    assert reading.joules_gross == pytest.approx(140.0)
    assert reading.joules == pytest.approx(100.0)
    assert reading.mean_power_w == pytest.approx(50.0)
    assert reading.joules_per_call == pytest.approx(1.0) and reading.joules_per_item == pytest.approx(0.25)


def test_nvml_counter_reads_millijoules() -> None:
    nvml = FakeNvml()
    counter = NvmlCounter(0, nvml)
    assert counter.read_j() == pytest.approx(1000.0)
    nvml.mj += 2500
    assert counter.read_j() == pytest.approx(1002.5)
    counter.close()
    assert nvml.shutdown


def test_gpu_session_uses_nvml_and_rapl(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", 0)
    nvml = FakeNvml()
    session = EnergySession("cuda", 0, "NVIDIA H100 80GB HBM3", rapl_root=tmp_path, nvml=nvml, idle_s=0)
    session.begin()
    nvml.mj += 50_000  # 50 J on the GPU
    energy = session.end(calls=10, items_per_call=1)
    assert energy["source"] == "nvml+rapl" and energy["measured"] is True
    gpu = energy["readings"][0]
    assert gpu["source"] == "nvml" and gpu["joules"] == pytest.approx(50.0) and gpu["joules_per_item"] == pytest.approx(5.0)


def test_gpu_without_energy_counter_falls_back_to_a_labelled_estimate(tmp_path: Path) -> None:
    session = EnergySession("cuda", 0, "Tesla T4", rapl_root=tmp_path, nvml=FakeNvml(supported=False), idle_s=0)
    session.begin()
    energy = session.end(calls=10, items_per_call=2)
    assert energy["source"] == "estimate-tdp" and energy["measured"] is False
    (reading,) = energy["readings"]
    assert reading["mean_power_w"] == pytest.approx(70.0) and "TDP table" in reading["note"]
    assert any("NVML" in n for n in energy["notes"]) and any("RAPL" in n for n in energy["notes"])


def test_cpu_without_rapl_is_an_estimate_per_core(tmp_path: Path) -> None:
    session = EnergySession("cpu", None, "Mystery CPU", cores=4, rapl_root=tmp_path, idle_s=0)
    session.begin()
    energy = session.end(calls=5, items_per_call=1)
    assert energy["source"] == "estimate-tdp" and not energy["measured"]
    assert energy["mean_power_w"] == pytest.approx(40.0) and "rough guess" in energy["readings"][0]["note"]


def test_cpu_with_rapl_is_measured(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", 0)
    session = EnergySession("cpu", None, "Mystery CPU", rapl_root=tmp_path, idle_s=0)
    session.begin()
    energy = session.end(calls=5, items_per_call=1)
    assert energy["source"] == "rapl" and energy["measured"] is True


def test_tdp_table_lookup() -> None:
    assert lookup_tdp("NVIDIA H100 PCIe") == 350.0 and lookup_tdp("NVIDIA H100 80GB HBM3") == 700.0
    assert lookup_tdp("NVIDIA L40S") == 350.0 and lookup_tdp("NVIDIA L4") == 72.0
    assert lookup_tdp("Unknown thing") is None
    assert tdp_estimate("Unknown GPU", seconds=1, calls=1, items_per_call=1, is_cpu=False).joules == 0.0


def test_cost_arithmetic() -> None:
    # 1000 items/s for 1e6 items = 1000 s; at 3.6 USD/h = 1 USD.
    assert cost.cost_per_million(1000.0, 3.6) == pytest.approx(1.0)
    assert cost.cost_of_seconds(1800, 2.0) == pytest.approx(1.0)
    # 3.6 J per item x 1e6 = 1 kWh.
    assert cost.electricity_per_million(3.6, 0.25) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        cost.cost_per_million(0.0, 1.0)


def test_prices_lookup_order_and_defaults() -> None:
    prices = cost.Prices(hourly={"cuda:1": 9.0, "cuda": 2.0, "RTX 4090": 0.4})
    assert prices.for_device("cuda:1", "cuda", "NVIDIA H100", None).usd_per_hour == 9.0
    assert prices.for_device("cuda:0", "cuda", "NVIDIA H100", None).usd_per_hour == 2.0
    assert prices.for_device("mps", "mps", "NVIDIA GeForce RTX 4090", None).usd_per_hour == 0.4
    default = cost.Prices().for_device("cpu", "cpu", "x", 4)
    assert default.source == "default-table" and default.usd_per_hour == pytest.approx(4 * cost.DEFAULT_CPU_CORE_HOUR_USD)
    assert cost.Prices(use_defaults=False).for_device("cuda:0", "cuda", "NVIDIA T4", None) is None


def test_price_options_and_files(tmp_path: Path) -> None:
    assert cost.parse_price_option("RTX 4090=0.4") == ("RTX 4090", 0.4)
    for bad in ("cuda", "cuda=-1", "=3", "cuda=abc"):
        with pytest.raises(ConfigError):
            cost.parse_price_option(bad)
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"hourly_usd": {"cuda": 1.5}, "electricity_usd_per_kwh": 0.3}))
    prices = cost.load_price_file(good)
    assert prices.hourly == {"cuda": 1.5} and prices.electricity_usd_per_kwh == 0.3
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"hourly_usd": {"cuda": "cheap"}}))
    with pytest.raises(ConfigError):
        cost.load_price_file(bad)
    with pytest.raises(ConfigError):
        cost.load_price_file(tmp_path / "missing.json")
