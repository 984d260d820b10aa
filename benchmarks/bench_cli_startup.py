"""How long the read commands take, set against ``python -c "import torch"`` in the same run.

Each command runs in a fresh interpreter against a results database holding two small
runs (made first with ``devicebench infer tinycnn-tiny``, at least 20 samples each; ``compare``
imports neither numpy nor scipy, whatever the sample counts); the wall time of each is the
median of ``--repeat`` runs, interleaved with the ``import torch`` baseline so that a change
in the machine's load touches both. Issue 14's target: every read command under 0.5 s on 2
cores; ``devices`` imports torch once (about the baseline).

Usage (on a quiet machine; numbers on a shared one are noise)::

    python benchmarks/bench_cli_startup.py --repeat 7 --out docs/results/cli-startup.md
    python benchmarks/bench_cli_startup.py --quick      # one repetition, printed
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "models": ["models"],
    "history": ["history"],
    "show last": ["show", "last"],
    "report last --md -": ["report", "last", "--md", "-"],
    "compare A B": ["compare", "{a}", "{b}"],
    "devices": ["devices"],
}
TARGET_S = 0.5


def timed(argv: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command (default 7)")
    parser.add_argument("--quick", action="store_true", help="one run of each, printed (a smoke test)")
    parser.add_argument("--out", type=Path, help="write the Markdown result here (default: print it)")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave devicebench's bytecode alone (default: compile it first, as an install does)")
    args = parser.parse_args()
    if not args.no_compile:
        # A pip install writes each module's bytecode; a checkout run with
        # PYTHONDONTWRITEBYTECODE=1 (as on the development VM) compiles every module on every
        # start: about 0.2 CPU-s per command there, which is not what a user waits for.
        compile_code = ("import compileall, os, devicebench; "
                        "compileall.compile_dir(os.path.dirname(devicebench.__file__), quiet=1)")
        subprocess.run([sys.executable, "-c", compile_code], check=True)
    repeat = 1 if args.quick else args.repeat
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        db = str(Path(tmp) / "results.db")
        env = dict(os.environ, DEVICEBENCH_DB=db, COLUMNS="120")
        for _ in range(2):
            subprocess.run([sys.executable, "-m", "devicebench", "infer", "tinycnn-tiny", "--device", "cpu",
                            "--batch-size", "1", "--quick", "--max-time", "0.5", "--min-iters", "20"],
                           check=True, capture_output=True, env=env, cwd=tmp, stdin=subprocess.DEVNULL)
        ids = subprocess.run([sys.executable, "-c", ("from devicebench.results.store import Store; "
                              f"print(*[r.run_id for r in Store({db!r}).runs()])")],
                             check=True, capture_output=True, text=True, env=env).stdout.split()
        times: dict[str, list[float]] = {name: [] for name in ["python -c 'import torch'", *COMMANDS]}
        for _ in range(repeat):
            times["python -c 'import torch'"].append(timed([sys.executable, "-c", "import torch"], env, tmp))
            for name, argv in COMMANDS.items():
                argv = [a.format(a=ids[1], b=ids[0]) for a in argv]
                times[name].append(timed([sys.executable, "-m", "devicebench", *argv], env, tmp))
    baseline = statistics.median(times["python -c 'import torch'"])
    lines = [
        "# Start-up time of the read commands",
        "",
        (f"`python benchmarks/bench_cli_startup.py{' --quick' if args.quick else f' --repeat {repeat}'}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}."),
        "",
        (f"Median wall time of {repeat} run(s) of each, a fresh interpreter each time"
         f"{'' if args.no_compile else ', with devicebench compiled to bytecode first (as installed)'}; target for the read "
        f"commands: under {TARGET_S} s."),
        "",
        "| Command | Median (s) | Min (s) | vs `import torch` |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        med = statistics.median(values)
        flag = "" if name in ("devices", "python -c 'import torch'") or med < TARGET_S else " (over target)"
        lines.append(f"| `{name}` | {med:.2f}{flag} | {min(values):.2f} | {med / baseline:.2f}x |")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"written to {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
