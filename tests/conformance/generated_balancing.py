"""Generated balancing schedules, run on a real HAProxy and on the twin (differential tests).

A :class:`Schedule` is a small pool (2-6 servers, weights 0-256, backup flags, members
rendered ``disabled``, an HTTP health monitor or none) under one algorithm (ROUND_ROBIN,
LEAST_CONNECTIONS, SOURCE_IP) and a list of steps:

* ``("req", n)``: n client requests (sequential for ROUND_ROBIN and SOURCE_IP, from a
  fresh 127.x.y.z source each for SOURCE_IP; held open by the backends for
  LEAST_CONNECTIONS, so that connection counts build up);
* ``("release", r)``: LEAST_CONNECTIONS only, one held request of a busy server ends
  (the ``r``-th busy server, counting modulo their number, in HAProxy's view);
* ``("fail", i, kind)`` / ``("heal", i)``: server i's backend starts refusing
  connections or answering 500 (``kind`` refuse/error), or becomes healthy again; with a
  health monitor its HAProxy health check takes it DOWN or UP (requests wait for that),
  without one it stays UP: requests to a refusing server are retried and redispatched
  (``retries 3``, ``option redispatch``), and an erroring one answers 500 itself;
* ``("maint", i)`` / ``("ready", i)``: ``set server …/… state maint|ready``;
* ``("weight", i, w)``: ``set server …/… weight w`` (for SOURCE_IP only 0 or the
  configured weight: HAProxy refuses other weights for a static algorithm).

:func:`run_on_haproxy` runs a schedule against HAProxy 2.6 on 127.0.0.1 with the
configuration :func:`lbsim.haproxy.config.render` produces for the equivalent scenario
(``loopback=True``, lbsim names as ids). One change to the rendered text: ``inter 1s``
becomes ``inter 200ms`` (Octavia's ``delay`` is whole seconds; balancing does not depend
on the check interval, and five times faster checks keep a schedule near a second).
:func:`run_on_twin` runs it through the twin's objects, driven as the amphora drives
them: a :class:`lbsim.sim.dataplane.Backend` (whose balancer is
``lbsim.haproxy.balancing.make_balancer``) plus one
:class:`lbsim.haproxy.healthcheck.HealthCounter` per server; every check result is
recorded on the counter, then the server's usability and weight are pushed to the
backend (``Amphora._record_state``), and status strings come from
:func:`lbsim.haproxy.healthcheck.data_plane_state`.

Compared exactly: the server of every request (-1 for a 503), and after every step the
status string of every server (``UP``, ``UP 1/3``, ``DOWN``, ``DOWN 2/3``, ``MAINT``,
``no check``). While a health check moves a server, ``show stat`` is polled every 10 ms;
the states seen on the way must appear, in order, in the twin's sequence (polling may
miss a state that lasts only until the next check, never invent one).
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from lbsim.haproxy.config import LoopbackPlan, backend_name, render
from lbsim.haproxy.healthcheck import HealthCounter, data_plane_state
from lbsim.scenario import model as m
from lbsim.sim.dataplane import HASH_ALGORITHMS, RETRIES, Backend, Server

from .haproxy_harness import (
    HEALTH_PATH,
    BackendServer,
    HAProxy,
    HAProxyError,
    Mode,
    abort_connection,
    http_get,
    int_to_ip,
    ip_to_int,
    read_reply,
    send_request,
    transient_status,
)

ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
#: The rendered ``inter 1s`` is run as this (see the module docstring).
FAST_INTER = "200ms"
POLL = 0.01
Step = tuple[Any, ...]


@dataclass(frozen=True)
class Schedule:
    """One generated (or recorded) differential case."""

    algorithm: str
    weights: tuple[int, ...]
    backup: tuple[bool, ...]
    admin: tuple[bool, ...]  # admin_state_up at start (False: rendered ``disabled``)
    checked: bool  # an HTTP health monitor on the pool
    rise: int
    fall: int
    steps: tuple[Step, ...]
    seed: int = 0  # the source addresses of SOURCE_IP requests

    def label(self) -> str:
        """A short id for test names and reports."""
        n = sum(s[1] for s in self.steps if s[0] == "req")
        return f"{self.algorithm.lower()}-{len(self.weights)}srv-{len(self.steps)}steps-{n}req"


# ======================================================================================
# Generator
# ======================================================================================


def _weight(rnd: random.Random) -> int:
    r = rnd.random()
    if r < 0.08:
        return 0
    if r < 0.75:
        return rnd.randint(1, 8)
    return rnd.randint(9, 256)


def generate(seed: int) -> Schedule:
    """A random schedule, a pure function of ``seed`` (no global state)."""
    rnd = random.Random(seed)
    algo = ALGORITHMS[seed % 3] if rnd.random() < 0.8 else rnd.choice(ALGORITHMS)
    n = rnd.randint(2, 6)
    weights = [_weight(rnd) for _ in range(n)]
    backup = [rnd.random() < 0.2 for _ in range(n)]
    admin = [rnd.random() >= 0.12 for _ in range(n)]
    checked = rnd.random() < 0.85
    rise, fall = rnd.randint(1, 3), rnd.randint(1, 3)
    faulty = [False] * n
    cur_admin = list(admin)
    cur_weights = list(weights)
    steps: list[Step] = []
    held = 0

    def others_active(i: int) -> int:
        return sum(1 for j in range(n) if j != i and cur_admin[j] and cur_weights[j] and not backup[j])

    for _ in range(rnd.randint(3, 8)):
        kind = rnd.random()
        i = rnd.randrange(n)
        # without a monitor a refusing server stays UP: keep two other active servers
        # while it refuses, so that every retry is redispatched at once (no 1 s waits)
        frozen = not checked and any(faulty)
        if kind < 0.4 or (frozen and kind >= 0.55):
            if algo == "LEAST_CONNECTIONS":
                k = rnd.randint(1, 8)
                held += k
                steps.append(("req", k))
            else:
                steps.append(("req", rnd.randint(1, 60 if algo == "ROUND_ROBIN" else 40)))
        elif kind < 0.55:
            if faulty[i]:
                steps.append(("heal", i))
            elif checked or algo == "SOURCE_IP" or any(faulty) or others_active(i) < 2:
                steps.append(("fail", i, "error" if not checked else rnd.choice(("refuse", "error"))))
            else:
                steps.append(("fail", i, rnd.choice(("refuse", "error"))))
            faulty[i] = not faulty[i]
        elif kind < 0.7:
            steps.append(("ready" if not cur_admin[i] else "maint", i))
            cur_admin[i] = not cur_admin[i]
        elif kind < 0.85 or algo != "LEAST_CONNECTIONS":
            if algo == "SOURCE_IP":
                w = rnd.choice((0, weights[i]))
            else:
                w = _weight(rnd)
            cur_weights[i] = w
            steps.append(("weight", i, w))
        elif held:
            for _ in range(rnd.randint(1, min(4, held))):
                steps.append(("release", rnd.randrange(6)))
                held -= 1
        if algo == "LEAST_CONNECTIONS" and held > 40:
            break
    steps.append(("req", rnd.randint(10, 60) if algo != "LEAST_CONNECTIONS" else rnd.randint(2, 8)))
    return Schedule(algo, tuple(weights), tuple(backup), tuple(admin), checked, rise, fall, tuple(steps), seed)


# ======================================================================================
# Result of one run
# ======================================================================================


@dataclass
class Trace:
    """What one side did: the server of every request, and states along the way."""

    picks: list[int] = field(default_factory=list)
    #: after every step: the status string of every server
    states: list[tuple[str, ...]] = field(default_factory=list)
    #: per step that moved a server's health: (server, states seen in order)
    moves: list[tuple[int, list[str]]] = field(default_factory=list)


def scenario_for(s: Schedule) -> m.Scenario:
    """The schedule's pool as an lbsim scenario (what ``render`` needs)."""
    pool: dict[str, Any] = {
        "name": "p",
        "protocol": "HTTP",
        "lb_algorithm": s.algorithm,
        "members": [
            {
                "name": f"m{i}",
                "address": f"10.0.0.{10 + i}",
                "protocol_port": 8080,
                "weight": w,
                "backup": b,
                "admin_state_up": a,
            }
            for i, (w, b, a) in enumerate(zip(s.weights, s.backup, s.admin, strict=True))
        ],
    }
    if s.checked:
        pool["healthmonitor"] = {
            "type": "HTTP",
            "delay": 1,
            "timeout": 1,
            "max_retries": s.rise,
            "max_retries_down": s.fall,
            "url_path": HEALTH_PATH,
        }
    return m.Scenario.model_validate(
        {
            "name": "gen",
            "duration": 10,
            "loadbalancer": {
                "name": "lb",
                "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p"}],
                "pools": [pool],
            },
        }
    )


