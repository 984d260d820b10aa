"""Progress that moves without disturbing the measurement (issue 14, point 4): the timing
loop reports at most once a second and never inside a timed call; reports reach the
parent over a pipe; the CLI and compare() turn them into words and a time left."""

from __future__ import annotations

import time

import pytest

from devicebench.devices.discovery import DeviceSpec
from devicebench.measure import progress
from devicebench.measure.config import InferenceConfig, TimingPolicy
from devicebench.measure.timing import measure_adaptive
from devicebench.reports.progress import RunEstimate, fmt_duration, progress_text, run_line


class _WatchedTimer:
    """A timer that knows when it is inside the timed call."""

    name = "watched"

    def __init__(self) -> None:
        self.inside = False
        self.calls = 0

    def time_ns(self, fn):  # type: ignore[no-untyped-def]
        self.inside = True
        start = time.perf_counter_ns()
        fn()
        elapsed = time.perf_counter_ns() - start
        self.inside = False
        self.calls += 1
        return elapsed


@pytest.fixture
def reports():
    timer = _WatchedTimer()
    sent: list[tuple[progress.Progress, bool, int]] = []
    previous = progress.install(progress.Reporter(lambda p: sent.append((p, timer.inside, timer.calls))))
    yield timer, sent
    progress.install(previous)


def test_the_timing_loop_reports_outside_the_timed_call_at_most_once_a_second(reports) -> None:
    timer, sent = reports
    policy = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=1.0, min_iters=5, min_time_s=2.6,
                          max_time_s=2.6, target_rel_ci=0.5)
    start = time.monotonic()
    run = measure_adaptive(timer, lambda: time.sleep(0.005), policy)
    wall = time.monotonic() - start
    assert sent, "no progress reported in 2.6 s of measuring"
    assert not any(inside for _, inside, _ in sent), "a report was sent inside the timed call"
    assert 2 <= len(sent) <= int(wall) + 1
    last = sent[-1][0]
    assert last.phase == "measure" and 0 < last.samples <= len(run.samples_ms)
    assert last.rel_ci is not None and last.max_time_s == 2.6 and last.elapsed_s > 1.0
    # Each report came between two timed calls: the count of calls made so far grows.
    calls = [c for _, _, c in sent]
    assert calls == sorted(calls) and len(set(calls)) == len(calls)


def test_without_a_reporter_nothing_is_sent() -> None:
    assert progress.installed() is None
    progress.report(lambda: pytest.fail("built a report with no reporter installed"))  # type: ignore[arg-type]


def test_the_reporter_drops_reports_sooner_than_its_interval() -> None:
    now = [0.0]
    sent: list[progress.Progress] = []
    reporter = progress.Reporter(sent.append, min_interval_s=1.0, clock=lambda: now[0])
    for step in range(31):  # 3 s in steps of 0.1 s
        now[0] = step / 10
        if reporter.due():
            reporter.send(progress.Progress("measure", step, now[0]))
    assert [p.samples for p in sent] == [10, 20, 30]


def test_a_reader_that_went_away_never_stops_the_measurement() -> None:
    def broken(_: progress.Progress) -> None:
        raise BrokenPipeError

    reporter = progress.Reporter(broken, min_interval_s=0.0)
    reporter.send(progress.Progress("measure", 1, 0.1))  # no exception
    assert reporter.sent == 1


def test_progress_in_words_and_the_time_left() -> None:
    p = progress.Progress("measure", 42, 4.2, 0.031, 15.0)
    assert progress_text(p) == "measuring: 42 samples, +/-3.1%, 4 s (cap 15 s)"
    assert progress.Progress.from_dict(p.to_dict()) == p
    assert fmt_duration(8.4) == "8 s" and fmt_duration(125) == "2 min 05 s"
    now = [0.0]
    est = RunEstimate(4, clock=lambda: now[0])
    est.start()
    assert est.remaining_s() is None  # nothing measured yet: no guess
    now[0] = 10.0
    est.finish()
    est.start()
    now[0] = 14.0
    assert est.remaining_s() == pytest.approx(3 * 10 - 4)
    assert run_line(1, 4, "m cpu b1", "measuring", est) == "[2/4] m cpu b1: measuring; about 26 s left"


def test_worker_progress_reaches_the_parent_through_execute() -> None:
    from devicebench.run.inference import execute

    policy = TimingPolicy(warmup_iters=1, warmup_s=0.0, warmup_max_s=1.0, min_iters=3, min_time_s=2.2,
                          max_time_s=2.2, target_rel_ci=0.5)
    config = InferenceConfig(model="tinycnn-tiny", device=DeviceSpec("cpu"), batch_size=1, threads=1, policy=policy)
    seen: list[tuple[int, progress.Progress]] = []
    _, records = execute([config], command="test", on_progress=lambda i, c, p: seen.append((i, p)))
    assert records[0].ok, records[0].message
    assert seen and all(i == 0 for i, _ in seen)
    assert any(p.phase == "measure" and p.samples > 0 for _, p in seen), seen
    assert len(seen) <= 6  # at most one a second (about 3.5 s of warm-up and measuring)


def test_compare_shows_planned_configurations_and_progress() -> None:
    import devicebench as db

    lines: list[str] = []
    results = db.compare("tinycnn-tiny", devices="cpu", batch_sizes=[1, 2], quick=True, max_time=0.3,
                         progress=lines.append)
    assert len(results) == 2
    assert lines[0] == "measuring 2 configurations, each in a fresh process"
    assert any(line.startswith("[1/2] tinycnn-tiny cpu b1") for line in lines)
    assert any(line.startswith("[2/2] ") and "left" in line for line in lines)  # an estimate once one is done
    assert lines[-1].startswith("[2/2] tinycnn-tiny cpu b2: done")


def test_compare_is_silent_outside_a_notebook_unless_asked(capsys) -> None:
    import devicebench as db

    db.compare("tinycnn-tiny", devices="cpu", batch_sizes=[1], quick=True, max_time=0.2)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("terminal", [False, True])
def test_the_cli_bar_is_drawn_on_a_terminal_only(terminal: bool) -> None:
    """In a pipe or a file the bar's redraws (and the stray last state rich leaves when it
    stops) would end up in the captured text: there only the plain lines are written."""
    from io import StringIO

    from rich.console import Console
    from rich.progress import BarColumn, TextColumn

    from devicebench.cli.progress import live_bar

    out = StringIO()
    console = Console(file=out, force_terminal=terminal, width=80, highlight=False)
    bar = live_bar(console, TextColumn("{task.description}"), BarColumn())
    task = bar.add_task("measuring", total=2)
    with bar:
        for i in range(2):
            bar.update(task, description=f"[{i + 1}/2] m cpu b{i}: measuring: 9 samples")
            bar.refresh()
            bar.console.print(f"  m cpu b{i}: 1.00 ms")
            bar.advance(task)
            bar.refresh()
    text = out.getvalue()
    if terminal:
        assert "[2/2] m cpu b1: measuring" in text  # drawn (and redrawn) where it can be
    else:
        assert text == "  m cpu b0: 1.00 ms\n  m cpu b1: 1.00 ms\n"
