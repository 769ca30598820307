"""Octavia features beyond the core objects (issue 13, part 2): listener allowed_cidrs,
unset, quotas, ... — one behavioural test each that fails without the feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim import load_scenario, run_scenario
from lbsim.haproxy.config import render
from lbsim.scenario.access import address_filter
from lbsim.scenario.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ROOT / "scenarios" / "features"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


# --------------------------------------------------------------------------------------
# allowed_cidrs
# --------------------------------------------------------------------------------------


def test_address_filter() -> None:
    allowed = address_filter(["198.51.100.0/24", "10.1.2.3/32"])
    assert allowed is not None
    assert allowed("198.51.100.77") and allowed(int.from_bytes(bytes([10, 1, 2, 3]), "big"))
    assert not allowed("198.51.101.1") and not allowed("10.1.2.4")
    assert address_filter([]) is None and address_filter(None) is None


def test_denied_clients_never_reach_haproxy() -> None:
    path = FEATURES / "allowed-cidrs.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    log = res.requests
    denied = log[log["outcome"] == "denied"]
    # only the internet source (50 req/s) is denied, and only until the update's flow ends
    assert 0.9 * 50 * 60 < len(denied) < 1.1 * 50 * 61
    assert denied["time"].max() < 62
    assert all(str(c).startswith("192.0.2.") for c in denied["client"].head(100))
    served = log[log["outcome"] == "ok"]
    before = served[served["time"] < 60]
    assert all(str(c).startswith("198.51.100.") for c in before["client"])
    assert any(str(c).startswith("192.0.2.") for c in served[served["time"] > 62]["client"])
    # HAProxy's own counters never saw the denied connections
    stats = res.stats
    at_60 = stats[stats["time"] < 60]["total_connections"].max()
    assert at_60 < 1.15 * 100 * 60
    assert res.summary["errors"] == {"denied": len(denied)}


def test_allowed_cidrs_are_not_in_haproxy_cfg_and_are_validated(tmp_path: Path) -> None:
    base = yaml.safe_load((FEATURES / "allowed-cidrs.yaml").read_text())
    base.pop("events")
    base.pop("expect")
    with_acl = load_scenario(_write(tmp_path, base))
    base["loadbalancer"]["listeners"][0].pop("allowed_cidrs")
    without = load_scenario(_write(tmp_path, base))
    assert render(with_acl) == render(without)  # a security group, not an HAProxy ACL
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["10.0.0.0/33"]
    assert "Value should be IPv4 or IPv6 CIDR format" in _problems(_write(tmp_path, base))
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["2001:db8::/64"]
    out = _problems(_write(tmp_path, base))
    assert "CIDR 2001:db8::/64 IP version incompatible with all VIPs" in out
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["10.0.0.0/8", "10.0.0.0/8"]
    assert load_scenario(_write(tmp_path, base)).loadbalancer.listeners[0].allowed_cidrs == ["10.0.0.0/8"]


# --------------------------------------------------------------------------------------
# unset
# --------------------------------------------------------------------------------------


def test_unset_weight_restores_octavias_default_not_the_old_value() -> None:
    path = FEATURES / "unset-weight.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    log = res.requests

    def share(t0: float, t1: float) -> float:
        window = log[(log["time"] >= t0) & (log["time"] < t1)]
        return float((window["member"] == "web-1").mean())

    assert abs(share(0, 20) - 0.75) < 0.05  # weight 3 of 4
    assert share(25, 60) == 0.0  # drained
    assert abs(share(65, 100) - 0.5) < 0.05  # the default weight 1, not the old 3
    assert res.passed


def test_unset_in_the_control_plane() -> None:
    from lbsim.octavia.controlplane import ControlPlane
    from lbsim.octavia.objects import ObjSpec

    cp = ControlPlane()
    cp.load_active(
        [
            ObjSpec("loadbalancer", "lb"),
            ObjSpec(
                "listener",
                "l",
                {
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "default_pool": "p",
                    "connection_limit": 10,
                    "timeout_client_data": 9,
                },
            ),
            ObjSpec("pool", "p", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
            ObjSpec("healthmonitor", "hm", {"pool": "p", "type": "HTTP", "url_path": "/h", "max_retries_down": 5}),
            ObjSpec(
                "member",
                "m",
                {"pool": "p", "address": "10.0.0.1", "protocol_port": 80, "weight": 7, "monitor_port": 9000},
            ),
        ]
    )

    def update(kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = cp.request("update", kind, name, body)
        assert resp.ok and resp.job is not None, resp.message
        cp.complete(resp.job, True)
        obj = cp.get(kind, name)
        assert obj is not None
        return obj.attrs

    a = update("listener", "l", {"connection_limit": None, "timeout_client_data": None})
    assert a["connection_limit"] == -1 and a["timeout_client_data"] == 50000
    a = update("member", "m", {"weight": None, "monitor_port": None})
    assert a["weight"] == 1 and a["monitor_port"] is None
    a = update("healthmonitor", "hm", {"url_path": None, "max_retries_down": None})
    assert a["url_path"] == "/" and a["max_retries_down"] == 3


# --------------------------------------------------------------------------------------
# quotas
# --------------------------------------------------------------------------------------


def test_member_quota_stops_an_autoscaler_with_octavias_403() -> None:
    path = FEATURES / "quota-autoscaler.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent)
    calls = res.api_calls
    refused = calls[calls["code"] == 403]
    assert len(refused) > 0
    assert set(refused["message"]) == {"Quota has been met for resources: Member"}
    assert set(refused["object_type"]) == {"member"}
    scaling = res.summary["autoscaling"]["web"]
    assert scaling["peak_members"] == 5 == scaling["final_members"]  # the scaler allows 14
    assert res.scaling is not None and (res.scaling["code"].astype(str).str.startswith("403")).any()


def test_quota_checks_in_the_control_plane() -> None:
    from lbsim.octavia.controlplane import ControlPlane
    from lbsim.octavia.objects import ObjSpec

    cp = ControlPlane()
    cp.quotas = {"pool": 1, "l7policy": 0, "loadbalancer": 1}
    tree = [ObjSpec("loadbalancer", "lb"), ObjSpec("pool", "a", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})]
    two = [*tree, ObjSpec("pool", "b", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})]
    r = cp.create_loadbalancer_tree(two)  # the graph create counts every pool it makes
    assert (r.code, r.message) == (403, "Quota has been met for resources: Pool")
    r = cp.create_loadbalancer_tree(tree)
    assert r.code == 201 and r.job is not None
    cp.complete(r.job, True)
    r = cp.request("create", "pool", "c", {"loadbalancer": "lb", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    assert (r.code, r.message) == (403, "Quota has been met for resources: Pool")
    r = cp.request("create", "loadbalancer", "lb2", {})
    assert (r.code, r.message) == (403, "Quota has been met for resources: Load Balancer")
    # a delete frees the quota when its flow has ended
    r = cp.request("delete", "pool", "a")
    assert r.job is not None
    assert cp.request("create", "pool", "c", {"loadbalancer": "lb", "protocol": "HTTP"}).code == 403
    cp.complete(r.job, True)
    r = cp.request("create", "pool", "c", {"loadbalancer": "lb", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    assert r.code == 201


# --------------------------------------------------------------------------------------
# TLS cost
# --------------------------------------------------------------------------------------


def _tls_scenario(protocol: str, rate: float, reuse: float, full: float, resumed: float, pool_tls: bool = False) -> Any:
    from lbsim.scenario import model as m

    listener: dict[str, Any] = {"name": "l", "protocol": protocol, "protocol_port": 443, "default_pool": "p"}
    if protocol == "TERMINATED_HTTPS":
        listener["default_tls_container_ref"] = "https://barbican.example/v1/containers/c"
    return m.Scenario.model_validate(
        {
            "name": "tls",
            "seed": 4,
            "duration": 400,
            "warmup": 20,
            "loadbalancer": {
                "name": "lb",
                "flavor": {
                    "vcpus": 1,
                    "requests_per_second_per_vcpu": 1e6,
                    "tls": {
                        "full_handshake": full,
                        "resumed_handshake": resumed,
                        "per_byte": 0.0,
                        "backend_handshake": 0.0005,
                    },
                },
                "listeners": [listener],
                "pools": [
                    {
                        "name": "p",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "tls_enabled": pool_tls,
                        "members": [
                            {
                                "name": "m1",
                                "address": "10.0.0.1",
                                "protocol_port": 80,
                                "concurrency": 1000,
                                "service_time": {"dist": "constant", "value": 0.001},
                            }
                        ],
                    }
                ],
            },
            "traffic": [{"listener": "l", "arrival": {"process": "poisson", "rate": rate}, "tls_session_reuse": reuse}],
        }
    )


def _mean_latency_and_utilisation(sc: Any) -> tuple[float, float]:
    from lbsim.results.folder import summarise
    from lbsim.sim.engine import simulate

    raw = simulate(sc)
    res = summarise(raw)
    return float(res.summary["latency"]["mean"]), raw.dp.cpu_time / sc.duration


def test_tls_handshakes_queue_like_mg1() -> None:
    """Full (2 ms) and resumed (0.5 ms) handshakes, half each, on one vCPU at 400/s: the
    amphora CPU is an M/G/1 queue; mean latency = E[S] + Pollaczek-Khinchine wait +
    the member's 1 ms, and utilisation = lambda E[S]."""
    lam, base = 400.0, 1e-6
    s1, s2 = 0.002 + base, 0.0005 + base
    es, es2 = (s1 + s2) / 2, (s1 * s1 + s2 * s2) / 2
    rho = lam * es
    wq = lam * es2 / (2 * (1 - rho))
    mean, util = _mean_latency_and_utilisation(_tls_scenario("TERMINATED_HTTPS", lam, 0.5, 0.002, 0.0005))
    assert abs(mean - (es + wq + 0.001)) / (es + wq + 0.001) < 0.04, (mean, es + wq + 0.001)
    assert abs(util - rho) < 0.02, (util, rho)


