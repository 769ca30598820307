"""Elastic pools (lbsim.sim.autoscaling): what a scaler does through Octavia's API, and when
HAProxy lets new capacity take traffic.

What these tests prove:

* **First traffic of a new member** (HAProxy start-up semantics, haproxy-semantics.md):
  a member gets no request before the create job's config push puts it in the running
  configuration (never while it is PENDING_CREATE). A healthy member starts ``UP 1/3``
  (h = rise) and is served at once, not after ``rise`` checks; a member whose application
  is still starting is marked DOWN by its first check and serves its first request only
  after ``rise`` consecutive successful checks once the application answers. Without a
  monitor it serves as soon as its application answers. Service starts are observed in
  the data plane itself (every call of the member's service sampler).
* **Draining**: a scaled-in member gets weight 0, takes no new request, and every
  request it held either completes before the drain ends or is counted as in flight at
  the drain timeout (and still completes on the old HAProxy process); none is dropped.
* **Settling**: under a step load the count settles at the number the metric target
  implies (computed here from the offered load, +-1) and ``desired`` never leaves
  [min_members, max_members].
* **Concurrency**: simultaneous creates (and drains) against one load balancer meet 409s
  while another job holds the lock, retry with the configured back-off, and all apply,
  one job at a time; a retry budget that runs out is logged and the next evaluation
  tries again.
* Results: ``scaling.csv``, ``pool_size.csv`` and the SLO verdict are written and read
  back; the sweep tool varies policy parameters; the oscillating and flash-crowd
  scenarios show flapping and delayed relief.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.cli.scaling import main
from lbsim.figures.scaling import figure_from_folder, scaling_figure
from lbsim.results.folder import RunResult, summarise
from lbsim.scenario import model as m
from lbsim.scenario.loader import load_scenario
from lbsim.scenario.validation import check_scenario
from lbsim.sim.autoscaling import Autoscaler, inflight
from lbsim.sim.engine import RawRun, Simulation

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios" / "autoscaling"


def member(name: str, address: str, service: float = 0.02, concurrency: int = 4) -> dict[str, Any]:
    return {
        "name": name,
        "address": address,
        "protocol_port": 8080,
        "concurrency": concurrency,
        "service_time": {"dist": "exponential", "mean": service},
    }


def base(
    *,
    rate: float = 50.0,
    duration: float = 40.0,
    monitor: dict[str, Any] | None = None,
    members: int = 2,
    service: float = 0.02,
    policy: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-pool scenario with an autoscaling policy (scales nothing unless told to)."""
    tpl = {
        "address_range": "10.0.1.0/24",
        "protocol_port": 8080,
        "concurrency": 4,
        "service_time": {"dist": "exponential", "mean": service},
        "boot_time": {"dist": "constant", "value": 5},
    }
    tpl.update(template or {})
    pol: dict[str, Any] = {
        "metric": "requests_per_second",
        "target": 1000,
        "min_members": members,
        "max_members": 20,
        "evaluation_interval": 10,
        "window": 20,
        "member_template": tpl,
    }
    pol.update(policy or {})
    pool: dict[str, Any] = {
        "name": "web",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [member(f"web-{i + 1}", f"10.0.0.{11 + i}", service) for i in range(members)],
        "autoscaling": pol,
    }
    if monitor is not None:
        pool["healthmonitor"] = monitor
    return {
        "version": 1,
        "name": "as",
        "seed": 5,
        "duration": duration,
        "octavia": {"heartbeat_interval": 2, "workers": {"update": {"dist": "constant", "value": 1.3}}},
        "loadbalancer": {
            "name": "lb1",
            "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 80, "default_pool": "web"}],
            "pools": [pool],
        },
        "traffic": [{"listener": "http", "arrival": {"process": "poisson", "rate": rate}}],
    }


def hm(delay: int = 2, rise: int = 3, fall: int = 3) -> dict[str, Any]:
    return {"type": "HTTP", "delay": delay, "timeout": 1, "max_retries": rise, "max_retries_down": fall}


