"""The data plane: HAProxy frontends and backends on the amphora, and the member servers.

This is the hot path: one simulated request costs two scheduled SimPy events (its arrival
and its completion) and no SimPy process. Events are reused from free lists and carry
their context in attributes, so a request allocates one small tuple and nothing else.

Request life (HAProxy semantics, haproxy-semantics.md "Connections, queues, errors"):

1. A request arrives at a :class:`Frontend` (listener). While the frontend holds
   ``maxconn`` connections (listener ``connection_limit``), new ones wait in the kernel
   backlog, FIFO, and the frontend reports ``FULL``.
2. The :class:`Backend` (pool) picks a member with its balancer. No usable member → 503
   at once.
3. The :class:`Server` (member) behaves as its current behaviour says: ``healthy`` and
   ``slow`` serve with ``concurrency`` slots and a FIFO queue; ``refuse`` makes HAProxy
   retry (``retries 3``, a turn-around of min(timeout connect, 1 s) between attempts, the
   last one redispatched to another member by ``option redispatch``), then 503;
   ``hang`` holds the request until ``timeout_member_data`` → 504; ``error`` answers at
   once with its HTTP status.
4. Completion records the outcome and latency (arrival to response) and frees the
   frontend connection, which admits the next backlog entry.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL, Event

from lbsim.balancing import Balancer, make_balancer
from lbsim.distributions import Sampler
from lbsim.metrics import LatencyRecorder

HEALTHY, REFUSE, HANG, ERROR, SLOW = "healthy", "refuse", "hang", "error", "slow"
#: behaviours are compared by identity on the hot path; this maps any equal string to them
CANON = {b: b for b in (HEALTHY, REFUSE, HANG, ERROR, SLOW)}

#: outcome labels used in results (besides HTTP status codes of member errors)
OUT_OK = "ok"
OUT_503 = "503"
OUT_504 = "504"
OUT_CONNECT = "connect"


class Tick(Event):
    """A reusable scheduled callback: SimPy's cheapest way to run code at a future time."""

    def __init__(self, env: simpy.Environment, fn: Callable[[Any], None]) -> None:
        self.env = env
        self.callbacks: list[Any] | None = None
        self._value = None
        self._ok = True
        self._cb = [fn]
        self.a: Any = None
        self.b: Any = None

    def at(self, delay: float) -> None:
        """Schedule this tick ``delay`` seconds from now."""
        self.callbacks = self._cb
        self.env.schedule(self, NORMAL, delay)


class Server:
    """A member as the data plane sees it: its serving behaviour and its queue."""

    __slots__ = (
        "backend",
        "behaviour",
        "busy",
        "busy_time",
        "concurrency",
        "dp",
        "factor",
        "gidx",
        "name",
        "queue",
        "served",
        "service",
        "status",
    )

    def __init__(
        self,
        dp: DataPlane,
        gidx: int,
        name: str,
        concurrency: int,
        service: Sampler,
        behaviour: str = HEALTHY,
        status: int = 500,
        factor: float = 10.0,
    ) -> None:
        self.dp = dp
        self.gidx = gidx
        self.name = name
        self.concurrency = concurrency
        self.service = service
        self.behaviour = CANON[behaviour]
        self.status = status
        self.factor = factor
        self.busy = 0
        self.queue: deque[tuple[Any, ...]] = deque()
        self.busy_time = 0.0
        self.served = 0
        self.backend: Backend | None = None

    def set_behaviour(self, behaviour: str, status: int = 500, factor: float = 10.0) -> None:
        """Change how the member answers from now on (fault injection)."""
        self.behaviour = CANON[behaviour]
        self.status = status
        self.factor = factor
        self._drain_queue()

    def receive(self, req: tuple[Any, ...]) -> None:
        """A request arrives from HAProxy. ``req`` = (t0, src, port, balancer, local_idx, t_sent)."""
        b = self.behaviour
        if b is HEALTHY or b is SLOW:
            if self.busy < self.concurrency:
                self._start(req)
            else:
                self.queue.append(req)
        elif b is REFUSE:
            self.dp.refused(self, req)
        elif b is HANG:
            self.dp.hold_until_timeout(self, req)
        else:  # ERROR: answers at once with its status
            self.dp.finish(req, self.gidx, str(self.status))

    def _start(self, req: tuple[Any, ...]) -> None:
        self.busy += 1
        s = self.service()
        if self.behaviour is SLOW:
            s *= self.factor
        self.busy_time += s
        dp = self.dp
        tick = dp.free_ticks.pop() if dp.free_ticks else Tick(dp.env, dp.on_complete)
        tick.a = self
        tick.b = req
        tick.at(s)

    def done(self) -> None:
        """A service slot freed up: start the next queued request, if any."""
        self.busy -= 1
        self.served += 1
        self._drain_queue()

    def _drain_queue(self) -> None:
        q = self.queue
        dp = self.dp
        if self.behaviour is not HEALTHY and self.behaviour is not SLOW:
            # the member stopped answering: what waits inside it times out at HAProxy
            while q:
                dp.hold_until_timeout(self, q.popleft())
            return
        now = dp.env.now
        while q and self.busy < self.concurrency:
            req = q.popleft()
            if now - req[5] >= req[6].timeout_data:
                dp.finish(req, self.gidx, OUT_504)  # HAProxy gave up while it waited here
                continue
            self._start(req)


