"""Failures and amphorae: failover timing, topologies, flapping, stochastic failures, incidents.

Rules: octavia-semantics.md §1.8 (stale amphora detection) and §5 (failover flow,
keepalived), haproxy-semantics.md (health counter), and the contract's incidents.csv.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from lbsim import load_scenario, parse_scenario, run_scenario
from lbsim.results.folder import RunResult

ROOT = Path(__file__).resolve().parents[1]
FAILURES = ROOT / "scenarios" / "failures"


def _drill(topology: str, *, boot: float = 60.0, hb: float = 10.0, hci: float = 3.0, timeout: float = 60.0):
    role = "STANDALONE" if topology == "SINGLE" else "MASTER"
    text = f"""
version: 1
name: drill
seed: 4
duration: 500
octavia:
  heartbeat_interval: {hb}
  heartbeat_timeout: {timeout}
  health_check_interval: {hci}
  workers: {{amphora_boot: {{dist: constant, value: {boot}}}, update: {{dist: constant, value: 1}}}}
loadbalancer:
  name: lb1
  topology: {topology}
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: HTTP, delay: 5, timeout: 3, max_retries: 3}}
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 8, service_time: {{dist: exponential, mean: 0.01}}}}
        - {{name: b, address: 10.0.0.2, protocol_port: 80, concurrency: 8, service_time: {{dist: exponential, mean: 0.01}}}}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: 100}}}}
events:
  - {{at: 200, amphora: {role}, behaviour: fail}}
"""
    return parse_scenario(text, "drill.yaml")


def _prov_changes(res: RunResult, kind: str, name: str) -> list[tuple[float, str]]:
    tr = res.transitions
    rows = tr[(tr.object_type == kind) & (tr.name == name) & (tr.field == "provisioning_status")]
    return [(float(r.time), str(r.new)) for r in rows.itertuples()]


@pytest.mark.parametrize("topology", ["SINGLE", "ACTIVE_STANDBY"])
@pytest.mark.parametrize(("hb", "hci", "timeout", "boot"), [(10, 3, 60, 60), (5, 2, 30, 120)])
def test_failover_timing_follows_the_health_manager(
    topology: str, hb: float, hci: float, timeout: float, boot: float
) -> None:
    res = run_scenario(_drill(topology, boot=boot, hb=hb, hci=hci, timeout=timeout))
    assert res.stats is not None
    failed_amp = "amphora-1"
    beats = res.stats[(res.stats.amphora == failed_amp) & (res.stats.time <= 200)]["time"]
    last_beat = float(beats.max())
    lb = _prov_changes(res, "loadbalancer", "lb1")
    pending = [t for t, v in lb if v == "PENDING_UPDATE"]
    assert len(pending) == 1
    assert last_beat + timeout <= pending[0] <= last_beat + timeout + hci + 1e-9
    active_again = [t for t, v in lb if v == "ACTIVE" and t > pending[0]]
    # the flow builds the replacement (boot) and pushes the configuration (1 s)
    assert active_again[0] == pytest.approx(pending[0] + boot + 1)
    amp = _prov_changes(res, "amphora", failed_amp)
    assert ("PENDING_DELETE" in [v for _, v in amp]) and amp[-1][1] == "DELETED"


def test_single_loses_every_request_during_the_outage() -> None:
    res = run_scenario(_drill("SINGLE"), log_requests=True)
    rows = res.requests
    assert rows is not None
    inc = res.incidents.iloc[0]
    recovered = float(inc.recovered_time)
    outage = rows[(rows.time > 200.001) & (rows.time < recovered - 1.001)]
    assert len(outage) > 1000
    assert set(outage.outcome) == {"connect"}
    after = rows[rows.time > recovered + 1]
    assert set(after.outcome) == {"ok"}
    assert int(inc.requests_failed) >= len(outage)


def test_active_standby_loses_only_the_vrrp_switch_over_window() -> None:
    res = run_scenario(_drill("ACTIVE_STANDBY"), log_requests=True)
    rows = res.requests
    assert rows is not None
    lost = rows[rows.outcome == "connect"]
    assert len(lost) > 0
    # keepalived: 3 missed adverts (1 s) plus the backup's skew (256 - 90) / 256 s
    window = 3 + 166 / 256
    assert lost.time.min() >= 200 - 0.05  # in-flight requests of the dead master are lost
    assert lost.time.max() <= 200 + window + 1e-6
    assert len(lost) < 100 * (window + 1)
    late = rows[rows.time > 200 + window + 0.01]
    assert set(late.outcome) == {"ok"}
    # Octavia still replaces the dead amphora in the background
    lb = _prov_changes(res, "loadbalancer", "lb1")
    assert [v for _, v in lb].count("PENDING_UPDATE") == 1
    inc = res.incidents.iloc[0]
    assert inc.detected_time == pytest.approx(200 + window)
    assert inc.api_visible_time > 250


def _flap(period: float) -> RunResult:
    text = f"""
