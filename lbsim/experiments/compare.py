"""Compare balancing algorithms under the same traffic and faults.

Every algorithm is run with the same seeds per replication (common random numbers):
lbsim draws arrivals, client addresses, service demands and check timings from
separate named streams, so changing ``lb_algorithm`` changes which member serves a
request but not when requests arrive or how long each one takes. Differences between
algorithms are therefore measured on identical workloads, and paired differences (per
replication) have much narrower intervals than the difference of two independent
means; both are reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lbsim.experiments.common import ProgressCallback
from lbsim.experiments.design import OverrideError, Point, design
from lbsim.experiments.engines import Engine
from lbsim.experiments.stats import Interval, mean_ci
from lbsim.experiments.sweep import SweepResult, load_experiment, run_design
from lbsim.figures import plots
from lbsim.scenario import model as m

#: metrics of the side-by-side table, with their display names and units
COMPARE_METRICS: dict[str, tuple[str, str]] = {
    "latency_mean": ("latency mean", "s"),
    "latency_p50": ("latency p50", "s"),
    "latency_p95": ("latency p95", "s"),
    "latency_p99": ("latency p99", "s"),
    "error_rate": ("error rate", ""),
    "availability": ("availability", ""),
    "throughput": ("throughput", "req/s"),
    "load_imbalance": ("load imbalance (max/mean)", ""),
}
FIGURES = ("latency-cdf", "p99", "member-load", "error-rate")


def parse_algorithms(text: str | Sequence[str]) -> list[str]:
    """``ROUND_ROBIN,LEAST_CONNECTIONS`` (any case) -> validated, de-duplicated names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    algos = [a.strip().upper() for a in items if a.strip()]
    bad = [a for a in algos if a not in m.LB_ALGORITHMS]
    if bad:
        raise OverrideError(
            [f"--algorithms: unknown algorithm {b!r}; choose from {', '.join(m.LB_ALGORITHMS)}" for b in bad]
        )
    if len(algos) < 2:
        raise OverrideError(["--algorithms: name at least two algorithms to compare"])
    return list(dict.fromkeys(algos))


def algorithm_points(
    scenario: m.Scenario, algorithms: Sequence[str], pools: Sequence[str] | None = None
) -> list[Point]:
    """One grid point per algorithm, setting ``lb_algorithm`` on the chosen pools (all by default)."""
    names = [p.name for p in scenario.loadbalancer.pools]
    chosen = list(pools) if pools else names
    missing = [p for p in chosen if p not in names]
    if missing:
        raise OverrideError([f"--pool {p}: no such pool (pools: {', '.join(names) or 'none'})" for p in missing])
    if not chosen:
        raise OverrideError(["the scenario has no pool to balance"])
    idx = [names.index(p) for p in chosen]
    return [
        Point(i, {"algorithm": a}, {f"loadbalancer.pools.{k}.lb_algorithm": a for k in idx})
        for i, a in enumerate(algorithms)
    ]