def test_full_handshakes_queue_like_md1_and_http_costs_nothing() -> None:
    lam, s = 250.0, 0.002 + 1e-6
    rho = lam * s
    wq = rho * s / (2 * (1 - rho))
    mean, util = _mean_latency_and_utilisation(_tls_scenario("TERMINATED_HTTPS", lam, 0.0, 0.002, 0.0005))
    assert abs(mean - (s + wq + 0.001)) / (s + wq + 0.001) < 0.04, (mean, s + wq + 0.001)
    assert abs(util - rho) < 0.02
    plain, plain_util = _mean_latency_and_utilisation(_tls_scenario("HTTP", lam, 0.0, 0.002, 0.0005))
    assert abs(plain - 0.001) < 0.0001 and plain_util < 0.001
    # re-encryption to a tls_enabled pool charges the backend handshake on an HTTP listener too
    reenc, reenc_util = _mean_latency_and_utilisation(_tls_scenario("HTTP", lam, 0.0, 0.002, 0.0005, pool_tls=True))
    assert abs(reenc_util - lam * 0.0005) < 0.01 and reenc > plain + 0.0004


# --------------------------------------------------------------------------------------
# UDP through keepalived/LVS
# --------------------------------------------------------------------------------------


def test_udp_listener_at_its_limit_never_goes_degraded(tmp_path: Path) -> None:
    path = FEATURES / "udp-no-full.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent)
    t = res.transitions
    listener = t[(t["object_type"] == "listener") & (t["field"] == "operating_status")]
    assert set(listener["new"]) == {"ONLINE"}
    assert res.passed
    # the same load on a TCP listener with the same limit is FULL → DEGRADED (HAProxy)
    data = yaml.safe_load(path.read_text())
    data["loadbalancer"]["listeners"][0]["protocol"] = "TCP"
    data["loadbalancer"]["pools"][0]["protocol"] = "TCP"
    data["expect"] = []
    tcp = run_scenario(load_scenario(_write(tmp_path, data)), base_dir=tmp_path).transitions
    tcp_listener = tcp[(tcp["object_type"] == "listener") & (tcp["field"] == "operating_status")]
    assert "DEGRADED" in set(tcp_listener["new"])