version: 1
name: flap
duration: 300
loadbalancer:
  name: lb1
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: TCP, delay: 2, timeout: 1, max_retries: 2, max_retries_down: 3}}
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80}}
        - {{name: b, address: 10.0.0.2, protocol_port: 80}}
events:
  - {{at: 50, member: a, behaviour: flap, fault: refuse, period: {period}, until: 250}}
"""
    return run_scenario(parse_scenario(text, "flap.yaml"))


def test_flapping_faster_than_the_fall_window_never_marks_down() -> None:
    # refuse 2 s of every 4 s: at most one failing check (delay 2) in a row < fall 3
    tl = _flap(4).timeline
    states = {c.new for c in tl.changes("member", "a", "data_plane_state")}
    assert "DOWN" not in states
    assert any(s.startswith("UP ") for s in states)  # it was failing checks all the same
    assert tl.value_at("member", "a", "operating_status", 299) == "ONLINE"


def test_flapping_slower_than_the_fall_window_goes_down_each_cycle() -> None:
    tl = _flap(30).timeline  # 15 s refusing: more than 3 checks
    downs = [c.time for c in tl.changes("member", "a", "data_plane_state") if c.new == "DOWN"]
    assert len(downs) >= 6  # one per cycle of 30 s over 200 s
    assert {c.new for c in tl.changes("member", "a", "operating_status")} >= {"ERROR", "ONLINE"}


def test_stochastic_failures_match_mttf_over_mttf_plus_mttr() -> None:
    mttf, mttr, duration = 300.0, 100.0, 400_000.0
    text = f"""
version: 1
name: soak
seed: 77
duration: {duration}
loadbalancer:
  name: lb1
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: HTTP, delay: 10, timeout: 5, max_retries: 2}}
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80}}
failures:
  - {{members: [a], mttf: {{dist: exponential, mean: {mttf}}}, mttr: {{dist: exponential, mean: {mttr}}}}}
"""
    res = run_scenario(parse_scenario(text, "soak.yaml"))
    inc = res.incidents
    assert len(inc) > 500
    ends = inc.fault_end_time.fillna(duration)
    assert (inc.fault_time.iloc[1:].to_numpy() >= ends.iloc[:-1].to_numpy()).all()  # no overlap
    availability = 1 - float((ends - inc.fault_time).sum()) / duration
    assert availability == pytest.approx(mttf / (mttf + mttr), abs=0.015)
    # what HAProxy saw lags the faults by detection and recovery times, but agrees closely
    up_time, last_t, last_v = 0.0, 0.0, "UP"
    for c in res.timeline.changes("member", "a", "data_plane_state"):
        if last_v.startswith("UP"):
            up_time += c.time - last_t
        last_t, last_v = c.time, c.new
    if last_v.startswith("UP"):
        up_time += duration - last_t
    assert up_time / duration == pytest.approx(availability, abs=0.05)


def _all_fault_kinds() -> list[RunResult]:
    members = "\n".join(
        f"        - {{name: m{i}, address: 10.0.0.{i + 1}, protocol_port: 80, concurrency: 4, "
        f"service_time: {{dist: exponential, mean: 0.02}}}}"
        for i in range(8)
    )
    text = f"""
