"""What a scenario will cost before it runs: simulation work, memory, wall-clock time.

A scenario can be valid field by field and still be out of reach: ``duration: 1e9``
allocates per-second tables of many gigabytes before the first event; a
``heartbeat_interval`` of a microsecond writes one statistics row per heartbeat; an
arrival rate far above what the members serve piles requests up in the kernel backlog.
:func:`estimate` adds up the dominant terms from the scenario alone; :func:`check_cost`
refuses a scenario whose estimate cannot fit (memory above the budget, or more work than
a day of simulation), naming the field that dominates, so the user knows what to change.

The constants were measured on lbsim itself (peak RSS and wall time of runs scaled in
duration, heartbeat interval and overload; see docs/limits.md): about 250 bytes per
simulated second of tables, about 130 bytes per statistics row or waiting request, and
some 10⁵ requests simulated per second of wall time. They are rounded up: an estimate
only needs to tell a minute from a week and a gigabyte from a petabyte.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from lbsim.scenario import model as m
from lbsim.scenario.sanity import dist_mean, trees

PathT = tuple[str | int, ...]

BYTES_PER_SECOND = 300  # per-second tables: ok, errors, latency, samples, timeseries
BYTES_PER_ROW = 200  # a statistics row, a transition, a waiting request
BYTES_PER_LOGGED_REQUEST = 150  # --log-requests
BASE_BYTES = 200 * 1024 * 1024  # Python, numpy, pandas and the simulator themselves
UNITS_PER_SECOND = 1e5  # simulated requests (or equivalent work) per second of wall time
#: more work than this (about a day of wall time) is refused rather than started
MAX_UNITS = 1e10


#: memory a run may use unless ``LBSIM_MAX_MEMORY`` says otherwise; ordinary scenarios
#: (hours of simulated time, thousands of members) stay below 1 GiB
DEFAULT_BUDGET = 4 * 1024**3


def memory_budget() -> int:
    """Bytes a run may use: ``LBSIM_MAX_MEMORY`` (bytes) if set, else 4 GiB, and never
    more than 3/4 of the machine's physical memory."""
    budget = DEFAULT_BUDGET
    env = os.environ.get("LBSIM_MAX_MEMORY")
    if env:
        with contextlib.suppress(ValueError):
            budget = int(float(env))
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        budget = min(budget, int(total * 0.75))
    except (ValueError, OSError, AttributeError):
        pass
    return budget


@dataclass
class Estimate:
    """The estimated cost of one run, with the terms it is made of.

    ``terms`` maps a field path to ``(work units, bytes, what)``: the term's share of the
    work and memory and a few words saying what it counts.
    """

    units: float = 0.0
    memory: float = float(BASE_BYTES)
    terms: dict[PathT, tuple[float, float, str]] = field(default_factory=dict)

    def add(self, path: PathT, units: float, memory: float, what: str) -> None:
        """Add one term (terms on the same path are summed)."""
        u, b, _ = self.terms.get(path, (0.0, 0.0, what))
        self.terms[path] = (u + units, b + memory, what)
        self.units += units
        self.memory += memory

    @property
    def seconds(self) -> float:
        """Rough wall-clock time of the run."""
        return self.units / UNITS_PER_SECOND

    def dominant(self, by_memory: bool) -> tuple[PathT, str]:
        """The field whose term is largest (by memory or by work) and what it counts."""
        k = 1 if by_memory else 0
        path = max(self.terms, key=lambda p: self.terms[p][k])
        return path, self.terms[path][2]


def _capacity(sc: m.Scenario, base_dir: Path | None) -> float:
    """Requests per second the initial members can serve (inf when service is instant)."""
    cap = 0.0
    for _, lb in trees(sc):
        for p in lb.pools:
            for mem in p.members:
                mean = dist_mean(mem.service_time, base_dir)
                if mean is None or mean <= 0:
                    return math.inf
                cap += mem.concurrency / mean
            if p.autoscaling is not None:
                tpl = p.autoscaling.member_template
                mean = dist_mean(tpl.service_time, base_dir)
                if mean is None or mean <= 0:
                    return math.inf
                cap += tpl.concurrency / mean * max(0, p.autoscaling.max_members - len(p.members))
    return cap


