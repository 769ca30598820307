"""Capacity planning: the fewest members that meet every SLO with a given confidence.

An SLO such as ``p99<0.25`` is met at a member count when the *upper* end of the
two-sided ``confidence`` interval of the metric's mean over replications is below the
threshold (the lower end above it for ``>`` SLOs such as ``availability>0.999``), so a
plan is conservative: noise can only push the answer up. Metrics are per-run values
(a run's p99, a run's error rate), so the SLO reads "the expected p99 of a run of this
length is below 0.25 s".

How the count changes: the pool's first member is cloned (same serving parameters,
new name and address) to add members, and members are dropped from the end to remove
them; members that events name are always kept. Expectations are dropped (they are
about statuses, not capacity). ``peak_rate`` scales every traffic source so that their
combined peak rate is that many requests per second.

Search: member counts whose total capacity (sum of concurrency / mean service time)
does not exceed the offered load are unstable -- their queues grow without bound, so a
short run could meet a latency SLO by accident -- and are never chosen. From the first
stable count the search gallops upwards (+1, +2, +4, ...) until a count meets every SLO,
then bisects between the last failing and the first passing count. It assumes the
metrics improve with more members; every evaluated count is in the result so that a
non-monotone case is visible. Replication *r* uses the same seed at every count (common
random numbers), which keeps the curve smooth.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lbsim.experiments.common import STORE_DIR, ProgressCallback
from lbsim.experiments.design import Design, Point, RunSpec, design, scenario_data, scenario_hash
from lbsim.experiments.engines import Engine
from lbsim.experiments.stats import Interval, mean_ci
from lbsim.experiments.store import RunStore
from lbsim.experiments.sweep import SweepResult, run_design
from lbsim.figures import plots
from lbsim.scenario import model as m

SLO_METRICS: dict[str, str] = {
    "p50": "latency_p50",
    "p95": "latency_p95",
    "p99": "latency_p99",
    "mean": "latency_mean",
    "latency": "latency_mean",
    "errors": "error_rate",
    "error_rate": "error_rate",
    "availability": "availability",
    "throughput": "throughput",
}
SUPPORTED_VARY = ("members", "flavor", "autoscaling.max_members", "autoscaling.min_members")
#: the table column (and unit) of each knob
KNOB_COLUMN = {
    "members": "members",
    "flavor": "vcpus",
    "autoscaling.max_members": "max_members",
    "autoscaling.min_members": "min_members",
}
NOT_YET = {
    "topology": (
        "--vary topology is not supported yet: SINGLE and ACTIVE_STANDBY carry the same "
        "traffic in lbsim (the standby does not serve), so topology does not change capacity; "
        "compare their failover behaviour with `lbsim sweep --set loadbalancer.topology=SINGLE,ACTIVE_STANDBY`"
    ),
}
MAX_VCPUS = 256  # model.Flavor's bound


class PlanError(ValueError):
    """The plan cannot be set up (bad SLO, unsupported knob, no member to clone, ...)."""


@dataclass(frozen=True)
class SLO:
    """A service-level objective on one run metric: ``metric op threshold``."""

    metric: str
    op: str
    threshold: float
    text: str

    @property
    def upper(self) -> bool:
        """True for ``<``/``<=`` objectives (the metric must stay below)."""
        return self.op in ("<", "<=")

    def bound(self, iv: Interval) -> float:
        """The interval end that must clear the threshold."""
        return iv.hi if self.upper else iv.lo

    def met(self, iv: Interval) -> bool:
        """True when the whole confidence interval is on the right side of the threshold."""
        b = self.bound(iv)
        if not math.isfinite(b):
            # one replication, or a metric with no value (no successful request)
            return False
        return {"<": b < self.threshold, "<=": b <= self.threshold, ">": b > self.threshold, ">=": b >= self.threshold}[
            self.op
        ]

    def margin(self, iv: Interval) -> float:
        """How far the bound is inside the objective (negative: violated), in metric units."""
        b = self.bound(iv)
        return self.threshold - b if self.upper else b - self.threshold


_SLO_RE = re.compile(r"^\s*([A-Za-z_0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*(ms|s|%)?\s*$")


def parse_slo(text: str) -> SLO:
    """``p99<0.25``, ``p99<250ms``, ``mean<=0.1``, ``errors<0.001``, ``errors<0.1%``,
    ``availability>=99.9%``, ``throughput>500``."""
    mt = _SLO_RE.match(text)
    if not mt:
        raise PlanError(f"--slo {text!r}: expected METRIC<VALUE such as 'p99<0.25' or 'errors<0.001'")
    name, op, number, unit = mt.groups()
    metric = SLO_METRICS.get(name.lower())
    if metric is None:
        raise PlanError(f"--slo {text!r}: unknown metric {name!r}; choose from {', '.join(SLO_METRICS)}")
    try:
        value = float(number)
    except ValueError:
        raise PlanError(f"--slo {text!r}: {number!r} is not a number") from None
    if unit == "ms":
        if not metric.startswith("latency"):
            raise PlanError(f"--slo {text!r}: 'ms' only applies to latency metrics")
        value /= 1000.0
    elif unit == "s" and not metric.startswith("latency"):
        raise PlanError(f"--slo {text!r}: 's' only applies to latency metrics")
    elif unit == "%":
        if metric not in ("error_rate", "availability"):
            raise PlanError(f"--slo {text!r}: '%' only applies to errors and availability")
        value /= 100.0
    if not math.isfinite(value) or value < 0:
        raise PlanError(f"--slo {text!r}: the threshold must be a finite, non-negative number")
    return SLO(metric, op, value, text.strip())


# --------------------------------------------------------------------------------------
# Scenario transformations
# --------------------------------------------------------------------------------------


def _arrival_peak(arrival: dict[str, Any]) -> float:
    proc = arrival["process"]
    if proc in ("poisson", "constant"):
        return float(arrival["rate"])
    if proc == "profile":
        return max(float(r) for _, r in arrival["profile"])
    if proc == "mmpp":
        return max(float(r) for r in arrival["rates"])
    raise PlanError("--peak-rate cannot scale a 'trace' arrival process (its times are recorded)")


def peak_rate(data: dict[str, Any]) -> float:
    """The combined peak arrival rate of all traffic sources (requests per second)."""
    return sum(_arrival_peak(src["arrival"]) for src in data.get("traffic", []))


def scale_traffic(data: dict[str, Any], rate: float) -> None:
    """Scale every traffic source in place so that the combined peak rate is ``rate``."""
    if rate <= 0 or not math.isfinite(rate):
        raise PlanError(f"--peak-rate {rate:g}: expected a positive rate")
    current = peak_rate(data)
    if current <= 0:
        raise PlanError("--peak-rate: the scenario has no traffic to scale")
    k = rate / current
    for src in data["traffic"]:
        a = src["arrival"]
        if a["process"] in ("poisson", "constant"):
            a["rate"] = float(a["rate"]) * k
        elif a["process"] == "profile":
            a["profile"] = [[float(t), float(r) * k] for t, r in a["profile"]]
        elif a["process"] == "mmpp":
            a["rates"] = [float(r) * k for r in a["rates"]]


def _referenced_members(data: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for ev in data.get("events", []):
        if ev.get("member"):
            names.add(str(ev["member"]))
        for n in ev.get("members") or []:
            names.add(str(n))
    for f in data.get("failures", []) or []:
        for n in f.get("members") or []:
            names.add(str(n))
    return names


def _clone_name(first: str, used: set[str]) -> Callable[[], str]:
    stem = re.sub(r"\d+$", "", first)
    sep = "" if stem != first else "-"
    k = 1

    def nxt() -> str:
        nonlocal k
        while True:
            k += 1
            cand = f"{stem}{sep}{k}"
            if cand not in used:
                used.add(cand)
                return cand

    return nxt


def _clone_address(first: str, used: set[str]) -> Callable[[], str]:
    addr = ipaddress.ip_address(first)

    def nxt() -> str:
        nonlocal addr
        while True:
            addr = addr + 1
            if str(addr) not in used:
                used.add(str(addr))
                return str(addr)

    return nxt


def with_members(data: dict[str, Any], pool_index: int, count: int) -> dict[str, Any]:
    """A copy of scenario data whose pool has ``count`` members (clones of its first)."""
    import copy

    out = copy.deepcopy(data)
    pool = out["loadbalancer"]["pools"][pool_index]
    members = pool["members"]
    if not members:
        raise PlanError(f"pool {pool['name']!r} has no member to clone")
    if count < len(members):
        pool["members"] = members[:count]
        return out
    all_names = {mm["name"] for p in out["loadbalancer"]["pools"] for mm in p["members"]}
    used_addrs = {mm["address"] for p in out["loadbalancer"]["pools"] for mm in p["members"]}
    if out["loadbalancer"].get("vip_address"):
        used_addrs.add(out["loadbalancer"]["vip_address"])
    name = _clone_name(members[0]["name"], all_names)
    address = _clone_address(members[0]["address"], used_addrs)
    while len(members) < count:
        clone = copy.deepcopy(members[0])
        clone["name"] = name()
        clone["address"] = address()
        clone["monitor_address"] = None
        members.append(clone)
    return out


def with_vcpus(data: dict[str, Any], vcpus: int) -> dict[str, Any]:
    """A copy of scenario data whose amphora flavor has ``vcpus`` CPUs (other fields kept)."""
    import copy

    out = copy.deepcopy(data)
    lb = out["loadbalancer"]
    flavor = dict(lb.get("flavor") or m.Flavor().model_dump(mode="json"))
    flavor["vcpus"] = vcpus
    lb["flavor"] = flavor
    return out


def stable_vcpus(data: dict[str, Any], limit: int) -> int | None:
    """The fewest vCPUs whose connection rate exceeds the offered load (None: no traffic)."""
    if not data.get("traffic"):
        return None
    flavor = data["loadbalancer"].get("flavor") or m.Flavor().model_dump(mode="json")
    per_cpu = float(flavor["requests_per_second_per_vcpu"])
    n = math.floor(peak_rate(data) / per_cpu) + 1
    return min(n, limit + 1)


def _mean_service(dist: dict[str, Any], base_dir: Path | None) -> float:
    from lbsim.sim.distributions import make_sampler

    model = m.Member.model_validate(
        {"name": "x", "address": "10.0.0.1", "protocol_port": 80, "service_time": dist}
    ).service_time
    return float(make_sampler(model, np.random.default_rng(0), base_dir).mean)


def stable_count(data: dict[str, Any], pool_index: int, base_dir: Path | None, limit: int) -> int | None:
    """The fewest members whose total capacity exceeds the offered load, or None when the
    pool does not receive all the traffic (then no load is attributed to it)."""
    pools = data["loadbalancer"]["pools"]
    pool = pools[pool_index]
    listeners = {li["name"]: li for li in data["loadbalancer"]["listeners"]}
    if not data.get("traffic") or any(
        listeners.get(src["listener"], {}).get("default_pool") != pool["name"] for src in data["traffic"]
    ):
        return None
    load = peak_rate(data)
    caps = [int(mm["concurrency"]) / max(_mean_service(mm["service_time"], base_dir), 1e-12) for mm in pool["members"]]
    first = caps[0]
    total = 0.0
    for n in range(1, limit + 1):
        total += caps[n - 1] if n <= len(caps) else first
        if total > load:
            return n
    return limit + 1


# --------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    """The outcome of :func:`plan`."""

    vary: str
    pool: str
    answer: int | None
    slos: list[SLO]
    confidence: float
    replications: int
    peak_rate: float
    stable_from: int | None
    evaluations: pd.DataFrame
    result: SweepResult | None = field(default=None, repr=False)
    message: str = ""

    @property
    def column(self) -> str:
        """The evaluations' count column: ``members`` or ``vcpus``."""
        return KNOB_COLUMN[self.vary]

    def margins(self) -> pd.DataFrame:
        """Per SLO at the chosen count: mean, CI, threshold and margin (absolute, relative)."""
        if self.answer is None:
            return pd.DataFrame()
        row = self.evaluations[self.evaluations[self.column] == self.answer].iloc[0]
        rows = []
        for s in self.slos:
            iv = Interval(row[f"{s.metric}_mean"], row[f"{s.metric}_ci_lo"], row[f"{s.metric}_ci_hi"], int(row["n"]))
            margin = s.margin(iv)
            rows.append(
                {
                    "slo": s.text,
                    "metric": s.metric,
                    "mean": iv.mean,
                    "ci_lo": iv.lo,
                    "ci_hi": iv.hi,
                    "threshold": s.threshold,
                    "margin": margin,
                    "relative_margin": margin / s.threshold if s.threshold else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def figures(self) -> dict[str, Any]:
        """One figure per SLO metric: mean and CI against member count, SLO line, answer."""
        return {
            f"plan-{s.metric}": plots.plan_curve(
                self.evaluations, s.metric, s.threshold, upper=s.upper, chosen=self.answer, x=self.column
            )
            for s in self.slos
        }


def plan(
    scenario: m.Scenario,
    slos: Sequence[SLO | str],
    *,
    vary: str = "members",
    pool: str | None = None,
    peak_rate_rps: float | None = None,
    replications: int = 5,
    confidence: float = 0.95,
    max_members: int = 200,
    out: Path | None = None,
    jobs: int | None = None,
    dask: str | None = None,
    engine: Engine | None = None,
    base_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
) -> PlanResult:
    """Find the fewest members of ``pool`` (default: the first), or with ``vary="flavor"``
    the fewest amphora vCPUs (``loadbalancer.flavor.vcpus``; the flavor's other fields
    are kept, or lbsim's defaults without a flavor), meeting every SLO.

    ``max_members`` bounds the count searched. ``log`` receives one line per evaluated
    count. Raises :class:`PlanError` for an unsupported ``vary``, a bad SLO or pool, or
    a scenario that cannot be scaled.
    """
    import tempfile

    if vary in NOT_YET:
        raise PlanError(NOT_YET[vary])
    if vary not in SUPPORTED_VARY:
        raise PlanError(f"--vary {vary!r}: choose from {', '.join(SUPPORTED_VARY + tuple(NOT_YET))}")
    objectives = [s if isinstance(s, SLO) else parse_slo(s) for s in slos]
    if not objectives:
        raise PlanError("give at least one --slo")
    if replications < 2:
        raise PlanError("--replications: a confidence interval needs at least 2 replications")
    if not 0.0 < confidence < 1.0:
        raise PlanError(f"--confidence {confidence:g}: expected a value between 0 and 1")
    names = [p.name for p in scenario.loadbalancer.pools]
    pool_name = pool or (names[0] if names else None)
    if pool_name is None or pool_name not in names:
        raise PlanError(f"--pool {pool_name}: no such pool (pools: {', '.join(names) or 'none'})")
    pidx = names.index(pool_name)
    data = scenario_data(scenario)
    data["expect"] = []
    if peak_rate_rps is not None:
        scale_traffic(data, peak_rate_rps)
    rate = peak_rate(data) if all(s["arrival"]["process"] != "trace" for s in data.get("traffic", [])) else math.nan
    base = m.Scenario.model_validate(data)
    column = KNOB_COLUMN[vary]
    unit = {"members": "member", "flavor": "vCPU"}.get(vary, column.replace("_", " "))
    if vary.startswith("autoscaling."):
        policy = data["loadbalancer"]["pools"][pidx].get("autoscaling")
        if not policy:
            raise PlanError(f"--vary {vary}: pool {pool_name!r} has no autoscaling policy")
        knob = vary.split(".", 1)[1]
        # a larger bound of the scaler can only help: search the smallest that meets the SLOs
        min_count = int(policy.get("min_members", 1)) if knob == "max_members" else 0
        limit = max_members if knob == "max_members" else min(max_members, int(policy["max_members"]))
        stable = None

        def variant(n: int) -> dict[str, Any]:
            out = copy.deepcopy(data)
            out["loadbalancer"]["pools"][pidx]["autoscaling"][knob] = n
            return out

    elif vary == "members":
        existing = [mm["name"] for mm in data["loadbalancer"]["pools"][pidx]["members"]]
        if not existing:
            raise PlanError(f"pool {pool_name!r} has no member to clone")
        keep = _referenced_members(data) & set(existing)
        min_count = max([existing.index(n) + 1 for n in keep], default=1)
        stable = stable_count(data, pidx, base_dir, max_members)
        limit = max_members

        def variant(n: int) -> dict[str, Any]:
            return with_members(data, pidx, n)

    else:
        min_count = 1
        limit = min(max_members, MAX_VCPUS)
        members_ok = stable_count(data, pidx, base_dir, len(data["loadbalancer"]["pools"][pidx]["members"]))
        n_members = len(data["loadbalancer"]["pools"][pidx]["members"])
        if members_ok is not None and members_ok > n_members:
            raise PlanError(
                f"the {n_members} members of pool {pool_name!r} cannot carry {rate:g} req/s whatever the flavor; "
                "size the members first (--vary members)"
            )
        stable = stable_vcpus(data, limit)

        def variant(n: int) -> dict[str, Any]:
            return with_vcpus(data, n)

    start = max(min_count, stable or 1)
    say = log or (lambda _s: None)
    if start > limit:
        return PlanResult(
            vary,
            pool_name,
            None,
            objectives,
            confidence,
            replications,
            rate,
            stable,
            pd.DataFrame(),
            None,
            f"even {limit} {unit}s cannot carry {rate:g} req/s (capacity below the load)",
        )

    own = engine is None
    eng = engine or Engine(jobs=jobs, dask=dask)
    tmp = tempfile.TemporaryDirectory(prefix="lbsim-plan-") if out is None else None
    store = RunStore((Path(tmp.name) if tmp is not None else Path(str(out))) / STORE_DIR)
    seed_base = scenario_hash(base, base_dir)
    evaluated: dict[int, bool] = {}

    def design_for(counts: list[int]) -> Design:
        specs: list[RunSpec] = []
        points: list[Point] = []
        for i, n in enumerate(counts):
            sc = m.Scenario.model_validate(variant(n))
            d = design(sc, [Point(i, {column: n}, {})], replications, base_dir=base_dir, crn=True, seed_base=seed_base)
            specs.extend(replace(s, point=i) for s in d.specs)
            points.extend(d.points)
        return Design(base, seed_base, points, replications, True, specs, d.base_dir)

    def evaluate(n: int) -> bool:
        if n in evaluated:
            return evaluated[n]
        d = design_for([n])
        records = eng.run(d.specs, store, progress)
        ivs = {
            s.metric: mean_ci([_nan(records[sp.key]["metrics"].get(s.metric)) for sp in d.specs], confidence)
            for s in objectives
        }
        ok = all(s.met(ivs[s.metric]) for s in objectives)
        evaluated[n] = ok
        parts = "; ".join(
            f"{s.text} {'met' if s.met(ivs[s.metric]) else 'NOT met'} "
            f"(mean {ivs[s.metric].mean:.4g}, CI [{ivs[s.metric].lo:.4g}, {ivs[s.metric].hi:.4g}])"
            for s in objectives
        )
        say(f"{n} {unit}{'s' if n != 1 else ''}: {parts}")
        return ok

    try:
        answer: int | None = None
        last_fail = start - 1
        step = 1
        n = start
        while n <= limit:
            if evaluate(n):
                answer = n
                break
            last_fail = n
            n += step
            step *= 2
        if answer is None and last_fail < limit and evaluate(limit):
            answer = limit
        if answer is not None:
            lo, hi = last_fail, answer
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if evaluate(mid):
                    hi = mid
                else:
                    lo = mid
            answer = hi
        meta = {
            "vary": vary,
            "pool": pool_name,
            "slos": [s.text for s in objectives],
            "peak_rate": rate,
            "stable_from": stable,
            "answer": answer,
        }
        final = run_design(
            design_for(sorted(evaluated)),
            out=out,
            engine=eng,
            confidence=confidence,
            kind="plan",
            extra_meta=meta,
            store=store,
        )
    finally:
        if own:
            eng.close()
        if tmp is not None:
            tmp.cleanup()
    evaluations = _evaluations_table(final, objectives, evaluated, column)
    if answer is None:
        msg = f"no {unit} count up to {limit} meets every SLO"
    else:
        below = answer - 1
        why = (
            "is unstable (capacity below the load)"
            if stable is not None and below < stable
            else "would drop members that events name"
            if below < min_count
            else "does not meet every SLO"
        )
        if vary.startswith("autoscaling."):
            msg = f"{column} = {answer} meets every SLO" + (f"; {column} = {below} {why}" if below >= 0 else "")
        else:
            msg = f"{answer} {unit}s meet every SLO; {below} {why}" if below >= 1 else f"1 {unit} meets every SLO"
    result = PlanResult(
        vary, pool_name, answer, objectives, confidence, replications, rate, stable, evaluations, final, msg
    )
    if out is not None:
        write_plan(result, Path(out))
    return result


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _evaluations_table(
    res: SweepResult, objectives: list[SLO], evaluated: dict[int, bool], column: str
) -> pd.DataFrame:
    """The points table with one ``met: <slo>`` column per SLO and ``all_met``."""
    pts = res.points.copy()
    for s in objectives:
        pts[f"met: {s.text}"] = [
            s.met(Interval(r[f"{s.metric}_mean"], r[f"{s.metric}_ci_lo"], r[f"{s.metric}_ci_hi"], int(r["n"])))
            for _, r in pts.iterrows()
        ]
    pts["all_met"] = [evaluated[int(n)] for n in pts[column]]
    return pts


def write_plan(result: PlanResult, out: Path) -> None:
    """Write the plan's tables and figures into ``out`` (beside the experiment tables)."""
    result.evaluations.to_csv(out / "plan.csv", index=False, lineterminator="\n")
    result.margins().to_csv(out / "margins.csv", index=False, lineterminator="\n")
    for name, fig in result.figures().items():
        plots.save_png(fig, out / f"{name}.png")


def predicted_members_mmc(rate: float, mean_service: float, max_mean_latency: float) -> int:
    """Erlang C's fewest servers whose M/M/c mean latency (wait + service) meets a target."""
    from lbsim.experiments.queueing import min_servers_for_wait

    return min_servers_for_wait(rate, 1.0 / mean_service, max_mean_latency - mean_service)


__all__ = [
    "NOT_YET",
    "SLO",
    "SLO_METRICS",
    "PlanError",
    "PlanResult",
    "parse_slo",
    "peak_rate",
    "plan",
    "predicted_members_mmc",
    "scale_traffic",
    "stable_count",
    "stable_vcpus",
    "with_members",
    "with_vcpus",
]