# --------------------------------------------------------------------------------------
# monitor_address / monitor_port
# --------------------------------------------------------------------------------------


def test_monitor_endpoint_faults_alone_or_shared_fate() -> None:
    path = FEATURES / "monitor-port.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    assert res.passed  # web-1 and web-3 ERROR, web-2 ONLINE while it refuses traffic
    log = res.requests
    after = log[log["time"] > 20.5]
    ok = after[after["outcome"] == "ok"]
    # web-1 (own monitor port) still served until HAProxy took it DOWN
    assert (ok["member"] == "web-1").sum() > 0
    # web-3 has no monitor endpoint of its own: its "monitor" fault is a traffic fault too
    assert (ok["member"] == "web-3").sum() == 0
    # web-2's traffic port fails while its checks pass: requests reaching it fail
    assert (ok["member"] == "web-2").sum() == 0 and (after["member"] == "web-2").sum() > 0


@pytest.mark.slow
def test_flavor_planning_finds_the_vcpus_a_handshake_rate_needs(tmp_path: Path) -> None:
    """``lbsim plan --vary flavor`` on the TLS scenario: one vCPU misses mean < 3 ms
    (queueing on the handshakes), two meet it."""
    import pandas as pd

    from lbsim.cli.main import main

    data = yaml.safe_load((FEATURES / "tls-handshakes.yaml").read_text())
    data["duration"] = 60
    path = _write(tmp_path, data)
    out = tmp_path / "plan"
    rc = main(
        ["plan", str(path), "--vary", "flavor", "--slo", "mean<3ms", "-r", "2", "--jobs", "1", "--out", str(out), "-q"]
    )
    assert rc == 0
    plan = pd.read_csv(out / "plan.csv").set_index("vcpus")
    assert not bool(plan.loc[1, "all_met"]) and bool(plan.loc[2, "all_met"])
    assert plan.loc[1, "latency_mean_mean"] > 1.5 * plan.loc[2, "latency_mean_mean"]


