"""The compiled steady-state data plane gives the exact engine's results, bit for bit.

Generated scenarios (hypothesis) that the compiled path covers run on both paths; every
request's member, latency and outcome, the latency histograms and sums, the per-second
series, the heartbeat statistics and the result files must be identical. The scenarios
vary what reaches the data plane: algorithm, weights, backup members, concurrency,
service distributions, arrival processes, overload with a full listener backlog and
``timeout_member_data`` (504), warm-up, two listeners and pools, ACTIVE_STANDBY.

The first test in a fresh checkout compiles the kernels (about 15 s of CPU, then cached
in ``lbsim/sim/__pycache__``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.results.folder import summarise
from lbsim.scenario.loader import parse_scenario
from lbsim.sim.engine import RawRun, Simulation, simulate

pytest.importorskip("numba", reason="the compiled data plane needs numba (a dependency of lbsim)")

from lbsim.sim import compiled

FILES = ["summary.json", "members.csv", "transitions.csv", "status.json", "timeseries.csv", "stats.csv"]

SERVICE = st.sampled_from(
    [
        {"dist": "exponential", "mean": 0.01},
        {"dist": "constant", "value": 0.008},
        {"dist": "lognormal", "mean": 0.012, "sigma": 0.9},
        {"dist": "uniform", "low": 0.001, "high": 0.02},
        {"dist": "gamma", "mean": 0.01, "cv": 1.5},
    ]
)


@st.composite
def covered_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A scenario the compiled path covers, stressed where the data plane branches."""
    n_pools = draw(st.integers(1, 2))
    pools, listeners, traffic = [], [], []
    k = 0
    for p in range(n_pools):
        n = draw(st.integers(1, 9))
        members = []
        for i in range(n):
            k += 1
            members.append(
                {
                    "name": f"m{k}",
                    "address": f"10.0.{p}.{i + 1}",
                    "protocol_port": 8080,
                    "weight": draw(st.integers(1, 6)),
                    "backup": i > 0 and draw(st.integers(0, 5)) == 0,
                    "concurrency": draw(st.integers(1, 4)),
                    "service_time": draw(SERVICE),
                }
            )
        pool: dict[str, Any] = {
            "name": f"p{p}",
            "protocol": "HTTP",
            "lb_algorithm": draw(
                st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"])
            ),
            "members": members,
        }
        if draw(st.booleans()):
            pool["healthmonitor"] = {"type": "HTTP", "delay": 2, "timeout": 1, "max_retries": 2}
        pools.append(pool)
        listener: dict[str, Any] = {"name": f"l{p}", "protocol": "HTTP", "protocol_port": 80 + p, "default_pool": f"p{p}"}
        if draw(st.booleans()):  # overload: a small listener limit and a short data timeout
            listener["connection_limit"] = draw(st.integers(1, 12))
            listener["timeout_member_data"] = draw(st.sampled_from([30, 80, 200]))
        listeners.append(listener)
        capacity = sum(mm["concurrency"] / 0.01 for mm in members)
        rate = round(capacity * draw(st.floats(0.2, 1.6)), 3)
        arrival = draw(
            st.sampled_from(
                [
                    {"process": "poisson", "rate": rate},
                    {"process": "constant", "rate": rate},
                    {"process": "mmpp", "rates": [rate / 4, rate * 1.5], "switch": [0.7, 1.3]},
                ]
            )
        )
        traffic.append(
            {
                "listener": f"l{p}",
                "arrival": arrival,
                "clients": {"count": draw(st.integers(1, 300)), "cidr": "198.18.0.0/16"},
            }
        )
    return {
        "version": 1,
        "name": "gen",
        "seed": draw(st.integers(0, 2**31)),
        "duration": draw(st.sampled_from([3, 7.5, 12])),
        "warmup": draw(st.sampled_from([0, 1, 2.5])),
        # heartbeats end chunks; with 10 s ones a chunk spans several of the sampler's seconds
        "octavia": {"heartbeat_interval": draw(st.sampled_from([1, 10])), "heartbeat_timeout": 60,
                    "health_check_interval": 1},
        "loadbalancer": {
            "name": "lb",
            "topology": draw(st.sampled_from(["SINGLE", "ACTIVE_STANDBY"])),
            "listeners": listeners,
            "pools": pools,
        },
        "traffic": traffic,
    }


def _scenario(d: dict[str, Any]) -> Any:
    import yaml

    return parse_scenario(yaml.safe_dump(d, sort_keys=False), "gen.yaml")


