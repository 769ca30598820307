"""The ``lbsim`` command line, end to end in a temporary folder.

``run`` must write every file of the contract (contract/scenario-and-results-v1.md,
"Result folder") with the contract's keys and columns, exit 0 when every expectation
holds and 1 with a readable table when one fails; an invalid file must give exit 2, a
message naming file, line and field path, no traceback and no result folder. Results are
saved atomically: no temporary folder is left behind, and a save that fails half way
leaves nothing (or the previous result) in place.

Most tests call :func:`lbsim.cli.main.main` in-process (fast); the ones about tracebacks and
exit statuses of the real process use ``python -m lbsim.cli.main``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import find_line, make_scenario, scenario_yaml

import lbsim
from lbsim.cli.main import main

SUMMARY_KEYS = {"requests", "ok", "errors", "latency", "throughput", "duration", "seed", "lbsim_version"}
LATENCY_KEYS = {"mean", "p50", "p95", "p99"}
TRANSITION_COLUMNS = ["time", "object_type", "name", "field", "old", "new"]
MEMBER_COLUMNS = ["name", "requests", "ok", "errors", "share", "mean", "p50", "p95", "p99"]
INCIDENT_COLUMNS = [
    "kind",
    "target",
    "fault_time",
    "detected_time",
    "api_visible_time",
    "recovered_time",
    "requests_failed",
    "requests_slowed",
]
REQUEST_COLUMNS = ["time", "client", "member", "latency", "outcome"]
OBJECT_TYPES = {"loadbalancer", "listener", "pool", "member", "healthmonitor", "amphora"}
STATUS_FIELDS = {"provisioning_status", "operating_status", "data_plane_state"}
CONTRACT_FILES = {
    "summary.json",
    "transitions.csv",
    "members.csv",
    "expectations.csv",
    "status.json",
    "incidents.csv",
}


def _contract_prefix(columns: Any, contract: list[str]) -> bool:
    """The contract's columns come first, in its order (later versions may add more)."""
    return list(columns)[: len(contract)] == contract