# --------------------------------------------------------------------------------------
# timeout_client_data
# --------------------------------------------------------------------------------------


def test_idle_clients_are_cut_at_timeout_client_data() -> None:
    path = FEATURES / "idle-clients.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    log = res.requests
    cut = log[log["outcome"] == "408"]
    assert len(cut) > 100
    assert ((cut["latency"] - 5.0).abs() < 1e-6).all()  # exactly timeout_client_data (5,000 ms)
    assert cut["time"].max() < 61  # after the update (50,000 ms) nobody idles that long
    ok = log[log["outcome"] == "ok"]
    before = ok[(ok["time"] > 5) & (ok["time"] < 60)]["latency"].median()
    after = ok[ok["time"] > 80]["latency"].median()
    assert before < 0.05 and after > 1.0  # silent clients now fill the 50 slots
    assert res.passed  # ONLINE at 50 s, DEGRADED (FULL) at 110 s


# --------------------------------------------------------------------------------------
# insert_headers
# --------------------------------------------------------------------------------------


def test_insert_headers_rendered_and_validated(tmp_path: Path) -> None:
    sc = load_scenario(ROOT / "scenarios" / "l7" / "host-path-routing.yaml")
    text = render(sc, ids="name")
    web = text[text.index("\nbackend web:http") :].split("\n\n")[0]
    assert "    option forwardfor" in web and "    http-request set-header X-Forwarded-Proto http" in web
    assert "X-Forwarded-Port" not in web
    data = yaml.safe_load((FEATURES / "allowed-cidrs.yaml").read_text())
    data.pop("events")
    li = data["loadbalancer"]["listeners"][0]
    li["insert_headers"] = {"X-SSL-Client-DN": "true"}
    assert "['X-SSL-Client-DN'] is not a valid option for HTTP protocol listener." in _problems(_write(tmp_path, data))
    li["insert_headers"] = {"X-Forwarded-Host": "true"}
    assert "['X-Forwarded-Host'] is not a valid option for insert_headers" in _problems(_write(tmp_path, data))
    li["insert_headers"] = {"X-Forwarded-For": "true"}
    li["protocol"] = "TCP"
    data["loadbalancer"]["pools"][0]["protocol"] = "TCP"
    assert "insert-headers is not a valid option for a TCP protocol listener." in _problems(_write(tmp_path, data))


