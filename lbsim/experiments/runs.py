"""One run -> one record: simulate a run specification and reduce it to its metrics."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lbsim._version import __version__
from lbsim.experiments.design import RunSpec
from lbsim.experiments.store import RunStore
from lbsim.scenario import model as m

# --------------------------------------------------------------------------------------
# One run -> one record
# --------------------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    """A JSON-safe float (None for missing/NaN)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def describe_expectation(row: Mapping[Any, Any]) -> str:
    """One line for an expectation row of ``expectations.csv``."""
    when = str(row["time"])
    when = f"within {when}" if when.startswith("[") else f"at {when}"
    return f"{when}: {row['object_type']} {row['name']} {row['field']} = {row['expected']}"


def run_metrics(
    summary: Mapping[str, Any], members: pd.DataFrame, expectations: pd.DataFrame, incidents: pd.DataFrame
) -> dict[str, float | None]:
    """The flat metrics of one run (see :data:`BASE_METRICS`), plus per-kind error counts,
    one 0/1 column per expectation and detection delays per incident."""
    req = int(summary.get("requests") or 0)
    errs = {str(k): int(v) for k, v in (summary.get("errors") or {}).items()}
    n_err = sum(errs.values())
    lat = summary.get("latency") or {}
    shares = members["requests"].astype(float).to_numpy() if len(members) else np.zeros(0)
    imbalance = float(shares.max() / shares.mean()) if len(shares) and shares.mean() > 0 else None
    out: dict[str, float | None] = {
        "requests": float(req),
        "ok": float(summary.get("ok") or 0),
        "errors": float(n_err),
        "error_rate": n_err / req if req else None,
        "availability": _num(summary.get("availability")),
        "throughput": _num(summary.get("throughput")),
        "latency_mean": _num(lat.get("mean")),
        "latency_p50": _num(lat.get("p50")),
        "latency_p95": _num(lat.get("p95")),
        "latency_p99": _num(lat.get("p99")),
        "load_imbalance": imbalance,
    }
    results = list(expectations["result"]) if len(expectations) else []
    out["expectations_held"] = 1.0 if all(r == "pass" for r in results) else 0.0
    for i, r in enumerate(results):
        out[f"expect_{i}"] = 1.0 if r == "pass" else 0.0
    for kind, n in sorted(errs.items()):
        out[f"errors_{kind}"] = float(n)
    for i, inc in enumerate(incidents.to_dict("records")):
        t0 = _num(inc.get("fault_time"))
        det, api = _num(inc.get("detected_time")), _num(inc.get("api_visible_time"))
        out[f"incident_{i}_detect"] = det - t0 if det is not None and t0 is not None else None
        out[f"incident_{i}_api"] = api - t0 if api is not None and t0 is not None else None
    return out


def execute_run(spec: RunSpec, store: str | None = None) -> dict[str, Any]:
    """Simulate one run and return its record; with ``store``, also save it there atomically.

    Runs in worker processes: it imports the engine itself and touches no global state.
    """
    from lbsim.results.folder import summarise
    from lbsim.sim.world import simulate

    t0 = time.perf_counter()
    sc = m.Scenario.model_validate(spec.scenario)
    raw = simulate(sc, seed=spec.seed, base_dir=Path(spec.base_dir) if spec.base_dir else None)
    res = summarise(raw)
    hist = raw.dp.latency.histogram()
    nz = np.flatnonzero(hist)
    per_member = []
    for name in dict.fromkeys(raw.member_names):
        rows = [i for i, n in enumerate(raw.member_names) if n == name]
        h = raw.dp.latency.histogram(rows)
        k = np.flatnonzero(h)
        per_member.append({"name": name, "bins": k.tolist(), "counts": h[k].tolist()})
    record: dict[str, Any] = {
        "key": spec.key,
        "seed": spec.seed,
        "lbsim_version": __version__,
        "scenario_name": sc.name,
        "metrics": run_metrics(res.summary, res.members, res.expectations, res.incidents),
        "summary": res.summary,
        "members": json.loads(res.members.to_json(orient="records")),
        "expectations": [
            {"description": describe_expectation(r), "result": r["result"], "found": str(r["found"])}
            for r in res.expectations.to_dict("records")
        ],
        "incidents": json.loads(res.incidents.to_json(orient="records")),
        "latency_hist": {"bins": nz.tolist(), "counts": hist[nz].tolist()},
        "member_hist": per_member,
        "scenario": spec.scenario,
        "wall": time.perf_counter() - t0,
        "pid": os.getpid(),
    }
    if store is not None:
        RunStore(Path(store)).put(record)
    return record
