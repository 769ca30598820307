"""Issue 14, silently wrong results: statistics that went backwards, incidents that
undercounted failed requests, expectations with statuses Octavia never shows, and the
warnings a new user needs (printed by validate and run, kept in summary.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from lbsim.api import run_scenario
from lbsim.cli.main import main
from lbsim.cli.stats import stats_at
from lbsim.scenario.loader import ScenarioError, parse_scenario

COUNTERS = ["bytes_in", "bytes_out", "total_connections", "request_errors"]


def _run(data: dict[str, Any], **kw: Any) -> Any:
    return run_scenario(parse_scenario(yaml.safe_dump(data)), **kw)


@pytest.mark.parametrize("kind", ["loadbalancer", "listener"])
def test_statistics_never_go_backwards_across_disable_and_enable(kind: str, scenario_dict: dict[str, Any]) -> None:
    """Disabling stops HAProxy's frontend; enabling starts it with counters at 0. The amphora
    then reports the raw value (calculate_stats_deltas), so Octavia's sums keep growing."""
    name = "lb1" if kind == "loadbalancer" else "http"
    scenario_dict.update(duration=40, events=[], expect=[])
    scenario_dict["events"] = [
        {"at": 10, "api": "update", kind: name, "set": {"admin_state_up": False}},
        {"at": 20, "api": "update", kind: name, "set": {"admin_state_up": True}},
    ]
    result = _run(scenario_dict)
    stats: pd.DataFrame = result.stats
    assert stats is not None and len(stats) > 10
    for (_, _), rows in stats.groupby(["listener", "amphora"]):
        for col in COUNTERS:
            assert rows[col].is_monotonic_increasing, (col, rows[col].tolist())
    timeline = result.timeline
    seen = [stats_at(stats, timeline, t)["total_connections"] for t in range(0, 41)]
    assert seen == sorted(seen)
    # the restart did not start the sums again: 10 s before it plus 20 s after it
    assert seen[-1] > 2 * seen[10] > 0


def _hang(data: dict[str, Any], monitor: str, algorithm: str) -> dict[str, Any]:
    data.update(duration=90, expect=[])
    pool = data["loadbalancer"]["pools"][0]
    pool["lb_algorithm"] = algorithm
    pool["healthmonitor"] = {"type": monitor, "delay": 2, "timeout": 1, "max_retries": 2, "max_retries_down": 2}
    if monitor == "HTTP":
        pool["healthmonitor"]["url_path"] = "/healthz"
    data["loadbalancer"]["listeners"][0]["timeout_member_data"] = 20000
    data["events"] = [
        {"at": 10, "member": "web-1", "behaviour": "hang"},
        {"at": 30, "member": "web-1", "behaviour": "healthy"},
    ]
    return data


@pytest.mark.parametrize(
    ("monitor", "algorithm"), [("TCP", "ROUND_ROBIN"), ("TCP", "SOURCE_IP"), ("HTTP", "ROUND_ROBIN")]
)
def test_incidents_count_requests_that_failed_after_the_fault_ended(
    monitor: str, algorithm: str, scenario_dict: dict[str, Any]
) -> None:
    result = _run(_hang(scenario_dict, monitor, algorithm), log_requests=True)
    q = result.requests
    truth = q[(q["time"] >= 10) & (q["time"] < 30) & (q["member"] == "web-1") & (q["outcome"] != "ok")]
    late = truth[truth["time"] + truth["latency"] > 30]
    assert len(late) > 0, "the scenario must have requests that fail after the hang ended"
    inc = result.incidents
    assert len(inc) == 1 and inc["kind"].iloc[0] == "member_hang"
    assert int(inc["requests_failed"].iloc[0]) == len(truth)


def test_unseen_hang_is_reported_after_the_run(scenario_dict: dict[str, Any]) -> None:
    result = _run(_hang(scenario_dict, "TCP", "ROUND_ROBIN"))
    warnings = result.summary["warnings"]
    failed = int(result.incidents["requests_failed"].iloc[0])
    assert failed > 0
    assert any(
        w.startswith("events[0].behaviour: member 'web-1' accepts connections and never answers, but its pool's TCP")
        for w in warnings
    )
    assert any(f"API showed it ONLINE throughout, while {failed} request(s)" in w for w in warnings)


def test_a_detected_hang_gives_no_unseen_hang_warning(scenario_dict: dict[str, Any]) -> None:
    result = _run(_hang(scenario_dict, "HTTP", "ROUND_ROBIN"))
    assert not any("ONLINE throughout" in w for w in result.summary["warnings"])


@pytest.mark.parametrize(
    ("expectation", "path", "hint"),
    [
        ({"at": 1, "member": "web-1", "operating_status": "DEGARDED"}, "expect[1].operating_status", "DEGRADED"),
        ({"at": 1, "pool": "web", "provisioning_status": "ACTIVATED"}, "expect[1].provisioning_status", "ACTIVE"),
        ({"at": 1, "member": "web-1", "data_plane_state": "UPP"}, "expect[1].data_plane_state", "HAProxy state"),
        (
            {"within": [0, 5], "member": "web-1", "transition": ["ONLINE", "EROR"]},
            "expect[1].transition[1]",
            "ERROR",
        ),
    ],
)
def test_misspelt_expected_status_is_a_validation_error(
    expectation: dict[str, Any], path: str, hint: str, scenario_dict: dict[str, Any]
) -> None:
    scenario_dict["expect"].append(expectation)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(yaml.safe_dump(scenario_dict))
    (problem,) = info.value.problems
    assert problem.path == path and hint in problem.message