# --------------------------------------------------------------------------------------
# VIP QoS (vip_qos_policy_id)
# --------------------------------------------------------------------------------------


def _qos_scenario(policy: str | None, rate: float) -> Any:
    path = FEATURES / "vip-qos.yaml"
    sc = load_scenario(path)
    lb = sc.loadbalancer.model_copy(update={"vip_qos_policy_id": policy})
    src = sc.traffic[0].model_copy(update={"arrival": sc.traffic[0].arrival.model_copy(update={"rate": rate})})
    return sc.model_copy(update={"loadbalancer": lb, "traffic": [src], "warmup": 0.0})


def test_vip_qos_caps_throughput_at_the_limit_with_latency_and_drops() -> None:
    # 150 responses/s of 10,000 bytes (12,000 kbit/s) through an 8,000 kbit/s VIP limit
    limited = run_scenario(_qos_scenario("limit-8m", 150.0)).summary
    free = run_scenario(_qos_scenario(None, 150.0)).summary
    limit_rps = 8000 * 1000 / 8 / 10000  # 100 responses per second
    assert abs(limited["throughput"] - limit_rps) / limit_rps < 0.03
    assert abs(free["throughput"] - 150.0) / 150.0 < 0.05
    assert limited["latency"]["mean"] > 20 * free["latency"]["mean"]
    assert limited["errors"].get("qos", 0) > 0 and "qos" not in free["errors"]
    # under the limit the policy costs almost nothing (a burst absorbs Poisson bunching)
    under = run_scenario(_qos_scenario("limit-8m", 50.0)).summary
    assert "qos" not in under["errors"] and under["latency"]["mean"] < 2 * free["latency"]["mean"]


def test_vip_qos_policy_must_exist(tmp_path: Path) -> None:
    data = yaml.safe_load((FEATURES / "vip-qos.yaml").read_text(encoding="utf-8"))
    data["loadbalancer"]["vip_qos_policy_id"] = "nope"
    assert "Invalid input for field/attribute vip_qos_policy_id. Value: 'nope' not found." in _problems(
        _write(tmp_path, data)
    )


# --------------------------------------------------------------------------------------
# HTTP monitor options: members answer per path (health_paths)
# --------------------------------------------------------------------------------------


def test_monitor_sees_the_path_it_checks(tmp_path: Path) -> None:
    path = FEATURES / "health-paths.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    assert res.passed, res.expectations  # api-1 ONLINE; web members DOWN until url_path is fixed
    log = res.requests
    # api-1's /healthz is fine while / fails: it keeps its half of the api traffic, all 500s
    assert 0.4 * 20 * 120 < (log["outcome"] == "500").sum() < 0.6 * 20 * 120
    # the wrong path (404) took every web member down: 503 until shortly after the fix at 60 s
    no_server = log[log["outcome"] == "503"]
    assert len(no_server) > 0.8 * 20 * 50 and no_server["time"].max() < 75
    # without the per-path answers the monitors see what users see: api-1 goes down
    # instead, and the web members answer /health like / (no 503 at all)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for pool in data["loadbalancer"]["pools"]:
        for mem in pool["members"]:
            del mem["health_paths"]
    plain = run_scenario(load_scenario(_write(tmp_path, data)), log_requests=True).requests
    assert (plain["outcome"] == "503").sum() == 0
    assert (plain["outcome"] == "500").sum() < 0.1 * 20 * 120


