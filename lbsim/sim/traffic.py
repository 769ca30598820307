"""Traffic: when requests arrive and from which client address and port.

An arrival process is reduced to one function, ``next_gap() -> float | None``, the time
until the next request (None: the source is exhausted). Client keys are IPv4/IPv6
addresses as integers, drawn uniformly from the scenario's client population (``count``
addresses spread over the CIDR) with an ephemeral source port, so that SOURCE_IP hashing
and persistence see realistic keys.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbsim.scenario import model as m
from lbsim.scenario.datafiles import parse_address, read_trace
from lbsim.sim.distributions import BLOCK

__all__ = ["EPHEMERAL_PORTS", "TraceRows", "client_addresses", "load_trace", "make_gap_fn", "parse_address"]

GapFn = Callable[[], float | None]

#: ephemeral port range of Linux clients (net.ipv4.ip_local_port_range default)
EPHEMERAL_PORTS = (32768, 60999)


@dataclass
class TraceRows:
    """A loaded trace: arrival times, and per-row client address and port (0 if absent)."""

    times: np.ndarray
    clients: np.ndarray
    ports: np.ndarray


def client_addresses(clients: m.Clients, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct host addresses of the CIDR as integers (spread, reproducible)."""
    net = ipaddress.ip_network(clients.cidr, strict=False)
    first = int(net.network_address)
    size = net.num_addresses
    # skip network and broadcast addresses where the network has them
    lo, hi = (first + 1, first + size - 1) if size > 2 else (first, first + size)
    span = hi - lo
    # uint64 holds IPv4 and the low end of IPv6; any other IPv6 network (a /100 of
    # 2001:db8::) needs Python integers, whatever its size
    small = hi < 2**63
    if clients.count >= span:
        return (
            np.arange(lo, hi, dtype=np.uint64)[: clients.count]
            if small
            else np.array([lo + i for i in range(min(clients.count, span))], dtype=object)
        )
    if span < 2**62:
        offsets = rng.choice(span, size=clients.count, replace=False)
        if not small:
            return np.array(sorted(lo + int(x) for x in offsets), dtype=object)
        picks = offsets + lo
        return np.sort(picks.astype(np.uint64))
    return np.array(
        sorted(lo + int(x) for x in rng.integers(0, 2**62, clients.count)), dtype=object
    )


def load_trace(path: Path) -> TraceRows:
    """Read a ``time,client[,port]`` CSV (header optional) into arrays, sorted by time.

    Raises :class:`~lbsim.scenario.datafiles.DataFileError` (a ``ValueError``) naming the
    file and line of the first bad row; validation reads the file the same way first.
    """
    times, clients, ports = read_trace(path)
    order = np.argsort(np.asarray(times), kind="stable")
    return TraceRows(
        np.asarray(times, dtype=float)[order],
        np.asarray(clients, dtype=object)[order],
        np.asarray(ports, dtype=np.int64)[order],
    )


def make_gap_fn(
    arrival: m.Arrival, rng: np.random.Generator, trace: TraceRows | None = None
) -> GapFn:
    """The inter-arrival function of an arrival process."""
    if isinstance(arrival, m.Poisson):
        return _block_gaps(lambda n: rng.exponential(1.0 / arrival.rate, n))
    if isinstance(arrival, m.ConstantRate):
        gap = 1.0 / arrival.rate
        return lambda: gap
    if isinstance(arrival, m.Profile):
        return _profile_gaps(arrival.profile, rng)
    if isinstance(arrival, m.Mmpp):
        return _mmpp_gaps(arrival, rng)
    if isinstance(arrival, m.Trace):
        assert trace is not None
        times = trace.times.tolist()
        state = {"i": 0, "last": 0.0}

        def trace_gap() -> float | None:
            i = state["i"]
            if i >= len(times):
                return None
            state["i"] = i + 1
            gap = max(0.0, times[i] - state["last"])
            state["last"] = times[i]
            return gap

        return trace_gap
    raise TypeError(f"unknown arrival process {arrival!r}")


def _block_gaps(draw: Callable[[int], np.ndarray]) -> GapFn:
    buf: list[float] = []
    pos = [0]

    def gap() -> float:
        nonlocal buf
        i = pos[0]
        if i >= len(buf):
            buf = draw(BLOCK).tolist()
            i = 0
        pos[0] = i + 1
        return buf[i]

    return gap


def profile_rate(profile: list[tuple[float, float]], t: float) -> float:
    """The piecewise-linear rate at time t (constant before the first and after the last point)."""
    if t <= profile[0][0]:
        return profile[0][1]
    for (t0, r0), (t1, r1) in itertools.pairwise(profile):
        if t <= t1:
            if t1 == t0:
                return r1
            return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
    return profile[-1][1]


def _profile_gaps(profile: list[tuple[float, float]], rng: np.random.Generator) -> GapFn:
    """Non-homogeneous Poisson arrivals by thinning, piece by piece (exact for linear rates)."""
    pieces = list(profile)
    now = [0.0]
    exp = _block_gaps(lambda n: rng.exponential(1.0, n))
    uni = _block_gaps(lambda n: rng.random(n))

    def gap() -> float | None:
        t = now[0]
        while True:
            # bound the rate on the current linear piece, so thinning stays efficient
            seg_end = next((pt for pt, _ in pieces if pt > t), math.inf)
            rmax = max(profile_rate(pieces, t), profile_rate(pieces, min(seg_end, t + 1e12)))
            if rmax <= 0:
                if seg_end == math.inf:
                    return None
                t = seg_end
                continue
            cand = t + exp() / rmax  # type: ignore[operator]
            if cand > seg_end:
                t = seg_end
                continue
            t = cand
            if uni() * rmax <= profile_rate(pieces, t):  # type: ignore[operator]
                g = t - now[0]
                now[0] = t
                return g

    return gap


def _mmpp_gaps(arrival: m.Mmpp, rng: np.random.Generator) -> GapFn:
    """Two-state MMPP: rate ``rates[s]``, leaving state s at rate ``switch[s]``."""
    rates = arrival.rates
    switch = arrival.switch
    if not any(r > 0 for r in rates):
        return lambda: None  # no request ever arrives (validation refuses this, too)
    exp = _block_gaps(lambda n: rng.exponential(1.0, n))
    state = {"s": 0, "t": 0.0, "until": 0.0}
    state["until"] = exp() / switch[0]  # type: ignore[operator]

    def gap() -> float | None:
        t0 = state["t"]
        t = t0
        while True:
            s = int(state["s"])
            r = rates[s]
            cand = t + exp() / r if r > 0 else math.inf  # type: ignore[operator]
            if cand <= state["until"]:
                state["t"] = cand
                return cand - t0
            t = state["until"]
            state["s"] = 1 - s
            state["until"] = t + exp() / switch[1 - s]  # type: ignore[operator]

    return gap
