"""What a configuration costs beyond its measurement: a fresh process per configuration,
spawned (a new interpreter importing torch each time) against forked from the run's fork
server (torch imported once).

For each launcher the same command runs end to end (``devicebench run --quick --no-train
--no-db`` by default), and its wall time is set against the time the workers actually spent
warming up and measuring (``timing.warmup_s + timing.elapsed_s (+ e2e_elapsed_s)`` of each
record in the run's JSON). The overhead per configuration is (wall - measuring) / configs.
The target of issue 14 is wall within 1.3x of measuring with the fork server.

It also checks ``--quick``'s promise (a 3 s cap on measuring each configuration): the
longest measuring loop and the longest whole configuration are reported.

Where the rest goes is printed phase by phase, from the timeline each record carries
(``timeline``: Unix seconds of the parent's request, the worker's start, the first call's start,
the end of the timed loops, the worker's end, the parent's reading of the answer;
docs/results-schema.md) and the benchmark's own clock around the command: the command's start
until it asks for the first configuration (the interpreter and imports, timed apart with
``devicebench --version``; the fork server's start, or a warm server's answer; device
discovery), then per configuration launching its worker, building the model, the first call,
warm-up, the timed loops, what follows them, and the parent between configurations; then
everything after the last configuration (tables, JSON, HTML report, the interpreter's exit).
devicebench's own modules are compiled to bytecode first, as an install does
(``--no-compile`` to leave them).

Usage (on a quiet machine; the numbers on a shared one are noise)::

    python benchmarks/bench_config_overhead.py --repeat 3 --out docs/results/config-overhead.md
    python benchmarks/bench_config_overhead.py --quick     # a smoke test: tinycnn-tiny, 1 repeat
    python benchmarks/bench_config_overhead.py --repeat 3 --launchers fork   # the fork server only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

LAUNCHERS = ("spawn", "fork", "warm")
#: The sockets of the warm servers this benchmark starts (stopped at its end).
RUNTIME_DIR = tempfile.mkdtemp(prefix="dbw-bench-", dir="/tmp" if os.path.isdir("/tmp") else None)


#: The phases of one configuration, in order: (key, what a reader sees).
CONFIG_PHASES = (
    ("launch", "launch: request -> worker starts (a fork, or a new interpreter; may wait for the server)"),
    ("build", "build: environment, model built, on the device"),
    ("first_call", "first call (lazy initialisation)"),
    ("warmup", "warm-up"),
    ("loops", "timed loops"),
    ("between", "energy, progress, collection around the loops"),
    ("after", "after the loops: memory, answer, worker exit, parent reads it"),
    ("parent", "parent until the next request (record kept, line printed)"),
)


def _phases(records: list[dict], started: float, ended: float) -> dict | None:
    """Seconds per phase from the records' timelines and the command's start and end (Unix
    time); None when a record has no timeline (an older devicebench)."""
    lines = [r.get("timeline") or {} for r in records]
    keys = ("requested", "worker_start", "first_call_start", "loop_end", "answered")
    if not records or not all(all(k in line for k in keys) for line in lines):
        return None
    configs = []
    for i, (r, line) in enumerate(zip(records, lines)):
        t = r.get("timing") or {}
        first = ((r.get("cold_start") or {}).get("first_inference_ms") or 0.0) / 1e3
        warm = (t.get("warmup_s") or 0.0) + (t.get("e2e_warmup_s") or 0.0)
        loops = (t.get("elapsed_s") or 0.0) + (t.get("e2e_elapsed_s") or 0.0)
        next_request = lines[i + 1]["requested"] if i + 1 < len(lines) else line["answered"]
        configs.append({
            "name": f"{r['model']} {r['device']['type']} b{r['batch_size']}",
            "launch": line["worker_start"] - line["requested"],
            "build": line["first_call_start"] - line["worker_start"],
            "first_call": first, "warmup": warm, "loops": loops,
            "between": line["loop_end"] - line["first_call_start"] - first - warm - loops,
            "after": line["answered"] - line["loop_end"],
            "parent": next_request - line["answered"],
        })
    return {"before_first": lines[0]["requested"] - started, "configs": configs,
            "after_last": ended - lines[-1]["answered"]}


def run_once(command: list[str], launcher: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        out = Path(tmp) / "run.json"
        env = dict(os.environ, DEVICEBENCH_LAUNCHER=launcher, PYTHONUNBUFFERED="1", DEVICEBENCH_RUNTIME_DIR=RUNTIME_DIR)
        env.pop("DEVICEBENCH_SERVER_IDLE_S", None)
        started = time.time()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "devicebench", *command, "--json", str(out)], check=False,
                              capture_output=True, text=True, env=env, cwd=tmp, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        ended = started + wall
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"{launcher}: exit {done.returncode}\n{done.stderr[-3000:]}")
        records = json.loads(out.read_text())["records"]
    measuring, longest_loop, medians = 0.0, 0.0, []
    build = first_call = 0.0
    for r in records:
        t = r.get("timing") or {}
        loop = (t.get("elapsed_s") or 0.0) + (t.get("e2e_elapsed_s") or 0.0)
        measuring += (t.get("warmup_s") or 0.0) + loop
        longest_loop = max(longest_loop, t.get("elapsed_s") or 0.0)
        cold = r.get("cold_start") or {}
        build += (cold.get("build_s") or 0.0) + (cold.get("to_device_s") or 0.0)
        first_call += (cold.get("first_inference_ms") or 0.0) / 1e3
        lat = r.get("latency_ms") or {}
        medians.append((r["model"], r["device"]["type"], r["batch_size"], lat.get("median")))
    return {"wall_s": wall, "measuring_s": measuring, "configs": len(records), "longest_loop_s": longest_loop,
            "medians": medians, "build_s": build, "first_call_s": first_call,
            "phases": _phases(records, started, ended)}


def start_alone() -> float:
    """Wall seconds of ``devicebench --version``: the interpreter and the CLI's imports alone."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "devicebench", "--version"], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def phase_lines(launcher: str, runs: list[dict], start_s: float) -> list[str]:
    """The breakdown of one launcher's runs (medians), as Markdown lines."""
    phases = [r["phases"] for r in runs if r["phases"] is not None]
    if not phases or len({len(p["configs"]) for p in phases}) != 1:
        return [f"({launcher}: the records carry no timeline: a devicebench older than the breakdown)"]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}"

    names = [c["name"] for c in phases[0]["configs"]]
    lines = [(f"{launcher}: **{med([p['before_first'] for p in phases])} s before the first configuration** "
              f"(interpreter and CLI imports ~{start_s:.2f} s, timed apart with `--version`; the rest: the fork "
              "server's start or a warm server's answer, device discovery, planning), then per configuration:"), "",
             "| Phase | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, words in CONFIG_PHASES:
        lines.append(f"| {words} | " + " | ".join(med([p["configs"][i][key] for p in phases])
                                                   for i in range(len(names))) + " |")
    lines += ["", (f"then **{med([p['after_last'] for p in phases])} s after the last configuration** (the server "
                   "stopped or left, tables, JSON, the HTML report, the interpreter's exit).")]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per launcher, interleaved (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tinycnn-tiny at batch 1,2 on the CPU, once")
    parser.add_argument("--command", help="the devicebench arguments to time (default: run --quick --no-train --no-db)")
    parser.add_argument("--out", type=Path, help="write the Markdown result here (default: print it)")
    parser.add_argument("--launchers", default=",".join(LAUNCHERS),
                        help="which launchers to time, comma-separated (default: spawn,fork)")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave devicebench's bytecode alone (default: compile it first, as an install does)")
    args = parser.parse_args()
    if not args.no_compile:
        # With PYTHONDONTWRITEBYTECODE=1 (as on the development VM) and an editable install, every
        # process (the command, the fork server, spawned workers) would compile devicebench again.
        compile_code = ("import compileall, os, devicebench; "
                        "compileall.compile_dir(os.path.dirname(devicebench.__file__), quiet=1)")
        subprocess.run([sys.executable, "-c", compile_code], check=True)
    launchers = tuple(x.strip() for x in args.launchers.split(",") if x.strip() in LAUNCHERS)
    if not launchers:
        parser.error(f"--launchers: one or more of {', '.join(LAUNCHERS)}")
    if args.command:
        command = args.command.split()
    elif args.quick:
        command = ["infer", "tinycnn-tiny", "--device", "cpu", "--batch-size", "1,2,4", "--quick", "--max-time", "0.5",
                   "--no-db"]
    else:
        command = ["run", "--quick", "--no-train", "--no-db", "--devices", "all"]
    repeat = 1 if args.quick else args.repeat
    results: dict[str, list[dict]] = {launcher: [] for launcher in launchers}
    starts = [start_alone()]
    if "warm" in launchers:
        # A user's first command starts the warm server (and pays its imports); the timed runs
        # below are the commands after it.
        res = run_once(command, "warm")
        results["warm, first command"] = [res]
        print(f"[0/{repeat}] warm, first command: wall {res['wall_s']:.1f} s, measuring {res['measuring_s']:.1f} s",
              file=sys.stderr)
    for i in range(repeat):
        starts.append(start_alone())
        for launcher in launchers:  # interleaved, so a change in the machine's load hits both
            res = run_once(command, launcher)
            results[launcher].append(res)
            print(f"[{i + 1}/{repeat}] {launcher}: wall {res['wall_s']:.1f} s, measuring {res['measuring_s']:.1f} s, "
                  f"{res['configs']} configurations", file=sys.stderr)

    lines = [
        "# Overhead per configuration: spawned workers, a fork server per command, the warm server",
        "",
        (f"`python benchmarks/bench_config_overhead.py{' --quick' if args.quick else f' --repeat {repeat}'}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}."),
        "",
        (f"Command: `devicebench {' '.join(command)}`. Wall: the whole command; measuring: warm-up plus timed loops "
        "of every configuration (from its JSON); overhead = (wall - measuring) / configurations. Medians over "
        f"{repeat} interleaved run(s). spawn: a new interpreter per configuration; fork: a fork server started "
        "and stopped with each command; warm: the warm server kept between commands (the default), started by "
        "one untimed command before the timed ones, whose figures are its own row (\"warm, first command\")."),
        "",
        ("| Launcher | Configs | Wall (s) | Measuring (s) | Wall / measuring, median of runs [range] | "
         "Overhead per config (s) [range] | Longest timed loop (s) |"),
        "|---|---|---|---|---|---|---|",
    ]
    phases = ["", ("Where the overhead goes (medians, seconds, all configurations together): building the model and "
                   "moving it to its device, the first call (lazy initialisation, not part of the warm-up), and the "
                   "rest: the command's own start, the fork server's imports (torch and the models' libraries) or "
                   "each spawned interpreter's, the workers' start and exit, tables and the HTML report."), "",
              "| Launcher | Build + to device | First call | Rest |", "|---|---|---|---|"]
    summary = {}
    for launcher, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        meas = statistics.median(r["measuring_s"] for r in runs)
        n = runs[0]["configs"]
        overhead = (wall - meas) / max(n, 1)
        longest = max(r["longest_loop_s"] for r in runs)
        # Each run's own ratio: the loops stop early when their interval is tight enough, so a
        # run's measuring time varies while its overhead does not (a ratio of two medians of
        # different runs would flatter or blame the launcher).
        ratios = sorted(r["wall_s"] / r["measuring_s"] for r in runs)
        per_config = sorted((r["wall_s"] - r["measuring_s"]) / max(n, 1) for r in runs)
        ratio = statistics.median(ratios)
        summary[launcher] = (wall, meas, statistics.median(per_config), ratio)
        lines.append(f"| {launcher} | {n} | {wall:.1f} | {meas:.1f} | {ratio:.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}] | "
                     f"{statistics.median(per_config):.2f} [{per_config[0]:.2f}-{per_config[-1]:.2f}] | {longest:.2f} |")
        build = statistics.median(r["build_s"] for r in runs)
        first = statistics.median(r["first_call_s"] for r in runs)
        phases.append(f"| {launcher} | {build:.2f} | {first:.2f} | {wall - meas - build - first:.2f} |")
    lines += phases
    lines += ["", ("Phase by phase (medians, seconds), from each record's `timeline` and this benchmark's clock "
                   "around the command. Measuring is warm-up plus the timed loops; everything else is overhead:"), ""]
    for launcher, runs in results.items():
        lines += phase_lines(launcher, runs, statistics.median(starts)) + [""]
    lines += ["", "Median latency per configuration (ms), to show the launcher does not change what is measured:", "",
              "| Configuration | " + " | ".join(launchers) + " |", "|---|" + "---|" * len(launchers)]
    for idx, (model, dev, batch, _) in enumerate(results[launchers[0]][0]["medians"]):
        cells = []
        for launcher in launchers:
            values = [r["medians"][idx][3] for r in results[launcher] if r["medians"][idx][3] is not None]
            cells.append(f"{statistics.median(values):.3g}" if values else "-")
        lines.append(f"| {model} {dev} b{batch} | " + " | ".join(cells) + " |")
    said = "; ".join(f"{summary[k][2]:.2f} s {k}" for k in summary)
    lines += ["", f"Overhead per configuration: {said}."]
    for name in ("warm", "fork", "warm, first command"):
        if name in summary:
            ratio = summary[name][3]
            with_first = statistics.median(r["wall_s"] / (r["measuring_s"] + r["first_call_s"]) for r in results[name])
            lines[-1] += (f" {name}: the command's wall time is {ratio:.2f}x its measuring time (median of the runs' "
                          f"own ratios; target: within 1.3x), {with_first:.2f}x if the first call (lazy "
                          "initialisation, which any way of measuring pays) is counted as warming up.")
    subprocess.run([sys.executable, "-m", "devicebench", "server", "stop"], capture_output=True, check=False,
                   env=dict(os.environ, DEVICEBENCH_RUNTIME_DIR=RUNTIME_DIR))
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
