"""The data plane against HAProxy's documented and measured behaviour.

Retries and redispatch were measured on HAProxy 2.6.12 on loopback (see
lbsim/dataplane.py ``DataPlane.refused``); the other rules come from
haproxy-semantics.md and octavia-semantics.md §3.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lbsim import parse_scenario, run_scenario
from lbsim.results.folder import RunResult


def scenario(
    members: list[str],
    *,
    algorithm: str = "ROUND_ROBIN",
    hm: str | None = None,
    listener: str = "",
    pool: str = "",
    traffic: str = "{listener: l, arrival: {process: poisson, rate: 50}}",
    events: str = "[]",
    duration: float = 60,
    warmup: float = 0,
    expect: str = "[]",
    seed: int = 3,
):
    rows = "\n".join(f"        - {m}" for m in members)
    monitor = f"      healthmonitor: {hm}\n" if hm else ""
    text = f"""
version: 1
name: dp
seed: {seed}
duration: {duration}
warmup: {warmup}
loadbalancer:
  name: lb
  listeners: [{{name: l, protocol: HTTP, protocol_port: 80, default_pool: p{listener}}}]
  pools:
    - name: p
      protocol: HTTP
      lb_algorithm: {algorithm}
{pool}{monitor}      members:
{rows}
traffic:
  - {traffic}
