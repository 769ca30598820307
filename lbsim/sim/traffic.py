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
from heapq import heappush
from pathlib import Path
from typing import Any

import numpy as np

from lbsim.scenario import model as m
from lbsim.scenario.datafiles import parse_address, read_trace
from lbsim.sim.dataplane import OUT_503, OUT_CONNECT, SLOW, DataPlane
from lbsim.sim.distributions import BLOCK

__all__ = [
    "EPHEMERAL_PORTS",
    "BlockGaps",
    "TraceRows",
    "arrival_callback",
    "client_addresses",
    "load_trace",
    "make_gap_fn",
    "parse_address",
    "poisson_callback",
]

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


class BlockGaps:
    """Values drawn block by block: ``gaps()`` returns the next one.

    A Poisson source's callback (:func:`poisson_callback`) reads ``buf`` and ``i`` itself
    instead of calling, which saves a call per request; it calls when the block is used up.
    """

    __slots__ = ("buf", "draw", "i")

    def __init__(self, draw: Callable[[int], np.ndarray]) -> None:
        self.draw = draw
        self.buf: list[float] = []
        self.i = 0

    def __call__(self) -> float:
        i = self.i
        buf = self.buf
        if i >= len(buf):
            buf = self.buf = self.draw(BLOCK).tolist()
            i = 0
        self.i = i + 1
        return buf[i]


def _block_gaps(draw: Callable[[int], np.ndarray]) -> BlockGaps:
    return BlockGaps(draw)


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
            cand = t + exp() / rmax
            if cand > seg_end:
                t = seg_end
                continue
            t = cand
            if uni() * rmax <= profile_rate(pieces, t):
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
    state["until"] = exp() / switch[0]

    def gap() -> float | None:
        t0 = state["t"]
        t = t0
        while True:
            s = int(state["s"])
            r = rates[s]
            cand = t + exp() / r if r > 0 else math.inf
            if cand <= state["until"]:
                state["t"] = cand
                return cand - t0
            t = state["until"]
            state["s"] = 1 - s
            state["until"] = t + exp() / switch[1 - s]

    return gap


#: client addresses and ports are drawn this many at a time
CLIENT_BLOCK = 4096

#: what an arrival callback returns: when to run it again (the kernel reuses its entry)
Again = tuple[float, None, None] | None


def arrival_callback(
    dp: DataPlane,
    listener: str,
    gap: GapFn,
    addrs: list[Any],
    crng: np.random.Generator,
    horizon: float,
    running: Callable[[], bool] | None = None,
    trace: TraceRows | None = None,
) -> Callable[[Any, Any], Again]:
    """The kernel callback of one traffic source: a request arrives at ``listener``
    from a client, and the callback asks to run again after the next gap.

    Clients are drawn uniformly from ``addrs`` (indexes and ephemeral ports from
    ``crng``, a block at a time) unless a trace gives them. The source stops at
    ``horizon``, when ``gap`` is exhausted, or when ``running`` (if given) turns false.
    A listener that no frontend serves, or a VIP that is down, fails the connection.
    Runs once per request, so a Poisson source that no trace or ``running`` test
    concerns gets :func:`poisson_callback`, the same callback with the data plane's
    common case inlined.
    """
    env = dp.env
    n_addr = len(addrs)
    lo, hi = EPHEMERAL_PORTS
    picks: list[int] = []
    ports: list[int] = []
    pos = 0
    row = 0

    def refused(client: Any, port: int) -> None:
        now = env._now
        dp.finish((now, client, port, None, -1, now, None, 0, False), -1, OUT_CONNECT, release=False)

    if trace is None and running is None and isinstance(gap, BlockGaps):

        def next_clients() -> tuple[list[Any], list[int]]:
            picks = crng.integers(0, n_addr, CLIENT_BLOCK).tolist()
            ports = crng.integers(lo, hi + 1, CLIENT_BLOCK).tolist()
            return [addrs[p] for p in picks], ports

        return poisson_callback(dp, listener, next_clients, gap, horizon)

    def fire(_a: Any, _b: Any) -> Again:
        nonlocal picks, ports, pos, row
        if running is not None and not running():
            return None
        if trace is not None:
            k = row
            row = k + 1
            client = trace.clients[k] or addrs[k % n_addr]
            port = int(trace.ports[k]) or EPHEMERAL_PORTS[0] + k % 28000
        else:
            k = pos
            if k >= len(picks):
                picks = crng.integers(0, n_addr, CLIENT_BLOCK).tolist()
                ports = crng.integers(lo, hi + 1, CLIENT_BLOCK).tolist()
                k = 0
            pos = k + 1
            client = addrs[picks[k]]
            port = ports[k]
        fe = dp.frontends.get(listener)
        if fe is None or not dp.vip_up:
            refused(client, port)
        else:
            dp.arrive(fe, client, port)
        g = gap()
        if g is not None:
            t = env._now + g
            if t <= horizon:
                return (t, None, None)  # the kernel reschedules this callback
        return None

    return fire