def _leftovers(parent: Path, keep: set[str]) -> list[str]:
    """Entries of ``parent`` other than ``keep`` (temporary folders are hidden ones)."""
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(lbsim.__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "lbsim.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- a successful run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base scenario run once through the CLI, with ``--log-requests``."""
    base = tmp_path_factory.mktemp("run")
    scenario = base / "tiny.yaml"
    scenario.write_text(scenario_yaml(make_scenario()), encoding="utf-8")
    out = base / "results" / "tiny"
    assert main(["run", str(scenario), "--out", str(out), "--quiet", "--log-requests"]) == 0
    return out


def test_run_writes_every_contract_file_and_no_temporary_folder(run_dir: Path) -> None:
    names = {p.name for p in run_dir.iterdir()}
    assert CONTRACT_FILES | {"requests.parquet"} <= names
    assert _leftovers(run_dir.parent, {run_dir.name}) == []


def test_summary_json_has_the_contract_keys(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text())
    assert set(s) >= SUMMARY_KEYS
    assert set(s["latency"]) >= LATENCY_KEYS
    assert s["seed"] == 7
    assert s["duration"] == 5
    assert s["lbsim_version"] == lbsim.__version__
    assert isinstance(s["errors"], dict)
    assert s["requests"] == s["ok"] + sum(s["errors"].values())
    # 20 requests/s for 5 s: about 100, certainly between 50 and 200
    assert 50 <= s["requests"] <= 200
    lat = s["latency"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert s["throughput"] == pytest.approx(s["ok"] / 5, rel=1e-6)


def test_members_csv(run_dir: Path) -> None:
    members = pd.read_csv(run_dir / "members.csv")
    assert _contract_prefix(members.columns, MEMBER_COLUMNS)
    assert sorted(members["name"]) == ["web-1", "web-2"]
    s = json.loads((run_dir / "summary.json").read_text())
    assert members["requests"].sum() == s["requests"]
    assert members["ok"].sum() == s["ok"]
    assert (members["requests"] == members["ok"] + members["errors"]).all()
    assert members["share"].sum() == pytest.approx(1.0, abs=1e-6)


def test_transitions_csv(run_dir: Path) -> None:
    tr = pd.read_csv(run_dir / "transitions.csv", keep_default_na=False)
    assert _contract_prefix(tr.columns, TRANSITION_COLUMNS)
    assert set(tr["object_type"]) <= OBJECT_TYPES
    assert set(tr["field"]) <= STATUS_FIELDS
    times = tr["time"].astype(float)
    assert times.is_monotonic_increasing
    assert times.min() >= 0 and times.max() <= 5
    # web-1 refuses from t=2; its checks (every 1 s, fall 2) take it DOWN before the end
    down = tr[(tr["name"] == "web-1") & (tr["field"] == "data_plane_state") & tr["new"].str.startswith("DOWN")]
    assert len(down) and down["time"].astype(float).min() >= 2
    # every row is a change
    assert (tr["old"] != tr["new"]).all()


def test_expectations_csv(run_dir: Path) -> None:
    ex = pd.read_csv(run_dir / "expectations.csv", keep_default_na=False)
    assert {"expected", "found", "result"} <= set(ex.columns)
    assert len(ex) == len(make_scenario()["expect"])
    row = ex.iloc[0]
    assert (row["expected"], row["found"], row["result"]) == ("ACTIVE", "ACTIVE", "pass")


def test_incidents_csv(run_dir: Path) -> None:
    inc = pd.read_csv(run_dir / "incidents.csv")
    assert _contract_prefix(inc.columns, INCIDENT_COLUMNS)
    assert len(inc) == 1
    row = inc.iloc[0]
    assert "refuse" in row["kind"] and row["target"] == "web-1"
    assert row["fault_time"] == 2.0
    assert pd.isna(row["recovered_time"])  # never recovered: the field is empty
    assert 2.0 <= row["detected_time"] <= 5.0


def test_status_json_has_the_octavia_status_tree_shape(run_dir: Path) -> None:
    tree = json.loads((run_dir / "status.json").read_text())
    assert set(tree) == {"statuses"} and set(tree["statuses"]) == {"loadbalancer"}
    lb = tree["statuses"]["loadbalancer"]
    common = {"id", "name", "operating_status", "provisioning_status"}
    assert set(lb) == common | {"listeners"}
    assert lb["name"] == "lb1"
    (listener,) = lb["listeners"]
    assert set(listener) == common | {"pools"}
    assert listener["name"] == "http"
    (pool,) = listener["pools"]
    assert set(pool) == common | {"health_monitor", "members"}
    assert pool["name"] == "web"
    assert set(pool["health_monitor"]) == common | {"type"}
    assert pool["health_monitor"]["type"] == "HTTP"
    members = {m["name"]: m for m in pool["members"]}
    assert set(members) == {"web-1", "web-2"}
    for name, address in (("web-1", "10.0.0.11"), ("web-2", "10.0.0.12")):
        assert set(members[name]) == common | {"address", "protocol_port"}
        assert (members[name]["address"], members[name]["protocol_port"]) == (address, 8080)
    # web-1 has refused connections since t=2 and heartbeats come every second
    assert members["web-1"]["operating_status"] == "ERROR"
    assert members["web-2"]["operating_status"] == "ONLINE"
    assert pool["operating_status"] == "DEGRADED"
    ids = [lb["id"], listener["id"], pool["id"], pool["health_monitor"]["id"], *(m["id"] for m in pool["members"])]
    assert len(set(ids)) == len(ids)


def test_requests_parquet_has_the_contract_columns(run_dir: Path) -> None:
    req = pd.read_parquet(run_dir / "requests.parquet")
    assert _contract_prefix(req.columns, REQUEST_COLUMNS)
    s = json.loads((run_dir / "summary.json").read_text())
    assert len(req) == s["requests"]
    assert (req["outcome"] == "ok").sum() == s["ok"]
    assert set(req["member"]) <= {"web-1", "web-2", ""}
    net = ipaddress.ip_network("198.51.100.0/24")
    assert all(ipaddress.ip_address(c) in net for c in req["client"])
    assert req["time"].between(0, 5).all()
    assert (req.loc[req["outcome"] == "ok", "latency"] > 0).all()


def test_without_log_requests_there_is_no_requests_file(tmp_path: Path, write_scenario: Callable[..., Path]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(write_scenario(make_scenario())), "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= CONTRACT_FILES
    assert not (out / "requests.parquet").exists()


def test_default_result_folder_is_named_after_the_scenario(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(make_scenario())
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--quiet"]) == 0
    (folder,) = (tmp_path / "results").iterdir()
    assert re.fullmatch(r"tiny-\d{8}T\d{6}", folder.name)
    assert (folder / "summary.json").is_file()


# -- expectations -----------------------------------------------------------------------------


def test_failing_expectation_exits_1_with_a_table_naming_it(
    tmp_path: Path,
    write_scenario: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich sizes its tables to the terminal
    d = make_scenario()
    d["expect"].append({"at": 1, "member": "web-2", "operating_status": "ERROR"})
    out = tmp_path / "out"
    assert main(["run", str(write_scenario(d)), "--out", str(out), "--quiet"]) == 1
    printed = capsys.readouterr().out
    failing = [line for line in printed.splitlines() if "web-2" in line]
    assert len(failing) == 1, printed
    line = failing[0]
    assert re.search(r"\bERROR\b.*\bONLINE\b.*\bfail\b", line), line  # expected, found, result
    assert "1 expectation failed" in printed
    # the run still wrote its results, with the failure recorded
    ex = pd.read_csv(out / "expectations.csv", keep_default_na=False)
    assert list(ex["result"]) == ["pass", "fail"]
    assert ex.iloc[1]["found"] == "ONLINE"


def test_holding_expectations_exit_0_and_say_so(
    tmp_path: Path, write_scenario: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(write_scenario(make_scenario())), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "all 1 expectations held" in capsys.readouterr().out


# -- invalid input ----------------------------------------------------------------------------


def _bad_scenario() -> str:
    d = make_scenario()
    d["loadbalancer"]["pools"][0]["members"][0]["weight"] = 300
    return scenario_yaml(d)


@pytest.mark.parametrize("with_out", [True, False])
def test_invalid_file_exits_2_without_traceback_or_results(tmp_path: Path, with_out: bool) -> None:
    text = _bad_scenario()
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    args = ["run", str(path), "--quiet"] + (["--out", str(tmp_path / "out")] if with_out else [])
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    line = find_line(text, "weight: 300", exact=True)
    assert f"{path}:{line}: loadbalancer.pools[0].members[0].weight:" in proc.stderr
    assert "less than or equal to 256" in proc.stderr
    assert _leftovers(tmp_path, {"bad.yaml"}) == []  # no out/, no results/, no temp folder


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "cannot read file"),
        ("broken.yaml", "name: [unclosed\n", "not valid YAML"),
        ("list.yaml", "- a\n- b\n", "expected a YAML mapping"),
    ],
)
def test_unloadable_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err
    assert not (tmp_path / "out").exists()


# -- validate and schema ---------------------------------------------------------------------


def test_validate_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_scenario: Callable[..., Path]
) -> None:
    good = write_scenario(make_scenario(), "good.yaml")
    bad = write_scenario(_bad_scenario(), "bad.yaml")
    assert main(["validate", str(good)]) == 0
    assert f"{good}: ok" in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}:" in capsys.readouterr().err
    assert main(["validate", str(good), str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.out.count(f"{good}: ok") == 2
    assert "members[0].weight" in captured.err
    assert _leftovers(tmp_path, {"good.yaml", "bad.yaml"}) == []  # validate writes nothing


def test_validate_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(_bad_scenario(), encoding="utf-8")
    proc = _cli("validate", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.yaml:" in proc.stderr


def test_schema_is_json_schema_of_the_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "loadbalancer" in schema["properties"]
    assert {"name", "duration", "loadbalancer"} <= set(schema["required"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(make_scenario())) == []
    d = make_scenario()
    d["loadbalancer"]["pools"][0]["members"][0]["weight"] = 300
    d["loadbalancer"]["listeners"][0]["protocl"] = "HTTP"
    errors = list(validator.iter_errors(d))
    assert len(errors) == 2


# -- atomic results ----------------------------------------------------------------------------


def test_a_failed_save_leaves_no_folder(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(make_scenario())
    results = tmp_path / "results"
    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def failing_to_csv(self: pd.DataFrame, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # after summary.json and one CSV are already on disk
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_to_csv)
    try:
        code: int | None = main(["run", str(path), "--out", str(results / "r"), "--quiet"])
    except OSError:
        code = None  # the CLI let the error through; the folder is what matters here
    assert code != 0
    assert calls["n"] == 2
    assert not (results / "r").exists()
    assert _leftovers(results, set()) == []


def test_a_failed_save_keeps_the_previous_result(
    tmp_path: Path, write_scenario: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_scenario(make_scenario())
    out = tmp_path / "r"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr("lbsim.results.folder._write_json", broken)
    with contextlib.suppress(OSError):
        main(["run", str(path), "--out", str(out), "--seed", "99", "--quiet"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _leftovers(tmp_path, {"r", "scenario.yaml"}) == []


def test_rerun_into_the_same_folder_replaces_it(tmp_path: Path, write_scenario: Callable[..., Path]) -> None:
    path = write_scenario(make_scenario())
    out = tmp_path / "r"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--log-requests"]) == 0
    assert main(["run", str(path), "--out", str(out), "--quiet", "--seed", "3"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    assert not (out / "requests.parquet").exists()  # nothing of the old run survives
    assert _leftovers(tmp_path, {"r", "scenario.yaml"}) == []
