"""A load generator in the manner of MLPerf LoadGen: schedules, the server loop, the rate search.

Everything here is independent of torch and of the model: a *system* is any object with
``run(n)`` that answers ``n`` requests as one batch. The same server loop runs against the
real clock (a generator thread issues each request at its scheduled time) and against a
virtual clock (tests: a fake system with a known service time, no sleeping).

What is measured from when (docs/serving.md):

* **Server scenario** (open loop): arrival times are drawn in advance from a seeded Poisson
  process; a request's latency runs from its *scheduled* arrival to its answer on the host.
  A request the generator issued late, or that waited behind a stalled system, is charged
  the whole delay: no coordinated omission.
* **Slip**: how late the generator issued each request against its schedule; a p99 slip over
  :data:`SLIP_LIMIT_MS` flags the trial (the generator, not the system, was the bottleneck).
* **Search**: bracket the highest rate whose latency quantile stays under the target, then
  bisect. A trial is at most ``max_span_s`` of schedule (so a search's real time is bounded:
  a trial at a low rate does not stretch to reach ``min_requests``), ends at the latest
  ``target`` after its last scheduled arrival (by then every request's verdict is known), and
  stops early once its verdict is *certain* (more requests are sure to exceed the target than
  the quantile allows, counting those a lower bound on the service time already dooms) or an
  exact binomial bound on the quantile decides it.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from devicebench.errors import ConfigError

__all__ = [
    "CONFIRM_STEP",
    "MAX_CONFIRMS",
    "MIN_TRIAL_REQUESTS",
    "SLIP_LIMIT_MS",
    "Clock",
    "FakeSystem",
    "RealClock",
    "SearchResult",
    "System",
    "ThreadSource",
    "Trial",
    "TrialSettings",
    "VirtualClock",
    "VirtualSource",
    "binom_cdf",
    "binom_sf",
    "confirm_max_rate",
    "parse_slo",
    "poisson_schedule",
    "quantile_bounds",
    "run_closed_loop",
    "run_trial",
    "search_max_rate",
    "unit_gaps",
]

#: A trial whose p99 generator slip exceeds this (ms) is flagged: the schedule was not kept.
SLIP_LIMIT_MS = 1.0

#: The search goes no lower than the rate at which a trial would hold this many requests.
MIN_TRIAL_REQUESTS = 20


class System(Protocol):
    """What the load generator drives: ``run(n)`` answers ``n`` requests as one batch and
    returns when the answers are on the host."""

    def run(self, n: int) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None: ...


class RealClock:
    """``time.perf_counter`` and ``time.sleep``."""

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, t: float) -> None:
        delay = t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Simulated time for tests: nothing sleeps, a fake system advances the clock."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakeSystem:
    """A system with a known service time on a virtual clock: a batch of ``n`` takes
    ``base_s + per_item_s * n`` (deterministic), plus ``stall_s`` once on call ``stall_at``."""

    clock: VirtualClock
    base_s: float
    per_item_s: float = 0.0
    stall_at: int | None = None
    stall_s: float = 0.0
    calls: int = 0

    def run(self, n: int) -> None:
        self.clock.advance(self.base_s + self.per_item_s * n)
        if self.stall_at is not None and self.calls == self.stall_at:
            self.clock.advance(self.stall_s)
        self.calls += 1


# -- schedules and order statistics -----------------------------------------------------------


def unit_gaps(n: int, seed: int) -> np.ndarray:
    """``n`` exponential inter-arrival gaps of mean 1 (seeded). Every rate's schedule is these
    gaps divided by the rate (common random numbers: trials at two rates differ by rate only)."""
    return np.random.default_rng(seed).exponential(1.0, size=n)


def poisson_schedule(rate: float, n: int, seed: int) -> np.ndarray:
    """Arrival times (s, from 0) of ``n`` requests of a Poisson process of ``rate`` per second."""
    if rate <= 0:
        raise ConfigError(f"a request rate must be positive, got {rate}")
    return np.cumsum(unit_gaps(n, seed)) / rate


def _log_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p) (exact sum; 0 < p < 1)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(k + 1)))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return max(0.0, 1.0 - binom_cdf(k - 1, n, p))


def quantile_bounds(samples: Sequence[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free two-sided interval of the ``q`` quantile: order statistics chosen
    with the binomial distribution (``inf`` above when there are too few samples)."""
    xs = np.sort(np.asarray(samples, dtype=float))
    n = xs.size
    if n == 0:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    k = np.arange(n + 1)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
               + k * math.log(q) + (n - k) * math.log1p(-q))
    cdf = np.cumsum(np.exp(log_pmf))  # cdf[j] = P(Bin(n, q) <= j)
    # X(j) (1-based) <= the quantile with probability P(Bin(n, q) >= j) = 1 - cdf[j - 1].
    below = np.nonzero(1 - cdf[:-1] >= 1 - alpha)[0]  # indices j - 1
    lo = float(xs[below[-1]]) if below.size else -math.inf
    above = np.nonzero(cdf[:-1] >= 1 - alpha)[0]  # P(Bin < j) >= 1 - alpha, j - 1 = index
    hi = float(xs[above[0]]) if above.size else math.inf
    return (lo, hi)


