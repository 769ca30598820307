"""The compiled steady-state data plane: the same requests, picks and latencies, in numba.

Between control events (health checks that change something, heartbeats, API calls,
faults, the per-second sampler) the data plane is a deterministic queueing system: a
FIFO per member with ``concurrency`` slots, a frontend with ``maxconn`` and a kernel
backlog, and HAProxy's balancers. :class:`CompiledDataPlane` keeps that state in numpy
arrays and advances it with the kernels of :mod:`lbsim.sim.compiled_kernels` up to the
next control event, in one compiled call per chunk. Random numbers come from the same
named streams in the same blocks as the exact path (``arrivals:i``, ``clients:i``, the
pools' ``service:...`` samplers), so both paths consume identical numbers and produce
identical result files; ``tests/test_compiled.py`` asserts it on generated scenarios.

Which runs it takes (:func:`coverage`): the deployment starts running, the scenario has
no events, stochastic failures, autoscaling or amphora flavor; every traffic source is
an IPv4 client population with a non-trace arrival process, sent to a listener with a
default pool; those pools balance with ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP or
SOURCE_IP_PORT without session persistence, and their members are healthy (not slow,
not partitioned) with at least one active member usable. Health monitors, heartbeats,
the health manager, ACTIVE_STANDBY, backlog at full listeners, ``timeout_member_data``
(504), warm-up and ``log_requests`` are all covered. Everything else runs on the exact
path. The engine chooses once per run: with ``engine="auto"`` it takes the compiled path
when the run is covered, numba is installed and the run is long enough (about
:data:`AUTO_MIN_REQUESTS` requests) to repay loading numba; ``engine="exact"`` never.

Because nothing in a covered run changes the data plane's configuration, only the
SimPy processes read its state (the sampler, heartbeats); the kernel advances the
compiled data plane before each of them and at the end of ``run``. Health checks on
the fast calendar do not look at the data plane, so they do not cut chunks. As a guard,
a backend or member that is changed while the compiled path owns it raises an error
instead of silently diverging (:attr:`lbsim.sim.dataplane.DataPlane.compiled`).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
from typing import Any

import numpy as np

from lbsim.scenario import model as m
from lbsim.sim.dataplane import HEALTHY, OUT_504, Backend, _bump
from lbsim.sim.distributions import BLOCK, Sampler, stream
from lbsim.sim.traffic import EPHEMERAL_PORTS, client_addresses, make_gap_fn

#: the engine's ``Simulation`` (not imported: the engine imports this module)
Simulation = Any

ENGINES = ("auto", "exact", "compiled")
#: with ``engine="auto"``, the compiled path is taken from about this many requests on
#: (measured break-even with the kernels cached: about 170,000; loading numba costs ~0.45 s)
AUTO_MIN_REQUESTS = 500_000
ALGORITHM_CODES = {"ROUND_ROBIN": 0, "LEAST_CONNECTIONS": 1, "SOURCE_IP": 2, "SOURCE_IP_PORT": 3}
_IDX_MASK = (1 << 20) - 1
_SEQ_MASK = (1 << 44) - 1
OUT_CAP = 1 << 16
#: occupancy samples the kernel holds before Python takes them
SAMPLE_CAP = 4096


def available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def expected_requests(sc: m.Scenario) -> float:
    """Roughly how many requests the scenario's traffic makes (for the engine's choice)."""
    total = 0.0
    for src in sc.traffic:
        a = src.arrival
        rate = getattr(a, "rate", None)
        if isinstance(rate, (int, float)):
            total += float(rate) * sc.duration
        elif isinstance(a, m.Profile):
            total += max(r for _, r in a.profile) * sc.duration
        elif isinstance(a, m.Mmpp):
            total += max(a.rates) * sc.duration
    return total


def scenario_coverage(sc: m.Scenario) -> str | None:
    """Why the compiled path cannot run this scenario, or None when (as far as the
    scenario text tells) it can; :func:`coverage` checks the set-up run itself too."""
    if getattr(sc, "loadbalancers", None) is not None:
        return "a multi-load-balancer run"
    if sc.start != "running":
        return "the deployment is provisioned during the run"
    if sc.events or sc.failures:
        return "the scenario has events or failures"
    lb = sc.loadbalancer
    if lb.flavor is not None:
        return "the amphora has a flavor (CPU model)"
    pools = {p.name: p for p in lb.pools}
    listeners = {li.name: li for li in lb.listeners}
    for src in sc.traffic:
        if isinstance(src.arrival, m.Trace):
            return "a traffic source replays a trace"
        if ipaddress.ip_network(src.clients.cidr, strict=False).version != 4:
            return "a traffic source has IPv6 clients"
        li = listeners.get(src.listener)
        if li is None or li.default_pool not in pools:
            return f"listener {src.listener} has no default pool"
        if getattr(li, "l7policies", None):
            return f"listener {src.listener} has L7 policies"
        if getattr(li, "allowed_cidrs", None):
            return f"listener {src.listener} has allowed_cidrs"
        pool = pools[li.default_pool]
        if getattr(pool, "autoscaling", None) is not None:
            return f"pool {pool.name} has an autoscaler"
        if pool.lb_algorithm not in ALGORITHM_CODES:
            return f"pool {pool.name} balances with {pool.lb_algorithm}"
        if pool.session_persistence is not None:
            return f"pool {pool.name} has session persistence"
        for mem in pool.members:
            if mem.behaviour != "healthy":
                return f"member {mem.name} is not healthy"
    return None


def coverage(sim: Simulation) -> str | None:
    """Why the compiled path cannot run this (set-up) simulation, or None when it can."""
    sc = sim.sc
    if getattr(sim, "live", False) or getattr(sc, "loadbalancers", None) is not None:
        return "a live or multi-load-balancer run"
    why = scenario_coverage(sc)
    if why is not None:
        return why
    if sc.start != "running":
        return "the deployment is provisioned during the run"
    if sc.events or sc.failures:
        return "the scenario has events or failures"
    if any(getattr(p, "autoscaling", None) is not None for p in sc.loadbalancer.pools):
        return "a pool has an autoscaler"
    if sc.loadbalancer.flavor is not None or sim.dp.cpu_cores:
        return "the amphora has a flavor (CPU model)"
    if not sim.dp.vip_up:
        return "the VIP is down"
    if getattr(sim.dp, "qos", None) is not None:
        return "the VIP has a QoS bandwidth limit"
    for src in sc.traffic:
        if isinstance(src.arrival, m.Trace):
            return "a traffic source replays a trace"
        if ipaddress.ip_network(src.clients.cidr, strict=False).version != 4:
            return "a traffic source has IPv6 clients"
        fe = sim.dp.frontends.get(src.listener)
        if fe is None or fe.backend is None:
            return f"listener {src.listener} has no frontend or no default pool"
        if getattr(fe, "router", None) is not None:
            return f"listener {src.listener} has L7 policies"
        if getattr(fe, "allowed", None) is not None:
            return f"listener {src.listener} has allowed_cidrs"
        if getattr(fe, "tls", None) is not None:
            return f"listener {src.listener} terminates TLS"
        be = fe.backend
        if be.algorithm not in ALGORITHM_CODES:
            return f"pool {be.name} balances with {be.algorithm}"
        if be.persistence is not None:
            return f"pool {be.name} has session persistence"
        for s in be.servers:
            if s.behaviour is not HEALTHY or s.check_behaviour is not HEALTHY or s.partitioned:
                return f"member {s.name} is not healthy"
            if s.health_paths is not None:
                return f"member {s.name} answers health checks per path"
        bal: Any = be.balancer
        if be.algorithm == "ROUND_ROBIN" and not bal._act.count:
            return f"pool {be.name} has no usable active member"
        if be.algorithm == "LEAST_CONNECTIONS" and not bal._count[0]:
            return f"pool {be.name} has no usable active member"
        if be.algorithm.startswith("SOURCE_IP") and not bal._tot:
            return f"pool {be.name} has no usable member"
    return None


def choose(sim: Simulation, engine: str) -> str | None:
    """The engine's choice for a set-up simulation: None (exact) or why compiled was refused.

    Returns ``"compiled"`` when the compiled path is to be used.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "exact":
        return None
    reason = coverage(sim)
    if reason is None and not available():
        reason = "numba is not installed"
    if reason is not None:
        if engine == "compiled":
            raise ValueError(f"the compiled engine cannot run this scenario: {reason}")
        return None
    if engine == "auto" and expected_requests(sim.sc) < AUTO_MIN_REQUESTS:
        return None
    return "compiled"