class Run:
    """A finished run with the data plane's own record of when each member started a service."""

    def __init__(self, data: dict[str, Any], *, log: bool = False) -> None:
        sc = m.Scenario.model_validate(data)
        assert check_scenario(sc) == []
        self.sim = Simulation(sc, log_requests=log)
        self.starts: dict[str, list[float]] = {}
        dp = self.sim.dp
        add = dp.add_server
        env = self.sim.env

        def add_server(server: Any) -> None:
            add(server)
            service = server.service
            times = self.starts.setdefault(server.name, [])

            def observed() -> float:
                times.append(env.now)
                return float(service())

            server.service = observed

        dp.add_server = add_server  # type: ignore[method-assign]
        self.raw: RawRun = self.sim.run()
        self.res: RunResult = summarise(self.raw)
        self.scaler: Autoscaler = self.sim.autoscalers[0]

    def changes(self, kind: str, name: str, field: str) -> list[tuple[float, str]]:
        return [(c.time, c.new) for c in self.res.timeline.changes(kind, name, field)]

    def first(self, kind: str, name: str, field: str, value: str) -> float:
        return next(t for t, v in self.changes(kind, name, field) if v == value)


# --------------------------------------------------------------------------------------
# When a new member gets its first request
# --------------------------------------------------------------------------------------


def test_healthy_new_member_serves_from_the_reload_not_after_rise_checks() -> None:
    # min_members 3 with two members: one scale-out at t=0, boot 5 s, application ready
    r = Run(base(monitor=hm(delay=2, rise=3), policy={"min_members": 3}))
    name = "web-as-1"
    created = r.first("member", name, "provisioning_status", "PENDING_CREATE")
    active = r.first("member", name, "provisioning_status", "ACTIVE")
    assert created == pytest.approx(5.0)  # after the boot
    assert active == pytest.approx(5.0 + 1.3)  # the config push of the create job
    # HAProxy loads the new server at h = rise: UP, one failure from DOWN, and serves it
    assert r.changes("member", name, "data_plane_state")[0] == (active, "UP 1/3")
    starts = r.starts[name]
    assert starts[0] >= active
    # served right away (about one request in three at 50/s), long before a third check
    assert starts[0] - active < 0.5 < 2 * 2
    # the load balancer and pool were PENDING_UPDATE until then: no request in PENDING states
    tl = r.res.timeline
    assert tl.value_at("loadbalancer", "lb1", "provisioning_status", (created + active) / 2) == "PENDING_UPDATE"
    assert tl.value_at("pool", "web", "provisioning_status", (created + active) / 2) == "PENDING_UPDATE"
    assert r.raw.dp.server_by_name[name].slowed == 0  # nothing refused, nothing retried


def test_starting_application_serves_only_after_rise_successful_checks() -> None:
    # the application needs 6 s after the boot and refuses connections until then
    r = Run(
        base(
            monitor=hm(delay=2, rise=3),
            policy={"min_members": 3},
            template={"app_start": {"dist": "constant", "value": 6}},
        )
    )
    name = "web-as-1"
    active = r.first("member", name, "provisioning_status", "ACTIVE")
    ready = 5.0 + 6.0
    states = r.changes("member", name, "data_plane_state")
    assert [v for _t, v in states] == ["UP 1/3", "DOWN", "DOWN 1/3", "DOWN 2/3", "UP"]
    assert states[0][0] == pytest.approx(active)
    up = states[-1][0]
    # the 3 successful checks all come after the application answers, 2 s apart
    assert states[2][0] >= ready
    assert states[-1][0] - states[2][0] == pytest.approx(2 * 2)
    # while UP 1/3 it was sent requests and refused them (HAProxy retried elsewhere)
    assert r.raw.dp.server_by_name[name].slowed > 0
    starts = r.starts[name]
    assert starts[0] >= up
    assert starts[0] - up < 0.5
    assert r.res.summary["errors"] == {}  # refused connections were redispatched


