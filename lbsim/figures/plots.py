"""Figures for runs and experiments, usable from reports and notebooks.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so
nothing depends on (or changes) the interactive backend: a report renders them with Agg
and closes nothing global, a notebook displays them inline. Pass ``ax`` to draw into an
existing axes instead (the axes' figure is returned).

Colours encode status values consistently across figures: green is healthy (ONLINE,
ACTIVE, UP), orange DEGRADED, red ERROR/DOWN, grey OFFLINE, yellow PENDING_*, purple
DRAINING/DRAIN, light blue NO_MONITOR / ``no check``, pale green and pale red HAProxy's
transitional ``UP 1/3`` / ``DOWN 1/3`` states.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

STATUS_COLOURS: dict[str, str] = {
    "ONLINE": "#2ca02c",
    "ACTIVE": "#2ca02c",
    "UP": "#2ca02c",
    "ALLOCATED": "#2ca02c",
    "DEGRADED": "#ff7f0e",
    "ERROR": "#d62728",
    "DOWN": "#d62728",
    "OFFLINE": "#7f7f7f",
    "MAINT": "#7f7f7f",
    "NO_MONITOR": "#9ecae1",
    "no check": "#9ecae1",
    "DRAINING": "#9467bd",
    "DRAIN": "#9467bd",
    "PENDING_CREATE": "#f2d024",
    "PENDING_UPDATE": "#f2d024",
    "PENDING_DELETE": "#f2d024",
    "DELETED": "#252525",
    "": "#ffffff",
}
#: colour of a transitional HAProxy state ("UP 2/3": still up, failing; "DOWN 1/3": rising)
UP_TRANSITIONAL = "#a1d99b"
DOWN_TRANSITIONAL = "#fc9272"
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
OBJECT_ORDER = ("loadbalancer", "listener", "pool", "healthmonitor", "member", "amphora")
FIELD_SHORT = {"operating_status": "operating", "provisioning_status": "provisioning", "data_plane_state": "HAProxy"}


def status_colour(value: str) -> str:
    """The colour of a status value (unknown values get a neutral tan)."""
    if value in STATUS_COLOURS:
        return STATUS_COLOURS[value]
    if value.startswith("UP "):
        return UP_TRANSITIONAL
    if value.startswith("DOWN "):
        return DOWN_TRANSITIONAL
    return "#d2b48c"


def _fig_ax(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure()
        assert isinstance(fig, Figure)
        return fig, ax
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (rendered with Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = 100) -> bytes:
    """Write the figure as a PNG file and return its bytes."""
    data = to_png(fig, dpi)
    Path(path).write_bytes(data)
    return data


def png_base64(data: bytes) -> str:
    """A ``data:`` URI for PNG bytes (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------
# Latency
# --------------------------------------------------------------------------------------


def latency_cdf_points(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latency, fraction <= latency) at the upper edge of every non-empty histogram bin."""
    from lbsim.sim.metrics import LAT_MIN, RATIO

    hist = np.asarray(hist, dtype=float)
    total = hist.sum()
    if total <= 0:
        return np.zeros(0), np.zeros(0)
    k = np.arange(len(hist), dtype=float)
    upper = LAT_MIN * RATIO**k  # bin k holds [LAT_MIN*RATIO**(k-1), LAT_MIN*RATIO**k)
    cdf = np.cumsum(hist) / total
    keep = hist > 0
    return upper[keep], cdf[keep]


def latency_cdf(
    hists: Mapping[str, np.ndarray], *, ax: Axes | None = None, title: str = "Latency CDF", tail: bool | None = None
) -> Figure:
    """CDFs of latency histograms (one line per label) on a log time axis.

    By default two panels: the CDF, and the tail (1 - F, log scale) where p99 and beyond
    are readable. ``tail=False`` or ``True`` draws only one of them (into ``ax`` if given).
    The time axis starts at the 0.1 % quantile of the fastest series.
    """
    if tail is None and ax is None:
        fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
        a1, a2 = fig.subplots(1, 2)
        latency_cdf(hists, ax=a1, title=title, tail=False)
        latency_cdf(hists, ax=a2, title="Tail: fraction of requests slower than", tail=True)
        return fig
    fig, ax = _fig_ax(ax, (7, 4))
    left = math.inf
    for i, (label, hist) in enumerate(hists.items()):
        x, f = latency_cdf_points(hist)
        if len(x) == 0:
            continue
        left = min(left, float(x[np.searchsorted(f, 0.001)]))
        y = np.clip(1.0 - f, 1e-6, 1.0) if tail else f
        ax.step(x, y, where="post", label=str(label), color=SERIES_COLOURS[i % len(SERIES_COLOURS)])
    ax.set_xscale("log")
    if math.isfinite(left):
        ax.set_xlim(left=left / 1.5)
    if tail:
        ax.set_yscale("log")
        ax.set_ylabel("fraction slower than")
        for q in (0.05, 0.01):
            ax.axhline(q, color="#bbbbbb", linewidth=0.7, linestyle=":")
    else:
        ax.set_ylabel("fraction of requests")
        for q in (0.5, 0.95, 0.99):
            ax.axhline(q, color="#bbbbbb", linewidth=0.7, linestyle=":")
    ax.set_xlabel("latency [s]")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if hists:
        ax.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------
# Metrics with confidence intervals
# --------------------------------------------------------------------------------------


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values)


def metric_ci(
    points: pd.DataFrame,
    x: str,
    metric: str,
    *,
    hue: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    threshold: float | None = None,
    scale: float = 1.0,
) -> Figure:
    """A metric's mean with its confidence band against a parameter.

    ``points`` is a points table (columns ``<metric>_mean/_ci_lo/_ci_hi``). A numeric
    ``x`` draws lines with shaded bands, a categorical one bars with error bars; ``hue``
    splits by a second parameter. ``threshold`` draws a horizontal line (an SLO).
    ``scale`` multiplies the values (1000: seconds drawn as milliseconds). A metric that
    is 0 everywhere (no errors in any run) gets a 0..1 axis and a note, not an empty
    chart around 0.
    """
    fig, ax = _fig_ax(ax, (7, 4))
    mean, lo, hi = f"{metric}_mean", f"{metric}_ci_lo", f"{metric}_ci_hi"
    groups = [(None, points)] if hue is None else list(points.groupby(hue, sort=False))
    numeric = _is_numeric(list(points[x]))
    cats = list(dict.fromkeys(points[x])) if not numeric else []
    width = 0.8 / max(len(groups), 1)
    for gi, (gval, grp) in enumerate(groups):
        colour = SERIES_COLOURS[gi % len(SERIES_COLOURS)]
        label = None if gval is None else f"{hue} = {gval!s}"
        y = grp[mean].to_numpy(dtype=float) * scale
        ylo = grp[lo].to_numpy(dtype=float) * scale
        yhi = grp[hi].to_numpy(dtype=float) * scale
        if numeric:
            order = np.argsort(grp[x].to_numpy(dtype=float))
            xs = grp[x].to_numpy(dtype=float)[order]
            ax.plot(xs, y[order], marker="o", color=colour, label=label)
            ok = np.isfinite(ylo[order]) & np.isfinite(yhi[order])
            if ok.any():
                ax.fill_between(xs[ok], ylo[order][ok], yhi[order][ok], color=colour, alpha=0.2, linewidth=0)
        else:
            pos = np.array([cats.index(v) for v in grp[x]], dtype=float) + (gi - (len(groups) - 1) / 2) * width
            err = np.vstack([np.nan_to_num(y - ylo), np.nan_to_num(yhi - y)])
            ax.bar(pos, y, width=width * 0.9, color=colour, label=label, alpha=0.85)
            ax.errorbar(pos, y, yerr=err, fmt="none", ecolor="black", capsize=4, linewidth=1)
    if not numeric:
        ax.set_xticks(range(len(cats)), [str(c) for c in cats])
    elif all(float(v).is_integer() for v in points[x]):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if threshold is not None:
        ax.axhline(threshold, color="#d62728", linestyle="--", linewidth=1, label=f"SLO {threshold:g}")
    values = points[[c for c in (mean, lo, hi) if c in points]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not np.any(finite != 0):
        ax.set_ylim(0, 1)
        note = "0 in every run" if finite.size else "no value"
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or f"{metric} (mean and confidence interval)")
    ax.grid(True, axis="y", alpha=0.3)
    if hue is not None or threshold is not None:
        ax.legend(fontsize="small")
    return fig


def member_load(
    shares: pd.DataFrame, *, group: str = "algorithm", ax: Axes | None = None, title: str = "Per-member load"
) -> Figure:
    """Grouped bars of each member's share of requests, one colour per ``group`` value.

    ``shares`` has columns ``group``, ``name``, ``share`` (and optional ``share_lo``,
    ``share_hi`` for error bars). A dashed line marks the even share 1/members.
    """
    fig, ax = _fig_ax(ax, (7, 4))
    names = list(dict.fromkeys(shares["name"]))
    groups = list(dict.fromkeys(shares[group]))
    width = 0.8 / max(len(groups), 1)
    for gi, g in enumerate(groups):
        sub = shares[shares[group] == g].set_index("name").reindex(names)
        pos = np.arange(len(names)) + (gi - (len(groups) - 1) / 2) * width
        y = sub["share"].to_numpy(dtype=float)
        ax.bar(pos, y, width=width * 0.9, label=str(g), color=SERIES_COLOURS[gi % len(SERIES_COLOURS)])
        if "share_lo" in sub and "share_hi" in sub:
            err = np.vstack(
                [np.nan_to_num(y - sub["share_lo"].to_numpy(float)), np.nan_to_num(sub["share_hi"].to_numpy(float) - y)]
            )
            ax.errorbar(pos, y, yerr=err, fmt="none", ecolor="black", capsize=3, linewidth=0.8)
    if names:
        ax.axhline(1.0 / len(names), color="#555555", linestyle="--", linewidth=1, label="even share")
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 6 else 0)
    ax.set_ylabel("share of requests")
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------


def member_requests(members: pd.DataFrame, *, title: str = "Per-member load") -> Figure:
    """Requests per member (successful and failed, stacked) and each member's p99 latency."""
    fig = Figure(figsize=(8, 3.8), dpi=100, layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    names = [str(n) for n in members["name"]]
    pos = np.arange(len(names))
    ok = members["ok"].to_numpy(dtype=float)
    err = members["errors"].to_numpy(dtype=float)
    ax1.bar(pos, ok, color="#2ca02c", label="ok")
    ax1.bar(pos, err, bottom=ok, color="#d62728", label="errors")
    ax1.set_xticks(pos, names, rotation=30 if len(names) > 5 else 0)
    ax1.set_ylabel("requests")
    ax1.set_title(title)
    ax1.legend(fontsize="small")
    p99 = members["p99"].to_numpy(dtype=float)
    ax2.bar(pos, np.nan_to_num(p99), color="#1f77b4")
    ax2.set_xticks(pos, names, rotation=30 if len(names) > 5 else 0)
    ax2.set_ylabel("p99 latency [s]")
    ax2.set_title("p99 latency per member")
    for a in (ax1, ax2):
        a.grid(True, axis="y", alpha=0.3)
    return fig


def event_markers(scenario: Any) -> list[tuple[float, str, str]]:
    """(time, label, colour) for each scenario event: faults red, recoveries green, API grey."""
    from lbsim.scenario import model as m

    out: list[tuple[float, str, str]] = []
    if scenario is None:
        return out
    for ev in scenario.events:
        if isinstance(ev, m.MemberEvent):
            colour = "#2ca02c" if ev.behaviour == "healthy" else "#d62728"
            out.append((float(ev.at), f"{ev.member}: {ev.behaviour}", colour))
        elif isinstance(ev, m.AmphoraEvent):
            out.append((float(ev.at), f"amphora {ev.amphora}: {ev.behaviour}", "#d62728"))
        elif isinstance(ev, m.ApiEvent):
            kind, name = ev.target
            out.append((float(ev.at), f"{ev.api} {kind} {name}", "#7f7f7f"))
    return out


def _time_axes(
    ax: Axes,
    top: float,
    markers: Sequence[tuple[float, str, str]],
    warmup: float,
    *,
    ylabel: str,
    title: str,
    legend: Literal["upper right", "lower right"],
) -> None:
    """Shared decoration of per-second plots: warm-up band, event markers, labels."""
    if warmup > 0:
        ax.axvspan(0, warmup, color="#dddddd", alpha=0.6, label="warm-up (not counted)")
    for i, (at, label, colour) in enumerate(markers):
        ax.axvline(at, color=colour, linestyle="--", linewidth=1)
        ax.annotate(
            label,
            (at, top * (0.95 - 0.09 * (i % 4))),
            fontsize=7,
            color=colour,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_xlabel("simulated time [s]")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc=legend, fontsize="small")


def throughput(
    timeseries: pd.DataFrame,
    *,
    markers: Sequence[tuple[float, str, str]] = (),
    warmup: float = 0.0,
    ax: Axes | None = None,
    title: str = "Throughput",
) -> Figure:
    """Successful and failed requests per second, with vertical lines at events."""
    fig, ax = _fig_ax(ax, (9, 3.8))
    t = timeseries["second"].to_numpy(dtype=float)
    counted = t >= warmup  # requests of the warm-up are not counted: draw nothing, not 0
    ok = np.where(counted, timeseries["ok"].to_numpy(dtype=float), np.nan)
    errors = np.where(counted, timeseries["errors"].to_numpy(dtype=float), np.nan)
    ax.plot(t, ok, color="#2ca02c", linewidth=1, label="ok / s")
    ax.plot(t, errors, color="#d62728", linewidth=1, label="errors / s")
    top = max(float(np.nanmax(ok)) if np.isfinite(ok).any() else 1.0, 1.0)
    _time_axes(ax, top, markers, warmup, ylabel="requests per second", title=title, legend="lower right")
    return fig


def latency_over_time(
    timeseries: pd.DataFrame,
    *,
    markers: Sequence[tuple[float, str, str]] = (),
    warmup: float = 0.0,
    ax: Axes | None = None,
    title: str = "Latency over time",
) -> Figure:
    """Mean latency of the requests completed in each second, with event markers."""
    fig, ax = _fig_ax(ax, (9, 3.8))
    t = timeseries["second"].to_numpy(dtype=float)
    lat = timeseries["mean_latency"].to_numpy(dtype=float) * 1000.0
    lat = np.where(t >= warmup, lat, np.nan)
    ax.plot(t, lat, color="#1f77b4", linewidth=1, label="mean latency")
    finite = lat[np.isfinite(lat)]
    top = float(finite.max()) if len(finite) else 1.0
    _time_axes(ax, top, markers, warmup, ylabel="latency [ms]", title=title, legend="upper right")
    return fig


def _legend_name(value: str) -> str:
    if value.startswith("UP "):
        return "UP n/m (failing checks)"
    if value.startswith("DOWN "):
        return "DOWN n/m (passing checks)"
    return value or "(none)"


def _objects_in(transitions: pd.DataFrame) -> list[tuple[str, str]]:
    seen = list(dict.fromkeys(zip(transitions["object_type"], transitions["name"], strict=True)))
    return sorted(seen, key=lambda o: (OBJECT_ORDER.index(o[0]) if o[0] in OBJECT_ORDER else 99, seen.index(o)))


def status_timeline(
    transitions: pd.DataFrame,
    duration: float,
    *,
    objects: Sequence[tuple[str, str]] | None = None,
    fields: Sequence[str] = ("operating_status", "provisioning_status", "data_plane_state"),
    markers: Sequence[tuple[float, str, str]] = (),
    title: str = "Status timeline",
) -> Figure:
    """Each object's statuses as coloured bands over time (one row per object and field).

    ``transitions`` is ``transitions.csv``; each value holds from its change until the
    next change of the same object and field (or the end of the run).
    """
    objs = list(objects) if objects is not None else _objects_in(transitions)
    rows: list[tuple[str, str, str]] = []
    for kind, name in objs:
        for f in fields:
            sel = (transitions["object_type"] == kind) & (transitions["name"] == name) & (transitions["field"] == f)
            if sel.any():
                rows.append((kind, name, f))
    fig = Figure(figsize=(10, 0.9 + 0.32 * max(len(rows), 1)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    used: dict[str, str] = {}
    for i, (kind, name, f) in enumerate(rows):
        part = transitions[
            (transitions["object_type"] == kind) & (transitions["name"] == name) & (transitions["field"] == f)
        ].sort_values("time", kind="stable")
        times = part["time"].to_numpy(dtype=float)
        values = [str(v) for v in part["new"]]
        ends = np.append(times[1:], duration)
        spans = [(t0, max(t1 - t0, 0.0)) for t0, t1 in zip(times, ends, strict=True)]
        colours = [status_colour(v) for v in values]
        ax.broken_barh(spans, (i - 0.4, 0.8), facecolors=colours, edgecolor="white", linewidth=0.3)
        for v, c in zip(values, colours, strict=True):
            used.setdefault(v, c)
    ax.set_yticks(range(len(rows)), [f"{k} {n} · {FIELD_SHORT.get(f, f)}" for k, n, f in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, duration)
    for at, _label, colour in markers:
        ax.axvline(at, color=colour, linestyle="--", linewidth=0.8)
    ax.set_xlabel("simulated time [s]")
    ax.set_title(title)
    by_colour: dict[str, list[str]] = {}
    for v, c in used.items():
        by_colour.setdefault(c, []).append(_legend_name(v))
    handles = [
        Patch(facecolor=c, edgecolor="#999999", label=" / ".join(dict.fromkeys(names)))
        for c, names in by_colour.items()
    ]
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=7, title="status")
    return fig


def status_graph_data(status: Mapping[str, Any]) -> tuple[Any, dict[str, tuple[float, float]]]:
    """The object tree of a ``status.json`` as a networkx DiGraph and hierarchical positions.

    Node attributes: ``kind``, ``name``, ``operating_status``, ``provisioning_status``.
    """
    import networkx as nx

    g = nx.DiGraph()
    lb = status["statuses"]["loadbalancer"]

    def add(node: str, kind: str, obj: Mapping[str, Any], level: int) -> None:
        g.add_node(
            node,
            kind=kind,
            name=obj.get("name", ""),
            level=level,
            operating_status=obj.get("operating_status", ""),
            provisioning_status=obj.get("provisioning_status", ""),
        )

    add("loadbalancer:" + lb["name"], "loadbalancer", lb, 0)
    for li in lb.get("listeners", []):
        lnode = "listener:" + li["name"]
        add(lnode, "listener", li, 1)
        g.add_edge("loadbalancer:" + lb["name"], lnode)
        for pool in li.get("pools", []):
            pnode = "pool:" + pool["name"]
            add(pnode, "pool", pool, 2)
            g.add_edge(lnode, pnode)
            hm = pool.get("health_monitor")
            if hm:
                hnode = "healthmonitor:" + hm["name"]
                add(hnode, "healthmonitor", hm, 3)
                g.add_edge(pnode, hnode)
            for mem in pool.get("members", []):
                mnode = "member:" + mem["name"]
                add(mnode, "member", mem, 3)
                g.add_edge(pnode, mnode)
    pos = nx.multipartite_layout(g, subset_key="level", align="horizontal")
    # multipartite puts level 0 at the bottom when horizontal; flip so the LB is on top
    return g, {n: (float(x), -float(y)) for n, (x, y) in pos.items()}


def object_graph(status: Mapping[str, Any], *, title: str = "Objects (final status)") -> Figure:
    """The load balancer's object tree, each node coloured by its final operating status
    (outline: provisioning status)."""
    import networkx as nx

    g, pos = status_graph_data(status)
    levels = [d["level"] for _, d in g.nodes(data=True)]
    widest = max((levels.count(lv) for lv in set(levels)), default=1)
    fig = Figure(figsize=(max(6.0, 1.6 * widest), 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    nodes = list(g.nodes)
    fill = [status_colour(g.nodes[n]["operating_status"]) for n in nodes]
    edge = [status_colour(g.nodes[n]["provisioning_status"]) for n in nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=False, edge_color="#888888")
    nx.draw_networkx_nodes(
        g, pos, ax=ax, nodelist=nodes, node_color=fill, edgecolors=edge, linewidths=2.5, node_size=1400
    )
    labels = {
        n: f"{g.nodes[n]['kind']}\n{_short_label(str(g.nodes[n]['name']))}\n{g.nodes[n]['operating_status']}"
        for n in nodes
    }
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7)
    ax.set_title(title)
    ax.margins(0.2)  # room for the labels of the outermost nodes
    ax.set_axis_off()
    used = {g.nodes[n]["operating_status"] for n in nodes}
    fig.legend(  # beside the graph, never over a node
        handles=[Patch(facecolor=status_colour(v), label=v) for v in sorted(used)],
        loc="outside right upper",
        fontsize=7,
        title="operating status",
    )
    return fig


def _short_label(name: str, width: int = 14) -> str:
    """A node label that fits in its circle: long names are cut with an ellipsis."""
    return name if len(name) <= width else name[: width - 1] + "\u2026"


# --------------------------------------------------------------------------------------
# Capacity plans
# --------------------------------------------------------------------------------------


def plan_curve(
    evaluations: pd.DataFrame,
    metric: str,
    threshold: float,
    *,
    upper: bool = True,
    chosen: int | None = None,
    ax: Axes | None = None,
    x: str = "members",
) -> Figure:
    """A metric's mean and CI against a count (``x``: members or vcpus), with the SLO line
    and the chosen count."""
    fig, ax = _fig_ax(ax, (7, 4))
    ev = evaluations.sort_values(x)
    xname = x
    xs = ev[xname].to_numpy(dtype=float)
    y = ev[f"{metric}_mean"].to_numpy(dtype=float)
    lo = ev[f"{metric}_ci_lo"].to_numpy(dtype=float)
    hi = ev[f"{metric}_ci_hi"].to_numpy(dtype=float)
    ax.plot(xs, y, marker="o", color="#1f77b4", label=f"{metric} mean")
    err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
    ax.errorbar(xs, y, yerr=err, fmt="none", ecolor="#1f77b4", capsize=4)
    ax.axhline(threshold, color="#d62728", linestyle="--", label=f"SLO {'<' if upper else '>'} {threshold:g}")
    if chosen is not None:
        ax.axvline(chosen, color="#2ca02c", linestyle=":", label=f"chosen: {chosen} {xname}")
    finite = y[np.isfinite(y)]
    if len(finite) and finite.max() / max(finite.min(), 1e-12) > 50 and finite.min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel(xname)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {xname}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig
