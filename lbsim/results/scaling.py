"""Autoscaling results: ``scaling.csv``, ``pool_size.csv``, the summary block and the SLO verdict.

These read what the :class:`lbsim.sim.autoscaling.Autoscaler` processes recorded during a run
and turn it into the contract's tables (see :mod:`lbsim.sim.autoscaling` for the semantics).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lbsim.sim.autoscaling import POOL_SIZE_COLUMNS, SCALING_COLUMNS, Autoscaler, _r

if TYPE_CHECKING:
    from lbsim.sim.engine import RawRun


# --------------------------------------------------------------------------------------
# Results: tables, summary, SLO verdict
# --------------------------------------------------------------------------------------


def scalers_of(raw: RawRun) -> list[Autoscaler]:
    """The run's autoscalers (none for a scenario without ``autoscaling``)."""
    return [s for s in (raw.extra.get("autoscalers") or []) if isinstance(s, Autoscaler)]


def scaling_frame(scalers: Sequence[Autoscaler]) -> pd.DataFrame:
    """``scaling.csv``: every decision, hold and member action, in time order."""
    rows = [r for s in scalers for r in s.rows]
    rows.sort(key=lambda r: r[0])
    df = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    for col in ("from", "to", "code", "protocol_port"):
        df[col] = df[col].astype("Int64")
    return df


def pool_size_frame(scalers: Sequence[Autoscaler], duration: float) -> pd.DataFrame:
    """``pool_size.csv``: a row whenever a pool's count changed or it was evaluated, and one at the end."""
    rows: list[tuple[Any, ...]] = []
    for s in scalers:
        rows.extend(s.sizes)
        if s.sizes and s.sizes[-1][0] < duration:
            rows.append((duration, *s.sizes[-1][1:]))
    rows.sort(key=lambda r: r[0])
    return pd.DataFrame(rows, columns=POOL_SIZE_COLUMNS)


def _time_weighted(frame: pd.DataFrame, column: str, duration: float) -> float:
    if len(frame) == 0:
        return 0.0
    t = frame["time"].to_numpy(dtype=float)
    v = frame[column].to_numpy(dtype=float)
    ends = np.append(t[1:], duration)
    return float(np.sum(v * np.clip(ends - t, 0, None)))


def autoscaling_summary(raw: RawRun) -> dict[str, Any] | None:
    """The ``autoscaling`` block of summary.json: per pool, what the scaler did and what it cost."""
    scalers = scalers_of(raw)
    if not scalers:
        return None
    out: dict[str, Any] = {}
    for s in scalers:
        sizes = pool_size_frame([s], raw.duration)
        recs = [r for r in s.members.values() if r.origin == "scaler"]
        actions = [r for r in s.rows if r[2] in ("scale_out", "scale_in")]
        reversals = sum(1 for a, b in itertools.pairwise(actions) if a[2] != b[2])
        ready_after = [
            r.first_traffic - r.decided for r in recs if r.first_traffic is not None and r.decided is not None
        ]
        instances = _time_weighted(sizes, "members", raw.duration) + _time_weighted(sizes, "booting", raw.duration)
        out[s.pool] = {
            "policy": s.policy.policy,
            "metric": s.policy.metric,
            "min_members": s.policy.min_members,
            "max_members": s.policy.max_members,
            "final_members": int(sizes["members"].iloc[-1]) if len(sizes) else 0,
            "peak_members": int(sizes["members"].max()) if len(sizes) else 0,
            "mean_members": _r(_time_weighted(sizes, "members", raw.duration) / raw.duration),
            "instance_seconds": _r(instances),
            "scale_outs": sum(1 for a in actions if a[2] == "scale_out"),
            "scale_ins": sum(1 for a in actions if a[2] == "scale_in"),
            "reversals": reversals,
            "members_added": sum(1 for r in recs if r.active is not None),
            "members_removed": sum(
                1 for r in s.members.values() if r.deleted is not None and r.drain_start is not None
            ),
            "conflicts_409": int(sum(int(r[13]) for r in s.rows)),
            "drain_timeouts": sum(1 for r in s.members.values() if r.in_flight_at_timeout > 0),
            "in_flight_at_delete": sum(r.in_flight_at_delete for r in s.members.values()),
            "decision_to_first_request": {
                "mean": _r(float(np.mean(ready_after))) if ready_after else None,
                "max": _r(float(np.max(ready_after))) if ready_after else None,
            },
        }
    return out


_OBJECTIVES = (
    ("latency_p95", "p95", "<="),
    ("latency_p99", "p99", "<="),
    ("latency_mean", "mean", "<="),
    ("availability", "availability", ">="),
)


def slo_verdict(raw: RawRun) -> dict[str, Any] | None:
    """The run's SLO verdict for every pool whose policy declares ``slo`` (None: no SLO).

    Latency objectives use the pool's successful requests after warm-up; availability
    is the pool's successes over its successes and failures, where failures that reached
    no member (503 with no usable member, connection errors) count against every pool.
    ``violation_seconds`` adds up the evaluation intervals whose own percentile (or
    mean) broke a latency objective: how long users felt it.
    """
    dp = raw.dp
    objectives: list[dict[str, Any]] = []
    for s in scalers_of(raw):
        slo = s.policy.slo
        if slo is None:
            continue
        names = set(s.members)
        rows = [i for i, n in enumerate(raw.member_names) if n in names]
        lat = dp.latency.summary(rows) if rows else None
        ok = sum(dp.member_ok(i) for i in rows)
        errs = sum(sum(dp.member_errors[i].values()) for i in rows)
        attributed = sum(sum(e.values()) for e in dp.member_errors)
        unattributed = sum(dp.errors.values()) - attributed
        total = ok + errs + unattributed
        values = {
            "p95": lat.p95 if lat is not None else math.nan,
            "p99": lat.p99 if lat is not None else math.nan,
            "mean": lat.mean if lat is not None else math.nan,
            "availability": ok / total if total else math.nan,
        }
        column = {"p95": 3, "p99": 4, "mean": 5}
        for field_name, key, op in _OBJECTIVES:
            threshold = getattr(slo, field_name)
            if threshold is None:
                continue
            v = values[key]
            met = bool(not math.isnan(v) and (v <= threshold if op == "<=" else v >= threshold))
            entry: dict[str, Any] = {
                "pool": s.pool,
                "metric": field_name,
                "objective": f"{key} {op} {threshold:g}",
                "threshold": threshold,
                "value": _r(v),
                "met": met,
            }
            if key in column:
                c = column[key]
                entry["violation_seconds"] = _r(
                    sum(iv[1] - iv[0] for iv in s.intervals if iv[2] > 0 and iv[c] > threshold)
                )
            objectives.append(entry)
    if not objectives:
        return None
    return {"met": all(o["met"] for o in objectives), "objectives": objectives}