def test_without_monitor_the_member_serves_once_its_application_answers() -> None:
    r = Run(base(monitor=None, policy={"min_members": 3}, template={"app_start": {"dist": "constant", "value": 4}}))
    name = "web-as-1"
    active = r.first("member", name, "provisioning_status", "ACTIVE")
    assert r.changes("member", name, "data_plane_state")[0] == (active, "no check")
    starts = r.starts[name]
    assert starts[0] >= 5.0 + 4.0 > active
    assert starts[0] - 9.0 < 0.5
    assert r.raw.dp.server_by_name[name].slowed > 0  # refused meanwhile: nobody marked it down


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rise=st.integers(1, 4),
    delay=st.integers(1, 3),
    app_start=st.sampled_from([0.0, 0.7, 2.5, 5.0, 9.0]),
    checked=st.booleans(),
    behaviour=st.sampled_from(["refuse", "error"]),
    boot=st.floats(1.0, 6.0),
)
def test_first_request_property(
    rise: int, delay: int, app_start: float, checked: bool, behaviour: str, boot: float
) -> None:
    """Never before the running config; after a DOWN only after rise passing checks."""
    data = base(
        rate=40,
        duration=boot + app_start + (rise + 3) * delay + 8,
        monitor=hm(delay=delay, rise=rise) if checked else None,
        policy={"min_members": 3},
        template={
            "boot_time": {"dist": "constant", "value": boot},
            "app_start": {"dist": "constant", "value": app_start},
            "app_start_behaviour": behaviour,
        },
    )
    r = Run(data)
    name = "web-as-1"
    active = r.first("member", name, "provisioning_status", "ACTIVE")
    ready = boot + app_start
    starts = r.starts[name]
    assert starts, "the new member never served"
    assert starts[0] >= active
    assert starts[0] >= ready
    states = r.changes("member", name, "data_plane_state")
    if not checked:
        assert states[0][1] == "no check"
        return
    assert states[0] == (active, "UP 1/3")  # h = rise at the reload (fall 3)
    downs = [t for t, v in states if v == "DOWN"]
    if downs:
        after = [(t, v) for t, v in states if t > downs[-1]]
        up = next(t for t, v in after if v == "UP")
        assert starts[0] >= up
        climbing = [v for t, v in after if t <= up]
        assert climbing == [*(f"DOWN {k}/{rise}" for k in range(1, rise)), "UP"]
    else:  # the application answered before the first check: never DOWN
        assert app_start < delay + 1.5


# --------------------------------------------------------------------------------------
# Draining
# --------------------------------------------------------------------------------------


def _drain_scenario(service: float, drain_timeout: float, rate: float = 3.0) -> dict[str, Any]:
    # three members at 3 req/s against a target of 10 req/s per member: the first
    # evaluation (t = 10 s) removes two of them (min_members 1)
    data = base(
        rate=rate,
        duration=60,
        members=3,
        monitor=hm(delay=2, rise=2),
        policy={"min_members": 1, "max_members": 3, "target": 10, "drain_timeout": drain_timeout},
    )
    for mem in data["loadbalancer"]["pools"][0]["members"]:
        mem["service_time"] = {"dist": "lognormal", "mean": service, "sigma": 0.3}
    return data


def _drained(r: Run) -> list[Any]:
    return [rec for rec in r.scaler.members.values() if rec.drain_start is not None]


def test_drain_completes_every_in_flight_request_before_delete() -> None:
    r = Run(_drain_scenario(service=3.0, drain_timeout=30), log=True)
    drained = _drained(r)
    assert sorted(rec.name for rec in drained) == ["web-2", "web-3"]  # newest first: web-1 stays
    req = r.res.requests
    assert req is not None
    assert r.res.summary["errors"] == {}
    held = 0
    for rec in drained:
        mine = req[req["member"] == rec.name]
        done = mine["time"] + mine["latency"]
        assert (mine["outcome"] == "ok").all()
        assert (mine["time"] < rec.drain_start).all()  # weight 0: no new request
        assert rec.in_flight_at_timeout == 0
        assert (done <= rec.drain_end).all()
        assert rec.deleted >= rec.drain_end
        assert r.res.timeline.value_at("member", rec.name, "provisioning_status", 59) in ("", "DELETED")
        # weight 0 with a monitor: HAProxy still says UP, the amphora reports DRAIN (§1.5)
        assert "DRAINING" in [v for _t, v in r.changes("member", rec.name, "operating_status")]
        assert r.res.timeline.value_at("member", rec.name, "data_plane_state", rec.drain_start + 0.5) == "UP"
        held += rec.in_flight_at_drain
    assert held > 0  # there was something to drain
    assert r.res.summary["autoscaling"]["web"]["drain_timeouts"] == 0
    drains = r.res.scaling[r.res.scaling["action"] == "drain"]
    assert list(drains["outcome"]) == ["drained", "drained"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service=st.floats(0.5, 8.0), drain_timeout=st.floats(0.0, 6.0), load=st.floats(0.05, 0.3))