def source_of(s: Schedule, k: int) -> str:
    """The client address of request ``k`` of a SOURCE_IP schedule (127.0.0.0/8)."""
    rnd = random.Random(s.seed * 1_000_003 + k)
    return int_to_ip(ip_to_int("127.0.0.0") | rnd.randrange(1, 2**24 - 1))


# ======================================================================================
# Twin side
# ======================================================================================


@dataclass
class _Stub:
    """What :class:`Backend` reads of a server: its global index."""

    gidx: int


class TwinPool:
    """The twin's HAProxy backend for a schedule, driven as ``Amphora`` drives it."""

    def __init__(self, s: Schedule) -> None:
        self.s = s
        n = len(s.weights)
        servers = cast(list[Server], [_Stub(i) for i in range(n)])
        self.backend = Backend("p", s.algorithm, servers, list(s.weights), list(s.backup))
        self.weights = list(s.weights)
        self.admin = list(s.admin)
        self.counters = [HealthCounter(s.rise, s.fall) if s.checked else None for _ in range(n)]
        self.behaviour = ["healthy"] * n
        self.conns = [0] * n
        for i in range(n):
            self._sync(i)

    def usable(self, i: int) -> bool:
        """``ServerState.usable``: admin up and (unchecked or UP)."""
        c = self.counters[i]
        return self.admin[i] and (c is None or c.is_up())

    def _sync(self, i: int) -> None:
        """``Amphora._record_state``: usability, then weight, to the backend."""
        self.backend.set_usable(i, self.usable(i))
        self.backend.set_weight(i, self.weights[i])

    def state(self, i: int) -> str:
        """HAProxy's status string for server i."""
        return data_plane_state(
            self.counters[i], admin_up=self.admin[i], weight=self.weights[i], checked=self.s.checked
        )

    def states(self) -> tuple[str, ...]:
        return tuple(self.state(i) for i in range(len(self.weights)))

    def check(self, i: int) -> None:
        """One health check of server i with its current behaviour (the amphora skips
        checks in MAINT)."""
        c = self.counters[i]
        if c is None or not self.admin[i]:
            return
        c.record(self.behaviour[i] == "healthy")
        self._sync(i)

    def settle(self, i: int) -> list[str]:
        """Run server i's checks until its state stops changing; the states on the way."""
        seen = [self.state(i)]
        for _ in range(self.s.rise + self.s.fall + 2):
            self.check(i)
            if self.state(i) != seen[-1]:
                seen.append(self.state(i))
        return seen

    def pick(self, k: int) -> int:
        """Request ``k``: the server that answers it, or -1 (503). A refusing server is
        retried and redispatched as ``DataPlane._failed``/``_retry`` do: up to
        ``RETRIES`` retries; a retry is redispatched (release, then ``pick(avoid=…)``)
        when it is the last one, or at once when another active server is usable and
        the algorithm is not a hash."""
        be = self.backend
        src = ip_to_int(source_of(self.s, k)) if self.s.algorithm == "SOURCE_IP" else 0
        i = be.balancer.pick(src)
        attempt = 0
        while i >= 0 and self.behaviour[i] == "refuse":
            if attempt >= RETRIES:
                i = -1
                break
            many = be.active_usable() > 1
            redispatch = attempt + 1 == RETRIES or (many and self.s.algorithm not in HASH_ALGORITHMS)
            attempt += 1
            if not be.usable[i]:
                redispatch = True
            if redispatch:
                be.balancer.release(i)
                i = be.balancer.pick(src, 0, i)
        if i >= 0 and self.s.algorithm == "LEAST_CONNECTIONS":
            self.conns[i] += 1
        elif i >= 0 and be.balancer.tracks_connections:
            be.balancer.release(i)
        return i


