"""`devicebench devices`: quick by default, the memory-bandwidth probe on request."""

from __future__ import annotations

import json


def test_devices_is_quick_by_default_and_measures_bandwidth_on_request(run_cli) -> None:  # type: ignore[no-untyped-def]
    plain = run_cli("devices", "--json", "-")
    assert plain.returncode == 0, plain.stderr
    doc = json.loads(plain.stdout)
    assert "bandwidth" not in doc  # no copy probe unless asked
    assert [t["device"] for t in doc["transfer"]][:1] == ["cpu"]  # the CPU's copy row: not applicable

    probed = run_cli("devices", "--bandwidth", "--json", "-")
    assert probed.returncode == 0, probed.stderr
    cpu = [b for b in json.loads(probed.stdout)["bandwidth"] if b["device"] == "cpu"]
    assert len(cpu) == 1 and not cpu[0]["error"], cpu
    assert cpu[0]["peak_gbps"] > 0.1 and cpu[0]["peak_gbps"] >= cpu[0]["median_gbps"]
