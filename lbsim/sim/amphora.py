"""The amphora: HAProxy's running configuration, its health checks, and its heartbeats.

The amphora renders the control plane's objects into HAProxy frontends, backends and
servers (octavia-semantics.md §3: only enabled listeners and pools of an enabled load
balancer; members and health monitors in PENDING_DELETE are dropped; admin-down members
stay as ``disabled`` servers), runs one health-check loop per checked server with
HAProxy's counter and timing (:mod:`lbsim.haproxy.healthcheck`), and every
``heartbeat_interval`` sends what HAProxy sees to the health manager as Octavia's v3
heartbeat message (§1.1).

A configuration push is an HAProxy reload: backends get fresh balancers (a new process:
round-robin position and connection counts start again, old connections finish on the
old process), while servers keep their health state (``load-server-state-from-file``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbsim.haproxy import healthcheck as hc
from lbsim.octavia import l7 as l7ops
from lbsim.octavia.controlplane import ControlPlane
from lbsim.octavia.objects import Obj
from lbsim.octavia.status import amphora_member_string, backend_status
from lbsim.octavia.timeline import Timeline
from lbsim.scenario import model as m
from lbsim.scenario.access import address_filter
from lbsim.scenario.gcpause import gc_paused
from lbsim.scenario.health_paths import answer_for
from lbsim.sim.dataplane import CANON, ERROR, HEALTHY, SLOW, Backend, DataPlane, Frontend, Server
from lbsim.sim.distributions import Sampler, make_sampler, stream
from lbsim.sim.kernel import TwinEnvironment
from lbsim.sim.l7 import frontend_router
from lbsim.sim.lvs import lvs_persistence

Heartbeat = dict[str, Any]


def lazy_uniform(seed: int, name: str) -> Sampler:
    """A uniform [0, 1) sampler whose named stream is created on its first draw.

    Each member gets one for partial faults, yet most runs never draw from it; creating
    the generator (a SeedSequence and a PCG64) for 10,000 members was a third of set-up.
    Named streams are derived from the seed and the name alone, so creating the stream
    later gives exactly the numbers an eager one would have.
    """
    rng: list[Any] = []

    def draw(n: int) -> Any:
        if not rng:
            rng.append(stream(seed, name))
        return rng[0].uniform(0.0, 1.0, n)

    return Sampler(draw, 0.5)


@dataclass
class Monitor:
    """A pool's health monitor as rendered (only enabled monitors are rendered)."""

    type: str
    delay: float
    timeout: float
    rise: int
    fall: int
    expected: frozenset[int]
    connect_timeout: float = 5.0
    #: HTTP/HTTPS checks: the request line Octavia renders (``http_method``, ``url_path``)
    method: str = "GET"
    path: str = "/"
    #: a UDP/SCTP pool's monitor: keepalived checks it (octavia-semantics §3.5), not HAProxy
    keepalived: bool = False

    @classmethod
    def from_obj(cls, hm: Obj, connect_timeout: float = 5.0) -> Monitor:
        a = hm.attrs
        return cls(
            type=str(a["type"]),
            delay=float(a["delay"]),
            timeout=float(a["timeout"]),
            rise=int(a["max_retries"]),
            fall=int(a.get("max_retries_down") or 3),
            expected=hc.expand_expected_codes(str(a.get("expected_codes") or "200")),
            connect_timeout=connect_timeout,
            method=str(a.get("http_method") or "GET"),
            path=str(a.get("url_path") or "/"),
        )


@dataclass
class ServerState:
    """One rendered server line and its health-check state."""

    name: str
    pool: str
    server: Server
    weight: int
    backup: bool
    admin_up: bool
    monitor: Monitor | None = None
    counter: hc.HealthCounter | hc.KeepalivedCounter | None = None
    loop_gen: int = 0
    backend: Backend | None = None
    local: int = -1
    state: str = ""

    @property
    def usable(self) -> bool:
        """Whether HAProxy may send new traffic here (weight is handled by the balancer)."""
        if not self.admin_up:
            return False
        return self.counter is None or self.counter.is_up()