def run_on_twin(s: Schedule, release_order: list[int] | None = None) -> Trace:
    """The schedule on the twin. ``release_order`` lists, for each ``release`` step, the
    server HAProxy released (the twin releases the same one; None: choose as HAProxy
    would from the twin's own counts)."""
    tw = TwinPool(s)
    out = Trace()
    for i in range(len(s.weights)):  # start-up: every enabled server passes its first check
        tw.check(i)
    out.states.append(tw.states())
    k = 0
    releases = iter(release_order or [])
    for step in s.steps:
        op = step[0]
        if op == "req":
            for _ in range(step[1]):
                out.picks.append(tw.pick(k))
                k += 1
        elif op == "release":
            busy = [i for i, c in enumerate(tw.conns) if c]
            i = next(releases) if release_order is not None else busy[step[1] % len(busy)] if busy else -1
            if i >= 0:
                tw.conns[i] -= 1
                tw.backend.balancer.release(i)
        elif op in ("fail", "heal"):
            i = step[1]
            tw.behaviour[i] = step[2] if op == "fail" else "healthy"
            if tw.admin[i] and s.checked:
                out.moves.append((i, tw.settle(i)))
        elif op == "maint":
            tw.admin[step[1]] = False
            tw._sync(step[1])
        elif op == "ready":
            i = step[1]
            c = tw.counters[i]
            if c is not None and not tw.admin[i]:
                c.reset_to_start()  # leaving maintenance: h = rise
            tw.admin[i] = True
            tw._sync(i)
            if c is not None:
                out.moves.append((i, ["MAINT", *tw.settle(i)]))
        elif op == "weight":
            tw.weights[step[1]] = step[2]
            tw._sync(step[1])
        out.states.append(tw.states())
    return out