def test_health_paths_are_validated(tmp_path: Path) -> None:
    data = yaml.safe_load((FEATURES / "health-paths.yaml").read_text(encoding="utf-8"))
    members = data["loadbalancer"]["pools"][0]["members"]
    members[0]["health_paths"] = {"healthz": "healthy"}
    members[1]["health_paths"] = {"FETCH /healthz": 200}
    text = _problems(_write(tmp_path, data))
    assert "expected '/path' or 'METHOD /path'" in text and "the method must be one of" in text
    members[0]["health_paths"] = {"/healthz": 700}
    members[1]["health_paths"] = {"/healthz": "dead"}
    text = _problems(_write(tmp_path, data))
    assert "HTTP status 100-599" in text and "health_paths" in text


# --------------------------------------------------------------------------------------
# Availability zones: placement and AZ outages
# --------------------------------------------------------------------------------------


def _az_run(tmp_path: Path, topology: str, zones: Any) -> Any:
    data = yaml.safe_load((FEATURES / "az-outage.yaml").read_text(encoding="utf-8"))
    data["loadbalancer"]["topology"] = topology
    data["loadbalancer"]["availability_zone"] = zones
    data["expect"] = []
    return run_scenario(load_scenario(_write(tmp_path, data)), log_requests=True)


def _zones_of(res: Any) -> dict[str, str]:
    tr = res.transitions
    rows = tr[(tr["object_type"] == "amphora") & (tr["field"] == "availability_zone")]
    return dict(zip(rows["name"], rows["new"], strict=True))


def test_az_outage_costs_active_standby_only_the_vrrp_window(tmp_path: Path) -> None:
    res = _az_run(tmp_path, "ACTIVE_STANDBY", ["az1", "az2"])
    zones = _zones_of(res)
    assert zones["amphora-1"] == "az1" and zones["amphora-2"] == "az2"  # MASTER and BACKUP apart
    assert zones["amphora-3"] == "az2"  # the replacement cannot boot in the failed az1
    failed = res.requests[res.requests["outcome"] != "ok"]
    # keepalived's takeover: 3 adverts + (256 - 90) / 256 of one (1 s adverts) = 3.65 s at 50/s
    assert 0.8 * 50 * 3.65 < len(failed) < 1.2 * 50 * 3.65
    assert failed["time"].min() >= 60 and failed["time"].max() < 64
    assert list(res.incidents["kind"])[:1] == ["az_outage"]


def test_az_outage_sends_single_through_failover(tmp_path: Path) -> None:
    # a SINGLE load balancer in az1: the VIP is gone until the failover, which cannot boot
    # its replacement while az1 is down (the amphora goes to ERROR, every request fails)
    alone = _az_run(tmp_path, "SINGLE", "az1")
    failed = alone.requests[alone.requests["outcome"] != "ok"]
    assert failed["time"].min() >= 60 and len(failed) > 0.9 * 50 * 180
    tr = alone.transitions
    assert ((tr["name"] == "amphora-1") & (tr["new"] == "ERROR")).any()
    # spread over az1 and az2: the failover boots the replacement in az2 and serving resumes
    spread = _az_run(tmp_path, "SINGLE", ["az1", "az2"])
    failed = spread.requests[spread.requests["outcome"] != "ok"]
    assert _zones_of(spread) == {"amphora-1": "az1", "amphora-2": "az2"}
    # down from 60 s until the failover ends (heartbeat_timeout and the amphora boot)
    assert failed["time"].min() >= 60 and 150 < failed["time"].max() < 200
    ok_late = spread.requests[(spread.requests["outcome"] == "ok") & (spread.requests["time"] > 200)]
    assert len(ok_late) > 0.9 * 50 * 40


