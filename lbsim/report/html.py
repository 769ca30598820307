"""Self-contained HTML reports of a run result folder or an experiment folder.

``build_report(FOLDER)`` writes ``report.html`` (every figure embedded as a base64 PNG,
no external file or script needed to view it) and the same figures as PNG files beside
it, by default into ``FOLDER/report/``. Figures are rendered with matplotlib's Agg
backend through :mod:`lbsim.figures.plots`, so no display is needed.

A *run* folder (``lbsim run``: ``summary.json`` ...) gives: scenario summary, object
graph coloured by final status, status timeline per object, throughput over time with
fault markers, per-member load, incidents, expectations. An *experiment* folder
(``lbsim sweep``/``compare``/``plan``: ``experiment.json`` ...) gives its summary, the
metric-against-parameter plots with confidence bands, and its tables.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from lbsim._version import __version__
from lbsim.figures import plots
from lbsim.results.folder import TRANSITION_COLUMNS
from lbsim.results.manifest import ResultFolderError, read_duration, read_json_object, read_table, verify
from lbsim.scenario import model as m
from lbsim.sim.metrics import NBINS

#: metrics plotted against parameters in a sweep report (when present)
SWEEP_METRICS: dict[str, str] = {
    "latency_p99": "p99 latency [ms]",
    "latency_mean": "mean latency [ms]",
    "error_rate": "error rate",
    "availability": "availability",
    "throughput": "throughput [req/s]",
    "load_imbalance": "load imbalance (max/mean)",
}


class ReportError(ValueError):
    """The folder is not a run result or experiment folder (or is incomplete)."""


@dataclass
class Section:
    """One part of the report: a heading, optional HTML body and figures (name -> Figure)."""

    anchor: str
    title: str
    body: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)


def folder_kind(folder: Path) -> str:
    """``run``, ``sweep``, ``compare`` or ``plan``; raises :class:`ReportError` otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    if (folder / "experiment.json").is_file():
        try:
            kind = read_json_object(folder, "experiment.json").get("kind", "sweep")
        except ResultFolderError as err:
            raise ReportError(str(err)) from None
        return str(kind)
    if (folder / "summary.json").is_file():
        return "run"
    raise ReportError(
        f"{folder}: neither a run result folder (summary.json) nor an experiment folder (experiment.json)"
    )


# --------------------------------------------------------------------------------------
# HTML helpers
# --------------------------------------------------------------------------------------


def _table(df: pd.DataFrame, digits: int = 4) -> str:
    if df is None or len(df) == 0:
        return "<p class='none'>none</p>"

    def fmt(x: Any) -> str:
        if isinstance(x, float):
            return "–" if math.isnan(x) else f"{x:.{digits}g}"
        return str(x)

    return df.to_html(index=False, escape=True, na_rep="–", formatters={c: fmt for c in df.columns}, border=0)