def _decode(e: int) -> tuple[int, int, int]:
    """A balancer heap entry ``key << 64 | seq << 20 | idx`` as (key, seq, idx)."""
    return e >> 64, (e >> 20) & _SEQ_MASK, e & _IDX_MASK


class CompiledDataPlane:
    """The data plane of a covered run as arrays, advanced by compiled chunks.

    Built after the engine's set-up and instead of its traffic callbacks; from then on
    it owns the requests of the covered frontends. ``advance(t)`` processes every
    data-plane event due before ``t`` and brings the Python objects that other parts
    read (frontend counters, the latency recorder, errors, the request log) up to date.
    """

    def __init__(self, sim: Simulation) -> None:
        from lbsim.sim import compiled_kernels as k

        self.k = k
        self.sim = sim
        self.dp = dp = sim.dp
        sc = sim.sc
        env = sim.env
        # ---- frontends and backends reached by traffic
        fe_objs: list[Any] = []
        be_objs: list[Backend] = []
        for src in sc.traffic:
            fe = dp.frontends[src.listener]
            if fe not in fe_objs:
                fe_objs.append(fe)
            if fe.backend is not None and fe.backend not in be_objs:
                be_objs.append(fe.backend)
        self.fe_objs = fe_objs
        self.be_objs = be_objs
        for be in be_objs:  # a change to them from now on would not reach the arrays: refused
            be.frozen = True
        self.fe = np.zeros((len(fe_objs), 11), dtype=np.int64)
        self.fe_tdata = np.zeros(len(fe_objs), dtype=float)
        for f, fe in enumerate(fe_objs):
            self.fe[f] = [fe.active, fe.maxconn, be_objs.index(fe.backend), fe.stot, fe.bytes_in, fe.bytes_out,
                          fe.response_bytes, fe.request_bytes, -1, -1, 0]
            self.fe_tdata[f] = fe.timeout_data
            if fe.backlog:
                raise ValueError("the compiled data plane starts with empty backlogs")
        # ---- servers (global indexes) and their service samplers
        n_srv = len(dp.servers)
        self.sv = np.zeros((n_srv, 8), dtype=np.int64)
        self.busy_time = np.zeros(n_srv, dtype=float)
        samplers: list[Sampler] = []
        for g, s in enumerate(dp.servers):
            if s.busy or s.queue:
                raise ValueError("the compiled data plane starts with idle members")
            if s.service not in samplers:
                samplers.append(s.service)
            self.sv[g] = [0, s.concurrency, s.served, s.failed, -1, -1, 0, samplers.index(s.service)]
            self.busy_time[g] = s.busy_time
        self.samplers = samplers
        self.svc = np.zeros((len(samplers), 2 * BLOCK), dtype=float)
        self.spos = np.zeros(len(samplers), dtype=np.int64)
        self.slen = np.zeros(len(samplers), dtype=np.int64)
        for j, smp in enumerate(samplers):  # take over what the sampler has not handed out
            rest = smp._buf[smp._i :]
            self._put(j, np.asarray(rest, dtype=float))
            smp._i = len(smp._buf)
        # ---- balancers
        self._build_balancers()
        # ---- sources
        nsrc = len(sc.traffic)
        self.src_fe = np.array([fe_objs.index(dp.frontends[s.listener]) for s in sc.traffic], dtype=np.int64)
        self.gaps = np.zeros((nsrc, BLOCK), dtype=float)
        self.gpos = np.zeros(nsrc, dtype=np.int64)
        self.glen = np.zeros(nsrc, dtype=np.int64)
        self.picks = np.zeros((nsrc, BLOCK), dtype=np.int64)
        self.ports = np.zeros((nsrc, BLOCK), dtype=np.int64)
        self.ppos = np.zeros(nsrc, dtype=np.int64)
        self.plen = np.zeros(nsrc, dtype=np.int64)
        self._gap_draw: list[Any] = []
        self._crng: list[np.random.Generator] = []
        self._n_addr: list[int] = []
        addr_parts: list[np.ndarray] = []
        self.aoff = np.zeros(nsrc, dtype=np.int64)
        first: list[float] = []
        for i, src in enumerate(sc.traffic):
            rng = stream(sim.seed, f"arrivals:{i}")
            if isinstance(src.arrival, m.Poisson):  # the exact path's _block_gaps, drawn directly
                scale = 1.0 / src.arrival.rate
                self._gap_draw.append(lambda n, rng=rng, scale=scale: rng.exponential(scale, n))
            else:
                fn = make_gap_fn(src.arrival, rng, None)
                self._gap_draw.append(
                    lambda n, fn=fn: np.array([math.inf if (g := fn()) is None else g for _ in range(n)], dtype=float)
                )
            crng = stream(sim.seed, f"clients:{i}")
            addrs = client_addresses(src.clients, crng).astype(np.int64)
            self._crng.append(crng)
            self._n_addr.append(len(addrs))
            self.aoff[i] = sum(len(p) for p in addr_parts)
            addr_parts.append(addrs)
            self._refill_gaps(i)
            g0 = float(self.gaps[i, 0])
            self.gpos[i] = 1
            first.append(g0)
        self.addrs = np.concatenate(addr_parts) if addr_parts else np.zeros(0, dtype=np.int64)
        # ---- calendar, request slots, outputs
        cap = nsrc + int(self.sv[:, 1].sum()) + 1
        self.ct = np.zeros(cap, dtype=float)
        self.cs = np.zeros(cap, dtype=np.int64)
        self.cr = np.zeros(cap, dtype=np.int64)
        self.na_t = np.full(nsrc, math.inf)
        self.na_s = np.zeros(nsrc, dtype=np.int64)
        self.sc = np.zeros(8, dtype=np.int64)
        self.fs = np.array([sc.duration, sc.warmup, math.inf], dtype=float)
        self.sc[k.S_ACTIVE0] = sum(f.active for f in dp.frontends.values() if f not in fe_objs)
        self.samp = np.zeros((SAMPLE_CAP, 3), dtype=np.int64)
        self.r_t0 = self.r_sent = self.free = np.zeros(0, dtype=np.int64)
        self.ri = np.zeros((0, 6), dtype=np.int64)
        self._alloc_requests(4096)
        self.o_t0 = np.zeros(OUT_CAP, dtype=float)
        self.o_src = np.zeros(OUT_CAP, dtype=np.int64)
        self.o_gidx = np.zeros(OUT_CAP, dtype=np.int64)
        self.o_now = np.zeros(OUT_CAP, dtype=float)
        self.o_lat = np.zeros(OUT_CAP, dtype=float)
        self.o_code = np.zeros(OUT_CAP, dtype=np.int64)
        for i, g0 in enumerate(first):  # the engine's first call_later(g0, fire) per source
            if g0 <= sc.duration:
                k.schedule_first(self.na_t, self.na_s, self.sc, env.now + g0, i)
        self._next_time()

    # ------------------------------------------------------------------ set-up helpers
    def _build_balancers(self) -> None:
        """Copy each backend's balancer state into arrays (live heap entries only)."""
        nb = len(self.be_objs)
        n_flat = sum(len(be.servers) for be in self.be_objs)
        self.be_alg = np.zeros(nb, dtype=np.int64)
        self.be_base = np.zeros(nb, dtype=np.int64)
        self.bst = np.zeros((nb, 9), dtype=np.int64)
        self.gidx = np.zeros(n_flat, dtype=np.int64)
        # columns B_EW, B_NPOS, B_LPOS, B_RW, B_CONNS, B_LIVE, B_HPOS
        self.bal = np.zeros((n_flat, 7), dtype=np.int64)
        self.bal[:, 0] = 1
        self.bal[:, 5] = -1
        self.hm = np.zeros((3 * nb, 3), dtype=np.int64)
        heaps: list[list[tuple[int, int, int]]] = [[] for _ in range(3 * nb)]
        maps: list[int] = []
        base = 0
        for b, be in enumerate(self.be_objs):
            bal: Any = be.balancer
            alg = ALGORITHM_CODES[be.algorithm]
            n = len(be.servers)
            rows = self.bal[base : base + n]
            self.be_alg[b] = alg
            self.be_base[b] = base
            self.gidx[base : base + n] = [s.gidx for s in be.servers]
            trees: list[tuple[int, list[int]]] = []
            if alg == 0:
                g = bal._act
                self.bst[b, :6] = [g.curr_pos, g.curr_weight, g.next_weight, g.count, 1, bal._seqno]
                rows[:, 0] = bal._ew
                rows[:, 1] = bal._npos
                rows[:, 2] = bal._lpos
                rows[:, 3] = bal._rweight
                trees = [(0, g.curr), (1, g.init), (2, g.next)]
            elif alg == 1:
                self.bst[b, 3] = bal._count[0]
                self.bst[b, 5] = bal._seqno
                rows[:, 0] = bal._ew
                rows[:, 4] = bal._conns
                trees = [(0, bal._act_tree)]
            else:
                self.bst[b, 6] = len(maps)
                self.bst[b, 7] = bal._tot
                self.bst[b, 8] = bal._used
                maps.extend(bal._map)
            for h, tree in trees:
                for e in tree:
                    key, seq, i = _decode(e)
                    if bal._live[i] == e:
                        heaps[3 * b + h].append((key, seq, base + i))
            if trees:
                rows[:, 5] = [_decode(e)[1] if e >= 0 else -1 for e in bal._live]
            base += n
        off = 0
        for h in range(3 * nb):
            cap = 4 * len(self.be_objs[h // 3].servers) + 64 if self.be_alg[h // 3] in (0, 1) else 0
            self.hm[h] = [off, cap, len(heaps[h])]
            off += cap
        self.hp = np.zeros((max(off, 1), 3), dtype=np.int64)
        for h, entries in enumerate(heaps):
            entries.sort()  # a sorted array is a valid binary heap
            o = int(self.hm[h, 0])
            if entries:
                self.hp[o : o + len(entries)] = entries
                if self.be_alg[h // 3] == 1:  # leastconn: each server's place in its heap
                    self.bal[[e[2] for e in entries], 6] = np.arange(len(entries))
        self.smap = np.asarray(maps if maps else [0], dtype=np.int64)

    def _alloc_requests(self, n: int) -> None:
        """Request slots: ``n`` in all, the old ones kept (the free list gets the new ones)."""
        m0 = len(self.r_t0)
        r_t0 = np.zeros(n, dtype=float)
        r_sent = np.zeros(n, dtype=float)
        ri = np.zeros((n, 6), dtype=np.int64)
        free = np.zeros(n, dtype=np.int64)
        if m0:
            r_t0[:m0] = self.r_t0
            r_sent[:m0] = self.r_sent
            ri[:m0] = self.ri
            nfree = int(self.sc[self.k.S_NFREE])
            free[:nfree] = self.free[:nfree]
        else:
            nfree = 0
        new = np.arange(n - 1, m0 - 1, -1, dtype=np.int64)  # lowest slots are taken first
        free[nfree : nfree + len(new)] = new
        self.sc[self.k.S_NFREE] = nfree + len(new)
        self.r_t0, self.r_sent, self.ri, self.free = r_t0, r_sent, ri, free

    def _put(self, j: int, values: np.ndarray) -> None:
        """Append service times to sampler ``j``'s buffer (moving the unused rest first)."""
        pos, end = int(self.spos[j]), int(self.slen[j])
        rest = end - pos
        need = rest + len(values)
        if need > self.svc.shape[1]:
            grown = np.zeros((self.svc.shape[0], max(need, 2 * self.svc.shape[1])), dtype=float)
            for r in range(self.svc.shape[0]):
                grown[r, : self.slen[r] - self.spos[r]] = self.svc[r, self.spos[r] : self.slen[r]]
                self.slen[r] -= self.spos[r]
                self.spos[r] = 0
            self.svc = grown
            pos, end = 0, int(self.slen[j])
        row = self.svc[j]
        row[:rest] = row[pos:end]
        row[rest:need] = values
        self.spos[j] = 0
        self.slen[j] = need

    def _refill_gaps(self, i: int) -> None:
        self.gaps[i] = self._gap_draw[i](BLOCK)
        self.gpos[i] = 0
        self.glen[i] = BLOCK

    def _refill_clients(self, i: int) -> None:
        crng = self._crng[i]
        self.picks[i] = crng.integers(0, self._n_addr[i], BLOCK)
        self.ports[i] = crng.integers(EPHEMERAL_PORTS[0], EPHEMERAL_PORTS[1] + 1, BLOCK)
        self.ppos[i] = 0
        self.plen[i] = BLOCK

    def _refill(self) -> None:
        """Give the kernel what it stopped for (every buffer that might run short)."""
        k = self.k
        need = int(self.sc[k.S_INFLIGHT]) + 2
        if self.sc[k.S_OUTN] + need > len(self.o_t0):
            self._drain_outputs()
            if need > len(self.o_t0):
                cap = 2 * need
                for name in ("o_t0", "o_src", "o_gidx", "o_now", "o_lat", "o_code"):
                    arr = getattr(self, name)
                    setattr(self, name, np.zeros(cap, dtype=arr.dtype))
        for j, smp in enumerate(self.samplers):
            while self.slen[j] - self.spos[j] < need:
                self._put(j, np.asarray(smp._draw(smp._block), dtype=float))  # type: ignore[operator]
        for i in range(len(self.src_fe)):
            if self.gpos[i] >= self.glen[i]:
                self._refill_gaps(i)
            if self.ppos[i] >= self.plen[i]:
                self._refill_clients(i)
        if self.sc[k.S_NFREE] == 0:
            self._alloc_requests(2 * len(self.r_t0))
        if self.sc[k.S_SAMPN] >= len(self.samp):
            self._drain_samples()

    # ------------------------------------------------------------------ running
    def _next_time(self) -> None:
        """When the next data-plane event is due (inf: none)."""
        top = float(self.ct[0]) if self.sc[self.k.S_CALN] else math.inf
        self.next_time = min(top, float(self.na_t.min())) if len(self.na_t) else top

    def start_sampler(self, now: float) -> None:
        """Take the engine's once-a-second occupancy samples from ``now`` on, in the kernel.

        Instead of a SimPy process that would end a chunk every simulated second; the
        samples are the same (see :func:`lbsim.sim.compiled_kernels.run`).
        """
        self.fs[self.k.F_NEXT_SAMPLE] = now

    def advance(self, until: float) -> None:
        """Process every data-plane event due strictly before ``until``."""
        if self.next_time >= until and self.fs[self.k.F_NEXT_SAMPLE] >= until:
            return
        k = self.k
        while True:
            code = k.run(
                until, self.sc, self.fs, self.ct, self.cs, self.cr, self.na_t, self.na_s,
                self.src_fe, self.gaps, self.gpos, self.glen, self.picks, self.ports, self.ppos, self.plen,
                self.addrs, self.aoff, self.fe, self.fe_tdata, self.be_alg, self.be_base, self.bst, self.gidx,
                self.bal, self.hp, self.hm, self.smap,
                self.sv, self.busy_time, self.svc, self.spos, self.slen,
                self.r_t0, self.r_sent, self.ri, self.free,
                self.o_t0, self.o_src, self.o_gidx, self.o_now, self.o_lat, self.o_code, self.samp,
            )  # fmt: skip
            if code == k.DONE:
                break
            self._refill()
        self._next_time()
        self._drain_outputs()
        self._drain_samples()
        for f, fe in enumerate(self.fe_objs):
            row = self.fe[f]
            fe.active = int(row[0])
            fe.stot = int(row[3])
            fe.bytes_in = int(row[4])
            fe.bytes_out = int(row[5])

    def _drain_outputs(self) -> None:
        """Hand the outcomes recorded since the last call to the Python bookkeeping."""
        n = int(self.sc[self.k.S_OUTN])
        if n == 0:
            return
        dp = self.dp
        code = self.o_code[:n]
        if not dp.log_requests and not code.any():
            dp.latency.extend(self.o_lat[:n], self.o_gidx[:n], self.o_now[:n])
        else:
            ok = code == 0
            dp.latency.extend(self.o_lat[:n][ok], self.o_gidx[:n][ok], self.o_now[:n][ok])
            rows = zip(
                self.o_t0[:n].tolist(), self.o_src[:n].tolist(), self.o_gidx[:n].tolist(),
                self.o_now[:n].tolist(), self.o_lat[:n].tolist(), code.tolist(), strict=True,
            )  # fmt: skip
            for t0, src, g, now, lat, c in rows:
                outcome = "ok" if c == 0 else OUT_504
                if c:
                    dp.errors[outcome] = dp.errors.get(outcome, 0) + 1
                    errs = dp.member_errors[g]
                    errs[outcome] = errs.get(outcome, 0) + 1
                    _bump(dp.per_second_err, int(now))
                if dp.log_requests:
                    dp.log.append((t0, src, g, lat, outcome))
        self.sc[self.k.S_OUTN] = 0

    def _drain_samples(self) -> None:
        """Hand the occupancy samples taken since the last call to the data plane."""
        n = int(self.sc[self.k.S_SAMPN])
        append = self.dp.samples.append
        for a, q, b in self.samp[:n].tolist():
            append((a, q, b))
        self.sc[self.k.S_SAMPN] = 0

    def finish(self) -> None:
        """Copy the members' counters back to the Python servers (for the summary)."""
        for g, s in enumerate(self.dp.servers):
            s.busy = int(self.sv[g, 0])
            s.served = int(self.sv[g, 2])
            s.failed = int(self.sv[g, 3])
            s.busy_time = float(self.busy_time[g])

    @property
    def events(self) -> int:
        """Data-plane events processed so far."""
        return int(self.sc[self.k.S_EVENTS])


def attach(sim: Simulation, engine: str = "auto") -> CompiledDataPlane | None:
    """Hand the set-up simulation's data plane to the compiled path when the engine choice says so.

    Called by the engine after set-up and before it starts its traffic; returns None
    when the exact path runs (then the engine starts its traffic callbacks as usual).
    """
    if choose(sim, engine) is None:
        return None
    cdp = CompiledDataPlane(sim)
    sim.dp.compiled = cdp
    sim.env.chunked = cdp
    return cdp
