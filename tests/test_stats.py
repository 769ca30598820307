"""`lbsim stats`: Octavia's statistics rules (§6.2) over the heartbeat history."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lbsim import parse_scenario, run_scenario
from lbsim.cli.main import main
from lbsim.cli.stats import stats_at
from lbsim.octavia.timeline import Timeline

SCENARIO = """
version: 1
name: stats
seed: 3
duration: 300
octavia:
  workers: {amphora_boot: {dist: constant, value: 30}, update: {dist: constant, value: 1}}
loadbalancer:
  name: lb1
  listeners:
    - {name: web, protocol: HTTP, protocol_port: 80, default_pool: p1}
    - {name: api, protocol: HTTP, protocol_port: 8080, default_pool: p2}
  pools:
    - {name: p1, protocol: HTTP, lb_algorithm: ROUND_ROBIN, members: [{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 8}]}
    - {name: p2, protocol: HTTP, lb_algorithm: ROUND_ROBIN, members: [{name: b, address: 10.0.0.2, protocol_port: 80, concurrency: 8}]}
traffic:
  - {listener: web, arrival: {process: poisson, rate: 100}, request_bytes: 500, response_bytes: 8000}
  - {listener: api, arrival: {process: poisson, rate: 20}, request_bytes: 100, response_bytes: 1000}
events:
  - {at: 100, amphora: STANDALONE, behaviour: fail}
"""


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    res = run_scenario(parse_scenario(SCENARIO, "stats.yaml"))
    return res.save(tmp_path_factory.mktemp("stats") / "run")


def _stats(folder: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    assert main(["stats", str(folder), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["stats"]


def test_loadbalancer_stats_are_the_sum_of_its_listeners(result_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lb = _stats(result_dir, "--at", "90", capsys=capsys)
    web = _stats(result_dir, "--at", "90", "--listener", "web", capsys=capsys)
    api = _stats(result_dir, "--at", "90", "--listener", "api", capsys=capsys)
    for f in lb:
        assert lb[f] == web[f] + api[f]
    # bytes follow the traffic sections' sizes; connections are counted by the frontend
    assert web["bytes_in"] == 500 * web["total_connections"]
    assert api["bytes_in"] == 100 * api["total_connections"]
    assert web["total_connections"] == pytest.approx(100 * 85, rel=0.1)  # up to the last heartbeat
    assert web["bytes_out"] == pytest.approx(8000 * web["total_connections"], rel=0.01)


def test_counters_only_grow_and_keep_failed_amphora_rows(result_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _stats(result_dir, "--at", "99", capsys=capsys)
    after = _stats(result_dir, "--at", "299", capsys=capsys)
    assert after["total_connections"] > before["total_connections"]
    stats = pd.read_csv(result_dir / "stats.csv")
    assert set(stats["amphora"]) == {"amphora-1", "amphora-2"}
    tl = Timeline.from_frame(pd.read_csv(result_dir / "transitions.csv", keep_default_na=False))
    end = stats_at(stats, tl, 299)
    new_only = stats_at(stats[stats["amphora"] == "amphora-2"], tl, 299)
    old_only = stats_at(stats[stats["amphora"] == "amphora-1"], tl, 299)
    # the deleted amphora's cumulative counters still count, its gauge does not
    assert end["total_connections"] == new_only["total_connections"] + old_only["total_connections"]
    assert old_only["active_connections"] == 0
    assert tl.value_at("amphora", "amphora-1", "provisioning_status", 299) == "DELETED"


def test_stats_errors_are_clean(result_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path)]) == 2
    assert main(["stats", str(result_dir), "--at", "1e9"]) == 2
    assert main(["stats", str(result_dir), "--listener", "nope"]) == 2
    err = capsys.readouterr().err
    assert "not a complete result folder" in err and "outside the run" in err and "no listener" in err
    assert main(["stats", str(result_dir)]) == 0
    table = capsys.readouterr().out
    assert "| active_connections" in table and "| total_connections" in table
