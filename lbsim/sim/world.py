"""Several load balancers on one clock: the shared world of ``lbsim run`` and ``lbsim serve``.

A :class:`World` owns one :class:`~lbsim.sim.kernel.TwinEnvironment`, one
:class:`~lbsim.octavia.controlplane.ControlPlane` and one
:class:`~lbsim.octavia.timeline.Timeline`, and one per-load-balancer runtime (a
:class:`~lbsim.sim.engine.Simulation` given those shared parts) for every load balancer:
its amphorae, HAProxy data plane, health manager and worker jobs. Load balancers come from
the scenario's tree(s) or from an ``api: create`` of a load balancer, at any time.

Events go through :meth:`World.apply_event` whether they were scheduled from a scenario
(``call_first`` at their time) or made live by the twin at ``env.now``: both run before
anything else due at that instant, on the same state, so a session replayed from its
recorded events repeats it exactly. Live worlds (``live=True``) have no end: nothing is
sized by a duration, traffic runs until stopped, and :meth:`World.live_tick` keeps the
per-second measurements in bounded windows.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from lbsim._version import __version__
from lbsim.octavia.controlplane import ControlPlane
from lbsim.octavia.objects import ApiResponse, Change
from lbsim.octavia.timeline import Timeline
from lbsim.scenario import model as m
from lbsim.scenario.gcpause import freeze_existing, gc_paused
from lbsim.scenario.ids import object_id
from lbsim.sim.dataplane import DataPlane
from lbsim.sim.engine import ApiCall, ProgressFn, RawRun, Simulation, api_call_of, member_serving
from lbsim.sim.kernel import TwinEnvironment
from lbsim.sim.metrics import LatencyRecorder, SecondWindow

#: seconds of per-second traffic history a live world keeps per listener
WINDOW_SECONDS = 3600
#: heartbeat statistics rows a live world keeps per load balancer
STATS_ROWS_KEPT = 4096
#: latencies a live data plane buffers before folding them into its histograms
LAT_BUFFER_KEPT = 4096


def derived_seed(seed: int, key: str) -> int:
    """A load balancer's own seed: its random streams differ from every other LB's."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class SecondCounts(list[int]):
    """A live data plane's per-second error counts: only seconds not yet read are kept.

    The data plane indexes its ``per_second_err`` list by absolute second and extends it
    as time passes; a live run has no end, so this stand-in claims to be long enough for
    any second and keeps the counts in a small dict that :meth:`take` empties.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, i: Any) -> Any:
        return self.counts.get(i, 0)

    def __setitem__(self, i: Any, v: Any) -> None:
        self.counts[i] = v

    def bump(self, sec: int) -> None:
        """Count one error in second ``sec`` (the data plane's ``_bump``)."""
        self.counts[sec] = self.counts.get(sec, 0) + 1

    def take(self) -> int:
        """Errors counted since the last call."""
        n = sum(self.counts.values())
        self.counts.clear()
        return n


@dataclass
class SecondStats:
    """One simulated second of one listener's traffic (live windows)."""

    second: int
    arrivals: int
    ok: int
    errors: int
    p50: float
    p95: float
    p99: float
    lat_sum: float = 0.0


@dataclass
class ListenerWindow:
    """The last seconds of a listener's traffic, and the counters read last time."""

    rows: deque[SecondStats] = field(default_factory=lambda: deque(maxlen=WINDOW_SECONDS))
    last_stot: int = 0


class World:
    """One clock, one control plane, any number of load balancers."""

    def __init__(
        self,
        scenario: m.Scenario,
        *,
        seed: int | None = None,
        base_dir: Path | None = None,
        log_requests: bool = False,
        live: bool = False,
    ) -> None:
        self.sc = scenario
        self.seed = scenario.seed if seed is None else seed
        self.base_dir = base_dir
        self.log_requests = log_requests
        self.live = live
        self.env = TwinEnvironment()
        self.cp = ControlPlane()
        self.timeline = Timeline()
        self.api_calls: list[ApiCall] = []
        #: per-load-balancer runtimes by LB key, in creation order (deleted LBs stay)
        self.runtimes: dict[str, Simulation] = {}
        #: runtimes of deleted load balancers whose key was used again (their measurements stay)
        self.retired: list[Simulation] = []
        self._primary: Simulation | None = None
        #: traffic generation per listener: a source runs while its generation is current
        self._traffic_gen: dict[str, int] = {}
        self._traffic_starts = 0
        #: current live traffic rate per listener (None: stopped or scenario-defined)
        self.traffic_rate: dict[str, float | None] = {}
        self.windows: dict[str, ListenerWindow] = {}
        self._lat_pos: dict[str, int] = {}
        #: called with the LB key when a runtime is created (the twin allocates a VIP)
        self.on_new_runtime: Callable[[str, Simulation], None] | None = None
        self.started = False

    # ---------------------------------------------------------------- runtimes
    def _make_runtime(self, lb: m.LoadBalancer, primary: bool) -> Simulation:
        rt = Simulation(
            self.sc,
            seed=self.seed if primary else derived_seed(self.seed, lb.name),
            base_dir=self.base_dir,
            log_requests=self.log_requests,
            env=self.env,
            cp=self.cp,
            timeline=self.timeline,
            lb=lb,
            live=self.live,
            amp_id=None if primary else _amp_ids(lb.name, sum(1 for r in self.retired if r.lb_name == lb.name)),
        )
        rt.api_calls = self.api_calls
        self.runtimes[lb.name] = rt
        if primary:
            self._primary = rt
        if self.on_new_runtime is not None:
            self.on_new_runtime(lb.name, rt)
        return rt

    def runtime_of_amphora(self, amp_id: str) -> Simulation | None:
        """The runtime of an amphora that has not been deleted (alive or failed)."""
        if self.timeline.current("amphora", amp_id, "provisioning_status") in ("", "DELETED"):
            return None
        for rt in self.runtimes.values():
            if any(a.amp_id == amp_id for a in rt.amphorae):
                return rt
        return None

    def runtime_for_lb(self, key: str) -> Simulation | None:
        """The runtime of a load balancer, if it was ever created."""
        return self.runtimes.get(key)

    def owner(self, kind: str, key: str) -> Simulation | None:
        """The runtime whose load balancer holds an object (None if unknown)."""
        obj = self.cp.get(kind, key)
        if obj is not None:
            try:
                return self.runtimes.get(self.cp.loadbalancer_of(obj))
            except KeyError:
                return None
        if kind == "member":
            for rt in self.runtimes.values():
                if key in rt.serving:
                    return rt
        return None

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        """Build the scenario's load balancers, traffic, events and processes at t=0.

        The order is :meth:`Simulation.run`'s, so that a one-LB scenario gives the same
        run through a world as alone.
        """
        if self.started:
            return
        self.started = True
        sc = self.sc
        trees = [lb for lb in sc.all_loadbalancers if lb.name != m.NO_LOADBALANCER]
        rts = [self._make_runtime(lb, primary=k == 0) for k, lb in enumerate(trees)]
        for rt in rts:
            if sc.start == "provision":
                rt._start_provision()
            else:
                rt._start_running()
        for i, src in enumerate(sc.traffic):
            self._start_source(i, src)
        for ev in sorted(sc.events, key=lambda e: e.at):
            self.env.call_first(ev.at, self._apply_scheduled, ev)
        for rt in rts:
            rt._start_failures()
        if sc.loadbalancers is not None:  # members no tree has (API-created): on their LB, once made
            in_trees = {mem.name for lb in trees for p in lb.pools for mem in p.members}
            for fl in sc.failures:
                for name in fl.members or []:
                    if name not in in_trees:
                        self.env.process(self._await_member(name, fl))
        for rt in rts:
            rt._start_extensions()
        for rt in rts:
            rt.start_processes()
            self._start_closing(rt)
        if self.live:
            self.env.process(self._live_sampler())

    def _start_closing(self, rt: Simulation) -> None:
        """A run with an end spills its finished per-second rows as it goes (one SimPy
        process per load balancer, as :meth:`Simulation.run` starts for one alone)."""
        if not self.live:
            self.env.process(rt.dp.latency.closing(self.env))

    def _start_source(self, i: int | str, src: m.TrafficSource, gen: int | None = None) -> None:
        """Start a traffic source on the runtime of its listener's load balancer. A source
        for a listener an API event creates later starts once it exists (a one-LB scenario
        sends it to its only load balancer from t = 0, as the engine does)."""
        rt = self.owner("listener", src.listener)
        if rt is None and self.sc.loadbalancers is None:
            rt = self._primary
        if gen is None:
            gen = self._traffic_gen.setdefault(src.listener, 0)
        if rt is None:
            self.env.process(self._await_listener(i, src, gen))
            return
        listener = src.listener
        gens = self._traffic_gen

        def running() -> bool:
            return gens.get(listener) == gen

        rt.sizes.setdefault(src.listener, (src.request_bytes, src.response_bytes))
        rt._traffic(i, src, running)

    def _await_member(self, name: str, fl: m.StochasticFailures) -> Generator[simpy.Event, Any, None]:
        while (rt := self.owner("member", name)) is None:
            yield self.env.timeout(1.0)
        self.env.process(rt._stochastic(name, fl))

    def _await_listener(self, i: int | str, src: m.TrafficSource, gen: int) -> Generator[simpy.Event, Any, None]:
        while self.owner("listener", src.listener) is None:
            if self._traffic_gen.get(src.listener) != gen:
                return  # replaced before its listener existed
            yield self.env.timeout(1.0)
        self._start_source(i, src, gen)

    # ---------------------------------------------------------------- events
    def _apply_scheduled(self, ev: Any, _b: Any = None) -> None:
        self.apply_event(ev)

    def apply_event(self, ev: Any) -> ApiResponse | None:
        """Apply one scenario event now (scheduled, or live from the twin)."""
        if isinstance(ev, m.ApiEvent):
            return self.api_event(ev)
        if isinstance(ev, m.MemberEvent):
            rt = self.owner("member", ev.member) or self._primary
            if rt is not None:
                rt._member_event(ev)
        elif isinstance(ev, m.AmphoraEvent):
            for rt in self._amphora_runtimes(ev):
                rt.amphora_event(ev)
        elif isinstance(ev, m.NetworkEvent):
            for rt in self._network_runtimes(ev):
                rt._network(ev)
        elif isinstance(ev, m.ZoneEvent):  # a zone is the cloud's: every load balancer's amphorae in it
            for rt in self.runtimes.values():
                rt.zone_event(ev)
        elif isinstance(ev, m.TrafficEvent):
            self.traffic_event(ev)
        return None

    def _amphora_runtimes(self, ev: m.AmphoraEvent) -> list[Simulation]:
        if not ev.by_role:
            return [rt for rt in self.runtimes.values() if any(a.amp_id == ev.amphora for a in rt.amphorae)]
        if ev.loadbalancer is not None:
            rt = self.runtimes.get(ev.loadbalancer)
            return [rt] if rt is not None else []
        return [self._primary] if self._primary is not None else []

    def _network_runtimes(self, ev: m.NetworkEvent) -> list[Simulation]:
        if ev.members is None or len(self.runtimes) <= 1:
            return list(self.runtimes.values())
        out: list[Simulation] = []
        for name in ev.members:
            rt = self.owner("member", name)
            if rt is not None and rt not in out:
                out.append(rt)
        return out

    def api_event(self, ev: m.ApiEvent) -> ApiResponse:
        """An ``api:`` event: the call as a client would make it."""
        if ev.amphora is not None:
            return self.amphora_failover(ev.amphora)
        kind, name, body, serving = api_call_of(ev)
        return self.api_request(ev.api, kind, name, body, cascade=ev.cascade, fail=ev.fail, serving=serving)

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
        """An Octavia API call now, through the shared control plane.

        A load-balancer create that is accepted gets its runtime (amphorae are built
        when the create job completes); every job runs on its load balancer's runtime.
        """
        body = dict(body or {})
        resp = self.cp.request(op, kind, name, body, cascade=cascade)
        self.api_calls.append(ApiCall(self.env.now, op, kind, name, resp.code, resp.message))
        self._record(resp.changes)
        if resp.ok and op == "create" and kind == "loadbalancer":
            old = self.runtimes.pop(name, None)
            if old is not None:  # the key of a DELETED load balancer, used again
                self.retired.append(old)
            rt = self._make_runtime(lb_model(name, body), primary=False)
            rt.start_processes()
            self._start_closing(rt)
        job = resp.job
        owner = self.runtimes.get(job.loadbalancer) if job is not None else None
        if resp.ok and op == "create" and kind == "member" and owner is not None:
            owner.serving[name] = serving if serving is not None else member_serving(name, body)
        if job is not None and owner is not None:
            owner._run_job(job, fail=fail)
        return resp

    def amphora_failover(self, amp_id: str) -> ApiResponse:
        """``PUT /amphorae/{id}/failover``: lock the LB and rebuild that one amphora (the
        flow the health manager starts for a stale amphora)."""
        rt = self.runtime_of_amphora(amp_id)
        if rt is None:
            resp = ApiResponse(404, f"Amphora {amp_id} not found.")
        else:
            job, changes = self.cp.lock_for_failover(rt.lb_name) if amp_id not in rt.hm.busy else (None, ())
            if job is None:
                lb = self.cp.get("loadbalancer", rt.lb_name)
                status = lb.provisioning_status if lb is not None else "DELETED"
                resp = ApiResponse(409, f"Invalid state {status} of loadbalancer resource {rt.lb_name}")
            else:
                resp = ApiResponse(202, "", job, changes)
        self.api_calls.append(ApiCall(self.env.now, "failover", "amphora", amp_id, resp.code, resp.message))
        if resp.job is not None and rt is not None:
            self._record(resp.changes)
            rt.hm.busy.add(amp_id)
            rt._failover(amp_id, resp.job)
        return resp

    def _record(self, changes: Iterable[Change]) -> None:
        now = self.env.now
        for c in changes:
            self.timeline.set(now, c.object_type, c.name, c.field, c.new)

    # ---------------------------------------------------------------- traffic
    def traffic_event(self, ev: m.TrafficEvent) -> None:
        """Replace a listener's traffic by Poisson arrivals at ``rate`` (None/0: stop)."""
        listener = ev.traffic
        self._traffic_gen[listener] = self._traffic_gen.get(listener, 0) + 1
        rate = ev.rate if ev.rate else None
        self.traffic_rate[listener] = rate
        if rate is None:
            return
        self._traffic_starts += 1
        src = m.TrafficSource(
            listener=listener,
            arrival=m.Poisson(process="poisson", rate=rate),
            clients=ev.clients,
            request_bytes=ev.request_bytes,
            response_bytes=ev.response_bytes,
        )
        rt = self.owner("listener", listener)
        if rt is not None:
            rt.sizes[listener] = (ev.request_bytes, ev.response_bytes)
            fe = rt.dp.frontends.get(listener)
            if fe is not None:
                fe.request_bytes, fe.response_bytes = ev.request_bytes, ev.response_bytes
        self._start_source(f"live:{listener}:{self._traffic_starts}", src)

    # ---------------------------------------------------------------- running
    def run_until(self, t: float) -> None:
        """Advance the clock to ``t`` (events due strictly before ``t`` are processed)."""
        if not self.started:
            self.start()
        if t > self.env.now:
            self.env.run(until=t)

    def run(self, progress: ProgressFn | None = None, steps: int = 100) -> RawRun:
        """Run a scenario to its duration and return the raw run (``lbsim run``).

        As :meth:`Simulation.run`: the deployments are built with the cyclic collector
        paused and kept out of its collections while the run goes on."""
        with gc_paused():
            self.start()
            thaw = freeze_existing()
        try:
            duration = self.sc.duration
            if progress is None:
                self.run_until(duration)
            else:
                for k in range(1, steps + 1):
                    self.run_until(duration * k / steps)
                    progress(k / steps)
            return self.raw(duration)
        finally:
            thaw()

    def raw(self, duration: float) -> RawRun:
        """The raw run so far, every load balancer's measurements merged."""
        rts = [*self.retired, *self.runtimes.values()]
        if len(rts) == 1:
            raw = rts[0].finish(duration)
            raw.api_calls = self.api_calls
            return raw
        raws = [rt.finish(duration) for rt in rts]
        dp = merge_dataplanes([rt.dp for rt in rts], self.env, self.sc, duration, self.log_requests)
        faults = sorted((f for r in raws for f in r.faults), key=lambda f: f.time)
        stats = sorted((row for r in raws for row in r.stats_rows), key=lambda row: row[0])
        scalers = [s for r in raws for s in r.extra.get("autoscalers", [])]
        return RawRun(
            scenario=self.sc,
            seed=self.seed,
            timeline=self.timeline,
            dp=dp,
            cp=self.cp,
            api_calls=self.api_calls,
            faults=faults,
            member_names=[s.name for s in dp.servers],
            duration=duration,
            lbsim_version=__version__,
            heartbeats=sum(r.heartbeats for r in raws),
            stats_rows=stats,
            extra={"autoscalers": scalers},
        )

    @contextmanager
    def live_series(self, duration: float) -> Iterator[None]:
        """While open, a live world's data planes carry per-second series over
        ``[0, duration)`` rebuilt from the listener windows (seconds older than the
        window are zero), so that a result folder can be written; closed, the bounded
        live state is back. A world with an end is left as it is."""
        if not self.live:
            yield
            return
        n = max(1, math.ceil(duration)) + 2
        saved = []
        for rt in self.runtimes.values():
            dp, rec = rt.dp, rt.dp.latency
            rec.flush()
            saved.append((dp, dp.per_second_err, rec.seconds))
            errs = np.zeros(n, dtype=np.int64)
            ok = np.zeros(n, dtype=np.int64)
            lat = np.zeros(n, dtype=float)
            for li in self.cp.listeners_of(rt.lb_name):
                win = self.windows.get(li.name)
                for row in win.rows if win is not None else ():
                    if 0 <= row.second < n:
                        errs[row.second] += row.errors
                        ok[row.second] += row.ok
                        lat[row.second] += row.lat_sum
            rec.seconds = SecondWindow.filled(ok, lat, errs)
            dp.per_second_err = rec.seconds.errors
        try:
            yield
        finally:
            for dp, errs_saved, seconds_saved in saved:
                dp.per_second_err = errs_saved
                dp.latency.seconds = seconds_saved

    # ---------------------------------------------------------------- live windows
    def _live_sampler(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(1.0)
            self.live_tick()

    def live_tick(self) -> None:
        """Once a simulated second (live): fold the last second into the listeners'
        windows and drop what only a finished run would need (memory stays bounded)."""
        sec = int(self.env.now) - 1
        for name in [n for n in self.windows if self.cp.get("listener", n) is None]:
            del self.windows[name]
        by_lb: dict[str, list[Any]] = {}
        for li in self.cp.objects("listener"):  # one pass over the rows, not one per LB
            by_lb.setdefault(str(li.attrs.get("loadbalancer")), []).append(li)
        for lb, rt in self.runtimes.items():
            dp = rt.dp
            rec = dp.latency
            pos = self._lat_pos.get(lb, 0)
            n = len(rec._lat)
            if n < pos:  # the recorder flushed on its own: those values are in its histograms
                pos = 0
            lat = rec._lat[pos:n]
            who = rec._who[pos:n]
            if n > LAT_BUFFER_KEPT:
                rec.flush()
                n = 0
            self._lat_pos[lb] = n
            errs = dp.per_second_err
            if not isinstance(errs, SecondCounts):
                errs = dp.per_second_err = SecondCounts()
            errors = errs.take()
            rows = rt.hm.stats_rows
            if len(rows) > 2 * STATS_ROWS_KEPT:
                del rows[:-STATS_ROWS_KEPT]
            listeners = by_lb.get(lb, [])
            if not listeners:
                continue
            by_pool = {str(li.attrs.get("default_pool")): li.name for li in listeners if li.attrs.get("default_pool")}
            per: dict[str, list[float]] = {li.name: [] for li in listeners}
            if lat:
                owner: dict[int, str] = {}
                for amp in rt.amphorae:
                    for st in amp.servers.values():
                        li_name = by_pool.get(st.pool)
                        if li_name is not None:
                            owner[st.server.gidx] = li_name
                for value, g in zip(lat, who, strict=False):
                    li_name = owner.get(g)
                    if li_name is not None:
                        per[li_name].append(value)
            arrivals = []
            for li in listeners:
                win = self.windows.setdefault(li.name, ListenerWindow())
                fe = dp.frontends.get(li.name)
                stot = fe.stot if fe is not None else win.last_stot
                arrivals.append(max(0, stot - win.last_stot))
                win.last_stot = stot
            total_arr = max(1, sum(arrivals))
            for k, li in enumerate(listeners):
                mine = sorted(per[li.name])
                share = errors if len(listeners) == 1 else round(errors * arrivals[k] / total_arr)
                p50, p95, p99 = (_quantile(mine, q) for q in (0.50, 0.95, 0.99))
                self.windows[li.name].rows.append(
                    SecondStats(sec, arrivals[k], len(mine), share, p50, p95, p99, sum(mine))
                )


def _quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (the smallest value with at least q of them at or
    below it); NaN for none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _amp_ids(lb: str, generation: int = 0) -> Callable[[int], str]:
    """Amphora ids of an LB's runtime: stable UUIDs (a replay makes the same ones); a
    load balancer created again under a used key gets new ones."""
    scope = lb if generation == 0 else f"{lb}#{generation}"

    def amp_id(k: int) -> str:
        return object_id(scope, "amphora", str(k))

    return amp_id


def lb_model(name: str, body: dict[str, Any]) -> m.LoadBalancer:
    """The runtime description of a load balancer created through the API (no children:
    they come through their own API calls)."""
    flavor = body.get("flavor")
    return m.LoadBalancer(
        name=name,
        admin_state_up=bool(body.get("admin_state_up", True)),
        topology=body.get("topology") or "SINGLE",
        flavor=m.Flavor.model_validate(flavor) if isinstance(flavor, dict) else None,
    )


def merge_dataplanes(
    dps: list[DataPlane], env: TwinEnvironment, sc: m.Scenario, duration: float, log_requests: bool
) -> DataPlane:
    """One data plane's measurements for several load balancers (for result folders).

    Servers keep their order (first LB's members first); histograms, counters and
    per-second series are added up.
    """
    out = DataPlane(env, 0, sc.warmup, duration, log_requests)
    offsets = []
    n = 0
    for dp in dps:
        dp.latency.flush()
        offsets.append(n)
        n += len(dp.servers)
    rec = LatencyRecorder(n, out.latency.seconds.nsec)
    for dp, off in zip(dps, offsets, strict=True):
        k = len(dp.servers)
        rec.merge(dp.latency, off)  # histograms, sums and counts
        out.servers.extend(dp.servers)
        out.member_errors.extend(dp.member_errors[:k])
        for key, v in dp.errors.items():
            out.errors[key] = out.errors.get(key, 0) + v
        out.connect_errors += dp.connect_errors
        out.log.extend((t0, c, g + off if g >= 0 else g, lat, o) for t0, c, g, lat, o in dp.log)
    # per-second rows (successes, latency sums, errors, samples) added up, chunk by chunk
    rec.seconds = SecondWindow.sum_of([dp.latency.seconds for dp in dps])
    out.per_second_err = rec.seconds.errors
    out.samples = rec.seconds.samples
    out.log.sort(key=lambda r: r[0])
    out.latency = rec
    out.server_by_name = {s.name: s for s in out.servers}
    return out


def window_summary(rows: Iterable[SecondStats]) -> dict[str, Any]:
    """Per-second series of a listener window as plain lists (for the live page)."""
    rs = list(rows)
    return {
        "second": [r.second for r in rs],
        "rate": [r.arrivals for r in rs],
        "ok": [r.ok for r in rs],
        "errors": [r.errors for r in rs],
        "p50": [r.p50 for r in rs],
        "p95": [r.p95 for r in rs],
        "p99": [r.p99 for r in rs],
    }


def simulate_world(
    scenario: m.Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    log_requests: bool = False,
    progress: ProgressFn | None = None,
) -> RawRun:
    """Run a scenario through a world (any number of load balancers)."""
    return World(scenario, seed=seed, base_dir=base_dir, log_requests=log_requests).run(progress)


def simulate(
    scenario: m.Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    log_requests: bool = False,
    progress: ProgressFn | None = None,
    engine: str = "auto",
) -> RawRun:
    """Run any scenario: a one-LB scenario (``loadbalancer:``) as :func:`engine.simulate
    <lbsim.sim.engine.simulate>` runs it, a ``loadbalancers:`` scenario through a world.
    Both give the same run for the same one-LB tree (``tests/test_twin.py`` checks it).
    ``engine`` picks the one-LB data plane (worlds always run the exact one)."""
    if scenario.loadbalancers is None:
        from lbsim.sim.engine import simulate as simulate_one  # (``engine`` is the argument here)

        return simulate_one(
            scenario, seed=seed, base_dir=base_dir, log_requests=log_requests, progress=progress, engine=engine
        )
    return simulate_world(scenario, seed=seed, base_dir=base_dir, log_requests=log_requests, progress=progress)


__all__ = ["World", "derived_seed", "lb_model", "merge_dataplanes", "simulate", "simulate_world"]
