"""Reports: the HTML names every section and embeds every figure; every PNG shows data.

"Shows data" is checked twice: on the rendered pixels (enough non-background pixels and
colour variance, so a blank axis fails) and on the figure objects (every axes draws
lines with points, bars, bands or collections).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from lbsim import load_scenario, run_scenario
from lbsim.cli.experiments import main as cli
from lbsim.experiments.compare import compare
from lbsim.experiments.design import scenario_data
from lbsim.experiments.plan import plan
from lbsim.experiments.sweep import sweep
from lbsim.report.html import ReportError, RunFolder, build_report, experiment_figures, folder_kind, run_figures
from lbsim.scenario import model as m

ROOT = Path(__file__).absolute().parents[1]
SCENARIOS = ROOT / "scenarios" / "experiments"

RUN_SECTIONS = [
    "Scenario summary",
    "Object graph",
    "Status timeline",
    "Throughput",
    "Latency over time",
    "Latency CDF",
    "Per-member load",
    "Incidents",
    "Expectations",
]
EXPERIMENT_SECTIONS = ["Experiment summary", "Metrics vs parameters", "Per-point table"]


def png_shows_data(path: Path) -> None:
    """Fail unless the PNG is a real picture of something, not an empty frame."""
    assert path.stat().st_size > 2000, path
    img = mpimg.imread(path)[..., :3]
    background = np.all(img > 0.97, axis=-1)
    assert background.mean() < 0.97, f"{path.name}: almost blank"
    assert img.std() > 0.05, f"{path.name}: no contrast"
    colours = np.unique((img.reshape(-1, 3) * 15).round().astype(int), axis=0)
    assert len(colours) > 8, f"{path.name}: only {len(colours)} colours"


def axes_have_data(fig: Figure) -> None:
    """Every axes that shows anything draws data: lines with points, bars or collections."""
    assert fig.axes, "a figure without axes"
    for ax in fig.axes:
        lines = [ln for ln in ax.lines if len(np.atleast_1d(ln.get_xdata())) > 1]
        bars = [p for p in ax.patches if p.get_width() > 0 or p.get_height() > 0]
        collections = [c for c in ax.collections if len(c.get_paths()) > 0 or len(c.get_offsets()) > 0]
        assert lines or bars or collections, f"axes {ax.get_title()!r} draws nothing"


def check_html(html_path: Path, sections: list[str]) -> None:
    text = html_path.read_text(encoding="utf-8")
    for title in sections:
        assert re.search(rf"<h2>{re.escape(title)}</h2>", text), f"section {title!r} missing"
    pngs = sorted(html_path.parent.glob("*.png"))
    assert pngs
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(p.read_bytes() for p in pngs)
    assert "src='http" not in text and "<script" not in text  # self-contained
    for p in pngs:
        png_shows_data(p)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = SCENARIOS / "small-web.yaml"
    res = run_scenario(load_scenario(path), scenario_yaml=path.read_text(encoding="utf-8"))
    return res.save(tmp_path_factory.mktemp("run") / "result")


def test_run_report_has_every_section_and_figure(run_folder: Path) -> None:
    html = build_report(run_folder)
    assert html == run_folder / "report" / "report.html"
    check_html(html, RUN_SECTIONS)
    assert sorted(p.stem for p in html.parent.glob("*.png")) == [
        "cdf",
        "graph",
        "latency",
        "members",
        "throughput",
        "timeline",
    ]
    for png in html.parent.glob("*.png"):
        png_shows_data(png)
    text = html.read_text()
    # the incident of the scenario (web-1 refuses at 20 s) and its expectations are listed
    assert "member_refuse" in text and "web-1" in text
    assert text.count("<td class='pass'>pass</td>") == 3  # coloured verdicts (issue 14)


def test_run_figures_draw_the_run(run_folder: Path) -> None:
    run = RunFolder.read(run_folder)
    figs = run_figures(run)
    for fig in figs.values():
        axes_have_data(fig)
    # the timeline has one band row per (object, field) in transitions.csv
    rows = run.transitions.groupby(["object_type", "name", "field"]).ngroups
    assert len(figs["timeline"].axes[0].get_yticklabels()) == rows
    # the graph has the tree's objects: lb, listener, pool, monitor and three members
    assert len(figs["graph"].axes[0].collections[-1].get_offsets()) in (7, 8)
    # the throughput plot marks both events of the scenario (fault and recovery)
    dashed = [ln for ln in figs["throughput"].axes[0].lines if ln.get_linestyle() == "--"]
    assert sorted(float(ln.get_xdata()[0]) for ln in dashed) == [20.0, 40.0]


def _short(path: Path, duration: float) -> m.Scenario:
    data = scenario_data(load_scenario(path))
    data["duration"] = duration
    data["events"] = [e for e in data["events"] if e["at"] < duration]
    data["expect"] = [e for e in data["expect"] if e["at"] < duration]
    return m.Scenario.model_validate(data)


def test_sweep_report_plots_every_metric_against_the_parameters(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    sweep(
        _short(SCENARIOS / "small-web.yaml", 36),
        ["traffic.0.arrival.rate=60,120,180", "loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,LEAST_CONNECTIONS"],
        replications=2,
        jobs=1,
        out=out,
    )
    assert folder_kind(out) == "sweep"
    html = build_report(out)
    check_html(html, [*EXPERIMENT_SECTIONS, "Expectations"])
    names = {p.stem for p in html.parent.glob("*.png")}
    for metric in (
        "latency_p99",
        "latency_mean",
        "error_rate",
        "throughput",
        "availability",
        "load_imbalance",
        "incident_0_detect",
        "incident_0_api",
    ):
        assert f"sweep-{metric}" in names
    figs = experiment_figures(out)
    for fig in figs.values():
        axes_have_data(fig)
    # numeric x: one line per value of the second parameter, three points each, with a band
    ax = figs["sweep-throughput"].axes[0]
    assert [len(ln.get_xdata()) for ln in ax.lines if ln.get_marker() == "o"] == [3, 3]
    assert len(ax.collections) >= 2


def test_compare_and_plan_reports(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "slow-member.yaml").model_copy(update={"duration": 30.0})
    compare(sc, "ROUND_ROBIN,LEAST_CONNECTIONS", replications=3, jobs=1, out=tmp_path / "cmp")
    html = build_report(tmp_path / "cmp")
    check_html(html, [*EXPERIMENT_SECTIONS, "Comparison table", "Ranking on p99 latency"])
    assert {p.stem for p in html.parent.glob("*.png")} == {"latency-cdf", "p99", "member-load", "error-rate"}
    mmc = load_scenario(SCENARIOS / "mmc.yaml").model_copy(update={"duration": 120.0})
    plan(mmc, ["mean<0.15", "p99<1.0"], replications=3, jobs=1, out=tmp_path / "plan")
    html = build_report(tmp_path / "plan")
    check_html(html, [*EXPERIMENT_SECTIONS, "Plan"])
    assert {p.stem for p in html.parent.glob("*.png")} == {"plan-latency_mean", "plan-latency_p99"}
    assert "members</b> meet every SLO" in html.read_text()
    for folder in ("cmp", "plan"):
        for fig in experiment_figures(tmp_path / folder).values():
            axes_have_data(fig)


def test_run_report_without_the_scenario_file(tmp_path: Path) -> None:
    res = run_scenario(load_scenario(SCENARIOS / "small-web.yaml"))  # saved without scenario.yaml text
    folder = res.save(tmp_path / "bare")
    html = build_report(folder)
    check_html(html, RUN_SECTIONS)


def test_report_cli_and_bad_folders(run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["report", str(run_folder), "--out", str(tmp_path / "r")]) == 0
    assert "report.html" in capsys.readouterr().out
    assert (tmp_path / "r" / "report.html").is_file()
    with pytest.raises(ReportError, match="neither a run result folder"):
        build_report(tmp_path / "r")
    assert cli(["report", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
