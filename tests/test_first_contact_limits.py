"""Issue 14, hangs and resource bombs: scenarios that validate field by field but would
never end or could not fit are refused before running, naming the field; long ones are
announced with an estimate, and the progress bar shows the time left."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rich.console import Console

from lbsim.api import run_scenario
from lbsim.cli.main import _announce_cost, main
from lbsim.scenario import model as m
from lbsim.scenario.cost import estimate, memory_budget
from lbsim.scenario.loader import ScenarioError, parse_scenario
from lbsim.sim.traffic import make_gap_fn


def _problem(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(yaml.safe_dump(data))
    assert len(info.value.problems) == 1
    p = info.value.problems[0]
    return f"{p.path}: {p.message}"


def test_mmpp_with_both_rates_zero_is_refused(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["traffic"][0]["arrival"] = {"process": "mmpp", "rates": [0, 0], "switch": [1, 1]}
    assert _problem(scenario_dict).startswith("traffic[0].arrival.rates: both MMPP rates are 0")


def test_mmpp_without_arrivals_ends_instead_of_looping() -> None:
    arrival = m.Mmpp(process="mmpp", rates=(0.0, 0.0), switch=(1.0, 1.0))
    assert make_gap_fn(arrival, np.random.default_rng(1))() is None


def test_mmpp_with_one_silent_state_runs(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["traffic"][0]["arrival"] = {"process": "mmpp", "rates": [0, 40], "switch": [2, 2]}
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    assert 0 < result.summary["requests"] < 40 * 5


@pytest.mark.parametrize(
    ("mttf", "mttr"),
    [
        ({"dist": "constant", "value": 0}, {"dist": "constant", "value": 0}),
        ({"dist": "uniform", "low": 0, "high": 0}, {"dist": "constant", "value": 0}),
        ({"dist": "empirical", "samples": [0, 0]}, {"dist": "uniform", "low": 0, "high": 0}),
    ],
)
def test_failures_with_zero_length_cycles_are_refused(
    mttf: dict[str, Any], mttr: dict[str, Any], scenario_dict: dict[str, Any]
) -> None:
    scenario_dict["failures"] = [{"pool": "web", "mttf": mttf, "mttr": mttr}]
    assert _problem(scenario_dict).startswith("failures[0].mttf: mttf and mttr are both always 0")


def test_failures_with_tiny_cycles_are_refused_by_the_cost(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["failures"] = [
        {"pool": "web", "mttf": {"dist": "constant", "value": 1e-12}, "mttr": {"dist": "constant", "value": 1e-12}}
    ]
    msg = _problem(scenario_dict)
    assert msg.startswith("failures[0].mttf: this run would need about") and "failure and recovery cycles" in msg


@pytest.mark.parametrize("duration", [1e9, 1e15])
def test_huge_duration_is_refused_naming_duration(duration: float, scenario_dict: dict[str, Any]) -> None:
    scenario_dict["duration"] = duration
    msg = _problem(scenario_dict)
    assert msg.startswith("duration: this run would need about") and "per-second tables" in msg


def test_rate_far_beyond_capacity_is_refused_naming_the_rate(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["duration"] = 60
    scenario_dict["traffic"][0]["arrival"]["rate"] = 1e6
    msg = _problem(scenario_dict)
    assert msg.startswith("traffic[0].arrival.rate: this run would need about")
    assert "requests waiting beyond what the members can serve" in msg


def test_tiny_heartbeat_interval_is_refused_naming_it(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["duration"] = 60
    scenario_dict["octavia"]["heartbeat_interval"] = 1e-6
    assert _problem(scenario_dict).startswith("octavia.heartbeat_interval: this run would need about")


def test_too_much_work_is_refused_even_when_it_fits(scenario_dict: dict[str, Any]) -> None:
    """A month of 1,000 req/s served in time: little memory, but ~10¹⁰ steps."""
    scenario_dict["duration"] = 30 * 86400
    scenario_dict["traffic"][0]["arrival"]["rate"] = 5000
    for mem in scenario_dict["loadbalancer"]["pools"][0]["members"]:
        mem["concurrency"] = 1000
    msg = _problem(scenario_dict)
    assert msg.startswith("traffic[0].arrival.rate: this run would take about") and "steps" in msg


def test_memory_budget_follows_the_environment(monkeypatch: pytest.MonkeyPatch, scenario_dict: dict[str, Any]) -> None:
    scenario_dict["duration"] = 2e6  # ~600 MB of per-second tables
    monkeypatch.setenv("LBSIM_MAX_MEMORY", str(256 * 1024**2))
    assert memory_budget() == 256 * 1024**2
    assert _problem(scenario_dict).startswith("duration: this run would need")
    monkeypatch.setenv("LBSIM_MAX_MEMORY", str(2 * 1024**3))
    parse_scenario(yaml.safe_dump(scenario_dict))  # fits now


def test_cli_refuses_a_resource_bomb_with_exit_2(
    scenario_dict: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_dict["duration"] = 1e9
    f = tmp_path / "bomb.yaml"
    f.write_text(yaml.safe_dump(scenario_dict, sort_keys=False))
    assert main(["run", str(f), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bomb.yaml:4: duration: this run would need" in err and not (tmp_path / "r").exists()


def test_log_requests_is_costed_too(
    scenario_dict: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 req/s for a day fits without --log-requests, not with it under a 2 GiB budget."""
    monkeypatch.setenv("LBSIM_MAX_MEMORY", str(2 * 1024**3))
    scenario_dict["duration"] = 86400
    scenario_dict["traffic"][0]["arrival"]["rate"] = 300
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(scenario_dict))
    assert main(["validate", str(f)]) == 0
    assert main(["run", str(f), "--log-requests", "--out", str(tmp_path / "r")]) == 2
    assert "(with --log-requests)" in capsys.readouterr().err


