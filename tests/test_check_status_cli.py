"""``lbsim check`` (suite runner, exit codes, JUnit XML) and ``lbsim status`` (status tree
of a result folder at a time).

The status tree is checked against ``transitions.csv`` read with plain pandas (the last
value stamped at or before T), not through the timeline class the command uses, and its
final form against the ``status.json`` the run wrote.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.cli.main import collect_scenarios, main
from lbsim.results import junit

BASE = """\
version: 1
name: {name}
seed: 3
duration: 150
octavia:
  heartbeat_interval: 10
  workers: {{update: {{dist: constant, value: 2}}}}
loadbalancer:
  name: lb1
  listeners:
    - {{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: HTTP, delay: 5, timeout: 3, max_retries: 3, max_retries_down: 3}}
      members:
        - {{name: web-1, address: 10.0.0.11, protocol_port: 8080, concurrency: 4}}
        - {{name: web-2, address: 10.0.0.12, protocol_port: 8080, concurrency: 4}}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: 10}}}}
events:
  - {{at: 61, member: web-1, behaviour: refuse}}
  - {{at: 111, member: web-1, behaviour: healthy}}
expect:
{expect}"""

#: rules: DOWN by 61 + 3*5 = 76, shown by 86; back UP by 111 + 15 = 126, shown by 136
GOOD_EXPECT = """\
  - {at: 60, pool: web, operating_status: ONLINE}
  - {at: 95, pool: web, operating_status: DEGRADED}
  - {within: [71, 86], member: web-1, transition: [ONLINE, ERROR]}
"""
#: two wrong ones: nothing is DEGRADED before the fault, and web-2 never fails
BAD_EXPECT = (
    GOOD_EXPECT
    + """\
  - {at: 30, pool: web, operating_status: DEGRADED}
  - {within: [0, 150], member: web-2, transition: [ONLINE, ERROR]}