def _state(raw: RawRun) -> dict[str, Any]:
    """Everything the data plane leaves behind, as comparable Python values."""
    dp = raw.dp
    dp.latency.flush()
    lat = dp.latency
    return {
        "log": dp.log,
        "hist": lat.hist.tobytes(),
        "sums": lat.sums.tobytes(),
        "counts": lat.counts.tolist(),
        "ok_per_second": lat.ok_per_second.tolist(),
        "lat_per_second": lat.lat_per_second.tobytes(),
        "errors": dp.errors,
        "member_errors": dp.member_errors,
        "per_second_err": dp.per_second_err,
        "samples": dp.samples,
        "stats": raw.stats_rows,
        "servers": [(s.served, s.failed, s.busy_time.hex()) for s in dp.servers],
        "frontends": {k: (f.stot, f.bytes_in, f.bytes_out, f.active) for k, f in dp.frontends.items()},
    }


def _files(raw: RawRun, out: Path) -> dict[str, bytes]:
    summarise(raw, "scenario").save(out)
    return {name: (out / name).read_bytes() for name in FILES if (out / name).exists()}


def _assert_identical(d: dict[str, Any], tmp: Path) -> None:
    sc = _scenario(d)
    exact = simulate(sc, engine="exact", log_requests=True)
    fast = simulate(sc, engine="compiled", log_requests=True)
    assert fast.dp.compiled is not None and exact.dp.compiled is None
    a, b = _state(exact), _state(fast)
    for key in a:
        assert a[key] == b[key], f"{key} differs"
    assert _files(exact, tmp / "exact") == _files(fast, tmp / "compiled")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(covered_scenarios())
def test_compiled_equals_exact(tmp_path: Path, d: dict[str, Any]) -> None:
    """Same requests, picks, latencies and result files on both paths (quick sample)."""
    _assert_identical(d, tmp_path / str(abs(hash(repr(d)))))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(covered_scenarios())
def test_compiled_equals_exact_many(tmp_path: Path, d: dict[str, Any]) -> None:
    """The same property on many more generated scenarios (long suite)."""
    _assert_identical(d, tmp_path / str(abs(hash(repr(d)))))


def test_long_overloaded_run_grows_buffers(tmp_path: Path) -> None:
    """Thousands of requests waiting at once (request slots, output and service buffers
    grow while the run is under way) and several sampler blocks: still identical."""
    d = {
        "version": 1,
        "name": "overload",
        "seed": 3,
        "duration": 20,
        "loadbalancer": {
            "name": "lb",
            "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p",
                           "timeout_member_data": 4000}],
            "pools": [
                {
                    "name": "p",
                    "protocol": "HTTP",
                    "lb_algorithm": "LEAST_CONNECTIONS",
                    "members": [
                        {"name": f"m{i}", "address": f"10.0.0.{i + 1}", "protocol_port": 80, "concurrency": 2,
                         "service_time": {"dist": "exponential", "mean": 0.01}}
                        for i in range(3)
                    ],
                }
            ],
        },
        "traffic": [
            {"listener": "l", "arrival": {"process": "poisson", "rate": 1500}, "clients": {"count": 1000,
             "cidr": "198.18.0.0/16"}}
        ],
    }
    _assert_identical(d, tmp_path)


def _quiet_run(seconds: float) -> dict[str, Any]:
    """A light run whose chunks span many sampler seconds (no heartbeats inside them)."""
    return {
        "version": 1,
        "name": "quiet",
        "seed": 11,
        "duration": seconds,
        "octavia": {"heartbeat_interval": 50, "heartbeat_timeout": 500, "health_check_interval": 1},
        "loadbalancer": {
            "name": "lb",
            "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p",
                           "connection_limit": 2}],
            "pools": [
                {
                    "name": "p",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [
                        {"name": f"m{i}", "address": f"10.0.0.{i + 1}", "protocol_port": 80,
                         "service_time": {"dist": "exponential", "mean": 0.6}}
                        for i in range(2)
                    ],
                }
            ],
        },
        "traffic": [
            {"listener": "l", "arrival": {"process": "poisson", "rate": 3}, "clients": {"count": 5,
             "cidr": "198.18.0.0/16"}}
        ],
    }


@pytest.mark.parametrize("cap", [1, 3, compiled.SAMPLE_CAP])
def test_kernel_sampler_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int) -> None:
    """The kernel takes the once-a-second occupancy samples itself (the sampler does not
    end chunks); whatever the size of its buffer, the samples are the exact path's, with
    queues and a full listener's backlog in them."""
    monkeypatch.setattr(compiled, "SAMPLE_CAP", cap)
    sc = _scenario(_quiet_run(180))
    exact = simulate(sc, engine="exact")
    fast = simulate(sc, engine="compiled")
    assert len(fast.dp.samples) == 180
    assert list(fast.dp.samples) == list(exact.dp.samples)
    assert max(s[2] for s in exact.dp.samples) > 0 and max(s[1] for s in exact.dp.samples) > 0
    _assert_identical(_quiet_run(180), tmp_path)


