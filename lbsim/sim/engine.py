"""The simulation engine: wires scenario, control plane, amphora, health manager, traffic.

This is the only module that knows every other one. It owns the SimPy environment, turns
scenario events into actions at their times, runs controller-worker jobs for the
durations the scenario's ``octavia.workers`` distributions give, and records every
status change in the :class:`~lbsim.octavia.timeline.Timeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from lbsim._version import __version__
from lbsim.octavia import l7 as l7ops
from lbsim.octavia.controlplane import ControlPlane
from lbsim.octavia.healthmanager import HealthManager, db_view
from lbsim.octavia.objects import ApiResponse, Change, Job, ObjSpec
from lbsim.octavia.status import update_health
from lbsim.octavia.timeline import Timeline
from lbsim.scenario import model as m
from lbsim.scenario.access import separate_monitor
from lbsim.scenario.gcpause import freeze_existing, gc_paused
from lbsim.scenario.health_paths import path_table
from lbsim.sim.amphora import Amphora
from lbsim.sim.dataplane import DataPlane
from lbsim.sim.distributions import make_sampler, stream
from lbsim.sim.kernel import TwinEnvironment
from lbsim.sim.l7 import L7Context
from lbsim.sim.qos import vip_shaper
from lbsim.sim.traffic import arrival_callback, client_addresses, load_trace, make_gap_fn
from lbsim.sim.zones import Zones

ProgressFn = Callable[[float], None]


@dataclass
class ApiCall:
    """One API request the scenario made, and Octavia's answer."""

    time: float
    op: str
    object_type: str
    name: str
    code: int
    message: str


@dataclass
class FaultRecord:
    """A fault the scenario injected, with what it cost (for the incident report).

    ``failed`` and ``slowed`` count requests that failed or needed retries because of
    it, over the fault's whole life (warm-up included); they are filled in when the
    fault ends or the run does.
    """

    kind: str
    target: str
    time: float
    members: tuple[str, ...] = ()
    end: float | None = None
    failed: int = 0
    slowed: int = 0
    _base: tuple[int, int] = (0, 0)
    _settled: bool = False


