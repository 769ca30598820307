"""The simulation engine: wires scenario, control plane, amphora, health manager, traffic.

This is the only module that knows every other one. It owns the SimPy environment, turns
scenario events into actions at their times, runs controller-worker jobs for the
durations the scenario's ``octavia.workers`` distributions give, and records every
status change in the :class:`~lbsim.timeline.Timeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from heapq import heappush
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from lbsim import __version__
from lbsim import model as m
from lbsim.amphora import Amphora
from lbsim.controlplane import Change, ControlPlane, Job, ObjSpec
from lbsim.dataplane import DataPlane
from lbsim.distributions import make_sampler, stream
from lbsim.healthmanager import HealthManager
from lbsim.kernel import TwinEnvironment
from lbsim.status import apply_update, update_health
from lbsim.timeline import Timeline
from lbsim.traffic import EPHEMERAL_PORTS, client_addresses, load_trace, make_gap_fn

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
    """A fault the scenario injected (for the incident report)."""

    kind: str
    target: str
    time: float
    recovered: float | None = None


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
    member_pools: list[str]
    duration: float
    lbsim_version: str = __version__
    heartbeats: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def scenario_specs(sc: m.Scenario) -> list[ObjSpec]:
    """The scenario's load-balancer tree as control-plane object descriptions."""
    lb = sc.loadbalancer
    specs = [
        ObjSpec(
            "loadbalancer", lb.name, {"admin_state_up": lb.admin_state_up, "topology": lb.topology}
        )
    ]
    for li in lb.listeners:
        specs.append(
            ObjSpec(
                "listener", li.name, {**li.model_dump(exclude={"name"}), "loadbalancer": lb.name}
            )
        )
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
            specs.append(
                ObjSpec("member", mem.name, {**mem.model_dump(exclude={"name"}), "pool": p.name})
            )
    return specs