def test_kernel_sampler_with_progress_steps() -> None:
    """``lbsim run`` advances the clock in steps for its progress bar: a step boundary
    between two sampler seconds changes nothing."""
    sc = _scenario(_quiet_run(97.5))
    seen: list[float] = []
    exact = simulate(sc, engine="exact")
    fast = simulate(sc, engine="compiled", progress=seen.append)
    assert seen[-1] == 1.0 and len(seen) == 100
    assert list(fast.dp.samples) == list(exact.dp.samples) and len(exact.dp.samples) == 98


def test_choice_of_engine() -> None:
    """``exact`` never compiles; ``auto`` compiles long covered runs only; ``compiled``
    refuses what it does not cover with the reason."""
    d = {
        "version": 1,
        "name": "choice",
        "duration": 10,
        "loadbalancer": {
            "name": "lb",
            "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p"}],
            "pools": [
                {
                    "name": "p",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"name": "m", "address": "10.0.0.1", "protocol_port": 80}],
                }
            ],
        },
        "traffic": [{"listener": "l", "arrival": {"process": "poisson", "rate": 50}}],
    }
    sim = Simulation(_scenario(d))
    sim._start_running()
    assert compiled.coverage(sim) is None
    assert compiled.choose(sim, "exact") is None
    assert compiled.choose(sim, "auto") is None  # 500 requests: not worth loading numba
    assert compiled.choose(sim, "compiled") == "compiled"
    d["traffic"][0]["arrival"]["rate"] = compiled.AUTO_MIN_REQUESTS  # x 10 s
    big = Simulation(_scenario(d))
    big._start_running()
    assert compiled.choose(big, "auto") == "compiled"
    d["events"] = [{"at": 5, "member": "m", "behaviour": "refuse"}]
    faulty = Simulation(_scenario(d))
    faulty._start_running()
    assert compiled.coverage(faulty) == "the scenario has events or failures"
    assert compiled.choose(faulty, "auto") is None
    with pytest.raises(ValueError, match="cannot run this scenario: the scenario has events"):
        compiled.choose(faulty, "compiled")
    with pytest.raises(ValueError, match="engine must be one of"):
        compiled.choose(sim, "fast")


def test_changing_an_owned_backend_is_refused() -> None:
    """A change the compiled arrays would not see fails loudly instead of diverging."""
    d = {
        "version": 1,
        "name": "owned",
        "duration": 2,
        "loadbalancer": {
            "name": "lb",
            "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p"}],
            "pools": [
                {
                    "name": "p",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"name": f"m{i}", "address": f"10.0.0.{i + 1}", "protocol_port": 80} for i in range(2)],
                }
            ],
        },
        "traffic": [{"listener": "l", "arrival": {"process": "poisson", "rate": 50}}],
    }
    sim = Simulation(_scenario(d))
    sim._start_running()
    compiled.attach(sim, "compiled")
    be = sim.dp.frontends["l"].backend
    assert be is not None
    with pytest.raises(RuntimeError, match="compiled data plane owns it"):
        be.set_usable(0, False)
    with pytest.raises(RuntimeError, match="compiled data plane runs"):
        sim.dp.server_by_name["m0"].set_behaviour("refuse")
    assert np.all(sim.dp.compiled.sv[:, 0] == 0)


def test_cli_engine_flag(tmp_path: Path) -> None:
    """``lbsim run --engine compiled`` writes the same folder as ``--engine exact``, and
    refuses a scenario it does not cover with a one-line reason (exit 2)."""
    import yaml

    from lbsim.cli.main import main

    d = {
        "version": 1,
        "name": "cli",
        "duration": 6,
        "loadbalancer": {
            "name": "lb",
            "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p"}],
            "pools": [
                {
                    "name": "p",
                    "protocol": "HTTP",
                    "lb_algorithm": "LEAST_CONNECTIONS",
                    "healthmonitor": {"type": "HTTP", "delay": 2, "timeout": 1, "max_retries": 2},
                    "members": [{"name": f"m{i}", "address": f"10.0.0.{i + 1}", "protocol_port": 80} for i in range(3)],
                }
            ],
        },
        "traffic": [{"listener": "l", "arrival": {"process": "poisson", "rate": 200}}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    outs = {}
    for engine in ("exact", "compiled"):
        assert main(["run", str(path), "--quiet", "--engine", engine, "--out", str(tmp_path / engine)]) == 0
        outs[engine] = {n: (tmp_path / engine / n).read_bytes() for n in FILES}
    assert outs["exact"] == outs["compiled"]
    d["events"] = [{"at": 3, "member": "m0", "behaviour": "hang"}]
    path.write_text(yaml.safe_dump(d), encoding="utf-8")
    assert main(["run", str(path), "--quiet", "--engine", "compiled", "--out", str(tmp_path / "no")]) == 2
    assert not (tmp_path / "no").exists()