@dataclass
class Comparison:
    """The outcome of :func:`compare`: the experiment plus comparison views."""

    result: SweepResult
    algorithms: list[str]
    confidence: float

    @property
    def runs(self) -> pd.DataFrame:
        """One row per run (algorithm, replication, seed, metrics)."""
        return self.result.runs

    def interval(self, algorithm: str, metric: str) -> Interval:
        """Mean and CI of ``metric`` for one algorithm."""
        vals = self.runs.loc[self.runs["algorithm"] == algorithm, metric]
        return mean_ci(vals.to_numpy(dtype=float), self.confidence)

    def table(self, metrics: Sequence[str] = tuple(COMPARE_METRICS)) -> pd.DataFrame:
        """Long table: algorithm, metric, n, mean, ci_lo, ci_hi."""
        rows = []
        for a in self.algorithms:
            for met in metrics:
                iv = self.interval(a, met)
                rows.append({"algorithm": a, "metric": met, "n": iv.n, "mean": iv.mean, "ci_lo": iv.lo, "ci_hi": iv.hi})
        return pd.DataFrame(rows)

    def side_by_side(self, metrics: Sequence[str] = tuple(COMPARE_METRICS), digits: int = 4) -> pd.DataFrame:
        """One row per metric, one column per algorithm: ``mean [lo, hi]`` as text."""
        out: dict[str, list[str]] = {"metric": [COMPARE_METRICS.get(x, (x, ""))[0] for x in metrics]}
        for a in self.algorithms:
            out[a] = [format_interval(self.interval(a, met), digits) for met in metrics]
        return pd.DataFrame(out)

    def paired(self, metric: str = "latency_p99", baseline: str | None = None) -> pd.DataFrame:
        """Per-replication differences ``algorithm - baseline`` (same seeds), mean and CI.

        ``baseline`` defaults to the algorithm with the lowest mean.
        """
        base = baseline or str(self.ranking(metric)["algorithm"].iloc[0])
        runs = self.runs.set_index(["algorithm", "replication"])[metric]
        rows = []
        for a in self.algorithms:
            if a == base:
                continue
            diff = (runs.loc[a] - runs.loc[base]).to_numpy(dtype=float)
            iv = mean_ci(diff, self.confidence)
            rows.append(
                {
                    "algorithm": a,
                    "baseline": base,
                    "metric": metric,
                    "n": iv.n,
                    "diff_mean": iv.mean,
                    "diff_ci_lo": iv.lo,
                    "diff_ci_hi": iv.hi,
                    "significant": bool(iv.lo > 0 or iv.hi < 0),
                }
            )
        return pd.DataFrame(rows)

    def ranking(self, metric: str = "latency_p99", higher_is_better: bool = False) -> pd.DataFrame:
        """Algorithms from best to worst on ``metric``; ``separated`` says whether the
        algorithm's interval does not overlap the next one's."""
        ivs = [(a, self.interval(a, metric)) for a in self.algorithms]
        ivs.sort(key=lambda t: -t[1].mean if higher_is_better else t[1].mean)
        rows = []
        for i, (a, iv) in enumerate(ivs):
            nxt = ivs[i + 1][1] if i + 1 < len(ivs) else None
            sep = None
            if nxt is not None:
                sep = bool(iv.lo > nxt.hi) if higher_is_better else bool(iv.hi < nxt.lo)
            rows.append(
                {
                    "rank": i + 1,
                    "algorithm": a,
                    "mean": iv.mean,
                    "ci_lo": iv.lo,
                    "ci_hi": iv.hi,
                    "separated_from_next": sep,
                }
            )
        return pd.DataFrame(rows)

    def histograms(self) -> dict[str, np.ndarray]:
        """Latency histogram per algorithm, summed over replications."""
        pts = {p["label"]["algorithm"]: p["point"] for p in self.result.meta["grid"]}
        return {a: self.result.latency_histogram(pts[a]) for a in self.algorithms}

    def member_shares(self) -> pd.DataFrame:
        """Mean and CI of each member's share of requests per algorithm."""
        mem = self.result.members()
        rows = []
        for (a, name), grp in mem.groupby(["algorithm", "name"], sort=False):
            iv = mean_ci(grp["share"].to_numpy(dtype=float), self.confidence)
            rows.append({"algorithm": a, "name": name, "share": iv.mean, "share_lo": iv.lo, "share_hi": iv.hi})
        return pd.DataFrame(rows)

    def figures(self) -> dict[str, Any]:
        """The comparison figures by name: latency CDF, p99 with CI, member load, error rate."""
        pts = self.result.points
        return {
            "latency-cdf": plots.latency_cdf(self.histograms(), title="Latency CDF (all replications)"),
            "p99": plots.metric_ci(
                pts,
                "algorithm",
                "latency_p99",
                ylabel="p99 latency [ms]",
                scale=1000.0,
                title=f"p99 latency, mean and {self.confidence:.0%} CI",
            ),
            "member-load": plots.member_load(self.member_shares(), title="Share of requests per member"),
            "error-rate": plots.metric_ci(
                pts,
                "algorithm",
                "error_rate",
                ylabel="errors / requests",
                title=f"Error rate, mean and {self.confidence:.0%} CI",
            ),
        }

    def save_figures(self, folder: Path) -> list[Path]:
        """Write every figure as ``<name>.png`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, fig in self.figures().items():
            p = folder / f"{name}.png"
            plots.save_png(fig, p)
            paths.append(p)
        return paths


def format_interval(iv: Interval, digits: int = 4) -> str:
    """``mean [lo, hi]`` with ``digits`` significant digits (``-`` when empty)."""
    if iv.n == 0:
        return "-"
    if iv.n < 2 or not np.isfinite(iv.lo):
        return f"{iv.mean:.{digits}g}"
    return f"{iv.mean:.{digits}g} [{iv.lo:.{digits}g}, {iv.hi:.{digits}g}]"


def compare(
    scenario: m.Scenario,
    algorithms: Sequence[str] | str,
    *,
    replications: int = 10,
    pools: Sequence[str] | None = None,
    out: Path | None = None,
    jobs: int | None = None,
    dask: str | None = None,
    engine: Engine | None = None,
    base_dir: Path | None = None,
    confidence: float = 0.95,
    progress: ProgressCallback | None = None,
    scenario_text: str | None = None,
) -> Comparison:
    """Run the scenario once per algorithm and replication with common random numbers.

    With ``out``: runs are stored there (a rerun reuses them), and the tables
    (``runs``/``points`` as parquet and CSV, ``comparison.csv``, ``ranking.csv``,
    ``paired.csv``) and the figures are written beside them.
    """
    algos = parse_algorithms(algorithms)
    pts = algorithm_points(scenario, algos, pools)
    d = design(scenario, pts, replications, base_dir=base_dir, crn=True)
    eng = engine or Engine(jobs=jobs, dask=dask)
    try:
        res = run_design(
            d,
            out=out,
            engine=eng,
            progress=progress,
            confidence=confidence,
            kind="compare",
            extra_meta={"algorithms": algos, "pools": list(pools) if pools else None},
            scenario_text=scenario_text,
        )
    finally:
        if engine is None:
            eng.close()
    cmp = Comparison(res, algos, confidence)
    if out is not None:
        write_comparison(cmp, Path(out))
    return cmp


def write_comparison(cmp: Comparison, out: Path) -> None:
    """Write the comparison tables and figures into ``out``."""
    cmp.side_by_side().to_csv(out / "comparison.csv", index=False, lineterminator="\n")
    cmp.table().to_csv(out / "comparison-long.csv", index=False, lineterminator="\n")
    cmp.ranking().to_csv(out / "ranking.csv", index=False, lineterminator="\n")
    cmp.paired().to_csv(out / "paired.csv", index=False, lineterminator="\n")
    cmp.save_figures(out)


def load_comparison(folder: Path) -> Comparison:
    """Read a folder written by :func:`compare`."""
    res = load_experiment(folder)
    meta: Mapping[str, Any] = res.meta
    if meta.get("kind") != "compare":
        raise ValueError(f"{folder}: not a comparison folder (kind {meta.get('kind')!r})")
    return Comparison(res, list(meta["algorithms"]), float(meta["confidence"]))


__all__ = [
    "COMPARE_METRICS",
    "Comparison",
    "algorithm_points",
    "compare",
    "format_interval",
    "load_comparison",
    "parse_algorithms",
]