class Simulation:
    """One run of one scenario."""

    def __init__(
        self,
        scenario: m.Scenario,
        *,
        seed: int | None = None,
        base_dir: Path | None = None,
        log_requests: bool = False,
    ) -> None:
        self.sc = scenario
        self.seed = scenario.seed if seed is None else seed
        self.base_dir = base_dir
        self.env = TwinEnvironment()
        self.timeline = Timeline()
        self.cp = ControlPlane()
        n_members = sum(len(p.members) for p in scenario.loadbalancer.pools)
        self.dp = DataPlane(self.env, n_members, scenario.warmup, scenario.duration, log_requests)
        self.lb_name = scenario.loadbalancer.name
        self.serving: dict[str, m.Member] = {
            mem.name: mem for p in scenario.loadbalancer.pools for mem in p.members
        }
        self.api_calls: list[ApiCall] = []
        self.faults: list[FaultRecord] = []
        self.hm = HealthManager(
            self.env, self.cp, self.timeline, scenario.octavia, self.lb_name, self._record
        )
        self.hm.on_failover = self._failover
        self.amphora: Amphora | None = None
        self._amp_seq = 0
        self._hb_seq = 0
        self._worker_rng = stream(self.seed, "workers")
        w = scenario.octavia.workers
        self._durations = {
            "update": make_sampler(w.update, stream(self.seed, "worker:update"), base_dir),
            "create_loadbalancer": make_sampler(
                w.create_loadbalancer, stream(self.seed, "worker:lbcreate"), base_dir
            ),
            "delete_loadbalancer": make_sampler(
                w.delete_loadbalancer, stream(self.seed, "worker:lbdelete"), base_dir
            ),
            "amphora_boot": make_sampler(
                w.amphora_boot, stream(self.seed, "worker:boot"), base_dir
            ),
        }
        self._fail_events: dict[int, bool] = {}

    # ---------------------------------------------------------------- helpers
    def _record(self, changes: Iterable[Change]) -> None:
        now = self.env.now
        for c in changes:
            self.timeline.set(now, c.object_type, c.name, c.field, c.new)

    def _record_initial(self) -> None:
        for obj in self.cp.objects():
            self.timeline.set(
                0.0, obj.type, obj.name, "provisioning_status", obj.provisioning_status
            )
            self.timeline.set(0.0, obj.type, obj.name, "operating_status", obj.operating_status)

    def _new_amphora(self) -> Amphora:
        self._amp_seq += 1
        role = "STANDALONE" if self.sc.loadbalancer.topology == "SINGLE" else "MASTER"
        return Amphora(self.env, self.dp, self.timeline, self.seed, self.base_dir, role, f"amphora-{self._amp_seq}")

    # ---------------------------------------------------------------- set-up
    def _start_running(self) -> None:
        """A deployment that has been running: ACTIVE, HAProxy healthy, statuses settled."""
        self.cp.load_active(scenario_specs(self.sc))
        amp = self._new_amphora()
        amp.render(self.cp, self.lb_name, self.serving, fresh=True)
        self.amphora = amp
        # the statuses the API shows are those of the last heartbeat before t=0
        from lbsim.healthmanager import db_view

        view = db_view(self.cp, self.lb_name)
        assert view is not None
        upd = update_health(
            view, amp.heartbeat(0), heartbeat_interval=self.sc.octavia.heartbeat_interval
        )
        apply_update(view, upd)
        for w in upd.writes:
            self.cp.set_operating_status(w.object_type, w.object_id, w.operating_status)
        self._record_initial()
        self.timeline.set(0.0, "amphora", amp.amp_id, "provisioning_status", "ALLOCATED")
        self.hm.last_update[amp.amp_id] = 0.0
        self.env.process(self._heartbeats(amp))

    def _start_provision(self) -> None:
        """Create the whole tree through the API at t=0 (PENDING_CREATE ... ACTIVE)."""
        resp = self.cp.create_loadbalancer_tree(scenario_specs(self.sc))
        self.api_calls.append(
            ApiCall(0.0, "create", "loadbalancer", self.lb_name, resp.code, resp.message)
        )
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
            self.hm.process(amp.amp_id, amp.heartbeat(self._hb_seq))
            yield self.env.timeout(interval)

    def _traffic(self, i: int, src: m.TrafficSource) -> None:
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
        n_addr = len(addrs)
        picks: list[int] = []
        ports: list[int] = []
        pos = [0]
        listener = src.listener
        dp = self.dp
        duration = self.sc.duration
        trace_rows = trace
        row = [0]

        env = self.env
        fast = env.fast
        seq = env.fast_seq

        def fire(_a: Any, _b: Any) -> None:
            if trace_rows is not None:
                k = row[0]
                row[0] = k + 1
                client = trace_rows.clients[k] or addrs[k % n_addr]
                port = int(trace_rows.ports[k]) or EPHEMERAL_PORTS[0] + k % 28000
            else:
                k = pos[0]
                if k >= len(picks):
                    picks[:] = crng.integers(0, n_addr, 4096).tolist()
                    ports[:] = crng.integers(
                        EPHEMERAL_PORTS[0], EPHEMERAL_PORTS[1] + 1, 4096
                    ).tolist()
                    k = 0
                pos[0] = k + 1
                client = addrs[picks[k]]
                port = ports[k]
            fe = dp.frontends.get(listener)
            if fe is None:
                now = env._now
                dp.finish((now, client, port, None, -1, now, None, 0), -1, "connect", release=False)
            else:
                dp.arrive(fe, client, port)
            g = gap()
            if g is not None:
                t = env._now + g
                if t <= duration:
                    heappush(fast, (t, next(seq), fire, None, None))

        g0 = gap()
        if g0 is not None and g0 <= duration:
            env.call_later(g0, fire)

    # ---------------------------------------------------------------- events
    def _schedule_events(self) -> None:
        for ev in sorted(self.sc.events, key=lambda e: e.at):
            self.env.call_first(ev.at, self._apply_event, ev)

    def _apply_event(self, ev: Any, _b: Any = None) -> None:
        if isinstance(ev, m.MemberEvent):
            self._member_behaviour(ev)
        elif isinstance(ev, m.ApiEvent):
            self._api(ev)
        elif isinstance(ev, m.AmphoraEvent):
            self._amphora_fail(ev)

    def _member_behaviour(self, ev: m.MemberEvent) -> None:
        now = self.env.now
        spec = self.serving.get(ev.member)
        if spec is not None:
            self.serving[ev.member] = spec.model_copy(
                update={"behaviour": ev.behaviour, "status": ev.status, "factor": ev.factor}
            )
        if self.amphora is not None and ev.member in self.amphora.servers:
            self.amphora.servers[ev.member].server.set_behaviour(ev.behaviour, ev.status, ev.factor)
        if ev.behaviour == "healthy":
            for f in self.faults:
                if f.target == ev.member and f.recovered is None:
                    f.recovered = now
        else:
            for f in self.faults:
                if f.target == ev.member and f.recovered is None:
                    f.recovered = now
            self.faults.append(FaultRecord(f"member_{ev.behaviour}", ev.member, now))

    def _api(self, ev: m.ApiEvent) -> None:
        kind, name = ev.target
        body: dict[str, Any] = dict(ev.set)
        if ev.api == "create":
            for parent in ("pool", "listener", "loadbalancer"):
                pv = getattr(ev, parent)
                if pv is not None and parent != kind:
                    body.setdefault(parent, pv)
            if kind == "member":
                self.serving[name] = m.Member.model_validate({"name": name, **ev.set})
        resp = self.cp.request(ev.api, kind, name, body, cascade=ev.cascade)
        self.api_calls.append(ApiCall(self.env.now, ev.api, kind, name, resp.code, resp.message))
        self._record(resp.changes)
        if resp.job is not None:
            self._run_job(resp.job, fail=ev.fail)

    def _duration_for(self, job: Job) -> float:
        if job.object_type == "loadbalancer":
            if job.op == "create":
                return self._durations["create_loadbalancer"]()
            if job.op == "delete":
                return self._durations["delete_loadbalancer"]()
            if job.op == "failover":
                return self._durations["amphora_boot"]() + self._durations["update"]()
        return self._durations["update"]()

    def _run_job(self, job: Job, fail: bool) -> None:
        p = self.sc.octavia.workers.failure_probability
        if p > 0 and not fail:
            fail = bool(self._worker_rng.random() < p)
        self.env.call_later(self._duration_for(job), self._job_done, job, fail)

    def _job_done(self, job: Job, fail: bool) -> None:
        success = not fail
        if job.op == "failover" and success:
            self._replace_amphora()
        changes = self.cp.complete(job, success)
        self._record(changes)
        if not success:
            if job.op == "failover" and self.amphora is not None and not self.amphora.alive:
                self.timeline.set(
                    self.env.now, "amphora", self.amphora.amp_id, "provisioning_status", "ERROR"
                )
            return
        lb = self.cp.get("loadbalancer", self.lb_name)
        if lb is None or lb.provisioning_status == "DELETED":
            if self.amphora is not None:
                self.amphora.alive = False
                self.dp.frontends = {}
            return
        if self.amphora is None:  # first build (provisioning from nothing)
            amp = self._new_amphora()
            self.amphora = amp
            amp.render(self.cp, self.lb_name, self.serving, fresh=False)
            self.timeline.set(
                self.env.now, "amphora", amp.amp_id, "provisioning_status", "ALLOCATED"
            )
            self.hm.last_update[amp.amp_id] = self.env.now
            self.env.process(self._heartbeats(amp))
        else:
            self.amphora.render(self.cp, self.lb_name, self.serving, fresh=False)

    # ---------------------------------------------------------------- amphorae
    def _amphora_fail(self, ev: m.AmphoraEvent) -> None:
        amp = self.amphora
        if amp is None or not amp.alive:
            return
        amp.alive = False
        self.dp.vip_up = False
        self.faults.append(FaultRecord("amphora_fail", amp.amp_id, self.env.now))

    def _failover(self, amp_id: str, job: Job) -> None:
        self.timeline.set(self.env.now, "amphora", amp_id, "provisioning_status", "PENDING_DELETE")
        self._run_job(job, fail=False)

    def _replace_amphora(self) -> None:
        old = self.amphora
        if old is not None:
            old.alive = False
            self.hm.forget(old.amp_id)
            self.timeline.set(self.env.now, "amphora", old.amp_id, "provisioning_status", "DELETED")
        amp = self._new_amphora()
        # the new amphora starts HAProxy from scratch (h = rise), with the members' behaviour
        amp.render(self.cp, self.lb_name, self.serving, fresh=False)
        for name, st in amp.servers.items():
            st.server.set_behaviour(
                self.serving[name].behaviour, self.serving[name].status, self.serving[name].factor
            )
        self.amphora = amp
        self.dp.vip_up = True
        self.timeline.set(self.env.now, "amphora", amp.amp_id, "provisioning_status", "ALLOCATED")
        self.hm.last_update[amp.amp_id] = self.env.now
        self.env.process(self._heartbeats(amp))
        for f in self.faults:
            if f.kind == "amphora_fail" and f.recovered is None:
                f.recovered = self.env.now

    def _sampler(self) -> Generator[simpy.Event, Any, None]:
        while True:
            self.dp.sample()
            yield self.env.timeout(1.0)

    # ---------------------------------------------------------------- run
    def run(self, progress: ProgressFn | None = None, steps: int = 100) -> RawRun:
        """Run to the scenario's duration; ``progress`` gets the fraction done."""
        if self.sc.start == "provision":
            self._start_provision()
        else:
            self._start_running()
        for i, src in enumerate(self.sc.traffic):
            self._traffic(i, src)
        self._schedule_events()
        self.env.process(self.hm.stale_scan())
        self.env.process(self._sampler())
        duration = self.sc.duration
        if progress is None:
            self.env.run(until=duration)
        else:
            for k in range(1, steps + 1):
                self.env.run(until=duration * k / steps)
                progress(k / steps)
        self.dp.latency.flush()
        names = [s.name for s in self.dp.servers]
        pools = []
        for s in self.dp.servers:
            spec = self._pool_of(s.name)
            pools.append(spec)
        return RawRun(
            scenario=self.sc,
            seed=self.seed,
            timeline=self.timeline,
            dp=self.dp,
            cp=self.cp,
            api_calls=self.api_calls,
            faults=self.faults,
            member_names=names,
            member_pools=pools,
            duration=duration,
            heartbeats=self.hm.processed,
        )

    def _pool_of(self, member: str) -> str:
        obj = self.cp.get("member", member)
        if obj is not None:
            return str(obj.attrs.get("pool", ""))
        for p in self.sc.loadbalancer.pools:
            if any(mem.name == member for mem in p.members):
                return p.name
        return ""


def simulate(
    scenario: m.Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    log_requests: bool = False,
    progress: ProgressFn | None = None,
) -> RawRun:
    """Run one scenario and return the raw run (see :mod:`lbsim.results` for summaries)."""
    sim = Simulation(scenario, seed=seed, base_dir=base_dir, log_requests=log_requests)
    return sim.run(progress)


__all__ = ["ApiCall", "FaultRecord", "RawRun", "Simulation", "np", "scenario_specs", "simulate"]
