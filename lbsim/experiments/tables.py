"""Run and point tables of a sweep: one row per run, one per grid point with confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lbsim.experiments.common import _PASS_PREFIXES, BASE_METRICS
from lbsim.experiments.design import Design, _show
from lbsim.experiments.stats import mean_ci

# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _is_pass_metric(name: str) -> bool:
    return name.startswith(_PASS_PREFIXES)


def _param_column(values: list[Any]) -> pd.Series:
    """A parameter column with one type: numbers stay numbers, anything else becomes text."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pd.Series(values)
    return pd.Series([v if isinstance(v, str) else _show(v) for v in values], dtype="str")


def _metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    first = [n for n in BASE_METRICS if n in names]

    def rest_key(n: str) -> tuple[int, int, int, str]:
        for rank, prefix in enumerate(("errors_", "expect_", "incident_")):
            if n.startswith(prefix):
                tail = n[len(prefix) :].split("_")[0]
                return rank, int(tail) if tail.isdigit() else 0, int(n.endswith("_api")), n
        return 9, 0, 0, n

    return first + sorted((n for n in names if n not in BASE_METRICS), key=rest_key)


def runs_table(design_: Design, records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run in grid order: point, replication, parameters, seed, key, metrics."""
    labels = list(design_.points[0].label) if design_.points else []
    by_index = {p.index: p for p in design_.points}
    metric_names = _metric_order({k for s in design_.specs for k in records[s.key]["metrics"]})
    cols: dict[str, Any] = {
        "point": [s.point for s in design_.specs],
        "replication": [s.replication for s in design_.specs],
    }
    for lab in labels:
        cols[lab] = _param_column([by_index[s.point].label[lab] for s in design_.specs])
    cols["seed"] = [s.seed for s in design_.specs]
    cols["key"] = [s.key for s in design_.specs]
    for name in metric_names:
        default = 0.0 if name.startswith("errors_") else math.nan
        vals = []
        for s in design_.specs:
            v = records[s.key]["metrics"].get(name, default)
            vals.append(default if v is None and name.startswith("errors_") else (math.nan if v is None else v))
        cols[name] = pd.Series(vals, dtype=float)
    df = pd.DataFrame(cols)
    df["seed"] = df["seed"].astype("int64")
    return df


def metric_columns(runs: pd.DataFrame) -> list[str]:
    """The metric columns of a runs table (everything after ``key``)."""
    cols = list(runs.columns)
    return cols[cols.index("key") + 1 :]


def points_table(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per grid point: parameters, ``n``, and ``<metric>_mean/_ci_lo/_ci_hi`` of every
    metric (``<metric>_passes`` for expectation columns)."""
    cols = list(runs.columns)
    labels = cols[cols.index("replication") + 1 : cols.index("seed")]
    metrics = metric_columns(runs)
    rows = []
    for point, grp in runs.groupby("point", sort=True):
        row: dict[str, Any] = {"point": point}
        for lab in labels:
            row[lab] = grp[lab].iloc[0]
        row["n"] = len(grp)
        for mname in metrics:
            vals = grp[mname].to_numpy(dtype=float)
            if _is_pass_metric(mname):
                row[f"{mname}_passes"] = int(np.nansum(vals))
                continue
            iv = mean_ci(vals, confidence)
            row[f"{mname}_mean"] = iv.mean
            row[f"{mname}_ci_lo"] = iv.lo
            row[f"{mname}_ci_hi"] = iv.hi
        rows.append(row)
    out = pd.DataFrame(rows)
    for lab in labels:
        out[lab] = _param_column(list(out[lab]))
    return out