def parse_slo(text: str) -> tuple[float, float]:
    """``p99=15ms`` -> (0.99, 15.0). Units ms (default), s or us; quantiles p50..p99.9.

    Raises:
        ConfigError: any other form.
    """
    hint = "--slo takes a percentile and a latency like p99=15ms, p90=100ms or p99.9=0.2s"
    name, sep, value = text.strip().lower().partition("=")
    if not sep or not name.startswith("p"):
        raise ConfigError(f"{hint}, got {text!r}")
    try:
        pct = float(name[1:])
    except ValueError:
        raise ConfigError(f"{hint}, got {text!r}") from None
    value = value.strip()
    scale = 1.0
    for unit, factor in (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3), ("s", 1e3)):
        if value.endswith(unit):
            value, scale = value[: -len(unit)], factor
            break
    try:
        ms = float(value) * scale
    except ValueError:
        raise ConfigError(f"{hint}, got {text!r}") from None
    if not 50 <= pct < 100:
        raise ConfigError(f"the --slo percentile must be between p50 and p99.99, got {name}")
    if not ms > 0 or not math.isfinite(ms):
        raise ConfigError(f"the --slo latency must be positive, got {text!r}")
    return pct / 100, ms


# -- request sources: who issues requests, and when ---------------------------------------------


class ThreadSource:
    """A generator thread that issues request ``i`` at ``start + scheduled[i]`` (real clock).

    It sleeps between requests (it never spins, so it takes little CPU from a CPU under test)
    and records when it actually issued each one; :attr:`cpu_s` is the CPU time it used.
    """

    def __init__(self, scheduled: np.ndarray, start: float, *, stall: tuple[int, float] | None = None) -> None:
        self.due = start + scheduled
        self.issued = np.full(len(scheduled), math.nan)
        self.count = 0
        self.cpu_s = 0.0
        self._stall = stall
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="devicebench-loadgen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        for i, due in enumerate(self.due):
            if self._stall is not None and i == self._stall[0]:
                time.sleep(self._stall[1])  # an injected generator stall (tests)
            while True:
                delay = due - time.perf_counter()
                if delay <= 0 or self._stop.is_set():
                    break
                time.sleep(min(delay, 0.05))
            if self._stop.is_set():
                break
            now = time.perf_counter()
            with self._cond:
                self.issued[i] = now
                self.count = i + 1
                self._cond.notify_all()
        self.cpu_s = time.thread_time() - cpu0

    def wait_for(self, j: int, until: float | None = None) -> bool:
        """Block until request ``j`` is issued (True) or ``until`` passes (False)."""
        with self._cond:
            while self.count <= j:
                if self._stop.is_set():
                    return False
                timeout = None if until is None else until - time.perf_counter()
                if timeout is not None and timeout <= 0:
                    return False
                self._cond.wait(timeout if timeout is not None else 0.1)
            return True

    def issue_time(self, j: int) -> float:
        return float(self.issued[j])

    def is_issued(self, j: int) -> bool:
        return self.count > j