# ======================================================================================
# HAProxy side
# ======================================================================================


class HoldingBackend(BackendServer):
    """A backend whose health-check answers follow its mode, while client requests are
    held unanswered when ``holding`` is set (LEAST_CONNECTIONS: connections stay open
    until the test releases them), whatever the mode."""

    holding = False

    def _answer(self, conn: socket.socket, is_check: bool) -> None:
        if is_check or not self.holding:
            super()._answer(conn, is_check)
            return
        if not self._hold(conn):
            return
        body = self.name.encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


class HAProxySide:
    """A running HAProxy for a schedule, with its backends."""

    def __init__(self, s: Schedule, stack: contextlib.ExitStack) -> None:
        self.s = s
        self.sc = scenario_for(s)
        self.backends = [HoldingBackend(f"m{i}") for i in range(len(s.weights))]
        for b in self.backends:
            b.holding = s.algorithm == "LEAST_CONNECTIONS"
            b.start()
            stack.callback(b.stop)
        self.name = backend_name(self.sc, "p", "l", "name")
        self.hap = HAProxy(render=self._config)
        stack.callback(self.hap.stop)
        self.hap.start()
        self.socks: list[socket.socket] = []
        stack.callback(self._close_socks)

    def _config(self, port: int, sock: Path) -> str:
        plan = LoopbackPlan(
            listener_ports={"l": port},
            member_ports={f"m{i}": b.port for i, b in enumerate(self.backends)},
            stats_socket=str(sock),
        )
        text = render(self.sc, loopback=True, plan=plan, ids="name")
        if self.s.checked:
            checked = sum(1 for a in text.splitlines() if " check inter 1s " in a)
            assert checked == len(self.s.weights), text
            text = text.replace(" check inter 1s ", f" check inter {FAST_INTER} ")
        return text

    def _close_socks(self) -> None:
        for sk in self.socks:
            abort_connection(sk)

    def states(self) -> tuple[str, ...]:
        rows = self.hap.server_stats(self.name)
        return tuple(rows[f"m{i}"]["status"] for i in range(len(self.s.weights)))

    def watch(self, i: int, done: Any, timeout: float = 8.0) -> list[str]:
        """Poll server i's status until ``done(status)``; the distinct states seen."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            st = self.hap.server_stats(self.name)[f"m{i}"]["status"]
            if not transient_status(st) and (not seen or seen[-1] != st):
                seen.append(st)
            if done(st):
                return seen
            if time.monotonic() > deadline:
                raise HAProxyError(f"m{i} still {st!r} after {timeout}s (seen {seen})")
            time.sleep(POLL)

    def settle_start(self) -> None:
        """Wait for every enabled checked server's first check (status ``UP``)."""
        if not self.s.checked:
            return
        for i, a in enumerate(self.s.admin):
            if a:
                self.watch(i, lambda st: st == "UP")

    def request(self, k: int) -> int:
        """Request ``k``: the server that got it, or -1 for a 503."""
        if self.s.algorithm != "LEAST_CONNECTIONS":
            src = source_of(self.s, k) if self.s.algorithm == "SOURCE_IP" else None
            reply = http_get(self.hap.port, src=src)
            if reply.status == 503:
                return -1
            assert reply.status in (200, 500), reply  # 500: an erroring server answered
            return int(reply.body[1:])
        before = [b.requests for b in self.backends]
        sk = send_request(self.hap.port)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = [b.requests for b in self.backends]
            if now != before:
                self.socks.append(sk)
                return next(i for i, (a, b) in enumerate(zip(now, before, strict=True)) if a != b)
            r, _, _ = select.select([sk], [], [], 0.002)
            if r and not any(b.requests != a for b, a in zip(self.backends, before, strict=True)):
                reply = read_reply(sk)
                assert reply.status == 503, reply
                return -1
        raise HAProxyError("request neither reached a backend nor was answered")

    def scur(self, i: int) -> int:
        return int(self.hap.server_stats(self.name)[f"m{i}"]["scur"])

    def release(self, r: int) -> int:
        """Let one held request of the ``r``-th busy server end; that server, or -1."""
        busy = [i for i, b in enumerate(self.backends) if b.held()]
        if not busy:
            return -1
        i = busy[r % len(busy)]
        expect = self.scur(i) - 1
        self.backends[i].release_held(1)
        deadline = time.monotonic() + 5
        while self.scur(i) != expect:
            if time.monotonic() > deadline:
                raise HAProxyError(f"m{i}: scur did not drop to {expect}")
            time.sleep(0.002)
        return i

    def command(self, cmd: str) -> None:
        reply = self.hap.command(cmd).strip()
        if reply:
            raise HAProxyError(f"{cmd!r} refused: {reply}")


