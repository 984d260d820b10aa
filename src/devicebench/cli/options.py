"""What several commands share: argument types, option groups and what is built from them
(prices, the timing policy, the results database), and the command line as recorded."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from devicebench.errors import ConfigError

if TYPE_CHECKING:
    from typing import TypeAlias

    from devicebench.cli.ui import Ui
    from devicebench.measure.config import TimingPolicy
    from devicebench.reports.cost import Prices
    from devicebench.results.store import Store

    #: What ``add_subparsers()`` returns; each command module's ``add_parsers`` takes it.
    Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

__all__ = [
    "Handler",
    "batch_sizes",
    "positive_int",
    "seconds",
    "fraction",
    "add_db",
    "add_wide",
    "model_name",
    "add_prices",
    "add_tune_options",
    "prices_from_args",
    "policy_from_args",
    "open_store",
    "command_line",
]

#: A command: parsed arguments in, exit code out (set on each parser as ``handler``).
Handler = Callable[[argparse.Namespace, "Ui"], int]


# -- argument types ---------------------------------------------------------------------------


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes must be integers like 1,8,32, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def seconds(text: str) -> float:
    raw = text.strip().lower().removesuffix("s")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 10 or 10s, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an accuracy like 0.5 or 50%, got {text!r}") from None
    value = value / 100 if text.strip().endswith("%") or value > 1 else value
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy in (0, 1], got {text!r}")
    return value


# -- option groups ----------------------------------------------------------------------------


def add_db(p: argparse.ArgumentParser, *, writing: bool) -> None:
    p.add_argument("--db", metavar="PATH", help="results database (default: $DEVICEBENCH_DB or the user data folder)")
    if writing:
        p.add_argument("--no-db", action="store_true", help="do not store the results")


def add_wide(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wide", action="store_true",
                   help="every statistic in the tables (p90/p99, IQR, n, end to end, first call, memory), "
                   "as wide as they need (default: compact tables that fit 80 columns)")


def model_name(text: str) -> str:
    """``infer PATH --name NAME``: one printable line of at most 80 characters."""
    name = text.strip()
    if not name or len(name) > 80 or not name.isprintable():
        raise argparse.ArgumentTypeError(f"a model name is 1 to 80 printable characters on one line, got {text!r}")
    return name


def add_prices(p: argparse.ArgumentParser) -> None:
    p.add_argument("--price", action="append", default=[], metavar="DEVICE=USD_PER_HOUR",
                   help="hourly price of a device: cpu=0.34, cuda=2.5, cuda:1=1.2 or 'RTX 4090=0.4' (repeatable; "
                   "default: the dated table of cloud list prices)")
    p.add_argument("--prices", metavar="FILE", help='JSON price file: {"hourly_usd": {...}, "electricity_usd_per_kwh": N} (default: none)')
    p.add_argument("--electricity", type=float, metavar="USD_PER_KWH", help="electricity price (default 0.15, assumed)")
    p.add_argument("--no-default-prices", action="store_true", help="use only the prices given, not the dated default table")


def add_tune_options(p: argparse.ArgumentParser, *, crossover: bool) -> None:
    g = p.add_argument_group("tuning (best against best, see docs/tuning.md)")
    g.add_argument("--tune", action="store_true",
                   help="try every faster configuration per device, check its answer against CPU fp32 eager, "
                   "and set the best CPU against the best GPU beside the naive eager comparison")
    g.add_argument("--retune", action="store_true", help="ignore the tuning cache and tune again (implies --tune)")
    g.add_argument("--candidates", metavar="V[,V...]",
                   help="only these variants (e.g. ort,compile,int8-dynamic); eager always runs (default: every variant that applies)")
    g.add_argument("--top", type=positive_int, default=3, metavar="N",
                   help="finalists re-measured fully per device (default 3)")
    if crossover:
        g.add_argument("--crossover", action="store_true",
                       help="sweep batch sizes with each device's tuned winner, copies timed apart, and find "
                       "the batch size where the GPU starts to win (default sizes 1,2,4,...,64)")


# -- what the options build -------------------------------------------------------------------


def prices_from_args(args: argparse.Namespace) -> Prices:
    from devicebench.reports.cost import Prices, load_price_file, parse_price_option

    prices = load_price_file(args.prices) if getattr(args, "prices", None) else Prices()
    for text in getattr(args, "price", []) or []:
        key, usd = parse_price_option(text)
        prices.hourly[key] = usd
        if not args.prices:
            prices.hourly_source = "option"
    if getattr(args, "electricity", None) is not None:
        if args.electricity < 0:
            raise ConfigError(f"electricity price must be >= 0, got {args.electricity}")
        prices.electricity_usd_per_kwh = args.electricity
        prices.electricity_source = "option"
    if getattr(args, "no_default_prices", False):
        prices.use_defaults = False
    return prices


def policy_from_args(args: argparse.Namespace) -> TimingPolicy:
    """The timing policy of ``--quick``, ``--min-time``, ``--max-time`` and ``--min-iters``."""
    from dataclasses import replace

    from devicebench.measure.config import DEFAULT_POLICY, QUICK_POLICY

    policy = QUICK_POLICY if args.quick else DEFAULT_POLICY
    changes: dict[str, Any] = {}
    if args.min_time is not None:
        changes["min_time_s"] = args.min_time
    if args.max_time is not None:
        changes["max_time_s"] = args.max_time
    if args.min_iters is not None:
        changes["min_iters"] = args.min_iters
    if changes and "max_time_s" not in changes and changes.get("min_time_s", 0) > policy.max_time_s:
        changes["max_time_s"] = changes["min_time_s"]
    if "max_time_s" in changes and "min_time_s" not in changes and changes["max_time_s"] < policy.min_time_s:
        changes["min_time_s"] = changes["max_time_s"]  # a short cap alone shortens the minimum too
    return replace(policy, **changes)


@overload
def open_store(args: argparse.Namespace, *, writing: Literal[False]) -> Store: ...
@overload
def open_store(args: argparse.Namespace, *, writing: bool) -> Store | None: ...
def open_store(args: argparse.Namespace, *, writing: bool) -> Store | None:
    """The results database of ``--db``; ``None`` when writing with ``--no-db``."""
    from devicebench.results.store import Store

    if writing and getattr(args, "no_db", False):
        return None
    return Store(args.db, readonly=not writing)


def check_outputs(args: argparse.Namespace, *names: str) -> None:
    """Check that each output file option (``--json``, ``--html``...) can be written, before
    anything is measured: a mistyped folder found after an hour of measuring costs the hour.

    ``--json`` needs its folder to exist (as it always did); a report's folder is created
    when it is written, so only its nearest existing folder must be writable.

    Raises:
        ConfigError: a target that is a folder, under a file, in a missing ``--json``
            folder, or in a folder this user cannot write.
    """
    import os
    from pathlib import Path

    for name in names or ("json", "html"):
        target = getattr(args, name, None)
        if not target or str(target) == "-":
            continue
        path = Path(target).expanduser()
        flag = "--" + name.replace("_", "-")
        if path.is_dir():
            raise ConfigError(f"{flag} {target} is a folder: give a file name")
        folder = path.parent
        if name == "json" and not folder.is_dir():
            raise ConfigError(f"cannot write {flag} {target}: folder {folder} does not exist")
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ConfigError(f"cannot write {flag} {target}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ConfigError(f"cannot write {flag} {target}: {folder if not path.exists() else path} is not writable")


def command_line() -> str:
    """The command as typed, recorded with each run."""
    return "devicebench " + shlex.join(sys.argv[1:])
