"""What an answer costs in money: hourly device prices and electricity, and the arithmetic.

Prices come from the user (``--price cuda=2.5``, a JSON file) or, failing that, from
:data:`DEFAULT_HOURLY_PRICES`: a small table of cloud on-demand list prices, dated and
labelled ``default-table`` wherever it is used, because such prices change and differ by
provider and region. Electricity applies to hardware you own; it is shown apart from the
hourly price (which, in a cloud, already includes the power).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicebench.errors import ConfigError

__all__ = [
    "PRICE_TABLE_DATE",
    "DEFAULT_HOURLY_PRICES",
    "DEFAULT_CPU_CORE_HOUR_USD",
    "DEFAULT_ELECTRICITY_USD_PER_KWH",
    "Price",
    "Prices",
    "parse_price_option",
    "load_price_file",
    "cost_per_million",
    "cost_of_seconds",
    "electricity_per_million",
]

#: When the default price table was compiled (USD, on-demand, per GPU, Linux, US regions).
#: Indicative list prices from the large clouds' public price pages as remembered on that
#: date, NOT fetched live: pass your own prices for decisions.
PRICE_TABLE_DATE = "2026-11-28"

#: USD per device-hour by name fragment (first match wins; specific fragments first).
DEFAULT_HOURLY_PRICES: tuple[tuple[str, float], ...] = (
    ("H200", 5.00),
    ("H100", 4.00),
    ("A100-SXM4-80GB", 3.70),
    ("A100", 3.00),
    ("L40S", 1.90),
    ("L4", 0.80),
    ("A10G", 1.00),
    ("A10", 1.00),
    ("T4", 0.53),
    ("V100", 3.06),
)

#: USD per CPU core-hour (one vCPU of a compute-optimised on-demand instance, same date).
DEFAULT_CPU_CORE_HOUR_USD = 0.0425

#: USD per kWh used where none is given (an assumed typical retail price; same date).
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.15


@dataclass(frozen=True)
class Price:
    """An hourly price and where it came from (``option``, ``file``, ``default-table``)."""

    usd_per_hour: float
    source: str
    basis: str  # what the hour buys, e.g. "1 x NVIDIA H100" or "2 CPU cores x 0.0425"


@dataclass
class Prices:
    """Prices to apply: per device type/label/name fragment, and electricity.

    ``hourly`` keys are matched against a record's device label (``cuda:0``), type (``cuda``,
    ``cpu``) then name fragment; a ``cpu`` price is for the whole machine's share in use.
    """

    hourly: dict[str, float] = field(default_factory=dict)
    hourly_source: str = "option"
    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH
    electricity_source: str = "default"
    use_defaults: bool = True

    def for_device(self, label: str, type_: str, name: str, cores: int | None = None) -> Price | None:
        """The hourly price of one device, or ``None`` when none is known."""
        for key in (label, type_):
            if key in self.hourly:
                return Price(self.hourly[key], self.hourly_source, f"{key} as given")
        lowered = name.lower()
        for key, usd in self.hourly.items():
            if key.lower() in lowered and key not in ("cpu", "cuda", "mps", "xpu"):
                return Price(usd, self.hourly_source, f"'{key}' as given")
        if not self.use_defaults:
            return None
        if type_ == "cpu":
            n = max(1, cores or 1)
            return Price(n * DEFAULT_CPU_CORE_HOUR_USD, "default-table",
                         f"{n} CPU core(s) x {DEFAULT_CPU_CORE_HOUR_USD} USD/h ({PRICE_TABLE_DATE})")
        for fragment, usd in DEFAULT_HOURLY_PRICES:
            if fragment.lower() in lowered:
                return Price(usd, "default-table", f"1 x {fragment} on demand ({PRICE_TABLE_DATE})")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hourly": dict(self.hourly),
            "hourly_source": self.hourly_source,
            "electricity_usd_per_kwh": self.electricity_usd_per_kwh,
            "electricity_source": self.electricity_source,
            "defaults_used": self.use_defaults,
            "default_table_date": PRICE_TABLE_DATE,
        }


def parse_price_option(text: str) -> tuple[str, float]:
    """``cuda=2.5`` or ``"RTX 4090=0.4"`` -> (key, USD per hour).

    Raises:
        ConfigError: not KEY=NUMBER, or a negative price.
    """
    key, sep, value = text.partition("=")
    try:
        usd = float(value)
    except ValueError:
        usd = -1.0
    if not sep or not key.strip() or usd < 0:
        raise ConfigError(f"a price is DEVICE=USD_PER_HOUR like cuda=2.5 or cpu=0.1, got {text!r}")
    return key.strip(), usd


def load_price_file(path: str | Path) -> Prices:
    """Prices from JSON: ``{"hourly_usd": {"cuda": 2.5, "cpu": 0.2}, "electricity_usd_per_kwh": 0.3}``.

    Raises:
        ConfigError: missing, unreadable, or not of that shape.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read price file {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"price file {p} is not JSON: {exc}") from None
    hourly = data.get("hourly_usd", {}) if isinstance(data, dict) else None
    if not isinstance(hourly, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in hourly.values()):
        raise ConfigError(f"price file {p}: 'hourly_usd' must map device names to non-negative numbers")
    prices = Prices(hourly={str(k): float(v) for k, v in hourly.items()}, hourly_source=f"file:{p.name}")
    if "electricity_usd_per_kwh" in data:
        value = data["electricity_usd_per_kwh"]
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"price file {p}: electricity_usd_per_kwh must be a non-negative number")
        prices.electricity_usd_per_kwh = float(value)
        prices.electricity_source = f"file:{p.name}"
    return prices


def cost_of_seconds(seconds: float, usd_per_hour: float) -> float:
    """USD for holding a device ``seconds`` at ``usd_per_hour``."""
    return seconds * usd_per_hour / 3600.0


def cost_per_million(items_per_s: float, usd_per_hour: float) -> float:
    """USD per million inferences (items) at a sustained throughput, the device fully used."""
    if items_per_s <= 0:
        raise ValueError("throughput must be positive")
    return cost_of_seconds(1e6 / items_per_s, usd_per_hour)


def electricity_per_million(joules_per_item: float, usd_per_kwh: float) -> float:
    """USD of electricity per million inferences (1 kWh = 3.6 MJ)."""
    return joules_per_item * 1e6 / 3.6e6 * usd_per_kwh