events: {events}
expect: {expect}
"""
    return parse_scenario(text, "dp.yaml")


def member(name: str, ip: str, extra: str = "") -> str:
    return (
        f"{{name: {name}, address: {ip}, protocol_port: 80, concurrency: 4, "
        f"service_time: {{dist: constant, value: 0.01}}{extra}}}"
    )


def log(res: RunResult) -> pd.DataFrame:
    assert res.requests is not None
    return res.requests


def test_all_members_down_every_request_gets_503() -> None:
    # both refuse from the start: the first failed check takes each DOWN (h starts at rise)
    sc = scenario(
        [member("a", "10.0.0.1", ", behaviour: refuse"), member("b", "10.0.0.2", ", behaviour: refuse")],
        hm="{type: HTTP, delay: 2, timeout: 1, max_retries: 2, max_retries_down: 3}",
        warmup=20,
        duration=80,
    )
    res = run_scenario(sc)
    assert res.summary["requests"] > 2000
    assert res.summary["ok"] == 0
    assert res.summary["errors"] == {"503": res.summary["requests"]}
    assert res.timeline.value_at("pool", "p", "operating_status", 79) == "ERROR"


def test_hung_member_answers_504_after_timeout_member_data() -> None:
    sc = scenario([member("a", "10.0.0.1", ", behaviour: hang")], listener=", timeout_member_data: 2500")
    res = run_scenario(sc, log_requests=True)
    rows = log(res)
    done = rows[rows["time"] < 50]
    assert len(done) > 100
    assert set(done["outcome"]) == {"504"}
    assert np.allclose(done["latency"], 2.5)


def test_error_member_answers_with_its_status_at_once() -> None:
    sc = scenario([member("a", "10.0.0.1", ", behaviour: error, status: 502")])
    res = run_scenario(sc, log_requests=True)
    assert res.summary["ok"] == 0
    assert set(res.summary["errors"]) == {"502"}
    assert np.allclose(log(res)["latency"], 0.0)


def test_refused_connection_is_redispatched_at_once_with_round_robin() -> None:
    # HAProxy 2.6: non-hash algorithm, no persistence, >1 usable server: immediate redispatch
    sc = scenario([member("a", "10.0.0.1", ", behaviour: refuse"), member("b", "10.0.0.2")])
    res = run_scenario(sc, log_requests=True)
    rows = log(res)
    assert res.summary["errors"] == {}
    assert set(rows["member"]) == {"b"}
    assert rows["latency"].max() < 0.05  # no turn-around delay


def test_single_refusing_server_gives_503_after_three_one_second_retries() -> None:
    sc = scenario([member("a", "10.0.0.1", ", behaviour: refuse")], duration=30)
    rows = log(run_scenario(sc, log_requests=True))
    assert set(rows["outcome"]) == {"503"}
    assert np.allclose(rows["latency"], 3.0)


def test_refused_source_hash_retries_the_same_server_then_redispatches_last() -> None:
    # measured: balance source, 2 servers, mapped one refuses -> 503 after 2 s (retries 3)
    sc = scenario(
        [member("a", "10.0.0.1", ", behaviour: refuse"), member("b", "10.0.0.2")],
        algorithm="SOURCE_IP",
        duration=30,
    )
    rows = log(run_scenario(sc, log_requests=True))
    failed = rows[rows["outcome"] == "503"]
    served = rows[rows["outcome"] == "ok"]
    assert len(failed) > 50 and len(served) > 50
    assert np.allclose(failed["latency"], 2.0)
    assert set(failed["member"]) == {"a"}
    assert set(served["member"]) == {"b"}
    # the source map sends a client always to the same member
    assert not set(failed["client"]) & set(served["client"])


def test_connection_limit_makes_listener_full_and_degraded() -> None:
    slow = "{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 1, service_time: {dist: constant, value: 0.5}}"
    sc = scenario(
        [slow],
        listener=", connection_limit: 5",
        traffic="{listener: l, arrival: {process: constant, rate: 20}}",
        duration=60,
    )
    res = run_scenario(sc)
    tl = res.timeline
    assert tl.value_at("listener", "l", "operating_status", 59) == "DEGRADED"
    assert tl.value_at("loadbalancer", "lb", "operating_status", 59) == "DEGRADED"
    ts = res.timeseries
    assert ts["active"].max() == 5  # never more than the limit inside HAProxy
    assert ts["backlog"].iloc[-5:].min() > 0  # the rest wait in the kernel backlog


@pytest.mark.parametrize("persistence", ["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"])
def test_persistence_keeps_a_client_on_its_member_until_it_is_unusable(persistence: str) -> None:
    cookie = ", cookie_name: SESSION" if persistence == "APP_COOKIE" else ""
    sc = scenario(
        [member(n, f"10.0.0.{i + 1}") for i, n in enumerate("abc")],
        pool=f"      session_persistence: {{type: {persistence}{cookie}}}\n",
        hm="{type: HTTP, delay: 1, timeout: 1, max_retries: 2, max_retries_down: 2}",
        traffic="{listener: l, arrival: {process: poisson, rate: 200}, clients: {count: 60, cidr: 198.51.100.0/24}}",
        events="[{at: 30, member: a, behaviour: refuse}]",
        duration=60,
    )
    rows = log(run_scenario(sc, log_requests=True))
    before = rows[(rows["time"] > 2) & (rows["time"] < 29)]
    per_client = before.groupby("client")["member"].nunique()
    assert (per_client == 1).all()  # sticky
    assert before["member"].nunique() == 3
    after = rows[rows["time"] > 40]
    assert "a" not in set(after["member"])  # redispatched once a is DOWN
    owner_before = before.groupby("client")["member"].first()
    owner_after = after.groupby("client")["member"].first()
    common = owner_before.index.intersection(owner_after.index)
    kept = owner_before[common] == owner_after[common]
    # clients of b and c stay where they were; a's clients moved
    assert kept[owner_before[common] != "a"].all()
    assert not kept[owner_before[common] == "a"].any()


def test_without_persistence_round_robin_spreads_a_client() -> None:
    sc = scenario(
        [member(n, f"10.0.0.{i + 1}") for i, n in enumerate("abc")],
        traffic="{listener: l, arrival: {process: poisson, rate: 200}, clients: {count: 5, cidr: 198.51.100.0/24}}",
    )
    rows = log(run_scenario(sc, log_requests=True))
    assert (rows.groupby("client")["member"].nunique() == 3).all()


def test_weight_zero_drains_new_traffic_but_keeps_persisted_clients() -> None:
    sc = scenario(
        [member(n, f"10.0.0.{i + 1}") for i, n in enumerate("ab")],
        pool="      session_persistence: {type: HTTP_COOKIE}\n",
        hm="{type: HTTP, delay: 1, timeout: 1, max_retries: 2}",
        traffic="{listener: l, arrival: {process: poisson, rate: 100}, clients: {count: 40, cidr: 198.51.100.0/24}}",
        events="[{at: 20, api: update, member: a, set: {weight: 0}}]",
        duration=60,
    )
    res = run_scenario(sc, log_requests=True)
    rows = log(res)
    # the cookie a client holds is the one of its latest response before the update
    first = rows[rows["time"] < 19].sort_values("time").groupby("client")["member"].last()
    late = rows[rows["time"] > 30]
    # clients persisted on a keep going there (cookie honoured on a DRAIN server)
    a_clients = set(first[first == "a"].index)
    assert a_clients and set(late[late["client"].isin(a_clients)]["member"]) == {"a"}
    # new clients (none here) aside, b's clients never go to a
    assert "a" not in set(late[~late["client"].isin(a_clients)]["member"])
    assert res.timeline.value_at("member", "a", "operating_status", 59) == "DRAINING"


def test_constant_arrivals_are_evenly_spaced() -> None:
    sc = scenario([member("a", "10.0.0.1")], traffic="{listener: l, arrival: {process: constant, rate: 10}}")
    rows = log(run_scenario(sc, log_requests=True))
    gaps = np.diff(np.sort(rows["time"].to_numpy()))
    assert np.allclose(gaps, 0.1)


def test_profile_arrivals_follow_the_rate_curve() -> None:
    # rate ramps 0 -> 400 over 100 s then stays: expected 20,000 + 400 * 100
    sc = scenario(
        [member("a", "10.0.0.1")],
        traffic="{listener: l, arrival: {process: profile, profile: [[0, 0], [100, 400], [200, 400]]}}",
        duration=200,
    )
    rows = log(run_scenario(sc, log_requests=True))
    first_half = (rows["time"] < 100).sum()
    second = (rows["time"] >= 100).sum()
    assert first_half == pytest.approx(20_000, rel=0.03)
    assert second == pytest.approx(40_000, rel=0.03)
    # the ramp: the last quarter of it has 7/16 of the ramp's requests
    assert (rows["time"].between(75, 100)).sum() == pytest.approx(20_000 * 7 / 16, rel=0.05)


def test_mmpp_mean_rate_matches_its_stationary_mix() -> None:
    # rates 50 and 500, leaving rates 0.1 and 0.4: P(state 0) = 0.4/0.5 = 0.8
    sc = scenario(
        [
            "{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 100, service_time: {dist: constant, value: 0.01}}"
        ],
        traffic="{listener: l, arrival: {process: mmpp, rates: [50, 500], switch: [0.1, 0.4]}}",
        duration=4000,
    )
    res = run_scenario(sc)
    expected = 0.8 * 50 + 0.2 * 500
    assert res.summary["requests"] / 4000 == pytest.approx(expected, rel=0.08)


def test_trace_replay_uses_the_trace_times_and_clients(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("time,client,port\n1.0,203.0.113.5,40000\n2.5,203.0.113.6,40001\n2.5,203.0.113.5,40002\n")
    text = f"""
version: 1
name: tr
duration: 10
loadbalancer:
  name: lb
  listeners: [{{name: l, protocol: HTTP, protocol_port: 80, default_pool: p}}]
  pools:
    - {{name: p, protocol: HTTP, lb_algorithm: SOURCE_IP, members: [{member("a", "10.0.0.1")}, {member("b", "10.0.0.2")}]}}
traffic:
  - {{listener: l, arrival: {{process: trace, file: {trace}}}}}
"""
    res = run_scenario(parse_scenario(text, "tr.yaml", tmp_path), base_dir=tmp_path, log_requests=True)
    rows = log(res).sort_values("time")
    assert rows["time"].tolist() == [1.0, 2.5, 2.5]
    assert rows["client"].tolist()[0] == "203.0.113.5"
    # SOURCE_IP: the same address lands on the same member
    by_client = rows.groupby("client")["member"].nunique()
    assert by_client["203.0.113.5"] == 1
    # map-based source hash over two equal servers: the address parity picks the member
    a_or_b = {0: "a", 1: "b"}
    for client, member_name in rows.groupby("client")["member"].first().items():
        assert member_name == a_or_b[int(ipaddress.ip_address(client)) % 2]