def test_availability_zones_are_validated(tmp_path: Path) -> None:
    data = yaml.safe_load((FEATURES / "az-outage.yaml").read_text(encoding="utf-8"))
    data["loadbalancer"]["availability_zone"] = ["az1", "az9"]
    data["events"][0]["availability_zone"] = "az7"
    text = _problems(_write(tmp_path, data))
    assert "Invalid availability zone" in text and "'az9'" in text and "az7" in text


# --------------------------------------------------------------------------------------
# keepalived's check timing for UDP pools
# --------------------------------------------------------------------------------------


def test_udp_member_goes_down_and_up_on_keepalived_timing() -> None:
    path = FEATURES / "udp-keepalived-checks.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent)
    assert res.passed
    tr = res.transitions
    rows = tr[(tr["name"] == "r1") & (tr["field"] == "data_plane_state")]
    down = float(rows[rows["new"] == "DOWN"]["time"].iloc[0])
    up = float(rows[(rows["new"] == "UP") & (rows["time"] > 0)]["time"].iloc[0])
    # checks every 5 s; the fault at 32 s: retry + 1 = 3 failures (35, 40, 45) take r1 out,
    # where HAProxy's fall 2 would at 40 s; one passing check (95) brings it back, where
    # HAProxy's rise 3 would wait until 105 s. keepalived reports only UP and DOWN.
    assert down == pytest.approx(45.0, abs=0.5) and up == pytest.approx(95.0, abs=0.5)
    assert set(rows["new"]) <= {"UP", "DOWN"}


# --------------------------------------------------------------------------------------
# UDP session persistence (LVS persistence_timeout / persistence_granularity)
# --------------------------------------------------------------------------------------


def _requests_per_member(tmp_path: Path, sp: dict[str, Any]) -> dict[str, int]:
    """Run udp-persistence.yaml with the pool's session_persistence replaced by ``sp``."""
    data = yaml.safe_load((FEATURES / "udp-persistence.yaml").read_text())
    data["loadbalancer"]["pools"][0]["session_persistence"] = sp
    res = run_scenario(load_scenario(_write(tmp_path, data)), base_dir=tmp_path)
    return {str(n): int(c) for n, c in zip(res.members["name"], res.members["requests"], strict=True)}


def test_udp_persistence_groups_clients_by_granularity_until_idle_timeout(tmp_path: Path) -> None:
    from lbsim.sim.compiled import scenario_coverage

    path = FEATURES / "udp-persistence.yaml"
    sc = load_scenario(path)
    res = run_scenario(sc, base_dir=path.parent)
    got = {str(n): int(c) for n, c in zip(res.members["name"], res.members["requests"], strict=True)}
    total = sum(got.values())
    # 255.255.255.0: the 40 office clients (50 req/s) are one template → all on r1; the
    # branch (0.05 req/s, gaps mostly longer than the 15 s timeout) is balanced anew after
    # each expiry, so round robin moves it over r2 and r3
    assert got["r1"] > 0.99 * total and got["r2"] > 0 and got["r3"] > 0
    # the default timeout (360 s) keeps the branch's template alive: r3 never sees a packet
    kept = _requests_per_member(tmp_path, {"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"})
    assert kept["r3"] == 0 and kept["r2"] > 0
    # the default granularity (/32): every office client is its own template → spread
    spread = _requests_per_member(tmp_path, {"type": "SOURCE_IP", "persistence_timeout": 15})
    assert min(spread.values()) > 0.25 * sum(spread.values())
    # the compiled data plane has no persistence: it refuses such a run
    assert scenario_coverage(sc) == "pool resolvers has session persistence"