@dataclass
class Rendered:
    """The configuration HAProxy is running: listeners, backends keyed ``pool:listener``."""

    listeners: dict[str, Frontend] = field(default_factory=dict)
    backends: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (pool, listener)
    pool_servers: dict[str, list[str]] = field(default_factory=dict)


class Amphora:
    """One amphora running HAProxy for the load balancer."""

    def __init__(
        self,
        env: TwinEnvironment,
        dp: DataPlane,
        timeline: Timeline,
        seed: int,
        base_dir: Path | None,
        role: str = "STANDALONE",
        amp_id: str = "amphora-1",
    ) -> None:
        self.env = env
        self.amp_id = amp_id
        self.dp = dp
        self.timeline = timeline
        self.seed = seed
        self.base_dir = base_dir
        self.role = role
        self.alive = True
        self.servers: dict[str, ServerState] = {}
        self.rendered = Rendered()
        self.backend_by_pool: dict[str, Backend] = {}
        self._check_rng = stream(seed, f"checks:{amp_id}")
        #: ACTIVE_STANDBY renders a ``peers`` section that syncs stick tables
        self.peers = role != "STANDALONE"
        #: whether this amphora holds the VIP (its frontends take the traffic)
        self.active = False
        #: servers whose check loop must (re)start after the current render
        self._to_start: list[ServerState] = []
        #: traffic sizes per listener (for the frontends' byte counters)
        self.sizes: dict[str, tuple[int, int]] = {}
        #: stats already reported in heartbeats, per listener (v3 heartbeats carry deltas)
        self._reported: dict[str, tuple[int, int, int]] = {}

    # ------------------------------------------------------------- rendering
    def render(self, cp: ControlPlane, lb_name: str, serving: dict[str, m.Member], fresh: bool) -> None:
        """Load the control plane's current objects into HAProxy (start-up or reload).

        ``serving`` holds each member's serving model (concurrency, service time,
        behaviour), which Octavia does not know.

        Start-up health of servers new to this HAProxy (docs/fidelity.md, "Start-up
        health"): with ``fresh`` True (the flag's historic name; the engine passes it for
        ``start: running``) they start at full health, ``rise + fall - 1``: a long-running
        HAProxy whose counters have settled, so a fault needs ``fall`` failed checks.
        Otherwise they start where a freshly started HAProxy puts them, ``h = rise``
        (``show stat``: ``UP 1/<fall>``, check status ``INI``), so the first failed check
        takes a server DOWN: ``start: fresh``, ``start: provision`` and amphorae built by
        a failover. Either way the first checks run at HAProxy's start-up spreading
        offsets (:func:`~lbsim.haproxy.healthcheck.first_check_offsets`); for a
        long-running process these are the phases it keeps when its checks of healthy
        servers take no time (each next check starts ``inter`` after the last one).
        Servers already running keep their health across a reload
        (``load-server-state-from-file``).

        The cyclic collector is paused meanwhile (:mod:`lbsim.scenario.gcpause`): at
        10,000 members its re-traversals of the objects built here cost more than the
        rendering itself.
        """
        with gc_paused():
            self._render(cp, lb_name, serving, fresh)

    def _render(self, cp: ControlPlane, lb_name: str, serving: dict[str, m.Member], fresh: bool) -> None:
        lb = cp.get("loadbalancer", lb_name)
        assert lb is not None
        lb_enabled = bool(lb.attrs.get("admin_state_up", True))
        rendered = Rendered()
        backends: dict[str, Backend] = {}
        # members and servers, in DB order (HAProxy numbers checks in config order)
        for pool in cp.pools_of(lb_name):
            if pool.provisioning_status == "PENDING_DELETE" or not pool.attrs.get("admin_state_up", True):
                continue
            hm_obj = cp.healthmonitor_of(pool.name)
            monitor = None
            if (
                hm_obj is not None
                and hm_obj.provisioning_status != "PENDING_DELETE"
                and hm_obj.attrs.get("admin_state_up", True)
            ):
                users = cp.pool_listeners(pool.name)
                connect_ms = float(users[0].attrs.get("timeout_member_connect") or 5000) if users else 5000.0
                monitor = Monitor.from_obj(hm_obj, connect_ms / 1000.0)
                monitor.keepalived = str(pool.attrs.get("protocol")) in ("UDP", "SCTP")
            names: list[str] = []
            for mem in cp.members_of(pool.name):
                if mem.provisioning_status == "PENDING_DELETE":
                    continue
                names.append(mem.name)
                self._render_server(mem, pool.name, monitor, serving, fresh)
            rendered.pool_servers[pool.name] = names
            states = [self.servers[n] for n in names]
            sp = pool.attrs.get("session_persistence")
            persistence = str(sp["type"]) if isinstance(sp, dict) and sp.get("type") else None
            old_be = self.backend_by_pool.get(pool.name)
            # stick tables die with the old process unless peers carry them over
            # (ACTIVE_STANDBY); inserted cookies live in the clients
            # LVS templates (UDP/SCTP) live in the kernel and survive a keepalived reload
            lvs = lvs_persistence(pool.attrs, old_be.lvs if old_be is not None else None)
            keep_stick = (
                old_be is not None
                and old_be.persistence == persistence
                and (lvs is old_be.lvs if lvs is not None else persistence == "HTTP_COOKIE" or self.peers)
            )
            be = Backend(
                pool.name,
                str(pool.attrs.get("lb_algorithm", "ROUND_ROBIN")),
                [s.server for s in states],
                [s.weight for s in states],
                [s.backup for s in states],
                persistence,
                old_be.stick if keep_stick and old_be is not None else None,
                lvs,
            )
            for i, s in enumerate(states):
                s.backend = be
                s.local = i
                if not s.usable:
                    be.set_usable(i, False)
            backends[pool.name] = be
        # servers of removed members leave the configuration
        keep = {n for names in rendered.pool_servers.values() for n in names}
        for name in list(self.servers):
            if name not in keep:
                st = self.servers.pop(name)
                st.loop_gen += 1  # stops its check loop
        # frontends: only enabled listeners of an enabled LB
        if lb_enabled:
            for li in cp.listeners_of(lb_name):
                if li.provisioning_status == "PENDING_DELETE" or not li.attrs.get("admin_state_up", True):
                    continue
                raw_limit = li.attrs.get("connection_limit")
                limit = -1 if raw_limit is None else int(raw_limit)
                old = self.rendered.listeners.get(li.name)
                pool_name = li.attrs.get("default_pool")
                fe_backend = backends.get(str(pool_name)) if pool_name else None
                fe = old or Frontend(li.name, 0, None, 0.0, 0.0)
                fe.maxconn = limit if limit > -1 else 50000
                if li.attrs.get("protocol") in ("UDP", "SCTP"):  # keepalived/LVS: no listener limit, never FULL
                    fe.maxconn = 2**31
                fe.backend = fe_backend
                fe.allowed = address_filter(li.attrs.get("allowed_cidrs"))
                fe.tls = self.dp.l7.tls_for(cp, li, self.sizes.get(li.name)) if self.dp.l7 is not None else None
                fe.router, l7_pools = frontend_router(
                    self.dp.l7, li.name, l7ops.policy_dicts(cp, li.name), backends, li.attrs.get("timeout_client_data")
                )
                for l7_pool in l7_pools:
                    rendered.backends[f"{l7_pool}:{li.name}"] = (l7_pool, li.name)
                fe.timeout_connect = float(li.attrs.get("timeout_member_connect", 5000)) / 1000.0
                fe.timeout_data = float(li.attrs.get("timeout_member_data", 50000)) / 1000.0
                rendered.listeners[li.name] = fe
                if fe_backend is not None:
                    rendered.backends[f"{pool_name}:{li.name}"] = (str(pool_name), li.name)
        self._start_checks()
        for name, fe in rendered.listeners.items():
            if name in self.sizes:
                fe.request_bytes, fe.response_bytes = self.sizes[name]
        self.rendered = rendered
        self.backend_by_pool = backends
        if self.active:
            self.dp.frontends = rendered.listeners
        for st in self.servers.values():
            self._record_state(st)

    def take_vip(self) -> None:
        """This amphora now holds the VIP: its frontends take the traffic."""
        self.active = True
        self.dp.frontends = self.rendered.listeners
        self.dp.vip_up = True
        for st in self.servers.values():
            self._publish(st)

    def _render_server(
        self,
        mem: Obj,
        pool: str,
        monitor: Monitor | None,
        serving: dict[str, m.Member],
        fresh: bool,
    ) -> None:
        a = mem.attrs
        st = self.servers.get(mem.name)
        if st is None:
            server = self.dp.server_by_name.get(mem.name)
            if server is None:  # members are shared by every amphora: create once
                spec = serving[mem.name]
                server = Server(
                    self.dp,
                    len(self.dp.servers),
                    mem.name,
                    spec.concurrency,
                    self.dp.service_sampler(
                        pool,
                        spec.service_time,
                        lambda: make_sampler(
                            spec.service_time,
                            stream(self.seed, f"service:{pool}:{spec.service_time.model_dump_json()}"),
                            self.base_dir,
                        ),
                    ),
                    lazy_uniform(self.seed, f"partial:{mem.name}"),
                    spec.behaviour,
                    spec.status,
                    spec.factor,
                )
                self.dp.add_server(server)
            st = ServerState(mem.name, pool, server, 1, False, True)
            self.servers[mem.name] = st
        st.weight = int(a.get("weight", 1) if a.get("weight") is not None else 1)
        st.backup = bool(a.get("backup", False))
        was_admin = st.admin_up
        st.admin_up = bool(a.get("admin_state_up", True))
        if monitor != st.monitor:
            st.monitor = monitor
            st.loop_gen += 1
            if monitor is None:
                st.counter = None
            else:
                keep = st.counter
                if monitor.keepalived:  # keepalived: retry = max_retries_down, no rise; starts up
                    st.counter = hc.KeepalivedCounter(monitor.fall)
                    self._to_start.append(st)
                    return
                st.counter = hc.HealthCounter(monitor.rise, monitor.fall)
                if keep is not None:
                    # load-server-state-from-file: UP comes back at full health, DOWN as DOWN
                    st.counter.restore_after_reload(keep.is_up())
                elif fresh:
                    st.counter.restore_after_reload(True)
                self._to_start.append(st)
        elif st.admin_up and not was_admin and st.counter is not None:
            st.counter.reset_to_start()  # leaving maintenance: back to h = rise

    def _start_checks(self) -> None:
        """Start the check loops of (re)configured servers with HAProxy's start-up spreading.

        Offsets are computed once over every checked server of the process, in
        configuration order, and each new loop takes its server's offset.
        """
        if not self._to_start:
            return
        checked = [s for s in self.servers.values() if s.monitor is not None]
        intervals = [max(1, round(s.monitor.delay * 1000)) for s in checked if s.monitor is not None]
        offsets = dict(zip((id(s) for s in checked), hc.first_check_offsets(intervals), strict=True))
        for st in self._to_start:
            if st.monitor is not None:
                self.env.call_later(float(offsets.get(id(st), 0.0)), self._check, st, st.loop_gen)
        self._to_start = []

    # --------------------------------------------------------- health checks
    def _check(self, st: ServerState, gen: int) -> None:
        """HAProxy's check task for one server: run a check; the next starts ``inter``
        after this one ends. Runs on the kernel's fast calendar (hundreds of checks per
        simulated second with large pools); a check that can change nothing (a healthy
        member at full health) takes a short cut."""
        if st.loop_gen != gen or not self.alive:
            return
        mon = st.monitor
        counter = st.counter
        if mon is None or counter is None:
            return
        env = self.env
        if not st.admin_up:  # MAINT: no checks while disabled
            env.call_later(mon.delay, self._check, st, gen)
            return
        srv = st.server
        b = srv.check_behaviour
        status = srv.status
        if srv.health_paths is not None and mon.type in ("HTTP", "HTTPS") and b in (HEALTHY, SLOW, ERROR):
            b, status = answer_for(srv.health_paths, mon.method, mon.path)  # the application answers per path
            b = CANON[b]
        if (b is HEALTHY or b is SLOW) and not srv.partitioned and counter.health == counter.full:
            env.call_later(mon.delay, self._check, st, gen)  # passes at once, changes nothing
            return
        if srv.partitioned:
            # no answer at all: the connect times out (HAProxy uses min(connect, inter))
            out = hc.CheckOutcome(False, min(mon.connect_timeout, mon.delay), "L4TOUT")
        else:
            out = hc.check_outcome(
                mon.type,
                self.check_behaviour(srv) if b is srv.check_behaviour else b,
                status=status,
                timeout=mon.timeout,
                delay=mon.delay,
                expected=mon.expected,
                connect_timeout=mon.connect_timeout,
                hang_position=self._check_rng.random(),
            )
        if out.duration > 0:
            env.call_later(out.duration, self._check_done, st, (gen, out.success))
        else:
            self._check_done(st, (gen, out.success))

    def _check_done(self, st: ServerState, result: tuple[int, bool]) -> None:
        gen, success = result
        if st.loop_gen != gen or not self.alive or st.counter is None or st.monitor is None:
            return
        st.counter.record(success)
        self._record_state(st)
        self.env.call_later(st.monitor.delay, self._check, st, gen)

    def check_behaviour(self, srv: Server) -> str:
        """What a health check meets at the member's check port."""
        b = srv.check_behaviour
        if b == "partial":
            return srv.partial_fault if self._check_rng.random() < srv.partial_fraction else "healthy"
        return b

    def _record_state(self, st: ServerState) -> None:
        """Publish the server's HAProxy status string and keep the balancer in step."""
        counter = st.counter
        state = hc.data_plane_state(counter, admin_up=st.admin_up, weight=st.weight, checked=st.monitor is not None)
        if st.backend is not None:
            st.backend.set_usable(st.local, st.usable)
            st.backend.set_weight(st.local, st.weight)
        if state != st.state:
            st.state = state
            self._publish(st)

    def _publish(self, st: ServerState) -> None:
        """The VIP holder's HAProxy is the one whose view the twin records."""
        if self.active and self.alive:
            self.timeline.set(self.env.now, "member", st.name, "data_plane_state", st.state)

    # ------------------------------------------------------------- heartbeats
    def heartbeat(self, seq: int) -> Heartbeat:
        """Octavia's v3 heartbeat message built from HAProxy's current state (§1.1)."""
        listeners = {}
        for name, fe in self.rendered.listeners.items():
            prev = self._reported.get(name, (0, 0, 0))
            now = (fe.bytes_in, fe.bytes_out, fe.stot)
            self._reported[name] = now
            # calculate_stats_deltas: a counter that went back (HAProxy restarted, e.g. the
            # listener or load balancer was disabled and enabled again) reports its raw value
            rx, tx, tot = (n - p if n >= p else n for n, p in zip(now, prev, strict=True))
            listeners[name] = {
                "status": fe.status,
                "stats": {
                    "conns": fe.active,
                    "totconns": tot,
                    "rx": rx,
                    "tx": tx,
                    "ereq": 0,
                },
            }
        pools: dict[str, Any] = {}
        for key, (pool, _listener) in self.rendered.backends.items():
            states = [self.servers[n] for n in self.rendered.pool_servers.get(pool, [])]
            servers = [(s.state, s.weight if s.usable else 0, s.backup) for s in states]
            pools[key] = {
                "status": backend_status(servers),
                "members": {s.name: amphora_member_string(s.state, s.weight) for s in states},
            }
        return {"id": self.role, "seq": seq, "ver": 3, "listeners": listeners, "pools": pools}
