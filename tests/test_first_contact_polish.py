"""Issue 14, polish a demanding user notices: schema defaults, wording, tables, units."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim.api import run_scenario
from lbsim.cli.main import main, plural
from lbsim.results.folder import RunResult
from lbsim.scenario.loader import json_schema, parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_schema_shows_factory_defaults() -> None:
    defs = json_schema()["$defs"]
    assert defs["Member"]["properties"]["service_time"]["default"] == {"dist": "exponential", "mean": 0.01}
    assert defs["TrafficSource"]["properties"]["clients"]["default"] == {"count": 1000, "cidr": "198.51.100.0/22"}
    assert defs["Pool"]["properties"]["members"]["default"] == []
    assert defs["OctaviaSettings"]["properties"]["workers"]["default"]["update"] == {"dist": "constant", "value": 1.0}


@pytest.mark.parametrize(("n", "text"), [(0, "0 pools"), (1, "1 pool"), (2, "2 pools"), (1000, "1,000 pools")])
def test_plural(n: int, text: str) -> None:
    assert plural(n, "pool") == text


def test_validate_says_one_pool(
    scenario_dict: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(scenario_dict))
    assert main(["validate", str(f)]) == 0
    assert "(tiny: 1 pool, 2 events, 1 expectation)" in capsys.readouterr().out


def test_expectations_frame_has_no_duplicated_index_column(scenario_dict: dict[str, Any], tmp_path: Path) -> None:
    scenario_dict["expect"].append({"at": 4, "member": "web-1", "operating_status": "ONLINE"})
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    df = result.expectations
    assert "index" not in df.columns and df.index.name == "index" and list(df.index) == [0, 1]
    result.save(tmp_path / "r")
    header = (tmp_path / "r" / "expectations.csv").read_text().splitlines()[0]
    assert header == "index,time,object_type,name,field,expected,found,result"  # the file is unchanged
    back = RunResult.load(tmp_path / "r").expectations
    assert list(back.columns) == list(df.columns) and list(back.index) == [0, 1]


def test_run_summary_shows_refused_api_calls(
    scenario_dict: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two updates at the same instant: the second meets PENDING_UPDATE and gets a 409
    scenario_dict["events"] = [
        {"at": 2, "api": "update", "member": "web-2", "set": {"weight": 2}},
        {"at": 2, "api": "update", "member": "web-2", "set": {"weight": 3}},
    ]
    scenario_dict["expect"] = []
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(scenario_dict))
    assert main(["run", str(f), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "API calls" in out and "refused 409: 1" in out


def test_scipy_is_in_the_dev_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert any(dep.startswith("scipy") for dep in extras)


def test_readme_stands_alone() -> None:
    """No link or path into ../shared; every docs/ link it makes exists."""
    import re

    text = (ROOT / "README.md").read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / target).is_file(), target


def test_readme_scenario_example_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Scenario format (version 1)") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "api: create" in block
    f = tmp_path / "example.yaml"
    f.write_text(block)
    assert main(["validate", str(f)]) == 0, capsys.readouterr().err