def poisson_callback(
    dp: DataPlane,
    listener: str,
    next_clients: Callable[[], tuple[list[Any], list[int]]],
    gaps: BlockGaps,
    horizon: float,
) -> Callable[[Any, Any], tuple[float, None, None] | None]:
    """The kernel callback of a Poisson traffic source: what :func:`arrival_callback`'s
    general callback does per request, with :meth:`DataPlane.arrive` inlined.

    ``next_clients()`` gives the next block of client addresses and ports;
    ``gaps`` is a :class:`BlockGaps` (its ``buf`` and ``i`` are
    read here, its call draws the next block). The callback makes one request
    arrive and returns when to run again (None past ``horizon``). This is the
    hottest code of an exact run, hence one function: the common case (VIP up, no
    CPU model, no security group, L7 policies or persistence, the frontend not
    full, the server healthy with a free slot) runs here; anything else goes
    through :meth:`DataPlane.arrive` (or fails the connection when no frontend serves the
    listener), with the same effect.
    """
    env = dp.env
    fast = env.fast
    fast_seq = env.fast_seq
    complete = dp.complete
    clients: list[Any] = []
    ports: list[int] = []
    k = 0

    def arrival(_a: Any, _b: Any) -> tuple[float, None, None] | None:
        nonlocal clients, ports, k
        j = k
        try:
            src = clients[j]
        except IndexError:
            clients, ports = next_clients()
            j = 0
            src = clients[0]
        k = j + 1
        port = ports[j]
        fe = dp.frontends.get(listener)
        if (
            fe is None
            or not dp.plain_in
            or fe.allowed is not None
            or fe.router is not None
            or fe.active >= fe.maxconn
        ):
            if fe is None or not dp.vip_up:
                now = env._now
                dp.finish((now, src, port, None, -1, now, None, 0, False), -1, OUT_CONNECT, False)
            else:
                dp.arrive(fe, src, port)
        else:
            be = fe.backend
            if be is None or be.persistence is not None:
                dp.arrive(fe, src, port)
            else:
                # arrive, _admit and dispatch, inlined
                fe.stot += 1
                fe.bytes_in += fe.request_bytes
                fe.active += 1
                now = env._now
                table = be.table  # a source hash's pick, inlined
                local = table[(src & 0xFFFFFFFF) % len(table)] if table is not None else be.balancer.pick(src, port)
                if local < 0:
                    dp.finish((now, src, port, None, -1, now, fe, 0, False), -1, OUT_503)
                else:
                    server = be.servers[local]
                    req = (now, src, port, be, local, now, fe, 0, True)
                    if not server.serving:
                        dp.misbehave(server, req)
                    elif server.busy < server.concurrency:
                        server.busy += 1
                        svc = server.service
                        try:  # Sampler.__call__, inlined (a try costs nothing until it raises)
                            i = svc._i
                            s = svc._buf[i]
                            svc._i = i + 1
                        except (IndexError, AttributeError):  # a used-up block, or not a Sampler
                            s = svc()
                        if server.behaviour is SLOW:
                            s *= server.factor
                            server.slowed += 1
                        server.busy_time += s
                        heappush(fast, (now + s, next(fast_seq), complete, server, req))
                    else:
                        server.queue.append(req)
        i = gaps.i
        try:  # BlockGaps.__call__, inlined
            t = env._now + gaps.buf[i]
            gaps.i = i + 1
        except IndexError:
            t = env._now + gaps()
        return (t, None, None) if t <= horizon else None

    return arrival