class VirtualSource:
    """Requests issued at their scheduled times on a virtual clock (plus an optional
    generator stall: request ``stall[0]`` and those due during the stall issue late)."""

    def __init__(self, scheduled: np.ndarray, start: float, clock: VirtualClock, *,
                 stall: tuple[int, float] | None = None) -> None:
        self.due = start + scheduled
        self.issued = self.due.copy()
        if stall is not None:
            first, seconds = stall
            resume = self.due[first] + seconds
            self.issued[first:] = np.maximum(self.issued[first:], resume)
        self.clock = clock
        self.cpu_s = 0.0

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def wait_for(self, j: int, until: float | None = None) -> bool:
        t = self.issued[j]
        if until is not None and t > until:
            self.clock.sleep_until(until)
            return False
        self.clock.sleep_until(t)
        return True

    def issue_time(self, j: int) -> float:
        return float(self.issued[j])

    def is_issued(self, j: int) -> bool:
        return bool(self.issued[j] <= self.clock.now())


# -- one trial at one offered rate ---------------------------------------------------------------


@dataclass(frozen=True)
class TrialSettings:
    """How each trial runs.

    Attributes:
        target_ms: the latency bound; quantile: which quantile must stay under it (0.99).
        duration_s: length of a trial's schedule (at least ``min_requests`` requests).
        max_batch / max_delay_ms: dynamic batching; a batch closes when it holds
            ``max_batch`` requests or ``max_delay_ms`` after its first request was issued.
        confidence: of the binomial bound that stops a trial early (the early looks use a
            stricter level, ``(1 - confidence) / 10``, since the bound is looked at repeatedly).
        early_stop: stop a trial as soon as its verdict is certain (see :func:`run_trial`) or
            the bound decides it (with a margin: at least 5x the allowed share of requests over
            the target to fail early, at most a fifth of it to pass early, since queueing
            delays come in correlated bursts).
        max_span_s: the longest schedule a trial may have (default ``3 * duration_s``): a trial
            at a low rate holds ``min_requests`` requests only as far as this allows, so a
            search that walks down to low rates does not double its real time at each step.
    """

    target_ms: float
    quantile: float = 0.99
    duration_s: float = 10.0
    min_requests: int = 100
    max_batch: int = 1
    max_delay_ms: float = 0.0
    seed: int = 0
    confidence: float = 0.95
    early_stop: bool = True
    tolerance: float = 0.05
    max_trials: int = 12
    max_span_s: float | None = None

    def __post_init__(self) -> None:
        if not self.target_ms > 0:
            raise ConfigError(f"the latency target must be positive, got {self.target_ms} ms")
        if not 0.5 <= self.quantile < 1:
            raise ConfigError(f"the quantile must be in [0.5, 1), got {self.quantile}")
        if not self.duration_s > 0:
            raise ConfigError(f"--duration must be positive, got {self.duration_s} s")
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.max_delay_ms < 0:
            raise ConfigError(f"--max-delay must be >= 0 ms, got {self.max_delay_ms}")
        if self.min_requests < 1 or self.max_trials < 2 or not 0 < self.tolerance < 1:
            raise ConfigError("min_requests >= 1, max_trials >= 2 and 0 < tolerance < 1 are required")
        if self.max_span_s is not None and not self.max_span_s >= self.duration_s:
            raise ConfigError(f"max_span_s must be at least the duration ({self.duration_s} s)")

    @property
    def span_cap_s(self) -> float:
        return self.max_span_s if self.max_span_s is not None else 3 * self.duration_s

    def requests_at(self, rate: float) -> int:
        """``duration_s`` of schedule, stretched to ``min_requests`` up to ``span_cap_s``."""
        by_duration = math.ceil(rate * self.duration_s)
        return max(1, by_duration, min(self.min_requests, math.floor(rate * self.span_cap_s)))

    def allowed_over(self, n: int) -> int:
        """How many of ``n`` requests may exceed the target with the quantile still under it
        (the quantile is an order statistic, numpy's ``higher`` method, as in :func:`run_trial`)."""
        return n - 1 - int(np.quantile(np.arange(n), self.quantile, method="higher"))