def _kv(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{cells}</table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
th,td{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right}
th{background:#f4f4f4}table.kv th{text-align:left}table.kv td{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
nav a{margin-right:1em}.none{color:#888}.fail{color:#c00;font-weight:bold}
.wide{overflow-x:auto;max-width:100%}tr.pass td{background:#e8f5e9}tr.fail td{background:#fdecea}
td.pass{color:#1b5e20;font-weight:bold}td.fail{color:#c00;font-weight:bold}
"""


def render_html(title: str, sections: Sequence[Section], images: Mapping[str, bytes]) -> str:
    """The report page: a table of contents, then every section with its figures inline."""
    nav = " ".join(f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>",
    ]
    for s in sections:
        parts.append(f"<section id='{s.anchor}'><h2>{html.escape(s.title)}</h2>{s.body}")
        for name in s.figures:
            alt = html.escape(f"{s.title}: {name}")
            parts.append(f"<figure><img alt='{alt}' src='{plots.png_base64(images[name])}'></figure>")
        parts.append("</section>")
    parts.append(f"<footer><p class='none'>lbsim {html.escape(__version__)}</p></footer></body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------


@dataclass
class RunFolder:
    """The files of a run result folder, read once."""

    folder: Path
    summary: dict[str, Any]
    transitions: pd.DataFrame
    members: pd.DataFrame
    incidents: pd.DataFrame
    expectations: pd.DataFrame
    timeseries: pd.DataFrame
    status: dict[str, Any]
    scenario: m.Scenario | None
    latency: pd.DataFrame | None = None

    @classmethod
    def read(cls, folder: Path) -> RunFolder:
        """Read a folder written by ``lbsim run`` / :meth:`RunResult.save`."""
        folder = Path(folder)
        try:
            return cls._read(folder)
        except ResultFolderError as err:
            raise ReportError(str(err)) from None

    @classmethod
    def _read(cls, folder: Path) -> RunFolder:
        verify(folder)
        needed = ("summary.json", "transitions.csv", "members.csv", "status.json", "timeseries.csv")
        for name in needed:
            if not (folder / name).is_file():
                raise ReportError(f"{folder}: not a complete result folder ({name} is missing)")

        def csv(name: str, columns: Sequence[str], numeric: Sequence[str] = (), **kw: Any) -> pd.DataFrame:
            if not (folder / name).is_file():
                return pd.DataFrame(columns=list(columns))
            return read_table(folder, name, columns, numeric, **kw)

        scenario = None
        sp = folder / "scenario.yaml"
        try:
            text = sp.read_text(encoding="utf-8") if sp.is_file() else ""
        except UnicodeDecodeError:
            text = ""
        if text.strip():
            try:
                scenario = m.Scenario.model_validate(yaml.safe_load(text))
            except Exception:  # a scenario from another version: report without it
                scenario = None
        summary = read_json_object(folder, "summary.json")
        read_duration(folder, summary)
        for key in ("requests", "ok"):
            if not isinstance(summary.get(key), int):
                raise ReportError(f"{folder}: summary.json: {key} should be a whole number, got {summary.get(key)!r}")
        if not isinstance(summary.get("latency"), dict) or not isinstance(summary.get("errors"), dict):
            raise ReportError(f"{folder}: summary.json lacks its latency or errors block")
        return cls(
            folder,
            summary,
            csv("transitions.csv", TRANSITION_COLUMNS, ["time"], keep_default_na=False),
            csv("members.csv", ["name", "requests", "ok", "errors"], ["requests", "ok", "errors"]),
            csv("incidents.csv", ["kind", "target", "fault_time"], ["fault_time"]),
            csv("expectations.csv", ["expected", "found", "result"], keep_default_na=False),
            csv("timeseries.csv", ["second", "ok", "errors", "mean_latency"], ["second", "ok", "errors"]),
            read_json_object(folder, "status.json"),
            scenario,
            csv("latency.csv", ["bin", "count"], ["bin", "count"]) if (folder / "latency.csv").is_file() else None,
        )


def run_figures(run: RunFolder) -> dict[str, Figure]:
    """The figures of a run report: graph, timeline, throughput, members."""
    duration = float(run.summary.get("duration") or (run.scenario.duration if run.scenario else 0.0))
    markers = plots.event_markers(run.scenario)
    warmup = float(run.summary.get("warmup") or 0.0)
    figs = {
        "graph": plots.object_graph(run.status),
        "timeline": plots.status_timeline(run.transitions, duration, markers=markers),
        "throughput": plots.throughput(run.timeseries, markers=markers, warmup=warmup),
        "members": plots.member_requests(run.members),
    }
    if "mean_latency" in run.timeseries and run.timeseries["mean_latency"].notna().any():
        figs["latency"] = plots.latency_over_time(run.timeseries, markers=markers, warmup=warmup)
    if run.latency is not None and len(run.latency):
        hist = np.zeros(NBINS, dtype=np.int64)
        hist[run.latency["bin"].to_numpy(dtype=np.int64)] = run.latency["count"].to_numpy(dtype=np.int64)
        figs["cdf"] = plots.latency_cdf({run.summary.get("scenario", "run"): hist})
    if (run.folder / "pool_size.csv").is_file():
        from lbsim.figures.scaling import figure_from_folder

        figs["autoscaling"] = figure_from_folder(run.folder)
    return figs


def _scenario_rows(run: RunFolder) -> list[tuple[str, Any]]:
    s = run.summary
    rows: list[tuple[str, Any]] = [("scenario", s.get("scenario", "")), ("seed", s.get("seed", ""))]
    rows.append(("simulated", f"{s.get('duration', 0):g} s (warm-up {s.get('warmup', 0):g} s)"))
    sc = run.scenario
    if sc is not None:
        lb = sc.loadbalancer
        rows.append(("load balancer", f"{lb.name} ({lb.topology})"))
        rows.append(("listeners", ", ".join(f"{li.name} {li.protocol}:{li.protocol_port}" for li in lb.listeners)))
        for p in lb.pools:
            hm = p.healthmonitor
            mon = f"{hm.type} every {hm.delay} s, rise {hm.max_retries}, fall {hm.max_retries_down}" if hm else "none"
            rows.append((f"pool {p.name}", f"{p.lb_algorithm}, {len(p.members)} members, monitor: {mon}"))
        for i, t in enumerate(sc.traffic):
            a = t.arrival
            rate = getattr(a, "rate", None)
            rows.append((f"traffic {i}", f"{a.process}{f' {rate:g} req/s' if rate else ''} to {t.listener}"))
        rows.append(("events", len(sc.events)))
    errs = ", ".join(f"{k}: {v:,}" for k, v in (s.get("errors") or {}).items()) or "none"
    lat = s.get("latency") or {}

    def ms(x: Any) -> str:
        if x is None:
            return "–"
        return f"{float(x):,.1f} s" if float(x) >= 10 else f"{float(x) * 1000:.1f} ms"  # 44.1 s, not 44147.7 ms

    rows += [
        ("requests", f"{s.get('requests', 0):,}"),
        ("ok", f"{s.get('ok', 0):,}"),
        ("errors", errs),
        ("availability", "–" if s.get("availability") is None else f"{s['availability'] * 100:.3f} %"),
        ("throughput", "–" if s.get("throughput") is None else f"{s['throughput']:.1f} req/s"),
        ("latency mean / p50", f"{ms(lat.get('mean'))} / {ms(lat.get('p50'))}"),
        ("latency p95 / p99", f"{ms(lat.get('p95'))} / {ms(lat.get('p99'))}"),
        ("lbsim version", s.get("lbsim_version", "")),
    ]
    if len(run.expectations):
        n_pass = int((run.expectations["result"] == "pass").sum())
        rows.append(("expectations", f"{n_pass} of {len(run.expectations)} held"))
    return rows


def _scaling_table(folder: Path) -> str:
    """The scaling decisions that changed something (scale-out / scale-in), as a table."""
    path = folder / "scaling.csv"
    if not path.is_file():
        return ""
    try:
        df = read_table(folder, "scaling.csv", ["action"], keep_default_na=False)
    except ResultFolderError as err:
        raise ReportError(str(err)) from None
    if "action" in df:
        df = df[df["action"].isin(["scale_out", "scale_in"])]
    return _table(df.head(200)) if len(df) else "<p class='none'>No scaling action.</p>"


def _incidents_html(inc: pd.DataFrame) -> str:
    """The incidents table, narrow enough for the page: times in s, delays in s after the fault."""
    if len(inc) == 0:
        return "<p class='none'>No fault was injected.</p>"
    df = pd.DataFrame(
        {
            "kind": inc["kind"],
            "target": inc["target"],
            "fault [s]": inc["fault_time"],
            "detected [+s]": inc.get("detected_time", np.nan) - inc["fault_time"],
            "API visible [+s]": inc.get("api_visible_time", np.nan) - inc["fault_time"],
            "recovered [s]": inc.get("recovered_time", np.nan),
            "ended [s]": inc.get("fault_end_time", np.nan),
            "failed": inc.get("requests_failed", np.nan),
            "slowed": inc.get("requests_slowed", np.nan),
        }
    )
    intro = (
        "<p><b>detected</b>: HAProxy marked the member DOWN; <b>API visible</b>: the health manager wrote "
        "the status the API shows (after the next heartbeat); both in seconds after the fault. <b>failed</b>: "
        "requests that arrived during the fault and failed, also after it ended.</p>"
    )
    return intro + "<div class='wide'>" + _table(df) + "</div>"


def _expectations_html(exp: pd.DataFrame) -> str:
    """Expectations with their verdict coloured: green rows held, red rows failed."""
    if len(exp) == 0:
        return "<p class='none'>none</p>"
    cols = [c for c in ("time", "object_type", "name", "field", "expected", "found", "result") if c in exp.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for rec in exp[cols].to_dict("records"):
        verdict = "pass" if str(rec.get("result")) == "pass" else "fail"
        cells = "".join(
            f"<td class='{verdict}'>{html.escape(str(rec[c]))}</td>"
            if c == "result"
            else f"<td>{html.escape(str(rec[c]))}</td>"
            for c in cols
        )
        rows.append(f"<tr class='{verdict}'>{cells}</tr>")
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def run_sections(run: RunFolder) -> list[Section]:
    """The sections of a run report."""
    figs = run_figures(run)
    exp = run.expectations.drop(columns=["index"], errors="ignore")
    return [
        Section("summary", "Scenario summary", _kv(_scenario_rows(run))),
        Section(
            "graph",
            "Object graph",
            "<p>Fill: final operating status; outline: provisioning status.</p>",
            {"graph": figs["graph"]},
        ),
        Section(
            "timeline",
            "Status timeline",
            "<p>Operating and provisioning status (what the API shows) and HAProxy's own view of each member "
            "(data plane state) over time; dashed lines mark scenario events.</p>",
            {"timeline": figs["timeline"]},
        ),
        Section("throughput", "Throughput", "", {"throughput": figs["throughput"]}),
        *(
            [
                Section(
                    "latency",
                    "Latency over time",
                    "<p>Mean latency of the successful requests completed in each simulated second.</p>",
                    {"latency": figs["latency"]},
                )
            ]
            if "latency" in figs
            else []
        ),
        *(
            [
                Section(
                    "cdf",
                    "Latency CDF",
                    "<p>Successful requests after warm-up; log-spaced bins of 1 %.</p>",
                    {"cdf": figs["cdf"]},
                )
            ]
            if "cdf" in figs
            else []
        ),
        *(
            [
                Section(
                    "autoscaling",
                    "Autoscaling",
                    "<p>Members over time (in the configuration, and ready to serve) beside throughput and "
                    "latency; every scaling decision is in scaling.csv.</p>" + _scaling_table(run.folder),
                    {"autoscaling": figs["autoscaling"]},
                )
            ]
            if "autoscaling" in figs
            else []
        ),
        Section("members", "Per-member load", _table(run.members), {"members": figs["members"]}),
        Section("incidents", "Incidents", _incidents_html(run.incidents)),
        Section("expectations", "Expectations", _expectations_html(exp)),
    ]


# --------------------------------------------------------------------------------------
# Experiment folders
# --------------------------------------------------------------------------------------


def _hue_frame(points: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, str | None]:
    """With several parameters: a combined ``hue`` column naming every parameter but the first."""
    if len(labels) < 2:
        return points, None
    df = points.copy()
    rest = labels[1:]
    if len(rest) == 1:
        return df, rest[0]
    df["other parameters"] = [", ".join(f"{c}={r[c]}" for c in rest) for _, r in df.iterrows()]
    return df, "other parameters"


def experiment_figures(folder: Path) -> dict[str, Figure]:
    """The figures of an experiment report (by file name stem)."""
    from lbsim.experiments.sweep import load_experiment

    res = load_experiment(folder)
    kind = res.meta.get("kind", "sweep")
    if kind == "compare":
        from lbsim.experiments.compare import load_comparison

        return dict(load_comparison(folder).figures())
    if kind == "plan":
        return _plan_figures(res.points, res.meta)
    labels = res.labels
    figs: dict[str, Figure] = {}
    if not labels:
        return figs
    pts, hue = _hue_frame(res.points, labels)
    metrics = dict(SWEEP_METRICS)
    for c in res.runs.columns:
        if c.startswith("incident_"):
            idx, what = c.split("_")[1], c.split("_")[2]
            metrics[c] = f"incident {idx}: {'HAProxy' if what == 'detect' else 'API'} delay [s]"
    for met, ylabel in metrics.items():
        if f"{met}_mean" not in pts or pts[f"{met}_mean"].isna().all():
            continue
        scale = 1000.0 if met.startswith("latency_") else 1.0  # latencies in ms, as in every table
        figs[f"sweep-{met}"] = plots.metric_ci(pts, labels[0], met, hue=hue, ylabel=ylabel, scale=scale)
    return figs


def _plan_figures(points: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Figure]:
    from lbsim.experiments.plan import KNOB_COLUMN, parse_slo

    column = KNOB_COLUMN.get(str(meta.get("vary", "members")), "members")
    figs: dict[str, Figure] = {}
    for text in meta.get("slos", []):
        s = parse_slo(text)
        figs[f"plan-{s.metric}"] = plots.plan_curve(
            points, s.metric, s.threshold, upper=s.upper, chosen=meta.get("answer"), x=column
        )
    return figs


def _ci_text(points: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    cols = list(points.columns)
    labels = cols[1 : cols.index("n")]
    out = points[["point", *labels, "n"]].copy()
    for met in metrics:
        if f"{met}_mean" not in points:
            continue
        out[met] = [
            "–"
            if math.isnan(r[f"{met}_mean"])
            else f"{r[f'{met}_mean']:.4g}"
            + ("" if math.isnan(r[f"{met}_ci_lo"]) else f" [{r[f'{met}_ci_lo']:.4g}, {r[f'{met}_ci_hi']:.4g}]")
            for _, r in points.iterrows()
        ]
    return out


def experiment_sections(folder: Path) -> list[Section]:
    """The sections of a sweep, compare or plan report."""
    from lbsim.experiments.sweep import load_experiment

    res = load_experiment(folder)
    meta = res.meta
    kind = meta.get("kind", "sweep")
    figs = experiment_figures(folder)
    grid_desc = "; ".join(f"{k} = {', '.join(str(v) for v in dict.fromkeys(res.points[k]))}" for k in res.labels)
    rows: list[tuple[str, Any]] = [
        ("experiment", kind),
        ("scenario", meta.get("scenario", "")),
        ("parameters", grid_desc or "none"),
        ("grid points", len(res.points)),
        ("replications per point", meta.get("replications", "")),
        ("runs", meta.get("runs", len(res.runs))),
        ("confidence", f"{float(meta.get('confidence', 0.95)):.0%} (Student t)"),
        ("seeds", "common random numbers (same seeds at every point)" if meta.get("crn") else "independent per point"),
        ("simulated per run", f"{meta.get('duration', 0):g} s (warm-up {meta.get('warmup', 0):g} s)"),
        ("lbsim version", meta.get("lbsim_version", "")),
    ]
    sections = [Section("summary", "Experiment summary", _kv(rows))]
    ci_metrics = list(SWEEP_METRICS)
    if kind == "compare":
        from lbsim.experiments.compare import load_comparison

        cmp = load_comparison(folder)
        sections.append(Section("comparison", "Comparison table", _table(cmp.side_by_side())))
        sections.append(
            Section(
                "ranking",
                "Ranking on p99 latency",
                _table(cmp.ranking())
                + "<h3>Paired differences (same seeds) against the best</h3>"
                + _table(cmp.paired()),
            )
        )
        sections.append(Section("figures", "Metrics vs parameters", "", figs))
    elif kind == "plan":
        sections.append(Section("plan", "Plan", _plan_body(folder, meta)))
        sections.append(Section("figures", "Metrics vs parameters", "", figs))
    else:
        sections.append(
            Section(
                "figures",
                "Metrics vs parameters",
                "<p>Mean over replications with the confidence band (interval per grid point).</p>",
                figs,
            )
        )
    sections.append(Section("points", "Per-point table", _table(_ci_text(res.points, ci_metrics))))
    pass_cols = [c for c in res.points.columns if c.endswith("_passes")]
    if pass_cols and meta.get("expectations"):
        legend = "".join(
            f"<li><code>expect_{i}</code>: {html.escape(d)}</li>" for i, d in enumerate(meta["expectations"])
        )
        cols = list(res.points.columns)
        labels = cols[1 : cols.index("n")]
        sections.append(
            Section(
                "expectations",
                "Expectations",
                f"<p>Runs in which each expectation held, out of n.</p><ul>{legend}</ul>"
                + _table(res.points[["point", *labels, "n", *pass_cols]]),
            )
        )
    return sections


def _plan_body(folder: Path, meta: Mapping[str, Any]) -> str:
    from lbsim.experiments.plan import KNOB_COLUMN

    answer = meta.get("answer")
    column = KNOB_COLUMN.get(str(meta.get("vary", "members")), "members")
    unit = "members" if column == "members" else "vCPUs"
    head = (
        f"<p><b>{answer} {unit}</b> meet every SLO ({html.escape(', '.join(meta.get('slos', [])))}) "
        f"at {float(meta.get('peak_rate') or 0):g} req/s.</p>"
        if answer is not None
        else f"<p class='fail'>No evaluated {column} count meets every SLO.</p>"
    )
    margins = folder / "margins.csv"
    body = head
    if margins.is_file() and margins.stat().st_size > 1:
        body += "<h3>Margins at the chosen count</h3>" + _table(pd.read_csv(margins))
    plan_csv = folder / "plan.csv"
    if plan_csv.is_file():
        df = pd.read_csv(plan_csv)
        keep = [column, "n"] + [c for c in df.columns if c.startswith("met: ") or c == "all_met"]
        body += f"<h3>Evaluated {unit} counts</h3>" + _table(df[keep])
    return body


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def build_report(folder: Path, out: Path | None = None) -> Path:
    """Write ``report.html`` and one PNG per figure into ``out`` (default ``FOLDER/report``).

    Returns the HTML file's path. Raises :class:`ReportError` for a folder that is not
    a run or experiment folder.
    """
    folder = Path(folder)
    kind = folder_kind(folder)
    if kind == "run":
        run = RunFolder.read(folder)
        sections = run_sections(run)
        title = f"lbsim report: {run.summary.get('scenario', folder.name)} (seed {run.summary.get('seed', '')})"
    else:
        sections = experiment_sections(folder)
        meta = json.loads((folder / "experiment.json").read_text(encoding="utf-8"))
        title = f"lbsim {kind} report: {meta.get('scenario', folder.name)}"
    dest = Path(out) if out is not None else folder / "report"
    dest.mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    for s in sections:
        for name, fig in s.figures.items():
            images[name] = plots.save_png(fig, dest / f"{name}.png")
    page = render_html(title, sections, images)
    target = dest / "report.html"
    tmp = dest / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


__all__ = [
    "ReportError",
    "RunFolder",
    "Section",
    "build_report",
    "experiment_figures",
    "experiment_sections",
    "folder_kind",
    "run_figures",
    "run_sections",
]