version: 1
name: kinds
seed: 8
duration: 400
loadbalancer:
  name: lb1
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: LEAST_CONNECTIONS
      healthmonitor: {{type: HTTP, delay: 3, timeout: 2, max_retries: 2}}
      members:
{members}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: 100}}}}
events:
  - {{at: 20, member: m0, behaviour: refuse}}
  - {{at: 80, member: m0, behaviour: healthy}}
  - {{at: 20, member: m1, behaviour: hang}}
  - {{at: 80, member: m1, behaviour: healthy}}
  - {{at: 20, member: m2, behaviour: error, status: 503}}
  - {{at: 80, member: m2, behaviour: healthy}}
  - {{at: 20, member: m3, behaviour: slow, factor: 5}}
  - {{at: 80, member: m3, behaviour: healthy}}
  - {{at: 100, member: m4, behaviour: flap, period: 40, until: 200}}
  - {{at: 100, member: m5, behaviour: partial, fraction: 0.5, fault: error}}
  - {{at: 200, member: m5, behaviour: healthy}}
  - {{at: 100, member: m6, behaviour: refuse, port: monitor}}
  - {{at: 200, member: m6, behaviour: healthy}}
  - {{at: 150, network: partition, members: [m7]}}
  - {{at: 220, network: heal, members: [m7]}}
  - {{at: 300, amphora: STANDALONE, behaviour: fail}}
"""
    return [run_scenario(parse_scenario(text, "kinds.yaml"))] + [
        run_scenario(load_scenario(p), base_dir=p.parent) for p in sorted(FAILURES.glob("*.yaml")) if "day" not in p.name
    ]


def test_every_fault_kind_has_a_consistent_incident_row() -> None:
    kinds = set()
    for res in _all_fault_kinds():
        inc = res.incidents
        for r in inc.itertuples():
            kinds.add(r.kind)
            times = [r.fault_time, r.detected_time, r.api_visible_time, r.recovered_time]
            known = [t for t in times if not (t is None or (isinstance(t, float) and math.isnan(t)))]
            assert known == sorted(known), r
            assert r.requests_failed >= 0 and r.requests_slowed >= 0
    assert kinds >= {
        "member_refuse",
        "member_hang",
        "member_error",
        "member_slow",
        "member_flap",
        "member_partial",
        "member_refuse_monitor",
        "partition",
        "amphora_fail",
    }


def test_fault_kinds_cost_what_they_should() -> None:
    res = _all_fault_kinds()[0]
    inc = res.incidents.set_index("kind")
    # a hung member holds requests until timeout_member_data: those fail with 504
    assert inc.loc["member_hang", "requests_failed"] > 0
    # an erroring member's answers fail until HAProxy takes it out
    assert inc.loc["member_error", "requests_failed"] > 0
    assert inc.loc["member_slow", "requests_slowed"] > 0
    # refused connections are redispatched: slowed (retried), not failed
    assert inc.loc["member_refuse", "requests_failed"] == 0
    assert inc.loc["member_refuse", "requests_slowed"] > 0
    # a failing health endpoint takes the member out although its service works
    assert not pd.isna(inc.loc["member_refuse_monitor", "detected_time"])
    assert inc.loc["member_refuse_monitor", "requests_failed"] == 0
    # half of the partial member's requests fail with its status until it is healed
    assert inc.loc["member_partial", "requests_failed"] > 0
    assert inc.loc["amphora_fail", "requests_failed"] > 0


def test_partial_failure_fails_its_fraction_of_requests() -> None:
    text = """
version: 1
name: partial
duration: 200
loadbalancer:
  name: lb1
  listeners: [{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      members:
        - {name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 8}
traffic:
  - {listener: http, arrival: {process: poisson, rate: 200}}
events:
  - {at: 0, member: a, behaviour: partial, fraction: 0.3, fault: error, status: 502}
"""
    res = run_scenario(parse_scenario(text, "p.yaml"))
    s = res.summary
    assert set(s["errors"]) == {"502"}
    assert s["errors"]["502"] / s["requests"] == pytest.approx(0.3, abs=0.01)


def test_monitor_port_and_traffic_port_fail_independently() -> None:
    def run(port: str) -> RunResult:
        text = f"""
version: 1
name: ports
duration: 120
loadbalancer:
  name: lb1
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: HTTP, delay: 2, timeout: 1, max_retries: 2}}
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80, monitor_port: 8081}}
        - {{name: b, address: 10.0.0.2, protocol_port: 80}}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: 50}}}}