def test_drain_never_drops_a_request(service: float, drain_timeout: float, load: float) -> None:
    """Each request the drained member held completes; those after the timeout are counted.

    ``load`` is the share of the three members' capacity offered (the one member left
    after the scale-in then runs below 90 %), so no request times out on its own.
    """
    r = Run(_drain_scenario(service, drain_timeout, load * 3 * 4 / service), log=True)
    req = r.res.requests
    assert req is not None
    drained = _drained(r)
    assert drained
    for rec in drained:
        mine = req[req["member"] == rec.name]
        done = mine["time"] + mine["latency"]
        assert (mine["outcome"] == "ok").all()
        assert (mine["time"] < rec.drain_start).all()
        # still in service when the run ended: not in the request log yet
        unfinished = inflight(r.raw.dp.server_by_name[rec.name])
        assert int((done > rec.drain_end).sum()) + unfinished == rec.in_flight_at_timeout
        assert int((done > rec.deleted).sum()) + unfinished == rec.in_flight_at_delete
        assert rec.drain_end - rec.drain_start <= drain_timeout + 1e-9
        if rec.in_flight_at_timeout == 0:
            assert (done <= rec.drain_end).all()
    # the data plane lost nothing: every arrival that completed was answered
    assert set(req["outcome"]) <= {"ok"}
    timeouts = sum(1 for rec in drained if rec.in_flight_at_timeout > 0)
    assert r.res.summary["autoscaling"]["web"]["drain_timeouts"] == timeouts


# --------------------------------------------------------------------------------------
# Settling under a step load
# --------------------------------------------------------------------------------------


def _step(rate0: float, rate1: float, at: float, duration: float) -> dict[str, Any]:
    return {"process": "profile", "profile": [[0, rate0], [at, rate0], [at + 1, rate1], [duration, rate1]]}


def _settled(r: Run, since: float) -> pd.DataFrame:
    ps = r.res.pool_size
    assert ps is not None
    return ps[ps["time"] >= since]


def test_step_load_settles_at_the_count_the_target_implies() -> None:
    duration = 500.0
    target = 12.0
    data = base(
        duration=duration,
        monitor=hm(delay=2, rise=2),
        policy={
            "target": target,
            "min_members": 2,
            "max_members": 12,
            "scale_out_cooldown": 20,
            "scale_in_cooldown": 60,
            "window": 30,
        },
        template={"boot_time": {"dist": "constant", "value": 10}},
    )
    data["traffic"][0]["arrival"] = _step(20, 100, 100, duration)
    r = Run(data)
    implied = math.ceil(100 / target)  # 9 members at 100 requests/s
    tail = _settled(r, 400)
    assert tail["desired"].between(implied - 1, implied + 1).all()
    assert tail["ready"].between(implied - 1, implied + 1).all()
    ps = r.res.pool_size
    assert ps is not None
    assert ps["desired"].between(2, 12).all()
    assert (ps["ready"] <= 12).all() and (ps["members"] - ps["draining"] <= 12).all()
    # before the step, 20 requests/s implies 2 members: the minimum
    assert ps[(ps["time"] > 60) & (ps["time"] < 100)]["desired"].eq(2).all()


def test_utilisation_target_settles_at_offered_work_over_target() -> None:
    # 100 req/s x 0.1 s = 10 busy slots; members of 2 slots at a 50 % target -> 10 members
    duration = 400.0
    data = base(
        rate=100,
        duration=duration,
        service=0.1,
        policy={"metric": "utilisation", "target": 0.5, "min_members": 2, "max_members": 15, "scale_in_cooldown": 60},
        template={"concurrency": 2, "service_time": {"dist": "exponential", "mean": 0.1}},
    )
    for mem in data["loadbalancer"]["pools"][0]["members"]:
        mem["concurrency"] = 2
    r = Run(data)
    tail = _settled(r, 300)
    assert tail["desired"].between(9, 11).all()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(20.0, 120.0),
    target=st.floats(6.0, 30.0),
    lo=st.integers(1, 3),
    span=st.integers(0, 8),
)
def test_settles_within_limits_property(rate: float, target: float, lo: int, span: int) -> None:
    hi = lo + span
    duration = 360.0
    data = base(
        duration=duration,
        members=2,
        policy={
            "target": target,
            "min_members": lo,
            "max_members": hi,
            "scale_out_cooldown": 15,
            "scale_in_cooldown": 30,
            "window": 30,
        },
        template={"boot_time": {"dist": "constant", "value": 8}},
    )
    data["traffic"][0]["arrival"] = _step(10, rate, 60, duration)
    r = Run(data)
    expected = min(max(math.ceil(rate / target), lo), hi)
    ps = r.res.pool_size
    assert ps is not None
    assert ps["desired"].between(lo, hi).all()
    tail = _settled(r, 280)
    assert tail["desired"].between(expected - 1, expected + 1).all()


