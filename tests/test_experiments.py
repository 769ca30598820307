"""Experiments: statistics, overrides, seeds, engines, the resumable store, compare and plan.

What is proved here:

* the Student t quantile and intervals are right (table values, scipy when present,
  coverage of the interval on normal samples);
* ``--set`` paths and values are parsed and applied as documented, and a bad value is
  refused before anything runs, naming the path (API and CLI, exit 2, nothing written);
* seeds derive from (scenario content, grid point, replication) and a stored run
  replays alone to the same numbers;
* serial, local processes and a loopback Dask LocalCluster give byte-identical tables;
* a sweep killed with SIGKILL part-way loses no finished run and, rerun, simulates each
  missing run exactly once;
* ``compare`` ranks LEAST_CONNECTIONS above ROUND_ROBIN on p99 with a slow member, with
  non-overlapping intervals, on common random numbers;
* ``plan`` finds the member count Erlang C predicts for an M/M/c-like pool (± 1).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim import load_scenario, run_scenario
from lbsim.cli.experiments import main as cli
from lbsim.experiments.common import STORE_DIR
from lbsim.experiments.compare import compare, parse_algorithms
from lbsim.experiments.design import (
    OverrideError,
    apply_overrides,
    derive_seed,
    grid,
    parse_path,
    parse_set,
    scenario_data,
    scenario_hash,
    set_path,
    split_values,
)
from lbsim.experiments.engines import Engine
from lbsim.experiments.plan import PlanError, parse_slo, plan, scale_traffic, stable_count, with_members
from lbsim.experiments.queueing import mmc_mean_sojourn
from lbsim.experiments.stats import mean_ci, t_quantile
from lbsim.experiments.store import RunStore
from lbsim.experiments.sweep import sweep
from lbsim.scenario import model as m

ROOT = Path(__file__).absolute().parents[1]
SCENARIOS = ROOT / "scenarios" / "experiments"
SMALL = SCENARIOS / "small-web.yaml"


def small(duration: float | None = None) -> m.Scenario:
    """The small web-tier scenario, optionally shorter (events and expectations after the
    end are dropped; its fault at t = 20 s stays when ``duration`` > 20)."""
    sc = load_scenario(SMALL)
    if duration is None:
        return sc
    data = scenario_data(sc)
    data["duration"] = duration
    data["events"] = [e for e in data["events"] if e["at"] < duration]
    data["expect"] = [e for e in data["expect"] if e["at"] < duration]
    return m.Scenario.model_validate(data)


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("df", "q"),
    # two-sided 95 % critical values from a printed t table
    [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)],
)
def test_t_quantile_matches_printed_table(df: int, q: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(q, abs=5e-4)


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.51, 0.9995), df=st.integers(1, 400))
def test_t_quantile_matches_scipy(p: float, df: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    assert t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-7, abs=1e-9)
    assert t_quantile(1 - p, df) == pytest.approx(-t_quantile(p, df))


def test_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    trials, n = 4000, 5
    hits = 0
    for _ in range(trials):
        iv = mean_ci(rng.normal(10.0, 2.0, n), 0.95)
        hits += iv.lo <= 10.0 <= iv.hi
    # binomial sd at 0.95 over 4000 trials is 0.0034; a normal-quantile interval would
    # cover only ~0.88 with n = 5, so this also proves the t quantile is used
    assert abs(hits / trials - 0.95) < 0.015


def test_interval_edge_cases() -> None:
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    one = mean_ci([2.0])
    assert one.mean == 2.0 and math.isnan(one.lo)
    same = mean_ci([3.0, 3.0, 3.0])
    assert (same.lo, same.hi) == (3.0, 3.0)
    assert mean_ci([1.0, float("nan"), 3.0]).n == 2


# ---------------------------------------------------------------------------- overrides


def test_parse_set_reads_yaml_values_and_respects_brackets() -> None:
    o = parse_set("loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,LEAST_CONNECTIONS")
    assert o.values == ("ROUND_ROBIN", "LEAST_CONNECTIONS")
    assert parse_set("traffic.0.arrival.rate=100,2.5e2").values == (100, 250.0)
    o = parse_set(
        "loadbalancer.pools.0.members.0.service_time={dist: exponential, mean: 0.02},{dist: constant, value: 0.01}"
    )
    assert o.values == ({"dist": "exponential", "mean": 0.02}, {"dist": "constant", "value": 0.01})
    assert parse_set("name='a,b',c").values == ("a,b", "c")
    assert parse_path("loadbalancer.pools[0].members[2].weight") == ("loadbalancer", "pools", 0, "members", 2, "weight")
    for bad in ("no-equals-sign", "x=", "x=1,,2", "a..b=1"):
        with pytest.raises(OverrideError):
            parse_set(bad)


_PLAIN = st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=8)


@settings(max_examples=60)
@given(st.lists(_PLAIN, min_size=1, max_size=6))
def test_split_values_round_trips_plain_values(values: list[str]) -> None:
    assert split_values(",".join(values)) == values


def test_grid_is_the_product_with_the_last_override_fastest() -> None:
    pts = grid([parse_set("a=1,2"), parse_set("b=x,y,z")])
    assert [(p.label["a"], p.label["b"]) for p in pts] == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]
    with pytest.raises(OverrideError, match="given twice"):
        grid([parse_set("a=1"), parse_set("a=2")])


def test_set_path_reports_missing_fields_and_indices() -> None:
    data = scenario_data(small())
    with pytest.raises(OverrideError, match="did you mean 'pools'"):
        set_path(data, parse_path("loadbalancer.pool.0.name"), "x")
    with pytest.raises(OverrideError, match=r"index 5 out of range \(loadbalancer.pools has 1 item\)"):
        set_path(data, parse_path("loadbalancer.pools.5.name"), "x")
    data["loadbalancer"]["pools"][0]["healthmonitor"] = None
    with pytest.raises(OverrideError, match="not set in the scenario"):
        set_path(data, parse_path("loadbalancer.pools.0.healthmonitor.delay"), 3)


def test_apply_overrides_validates_like_a_scenario_file() -> None:
    sc = small()
    out = apply_overrides(
        sc, {"loadbalancer.pools.0.lb_algorithm": "LEAST_CONNECTIONS", "octavia.heartbeat_interval": 5}
    )
    assert out.loadbalancer.pools[0].lb_algorithm == "LEAST_CONNECTIONS"
    assert out.octavia.heartbeat_interval == 5
    assert sc.loadbalancer.pools[0].lb_algorithm == "ROUND_ROBIN"  # the original is untouched
    with pytest.raises(OverrideError) as err:
        apply_overrides(sc, {"loadbalancer.pools.0.lb_algorithm": "FASTEST", "traffic.0.arrival.rate": 10})
    (problem,) = err.value.problems
    assert problem.startswith("--set loadbalancer.pools.0.lb_algorithm=FASTEST: loadbalancer.pools[0].lb_algorithm:")
    assert "ROUND_ROBIN" in problem
    # a cross-object rule (unknown member in an event) names the path as well
    with pytest.raises(OverrideError, match=r"events\[0\]\.member"):
        apply_overrides(sc, {"events.0.member": "nobody"})
    with pytest.raises(OverrideError, match="unknown field 'wieght'; did you mean 'weight'"):
        apply_overrides(sc, {"loadbalancer.pools.0.members.0.wieght": 2})


def test_every_bundled_scenario_survives_the_dump_and_validate_round_trip() -> None:
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        sc = load_scenario(path)
        again = apply_overrides(sc, {}, path.parent)
        assert scenario_data(again) == scenario_data(sc), path


def test_cli_sweep_refuses_bad_values_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = cli(
        [
            "sweep",
            str(SMALL),
            "--set",
            "loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,FASTEST",
            "--set",
            "octavia.heartbeat_interval=2,-1",
            "--out",
            str(out),
            "--jobs",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--set loadbalancer.pools.0.lb_algorithm=FASTEST: loadbalancer.pools[0].lb_algorithm" in err
    assert (
        "--set octavia.heartbeat_interval=-1: octavia.heartbeat_interval: expected a value that is greater than 0"
        in err
    )
    assert "nothing was run" in err
    assert not out.exists()


# -------------------------------------------------------------------------------- seeds


def test_seeds_depend_on_content_point_and_replication_only() -> None:
    sc = small()
    h = scenario_hash(sc)
    # formatting does not matter, content does
    assert scenario_hash(m.Scenario.model_validate(yaml.safe_load(yaml.safe_dump(scenario_data(sc))))) == h
    assert scenario_hash(sc.model_copy(update={"duration": 61.0})) != h
    s = derive_seed(h, {"a": 1}, 0)
    assert s == derive_seed(h, {"a": 1}, 0)
    assert len({s, derive_seed(h, {"a": 1}, 1), derive_seed(h, {"a": 2}, 0), derive_seed(h[::-1], {"a": 1}, 0)}) == 4
    assert 0 <= s < 2**63


def test_sweep_rows_and_a_run_replayed_alone(tmp_path: Path) -> None:
    res = sweep(
        small(36),
        ["loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,LEAST_CONNECTIONS"],
        replications=3,
        jobs=1,
        out=tmp_path / "sw",
    )
    runs = res.runs
    assert len(runs) == 6 and list(runs["point"]) == [0, 0, 0, 1, 1, 1]
    assert list(runs["replication"]) == [0, 1, 2, 0, 1, 2]
    assert runs["seed"].nunique() == 6  # independent seeds per point without --crn
    for col in ("requests", "error_rate", "availability", "latency_p99", "throughput", "expect_0", "incident_0_detect"):
        assert col in runs
    # the per-point table is the mean and t interval of the run rows
    p0 = runs[runs["point"] == 1]["latency_p99"].to_numpy()
    iv = mean_ci(p0)
    row = res.points[res.points["point"] == 1].iloc[0]
    assert row["latency_p99_mean"] == pytest.approx(p0.mean())
    assert (row["latency_p99_ci_lo"], row["latency_p99_ci_hi"]) == pytest.approx((iv.lo, iv.hi))
    assert row["expect_0_passes"] == runs[runs["point"] == 1]["expect_0"].sum()
    # a single run, rebuilt from its stored scenario, reproduces its row
    alone = run_scenario(res.scenario_of(1, 2))
    r = runs[(runs["point"] == 1) & (runs["replication"] == 2)].iloc[0]
    assert alone.summary["seed"] == r["seed"]
    assert alone.summary["requests"] == r["requests"]
    assert alone.summary["latency"]["p99"] == pytest.approx(r["latency_p99"], rel=1e-9)
    # the files: parquet and CSV agree with the frames
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sw" / "runs.parquet"), runs)
    assert len(pd.read_csv(tmp_path / "sw" / "points.csv")) == 2


# ------------------------------------------------------------------------------ engines


def _tables(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "runs.csv").read_bytes(), (folder / "points.csv").read_bytes()


def test_serial_processes_and_dask_give_identical_tables(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    sc = small(25)
    sets = ["loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,LEAST_CONNECTIONS", "traffic.0.arrival.rate=80,160"]
    serial = sweep(sc, sets, replications=2, jobs=1, out=tmp_path / "serial")
    procs = sweep(sc, sets, replications=2, jobs=2, out=tmp_path / "procs")
    with Engine(jobs=2, dask="local") as eng:
        addresses = eng.dask_addresses()
        dask = sweep(sc, sets, replications=2, engine=eng, out=tmp_path / "dask")
    # local: mutual TLS with a temporary certificate (issue 14), loopback only
    assert len(addresses) == 3 and all(a.startswith("tls://127.0.0.1:") for a in addresses), addresses
    # a scheduler given by address (--dask tcp://HOST:PORT): workers return records, this process stores them
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        remote = sweep(sc, sets, replications=2, dask=cluster.scheduler_address, out=tmp_path / "remote")
    # work really was spread over other processes
    for folder in ("procs", "dask", "remote"):
        log = (tmp_path / folder / STORE_DIR / "executed.log").read_text().splitlines()
        pids = {json.loads(line)["pid"] for line in log}
        assert len(log) == 8 and os.getpid() not in pids, folder
    assert serial.executed == procs.executed == dask.executed == remote.executed == 8
    tables = _tables(tmp_path / "serial")
    for folder in ("procs", "dask", "remote"):
        assert _tables(tmp_path / folder) == tables, folder
    pd.testing.assert_frame_equal(serial.points, dask.points)


def test_rerun_reuses_the_store_and_simulates_nothing(tmp_path: Path) -> None:
    sets = ["octavia.heartbeat_interval=2,4"]
    first = sweep(small(15), sets, replications=2, jobs=1, out=tmp_path / "s")
    log = tmp_path / "s" / STORE_DIR / "executed.log"
    logged = log.read_text()
    again = sweep(small(15), sets, replications=3, jobs=1, out=tmp_path / "s")  # one more replication
    assert (first.executed, again.executed, again.reused) == (4, 2, 4)
    assert log.read_text().startswith(logged)
    assert len(RunStore(tmp_path / "s" / STORE_DIR).executed()) == 6


def test_a_sweep_killed_part_way_loses_nothing_and_resumes(tmp_path: Path) -> None:
    data = scenario_data(small(120))
    scen = tmp_path / "long.yaml"
    scen.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    sets = ["traffic.0.arrival.rate=100,200"]
    args = ["sweep", str(scen), "--set", sets[0], "-r", "8", "--out", str(out), "-q"]
    total = 16
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbsim.cli.experiments", *args, "--jobs", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    store = out / STORE_DIR
    deadline = time.monotonic() + 120
    try:
        while len(list(store.glob("*.json"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep stored nothing in time"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
    before = {p.stem: p.read_bytes() for p in store.glob("*.json")}
    assert 3 <= len(before) < total, "kill the sweep part-way"
    assert not (out / "runs.csv").exists()
    res = sweep(load_scenario(scen), sets, replications=8, jobs=2, out=out, base_dir=tmp_path)
    assert (res.reused, res.executed) == (len(before), total - len(before))
    after = {p.stem: p.read_bytes() for p in store.glob("*.json")}
    assert set(after) == set(res.runs["key"]) and len(after) == total
    assert all(after[k] == v for k, v in before.items()), "a finished run was rewritten"
    executed = RunStore(store).executed()
    assert len(executed) == len(set(executed)), "a run was simulated twice"
    assert set(executed) <= set(after)
    assert not list(store.glob(".*.tmp"))  # leftovers of the killed runs are cleaned
    # and the result is what an uninterrupted sweep gives
    fresh = sweep(load_scenario(scen), sets, replications=8, jobs=2, out=tmp_path / "fresh", base_dir=tmp_path)
    pd.testing.assert_frame_equal(res.runs, fresh.runs)


# ------------------------------------------------------------------------------ compare


def test_compare_ranks_least_connections_above_round_robin_with_a_slow_member(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "slow-member.yaml").model_copy(update={"duration": 60.0})
    cmp = compare(sc, "ROUND_ROBIN,LEAST_CONNECTIONS", replications=5, jobs=1, out=tmp_path / "cmp")
    rr, lc = cmp.interval("ROUND_ROBIN", "latency_p99"), cmp.interval("LEAST_CONNECTIONS", "latency_p99")
    assert lc.hi < rr.lo, (lc, rr)  # better, and the intervals do not overlap
    rank = cmp.ranking()
    assert list(rank["algorithm"]) == ["LEAST_CONNECTIONS", "ROUND_ROBIN"] and bool(rank["separated_from_next"].iloc[0])
    # common random numbers: replication r has the same seed under every algorithm
    seeds = cmp.runs.pivot(index="replication", columns="algorithm", values="seed")
    assert (seeds["ROUND_ROBIN"] == seeds["LEAST_CONNECTIONS"]).all()
    # LEAST_CONNECTIONS sends the slow member (web-3) less than a third, ROUND_ROBIN a third
    shares = cmp.member_shares().set_index(["algorithm", "name"])["share"]
    assert shares["LEAST_CONNECTIONS", "web-3"] < 0.3 < shares["ROUND_ROBIN", "web-3"]
    paired = cmp.paired()
    assert paired.iloc[0]["significant"] and paired.iloc[0]["diff_ci_lo"] > 0
    for name in (
        "comparison.csv",
        "ranking.csv",
        "paired.csv",
        "latency-cdf.png",
        "p99.png",
        "member-load.png",
        "error-rate.png",
    ):
        assert (tmp_path / "cmp" / name).stat().st_size > 0, name


def test_compare_refuses_unknown_algorithms() -> None:
    with pytest.raises(OverrideError, match="unknown algorithm 'FASTEST'"):
        parse_algorithms("ROUND_ROBIN,FASTEST")
    with pytest.raises(OverrideError, match="at least two"):
        parse_algorithms("ROUND_ROBIN")
    assert parse_algorithms("round_robin, least_connections") == ["ROUND_ROBIN", "LEAST_CONNECTIONS"]


# --------------------------------------------------------------------------------- plan


def test_parse_slo() -> None:
    assert parse_slo("p99<0.25") == parse_slo("p99 < 250ms").__class__("latency_p99", "<", 0.25, "p99<0.25")
    assert parse_slo("p99<250ms").threshold == pytest.approx(0.25)
    assert parse_slo("errors<0.1%").threshold == pytest.approx(0.001)
    s = parse_slo("availability>=99.9%")
    assert (s.metric, s.upper, s.threshold) == ("availability", False, pytest.approx(0.999))
    for bad in ("p42<1", "p99", "p99<abc", "errors<5ms", "throughput<5%"):
        with pytest.raises(PlanError):
            parse_slo(bad)


def test_with_members_clones_the_first_member_with_fresh_names_and_addresses() -> None:
    sc = load_scenario(SCENARIOS / "slow-member.yaml")
    data = with_members(scenario_data(sc), 0, 6)
    members = data["loadbalancer"]["pools"][0]["members"]
    assert [x["name"] for x in members] == ["web-1", "web-2", "web-3", "web-4", "web-5", "web-6"]
    assert len({x["address"] for x in members}) == 6
    assert all(x["service_time"] == members[0]["service_time"] for x in members[3:])
    m.Scenario.model_validate(data)  # still a valid scenario
    assert [x["name"] for x in with_members(scenario_data(sc), 0, 2)["loadbalancer"]["pools"][0]["members"]] == [
        "web-1",
        "web-2",
    ]


def test_peak_rate_scaling_and_stability_bound() -> None:
    data = scenario_data(load_scenario(SCENARIOS / "mmc.yaml"))
    assert stable_count(data, 0, None, 100) == 5  # 40 req/s, 10 req/s per member: 4 would be critical
    scale_traffic(data, 95.0)
    assert data["traffic"][0]["arrival"]["rate"] == pytest.approx(95.0)
    assert stable_count(data, 0, None, 100) == 10


@pytest.mark.parametrize("target", [0.14, 0.11])
def test_plan_matches_erlang_c_for_an_mmc_pool(target: float) -> None:
    sc = load_scenario(SCENARIOS / "mmc.yaml")
    lam, mean = 40.0, 0.1
    predicted = next(c for c in range(1, 100) if mmc_mean_sojourn(lam, 1 / mean, c) <= target)
    res = plan(sc, [f"mean<{target}"], replications=4, jobs=1)
    assert res.answer is not None and abs(res.answer - predicted) <= 1, (res.answer, predicted, res.evaluations)
    margins = res.margins()
    assert margins.iloc[0]["ci_hi"] < target and margins.iloc[0]["margin"] > 0
    below = res.evaluations[res.evaluations["members"] == res.answer - 1]
    assert len(below) == 1 and not bool(below["all_met"].iloc[0])  # the count below was tried and failed


def test_plan_vary_flavor_sizes_the_amphora_between_queueing_bounds() -> None:
    """The amphora CPU is a queue with c = vCPUs servers and a deterministic cost per
    connection (5 ms at 200 connections/s per vCPU); members add an exponential 5 ms.
    Mean latency = 10 ms + the CPU queue's wait, which lies between 0 and the M/M/c wait
    (deterministic service waits less than exponential), so Erlang C bounds the answer."""
    from lbsim.experiments.queueing import mmc_mean_wait

    sc = load_scenario(SCENARIOS / "amphora-cpu.yaml")
    lam, cost, service, target = 600.0, 1 / 200, 0.005, 0.0108
    low = next(c for c in range(1, 64) if c / cost > lam)  # stability
    high = next(c for c in range(low, 64) if cost + service + mmc_mean_wait(lam, 1 / cost, c) <= target)
    res = plan(sc, [f"mean<{target}"], vary="flavor", replications=3, jobs=1)
    assert res.column == "vcpus" and res.stable_from == low == 4
    assert res.answer is not None and low <= res.answer <= high + 1, (res.answer, low, high)
    ev = res.evaluations.set_index("vcpus")
    assert bool(ev.loc[res.answer, "all_met"]) and ev.loc[res.answer, "latency_mean_ci_hi"] < target
    if res.answer - 1 >= low:
        assert not bool(ev.loc[res.answer - 1, "all_met"])


def test_plan_refuses_unsupported_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["plan", str(SCENARIOS / "mmc.yaml"), "--slo", "p99<1", "--vary", "topology"]) == 2
    assert "--vary topology is not supported yet" in capsys.readouterr().err
    with pytest.raises(PlanError, match="size the members first"):
        plan(load_scenario(SCENARIOS / "mmc.yaml"), ["p99<1"], vary="flavor", jobs=1)


def test_cli_plan_and_compare_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(
        [
            "plan",
            str(SCENARIOS / "mmc.yaml"),
            "--slo",
            "mean<0.14",
            "--slo",
            "errors<0.001",
            "-r",
            "3",
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "plan"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "members meet every SLO" in out and "margins at" in out
    meta: dict[str, Any] = json.loads((tmp_path / "plan" / "experiment.json").read_text())
    assert meta["kind"] == "plan" and isinstance(meta["answer"], int)
    code = cli(
        [
            "plan",
            str(SCENARIOS / "mmc.yaml"),
            "--slo",
            "mean<0.001",
            "-r",
            "2",
            "--max-members",
            "6",
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "plan2"),
        ]
    )
    assert code == 1 and "no member count up to 6" in capsys.readouterr().out