class Backend:
    """A pool as rendered into one HAProxy backend: its servers and their balancer."""

    def __init__(self, name: str, algorithm: str, servers: list[Server], weights: list[int], backup: list[bool]):
        self.name = name
        self.algorithm = algorithm
        self.servers = servers
        self.weights = list(weights)
        self.backup = list(backup)
        self.usable = [True] * len(servers)
        self.balancer: Balancer = make_balancer(algorithm, self.weights, self.backup)
        for s in servers:
            s.backend = self

    def set_usable(self, local: int, usable: bool) -> None:
        """Health or admin state changed: the server leaves or rejoins the rotation."""
        if self.usable[local] != usable:
            self.usable[local] = usable
            self.balancer.set_usable(local, usable)

    def set_weight(self, local: int, weight: int) -> None:
        """Weight changed at run time (weight 0 = drain)."""
        if self.weights[local] != weight:
            self.weights[local] = weight
            self.balancer.set_weight(local, weight)

    def usable_weight(self) -> int:
        """HAProxy's total usable weight (0 → the backend reports DOWN)."""
        return self.balancer.usable_weight()


class Frontend:
    """A listener as rendered into one HAProxy frontend."""

    __slots__ = ("active", "backend", "backlog", "full_since", "maxconn", "name", "timeout_connect", "timeout_data")

    def __init__(self, name: str, maxconn: int, backend: Backend | None, timeout_connect: float, timeout_data: float):
        self.name = name
        self.maxconn = maxconn
        self.backend = backend
        self.active = 0
        self.backlog: deque[tuple[float, int, int]] = deque()
        self.timeout_connect = timeout_connect
        self.timeout_data = timeout_data
        self.full_since: float | None = None

    @property
    def status(self) -> str:
        """HAProxy's frontend status string as the amphora reports it."""
        return "FULL" if self.active >= self.maxconn else "OPEN"