def run_on_haproxy(s: Schedule) -> tuple[Trace, list[int]]:
    """The schedule on a real HAProxy; also returns the servers released, in order."""
    out = Trace()
    released: list[int] = []
    with contextlib.ExitStack() as stack:
        h = HAProxySide(s, stack)
        h.settle_start()
        out.states.append(h.states())
        admin = list(s.admin)
        faulty = [False] * len(s.weights)
        k = 0
        for step in s.steps:
            op = step[0]
            if op == "req":
                for _ in range(step[1]):
                    out.picks.append(h.request(k))
                    k += 1
            elif op == "release":
                released.append(h.release(step[1]))
            elif op in ("fail", "heal"):
                i = step[1]
                if op == "fail":
                    h.backends[i].set_mode(Mode.REFUSE if step[2] == "refuse" else Mode.ERROR)
                else:
                    h.backends[i].set_mode(Mode.HEALTHY)
                faulty[i] = op == "fail"
                if admin[i] and s.checked:
                    target = "DOWN" if faulty[i] else "UP"
                    out.moves.append((i, h.watch(i, lambda st, t=target: st == t)))  # type: ignore[misc]
            elif op in ("maint", "ready"):
                i = step[1]
                h.command(f"set server {h.name}/m{i} state {op}")
                admin[i] = op == "ready"
                if op == "ready" and s.checked:
                    target = "DOWN" if faulty[i] else "UP"
                    out.moves.append((i, ["MAINT", *h.watch(i, lambda st, t=target: st == t)]))  # type: ignore[misc]
            elif op == "weight":
                h.command(f"set server {h.name}/m{step[1]} weight {step[2]}")
            out.states.append(h.states())
    return out, released


# ======================================================================================
# Comparison
# ======================================================================================


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    """Whether ``part`` appears in ``whole`` in order (not necessarily contiguous)."""
    it = iter(whole)
    return all(x in it for x in part)


def differences(real: Trace, twin: Trace) -> list[str]:
    """What differs between the two traces (empty: they agree)."""
    out = []
    if real.picks != twin.picks:
        first = next(
            (j for j, (a, b) in enumerate(zip(real.picks, twin.picks, strict=False)) if a != b),
            min(len(real.picks), len(twin.picks)),
        )
        out.append(
            f"picks differ from request {first} ({sum(a != b for a, b in zip(real.picks, twin.picks, strict=False))}"
            f" of {len(real.picks)} differ):\n  HAProxy {real.picks}\n  twin    {twin.picks}"
        )
    for j, (a, b) in enumerate(zip(real.states, twin.states, strict=False)):
        if a != b:
            out.append(f"states after step {j}: HAProxy {a}, twin {b}")
    if len(real.moves) != len(twin.moves):
        out.append(f"health moves: HAProxy {real.moves}, twin {twin.moves}")
    else:
        for (i, seen), (ti, path) in zip(real.moves, twin.moves, strict=True):
            if i != ti or not is_subsequence(seen, path) or seen[-1:] != path[-1:]:
                out.append(f"m{i} moved through {seen} in HAProxy, {path} in the twin")
    return out
