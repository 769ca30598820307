"""lbsim.haproxy.balancing against a real HAProxy on loopback, pick for pick.

Each test starts tiny backends and an HAProxy with an Octavia-style backend
(``balance roundrobin|leastconn|source``, ``option allbackups``, ``retries 3``,
``option redispatch``; see haproxy_harness.octavia_backend_config), drives client
requests from 127.0.0.0/8 and compares where HAProxy sent them with what
``lbsim.haproxy.balancing`` picks for the same sequence of events.

Run: ``pytest -m haproxy tests/conformance/test_haproxy_balancing.py`` (about 20 s).
Skipped when the ``haproxy`` binary is missing, except under ``CI=true`` where that
is a failure.

Server state changes use the runtime API ``set server <b>/<s> state maint|ready``
(``disable server`` is the older alias of ``state maint``); one SOURCE_IP variant
instead lets HAProxy's own health checks mark the server DOWN.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from heapq import heappop, heappush

import pytest

from lbsim.haproxy.balancing import make_balancer

from .haproxy_harness import (
    BackendPool,
    HAProxy,
    HealthCheck,
    Mode,
    ServerSpec,
    abort_connection,
    haproxy_version,
    http_get,
    int_to_ip,
    ip_to_int,
    octavia_backend_config,
    record_fidelity,
    require_haproxy,
    send_request,
    wait_until,
)

pytestmark = pytest.mark.haproxy


@pytest.fixture(scope="module", autouse=True)
def haproxy_binary() -> str:
    """The haproxy binary (skip, or fail under CI=true, when it is missing)."""
    path = require_haproxy()
    print(f"\n{haproxy_version(path)}")
    return path


Starter = Callable[..., tuple[BackendPool, HAProxy]]


@pytest.fixture
def start() -> Iterator[Starter]:
    """Factory: ``start(weights, balance, backup=..., disabled=..., health=...)`` →
    (pool, hap). Everything started is stopped at teardown, even on failure."""
    stack: list[BackendPool | HAProxy] = []

    def _start(
        weights: Sequence[int],
        balance: str,
        backup: Sequence[bool] | None = None,
        disabled: Sequence[bool] | None = None,
        health: HealthCheck | None = None,
    ) -> tuple[BackendPool, HAProxy]:
        names = [f"s{i}" for i in range(len(weights))]
        pool = BackendPool(names).start()
        stack.append(pool)
        backup = backup or [False] * len(weights)
        disabled = disabled or [False] * len(weights)
        specs = [
            ServerSpec(n, s.port, w, b, d, check=health is not None)
            for n, s, w, b, d in zip(names, pool, weights, backup, disabled, strict=True)
        ]
        hap = HAProxy(
            render=lambda port, sock: octavia_backend_config(
                frontend_port=port, stats_socket=sock, servers=specs, balance=balance, health=health
            )
        )
        hap.start()
        stack.append(hap)
        return pool, hap

    yield _start
    for obj in reversed(stack):
        obj.stop()


def served_by(body: str) -> int:
    """Backends answer with their name ``s<i>``."""
    assert body.startswith("s"), body
    return int(body[1:])


# --------------------------------------------------------------------------------------
# ROUND_ROBIN
# --------------------------------------------------------------------------------------


RR_CASES = [
    # weights, backup, disabled-at-start, {request#: runtime commands}, requests
    ([1, 2, 3], None, None, {}, 36),
    ([5, 1, 3, 2], None, None, {33: ["s1 state maint"], 66: ["s1 state ready"]}, 110),
    (
        [7, 4, 5, 5, 8, 7],
        None,
        [False, False, False, True, False, False],
        {20: ["s4 state maint"], 45: ["s0 weight 2", "s3 state ready"], 80: ["s4 state ready"]},
        150,
    ),
    (
        [2, 1, 3, 1],
        [False, False, True, True],
        None,
        {5: ["s0 state maint", "s1 state maint"], 20: ["s3 weight 4"], 30: ["s1 state ready"]},
        45,
    ),
    ([200, 3, 17], None, None, {100: ["s0 weight 0"], 130: ["s0 weight 200"]}, 260),
]


@pytest.mark.parametrize(("weights", "backup", "disabled", "actions", "n"), RR_CASES)
def test_roundrobin_pick_order_identical(
    start: Starter,
    weights: list[int],
    backup: list[bool] | None,
    disabled: list[bool] | None,
    actions: dict[int, list[str]],
    n: int,
) -> None:
    """Sequential requests (Connection: close): HAProxy's server order equals the
    twin's, through servers leaving (maint), rejoining, reweighting and backups."""
    _pool, hap = start(weights, "roundrobin", backup, disabled)
    usable = None if disabled is None else [not d for d in disabled]
    twin = make_balancer("ROUND_ROBIN", weights, backup, usable)
    real, sim = [], []
    for k in range(n):
        for cmd in actions.get(k, []):
            server, what, value = cmd.split()
            idx = int(server[1:])
            if what == "state":
                hap.set_server_state(server, value)
                twin.set_usable(idx, value == "ready")
            else:
                hap.set_server_weight(server, int(value))
                twin.set_weight(idx, int(value))
        reply = http_get(hap.port)
        assert reply.status == 200
        real.append(served_by(reply.body))
        sim.append(twin.pick())
    same = sum(a == b for a, b in zip(real, sim, strict=True))
    record_fidelity(
        suite="balancing",
        case=f"rr-{'-'.join(map(str, weights))}",
        title=f"ROUND_ROBIN pick order, weights {weights}"
        + (f", {sum(len(v) for v in actions.values())} changes" if actions else ""),
        metric="picks identical",
        twin=f"{n} picks",
        haproxy=f"{same} of {n} identical",
        worst=n - same,
        tolerance="identical",
        ok=real == sim,
    )
    assert real == sim


