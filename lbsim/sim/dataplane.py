"""The data plane: HAProxy frontends and backends on the amphorae, and the member servers.

This is the hot path. A simulated request costs two callbacks on the kernel's fast
calendar (its arrival and its completion), one small tuple, and no SimPy process.

Request life (HAProxy semantics, haproxy-semantics.md "Connections, queues, errors"):

1. A request arrives at a :class:`Frontend` (listener) of the amphora that holds the
   VIP. If no amphora serves the VIP the connection fails at once (``connect``). With a
   flavor, the amphora's CPUs spend a little time on each new connection first (an
   overloaded amphora adds latency, and past ``max_connections`` drops connections).
   While the frontend holds ``maxconn`` connections (listener ``connection_limit``), new
   ones wait in the kernel backlog, FIFO, and the frontend reports ``FULL``.
2. The :class:`Backend` (pool) sends a persisted client to its member, or picks one with
   its balancer. No usable member → 503 at once.
3. The :class:`Server` (member) behaves as its current behaviour says: ``healthy`` and
   ``slow`` serve with ``concurrency`` slots and a FIFO queue; ``refuse`` makes HAProxy
   retry or redispatch (:meth:`DataPlane.refused`); ``hang`` holds the request until
   ``timeout_member_data`` → 504; ``error`` answers at once with its HTTP status;
   ``partial`` meets its fault for a fraction of requests. A partitioned member never
   answers a connection: each attempt ends at ``timeout_member_connect``.
4. Completion records the outcome and latency (arrival to response) and frees the
   frontend connection, which admits the next backlog entry.

Members are shared by every amphora (they are the real servers); frontends, backends
and balancers belong to one amphora's HAProxy process. A request is the tuple
``(t0, src, port, backend, local, t_sent, frontend, attempt, counted)``: arrival time,
client address and port, the backend that chose the server and the server's index in
it (an HAProxy reload builds new backends; old connections finish on the old ones),
when it was sent to the server, how many attempts came before, and whether the
balancer counted the connection (a persisted request bypasses it).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

from lbsim.haproxy.balancing import Balancer, make_balancer
from lbsim.sim.distributions import Sampler
from lbsim.sim.kernel import TwinEnvironment
from lbsim.sim.lvs import LvsPersistence
from lbsim.sim.metrics import FLUSH, LatencyRecorder, WindowSamples

HEALTHY, REFUSE, HANG, ERROR, SLOW, PARTIAL = "healthy", "refuse", "hang", "error", "slow", "partial"
#: behaviours are compared by identity on the hot path; this maps any equal string to them
CANON = {b: b for b in (HEALTHY, REFUSE, HANG, ERROR, SLOW, PARTIAL)}

#: outcome labels used in results (besides HTTP status codes of member errors)
OUT_OK = "ok"
OUT_503 = "503"
OUT_504 = "504"
OUT_CONNECT = "connect"
#: a client outside the listener's ``allowed_cidrs`` (its packets never reach HAProxy)
OUT_DENIED = "denied"
#: dropped by the VIP's QoS bandwidth limit (lbsim.sim.qos)
OUT_QOS = "qos"

#: Octavia's ``retries 3``
RETRIES = 3
#: algorithms HAProxy treats as hashes (no immediate redispatch on a refused connection)
HASH_ALGORITHMS = frozenset({"SOURCE_IP", "SOURCE_IP_PORT"})
#: HAProxy stick-table size Octavia renders (``haproxy_stick_size`` = 10k)
STICK_SIZE = 10240
#: size of an HAProxy error page (503/504), for bytes_out statistics
ERROR_PAGE_BYTES = 200

Request = tuple[Any, ...]


class Server:
    """A member as the data plane sees it: its behaviour, its slots and its queue."""

    __slots__ = (
        "behaviour",
        "busy",
        "busy_time",
        "check_behaviour",
        "concurrency",
        "dp",
        "factor",
        "failed",
        "gidx",
        "health_paths",
        "name",
        "partial_fault",
        "partial_fraction",
        "partitioned",
        "queue",
        "served",
        "service",
        "serving",
        "slowed",
        "status",
        "uniform",
    )

    def __init__(
        self,
        dp: DataPlane,
        gidx: int,
        name: str,
        concurrency: int,
        service: Sampler,
        uniform: Sampler,
        behaviour: str = HEALTHY,
        status: int = 500,
        factor: float = 10.0,
    ) -> None:
        self.dp = dp
        self.gidx = gidx
        self.name = name
        self.concurrency = concurrency
        self.service = service
        self.uniform = uniform
        self.behaviour = CANON[behaviour]
        self.check_behaviour = self.behaviour
        self.status = status
        self.factor = factor
        self.partial_fraction = 0.0
        self.partial_fault = REFUSE
        self.partitioned = False
        #: what HTTP checks get per "METHOD /path" or "/path" (lbsim.scenario.health_paths)
        self.health_paths: dict[str, tuple[str, int]] | None = None
        self.serving = self.behaviour is HEALTHY or self.behaviour is SLOW
        self.busy = 0
        self.queue: deque[Request] = deque()
        self.busy_time = 0.0
        self.served = 0
        self.slowed = 0
        self.failed = 0

    def set_behaviour(
        self,
        behaviour: str,
        status: int = 500,
        factor: float = 10.0,
        *,
        port: str = "both",
        fraction: float = 0.0,
        fault: str = REFUSE,
    ) -> None:
        """Change how the member answers from now on (fault injection).

        ``port`` = ``traffic`` or ``monitor`` changes only the service or only the
        health-check endpoint.
        """
        b = CANON[behaviour]
        if port != "traffic":
            self.check_behaviour = b
        if port != "monitor":
            self.behaviour = b
            self.partial_fraction = fraction
            self.partial_fault = CANON[fault]
        self.status = status
        self.factor = factor
        self._update_serving()
        self.dp.drain_queue(self)

    def set_partitioned(self, partitioned: bool) -> None:
        """The network between the amphorae and this member is cut (or restored)."""
        self.partitioned = partitioned
        self._update_serving()
        self.dp.drain_queue(self)

    def _update_serving(self) -> None:
        self.serving = (self.behaviour is HEALTHY or self.behaviour is SLOW) and not self.partitioned


class Backend:
    """A pool as rendered into one HAProxy backend: its servers, balancer and persistence.

    Session persistence (octavia-semantics.md §3.3): SOURCE_IP is a stick table on the
    source address, stored when the request is sent; APP_COOKIE is a stick table on the
    application's cookie, learnt from the member's response; both tables hold 10k
    entries and evict the least recently used (Octavia sets no expiry). HTTP_COOKIE is
    an inserted cookie kept by the client, so it has no size limit and survives reloads.
    A persisted client goes to its member while that member is UP (weight 0 = DRAIN
    still honours it); otherwise it is balanced anew and its entry updated. A UDP or
    SCTP pool's SOURCE_IP persistence is LVS's instead (``lvs``, see :mod:`lbsim.sim.lvs`):
    keyed by the masked source address, no size limit, idle entries expire.
    """

    def __init__(
        self,
        name: str,
        algorithm: str,
        servers: list[Server],
        weights: list[int],
        backup: list[bool],
        persistence: str | None = None,
        stick: OrderedDict[Any, Server] | None = None,
        lvs: LvsPersistence | None = None,
    ):
        self.name = name
        self.algorithm = algorithm
        self.servers = servers
        self.weights = list(weights)
        self.backup = list(backup)
        self.usable = [True] * len(servers)
        self.balancer: Balancer = make_balancer(algorithm, self.weights, self.backup)
        self.persistence = persistence
        self.store_on_response = persistence in ("APP_COOKIE", "HTTP_COOKIE")
        #: the balancer's release when it counts connections (leastconn), else None:
        #: one test on the response path instead of three
        self.release: Callable[[int], None] | None = (
            self.balancer.release if self.balancer.tracks_connections else None
        )
        #: neither of the above nor a cookie to learn: a response needs nothing of the backend
        self.plain = self.release is None and not self.store_on_response
        #: the balancer's address map (source hash), renewed whenever the balancer changes
        self.table = self.balancer.address_map()
        self.lvs = lvs
        self.stick_size = 0 if persistence == "HTTP_COOKIE" or lvs is not None else STICK_SIZE
        self.stick: OrderedDict[Any, Server] = stick if stick is not None else OrderedDict()
        self.local_of = {s.gidx: i for i, s in enumerate(servers)}
        #: set while the compiled data plane owns this backend (its state lives there)
        self.frozen = False

    def active_usable(self) -> int:
        """Non-backup servers that may take traffic now (HAProxy's ``srv_act``)."""
        return sum(1 for u, w, bk in zip(self.usable, self.weights, self.backup, strict=True) if u and w > 0 and not bk)

    def persisted(self, src: Any, now: float = 0.0) -> int:
        """The member a persisted client returns to, or -1 (none, expired, or no longer UP)."""
        lvs = self.lvs
        if lvs is not None:
            src = lvs.key(src)
        srv = self.stick.get(src)
        if srv is None:
            return -1
        if lvs is not None:
            if lvs.expired(src, now):
                del self.stick[src]
                lvs.forget(src)
                return -1
            lvs.touch(src, now)
        local = self.local_of.get(srv.gidx, -1)
        if local < 0 or not self.usable[local]:
            return -1
        if self.stick_size:
            self.stick.move_to_end(src)
        return local

    def remember(self, src: Any, server: Server, now: float = 0.0) -> None:
        """Store (or update) a client's member in the stick table, cookie or LVS template."""
        if self.lvs is not None:
            src = self.lvs.key(src)
            self.lvs.touch(src, now)
        stick = self.stick
        stick[src] = server
        if self.stick_size:
            stick.move_to_end(src)
            if len(stick) > self.stick_size:
                stick.popitem(last=False)

    def set_usable(self, local: int, usable: bool) -> None:
        """Health or admin state changed: the server leaves or rejoins the rotation."""
        if self.usable[local] != usable:
            self._check_not_frozen()
            self.usable[local] = usable
            self.balancer.set_usable(local, usable)
            self.table = self.balancer.address_map()

    def set_weight(self, local: int, weight: int) -> None:
        """Weight changed at run time (weight 0 = drain)."""
        if self.weights[local] != weight:
            self._check_not_frozen()
            self.weights[local] = weight
            self.balancer.set_weight(local, weight)
            self.table = self.balancer.address_map()

    def usable_weight(self) -> int:
        """HAProxy's total usable weight (0 → the backend reports DOWN)."""
        return self.balancer.usable_weight()

    def _check_not_frozen(self) -> None:
        if self.frozen:
            raise RuntimeError(
                f"backend {self.name} changed while the compiled data plane owns it (run with --engine exact)"
            )


class Frontend:
    """A listener as rendered into one HAProxy frontend, with its statistics counters."""

    __slots__ = (
        "active",
        "alive",
        "allowed",
        "backend",
        "backlog",
        "bytes_in",
        "bytes_out",
        "maxconn",
        "name",
        "request_bytes",
        "response_bytes",
        "router",
        "stot",
        "timeout_connect",
        "timeout_data",
        "tls",
    )

    def __init__(
        self,
        name: str,
        maxconn: int,
        backend: Backend | None,
        timeout_connect: float,
        timeout_data: float,
    ):
        self.name = name
        self.maxconn = maxconn
        self.backend = backend
        self.active = 0
        self.backlog: deque[tuple[float, Any, int]] = deque()
        self.timeout_connect = timeout_connect
        self.timeout_data = timeout_data
        self.stot = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.request_bytes = 300
        self.response_bytes = 3000
        self.alive = True
        #: L7 policies (:class:`lbsim.sim.l7.FrontendRouter`), None when none are rendered
        self.router: Any = None
        #: listener ``allowed_cidrs`` (the VIP's security group): None lets every client in
        self.allowed: Callable[[Any], bool] | None = None
        #: TLS CPU seconds of one connection (lbsim.sim.tls), None without TLS work
        self.tls: Callable[[], float] | None = None

    @property
    def status(self) -> str:
        """HAProxy's frontend status string as the amphora reports it."""
        return "FULL" if self.active >= self.maxconn else "OPEN"


class DataPlane:
    """The members, the frontends of the VIP-holding amphora, and the measurements."""

    def __init__(
        self,
        env: TwinEnvironment,
        n_servers_hint: int,
        warmup: float,
        duration: float,
        log_requests: bool,
    ):
        self.env = env
        # what the request path's flags depend on (the properties below keep them current)
        self._vip_up, self._cpu_cores, self._qos, self._log_requests = True, 0, None, log_requests
        self._replan()
        self.warmup = warmup
        self.servers: list[Server] = []
        #: every server's queue, in server order: the once-a-second sample sums their
        #: lengths in one C call (10,000 members: 0.6 -> 0.24 ms a simulated second)
        self._queues: list[deque[Request]] = []
        self.server_by_name: dict[str, Server] = {}
        self._samplers: dict[tuple[str, str], Sampler] = {}
        self.frontends: dict[str, Frontend] = {}
        self.vip_up = True
        nsec = int(duration) + 2
        # successful responses (after warm-up) go to the recorder: latency, member, time
        self.latency = LatencyRecorder(n_servers_hint, nsec)
        self._lat = self.latency._lat  # hot-path aliases of the recorder's buffers
        self._who = self.latency._who
        self._when = self.latency._when
        # failures (after warm-up), by outcome, overall and per global server index
        self.errors: dict[str, int] = {}
        self.member_errors: list[dict[str, int]] = [{} for _ in range(n_servers_hint)]
        self.connect_errors = 0  # all time, for incident accounting
        #: errors per second, indexed by second (``_bump``): the recorder's window keeps them
        #: (:class:`~lbsim.sim.metrics.ErrorCounts`; a live world puts its own counter here)
        self.per_second_err: Any = self.latency.seconds.errors
        #: sampled once per second: (active connections, queued in members, kernel backlog)
        self.samples: WindowSamples = self.latency.seconds.samples  # in the window too
        self.log_requests = log_requests
        self.log: list[tuple[float, Any, int, float, str]] = []
        # amphora CPU (flavor); None = unlimited
        self.cpu_cores = 0
        self.cpu_cost = 0.0
        self.cpu_busy = 0
        self.cpu_queue: deque[tuple[Frontend, float, Any, int]] = deque()
        self.max_connections = 0
        self.inflight = 0
        #: vCPU seconds spent on connections (flavor and TLS work), for utilisation
        self.cpu_time = 0.0
        #: the compiled data plane (lbsim.sim.compiled) when it runs this data plane's requests
        self.compiled: Any = None
        #: the run's L7 state (:class:`lbsim.sim.l7.L7Context`), None without L7 policies
        self.l7: Any = None
        #: the VIP's QoS bandwidth limit (:class:`lbsim.sim.qos.VipShaper`), None without one
        self.qos = None
        #: members' HTTP check answers per path, by member name (lbsim.scenario.health_paths)
        self.health_paths: dict[str, dict[str, tuple[str, int]]] = {}

    # ------------------------------------------------------------------ request-path flags
    def _replan(self) -> None:
        #: arrivals need no special handling: the VIP is up and the amphora's CPU is not modelled
        self.plain_in = self._vip_up and not self._cpu_cores
        #: responses need no special handling: no VIP QoS, no request log, no CPU model
        self.plain_out = self._qos is None and not self._log_requests and not self._cpu_cores

    @property
    def vip_up(self) -> bool:
        """Whether an amphora holds the VIP (connections fail at once while not)."""
        return self._vip_up

    @vip_up.setter
    def vip_up(self, up: bool) -> None:
        self._vip_up = up
        self._replan()

    @property
    def cpu_cores(self) -> int:
        """The amphora's vCPUs (flavor); 0: its CPU is not modelled."""
        return self._cpu_cores

    @cpu_cores.setter
    def cpu_cores(self, cores: int) -> None:
        self._cpu_cores = cores
        self._replan()

    @property
    def qos(self) -> Any:
        """The VIP's QoS bandwidth limit (:class:`lbsim.sim.qos.VipShaper`), None without one."""
        return self._qos

    @qos.setter
    def qos(self, shaper: Any) -> None:
        self._qos = shaper
        self._replan()

    @property
    def log_requests(self) -> bool:
        """Whether every request is logged (``--log-requests``)."""
        return self._log_requests

    @log_requests.setter
    def log_requests(self, on: bool) -> None:
        self._log_requests = on
        self._replan()

    # ------------------------------------------------------------------ topology
    def add_server(self, server: Server) -> None:
        """Register a member server (global index = order of registration)."""
        self.servers.append(server)
        self._queues.append(server.queue)
        self.server_by_name[server.name] = server
        if self.health_paths:
            server.health_paths = self.health_paths.get(server.name)
        n = len(self.servers)
        if n > len(self.member_errors):
            self.member_errors += [{} for _ in range(n - len(self.member_errors))]
            self.latency.grow(n)
            self._lat = self.latency._lat
            self._who = self.latency._who
            self._when = self.latency._when

    def service_sampler(self, pool: str, dist: Any, make: Callable[[], Sampler]) -> Sampler:
        """The service-time sampler shared by a pool's members with the same distribution.

        Sharing keeps one hot buffer instead of one per member (which matters with
        thousands of members) and gives common random numbers across balancing
        algorithms: the k-th service started in a pool draws the k-th value, whichever
        member serves it.
        """
        key = (pool, dist.model_dump_json())
        sampler = self._samplers.get(key)
        if sampler is None:
            sampler = self._samplers[key] = make()
        return sampler

    # ------------------------------------------------------------------ counts
    @property
    def ok(self) -> int:
        """Successful responses after warm-up."""
        self.latency.flush()
        return int(self.latency.counts.sum())

    @property
    def requests(self) -> int:
        """Completed requests (successful or not) after warm-up."""
        return self.ok + sum(self.errors.values())

    def member_ok(self, gidx: int) -> int:
        """Successful responses of one server after warm-up."""
        self.latency.flush()
        return int(self.latency.counts[gidx])

    def member_requests(self, gidx: int) -> int:
        """Requests one server answered (or failed) after warm-up."""
        return self.member_ok(gidx) + sum(self.member_errors[gidx].values())

    def set_flavor(self, vcpus: int, requests_per_second_per_vcpu: float, max_connections: int | None) -> None:
        """Give the amphora finite CPU: each new connection costs CPU time before dispatch."""
        self.cpu_cores = vcpus
        self.cpu_cost = 1.0 / requests_per_second_per_vcpu
        self.max_connections = max_connections or 0

    # ------------------------------------------------------------------ request path
    def arrive(self, fe: Frontend, src: Any, port: int) -> None:
        """A client opens a connection to the listener."""
        if self.cpu_cores or not self.vip_up or fe.allowed is not None:
            self._arrive_constrained(fe, src, port)
            return
        # the common case, inlined: _admit
        fe.stot += 1
        fe.bytes_in += fe.request_bytes
        now = self.env._now
        if fe.active >= fe.maxconn:
            fe.backlog.append((now, src, port))
            return
        fe.active += 1
        self.dispatch(fe, now, src, port)

    def _arrive_constrained(self, fe: Frontend, src: Any, port: int) -> None:
        """Arrival when the VIP is down or the amphora's CPU is modelled."""
        now = self.env._now
        if fe.allowed is not None and not fe.allowed(src):  # dropped by the security group
            self.finish((now, src, port, None, -1, now, None, 0, False), -1, OUT_DENIED, False)
            return
        if not self.vip_up:
            self.finish((now, src, port, None, -1, now, fe, 0, False), -1, OUT_CONNECT, False)
            return
        if not self.cpu_cores:  # only the security group stood in the way
            self._admit(fe, now, src, port)
            return
        if self.max_connections and self.inflight >= self.max_connections:
            self.finish((now, src, port, None, -1, now, fe, 0, False), -1, OUT_CONNECT, False)
            return
        self.inflight += 1
        if self.cpu_busy < self.cpu_cores:
            self.cpu_busy += 1
            cost = self.cpu_cost if fe.tls is None else self.cpu_cost + fe.tls()
            self.cpu_time += cost
            self.env.call_later(cost, self._cpu_done, fe, (now, src, port))
        else:
            self.cpu_queue.append((fe, now, src, port))

    def _cpu_done(self, fe: Frontend, conn: tuple[float, Any, int]) -> None:
        if self.cpu_queue:
            nfe, t0, s, p = self.cpu_queue.popleft()
            cost = self.cpu_cost if nfe.tls is None else self.cpu_cost + nfe.tls()
            self.cpu_time += cost
            self.env.call_later(cost, self._cpu_done, nfe, (t0, s, p))
        else:
            self.cpu_busy -= 1
        self._admit(fe, *conn)

    def _admit(self, fe: Frontend, t0: float, src: Any, port: int) -> None:
        fe.stot += 1
        fe.bytes_in += fe.request_bytes
        if fe.active >= fe.maxconn:
            fe.backlog.append((t0, src, port))
            return
        fe.active += 1
        self.dispatch(fe, t0, src, port)

    def dispatch(self, fe: Frontend, t0: float, src: Any, port: int) -> None:
        """HAProxy picks a server in the listener's default backend and connects."""
        be = fe.backend
        now = self.env._now
        if fe.router is not None:  # idle clients, L7 policies: wait, reject, redirect or switch backend
            d = fe.router.decide(self, fe, t0, src, port)
            if d is None:
                return  # the request has not arrived yet
            if d.kind == "pool":
                be = fe.router.backends.get(d.pool)
            elif d.kind != "default":
                self.finish((t0, src, port, None, -1, now, fe, 0, False), -1, str(d.code))
                return
        if be is None:
            self.finish((t0, src, port, None, -1, now, fe, 0, False), -1, OUT_503)
            return
        counted = True
        if be.persistence is not None and (local := be.persisted(src, now)) >= 0:
            counted = False  # a persisted request bypasses the balancer
        else:
            local = be.balancer.pick(src, port)
            if local < 0:
                self.finish((t0, src, port, None, -1, now, fe, 0, False), -1, OUT_503)
                return
            if be.persistence is not None and not be.store_on_response:
                be.remember(src, be.servers[local], now)
        server = be.servers[local]
        req = (t0, src, port, be, local, now, fe, 0, counted)
        if server.serving:
            if server.busy < server.concurrency:
                server.busy += 1
                s = server.service()
                if server.behaviour is SLOW:
                    s *= server.factor
                    server.slowed += 1
                server.busy_time += s
                env = self.env
                heappush(env.fast, (now + s, next(env.fast_seq), self.complete, server, req))
            else:
                server.queue.append(req)
        else:
            self.misbehave(server, req)

    def receive(self, server: Server, req: Request) -> None:
        """A (re)tried request reaches a server."""
        if server.serving:
            if server.busy < server.concurrency:
                self.start(server, req)
            else:
                server.queue.append(req)
        else:
            self.misbehave(server, req)

    def start(self, server: Server, req: Request, factor: float = 1.0) -> None:
        """The server takes a request into one of its service slots."""
        server.busy += 1
        s = server.service() * factor
        if server.behaviour is SLOW:
            s *= server.factor
        server.busy_time += s
        self.env.call_later(s, self.complete, server, req)

    def misbehave(self, server: Server, req: Request) -> None:
        """A request meets a member that is partitioned, refuses, hangs or errs."""
        if server.partitioned:
            self.refused(server, req, timed_out=True)
            return
        b = server.behaviour
        if b is PARTIAL:
            if server.uniform() >= server.partial_fraction:
                b = HEALTHY
            else:
                b = server.partial_fault
            if b is HEALTHY or b is SLOW:
                if server.busy < server.concurrency:
                    self.start(server, req, server.factor if b is SLOW else 1.0)
                else:
                    server.queue.append(req)
                return
        if b is REFUSE:
            self.refused(server, req)
        elif b is HANG:
            self.hold_until_timeout(server, req)
        else:  # ERROR: answers at once with its status
            self.finish(req, server.gidx, str(server.status))

    def refused(self, server: Server, req: Request, timed_out: bool = False) -> None:
        """A connection attempt failed: retry, redispatch or give up with 503.

        HAProxy (``retries 3``, ``option redispatch``), as measured on HAProxy 2.6: with
        a deterministic algorithm (not ``source``), no persistence and more than one
        usable server, every retry is redispatched at once to another server; otherwise
        retries go to the same server after a turn-around of min(timeout connect, 1 s),
        and the last retry is redispatched (without the turn-around when more than one
        server is usable). A connection that gets no answer at all (``timed_out``) ends
        at ``timeout connect`` and is retried right away. When the retries are used up
        the client gets 503.
        """
        attempt = req[7]
        be: Backend | None = req[3]
        fe: Frontend = req[6]
        server.slowed += 1
        if attempt >= RETRIES or be is None:
            delay = fe.timeout_connect if timed_out else 0.0
            self.env.call_later(delay, self._give_up, server, req)
            return
        many = be.active_usable() > 1
        redispatch = attempt + 1 == RETRIES or (many and req[8] and be.algorithm not in HASH_ALGORITHMS)
        if timed_out:
            delay = fe.timeout_connect
        else:
            delay = 0.0 if redispatch and many else min(fe.timeout_connect, 1.0)
        self.env.call_later(delay, self._retry, server, (req, redispatch))

    def _give_up(self, server: Server, req: Request) -> None:
        self.finish(req, server.gidx, OUT_503)

    def _retry(self, server: Server, job: tuple[Request, bool]) -> None:
        req, redispatch = job
        t0, src, port, be, local, _sent, fe, attempt, counted = req
        attempt += 1
        now = self.env._now
        if be is not None and not be.usable[local]:
            redispatch = True  # HAProxy redispatches when the server is no longer running
        if redispatch and be is not None:
            if counted:
                be.balancer.release(local)
            current = fe.backend if fe.backend is not None else be
            if fe.router is not None:  # an L7-routed request stays in its pool's backend
                current = fe.router.backends.get(be.name, be)
            avoid = local if current is be else -1
            be = current
            local = be.balancer.pick(src, port, avoid)
            if local < 0:
                self.finish((t0, src, port, None, -1, now, fe, attempt, False), server.gidx, OUT_503)
                return
            if be.persistence is not None and not be.store_on_response:
                be.remember(src, be.servers[local], now)
            self.receive(be.servers[local], (t0, src, port, be, local, now, fe, attempt, True))
            return
        self.receive(server, (t0, src, port, be, local, now, fe, attempt, counted))

    def hold_until_timeout(self, server: Server, req: Request) -> None:
        """A hung member never answers: HAProxy's ``timeout server`` ends it with 504."""
        self.env.call_later(max(0.0, req[5] + req[6].timeout_data - self.env._now), self._timed_out, server, req)

    def _timed_out(self, server: Server, req: Request) -> None:
        self.finish(req, server.gidx, OUT_504)

    def complete(self, server: Server, req: Request) -> tuple[float, Server, Request] | None:
        """A member finished serving a request: answer, then take the next queued one."""
        now = self.env._now
        t0, src, _port, be, local, sent, fe, _attempt, counted = req
        if not fe.alive:  # the amphora died: the client's connection is gone
            self.finish(req, server.gidx, OUT_CONNECT, False)
        elif now - sent > fe.timeout_data:
            self.finish(req, server.gidx, OUT_504)
        else:
            # the common case, inlined: a successful response
            if not be.plain:  # leastconn's connection count, a cookie learnt from the response
                if be.release is not None and counted:
                    be.release(local)
                if be.store_on_response:
                    be.remember(src, server)
            if self.plain_out:  # deliver, inlined for the case without QoS, log or CPU model
                fe.bytes_out += fe.response_bytes
                if t0 >= self.warmup:
                    lat = self._lat
                    lat.append(now - t0)
                    self._who.append(server.gidx)
                    self._when.append(now)
                    if len(lat) >= FLUSH:
                        self.latency.flush()
                if fe.backlog:
                    self._release_frontend(fe)
                else:
                    fe.active -= 1
            elif self.qos is not None and self._shape(server, req):
                pass  # the VIP's bandwidth limit holds the response back (or drops it)
            else:
                self.deliver(server.gidx, req)
        server.served += 1
        q = server.queue
        if q:
            nxt = q[0]
            if server.serving and now - nxt[5] < nxt[6].timeout_data:
                # the common case, inlined: the freed slot takes the next queued request
                # (busy stays as it is), and the kernel reuses this completion's calendar
                # entry for it
                q.popleft()
                svc = server.service
                try:  # Sampler.__call__, inlined
                    i = svc._i
                    s = svc._buf[i]
                    svc._i = i + 1
                except (IndexError, AttributeError):  # a used-up block, or not a Sampler
                    s = svc()
                if server.behaviour is SLOW:
                    s *= server.factor
                server.busy_time += s
                return (now + s, server, nxt)
            server.busy -= 1
            self.drain_queue(server)
            return None
        server.busy -= 1
        return None

    def deliver(self, gidx: int, req: Request) -> None:
        """A successful response reaches the client: bytes, latency, the frontend slot
        (what :meth:`complete` does inline; here for responses the VIP QoS held back)."""
        fe: Frontend = req[6]
        now = self.env._now
        fe.bytes_out += fe.response_bytes
        t0 = req[0]
        if t0 >= self.warmup:
            lat = self._lat
            lat.append(now - t0)
            self._who.append(gidx)
            self._when.append(now)
            if len(lat) >= FLUSH:
                self.latency.flush()
            if self.log_requests:
                self.log.append((t0, req[1], gidx, now - t0, OUT_OK))
        if fe.backlog or self.cpu_cores:
            self._release_frontend(fe)
        else:
            fe.active -= 1

    def _shape(self, server: Server, req: Request) -> bool:
        """VIP QoS: True when the response waits for tokens (delivered later) or is dropped
        because it would wait past the listener's ``timeout client``."""
        fe: Frontend = req[6]
        wait = self.qos.wait(fe.response_bytes, self.env._now)
        if wait <= 0.0:
            return False
        if wait > self.qos.timeout_client(fe):
            self.qos.give_back(fe.response_bytes)
            # (the balancer already released the connection when the member answered)
            self.finish((req[0], req[1], req[2], req[3], req[4], req[5], fe, req[7], False), -1, OUT_QOS)
        else:
            self.env.call_later(wait, self._shaped_done, server.gidx, req)
        return True

    def _shaped_done(self, gidx: int, req: Request) -> None:
        if req[6].alive:
            self.deliver(gidx, req)
        else:
            self.finish(req, gidx, OUT_CONNECT, False)

    def drain_queue(self, server: Server) -> None:
        """Start queued requests while slots are free (or time them out if it stopped answering)."""
        if self.compiled is not None:
            raise RuntimeError(f"member {server.name} changed while the compiled data plane runs (use --engine exact)")
        q = server.queue
        if not server.serving and server.behaviour is not PARTIAL:
            while q:  # what waits inside a member that stopped answering times out
                self.hold_until_timeout(server, q.popleft())
            return
        now = self.env._now
        while q and server.busy < server.concurrency:
            req = q.popleft()
            if now - req[5] >= req[6].timeout_data:
                self.finish(req, server.gidx, OUT_504)  # HAProxy gave up while it waited here
                continue
            self.start(server, req)

    def finish(self, req: Request, gidx: int, outcome: str, release: bool = True) -> None:
        """Record a request's outcome and free its frontend connection."""
        now = self.env._now
        t0 = req[0]
        be = req[3]
        if be is not None and req[8] and be.balancer.tracks_connections:
            be.balancer.release(req[4])
        fe: Frontend | None = req[6]
        if gidx >= 0 and outcome is not OUT_OK:
            self.servers[gidx].failed += 1
        if outcome is OUT_CONNECT:
            self.connect_errors += 1
        elif fe is not None:
            fe.bytes_out += fe.response_bytes if outcome is OUT_OK else ERROR_PAGE_BYTES
        if t0 >= self.warmup:
            if outcome is OUT_OK:
                self.latency.add(gidx, now - t0, now)
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1
                if gidx >= 0:
                    errs = self.member_errors[gidx]
                    errs[outcome] = errs.get(outcome, 0) + 1
                _bump(self.per_second_err, int(now))
            if self.log_requests:
                self.log.append((t0, req[1], gidx, now - t0, outcome))
        if release and fe is not None:
            self._release_frontend(fe)

    def sample(self) -> None:
        """Record the current occupancy (called once per simulated second; with the
        compiled data plane its kernel takes the samples instead)."""
        active = sum(fe.active for fe in self.frontends.values())
        backlog = sum(len(fe.backlog) for fe in self.frontends.values()) + len(self.cpu_queue)
        if len(self._queues) != len(self.servers):  # servers added without add_server
            self._queues = [s.queue for s in self.servers]
        queued = sum(map(len, self._queues))
        self.samples.append((active, queued, backlog))

    def drop_frontends(self) -> None:
        """The VIP holder died: connections inside it are lost (counted as ``connect``)."""
        for fe in self.frontends.values():
            while fe.backlog:
                t0, src, port = fe.backlog.popleft()
                self.finish((t0, src, port, None, -1, t0, None, 0, False), -1, OUT_CONNECT, False)
        while self.cpu_queue:
            _fe, t0, src, port = self.cpu_queue.popleft()
            self.finish((t0, src, port, None, -1, t0, None, 0, False), -1, OUT_CONNECT, False)
        self.inflight = 0
        self.cpu_busy = 0

    def _release_frontend(self, fe: Frontend) -> None:
        if self.cpu_cores and self.inflight > 0:
            self.inflight -= 1
        if fe.backlog:  # the freed connection admits the oldest waiting one
            t0, src, port = fe.backlog.popleft()
            self.dispatch(fe, t0, src, port)
        else:
            fe.active -= 1


def _bump(series: Any, sec: int) -> None:
    """Count one error in second ``sec`` of ``per_second_err`` (the recorder's
    :class:`~lbsim.sim.metrics.ErrorCounts`, or a live world's counter)."""
    series.bump(sec)
