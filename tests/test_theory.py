"""The data plane against queueing theory (M/M/1, M/M/c / Erlang C) and known algorithm effects."""

from __future__ import annotations

import math

import pytest

from lbsim import parse_scenario, run_scenario
from lbsim.experiments.queueing import erlang_c, mmc_mean_sojourn, mmc_mean_wait


def _scenario(
    *,
    members: int,
    concurrency: int,
    rate: float,
    mean: float,
    duration: float,
    algorithm: str = "ROUND_ROBIN",
    slow: dict[int, float] | None = None,
    seed: int = 1,
    warmup: float = 0.0,
    hm: bool = False,
):
    rows = []
    for i in range(members):
        m = mean * (slow or {}).get(i, 1.0)
        rows.append(
            f"        - {{name: m{i}, address: 10.0.0.{i + 10}, protocol_port: 80, "
            f"concurrency: {concurrency}, service_time: {{dist: exponential, mean: {m}}}}}"
        )
    monitor = (
        "      healthmonitor: {type: HTTP, delay: 5, timeout: 3, max_retries: 3}\n" if hm else ""
    )
    text = f"""
version: 1
name: theory
seed: {seed}
duration: {duration}
warmup: {warmup}
loadbalancer:
  name: lb
  listeners: [{{name: l, protocol: HTTP, protocol_port: 80, default_pool: p, timeout_member_data: 2000000000}}]
  pools:
    - name: p
      protocol: HTTP
      lb_algorithm: {algorithm}
{monitor}      members:
{chr(10).join(rows)}
traffic:
  - {{listener: l, arrival: {{process: poisson, rate: {rate}}}}}
"""
    return parse_scenario(text, "theory.yaml")


def test_erlang_c_matches_known_values() -> None:
    # one server: the probability of waiting is the utilisation
    assert erlang_c(1, 0.8) == pytest.approx(0.8)
    # M/M/2 at a = 1: P(wait) = 1/3 (closed form a^2/(2(2-a)) / (1 + a + a^2/(2(2-a))))
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert mmc_mean_wait(0.8, 1.0, 1) == pytest.approx(4.0)


def test_mm1_mean_latency_within_3_percent() -> None:
    lam, mu = 800.0, 1000.0  # utilisation 0.8
    sc = _scenario(members=1, concurrency=1, rate=lam, mean=1 / mu, duration=2000, warmup=20)
    res = run_scenario(sc)
    expected = 1.0 / (mu - lam)
    assert res.summary["ok"] > 1_500_000
    assert res.summary["latency"]["mean"] == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("c", [4, 8])
def test_mmc_mean_wait_within_5_percent_of_erlang_c(c: int) -> None:
    mu = 100.0
    lam = 0.85 * c * mu
    sc = _scenario(
        members=1, concurrency=c, rate=lam, mean=1 / mu, duration=2500, warmup=20, seed=c
    )
    res = run_scenario(sc)
    wait = res.summary["latency"]["mean"] - 1 / mu  # mean sojourn minus mean service
    assert wait == pytest.approx(mmc_mean_wait(lam, mu, c), rel=0.05)
    assert res.summary["latency"]["mean"] == pytest.approx(mmc_mean_sojourn(lam, mu, c), rel=0.03)


def test_least_connections_beats_round_robin_at_high_load() -> None:
    common = dict(
        members=4, concurrency=1, rate=4 * 0.9 * 50, mean=1 / 50, duration=1500, warmup=20
    )
    rr = run_scenario(_scenario(algorithm="ROUND_ROBIN", **common)).summary["latency"]
    lc = run_scenario(_scenario(algorithm="LEAST_CONNECTIONS", **common)).summary["latency"]
    assert lc["mean"] < rr["mean"]
    assert lc["p99"] < rr["p99"]


def test_least_connections_avoids_a_ten_times_slower_member() -> None:
    common = dict(members=4, concurrency=4, rate=120, mean=0.01, duration=600, slow={0: 10.0})
    rr = run_scenario(_scenario(algorithm="ROUND_ROBIN", **common)).members.set_index("name")
    lc = run_scenario(_scenario(algorithm="LEAST_CONNECTIONS", **common)).members.set_index("name")
    assert rr.loc["m0", "share"] == pytest.approx(0.25, abs=0.01)  # RR ignores speed
    assert lc.loc["m0", "share"] < rr.loc["m0", "share"] / 2.5
    assert not math.isnan(lc.loc["m0", "mean"])