def test_every_status_lbsim_writes_is_accepted_in_expectations(scenario_dict: dict[str, Any]) -> None:
    ok = (
        [
            {"at": 1, "member": "web-1", "operating_status": s}
            for s in ("ONLINE", "OFFLINE", "DEGRADED", "ERROR", "DRAINING", "NO_MONITOR")
        ]
        + [
            {"at": 1, "member": "web-1", "data_plane_state": s}
            for s in ("UP", "UP 1/3", "DOWN", "DOWN 2/3", "MAINT", "DRAIN", "no check")
        ]
        + [
            {
                "within": [0, 5],
                "member": "web-1",
                "transition": ["PENDING_CREATE", "ACTIVE"],
                "field": "provisioning_status",
            }
        ]
    )
    scenario_dict["expect"] = ok
    parse_scenario(yaml.safe_dump(scenario_dict))


def _tls_hello_hang(d: dict[str, Any]) -> None:
    hm = d["loadbalancer"]["pools"][0]["healthmonitor"]
    hm["type"] = "TLS-HELLO"
    hm.pop("url_path")
    d["loadbalancer"]["pools"][0]["protocol"] = "HTTPS"
    d["loadbalancer"]["listeners"][0]["protocol"] = "HTTPS"
    d["loadbalancer"]["listeners"][0]["protocol_port"] = 443
    d["events"][0] = {"at": 2, "member": "web-1", "behaviour": "hang"}


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda d: d["loadbalancer"]["listeners"][0].pop("default_pool"),
            "loadbalancer.listeners[0].default_pool",
            "503",
        ),
        (
            lambda d: d["loadbalancer"]["pools"][0]["healthmonitor"].update(delay=2, timeout=5),
            "loadbalancer.pools[0].healthmonitor.timeout",
            "longer than delay",
        ),
        (
            lambda d: (
                d["loadbalancer"]["pools"][0].pop("healthmonitor"),
                d["loadbalancer"]["pools"][0]["members"][1].update(weight=0),
            ),
            "loadbalancer.pools[0].members[1].weight",
            "weight 0",
        ),
        (
            lambda d: d["loadbalancer"]["listeners"][0].update(admin_state_up=False),
            "traffic[0].listener",
            "disabled",
        ),
        (_tls_hello_hang, "events[0].behaviour", "TLS-HELLO monitor"),
    ],
)
def test_warnings_in_validate_run_and_summary(
    change: Any,
    path: str,
    words: str,
    scenario_dict: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario_dict["expect"] = []
    change(scenario_dict)
    if scenario_dict["loadbalancer"]["pools"][0].get("healthmonitor") is None:
        scenario_dict["loadbalancer"]["pools"][0]["protocol"] = "HTTP"
    f = tmp_path / "s.yaml"
    text = yaml.safe_dump(scenario_dict, sort_keys=False)
    f.write_text(text)
    assert main(["validate", str(f)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {f}:" in err and f": {path}: " in err and words in err
    assert main(["run", str(f), "--out", str(tmp_path / "r"), "--quiet"]) in (0, 1)
    _, err = capsys.readouterr()
    assert f": {path}: " in err and words in err
    import json

    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert any(w.startswith(f"{path}: ") and words in w for w in summary["warnings"])


def test_a_clean_scenario_has_no_warnings(scenario_dict: dict[str, Any]) -> None:
    assert _run(scenario_dict).summary["warnings"] == []


@pytest.mark.parametrize("monitor", ["HTTP", "HTTPS", "TCP", "TLS-HELLO", "PING", "UDP-CONNECT", "SCTP"])
@pytest.mark.parametrize("fault", ["refuse", "hang", "error"])
def test_the_detection_matrix_matches_the_health_checks(monitor: str, fault: str) -> None:
    """The README's monitor × fault table (UNSEEN_FAULTS) is what the checks do."""
    from lbsim.haproxy.healthcheck import check_outcome
    from lbsim.scenario.sanity import UNSEEN_FAULTS

    outcome = check_outcome(monitor, fault, timeout=3.0, delay=5.0)
    assert outcome.success == (fault in UNSEEN_FAULTS[monitor])


def test_an_error_under_a_tcp_monitor_is_warned_and_counted(scenario_dict: dict[str, Any]) -> None:
    data = _hang(scenario_dict, "TCP", "ROUND_ROBIN")
    data["events"][0]["behaviour"] = "error"
    result = _run(data)
    warnings = result.summary["warnings"]
    assert any("answers with an error status, but its pool's TCP monitor cannot see that" in w for w in warnings)
    failed = int(result.incidents["requests_failed"].iloc[0])
    assert failed > 0 and any(f"while {failed} request(s) sent to it failed (the error status)" in w for w in warnings)
