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


def test_report_layout(scenario_dict: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Expectations coloured, incidents narrow with units, warm-up not drawn as 0 req/s."""
    import numpy as np

    from lbsim.figures import plots
    from lbsim.report.html import RunFolder, _expectations_html, _incidents_html

    scenario_dict["warmup"] = 2
    scenario_dict["expect"].append({"at": 4, "member": "web-1", "operating_status": "OFFLINE"})  # fails
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    result.save(tmp_path / "r")
    run = RunFolder.read(tmp_path / "r")
    exp_html = _expectations_html(run.expectations)
    assert "<tr class='pass'>" in exp_html and "<tr class='fail'>" in exp_html
    inc_html = _incidents_html(run.incidents)
    assert "class='wide'" in inc_html and "detected [+s]" in inc_html and "fault_end_time" not in inc_html
    fig = plots.throughput(run.timeseries, warmup=2.0)
    ok_line = fig.axes[0].get_lines()[0]
    x, y = ok_line.get_xdata(), np.asarray(ok_line.get_ydata(), dtype=float)
    assert np.isnan(y[np.asarray(x) < 2]).all() and np.isfinite(y[np.asarray(x) >= 2]).any()


def test_a_metric_that_is_zero_everywhere_gets_a_readable_axis() -> None:
    import pandas as pd

    from lbsim.figures import plots

    pts = pd.DataFrame(
        {
            "algorithm": ["A", "B"],
            "error_rate_mean": [0.0, 0.0],
            "error_rate_ci_lo": [0.0, 0.0],
            "error_rate_ci_hi": [0.0, 0.0],
        }
    )
    ax = plots.metric_ci(pts, "algorithm", "error_rate").axes[0]
    assert ax.get_ylim() == (0.0, 1.0)
    assert any("0 in every run" in t.get_text() for t in ax.texts)
    pts2 = pts.assign(latency_p99_mean=[0.012, 0.02], latency_p99_ci_lo=[0.01, 0.018], latency_p99_ci_hi=[0.014, 0.022])
    ax2 = plots.metric_ci(pts2, "algorithm", "latency_p99", scale=1000.0).axes[0]
    assert max(p.get_height() for p in ax2.patches) == pytest.approx(20.0)


def test_object_graph_legend_is_outside_the_axes(scenario_dict: dict[str, Any]) -> None:
    from lbsim.figures import plots

    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    fig = plots.object_graph(result.status)
    assert fig.legends and not fig.axes[0].get_legend()


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("loadbalancer.pools.0.healthmonitor.delay", True),
        ("octavia.heartbeat_interval", True),
        ("traffic.0.arrival.rate", False),
    ],
)
def test_sweep_tables_show_detection_times_for_monitor_and_heartbeat_knobs(label: str, shown: bool) -> None:
    from types import SimpleNamespace

    import pandas as pd

    from lbsim.cli.experiments import _incident_columns

    cols = {f"incident_0_{w}_{s}": [1.0] for w in ("detect", "api") for s in ("mean", "ci_lo", "ci_hi")}
    res = SimpleNamespace(labels=[label], points=pd.DataFrame(cols))
    got = _incident_columns(res)
    if shown:
        assert got == [
            ("incident 0 detected (s)", "incident_0_detect"),
            ("incident 0 API visible (s)", "incident_0_api"),
        ]
    else:
        assert got == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0123, "12.3 ms"), (9.9, "9900.0 ms"), (44.1477, "44.1 s"), (12345.0, "12,345.0 s")],
)
def test_latencies_print_with_a_readable_unit(seconds: float | None, text: str) -> None:
    from lbsim.cli.main import _fmt_s

    assert _fmt_s(seconds) == text
