"""Sustained mode: windows of throughput, device state read between windows, throttling named."""

from __future__ import annotations

import pytest

from devicebench.devices.nvml import GpuIdentity
from devicebench.measure.sustained import NvmlProbe, run_sustained, throttle_summary, SustainedWindow
from devicebench.results.parts import SustainedRun


class FakeTimer:
    """Each call 'takes' a time that grows as the run goes on (a throttling device)."""

    name = "fake"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls = 0

    def time_ns(self, fn) -> int:  # type: ignore[no-untyped-def]
        fn()
        self.calls += 1
        took = 0.010 * (1 + self.clock[0] / 10.0)  # 10 ms, slowing 10% per second of run
        self.clock[0] += took
        return int(took * 1e9)


class FakeNvml:
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 1, 0

    def __init__(self) -> None:
        self.reads = 0

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return "GPU-0000aaaa"

    def nvmlDeviceGetClockInfo(self, h: int, kind: int) -> int:
        self.reads += 1
        return 1980 - 10 * self.reads if kind == 0 else 2619

    def nvmlDeviceGetTemperature(self, h: int, kind: int) -> int:
        return 60 + self.reads

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        raise RuntimeError("not supported")


def test_windows_show_the_slowdown_and_device_state() -> None:
    t = [0.0]
    nvml = FakeNvml()
    result = run_sustained(FakeTimer(t), lambda: None, duration_s=4.0, window_s=0.5, items_per_call=8,
                           probe=NvmlProbe(0, nvml, GpuIdentity("0000aaaa")), clock=lambda: t[0])
    wins = result["windows"]
    assert len(wins) == 8 and result["device_probe"] == "nvml"
    assert wins[0]["items_per_s"] > wins[-1]["items_per_s"] * 1.2
    assert wins[0]["sm_clock_mhz"] > wins[-1]["sm_clock_mhz"] and wins[-1]["temperature_c"] > 60
    assert wins[0]["power_w"] is None  # not reported by this GPU: left empty, not invented
    assert nvml.reads == 2 * 8  # SM and memory clocks once per window, between windows
    assert result["summary"]["change"] < -0.05 and "slowing down" in result["summary"]["text"]


def test_steady_device_is_not_called_throttled() -> None:
    wins = [SustainedWindow(t_end_s=i, calls=100, items_per_s=1000.0 + (i % 2), median_ms=1.0) for i in range(12)]
    summary = throttle_summary(wins)
    assert abs(summary["change"]) < 0.01 and "slowing down" not in summary["text"]
    assert throttle_summary(wins[:2])["change"] is None


def test_report_draws_the_sustained_curve() -> None:
    pytest.importorskip("matplotlib")
    from devicebench.reports.html import render_html
    from report_fixtures import fixed_run

    run, recs = fixed_run()
    t = [0.0]
    recs[1].sustained = SustainedRun.from_dict(run_sustained(FakeTimer(t), lambda: None, duration_s=2.0, window_s=0.5,
                                                             items_per_call=1, probe=NvmlProbe(0, FakeNvml(), GpuIdentity("0000aaaa")),
                                                             clock=lambda: t[0]))
    page = render_html(run, recs[:2])
    assert 'id="sustained-table"' in page and "Sustained throughput over time" in page and "SM clock" in page