# --------------------------------------------------------------------------------------
# Concurrent actions against one load balancer
# --------------------------------------------------------------------------------------


def _busy(message: str) -> bool:
    return "PENDING_UPDATE" in message or "immutable" in message


def test_concurrent_creates_meet_409s_and_all_apply_one_job_at_a_time() -> None:
    retry = {"initial": 0.5, "factor": 2.0, "max_interval": 4.0}
    r = Run(base(duration=40, policy={"min_members": 6, "retry": retry}))
    api = r.res.api_calls
    creates = api[(api["op"] == "create") & (api["object_type"] == "member")]
    names = [f"web-as-{i}" for i in range(1, 5)]
    assert set(creates["name"]) == set(names)
    conflicts = creates[creates["code"] == 409]
    assert len(conflicts) >= 3
    assert all(_busy(msg) for msg in conflicts["message"])
    ok = creates[creates["code"] == 201].sort_values("time")
    assert sorted(ok["name"]) == names  # each applied exactly once
    # one job at a time: every create is accepted only after the previous one is ACTIVE
    actives = [r.first("member", n, "provisioning_status", "ACTIVE") for n in ok["name"]]
    assert all(b >= a for a, b in zip(actives, list(ok["time"])[1:], strict=False))
    # each member's attempts follow the back-off: 0.5, 1, 2, 4, 4, ... seconds apart
    for name in names:
        times = list(creates[creates["name"] == name]["time"])
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == pytest.approx([min(0.5 * 2**k, 4.0) for k in range(len(gaps))])
    sc = r.res.scaling
    assert sc is not None
    rows = sc[sc["action"] == "create"]
    assert sorted(rows["member"]) == names and set(rows["outcome"]) == {"ACTIVE"}
    assert int(rows["conflicts"].sum()) == len(conflicts)
    final = r.res.pool_size
    assert final is not None and int(final["members"].iloc[-1]) == 6


def test_concurrent_drains_meet_409s_and_all_members_go() -> None:
    # six members above max_members 2: four drains start at t = 0 against one LB lock
    r = Run(base(duration=60, members=6, policy={"min_members": 1, "max_members": 2, "drain_timeout": 2}))
    api = r.res.api_calls
    updates = api[(api["op"] == "update") & (api["object_type"] == "member")]
    deletes = api[(api["op"] == "delete") & (api["object_type"] == "member")]
    assert (updates["code"] == 409).sum() >= 3
    assert sorted(updates[updates["code"] == 200]["name"]) == ["web-3", "web-4", "web-5", "web-6"]
    assert sorted(deletes[deletes["code"] == 204]["name"]) == ["web-3", "web-4", "web-5", "web-6"]
    assert all(_busy(msg) for msg in api[api["code"] == 409]["message"])
    ps = r.res.pool_size
    assert ps is not None and int(ps["members"].iloc[-1]) == 2
    # each member is deleted only after its weight-0 update was applied (its job done)
    for name in ["web-3", "web-4", "web-5", "web-6"]:
        applied = [t for t, v in r.changes("member", name, "provisioning_status") if v == "ACTIVE"]
        deleted = float(deletes[(deletes["name"] == name) & (deletes["code"] == 204)]["time"].iloc[0])
        assert applied and deleted >= applied[-1]


def test_retry_budget_exhausted_is_logged_and_retried_later() -> None:
    retry = {"initial": 0.5, "factor": 2.0, "timeout": 0.6}
    r = Run(base(duration=60, policy={"min_members": 6, "retry": retry}))
    sc = r.res.scaling
    assert sc is not None
    gave_up = sc[(sc["action"] == "create") & sc["outcome"].str.startswith("gave up")]
    assert len(gave_up) >= 1 and set(gave_up["code"].astype(int)) == {409}
    outs = sc[sc["action"] == "scale_out"]
    assert len(outs) >= 2  # a later evaluation asked again
    ps = r.res.pool_size
    assert ps is not None and int(ps["members"].iloc[-1]) == 6