"""
)
INVALID = BASE.format(name="broken", expect=GOOD_EXPECT).replace("concurrency: 4}", "concurency: 4}")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _junit(path: Path) -> tuple[ET.Element, ET.Element, list[ET.Element]]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root, suites[0], suites[0].findall("testcase")


# ------------------------------------------------------------------------------- check


def test_check_all_pass_exits_0_with_a_clean_report(tmp_path: Path, capsys: Any) -> None:
    good = _write(tmp_path / "s" / "good.yaml", BASE.format(name="good", expect=GOOD_EXPECT))
    report = tmp_path / "out" / "junit.xml"
    assert main(["check", str(good), "--junit", str(report)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "good" in out and "3/3" in out
    _root, suite, cases = _junit(report)
    assert suite.get("tests") == "1" and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert [c.get("name") for c in cases] == ["good"]
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert float(cases[0].get("time", "-1")) >= 0


def test_check_failing_expectation_exits_1_and_lists_it(tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "suite"
    _write(folder / "a-good.yaml", BASE.format(name="good", expect=GOOD_EXPECT))
    _write(folder / "b-bad.yaml", BASE.format(name="bad", expect=BAD_EXPECT))
    report = tmp_path / "junit.xml"
    assert main(["check", str(folder), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    bad_line = next(i for i, line in enumerate(lines) if "FAIL" in line)
    assert "bad" in lines[bad_line] and "3/5" in lines[bad_line]
    listed = "\n".join(lines[bad_line + 1 : bad_line + 3])
    assert "at 30: pool web operating_status: expected DEGRADED, found ONLINE" in listed
    assert "member web-2" in listed and "expected ONLINE -> ERROR" in listed
    assert "1 passed, 1 failed" in out

    root, suite, cases = _junit(report)
    assert root.get("tests") == suite.get("tests") == "2"
    assert suite.get("failures") == "1" and suite.get("errors") == "0"
    by_name = {c.get("name"): c for c in cases}
    assert by_name["good"].find("failure") is None
    failure = by_name["bad"].find("failure")
    assert failure is not None
    assert failure.get("message") == "2 of 5 expectations failed"
    text = failure.text or ""
    assert "expected DEGRADED, found ONLINE" in text
    assert "web-2" in text and "found no change" in text


def test_check_invalid_file_exits_2_but_still_runs_the_valid_ones(
    tmp_path: Path, capsys: Any
) -> None:
    good = _write(tmp_path / "good.yaml", BASE.format(name="good", expect=GOOD_EXPECT))
    bad_result = _write(tmp_path / "bad.yaml", BASE.format(name="bad", expect=BAD_EXPECT))
    broken = _write(tmp_path / "broken.yaml", INVALID)
    report = tmp_path / "junit.xml"
    rc = main(["check", str(good), str(broken), str(bad_result), "--junit", str(report)])
    assert rc == 2  # an invalid file outranks a failed expectation
    captured = capsys.readouterr()
    assert "INVALID" in captured.out and "concurency" in captured.out
    assert "PASS" in captured.out and "FAIL" in captured.out
    _root, suite, cases = _junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    errors = [c for c in cases if c.find("error") is not None]
    assert len(errors) == 1 and "concurency" in (errors[0].find("error").text or "")  # type: ignore[union-attr]


def test_check_missing_path_and_empty_folder_exit_2(tmp_path: Path) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty")]) == 2


def test_check_reports_a_crashing_run_as_an_error_and_exits_1(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lbsim.api

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(lbsim.api, "run_scenario", boom)
    good = _write(tmp_path / "good.yaml", BASE.format(name="good", expect=GOOD_EXPECT))
    report = tmp_path / "junit.xml"
    assert main(["check", str(good), "--junit", str(report)]) == 1
    assert "RuntimeError: engine exploded" in capsys.readouterr().out
    _root, suite, cases = _junit(report)
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")
    error = cases[0].find("error")
    assert error is not None and "engine exploded" in (error.text or "")


def test_run_and_validate_keep_their_exit_codes(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.yaml", BASE.format(name="good", expect=GOOD_EXPECT))
    bad = _write(tmp_path / "bad.yaml", BASE.format(name="bad", expect=BAD_EXPECT))
    broken = _write(tmp_path / "broken.yaml", INVALID)
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(good), str(broken)]) == 2
    assert main(["run", str(good), "--out", str(tmp_path / "r1"), "--quiet"]) == 0
    assert main(["run", str(bad), "--out", str(tmp_path / "r2"), "--quiet"]) == 1
    assert (tmp_path / "r2" / "expectations.csv").is_file()
    assert main(["run", str(broken), "--out", str(tmp_path / "r3"), "--quiet"]) == 2
    assert not (tmp_path / "r3").exists()


def test_collect_scenarios_recurses_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    for rel in ("a.yaml", "sub/b.yml", "sub/deeper/c.yaml", ".hidden/d.yaml", "notes.txt"):
        _write(tmp_path / rel, "x")
    files, missing = collect_scenarios([str(tmp_path), str(tmp_path / "a.yaml"), "no/such"])
    names = sorted(f.relative_to(tmp_path).as_posix() for f in files)
    assert names == ["a.yaml", "sub/b.yml", "sub/deeper/c.yaml"]  # a.yaml once
    assert missing == ["no/such"]


def test_check_jobs_gives_the_same_verdicts_as_serial(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    for i in range(3):
        _write(folder / f"good{i}.yaml", BASE.format(name=f"good{i}", expect=GOOD_EXPECT))
    _write(folder / "bad.yaml", BASE.format(name="bad", expect=BAD_EXPECT))
    serial, parallel = tmp_path / "serial.xml", tmp_path / "parallel.xml"
    assert main(["check", str(folder), "--junit", str(serial)]) == 1
    assert main(["check", str(folder), "--jobs", "2", "--junit", str(parallel)]) == 1

    def verdicts(p: Path) -> list[tuple[str | None, bool]]:
        return [(c.get("name"), c.find("failure") is not None) for c in _junit(p)[2]]

    assert verdicts(serial) == verdicts(parallel)
    assert sum(failed for _n, failed in verdicts(parallel)) == 1


def test_check_out_saves_a_result_folder_per_scenario(tmp_path: Path) -> None:
    a = _write(tmp_path / "x" / "same.yaml", BASE.format(name="one", expect=GOOD_EXPECT))
    b = _write(tmp_path / "y" / "same.yaml", BASE.format(name="two", expect=GOOD_EXPECT))
    out = tmp_path / "results"
    assert main(["check", str(a), str(b), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["same", "same-2"]
    assert (out / "same" / "status.json").is_file() and (out / "same-2" / "transitions.csv").is_file()


def test_junit_is_replaced_atomically_and_carries_unprintable_text(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text("old, not XML")
    cases = [
        junit.Case("ok", "lbsim.ok", 0.5),
        junit.Case("f", "lbsim.f", 1.25, failure="1 of 2 expectations failed", detail="a\x01b <&>"),
        junit.Case("e", "lbsim.e", 0.0, error="invalid scenario file", detail="x.yaml:3: bad"),
    ]
    junit.write(report, cases)
    assert [p.name for p in tmp_path.iterdir()] == ["r.xml"]  # no temporary file left
    assert report.stat().st_mode & 0o044 == 0o044  # readable by CI, unlike mkstemp's 0600
    _root, suite, parsed = _junit(report)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert float(suite.get("time", "0")) == pytest.approx(1.75)
    failure = parsed[1].find("failure")
    assert failure is not None and failure.text == "a?b <&>"


# ------------------------------------------------------------------------------ status

#: the base scenario plus API calls: a member created (accepted); a member creation and
#: a default-pool switch refused while the LB is locked by it; web-2 deleted; finally the
#: listener switched to the (so far unattached) pool `spare`
API_EVENTS = """\
  - {at: 70, api: create, member: web-3, pool: web, set: {address: 10.0.0.13, protocol_port: 8080}}
  - {at: 71, api: create, member: web-4, pool: web, set: {address: 10.0.0.14, protocol_port: 8080}}
  - {at: 71.5, api: update, listener: http, set: {default_pool: spare}}
  - {at: 130, api: delete, member: web-2}
  - {at: 140, api: update, listener: http, set: {default_pool: spare}}