events:
  - {{at: 30, member: a, behaviour: refuse, port: {port}}}
"""
        return run_scenario(parse_scenario(text, "ports.yaml"), log_requests=True)

    health_only = run("monitor")
    assert health_only.timeline.value_at("member", "a", "data_plane_state", 110) == "DOWN"
    rows = health_only.requests
    assert rows is not None
    assert "a" not in set(rows[rows.time > 60].member)  # taken out although it serves fine
    traffic_only = run("traffic")
    assert traffic_only.timeline.value_at("member", "a", "data_plane_state", 110) == "UP"
    rows = traffic_only.requests
    assert rows is not None
    assert "a" not in set(rows[rows.time > 31].member)  # refused, redispatched to b
    assert set(rows.outcome) == {"ok"}


def test_amphora_flavor_adds_latency_under_load_and_drops_past_its_limit() -> None:
    def run(rate: float, max_conn: str = "") -> RunResult:
        text = f"""
version: 1
name: flavor
duration: 60
warmup: 10
loadbalancer:
  name: lb1
  flavor: {{vcpus: 1, requests_per_second_per_vcpu: 1000{max_conn}}}
  listeners: [{{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 1000, service_time: {{dist: constant, value: 0.01}}}}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: {rate}}}}}
"""
        return run_scenario(parse_scenario(text, "flavor.yaml"))

    light = run(100).summary["latency"]["mean"]
    heavy = run(950).summary["latency"]["mean"]
    # the CPU is an M/D/1 queue with service 1 ms: at utilisation 0.95 the mean wait is
    # rho / (2 mu (1 - rho)) = 9.5 ms, at 0.1 it is about 0.06 ms
    assert light == pytest.approx(0.01 + 0.001 + 0.1 / (2 * 1000 * 0.9), rel=0.05)
    assert heavy - 0.011 == pytest.approx(0.95 / (2 * 1000 * 0.05), rel=0.25)
    over = run(1500, ", max_connections: 200").summary
    assert over["errors"].get("connect", 0) > 0.2 * over["requests"]


def test_listener_stats_accumulate_heartbeat_deltas() -> None:
    res = run_scenario(_drill("SINGLE"))
    st = res.stats
    assert st is not None
    before = st[(st.amphora == "amphora-1")]
    # cumulative counters never decrease; each heartbeat adds what happened since
    assert before.total_connections.is_monotonic_increasing
    assert before.bytes_in.is_monotonic_increasing
    last = before.iloc[-1]
    assert last.bytes_in == last.total_connections * 300  # default request_bytes
    new_amp = st[st.amphora != "amphora-1"]
    assert len(new_amp) > 0 and new_amp.total_connections.iloc[0] < last.total_connections


def test_failover_threshold_stops_failovers() -> None:
    """§1.8: when the number of stale amphorae reaches failover_threshold, they are set
    FAILOVER_STOPPED and nothing fails over (the load balancer stays ACTIVE)."""
    sc = _drill("SINGLE")
    sc = sc.model_copy(update={"octavia": sc.octavia.model_copy(update={"failover_threshold": 1})})
    res = run_scenario(sc)
    amp = _prov_changes(res, "amphora", "amphora-1")
    assert [v for _, v in amp][-1] == "FAILOVER_STOPPED"
    assert amp[-1][0] == pytest.approx(260, abs=13)  # stale after heartbeat_timeout + scan
    lb = _prov_changes(res, "loadbalancer", "lb1")
    assert "PENDING_UPDATE" not in [v for _, v in lb]
    assert set(res.summary["errors"]) == {"connect"}  # the VIP stays down