def test_estimate_grows_with_what_costs(scenario_dict: dict[str, Any]) -> None:
    base = estimate(parse_scenario(yaml.safe_dump(scenario_dict)))
    scenario_dict["octavia"]["heartbeat_interval"] = 0.01
    faster = estimate(parse_scenario(yaml.safe_dump(scenario_dict)))
    hb = ("octavia", "heartbeat_interval")
    assert faster.terms[hb][0] == pytest.approx(100 * base.terms[hb][0])
    assert faster.terms[hb][1] == pytest.approx(100 * base.terms[hb][1])
    assert faster.units > base.units and faster.memory > base.memory
    assert faster.dominant(by_memory=False)[0] == ("octavia", "heartbeat_interval")


def test_long_runs_are_announced(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["duration"] = 3 * 3600
    scenario_dict["traffic"][0]["arrival"]["rate"] = 2000
    for mem in scenario_dict["loadbalancer"]["pools"][0]["members"]:
        mem["concurrency"] = 100
    sc = parse_scenario(yaml.safe_dump(scenario_dict))
    buf = io.StringIO()
    _announce_cost(Console(file=buf, width=200), sc, Path("."), bar=False)
    text = buf.getvalue()
    assert "this run is long" in text and "min" in text
    buf = io.StringIO()
    _announce_cost(
        Console(file=buf), parse_scenario(yaml.safe_dump({**scenario_dict, "duration": 5})), Path("."), False
    )
    assert buf.getvalue() == ""


def test_estimate_counts_every_load_balancer(scenario_dict: dict[str, Any]) -> None:
    one = estimate(parse_scenario(yaml.safe_dump(scenario_dict)))
    lb = scenario_dict.pop("loadbalancer")
    text = yaml.safe_dump(lb)
    for old, new in (("lb1", "lb2"), ("name: http", "name: http2"), ("web", "www"), ("10.0.0.1", "10.0.1.1")):
        text = text.replace(old, new)
    second = yaml.safe_load(text)
    scenario_dict["traffic"] = scenario_dict["traffic"][:1]
    scenario_dict["loadbalancers"] = [lb, second]
    scenario_dict["expect"] = []
    scenario_dict["events"] = []
    two = estimate(parse_scenario(yaml.safe_dump(scenario_dict)))
    hb = ("octavia", "heartbeat_interval")
    assert two.terms[hb][0] == pytest.approx(2 * one.terms[hb][0])
    assert ("loadbalancers", 1, "pools", 0, "healthmonitor", "delay") in two.terms