@dataclass
class Trial:
    """One trial: a schedule at ``rate`` per second, run to its end or to an early verdict.

    Latencies are in ms from each request's scheduled arrival to its answer. ``verdict`` is
    ``pass`` when the quantile stayed under the target; ``decided_by`` says what decided it:
    ``certain`` (an early stop when too many requests were sure to exceed the target: the
    whole trial could only have failed), ``bound`` (the binomial bound, at ``confidence``)
    or ``estimate`` (the point estimate only: too few requests for the bound).
    """

    rate: float
    n_scheduled: int
    n_answered: int
    n_late_pending: int
    elapsed_s: float
    verdict: str
    decided_by: str
    stopped_early: bool
    p50_ms: float
    p90_ms: float
    p99_ms: float
    quantile_ms: float
    quantile_bound_ms: tuple[float, float]
    max_ms: float
    throughput_per_s: float
    goodput_per_s: float
    mean_batch: float
    slip_p50_ms: float
    slip_p99_ms: float
    slip_max_ms: float
    generator_cpu_frac: float
    slipped: bool
    latencies_ms: list[float] = field(default_factory=list)
    #: Cores' worth of CPU other processes used during the trial (real clock only).
    other_cpu_load: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quantile_bound_ms"] = [_finite(v) for v in self.quantile_bound_ms]
        for key, value in data.items():
            if isinstance(value, float):
                data[key] = _finite(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        from dataclasses import fields

        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        bound = values.get("quantile_bound_ms") or [None, None]
        values["quantile_bound_ms"] = tuple(math.inf if v is None else float(v) for v in bound)
        for key in ("p50_ms", "p90_ms", "p99_ms", "quantile_ms", "max_ms"):
            if values.get(key) is None:
                values[key] = math.inf
        return cls(**values)


def _doomed(due: np.ndarray, i: int, now: float, target_s: float, item_s: float) -> int:
    """How many of the unanswered requests ``i..`` cannot be answered within ``target_s`` of
    their scheduled arrival if the server, free at ``now``, served them in order at ``item_s``
    per request (a lower bound: a batch of ``b`` takes at least ``b * item_s``).

    The earliest finish is the fluid recursion ``f_j = max(f_{j-1}, due_j) + item_s`` from
    ``f_{i-1} = now``, in closed form ``(j+1) c + max(now - i c, max_{i<=m<=j} (due_m - m c))``.
    With ``item_s = 0`` it counts only the requests already waiting longer than the target.
    """
    rest = due[i:]
    if rest.size == 0:
        return 0
    idx = np.arange(i, due.size, dtype=float)
    earliest = (idx + 1) * item_s + np.maximum(now - i * item_s, np.maximum.accumulate(rest - idx * item_s))
    return int(np.count_nonzero(earliest - rest > target_s))


def _finite(value: float) -> float | None:
    """JSON has no infinity: an unbounded figure is written as null."""
    return value if math.isfinite(value) else None


def _pct(values: np.ndarray, q: float) -> float:
    # An order statistic (no interpolation): the values may hold +inf (still-waiting requests).
    return float(np.quantile(values, q, method="higher")) if values.size else math.nan


def run_trial(
    rate: float,
    settings: TrialSettings,
    system: System,
    *,
    clock: Clock | None = None,
    stall: tuple[int, float] | None = None,
    keep_latencies: bool = False,
) -> Trial:
    """Drive ``system`` with a Poisson schedule at ``rate``; measure from scheduled arrival.

    With a :class:`VirtualClock` the requests come from a :class:`VirtualSource` (no
    threads, no sleeping); with the real clock from a :class:`ThreadSource`. The server loop
    below is the same for both.
    """
    clock = clock or RealClock()
    scheduled = np.cumsum(unit_gaps(settings.requests_at(rate), settings.seed)) / rate
    # A few requests at a low rate can spread far past their expected span: cut at the cap.
    scheduled = scheduled[: max(1, int(np.searchsorted(scheduled, settings.span_cap_s, side="right")))]
    n = scheduled.size
    # (before the schedule's start is fixed: the first import of the timing module is slow)
    snapshot = None
    if not isinstance(clock, VirtualClock):
        from devicebench.measure.timing import _cpu_snapshot

        snapshot = _cpu_snapshot()
    start = clock.now() + 0.005
    source: ThreadSource | VirtualSource
    if isinstance(clock, VirtualClock):
        source = VirtualSource(scheduled, start, clock, stall=stall)
    else:
        source = ThreadSource(scheduled, start, stall=stall)
    due = source.due
    target_s = settings.target_ms / 1e3
    max_delay_s = settings.max_delay_ms / 1e3
    q = settings.quantile
    strict_alpha = (1 - settings.confidence) / 10
    allowed = settings.allowed_over(n)
    # Every request's verdict is known ``target`` after the last scheduled arrival: one still
    # waiting then is over it. So the trial ends there; an overloaded system's queue is not drained.
    deadline = due[-1] + target_s + 0.01
    finish = np.full(n, math.nan)
    batches = 0
    exceed = 0
    stopped_early = False
    verdict = ""
    decided = ""
    item_times: list[float] = []  # per-item service time of each batch (full batches when batching)
    doom_item_s = 0.0  # the service-time lower bound that made a certain verdict
    last_look = start
    source.start()
    i = 0
    try:
        while i < n:
            if not source.wait_for(i, until=deadline):
                break
            first_issue = source.issue_time(i)
            close_at = first_issue + max_delay_s
            j = i + 1
            while j < n and j - i < settings.max_batch:
                if max_delay_s <= 0:
                    # No waiting: take what has already been issued.
                    if source.is_issued(j):
                        j += 1
                        continue
                    break
                if not source.wait_for(j, until=close_at):
                    break
                j += 1
            began = clock.now()
            system.run(j - i)
            done = clock.now()
            if settings.max_batch == 1 or j - i == settings.max_batch:
                item_times.append((done - began) / (j - i))
            finish[i:j] = done
            exceed += int(np.count_nonzero(done - due[i:j] > target_s))
            batches += 1
            i = j
            if done > deadline:
                break
            if not settings.early_stop or (batches % 4 and done - last_look < 0.25):
                continue
            last_look = done
            # Certain: more requests are sure to exceed the target than the quantile allows,
            # whatever happens next. Sure = answered late, or unable to be answered in time
            # even if every later batch took only 0.8x the fastest per-item time seen so far
            # (a lower bound on the service time; none is assumed before 4 batches).
            fastest = 0.8 * min(item_times) if len(item_times) >= 4 else 0.0
            if exceed + _doomed(due, i, done, target_s, fastest) > allowed:
                doom_item_s = fastest
                verdict, decided, stopped_early = "fail", "certain", True
                break
            waiting_late = max(0, bisect.bisect_right(due, done - target_s) - i)
            n_known = i + waiting_late
            n_bad = exceed + waiting_late
            # Latencies in a queue come in correlated bursts, so significance alone would stop
            # a trial near the boundary on one burst: an early verdict also needs a margin
            # (5x the allowed share over the target to fail, a fifth of it to pass).
            if (n_known >= 10 and n_bad >= 5 * (1 - q) * n_known
                    and binom_sf(n_bad, n_known, 1 - q) < strict_alpha):
                verdict, decided, stopped_early = "fail", "bound", True
                break
            if (i >= n // 2 and n_known >= 100 and done - start >= 0.5 * settings.duration_s
                    and n_bad <= 0.2 * (1 - q) * n_known and binom_cdf(n_bad, n_known, 1 - q) < strict_alpha):
                verdict, decided, stopped_early = "pass", "bound", True
                break
    finally:
        source.stop()
    end = clock.now()
    other = None
    if snapshot is not None:
        from devicebench.measure.timing import _cpu_snapshot, _other_load

        other = _other_load(snapshot, _cpu_snapshot(), end - start)
    answered = int(i)
    lat = (finish[:answered] - due[:answered]) * 1e3
    # Requests still waiting past the target (or, after a certain verdict, sure to pass it)
    # count as over it: their latency is at least that.
    late_pending = _doomed(due, answered, end, target_s, doom_item_s)
    known = np.concatenate([lat, np.full(late_pending, math.inf)])
    bad = int(np.count_nonzero(known > settings.target_ms))
    qv = float(np.quantile(known, q, method="higher")) if known.size else math.inf
    if not verdict:
        verdict = "pass" if qv <= settings.target_ms else "fail"
    alpha = 1 - settings.confidence
    if decided:
        decided_by = decided
    elif (verdict == "fail" and binom_sf(bad, known.size, 1 - q) < alpha) or (
            verdict == "pass" and binom_cdf(bad, known.size, 1 - q) < alpha):
        decided_by = "bound"
    else:
        decided_by = "estimate"
    issued = source.issued[:answered]
    slip = (issued - due[:answered]) * 1e3
    slip = slip[np.isfinite(slip)]
    elapsed = max(end - start, 1e-9)
    finite = lat[np.isfinite(lat)]
    p99_slip = _pct(slip, 0.99) if slip.size else 0.0
    return Trial(
        rate=float(rate),
        n_scheduled=n,
        n_answered=answered,
        n_late_pending=late_pending,
        elapsed_s=elapsed,
        verdict=verdict,
        decided_by=decided_by,
        stopped_early=stopped_early,
        p50_ms=_pct(known, 0.5),
        p90_ms=_pct(known, 0.9),
        p99_ms=float(np.quantile(known, 0.99, method="higher")) if known.size else math.inf,
        quantile_ms=qv,
        quantile_bound_ms=quantile_bounds(known.tolist(), q, settings.confidence),
        max_ms=float(known.max()) if known.size else math.inf,
        throughput_per_s=answered / elapsed,
        goodput_per_s=int(np.count_nonzero(finite <= settings.target_ms)) / elapsed,
        mean_batch=answered / batches if batches else 0.0,
        slip_p50_ms=_pct(slip, 0.5) if slip.size else 0.0,
        slip_p99_ms=p99_slip,
        slip_max_ms=float(slip.max()) if slip.size else 0.0,
        generator_cpu_frac=source.cpu_s / elapsed,
        slipped=bool(p99_slip > SLIP_LIMIT_MS),
        latencies_ms=[round(float(v), 4) for v in finite] if keep_latencies else [],
        other_cpu_load=other,
    )


# -- closed loop: N requests outstanding -------------------------------------------------------


@dataclass
class ClosedLoopPoint:
    """Concurrency N (closed loop, no think time): throughput and latency from issue."""

    concurrency: int
    n_answered: int
    elapsed_s: float
    throughput_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_batch: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_closed_loop(concurrency: int, duration_s: float, system: System, *, max_batch: int = 1,
                    clock: Clock | None = None, min_requests: int = 20) -> ClosedLoopPoint:
    """``concurrency`` clients each send a request, wait for its answer, and send the next at
    once (perf_analyzer's concurrency mode). With no think time every client is always
    waiting, so the server takes ``min(waiting, max_batch)`` at a time; a request's latency
    runs from when its client sent it (the previous answer) to its answer."""
    clock = clock or RealClock()
    start = clock.now()
    issued = [start] * concurrency  # one outstanding request per client, oldest first
    latencies: list[float] = []
    batches = 0
    while clock.now() - start < duration_s or len(latencies) < min_requests:
        take = min(len(issued), max_batch)
        system.run(take)
        done = clock.now()
        latencies.extend((done - t) * 1e3 for t in issued[:take])
        issued = issued[take:] + [done] * take
        batches += 1
    elapsed = clock.now() - start
    arr = np.asarray(latencies)
    return ClosedLoopPoint(concurrency, len(latencies), elapsed, len(latencies) / elapsed,
                           _pct(arr, 0.5), _pct(arr, 0.9), _pct(arr, 0.99), len(latencies) / batches)


# -- the search ---------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """The highest rate found whose quantile stayed under the target, and every trial."""

    max_rate: float
    bracket: tuple[float, float]
    trials: list[Trial]
    note: str = ""


#: A confirming trial that fails sends the rate down by this factor for the next one.
CONFIRM_STEP = 0.85
#: At most this many confirming trials (the first at the rate found, then lower).
MAX_CONFIRMS = 3


def confirm_max_rate(trial: Callable[[float], Trial], rate: float, *, step: float = CONFIRM_STEP,
                     max_confirms: int = MAX_CONFIRMS) -> tuple[float, list[Trial]]:
    """Confirm the rate a search found with trials run whole, stepping down when one fails.

    A rate near saturation can pass one trial and fail the next (the p99 of ~100 requests is
    nearly their maximum, and a queue near saturation has a long tail), so a search's rate is
    reported only once a trial run whole (no early stop: ``trial`` must run it so) at that
    rate also kept the target. After a failure the rate goes down by ``step`` and is tried
    again, at most ``max_confirms`` trials in all.

    Returns:
        The highest confirmed rate (0.0 when none of the confirming trials passed) and the
        confirming trials in the order run; the last one is the confirmed rate's own trial
        when one passed.
    """
    trials: list[Trial] = []
    for _ in range(max(1, max_confirms)):
        t = trial(rate)
        trials.append(t)
        if t.verdict == "pass":
            return rate, trials
        rate *= step
    return 0.0, trials


def search_max_rate(trial: Callable[[float], Trial], capacity_per_s: float, settings: TrialSettings,
                    *, on_trial: Callable[[Trial], None] | None = None) -> SearchResult:
    """Bracket, then bisect, the highest passing rate.

    Starts at half the estimated capacity (``max_batch`` / batch time); goes up by 1.5x
    until a trial fails, or down by 2x until one passes, but no lower than 1/64 of the
    capacity (there the server is idle 98% of the time, queueing adds next to nothing, and a
    failure is the service time's own tail, which a lower rate cannot cure) nor below the rate
    at which a trial of ``span_cap_s`` would hold fewer than :data:`MIN_TRIAL_REQUESTS`
    requests (too few to say anything about a percentile); then bisects until the bracket is
    within ``settings.tolerance`` of its top or ``max_trials`` trials have run.
    """
    if not capacity_per_s > 0:
        raise ConfigError("the system's capacity must be positive")
    trials: list[Trial] = []

    def go(rate: float) -> bool:
        t = trial(rate)
        trials.append(t)
        if on_trial is not None:
            on_trial(t)
        return t.verdict == "pass"

    lo, hi = 0.0, math.inf
    rate = 0.5 * capacity_per_s
    floor = max(capacity_per_s / 64, min(MIN_TRIAL_REQUESTS, settings.min_requests) / settings.span_cap_s)
    while len(trials) < settings.max_trials:
        if go(rate):
            lo = rate
            if rate > 4 * capacity_per_s:
                break  # implausible: the capacity estimate was far off; keep what passed
            if hi < math.inf:
                break
            rate *= 1.5
        else:
            hi = rate
            if lo > 0:
                break
            rate /= 2
            if rate < floor:
                break
    note = ""
    if lo == 0.0:
        note = f"no rate down to {floor:.3g}/s kept the p{settings.quantile * 100:g} under {settings.target_ms:g} ms"
        if floor * settings.span_cap_s <= MIN_TRIAL_REQUESTS + 1:
            note += (f" (lower rates give a trial fewer than {MIN_TRIAL_REQUESTS} requests: raise --duration "
                     "to try them, or the target)")
    while lo > 0 and hi < math.inf and (hi - lo) / hi > settings.tolerance and len(trials) < settings.max_trials:
        mid = 0.5 * (lo + hi)
        if go(mid):
            lo = mid
        else:
            hi = mid
    if lo > 0 and hi < math.inf and (hi - lo) / hi > settings.tolerance:
        note = f"stopped after {len(trials)} trials with the bracket {lo:.3g}-{hi:.3g}/s still wider than {settings.tolerance:.0%}"
    return SearchResult(max_rate=lo, bracket=(lo, hi), trials=trials, note=note)