"""
SPARE_POOL = """\
    - name: spare
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      members:
        - {name: spare-1, address: 10.0.1.11, protocol_port: 8080, concurrency: 4}
traffic:
"""
SWITCH = 140.0


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run with a fault (61-111) and API creations/deletion."""
    root = tmp_path_factory.mktemp("status")
    text = (
        BASE.format(name="status-run", expect=GOOD_EXPECT)
        .replace("expect:\n", API_EVENTS + "expect:\n")
        .replace("traffic:\n", SPARE_POOL)
    )
    scenario = _write(root / "status.yaml", text)
    out = root / "result"
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    return out


def _status(capsys: Any, folder: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["status", str(folder), *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _expected_value(transitions: pd.DataFrame, kind: str, name: str, fld: str, t: float) -> str:
    rows = transitions[
        (transitions.object_type == kind)
        & (transitions.name == name)
        & (transitions.field == fld)
        & (transitions.time <= t)
    ]
    return str(rows.iloc[-1].new) if len(rows) else ""


def _objects(tree: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    lb = tree["statuses"]["loadbalancer"]
    out: list[tuple[str, dict[str, Any]]] = [("loadbalancer", lb)]
    for li in lb["listeners"]:
        out.append(("listener", li))
        for pool in li["pools"]:
            out.append(("pool", pool))
            if "health_monitor" in pool:
                out.append(("healthmonitor", pool["health_monitor"]))
            out.extend(("member", mem) for mem in pool["members"])
    return out


def _assert_matches_transitions(tree: dict[str, Any], transitions: pd.DataFrame, t: float) -> None:
    for kind, obj in _objects(tree):
        for fld in ("operating_status", "provisioning_status"):
            assert obj[fld] == _expected_value(transitions, kind, obj["name"], fld, t), (kind, obj, t)
    # nothing alive at t is missing, apart from the pool no listener uses (and its members)
    unattached = {"spare", "spare-1"} if t < SWITCH else {"web", "web-1", "web-3", "web-hm"}
    shown = {(k, o["name"]) for k, o in _objects(tree)}
    prov = transitions[(transitions.field == "provisioning_status") & (transitions.time <= t)]
    for (kind, name), rows in prov.groupby(["object_type", "name"]):
        if kind != "amphora" and name not in unattached and rows.iloc[-1].new not in ("", "DELETED"):
            assert (kind, name) in shown, (kind, name, t)
    assert not any(name in unattached for _k, name in shown)


def test_status_at_the_end_is_status_json_byte_for_byte(result_dir: Path, capsys: Any) -> None:
    rc, out, _err = _status(capsys, result_dir)
    assert rc == 0
    assert out == (result_dir / "status.json").read_text()


def test_status_follows_the_fault(result_dir: Path, capsys: Any) -> None:
    transitions = pd.read_csv(result_dir / "transitions.csv", keep_default_na=False)
    degraded = transitions[
        (transitions.object_type == "pool") & (transitions.new == "DEGRADED")
    ].time.min()
    assert 71 <= degraded <= 86  # the rules, as in the scenario's expectation

    rc, out, _ = _status(capsys, result_dir, "--at", "60")
    tree = json.loads(out)
    lb = tree["statuses"]["loadbalancer"]
    pool = lb["listeners"][0]["pools"][0]
    assert rc == 0 and lb["operating_status"] == "ONLINE" and pool["operating_status"] == "ONLINE"
    assert [m["name"] for m in pool["members"]] == ["web-1", "web-2"]  # web-3 not created yet

    rc, out, _ = _status(capsys, result_dir, "--at", str(degraded + 0.5))
    tree = json.loads(out)
    lb = tree["statuses"]["loadbalancer"]
    pool = lb["listeners"][0]["pools"][0]
    members = {m["name"]: m for m in pool["members"]}
    assert lb["operating_status"] == "DEGRADED" and pool["operating_status"] == "DEGRADED"
    assert members["web-1"]["operating_status"] == "ERROR"
    assert members["web-3"]["provisioning_status"] == "ACTIVE"  # created at 70, pushed at 72
    assert "web-4" not in members  # refused with 409 (LB locked by the web-3 create)
    _assert_matches_transitions(tree, transitions, degraded + 0.5)


def test_status_shows_api_objects_only_while_they_exist(result_dir: Path, capsys: Any) -> None:
    api = pd.read_csv(result_dir / "api.csv", keep_default_na=False)
    assert list(api.code) == [201, 409, 409, 204, 200]

    def pools(at: float) -> dict[str, dict[str, Any]]:
        rc, out, _ = _status(capsys, result_dir, "--at", str(at))
        assert rc == 0
        listener = json.loads(out)["statuses"]["loadbalancer"]["listeners"][0]
        return {p["name"]: p for p in listener["pools"]}

    def members(at: float) -> dict[str, str]:
        return {m["name"]: m["provisioning_status"] for m in pools(at)["web"]["members"]}

    assert members(70) == {"web-1": "ACTIVE", "web-2": "ACTIVE", "web-3": "PENDING_CREATE"}
    assert list(pools(71.5)) == ["web"]  # the refused switch to `spare` changed nothing
    assert members(131) == {"web-1": "ACTIVE", "web-2": "PENDING_DELETE", "web-3": "ACTIVE"}
    assert members(SWITCH - 0.5) == {"web-1": "ACTIVE", "web-3": "ACTIVE"}
    created = next(m for m in pools(SWITCH - 0.5)["web"]["members"] if m["name"] == "web-3")
    assert (created["address"], created["protocol_port"]) == ("10.0.0.13", 8080)
    # the accepted switch: from then on the listener shows `spare`, and `web` nowhere
    after = pools(SWITCH)
    assert list(after) == ["spare"]
    assert [m["name"] for m in after["spare"]["members"]] == ["spare-1"]
    assert "health_monitor" not in after["spare"]
    final = json.loads((result_dir / "status.json").read_text())
    assert [p["name"] for p in final["statuses"]["loadbalancer"]["listeners"][0]["pools"]] == [
        "spare"
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=st.floats(min_value=0, max_value=150, allow_nan=False))
def test_status_at_any_time_matches_transitions(result_dir: Path, capsys: Any, t: float) -> None:
    rc, out, _ = _status(capsys, result_dir, "--at", repr(t))
    assert rc == 0
    transitions = pd.read_csv(result_dir / "transitions.csv", keep_default_na=False)
    _assert_matches_transitions(json.loads(out), transitions, t)


def test_status_osc_prints_the_client_shape(result_dir: Path, capsys: Any) -> None:
    rc, out, _ = _status(capsys, result_dir, "--osc")
    final = json.loads((result_dir / "status.json").read_text())
    assert rc == 0 and json.loads(out) == final["statuses"]
    assert out.startswith('{\n    "loadbalancer"')


@pytest.mark.parametrize("at", ["-1", "150.5", "1e9"])
def test_status_time_outside_the_run_is_exit_2(result_dir: Path, capsys: Any, at: str) -> None:
    rc, out, err = _status(capsys, result_dir, "--at", at)
    assert rc == 2 and out == ""
    assert "outside the run" in err and "150" in err


def test_status_missing_or_incomplete_folder_is_exit_2(
    result_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    rc, out, err = _status(capsys, tmp_path / "nothing-here")
    assert rc == 2 and out == "" and "no such result folder" in err
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "summary.json").write_text((result_dir / "summary.json").read_text())
    rc, out, err = _status(capsys, partial)
    assert rc == 2 and "transitions.csv is missing" in err


def test_status_without_api_csv_still_rebuilds_the_final_tree(
    result_dir: Path, tmp_path: Path, capsys: Any
) -> None:
    """Refused creations leave no status rows, so they stay hidden even without api.csv."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("summary.json", "transitions.csv", "scenario.yaml"):
        (copy / name).write_text((result_dir / name).read_text())
    rc, out, _ = _status(capsys, copy)
    assert rc == 0 and json.loads(out) == json.loads((result_dir / "status.json").read_text())