class DataPlane:
    """All frontends, backends and servers of one amphora's HAProxy, plus measurements."""

    def __init__(self, env: simpy.Environment, n_servers_hint: int, warmup: float, log_requests: bool):
        self.env = env
        self.warmup = warmup
        self.servers: list[Server] = []
        self.frontends: dict[str, Frontend] = {}
        self.backends: dict[str, Backend] = {}
        self.free_ticks: list[Tick] = []
        self.vip_up = True
        self.latency = LatencyRecorder(n_servers_hint)
        # counters (after warm-up), indexed by global server index; -1 row = no member
        self.requests = 0
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.member_requests: list[int] = [0] * n_servers_hint
        self.member_ok: list[int] = [0] * n_servers_hint
        self.member_errors: list[dict[str, int]] = [{} for _ in range(n_servers_hint)]
        self.per_second_ok: list[int] = []
        self.per_second_err: list[int] = []
        self.log_requests = log_requests
        self.log: list[tuple[float, Any, int, float, str]] = []
        self.on_frontend_change: Callable[[Frontend], None] | None = None

    # ------------------------------------------------------------------ topology
    def add_server(self, server: Server) -> None:
        """Register a member server (global index = order of registration)."""
        self.servers.append(server)
        if len(self.servers) > len(self.member_requests):
            n = len(self.servers)
            self.member_requests += [0] * (n - len(self.member_requests))
            self.member_ok += [0] * (n - len(self.member_ok))
            self.member_errors += [{} for _ in range(n - len(self.member_errors))]
            self.latency.grow(n)

    # ------------------------------------------------------------------ request path
    def arrive(self, fe: Frontend, src: Any, port: int) -> None:
        """A client opens a connection to the listener."""
        now = self.env.now
        if not self.vip_up:
            self.finish((now, src, port, None, -1, now, fe, 0), -1, OUT_CONNECT, release=False)
            return
        if fe.active >= fe.maxconn:
            fe.backlog.append((now, src, port))
            return
        fe.active += 1
        if fe.active >= fe.maxconn and self.on_frontend_change is not None:
            self.on_frontend_change(fe)
        self.dispatch(fe, now, src, port)

    def dispatch(self, fe: Frontend, t0: float, src: Any, port: int) -> None:
        """HAProxy picks a server in the listener's default backend and connects."""
        be = fe.backend
        now = self.env.now
        if be is None:
            self.finish((t0, src, port, None, -1, now, fe, 0), -1, OUT_503)
            return
        bal = be.balancer
        local = bal.pick(src, port)
        if local < 0:
            self.finish((t0, src, port, None, -1, now, fe, 0), -1, OUT_503)
            return
        be.servers[local].receive((t0, src, port, bal, local, now, fe, 0))

    def refused(self, server: Server, req: tuple[Any, ...]) -> None:
        """Connection refused: HAProxy retries after a turn-around, redispatching the last."""
        if req[7] >= 3:
            self.finish(req, server.gidx, OUT_503)
            return
        tick = Tick(self.env, self._retry)
        tick.a = server
        tick.b = req
        tick.at(min(req[6].timeout_connect, 1.0))

    def _retry(self, tick: Tick) -> None:
        server: Server = tick.a
        t0, src, port, bal, local, _sent, fe, attempt = tick.b
        attempt += 1
        now = self.env.now
        be = server.backend
        if attempt == 3 and be is not None:  # option redispatch: the last retry may go elsewhere
            if bal is not None:
                bal.release(local)
            avoid = local if bal is be.balancer else -1
            bal = be.balancer
            local = bal.pick(src, port, avoid)
            if local < 0:
                self.finish((t0, src, port, None, -1, now, fe, attempt), server.gidx, OUT_503)
                return
            be.servers[local].receive((t0, src, port, bal, local, now, fe, attempt))
            return
        server.receive((t0, src, port, bal, local, now, fe, attempt))

    def hold_until_timeout(self, server: Server, req: tuple[Any, ...]) -> None:
        """A hung member never answers: HAProxy's ``timeout server`` ends it with 504."""
        tick = Tick(self.env, self._hang_timeout)
        tick.a = server
        tick.b = req
        tick.at(max(0.0, req[5] + req[6].timeout_data - self.env.now))

    def _hang_timeout(self, tick: Tick) -> None:
        self.finish(tick.b, tick.a.gidx, OUT_504)

    def on_complete(self, tick: Tick) -> None:
        """A member finished serving a request."""
        server: Server = tick.a
        req = tick.b
        tick.a = tick.b = None
        self.free_ticks.append(tick)
        if self.env.now - req[5] > req[6].timeout_data:
            self.finish(req, server.gidx, OUT_504)
        else:
            self.finish(req, server.gidx, OUT_OK)
        server.done()

    def finish(self, req: tuple[Any, ...], gidx: int, outcome: str, release: bool = True) -> None:
        """Record a request's outcome and free its frontend connection."""
        now = self.env.now
        t0 = req[0]
        bal = req[3]
        if bal is not None:
            bal.release(req[4])
        if t0 >= self.warmup:
            sec = int(now)
            self.requests += 1
            if gidx >= 0:
                self.member_requests[gidx] += 1
            if outcome is OUT_OK:
                self.ok += 1
                latency = now - t0
                self.latency.add(gidx, latency)
                if gidx >= 0:
                    self.member_ok[gidx] += 1
                _bump(self.per_second_ok, sec)
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1
                if gidx >= 0:
                    errs = self.member_errors[gidx]
                    errs[outcome] = errs.get(outcome, 0) + 1
                _bump(self.per_second_err, sec)
            if self.log_requests:
                self.log.append((t0, req[1], gidx, now - t0, outcome))
        if release:
            fe: Frontend = req[6]
            self._release_frontend(fe)

    def _release_frontend(self, fe: Frontend) -> None:
        was_full = fe.active >= fe.maxconn
        fe.active -= 1
        if fe.backlog:
            t0, src, port = fe.backlog.popleft()
            fe.active += 1
            self.dispatch(fe, t0, src, port)
        elif was_full and self.on_frontend_change is not None:
            self.on_frontend_change(fe)


def _bump(series: list[int], sec: int) -> None:
    if sec < len(series):
        series[sec] += 1
    else:
        series.extend([0] * (sec + 1 - len(series)))
        series[sec] += 1


def build_backend(name: str, algorithm: str, servers: list[Server], weights: list[int], backup: list[bool]) -> Backend:
    """A backend with a fresh balancer (what an HAProxy reload produces)."""
    return Backend(name, algorithm, servers, weights, backup)