def _peak_rate(arrival: m.Arrival, base_dir: Path | None) -> tuple[float, str]:
    """The highest arrival rate of a source, and the field that sets it."""
    if isinstance(arrival, m.Poisson | m.ConstantRate):
        return float(arrival.rate), "rate"
    if isinstance(arrival, m.Profile):
        return max(float(r) for _, r in arrival.profile), "profile"
    if isinstance(arrival, m.Mmpp):
        return max(float(r) for r in arrival.rates), "rates"
    path = Path(arrival.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        rows = path.stat().st_size / 8.0  # a row is at least "t,a.b.c.d" ~ 8+ bytes
    except OSError:
        rows = 0.0
    return rows, "file"  # a count, not a rate: see estimate()


def estimate(sc: m.Scenario, base_dir: Path | None = None, log_requests: bool = False) -> Estimate:
    """The cost of running ``sc`` (see the module docstring for what is counted)."""
    est = Estimate()
    d = float(sc.duration)
    est.add(("duration",), d / 1000.0, d * BYTES_PER_SECOND, "per-second tables")
    oc = sc.octavia
    for prefix, lb in trees(sc):
        amphorae = 2 if lb.topology == "ACTIVE_STANDBY" else 1
        listeners = max(1, len(lb.listeners))
        beats = amphorae * d / oc.heartbeat_interval
        est.add(
            ("octavia", "heartbeat_interval"),
            beats * (1 + listeners),
            beats * listeners * BYTES_PER_ROW,
            "heartbeats and their statistics rows",
        )
        if lb.topology == "ACTIVE_STANDBY":
            est.add(("octavia", "vrrp_advert_int"), 2 * d / oc.vrrp_advert_int, 0.0, "VRRP adverts")
        for i, p in enumerate(lb.pools):
            hm = p.healthmonitor
            if hm is not None and hm.delay > 0:
                n = len(p.members) + (p.autoscaling.max_members if p.autoscaling is not None else 0)
                est.add((*prefix, "pools", i, "healthmonitor", "delay"), n * d / hm.delay, 0.0, "health checks")
            if p.autoscaling is not None:
                evals = d / p.autoscaling.evaluation_interval
                est.add((*prefix, "pools", i, "autoscaling", "evaluation_interval"), evals, 0.0, "evaluations")
    est.add(("octavia", "health_check_interval"), d / oc.health_check_interval, 0.0, "stale-amphora scans")
    capacity = _capacity(sc, base_dir)
    arrivals_total = 0.0
    for i, tr in enumerate(sc.traffic):
        rate, key = _peak_rate(tr.arrival, base_dir)
        arrivals = rate if key == "file" else rate * d
        arrivals_total += arrivals
        mem = arrivals * BYTES_PER_LOGGED_REQUEST if log_requests else 0.0
        est.add(("traffic", i, "arrival", key), arrivals, mem, "requests")
    if arrivals_total > capacity * d and sc.traffic:
        waiting = arrivals_total - capacity * d
        est.add(
            ("traffic", 0, "arrival", _peak_rate(sc.traffic[0].arrival, base_dir)[1]),
            0.0,
            waiting * BYTES_PER_ROW,
            "requests waiting beyond what the members can serve",
        )
    members_by_pool = {p.name: len(p.members) for _, lb in trees(sc) for p in lb.pools}
    for i, fl in enumerate(sc.failures):
        n = len(fl.members) if fl.members is not None else members_by_pool.get(str(fl.pool), 1)
        up, down = dist_mean(fl.mttf, base_dir), dist_mean(fl.mttr, base_dir)
        if up is None or down is None:
            continue
        cycle = up + down
        cycles = math.inf if cycle <= 0 else n * d / cycle
        est.add(("failures", i, "mttf"), 4 * cycles, 4 * cycles * BYTES_PER_ROW, "failure and recovery cycles")
    return est


def _size(b: float) -> str:
    for unit, scale in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if b >= scale:
            return f"{b / scale:,.1f} {unit}"
    return f"{b / 1024:,.0f} KiB"


def check_cost(sc: m.Scenario, base_dir: Path | None = None, log_requests: bool = False) -> list[tuple[PathT, str]]:
    """A problem naming the dominant field when the run cannot fit; else nothing."""
    est = estimate(sc, base_dir, log_requests)
    budget = memory_budget()
    if not est.memory <= budget:
        path, what = est.dominant(by_memory=True)
        return [
            (
                path,
                f"this run would need about {_size(est.memory)} of memory (budget {_size(budget)}; "
                f"set LBSIM_MAX_MEMORY to change it), mostly for {what}",
            )
        ]
    if not est.units <= MAX_UNITS:
        path, what = est.dominant(by_memory=False)
        return [
            (
                path,
                f"this run would take about {est.units:.2g} simulation steps (~{describe_time(est.seconds)}), "
                f"mostly {what}; the limit is {MAX_UNITS:.0g}",
            )
        ]
    return []


def describe_time(seconds: float) -> str:
    """A wall-clock estimate in words: '40 s', '12 min', '3.5 h', '20 days'."""
    if not math.isfinite(seconds):
        return "for ever"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"