# --------------------------------------------------------------------------------------
# Policies, outputs, scenarios
# --------------------------------------------------------------------------------------


def test_step_policy_respects_thresholds_and_cooldown() -> None:
    policy = {
        "policy": "step",
        "metric": "active_connections",
        "target": None,
        "scale_out_threshold": 2.0,
        "scale_in_threshold": 0.5,
        "scale_out_step": 2,
        "scale_out_cooldown": 40,
        "evaluation_periods": 2,
        "min_members": 2,
        "max_members": 10,
    }
    data = base(rate=160, duration=150, service=0.1, policy=policy)
    data["loadbalancer"]["pools"][0]["autoscaling"].pop("target")
    r = Run(data)
    sc = r.res.scaling
    assert sc is not None
    outs = sc[sc["action"] == "scale_out"]
    assert len(outs) >= 2
    assert ((outs["to"] - outs["from"]) == 2).all()
    assert (outs["value"] > 2.0).all()
    assert (outs["time"].diff().dropna() >= 40).all()
    # two consecutive evaluations above the threshold: not before t = 20 s
    assert outs["time"].iloc[0] >= 20


def test_result_files_round_trip_and_slo_verdict(tmp_path: Path) -> None:
    data = base(rate=40, duration=60, policy={"min_members": 3, "slo": {"latency_p95": 0.001, "availability": 0.5}})
    r = Run(data)
    s = r.res.summary
    slo = s["slo"]
    assert slo["met"] is False
    by = {o["metric"]: o for o in slo["objectives"]}
    assert by["latency_p95"]["met"] is False and by["latency_p95"]["value"] > 0.001
    assert by["latency_p95"]["violation_seconds"] > 0
    assert by["availability"]["met"] is True and by["availability"]["value"] == 1.0
    auto = s["autoscaling"]["web"]
    assert auto["members_added"] == 1 and auto["final_members"] == 3
    out = r.res.save(tmp_path / "run")
    for name in ("scaling.csv", "pool_size.csv"):
        assert (out / name).is_file()
    back = RunResult.load(out)
    assert back.scaling is not None and back.pool_size is not None
    assert list(back.scaling.columns) == list(r.res.scaling.columns)
    assert len(back.pool_size) == len(r.res.pool_size)
    assert json.loads((out / "summary.json").read_text())["slo"] == slo
    fig = figure_from_folder(out)
    assert len(fig.axes) == 3
    assert main([str(out), "--figure", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_no_autoscaling_no_extra_files(tmp_path: Path) -> None:
    data = base()
    del data["loadbalancer"]["pools"][0]["autoscaling"]
    sc = m.Scenario.model_validate(data)
    res = summarise(Simulation(sc).run())
    assert res.scaling is None and res.pool_size is None
    assert "autoscaling" not in res.summary and "slo" not in res.summary
    out = res.save(tmp_path / "r")
    assert not (out / "scaling.csv").exists() and not (out / "pool_size.csv").exists()


def test_validation_of_policies() -> None:
    data = base()
    pol = data["loadbalancer"]["pools"][0]["autoscaling"]
    pol["min_members"], pol["max_members"] = 5, 3
    with pytest.raises(ValueError, match="max_members"):
        m.Scenario.model_validate(data)
    data = base()
    data["loadbalancer"]["pools"][0]["autoscaling"]["policy"] = "step"
    with pytest.raises(ValueError, match=r"step policy needs"):
        m.Scenario.model_validate(data)
    data = base(policy={"max_members": 9}, template={"address_range": "10.0.1.0/29"})
    problems = check_scenario(m.Scenario.model_validate(data))
    assert [p for p, _ in problems] == [("loadbalancer", "pools", 0, "autoscaling", "member_template", "address_range")]
    data = base(template={"name_prefix": "web-"})
    problems = check_scenario(m.Scenario.model_validate(data))
    assert any("name_prefix" in p and "web-1" in msg for p, msg in problems)


def test_sweep_varies_policy_parameters(tmp_path: Path) -> None:
    from lbsim.experiments.design import OverrideError
    from lbsim.experiments.sweep import sweep

    sc = load_scenario(SCENARIOS / "oscillating.yaml").model_copy(update={"duration": 600.0, "expect": []})
    res = sweep(
        sc,
        ["loadbalancer.pools.0.autoscaling.scale_in_cooldown=15,300"],
        replications=1,
        jobs=1,
        out=tmp_path / "sweep",
    )
    assert len(res.points) == 2
    rev = {}
    for rec in res.records.values():
        cooldown = rec["scenario"]["loadbalancer"]["pools"][0]["autoscaling"]["scale_in_cooldown"]
        rev[cooldown] = rec["summary"]["autoscaling"]["web"]["reversals"]
    assert rev[15.0] > rev[300.0]
    with pytest.raises(OverrideError, match="scale_in_threshold"):
        sweep(sc, ["loadbalancer.pools.0.autoscaling.scale_in_threshold=0.9"], replications=1, jobs=1)


def _run_file(name: str, **update: Any) -> tuple[Run, m.Scenario]:
    sc = load_scenario(SCENARIOS / name)
    data = copy.deepcopy(sc.model_dump(mode="json"))
    data.update(update)
    return Run(data), sc


def test_oscillating_scenario_flaps_and_a_damped_policy_does_not() -> None:
    r, _sc = _run_file("oscillating.yaml", duration=900, expect=[])
    auto = r.res.summary["autoscaling"]["web"]
    assert auto["reversals"] >= 6
    ps = r.res.pool_size
    assert ps is not None
    late = ps[ps["time"] > 300]["members"]
    assert late.max() - late.min() >= 3  # the count keeps swinging under a constant load
    data = load_scenario(SCENARIOS / "oscillating.yaml").model_dump(mode="json")
    data["duration"] = 900
    data["expect"] = []
    pol = data["loadbalancer"]["pools"][0]["autoscaling"]
    pol.update({"scale_out_cooldown": 120, "scale_in_cooldown": 300, "scale_in_threshold": 0.45})
    damped = Run(data).res.summary["autoscaling"]["web"]
    assert damped["reversals"] == 0 and damped["scale_ins"] == 0


def test_flash_crowd_relief_waits_for_boot_start_and_rise_checks() -> None:
    r, sc = _run_file("flash-crowd.yaml")
    pol = sc.loadbalancer.pools[0].autoscaling
    mon = sc.loadbalancer.pools[0].healthmonitor
    assert pol is not None and mon is not None
    s = r.res.scaling
    ps = r.res.pool_size
    assert s is not None and ps is not None
    first_out = float(s[s["action"] == "scale_out"]["time"].iloc[0])
    assert 300 <= first_out <= 300 + 2 * pol.evaluation_interval
    # relief: a new member serves its first request only once its application answers
    # and rise checks have passed (each was marked DOWN by its first check meanwhile)
    app_start = pol.member_template.app_start
    assert isinstance(app_start, m.Constant)
    served = [rec for rec in r.scaler.members.values() if rec.origin == "scaler" and rec.name in r.starts]
    assert len(served) >= 10
    for rec in served:
        assert rec.app_ready_at is not None and rec.decided is not None
        first = r.starts[rec.name][0]
        assert first >= rec.app_ready_at + (mon.max_retries - 1) * mon.delay
        assert first - rec.decided >= app_start.value + (mon.max_retries - 1) * mon.delay
        up = [t for t, v in r.changes("member", rec.name, "data_plane_state") if v == "UP"]
        assert up and first >= up[0]
        assert "DOWN" in [v for _t, v in r.changes("member", rec.name, "data_plane_state")]
        assert rec.first_traffic is not None and rec.first_traffic >= first
    relief = min(r.starts[rec.name][0] for rec in served)
    assert relief - first_out >= app_start.value + (mon.max_retries - 1) * mon.delay
    assert r.res.summary["slo"]["met"] is False
    assert r.res.passed


def test_scaling_figure_from_frames() -> None:
    ps = pd.DataFrame(
        [(0.0, "web", 2, 2, 2, 0, 0, None, None), (10.0, "web", 3, 2, 3, 0, 0, 1.5, 0.2)],
        columns=["time", "pool", "members", "ready", "desired", "booting", "draining", "metric", "p95"],
    )
    ts = pd.DataFrame({"second": range(20), "ok": [5] * 20, "errors": [0] * 20, "mean_latency": [0.1] * 20})
    fig = scaling_figure(ps, ts, None, slo_p95=0.25, duration=20)
    assert [ax.get_ylabel() for ax in fig.axes] == ["members", "requests / s", "latency [s]"]