@dataclass
class RawRun:
    """Everything a finished simulation leaves behind, before summarising."""

    scenario: m.Scenario
    seed: int
    timeline: Timeline
    dp: DataPlane
    cp: ControlPlane
    api_calls: list[ApiCall]
    faults: list[FaultRecord]
    member_names: list[str]
    duration: float
    lbsim_version: str = __version__
    heartbeats: int = 0
    stats_rows: list[tuple[Any, ...]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def scenario_specs(sc: m.Scenario) -> list[ObjSpec]:
    """The scenario's load-balancer tree as control-plane object descriptions."""
    return lb_specs(sc.loadbalancer)


def lb_specs(lb: m.LoadBalancer) -> list[ObjSpec]:
    """One load-balancer tree as control-plane object descriptions."""
    specs = [ObjSpec("loadbalancer", lb.name, {"admin_state_up": lb.admin_state_up, "topology": lb.topology})]
    for li in lb.listeners:
        specs.append(ObjSpec("listener", li.name, {**li.model_dump(exclude={"name"}), "loadbalancer": lb.name}))
        specs += l7ops.specs(li.name, li.l7policies)
    for p in lb.pools:
        attrs = p.model_dump(exclude={"name", "members", "healthmonitor"})
        specs.append(ObjSpec("pool", p.name, {**attrs, "loadbalancer": lb.name}))
        if p.healthmonitor is not None:
            hm = p.healthmonitor
            specs.append(
                ObjSpec(
                    "healthmonitor",
                    hm.name or f"{p.name}-hm",
                    {**hm.model_dump(exclude={"name"}), "pool": p.name},
                )
            )
        for mem in p.members:
            specs.append(ObjSpec("member", mem.name, {**mem.model_dump(exclude={"name"}), "pool": p.name}))
    return specs


def member_serving(name: str, body: dict[str, Any]) -> m.Member:
    """How a member created through the API serves requests: lbsim's serving fields from
    the request body where given (``concurrency``, ``service_time``, ``behaviour``...),
    lbsim's defaults otherwise; Octavia-only fields are not part of the model."""
    fields = m.Member.model_fields
    return m.Member.model_validate({**{k: v for k, v in body.items() if k in fields}, "name": name})


def api_call_of(ev: m.ApiEvent) -> tuple[str, str, dict[str, Any], m.Member | None]:
    """What an ``api:`` event asks: (object type, name, request body, serving model).

    A create names its parents beside ``set`` (``pool: p1``); they go into the body as the
    client would send them. A member create also says how the member serves requests.
    One function for the one-LB engine and the multi-LB world, so both send the same call.
    """
    kind, name = ev.target
    body: dict[str, Any] = dict(ev.set)
    if ev.api == "create":
        for parent in ("l7policy", "pool", "listener", "loadbalancer"):
            pv = getattr(ev, parent)
            if pv is not None and parent != kind:
                body.setdefault(parent, pv)
    serving = member_serving(name, ev.set) if ev.api == "create" and kind == "member" else None
    return kind, name, body, serving


class Simulation:
    """One run of one scenario, or one load balancer's runtime inside a shared world.

    Alone (``lbsim run`` of a one-LB scenario) it owns its SimPy environment, control
    plane and timeline. Inside a :class:`lbsim.sim.world.World` several of them share
    ``env``, ``cp`` and ``timeline`` (one clock, one Octavia), each with its own ``lb``
    tree, amphorae, data plane and health manager. ``live`` runs have no end: nothing is
    sized by the duration and traffic never stops on its own.
    """

    def __init__(
        self,
        scenario: m.Scenario,
        *,
        seed: int | None = None,
        base_dir: Path | None = None,
        log_requests: bool = False,
        env: TwinEnvironment | None = None,
        cp: ControlPlane | None = None,
        timeline: Timeline | None = None,
        lb: m.LoadBalancer | None = None,
        live: bool = False,
        amp_id: Callable[[int], str] | None = None,
    ) -> None:
        self.sc = scenario
        self.lb = scenario.loadbalancer if lb is None else lb
        self.seed = scenario.seed if seed is None else seed
        self.base_dir = base_dir
        self.live = live
        self.horizon = float("inf") if live else scenario.duration
        self.env = TwinEnvironment() if env is None else env
        self.timeline = Timeline() if timeline is None else timeline
        self.cp = ControlPlane() if cp is None else cp
        self._amp_name = amp_id if amp_id is not None else (lambda k: f"amphora-{k}")
        n_members = sum(len(p.members) for p in self.lb.pools)
        self.dp = DataPlane(self.env, n_members, scenario.warmup, 0.0 if live else scenario.duration, log_requests)
        flavor = self.lb.flavor
        if flavor is not None:
            self.dp.set_flavor(flavor.vcpus, flavor.requests_per_second_per_vcpu, flavor.max_connections)
        # (L7 and TLS settings are those of this runtime's load balancer)
        own = scenario if self.lb is scenario.loadbalancer else scenario.model_copy(update={"loadbalancer": self.lb})
        self.dp.l7 = L7Context(own, self.seed, base_dir)
        self.dp.qos = vip_shaper(scenario, self.lb)
        self.zones = Zones(self.lb.availability_zone)
        self.dp.health_paths = {
            mem.name: t for p in self.lb.pools for mem in p.members if (t := path_table(mem.health_paths, mem.status))
        }
        self.cp.quotas = scenario.octavia.quotas.limits()
        self.lb_name = self.lb.name
        self.topology = self.lb.topology
        self.serving: dict[str, m.Member] = {mem.name: mem for p in self.lb.pools for mem in p.members}
        self.sizes: dict[str, tuple[int, int]] = {}
        for src in scenario.traffic:
            self.sizes.setdefault(src.listener, (src.request_bytes, src.response_bytes))
        self.api_calls: list[ApiCall] = []
        self.faults: list[FaultRecord] = []
        self.hm = HealthManager(self.env, self.cp, self.timeline, scenario.octavia, self.lb_name, self._record)
        self.hm.on_failover = self._failover
        self.amphorae: list[Amphora] = []
        self.vip: Amphora | None = None
        self.partitioned: set[str] = set()
        #: amphorae whose management network is cut (heartbeats do not arrive)
        self.mgmt_cut: set[str] = set()
        self._member_gen: dict[str, int] = {}
        self._amp_seq = 0
        self._hb_seq = 0
        self._failing_amp: str | None = None
        self.autoscalers: list[Any] = []
        self._worker_rng = stream(self.seed, "workers")
        w = scenario.octavia.workers
        self._durations = {
            "update": make_sampler(w.update, stream(self.seed, "worker:update"), base_dir),
            "create_loadbalancer": make_sampler(w.create_loadbalancer, stream(self.seed, "worker:lbcreate"), base_dir),
            "delete_loadbalancer": make_sampler(w.delete_loadbalancer, stream(self.seed, "worker:lbdelete"), base_dir),
            "amphora_boot": make_sampler(w.amphora_boot, stream(self.seed, "worker:boot"), base_dir),
        }

    # ---------------------------------------------------------------- helpers
    def _record(self, changes: Iterable[Change]) -> None:
        now = self.env.now
        for c in changes:
            self.timeline.set(now, c.object_type, c.name, c.field, c.new)

    def _record_initial(self) -> None:
        for obj in self.cp.objects():
            self.timeline.set(0.0, obj.type, obj.name, "provisioning_status", obj.provisioning_status)
            self.timeline.set(0.0, obj.type, obj.name, "operating_status", obj.operating_status)

    def _live(self) -> list[Amphora]:
        return [a for a in self.amphorae if a.alive]

    def _new_amphora(self, role: str) -> Amphora:
        self._amp_seq += 1
        amp_id = self._amp_name(self._amp_seq)
        amp = Amphora(self.env, self.dp, self.timeline, self.seed, self.base_dir, role, amp_id)
        amp.sizes = self.sizes
        zone = self.zones.place(amp_id, [a.amp_id for a in self._live()])
        if zone is not None:
            self.timeline.set(self.env.now, "amphora", amp_id, "availability_zone", zone)
        self.amphorae.append(amp)
        return amp

    def _bring_up(self, amp: Amphora, *, fresh: bool, take_vip: bool, rendered: bool = False) -> None:
        """An amphora is built: HAProxy starts with the current config, heartbeats begin."""
        if not rendered:
            amp.render(self.cp, self.lb_name, self.serving, fresh=fresh)
        for name in self.partitioned:
            if name in amp.servers:
                amp.servers[name].server.set_partitioned(True)
        now = self.env.now
        self.timeline.set(now, "amphora", amp.amp_id, "provisioning_status", "ALLOCATED")
        if take_vip:
            self._give_vip(amp)
        else:
            self.timeline.set(now, "amphora", amp.amp_id, "data_plane_state", "BACKUP")
        self.hm.last_update[amp.amp_id] = now
        self.env.process(self._heartbeats(amp))

    def _give_vip(self, amp: Amphora) -> None:
        for other in self.amphorae:
            other.active = False
        self.vip = amp
        amp.take_vip()
        state = "STANDALONE" if self.topology == "SINGLE" else "MASTER"
        self.timeline.set(self.env.now, "amphora", amp.amp_id, "data_plane_state", state)

    # ---------------------------------------------------------------- set-up
    def _start_running(self) -> None:
        """A deployment that has been running: ACTIVE, HAProxy healthy, statuses settled."""
        self.cp.load_active(lb_specs(self.lb))
        first = self._new_amphora("STANDALONE" if self.topology == "SINGLE" else "MASTER")
        # start: running = a long-running HAProxy (full health); fresh = just started (h = rise)
        settled = self.sc.start == "running"
        first.render(self.cp, self.lb_name, self.serving, fresh=settled)
        # the statuses the API shows are those of the last heartbeat before t=0
        view = db_view(self.cp, self.lb_name)
        assert view is not None
        upd = update_health(view, first.heartbeat(0), heartbeat_interval=self.sc.octavia.heartbeat_interval)
        for w in upd.writes:
            self.cp.set_operating_status(w.object_type, w.object_id, w.operating_status)
        self._record_initial()
        self._bring_up(first, fresh=settled, take_vip=True, rendered=True)
        if self.topology == "ACTIVE_STANDBY":
            self._bring_up(self._new_amphora("BACKUP"), fresh=settled, take_vip=False)

    def _start_provision(self) -> None:
        """Create the whole tree through the API at t=0 (PENDING_CREATE ... ACTIVE)."""
        resp = self.cp.create_loadbalancer_tree(lb_specs(self.lb))
        self.api_calls.append(ApiCall(0.0, "create", "loadbalancer", self.lb_name, resp.code, resp.message))
        self._record(resp.changes)
        if resp.job is not None:
            self._run_job(resp.job, fail=False)

    # ---------------------------------------------------------------- processes
    def _heartbeats(self, amp: Amphora) -> Generator[simpy.Event, Any, None]:
        interval = self.sc.octavia.heartbeat_interval
        phase = float(stream(self.seed, f"heartbeat:{amp.amp_id}").uniform(0, interval))
        yield self.env.timeout(phase)
        while amp.alive:
            self._hb_seq += 1
            hb = amp.heartbeat(self._hb_seq)
            if amp.amp_id not in self.mgmt_cut:  # a cut management network loses it
                self.hm.process(amp.amp_id, hb)
                self.hm.update_stats(amp.amp_id, hb)
            yield self.env.timeout(interval)

    def _traffic(self, i: int | str, src: m.TrafficSource, running: Callable[[], bool] | None = None) -> None:
        """Start one traffic source; ``i`` names its random streams; it stops at the
        horizon, or when ``running`` (if given) turns false."""
        rng = stream(self.seed, f"arrivals:{i}")
        trace = None
        if isinstance(src.arrival, m.Trace):
            p = Path(src.arrival.file)
            if not p.is_absolute() and self.base_dir is not None:
                p = self.base_dir / p
            trace = load_trace(p)
        gap = make_gap_fn(src.arrival, rng, trace)
        crng = stream(self.seed, f"clients:{i}")
        addrs = client_addresses(src.clients, crng).tolist()
        fire = arrival_callback(self.dp, src.listener, gap, addrs, crng, self.horizon, running, trace)
        g0 = gap()
        if g0 is not None and g0 <= self.horizon:
            self.env.call_later(g0, fire)

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self.dp.sample()
            yield self.env.timeout(1.0)

    # ---------------------------------------------------------------- events
    def _schedule_events(self) -> None:
        for ev in sorted(self.sc.events, key=lambda e: e.at):
            self.env.call_first(ev.at, self._apply_event, ev)
        self._start_failures()

    def _start_failures(self) -> None:
        """Stochastic failures of this load balancer's members."""
        mine = {mem.name for p in self.lb.pools for mem in p.members}
        for fl in self.sc.failures:
            names = fl.members or [mem.name for p in self.lb.pools if p.name == fl.pool for mem in p.members]
            for name in names:
                if fl.members is None or name in mine or self.sc.loadbalancers is None:
                    self.env.process(self._stochastic(name, fl))

    def _apply_event(self, ev: Any, _b: Any = None) -> None:
        if isinstance(ev, m.MemberEvent):
            self._member_event(ev)
        elif isinstance(ev, m.ApiEvent):
            self._api(ev)
        elif isinstance(ev, m.AmphoraEvent):
            self.amphora_event(ev)
        elif isinstance(ev, m.NetworkEvent):
            self._network(ev)
        elif isinstance(ev, m.ZoneEvent):
            self.zone_event(ev)

    def _set_member(
        self,
        name: str,
        behaviour: str,
        *,
        status: int = 500,
        factor: float = 10.0,
        port: str = "both",
        fraction: float = 0.0,
        fault: str = "refuse",
    ) -> None:
        """Change a member's behaviour, now and for amphorae built later."""
        if port != "both":  # without a monitor endpoint of its own, checks and traffic share fate
            row = self.cp.get("member", name)
            if not separate_monitor(row.attrs if row is not None else None):
                port = "both"
        spec = self.serving.get(name)
        if spec is not None and port == "both" and behaviour != "partial":
            self.serving[name] = spec.model_copy(update={"behaviour": behaviour, "status": status, "factor": factor})
        server = self.dp.server_by_name.get(name)
        if server is not None:
            server.set_behaviour(behaviour, status, factor, port=port, fraction=fraction, fault=fault)

    def _open_fault(self, kind: str, target: str, members: tuple[str, ...]) -> FaultRecord:
        f = FaultRecord(kind, target, self.env.now, members)
        f._base = self._fault_counts(f)
        self.faults.append(f)
        return f

    def _close_fault(self, f: FaultRecord) -> None:
        if f.end is not None:
            return
        f.end = self.env.now
        failed, slowed = self._fault_counts(f)
        f.failed = failed - f._base[0]
        f.slowed = slowed - f._base[1]
        if f.members:  # requests that arrived during it may still fail (a hang's 504s)
            self.env.call_later(self._fault_grace(), self._settle_fault, f)

    def _fault_grace(self) -> float:
        """How long after a fault a request that arrived during it may still fail: HAProxy's
        connect timeout for the first try and 3 retries, then the data timeout (+1 s)."""
        lis = [(li.timeout_member_connect, li.timeout_member_data) for li in self.lb.listeners]
        if not lis:  # a load balancer created through the API: its listeners' rows
            lis = [
                (int(o.attrs.get("timeout_member_connect") or 5000), int(o.attrs.get("timeout_member_data") or 50000))
                for o in self.cp.listeners_of(self.lb_name)
            ]
        worst = max((4 * connect + data for connect, data in lis), default=0)
        return worst / 1000.0 + 1.0

    def _settle_fault(self, f: FaultRecord, _unused: Any = None) -> None:
        """Count the failures of requests that arrived during an ended member fault, up to
        now or to the next fault on the same members (whose failures are its own)."""
        if f._settled or f.end is None:
            return
        f._settled = True
        later = [g._base for g in self.faults if g is not f and g.members == f.members and g.time >= f.end]
        failed, slowed = min(later) if later else self._fault_counts(f)
        f.failed, f.slowed = failed - f._base[0], slowed - f._base[1]

    def _fault_counts(self, f: FaultRecord) -> tuple[int, int]:
        if not f.members:  # amphora: connections lost
            return self.dp.connect_errors, 0
        servers = [self.dp.server_by_name[n] for n in f.members if n in self.dp.server_by_name]
        return sum(s.failed for s in servers), sum(s.slowed for s in servers)

    def _close_member_faults(self, name: str) -> None:
        for f in self.faults:
            if f.end is None and f.members == (name,) and f.kind.startswith("member_"):
                self._close_fault(f)

    def _member_event(self, ev: m.MemberEvent) -> None:
        name = ev.member
        self._member_gen[name] = self._member_gen.get(name, 0) + 1  # ends a running flap
        self._close_member_faults(name)
        if ev.behaviour == "flap":
            self._open_fault("member_flap", name, (name,))
            self.env.process(self._flap(ev, self._member_gen[name]))
            return
        if ev.behaviour == "partial":
            self._set_member(
                name,
                "partial",
                status=ev.status,
                factor=ev.factor,
                port=ev.port,
                fraction=ev.fraction or 0.0,
                fault=ev.fault,
            )
        else:
            self._set_member(name, ev.behaviour, status=ev.status, factor=ev.factor, port=ev.port)
        if ev.behaviour != "healthy":
            suffix = "" if ev.port == "both" else f"_{ev.port}"
            self._open_fault(f"member_{ev.behaviour}{suffix}", name, (name,))

    def _flap(self, ev: m.MemberEvent, gen: int) -> Generator[simpy.Event, Any, None]:
        """Alternate the fault and health: faulty for duty·period of every period."""
        assert ev.period is not None
        end = ev.until if ev.until is not None else self.horizon
        name = ev.member
        while self.env.now < end and self._member_gen.get(name) == gen:
            self._set_member(name, ev.fault, status=ev.status, factor=ev.factor, port=ev.port)
            yield self.env.timeout(min(ev.period * ev.duty, max(0.0, end - self.env.now)))
            if self._member_gen.get(name) != gen:
                return
            self._set_member(name, "healthy", port=ev.port)
            if self.env.now >= end:
                break
            yield self.env.timeout(ev.period * (1 - ev.duty))
        if self._member_gen.get(name) == gen:
            self._set_member(name, "healthy", port=ev.port)
            self._close_member_faults(name)

    def _stochastic(self, name: str, fl: m.StochasticFailures) -> Generator[simpy.Event, Any, None]:
        """Independent up/down cycles of one member: up ~ mttf, down ~ mttr."""
        up = make_sampler(fl.mttf, stream(self.seed, f"mttf:{name}"), self.base_dir)
        down = make_sampler(fl.mttr, stream(self.seed, f"mttr:{name}"), self.base_dir)
        while name not in self.dp.server_by_name:  # created later through the API
            yield self.env.timeout(1.0)
        while True:
            yield self.env.timeout(up())
            self._set_member(name, fl.fault)
            f = self._open_fault(f"stochastic_{fl.fault}", name, (name,))
            yield self.env.timeout(down())
            self._set_member(name, "healthy")
            self._close_fault(f)

    def _network(self, ev: m.NetworkEvent) -> None:
        names = tuple(ev.members) if ev.members is not None else tuple(self.dp.server_by_name) or tuple(self.serving)
        if ev.network == "partition":
            self.partitioned.update(names)
            for n in names:
                if n in self.dp.server_by_name:
                    self.dp.server_by_name[n].set_partitioned(True)
            self._open_fault("partition", ",".join(names), names)
        else:
            self.partitioned.difference_update(names)
            for n in names:
                if n in self.dp.server_by_name:
                    self.dp.server_by_name[n].set_partitioned(False)
            for f in self.faults:
                if f.kind == "partition" and f.end is None and set(f.members) <= set(names):
                    self._close_fault(f)

    def _api(self, ev: m.ApiEvent) -> None:
        kind, name, body, serving = api_call_of(ev)
        self.api_request(ev.api, kind, name, body, cascade=ev.cascade, fail=ev.fail, serving=serving)

    def api_request(
        self,
        op: str,
        kind: str,
        name: str,
        body: dict[str, Any] | None = None,
        *,
        cascade: bool = False,
        fail: bool = False,
        serving: m.Member | None = None,
    ) -> ApiResponse:
        """Make an Octavia API call now, as a client would (scenario events, autoscalers).

        The answer is recorded in ``api.csv``; an accepted call starts its worker job.
        ``serving`` is how a member created by the call serves requests (lbsim's model).
        """
        resp = self.cp.request(op, kind, name, body or {}, cascade=cascade)
        self.api_calls.append(ApiCall(self.env.now, op, kind, name, resp.code, resp.message))
        self._record(resp.changes)
        if resp.ok and op == "create" and kind == "member" and serving is not None:
            self.serving[name] = serving
        if resp.job is not None:
            self._run_job(resp.job, fail=fail)
        return resp

    # ---------------------------------------------------------------- workers
    def _duration_for(self, job: Job) -> float:
        if job.object_type == "loadbalancer":
            if job.op == "create":
                return self._durations["create_loadbalancer"]()
            if job.op == "delete":
                return self._durations["delete_loadbalancer"]()
            if job.op == "failover":
                # build the replacement first (boot), then push configs and reload
                return self._durations["amphora_boot"]() + self._durations["update"]()
        return self._durations["update"]()

    def _run_job(self, job: Job, fail: bool) -> None:
        p = self.sc.octavia.workers.failure_probability
        if p > 0 and not fail:
            fail = bool(self._worker_rng.random() < p)
        self.env.call_later(self._duration_for(job), self._job_done, job, fail)

    def _job_done(self, job: Job, fail: bool) -> None:
        success = not fail
        if job.op == "failover" and job.object_type == "loadbalancer":
            self._failover_done(job, success)
            self._record(self.cp.complete(job, success))
            return
        self._record(self.cp.complete(job, success))
        if not success:
            return
        lb = self.cp.get("loadbalancer", self.lb_name)
        if lb is None or lb.provisioning_status == "DELETED":
            for amp in self._live():
                self._kill(amp, "DELETED")
            for amp in self.amphorae:  # their health rows go with them (no stale scan)
                self.hm.forget(amp.amp_id)
            self.dp.frontends = {}
            return
        if not self.amphorae:  # first build (provisioning from nothing)
            self._bring_up(
                self._new_amphora("STANDALONE" if self.topology == "SINGLE" else "MASTER"), fresh=False, take_vip=True
            )
            if self.topology == "ACTIVE_STANDBY":
                self._bring_up(self._new_amphora("BACKUP"), fresh=False, take_vip=False)
            return
        for amp in self._live():  # the config push: every amphora reloads
            amp.render(self.cp, self.lb_name, self.serving, fresh=False)

    # ---------------------------------------------------------------- amphorae
    def _kill(self, amp: Amphora, status: str | None = None) -> None:
        amp.alive = False
        amp.active = False
        now = self.env.now
        self.timeline.set(now, "amphora", amp.amp_id, "data_plane_state", "FAILED" if status is None else status)
        if status is not None:
            self.timeline.set(now, "amphora", amp.amp_id, "provisioning_status", status)

    def amphora_event(self, ev: m.AmphoraEvent) -> None:
        """An amphora fault (by role or id): fail, or cut/heal its management network."""
        if ev.behaviour == "fail":
            self._amphora_fail(ev)
            return
        targets = self._amphora_targets(ev)
        if not targets:
            return
        amp = targets[0]
        if ev.behaviour == "partition":
            if amp.amp_id not in self.mgmt_cut:
                self.mgmt_cut.add(amp.amp_id)
                self._open_fault("amphora_partition", f"{amp.amp_id} ({amp.role})", ())
        elif amp.amp_id in self.mgmt_cut:
            self.mgmt_cut.discard(amp.amp_id)
            for f in self.faults:
                if f.kind == "amphora_partition" and f.end is None and f.target.startswith(amp.amp_id):
                    self._close_fault(f)

    def zone_event(self, ev: m.ZoneEvent) -> None:
        """An availability-zone outage fails every live amphora placed in it (lbsim.sim.zones)."""
        if ev.behaviour == "recover":
            self.zones.down.discard(ev.availability_zone)
            for f in self.faults:
                if f.kind == "az_outage" and f.end is None and f.target == ev.availability_zone:
                    self._close_fault(f)
            return
        self.zones.down.add(ev.availability_zone)
        if not any(f.kind == "az_outage" and f.end is None and f.target == ev.availability_zone for f in self.faults):
            self._open_fault("az_outage", ev.availability_zone, ())
        for amp_id in self.zones.in_zone(ev.availability_zone):
            if any(a.amp_id == amp_id for a in self._live()):
                self._amphora_fail(m.AmphoraEvent(at=ev.at, amphora=amp_id, behaviour="fail"))

    def _amphora_targets(self, ev: m.AmphoraEvent) -> list[Amphora]:
        live = self._live()
        if not ev.by_role:
            return [a for a in live if a.amp_id == ev.amphora]
        if ev.amphora in ("STANDALONE", "MASTER"):
            return [a for a in live if a is self.vip]
        return [a for a in live if a is not self.vip]

    def _amphora_fail(self, ev: m.AmphoraEvent) -> None:
        """The amphora in the given role dies: its heartbeats and its HAProxy stop."""
        targets = self._amphora_targets(ev)
        if not targets:
            return
        amp = targets[0]
        held_vip = amp is self.vip
        self._kill(amp)
        self._open_fault("amphora_fail", f"{amp.amp_id} ({ev.amphora if ev.by_role else amp.role})", ())
        if not held_vip:
            return
        self.vip = None
        self.dp.vip_up = False
        self.dp.drop_frontends()
        for fe in amp.rendered.listeners.values():
            fe.alive = False  # connections through it are cut
        peers = self._live()
        if peers:
            # keepalived: the backup claims the VIP once the master's adverts are missed
            # for 3 advert intervals plus its skew ((256 - priority) / 256 s per interval)
            adv = self.sc.octavia.vrrp_advert_int
            takeover = 3 * adv + (256 - 90) / 256 * adv
            self.env.call_first(takeover, self._vrrp_takeover, peers[0])

    def _vrrp_takeover(self, amp: Amphora, _b: Any = None) -> None:
        if amp.alive and self.vip is None:
            self._give_vip(amp)
            self.dp.vip_up = True

    def _failover(self, amp_id: str, job: Job) -> None:
        """Health manager: a stale amphora is being replaced."""
        self._failing_amp = amp_id
        self.timeline.set(self.env.now, "amphora", amp_id, "provisioning_status", "PENDING_DELETE")
        # (a replacement that can only boot in a zone that is down fails: no valid host)
        self._run_job(job, fail=self.zones.blocked([a.amp_id for a in self._live() if a.amp_id != amp_id]))

    def _failover_done(self, job: Job, success: bool) -> None:
        now = self.env.now
        if job.source == "health_manager":
            targets = [a for a in self.amphorae if a.amp_id == self._failing_amp]
        else:  # operator failover: every amphora is rebuilt in turn
            targets = list(self._live())
        self._failing_amp = None
        if not success:
            for amp in targets:
                self.hm.busy.discard(amp.amp_id)
                if not amp.alive:
                    self.timeline.set(now, "amphora", amp.amp_id, "provisioning_status", "ERROR")
            return
        for old in targets:
            had_vip = old is self.vip or (self.vip is None and not any(a is self.vip for a in self._live()))
            role = old.role
            if old.alive:
                self._kill(old, "DELETED")
            else:
                self.timeline.set(now, "amphora", old.amp_id, "provisioning_status", "DELETED")
            self.hm.forget(old.amp_id)
            self.mgmt_cut.discard(old.amp_id)
            if old is self.vip:
                self.vip = None
            new = self._new_amphora(role if self.topology == "SINGLE" else ("MASTER" if had_vip else "BACKUP"))
            self._bring_up(new, fresh=False, take_vip=self.vip is None and had_vip)
            if self.vip is None:
                self._give_vip(new)
        self.dp.vip_up = self.vip is not None
        for f in self.faults:
            if f.kind in ("amphora_fail", "amphora_partition") and f.end is None:
                self._close_fault(f)

    def _start_extensions(self) -> None:
        """Processes that act like API clients during the run (pool autoscalers)."""
        for pool in self.lb.pools:
            if getattr(pool, "autoscaling", None) is not None:
                from lbsim.sim.autoscaling import Autoscaler

                scaler = Autoscaler(self, pool)
                self.autoscalers.append(scaler)
                self.env.process(scaler.run())

    # ---------------------------------------------------------------- run
    def start_processes(self) -> None:
        """This load balancer's own periodic processes: the stale scan and (for runs
        with an end) the once-a-second occupancy sampler."""
        self.env.process(self.hm.stale_scan())
        if self.live:
            return
        if self.dp.compiled is not None:  # the compiled data plane samples in its kernel
            self.dp.compiled.start_sampler(self.env.now)
        else:
            self.env.process(self._sampler())

    #: which data plane runs the requests: "auto", "exact" or "compiled" (lbsim.sim.compiled)
    engine: str = "auto"

    def run(self, progress: ProgressFn | None = None, steps: int = 100) -> RawRun:
        """Run to the scenario's duration; ``progress`` gets the fraction done.

        The deployment's objects live for the whole run: they are built with the cyclic
        collector paused and then kept out of its collections while the run goes on
        (:mod:`lbsim.scenario.gcpause`; at 10,000 members its re-traversals were a
        fifth of the run). Objects the run makes are collected as usual.
        """
        with gc_paused():
            if self.sc.start == "provision":
                self._start_provision()
            else:
                self._start_running()
            from lbsim.sim.compiled import attach

            chunked = attach(self, self.engine)  # None: the exact data plane runs the requests
            for i, src in enumerate(self.sc.traffic):
                if chunked is None:
                    self._traffic(i, src)
            self._schedule_events()
            self._start_extensions()
            self.start_processes()
            self.env.process(self.dp.latency.closing(self.env))  # per-second rows to disk (metrics)
            thaw = freeze_existing()
        try:
            duration = self.sc.duration
            if progress is None:
                self.env.run(until=duration)
            else:
                for k in range(1, steps + 1):
                    self.env.run(until=duration * k / steps)
                    progress(k / steps)
            if chunked is not None:
                chunked.finish()
            return self.finish(duration)
        finally:
            thaw()

    def finish(self, duration: float) -> RawRun:
        """Close the books at ``duration``: flush measurements, cost open faults."""
        self.dp.latency.flush()
        for f in self.faults:  # faults still open at the end: count what they cost so far
            if f.end is not None and f.members:
                self._settle_fault(f)  # ended less than a timeout ago
            elif f.end is None:
                failed, slowed = self._fault_counts(f)
                f.failed, f.slowed = failed - f._base[0], slowed - f._base[1]
        names = [s.name for s in self.dp.servers]
        return RawRun(
            scenario=self.sc,
            seed=self.seed,
            timeline=self.timeline,
            dp=self.dp,
            cp=self.cp,
            api_calls=self.api_calls,
            faults=self.faults,
            member_names=names,
            duration=duration,
            heartbeats=self.hm.processed,
            stats_rows=self.hm.stats_rows,
            extra={"autoscalers": self.autoscalers},
        )


def simulate(
    scenario: m.Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    log_requests: bool = False,
    progress: ProgressFn | None = None,
    engine: str = "auto",
) -> RawRun:
    """Run one scenario and return the raw run (see :mod:`lbsim.results.folder` for summaries).

    ``engine``: "exact" runs every request on the Python data plane; "compiled" on the
    compiled one (an error when it does not cover the scenario); "auto" picks the
    compiled one where it covers the scenario and the run is long enough to repay it.
    Both give identical results.
    """
    if scenario.loadbalancers is not None:
        raise ValueError("a scenario with 'loadbalancers:' runs through lbsim.sim.world.simulate")
    sim = Simulation(scenario, seed=seed, base_dir=base_dir, log_requests=log_requests)
    sim.engine = engine
    return sim.run(progress)


__all__ = ["ApiCall", "FaultRecord", "RawRun", "Simulation", "np", "scenario_specs", "simulate"]
