"""The autoscaling figure: member count above throughput and latency (``lbsim scaling --figure``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# --------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------


def scaling_figure(
    pool_size: pd.DataFrame,
    timeseries: pd.DataFrame,
    scaling: pd.DataFrame | None = None,
    *,
    pool: str | None = None,
    slo_p95: float | None = None,
    duration: float | None = None,
    title: str = "Autoscaling",
) -> Figure:
    """Member count over time above throughput and latency (one pool; default: the first).

    Panels: members (Octavia rows), ready (taking traffic), desired, with scale-out and
    scale-in decisions marked; successful and failed requests per second; mean latency
    per second and the pool's p95 per evaluation interval, with the SLO line if given.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 7.5), dpi=100, layout="constrained")
    axes: list[Axes] = fig.subplots(3, 1, sharex=True, height_ratios=[1.2, 1, 1])
    ps = pool_size
    if pool is None and len(ps):
        pool = str(ps["pool"].iloc[0])
    if pool is not None and len(ps):
        ps = ps[ps["pool"] == pool]
    end = duration if duration is not None else (float(ps["time"].max()) if len(ps) else None)
    ax = axes[0]
    if len(ps):
        t = ps["time"].to_numpy(dtype=float)
        for col, colour, style, label in (
            ("members", "#1f77b4", "-", "members (Octavia)"),
            ("ready", "#2ca02c", "-", "ready (taking traffic)"),
            ("desired", "#7f7f7f", "--", "desired"),
        ):
            ax.step(t, ps[col].to_numpy(dtype=float), where="post", color=colour, linestyle=style, label=label)
    if scaling is not None and len(scaling):
        sc = scaling if pool is None else scaling[scaling["pool"] == pool]
        for action, marker, colour in (("scale_out", "^", "#d62728"), ("scale_in", "v", "#9467bd")):
            rows = sc[sc["action"] == action]
            if len(rows):
                ax.scatter(
                    rows["time"],
                    rows["to"].astype(float),
                    marker=marker,
                    color=colour,
                    zorder=3,
                    label=action.replace("_", "-"),
                )
    ax.set_ylabel("members")
    ax.set_title(f"{title}: pool {pool}" if pool else title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", ncols=3)
    ax = axes[1]
    ts, ok, errors, mean_lat = _binned(timeseries)
    if len(ts):
        ax.plot(ts, ok, color="#2ca02c", linewidth=1, label="ok / s")
        ax.plot(ts, errors, color="#d62728", linewidth=1, label="errors / s")
    ax.set_ylabel("requests / s")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    ax = axes[2]
    if len(ts):
        step = ts[1] - ts[0] if len(ts) > 1 else 1.0
        label = "mean latency (per second)" if step <= 1 else f"mean latency (per {step:g} s)"
        ax.plot(ts, mean_lat, color="#1f77b4", linewidth=0.8, label=label)
    if len(ps) and ps["p95"].notna().any():
        ax.step(ps["time"], ps["p95"].astype(float), where="pre", color="#ff7f0e", label="p95 (per evaluation)")
    if slo_p95 is not None:
        ax.axhline(slo_p95, color="#d62728", linestyle="--", linewidth=1, label=f"SLO p95 {slo_p95:g} s")
    ax.set_yscale("log")
    ax.set_ylabel("latency [s]")
    ax.set_xlabel("simulated time [s]")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize="small")
    if end is not None:
        axes[0].set_xlim(0, end)
    return fig


#: at most this many points per time series in a figure (longer runs are averaged in bins)
MAX_POINTS = 720


def _binned(timeseries: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-second series averaged over bins so that a day-long run stays readable.

    Returns bin start times, ok/s, errors/s and the mean latency of the bin (weighted by
    successful requests).
    """
    if len(timeseries) == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    t = timeseries["second"].to_numpy(dtype=float)
    ok = timeseries["ok"].to_numpy(dtype=float)
    err = timeseries["errors"].to_numpy(dtype=float)
    lat = np.nan_to_num(timeseries["mean_latency"].to_numpy(dtype=float)) * ok
    k = max(1, math.ceil(len(t) / MAX_POINTS))
    if k == 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            return t, ok, err, np.where(ok > 0, lat / np.maximum(ok, 1), np.nan)
    n = len(t) // k * k
    okb = ok[:n].reshape(-1, k).sum(axis=1)
    errb = err[:n].reshape(-1, k).sum(axis=1)
    latb = lat[:n].reshape(-1, k).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(okb > 0, latb / np.maximum(okb, 1), np.nan)
    return t[:n:k], okb / k, errb / k, mean


def figure_from_folder(folder: Path, pool: str | None = None) -> Figure:
    """:func:`scaling_figure` of a result folder (needs ``pool_size.csv`` and ``timeseries.csv``).

    Raises :class:`~lbsim.results.manifest.ResultFolderError` for a damaged folder."""
    from lbsim.results.manifest import read_json_object, read_table, verify

    folder = Path(folder)
    ps_path = folder / "pool_size.csv"
    if not ps_path.is_file():
        raise FileNotFoundError(f"{folder}: no pool_size.csv (the scenario has no autoscaling pool)")
    verify(folder, ["pool_size.csv", "timeseries.csv", "scaling.csv", "summary.json"])
    pool_size = read_table(folder, "pool_size.csv", ["time", "pool"], ["time"])
    timeseries = read_table(folder, "timeseries.csv", ["second", "ok", "errors", "mean_latency"], ["second"])
    sp = folder / "scaling.csv"
    scaling = (
        read_table(folder, "scaling.csv", ["time", "action"], ["time"], keep_default_na=False, na_values=[""])
        if sp.is_file()
        else None
    )
    summary = read_json_object(folder, "summary.json")
    slo = None
    if pool is None and len(pool_size):
        pool = str(pool_size["pool"].iloc[0])
    for o in (summary.get("slo") or {}).get("objectives", []):
        if o.get("metric") == "latency_p95" and o.get("pool") == pool:
            slo = float(o["threshold"])
    return scaling_figure(
        pool_size,
        timeseries,
        scaling,
        pool=pool,
        slo_p95=slo,
        duration=float(summary.get("duration") or 0.0) or None,
        title=str(summary.get("scenario") or "Autoscaling"),
    )


