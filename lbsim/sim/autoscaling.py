"""Elastic pools: a scaling policy that adds and removes members through Octavia's API.

An :class:`Autoscaler` runs beside the simulation for every pool whose scenario entry
has an ``autoscaling:`` section (:class:`lbsim.scenario.model.Autoscaling`). It plays the part of
an orchestrator such as Heat (``OS::Heat::AutoScalingGroup`` with ``OS::Octavia::PoolMember``
resources), Senlin, or a Kubernetes node pool behind the cloud provider: it watches what
the load balancer sees, decides, and acts only through the API, so every scaling action
goes through Octavia's status engine like any other client's.

What the scaler measures (every second, averaged over the policy's ``window``), for the
members that take traffic (in the running HAProxy configuration of the amphora holding
the VIP, UP or unchecked, weight > 0, not backup):

* ``active_connections`` -- connections open to the member (in service or queued at it);
* ``requests_per_second`` -- requests sent to the pool's members per second;
* ``utilisation`` -- busy service slots over the members' concurrency;
* ``latency_p95`` -- the pool's 95th percentile response time over the window.

The per-member figure drives the rule. ``target_tracking`` computes the count the load
implies, ``ceil(load / target)`` (load: the pool total for the additive metrics, members x
p95 for latency, a proportional rule), and acts when the per-member value is outside
``target +- tolerance`` (the Kubernetes HPA rule). ``step`` adds or removes a fixed number
of members when the value crosses a threshold (a Heat scaling policy driven by an Aodh
alarm). A condition must hold for ``evaluation_periods`` evaluations in a row; cooldowns
start at the decision. Limits (``min_members``/``max_members``) are enforced at every
evaluation, metric or not.

Scale-out, per member: a boot time (``member_template.boot_time``), then ``POST member``.
The API answers 409 while the load balancer is not ACTIVE (another job holds its lock);
the scaler retries with back-off (``retry``) as Heat does: Heat's Octavia resources treat
a 409 in ``check_create_complete`` as "not done yet" and call again on the next poll
(heat/engine/resources/openstack/octavia/octavia_base.py). A 201 puts member, pool,
listeners and load balancer into PENDING states; the worker's config push reloads HAProxy.

**When a new member gets traffic (HAProxy, reference/haproxy-semantics.md "Start-up").**
A checked server that HAProxy starts or loads begins UP with ``h = rise`` ("UP 1/3") and
takes traffic at once; one failed check takes it DOWN. So a new member receives its first
request when the create job's config push reloads HAProxy -- never while it is
PENDING_CREATE -- and *not* after ``rise`` successful checks. The rise checks matter when
the application is not ready yet (``app_start`` > 0): the member is UP at the reload,
its first requests are refused and redispatched (or answered 503 with
``app_start_behaviour: error``), the first check takes it DOWN, and it serves its first
request only after ``rise`` consecutive successful checks once the application answers.
Without a health monitor HAProxy never checks: the member takes traffic from the reload
on, ready or not.

Scale-in, per member: ``PUT member weight=0`` (HAProxy sends it no new connections,
persisted clients excepted; the API shows DRAINING); when that job is done, wait until the
member's in-flight requests (in service or queued) reach zero or ``drain_timeout``
passes; then ``DELETE member``. Requests still in flight at the deletion finish on the old
HAProxy process (a reload lets existing connections complete), so the data plane drops
none; their number is recorded (``in_flight_at_delete``), as is the number still in flight
when the drain timeout fired. Members not yet created (still booting) are cancelled
first; otherwise members HAProxy marks DOWN go first, then the ``removal`` order.

Outputs (see :mod:`lbsim.results.folder`):

* ``scaling.csv`` -- one row per decision (``scale_out``, ``scale_in``; ``hold`` when the
  policy wanted a change that a cooldown or a limit stopped, once per run of identical
  holds) with its reason, metric value, target and counts ``from``/``to``, and one row per
  member action (``create``, ``drain``, ``delete``, ``cancel``) with its outcome, the last
  API code, attempts, 409s, and the member's address and port;
* ``pool_size.csv`` -- ``members`` (Octavia member rows of the pool, any provisioning
  status), ``ready`` (in HAProxy's rotation on the VIP amphora: UP or unchecked,
  weight > 0 -- a starting member counts from the reload until its first failed check,
  because HAProxy does send it requests then), ``desired`` (the scaler's target count),
  ``booting`` (decided, not yet created in Octavia), ``draining`` (being drained or
  deleted), plus the policy ``metric`` and the pool's ``p95`` over the last evaluation
  interval; a row whenever a count changes (sampled every second) and at every evaluation;
* ``summary.json`` -- an ``autoscaling`` block per pool (actions, reversals, members
  added and removed, 409s, drain timeouts, instance-seconds, decision-to-first-request)
  and, when the policy declares ``slo``, the run's ``slo`` verdict (:func:`slo_verdict`);
* :func:`lbsim.figures.scaling.scaling_figure` -- member count above throughput and latency.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lbsim.scenario import model as m
from lbsim.sim.distributions import make_sampler, stream
from lbsim.sim.metrics import percentile_from_hist
from lbsim.sim.scaling_policy import Measure, scaling_rule, target_level

if TYPE_CHECKING:
    import simpy

    from lbsim.octavia.controlplane import ControlPlane
    from lbsim.octavia.objects import ApiResponse
    from lbsim.sim.amphora import Amphora
    from lbsim.sim.dataplane import DataPlane, Server

#: seconds between two measurements of the pool
SAMPLE_INTERVAL = 1.0
EPS = 1e-9

SCALING_COLUMNS = [
    "time",
    "pool",
    "action",
    "member",
    "reason",
    "metric",
    "value",
    "target",
    "from",
    "to",
    "outcome",
    "code",
    "attempts",
    "conflicts",
    "address",
    "protocol_port",
]
POOL_SIZE_COLUMNS = ["time", "pool", "members", "ready", "desired", "booting", "draining", "metric", "p95"]

#: states of a member the scaler knows about
BOOTING, CREATING, PENDING, IN_SERVICE, DRAINING, DELETING = (
    "booting",
    "creating",
    "pending",
    "in_service",
    "draining",
    "deleting",
)
GONE, FAILED, CANCELLED = "gone", "failed", "cancelled"
#: not yet an Octavia member (counted as capacity, cancellable)
NOT_CREATED = frozenset({BOOTING, CREATING})
LEAVING = frozenset({DRAINING, DELETING})


@dataclass
class MemberRecord:
    """One member's life as the scaler sees it (times in simulated seconds, None: never)."""

    name: str
    address: str
    port: int
    origin: str  # "scenario", "scaler" or "api" (created by someone else)
    seq: int
    state: str
    decided: float | None = None
    booted: float | None = None
    app_ready_at: float | None = None
    created: float | None = None
    active: float | None = None
    first_traffic: float | None = None
    drain_requested: float | None = None
    drain_start: float | None = None
    drain_end: float | None = None
    deleted: float | None = None
    in_flight_at_drain: int = 0
    in_flight_at_timeout: int = 0
    in_flight_at_delete: int = 0
    app_ready: bool = True
    cancel: bool = False


@dataclass(frozen=True)
class _Sample:
    t: float
    conn: int
    busy: int
    slots: int
    serving: int
    arrivals: int


def inflight(server: Server | None) -> int:
    """Requests a member holds now: in its service slots or waiting in its queue."""
    if server is None:
        return 0
    return int(server.busy + len(server.queue))


class ScalerHost(Protocol):
    """What a scaler needs of the running simulation (the engine passes itself in).

    Declared here, not imported from :mod:`lbsim.sim.engine`, so that the engine depends on
    the scaler and never the other way round.
    """

    seed: int
    base_dir: Path | None
    lb_name: str
    cp: ControlPlane
    dp: DataPlane
    vip: Amphora | None
    serving: dict[str, m.Member]

    @property
    def env(self) -> simpy.Environment: ...

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
    ) -> ApiResponse: ...


class Autoscaler:
    """The scaling loop of one pool: measure every second, evaluate, act through the API.

    ``sim`` is the running simulation (a :class:`ScalerHost`); the scaler uses its
    ``api_request`` (an API client call, recorded in ``api.csv``), its control plane
    (``cp``) for statuses, its data plane (``dp``) and the VIP-holding amphora (``vip``)
    for what the load balancer sees.
    """

    def __init__(self, sim: ScalerHost, pool: m.Pool) -> None:
        assert pool.autoscaling is not None
        self.sim = sim
        self.env = sim.env
        self.pool = pool.name
        self.policy: m.Autoscaling = pool.autoscaling
        tpl = self.policy.member_template
        self.template = tpl
        self.prefix = tpl.name_prefix or f"{pool.name}-as-"
        seed, base = sim.seed, sim.base_dir
        self._boot = make_sampler(tpl.boot_time, stream(seed, f"autoscaling:{pool.name}:boot"), base)
        self._app = make_sampler(tpl.app_start, stream(seed, f"autoscaling:{pool.name}:app"), base)
        self._rng = stream(seed, f"autoscaling:{pool.name}:retry")
        self.members: dict[str, MemberRecord] = {}
        for i, mem in enumerate(pool.members):
            self.members[mem.name] = MemberRecord(mem.name, mem.address, mem.protocol_port, "scenario", i, IN_SERVICE)
        self._seq = len(pool.members)
        self._counter = 0
        self._reserved: set[str] = set()
        #: scaling.csv rows
        self.rows: list[tuple[Any, ...]] = []
        #: pool_size.csv rows
        self.sizes: list[tuple[Any, ...]] = []
        #: latency over each evaluation interval: (start, end, count, p95, p99, mean)
        self.intervals: list[tuple[float, float, int, float, float, float]] = []
        self.desired = len(pool.members)
        self._samples: deque[_Sample] = deque()
        self._hists: deque[tuple[float, np.ndarray]] = deque()
        self._last_hist: tuple[float, np.ndarray, float] | None = None
        self._out_streak = 0
        self._in_streak = 0
        self._no_out_until = -math.inf
        self._no_in_until = -math.inf
        self._last_hold: str | None = None
        self._last_size: tuple[Any, ...] | None = None
        self._metric_value = math.nan
        self._interval_p95 = math.nan
        self.stopped = False

    # ------------------------------------------------------------------ the loop
    def run(self) -> Generator[simpy.Event, Any, None]:
        """The scaler's process: a measurement every second, an evaluation every interval."""
        interval = self.policy.evaluation_interval
        self._snapshot_hist()
        self._sample()
        self._evaluate(limits_only=True)
        k = 1
        while not self.stopped:
            yield self.env.timeout(SAMPLE_INTERVAL)
            now = self.env.now
            self._sample()
            if now + EPS >= k * interval:
                while now + EPS >= k * interval:
                    k += 1
                self._evaluate()
                self._record_size(force=True)
            else:
                self._record_size()

    # ------------------------------------------------------------------ what the LB sees
    def _lb_alive(self) -> bool:
        lb = self.sim.cp.get("loadbalancer", self.sim.lb_name)
        return lb is not None and lb.provisioning_status != "DELETED"

    def serving(self) -> list[str]:
        """Members taking new traffic now: in the VIP holder's config, usable, weight > 0."""
        amp = self.sim.vip
        if amp is None or not amp.alive:
            return []
        out = []
        for name in amp.rendered.pool_servers.get(self.pool, []):
            st = amp.servers.get(name)
            if st is not None and st.usable and st.weight > 0 and not st.backup:
                out.append(name)
        return out

    def _known_names(self) -> list[str]:
        """Every member this pool ever had (scaler records plus members others created)."""
        for obj in self.sim.cp.members_of(self.pool):
            if obj.name not in self.members:
                a = obj.attrs
                self._seq += 1
                self.members[obj.name] = MemberRecord(
                    obj.name, str(a.get("address")), int(a.get("protocol_port") or 0), "api", self._seq, IN_SERVICE
                )
        return list(self.members)

    def server_rows(self) -> list[int]:
        """Data-plane indices of every server this pool ever had (for latency histograms)."""
        by_name = self.sim.dp.server_by_name
        return [by_name[n].gidx for n in self._known_names() if n in by_name]

    def _sample(self) -> None:
        dp = self.sim.dp
        names = self.serving()
        conn = busy = slots = 0
        for n in names:
            srv = dp.server_by_name.get(n)
            if srv is not None:
                conn += srv.busy + len(srv.queue)
                busy += srv.busy
                slots += srv.concurrency
        arrivals = 0
        now = self.env.now
        for n in self._known_names():
            srv = dp.server_by_name.get(n)
            if srv is None:
                continue
            held = srv.busy + len(srv.queue)
            arrivals += srv.served + srv.failed + held
            rec = self.members[n]
            if rec.first_traffic is None and srv.served + held > 0:  # accepted for service
                rec.first_traffic = now
        self._samples.append(_Sample(now, conn, busy, slots, len(names), arrivals))
        horizon = now - self.policy.window
        while len(self._samples) > 1 and self._samples[1].t <= horizon + EPS:
            self._samples.popleft()

    def _snapshot_hist(self) -> None:
        """Take the pool's cumulative latency histogram now; close the interval since the last one.

        The difference of two snapshots is the histogram of the requests completed in
        between (successful ones, after warm-up): the latency metric's window and the
        per-interval p95/p99/mean used for the SLO's violation time.
        """
        rows = self.server_rows()
        lat = self.sim.dp.latency
        if rows:
            hist = lat.histogram(rows)
            total = float(lat.sums[rows].sum())
        else:
            hist = np.zeros(lat.hist.shape[1], dtype=np.int64)
            total = 0.0
        now = self.env.now
        if self._last_hist is not None:
            t0, prev, prev_total = self._last_hist
            diff = hist - prev
            n = int(diff.sum())
            if now > t0:
                if n > 0:
                    p95, p99 = percentile_from_hist(diff, 0.95), percentile_from_hist(diff, 0.99)
                    self.intervals.append((t0, now, n, p95, p99, (total - prev_total) / n))
                    self._interval_p95 = p95
                else:
                    self.intervals.append((t0, now, 0, math.nan, math.nan, math.nan))
                    self._interval_p95 = math.nan
        self._last_hist = (now, hist, total)
        self._hists.append((now, hist))
        while len(self._hists) > 1 and self._hists[1][0] <= now - self.policy.window + EPS:
            self._hists.popleft()

    def measure(self) -> Measure | None:
        """The policy metric over the window (None: nothing serves, or no data yet)."""
        if not self._samples:
            return None
        last = self._samples[-1]
        if last.serving == 0:
            return None
        now = last.t
        win = [s for s in self._samples if s.t > now - self.policy.window + EPS and s.serving > 0]
        if not win:
            return None
        metric = self.policy.metric
        if metric == "active_connections":
            load = float(np.mean([s.conn for s in win]))
            return Measure(float(np.mean([s.conn / s.serving for s in win])), load, last.serving)
        if metric == "utilisation":
            util = [s.busy / s.slots for s in win if s.slots > 0]
            if not util:
                return None
            load = float(np.mean([s.serving * s.busy / s.slots for s in win if s.slots > 0]))
            return Measure(float(np.mean(util)), load, last.serving)
        if metric == "requests_per_second":
            first = self._samples[0]
            if now - first.t < EPS:
                return None
            rate = (last.arrivals - first.arrivals) / (now - first.t)
            return Measure(rate / last.serving, rate, last.serving)
        # latency_p95: the oldest histogram snapshot inside the window
        if len(self._hists) < 2:
            return None
        _t0, h0 = self._hists[0]
        _t1, h1 = self._hists[-1]
        diff = h1 - h0
        if diff.sum() == 0:
            return None
        p95 = percentile_from_hist(diff, 0.95)
        return Measure(p95, last.serving * p95, last.serving)

    # ------------------------------------------------------------------ counting
    def capacity(self) -> int:
        """Members the scaler counts: Octavia members not leaving or failed, plus booting ones."""
        n = 0
        for obj in self.sim.cp.members_of(self.pool):
            if obj.provisioning_status in ("ERROR", "PENDING_DELETE"):
                continue
            rec = self.members.get(obj.name)
            if rec is not None and rec.state in LEAVING:
                continue
            n += 1
        return n + sum(1 for r in self.members.values() if r.state in NOT_CREATED)

    def _record_size(self, force: bool = False) -> None:
        members = len(self.sim.cp.members_of(self.pool))
        ready = len(self.serving())
        booting = sum(1 for r in self.members.values() if r.state in NOT_CREATED)
        draining = sum(1 for r in self.members.values() if r.state in LEAVING)
        key = (members, ready, self.desired, booting, draining)
        if force or key != self._last_size:
            self._last_size = key
            self.sizes.append((self.env.now, self.pool, *key, _r(self._metric_value), _r(self._interval_p95)))

    # ------------------------------------------------------------------ decisions
    def _log(
        self,
        action: str,
        reason: str,
        *,
        member: str = "",
        value: float = math.nan,
        target: float = math.nan,
        frm: int | None = None,
        to: int | None = None,
        outcome: str = "",
        code: int | None = None,
        attempts: int = 0,
        conflicts: int = 0,
    ) -> None:
        rec = self.members.get(member) if member else None
        self.rows.append(
            (
                self.env.now,
                self.pool,
                action,
                member,
                reason,
                self.policy.metric if action in ("scale_out", "scale_in", "hold") else "",
                _r(value),
                _r(target),
                frm,
                to,
                outcome,
                code,
                attempts,
                conflicts,
                rec.address if rec is not None else "",
                rec.port if rec is not None else None,
            )
        )

    def _hold(self, key: str, reason: str, value: float, target: float, cap: int, want: int) -> None:
        """Log a decision the policy could not carry out, once per run of identical holds."""
        if self._last_hold == key:
            return
        self._last_hold = key
        self._log("hold", reason, value=value, target=target, frm=cap, to=cap, outcome=f"wanted {cap + want}")

    def _evaluate(self, limits_only: bool = False) -> None:
        if not self._lb_alive():
            self.stopped = True
            return
        pol = self.policy
        if not limits_only:
            self._snapshot_hist()
        cap = self.capacity()
        meas = None if limits_only else self.measure()
        self._metric_value = meas.value if meas is not None else math.nan
        target = pol.target if pol.target is not None else math.nan
        value = meas.value if meas is not None else math.nan
        if cap < pol.min_members:
            self._last_hold = None
            self._decide(
                pol.min_members - cap, f"{cap} members, below min_members {pol.min_members}", cap, value, target
            )
            return
        if cap > pol.max_members:
            self._last_hold = None
            self._decide(
                pol.max_members - cap, f"{cap} members, above max_members {pol.max_members}", cap, value, target
            )
            return
        if meas is None:
            return
        want, implied, why = self._rule(meas, cap)
        if want > 0:
            self._out_streak += 1
            self._in_streak = 0
        elif want < 0:
            self._in_streak += 1
            self._out_streak = 0
        else:
            self._out_streak = self._in_streak = 0
            if implied is not None and implied > pol.max_members and cap == pol.max_members:
                self._hold("max", f"at max_members {pol.max_members}; {why}", value, self._level(), cap, implied - cap)
            elif implied is not None and implied < pol.min_members and cap == pol.min_members:
                self._hold("min", f"at min_members {pol.min_members}; {why}", value, self._level(), cap, implied - cap)
            else:
                self._last_hold = None
            return
        streak = self._out_streak if want > 0 else self._in_streak
        if streak < pol.evaluation_periods:
            return
        now = self.env.now
        if want > 0 and now < self._no_out_until - EPS:
            self._hold(
                "cool-out", f"scale-out cooldown until {self._no_out_until:g} s; {why}", value, self._level(), cap, want
            )
            return
        if want < 0 and now < self._no_in_until - EPS:
            self._hold(
                "cool-in", f"scale-in cooldown until {self._no_in_until:g} s; {why}", value, self._level(), cap, want
            )
            return
        self._last_hold = None
        self._decide(want, why, cap, value, self._level())

    def _level(self) -> float:
        return target_level(self.policy)

    def _rule(self, meas: Measure, cap: int) -> tuple[int, int | None, str]:
        return scaling_rule(self.policy, meas, cap)

    def _decide(self, want: int, why: str, cap: int, value: float, target: float) -> None:
        now = self.env.now
        pol = self.policy
        self._out_streak = self._in_streak = 0
        if want > 0:
            started = self._scale_out(want, why)
            self._log(
                "scale_out",
                why,
                value=value,
                target=target,
                frm=cap,
                to=cap + started,
                outcome=f"adding {started}" if started == want else f"adding {started} of {want}: no free address",
            )
            self._no_out_until = now + pol.scale_out_cooldown
            self._no_in_until = max(self._no_in_until, now + pol.scale_in_cooldown)
            self.desired = cap + started
        elif want < 0:
            removed = self._scale_in(-want, why)
            self._log(
                "scale_in", why, value=value, target=target, frm=cap, to=cap - removed, outcome=f"removing {removed}"
            )
            self._no_in_until = now + pol.scale_in_cooldown
            self.desired = cap - removed
        self._record_size()

    # ------------------------------------------------------------------ scale-out
    def _free_addresses(self) -> Iterator[str]:
        tpl = self.template
        used = {
            str(o.attrs.get("address"))
            for o in self.sim.cp.members_of(self.pool)
            if int(o.attrs.get("protocol_port") or 0) == tpl.protocol_port
        }
        used |= self._reserved
        net = ipaddress.ip_network(tpl.address_range, strict=False)
        hosts = net.hosts() if net.num_addresses > 2 else iter(net)
        for ip in hosts:
            s = str(ip)
            if s not in used:
                yield s

    def _scale_out(self, n: int, why: str) -> int:
        started = 0
        free = self._free_addresses()
        for _ in range(n):
            addr = next(free, None)
            if addr is None:
                break
            self._counter += 1
            name = f"{self.prefix}{self._counter}"
            while name in self.members or self.sim.cp.get("member", name) is not None:
                self._counter += 1
                name = f"{self.prefix}{self._counter}"
            self._seq += 1
            rec = MemberRecord(name, addr, self.template.protocol_port, "scaler", self._seq, BOOTING)
            rec.decided = self.env.now
            self.members[name] = rec
            self._reserved.add(addr)
            self.env.process(self._launch(rec))
            started += 1
        return started

    def _serving_spec(self, rec: MemberRecord) -> m.Member:
        tpl = self.template
        behaviour = "healthy" if rec.app_ready else tpl.app_start_behaviour
        return m.Member(
            name=rec.name,
            address=rec.address,
            protocol_port=rec.port,
            weight=tpl.weight,
            monitor_port=tpl.monitor_port,
            concurrency=tpl.concurrency,
            service_time=tpl.service_time,
            behaviour=behaviour,
            status=503,
        )

    def _launch(self, rec: MemberRecord) -> Generator[simpy.Event, Any, None]:
        """Boot a server, create its member (retrying 409s), wait until it is ACTIVE."""
        env = self.env
        yield env.timeout(self._boot())
        if rec.cancel:
            self._finish_cancel(rec)
            return
        rec.booted = env.now
        start = self._app()
        rec.app_ready_at = env.now + start
        if start > 0:
            rec.app_ready = False
            env.process(self._app_ready(rec, start))
        rec.state = CREATING
        tpl = self.template
        body: dict[str, Any] = {
            "pool": self.pool,
            "address": rec.address,
            "protocol_port": rec.port,
            "weight": tpl.weight,
        }
        if tpl.monitor_port is not None:
            body["monitor_port"] = tpl.monitor_port
        resp, attempts, conflicts = yield from self._call("create", rec, body, serving=True)
        if resp is None:  # cancelled between retries
            self._finish_cancel(rec, attempts, conflicts)
            return
        if not resp.ok:
            rec.state = FAILED
            self._reserved.discard(rec.address)
            self._log(
                "create",
                "scale-out",
                member=rec.name,
                outcome=_gave_up(resp),
                code=resp.code,
                attempts=attempts,
                conflicts=conflicts,
            )
            return
        rec.created = env.now
        rec.state = PENDING
        status = yield from self._wait(rec.name)
        if status != "ACTIVE":
            self._log(
                "create",
                "scale-out",
                member=rec.name,
                outcome=f"member {status}",
                code=resp.code,
                attempts=attempts,
                conflicts=conflicts,
            )
            if status == "ERROR":
                rec.state = DELETING
                yield from self._delete(rec, "create failed (member ERROR)")
            else:
                rec.state = GONE
                self._reserved.discard(rec.address)
            return
        rec.active = env.now
        rec.state = IN_SERVICE
        self._log(
            "create",
            "scale-out",
            member=rec.name,
            outcome="ACTIVE",
            code=resp.code,
            attempts=attempts,
            conflicts=conflicts,
        )

    def _finish_cancel(self, rec: MemberRecord, attempts: int = 0, conflicts: int = 0) -> None:
        rec.state = CANCELLED
        rec.deleted = self.env.now
        self._reserved.discard(rec.address)
        self._log(
            "cancel",
            "scale-in before the member was created",
            member=rec.name,
            outcome="server deleted",
            attempts=attempts,
            conflicts=conflicts,
        )

    def _app_ready(self, rec: MemberRecord, delay: float) -> Generator[simpy.Event, Any, None]:
        """The member's application starts answering (until then it refuses, hangs or errs)."""
        yield self.env.timeout(delay)
        rec.app_ready = True
        sim = self.sim
        spec = sim.serving.get(rec.name)
        if spec is not None:
            sim.serving[rec.name] = spec.model_copy(update={"behaviour": "healthy"})
        server = sim.dp.server_by_name.get(rec.name)
        if server is not None:
            server.set_behaviour("healthy")

    def _call(
        self, op: str, rec: MemberRecord, body: dict[str, Any], serving: bool = False
    ) -> Generator[simpy.Event, Any, tuple[ApiResponse | None, int, int]]:
        """One API call, retried with back-off while Octavia answers 409 (LB busy).

        Returns (the last answer, attempts, 409s); the answer is None when a create was
        cancelled between retries.
        """
        r = self.policy.retry
        env = self.env
        deadline = env.now + r.timeout
        delay = r.initial
        attempts = conflicts = 0
        while True:
            spec = self._serving_spec(rec) if serving else None
            resp = self.sim.api_request(op, "member", rec.name, body, serving=spec)
            attempts += 1
            if resp.code != 409:
                return resp, attempts, conflicts
            conflicts += 1
            wait = delay
            if r.jitter > 0:
                wait *= 1.0 + r.jitter * (2.0 * float(self._rng.random()) - 1.0)
            if env.now + wait > deadline + EPS:
                return resp, attempts, conflicts
            yield env.timeout(wait)
            delay = min(delay * r.factor, r.max_interval)
            if op == "create" and rec.cancel:
                return None, attempts, conflicts

    def _wait(self, name: str) -> Generator[simpy.Event, Any, str]:
        """Poll Octavia until the member's job is done: ACTIVE, ERROR or DELETED (gone)."""
        while True:
            obj = self.sim.cp.get("member", name)
            if obj is None:
                return "DELETED"
            if obj.provisioning_status in ("ACTIVE", "ERROR"):
                return obj.provisioning_status
            yield self.env.timeout(self.policy.poll_interval)

    # ------------------------------------------------------------------ scale-in
    def _victims(self, n: int) -> tuple[list[MemberRecord], list[MemberRecord]]:
        """Members to remove: not-yet-created ones to cancel, then in-service ones to drain."""
        cancel = sorted(
            (r for r in self.members.values() if r.state in NOT_CREATED and not r.cancel), key=lambda r: -r.seq
        )[:n]
        left = n - len(cancel)
        drain: list[MemberRecord] = []
        if left > 0:
            self._known_names()
            serving = set(self.serving())
            dp = self.sim.dp
            cands = []
            for obj in self.sim.cp.members_of(self.pool):
                rec = self.members.get(obj.name)
                if rec is None or rec.state != IN_SERVICE or obj.provisioning_status != "ACTIVE":
                    continue
                cands.append(rec)
            removal = self.policy.removal

            def order(r: MemberRecord) -> tuple[int, float]:
                down = 0 if r.name not in serving else 1
                if removal == "oldest_first":
                    return down, r.seq
                if removal == "least_connections":
                    return down, inflight(dp.server_by_name.get(r.name)) + r.seq * 1e-9
                return down, -r.seq

            drain = sorted(cands, key=order)[:left]
        return cancel, drain

    def _scale_in(self, n: int, why: str) -> int:
        cancel, drain = self._victims(n)
        for rec in cancel:
            rec.cancel = True
            if rec.state == BOOTING or rec.state == CREATING:
                # the launch process notices the flag; count it as gone from now on
                rec.state = CANCELLED
        for rec in drain:
            rec.state = DRAINING
            self.env.process(self._drain(rec, why))
        return len(cancel) + len(drain)

    def _drain(self, rec: MemberRecord, why: str) -> Generator[simpy.Event, Any, None]:
        """weight 0, wait for in-flight requests (or the drain timeout), then delete."""
        env = self.env
        rec.drain_requested = env.now
        resp, attempts, conflicts = yield from self._call("update", rec, {"weight": 0})
        assert resp is not None
        if not resp.ok:
            self._log(
                "drain",
                "scale-in",
                member=rec.name,
                outcome=_gave_up(resp),
                code=resp.code,
                attempts=attempts,
                conflicts=conflicts,
            )
            rec.state = IN_SERVICE
            return
        status = yield from self._wait(rec.name)
        if status == "DELETED":
            rec.state = GONE
            return
        rec.drain_start = env.now
        server = self.sim.dp.server_by_name.get(rec.name)
        rec.in_flight_at_drain = inflight(server)
        deadline = env.now + self.policy.drain_timeout
        while inflight(server) > 0 and env.now < deadline - EPS:
            yield env.timeout(min(self.policy.poll_interval, deadline - env.now))
        rec.drain_end = env.now
        rec.in_flight_at_timeout = inflight(server)
        outcome = "drained" if rec.in_flight_at_timeout == 0 else f"drain timeout, {rec.in_flight_at_timeout} in flight"
        self._log(
            "drain", why, member=rec.name, outcome=outcome, code=resp.code, attempts=attempts, conflicts=conflicts
        )
        rec.state = DELETING
        yield from self._delete(rec, why)

    def _delete(self, rec: MemberRecord, why: str) -> Generator[simpy.Event, Any, None]:
        resp, attempts, conflicts = yield from self._call("delete", rec, {})
        assert resp is not None
        if not resp.ok and resp.code != 404:
            rec.state = FAILED
            self._log(
                "delete",
                why,
                member=rec.name,
                outcome=_gave_up(resp),
                code=resp.code,
                attempts=attempts,
                conflicts=conflicts,
            )
            return
        status = yield from self._wait(rec.name)
        rec.deleted = self.env.now
        rec.in_flight_at_delete = inflight(self.sim.dp.server_by_name.get(rec.name))
        rec.state = GONE if status == "DELETED" else FAILED
        self._reserved.discard(rec.address)
        extra = f", {rec.in_flight_at_delete} finishing on the old HAProxy process" if rec.in_flight_at_delete else ""
        self._log(
            "delete",
            why,
            member=rec.name,
            outcome=f"member {status}{extra}",
            code=resp.code,
            attempts=attempts,
            conflicts=conflicts,
        )


def _gave_up(resp: ApiResponse) -> str:
    if resp.code == 409:
        return f"gave up after 409s: {resp.message}"
    return f"refused: {resp.message}"


def _r(x: float | None) -> float | None:
    """Round for output; None and NaN become None."""
    if x is None or math.isnan(x):
        return None
    return round(float(x), 9)