# --------------------------------------------------------------------------------------
# SOURCE_IP
# --------------------------------------------------------------------------------------


def _sources(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        out.add(int_to_ip(ip_to_int("127.0.0.0") | rnd.randrange(1, 2**24 - 1)))
    return sorted(out)


@pytest.mark.parametrize(
    ("weights", "backup", "down", "how"),
    [
        ([1, 1, 1], None, 2, "maint"),
        ([2, 3, 5, 1], None, 1, "maint"),
        ([1, 1, 1], None, 0, "health"),
        ([3, 1, 2, 2], [False, False, True, True], 0, "maint"),
        ([(k * 37) % 61 + 1 for k in range(30)], None, 7, "maint"),  # large (vectorised) map
    ],
)
def test_source_mapping_identical_before_during_after_down(
    start: Starter,
    weights: list[int],
    backup: list[bool] | None,
    down: int,
    how: str,
) -> None:
    """240 client addresses in 127.0.0.0/8: same server as the twin while all are
    UP, while one is DOWN (``state maint``, or failed health checks) and after it
    comes back. Also checks the reference's observation that most sources move."""
    health = HealthCheck(delay=0.2, timeout=0.2, rise=1, fall=1) if how == "health" else None
    pool, hap = start(weights, "source", backup, None, health)
    twin = make_balancer("SOURCE_IP", weights, backup)
    sources = _sources(240, seed=len(weights) * 10 + down)

    def compare(phase: str = "") -> list[int]:
        real = [served_by(http_get(hap.port, src=s).body) for s in sources]
        sim = [twin.pick(ip_to_int(s)) for s in sources]
        if phase:
            same = sum(a == b for a, b in zip(real, sim, strict=True))
            record_fidelity(
                suite="balancing",
                case=f"source-{len(weights)}-{how}-{phase}",
                title=f"SOURCE_IP mapping of {len(sources)} addresses, {len(weights)} servers, {phase}",
                metric="same server",
                twin=f"{len(sources)} addresses",
                haproxy=f"{same} of {len(sources)} identical",
                worst=len(sources) - same,
                tolerance="identical",
                ok=real == sim,
            )
        assert real == sim
        return real

    before = compare("before")
    name = f"s{down}"
    if how == "maint":
        hap.set_server_state(name, "maint")
    else:
        pool[down].set_mode(Mode.REFUSE)
        hap.wait_status(name, "DOWN", timeout=5)
    twin.set_usable(down, False)
    during = compare(f"s{down} down")
    moved = sum(a != b for a, b in zip(before, during, strict=True))
    print(f"\nsource {weights} s{down} down ({how}): {moved} of {len(sources)} moved")
    is_backup = backup or [False] * len(weights)
    still_active = [i for i in range(len(weights)) if i != down and not is_backup[i]]
    if len(still_active) >= 2:
        assert moved > before.count(down)  # not only the failed server's sources move
    if how == "maint":
        hap.set_server_state(name, "ready")
    else:
        pool[down].set_mode(Mode.HEALTHY)
        hap.wait_status(name, "UP", timeout=5)
    twin.set_usable(down, True)
    assert compare("after") == before


# --------------------------------------------------------------------------------------
# LEAST_CONNECTIONS
# --------------------------------------------------------------------------------------


def test_leastconn_held_connections_pick_order_identical(start: Starter) -> None:
    """Requests held open on HANG backends and completed one by one: the server of
    every new request equals the twin's (checks the (conns+1)/weight key and the
    rotation of equal servers)."""
    weights = [1, 3, 2]
    pool, hap = start(weights, "leastconn")
    for s in pool:
        s.set_mode(Mode.HANG)
    twin = make_balancer("LEAST_CONNECTIONS", weights)
    rnd = random.Random(5)
    socks = []
    real, sim = [], []

    def scur(i: int) -> int:
        return int(hap.server_stats()[f"s{i}"]["scur"])

    def total_requests() -> int:
        return sum(s.requests for s in pool)

    try:
        for _ in range(70):
            busy = [i for i, s in enumerate(pool) if s.held()]
            if busy and rnd.random() < 0.45:
                i = rnd.choice(busy)
                expect = scur(i) - 1
                pool[i].release_held(1)
                assert wait_until(lambda: scur(i) == expect)  # noqa: B023 (called at once)
                twin.release(i)
            else:
                before = [s.requests for s in pool]
                socks.append(send_request(hap.port))
                assert wait_until(lambda: total_requests() == sum(before) + 1)  # noqa: B023
                real.append(next(i for i, s in enumerate(pool) if s.requests != before[i]))
                sim.append(twin.pick())
    finally:
        for sock in socks:
            abort_connection(sock)
    assert real == sim


def _twin_leastconn_shares(weights: Sequence[int], arrivals: Sequence[float], service: Sequence[float]) -> Counter[int]:
    """Event loop of the same arrivals: pick at arrival, release after the chosen
    server's service time (completions before an arrival are processed first)."""
    b = make_balancer("LEAST_CONNECTIONS", weights)
    ends: list[tuple[float, int]] = []
    got: Counter[int] = Counter()
    for t in arrivals:
        while ends and ends[0][0] <= t:
            b.release(heappop(ends)[1])
        i = b.pick()
        got[i] += 1
        heappush(ends, (t + service[i], i))
    return got


def test_leastconn_slow_server_shares_within_10_percent(start: Starter) -> None:
    """300 requests, one every 6 ms, to three equal-weight servers, one of which
    answers in 250 ms and the others in 5 ms: HAProxy's per-server shares equal the
    twin's within 10 percentage points (the reference saw 7 of 300 on the slow one)."""
    weights = [1, 1, 1]
    service = [0.25, 0.005, 0.005]
    pool, hap = start(weights, "leastconn")
    pool[0].set_mode(Mode.SLOW, delay=service[0])
    pool[1].set_mode(Mode.SLOW, delay=service[1])
    pool[2].set_mode(Mode.SLOW, delay=service[2])
    n, gap = 300, 0.006
    arrivals: list[float] = []
    lock = threading.Lock()
    results: list[int] = []

    def one() -> None:
        reply = http_get(hap.port, timeout=10)
        with lock:
            results.append(served_by(reply.body) if reply.status == 200 else -1)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as ex:
        for k in range(n):
            delay = t0 + k * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            arrivals.append(time.monotonic() - t0)
            ex.submit(one)
    assert len(results) == n and -1 not in results
    real = Counter(results)
    sim = _twin_leastconn_shares(weights, arrivals, service)
    print(f"\nleastconn slow server: HAProxy {dict(real)} twin {dict(sim)}")
    worst = max(abs(real[i] - sim[i]) / n for i in range(len(weights)))
    record_fidelity(
        suite="balancing",
        case="leastconn-slow",
        title="LEAST_CONNECTIONS with one slow server (300 requests)",
        metric="share per server",
        twin=" / ".join(str(sim[i]) for i in range(len(weights))),
        haproxy=" / ".join(str(real[i]) for i in range(len(weights))),
        worst=f"{worst * 100:.1f} pp",
        tolerance="10 pp",
        ok=worst <= 0.10,
    )
    for i in range(len(weights)):
        assert abs(real[i] - sim[i]) / n <= 0.10
    assert real[0] < n / 6  # leastconn steers traffic away from the slow server


# --------------------------------------------------------------------------------------
# Redispatch (retries 3 + option redispatch)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "algorithm", "weights", "refusing"),
    [
        ("roundrobin", "ROUND_ROBIN", [1, 2, 3], 1),
        ("roundrobin", "ROUND_ROBIN", [3, 1, 1], 0),
        ("leastconn", "LEAST_CONNECTIONS", [1, 1, 1], 1),
        ("leastconn", "LEAST_CONNECTIONS", [1, 2, 3], 0),
    ],
)
def test_redispatch_away_from_refusing_server(
    start: Starter, balance: str, algorithm: str, weights: list[int], refusing: int
) -> None:
    """A server still UP (no health check) refuses connections: HAProxy retries it,
    then redispatches the last retry. The twin models that as one ``pick()``, and
    when it lands on the refusing server (leastconn: the failed connection is
    released) a second ``pick(avoid=server)``; the served sequence must match."""
    pool, hap = start(weights, balance)
    pool[refusing].set_mode(Mode.REFUSE)
    twin = make_balancer(algorithm, weights)
    real, sim = [], []
    for _ in range(24):
        reply = http_get(hap.port)
        assert reply.status == 200
        real.append(served_by(reply.body))
        i = twin.pick()
        if i == refusing:
            twin.release(i)
            i = twin.pick(avoid=i)
        sim.append(i)
        twin.release(i)  # sequential requests: each ends before the next
    assert refusing not in real
    assert real == sim
