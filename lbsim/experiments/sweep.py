"""Experiments: parameter sweeps with replications, reproducible seeds, engines, CI tables.

A *sweep* runs a scenario at every point of a parameter grid, ``replications`` times per
point, and tabulates one row per run and one row per grid point (mean and Student-t
confidence interval of every metric). The pieces, in the order a sweep uses them:

* **Overrides** -- ``path=v1,v2,...`` where ``path`` is a dotted scenario path with list
  indices (``loadbalancer.pools.0.lb_algorithm``, ``traffic.0.arrival.rate``,
  ``octavia.heartbeat_interval``; ``pools[0]`` is accepted too). Values are YAML
  scalars or flow collections (``{dist: exponential, mean: 0.02}``). Every grid point is
  applied to the scenario and validated exactly as a scenario file is, *before* anything
  runs, so that a bad value is reported with the path it came from.
* **Seeds** -- derived from a hash of the scenario's content, the grid point and the
  replication number, so any single run can be reproduced alone: the stored run carries
  its scenario with ``seed`` set to the derived seed, and ``lbsim run`` on it gives the
  same numbers. With common random numbers (``crn=True``, used by ``compare`` and
  ``plan``) the grid point is left out of the seed: replication *r* of every point sees
  the same arrivals and service demands, because lbsim draws each random quantity from
  its own named stream (:func:`lbsim.distributions.stream`).
* **Store** -- every finished run is written atomically (temporary file, then rename)
  under a key that hashes its inputs: the scenario after overrides (seed included), the
  contents of files it reads (traces, empirical samples) and the lbsim version. A rerun
  skips what is stored, so a sweep killed half-way loses only the runs that were in
  flight. ``executed.log`` gets one line per run actually simulated.
* **Engines** -- :class:`Engine` runs the missing runs serially, on local processes
  (``concurrent.futures.ProcessPoolExecutor``, the default, one per core), or on Dask
  (a ``distributed.LocalCluster`` on 127.0.0.1, or a scheduler address). Tables are
  built from the stored records in grid order, so they are identical whatever the engine.

Confidence intervals are ``mean ± t(1-α/2, n-1)·s/√n`` over the replications of a point
(Student t; the t quantile is computed here so that scipy is not needed).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lbsim import __version__
from lbsim import model as m
from lbsim.scenario import ScenarioError, format_path, parse_scenario

PathT = tuple[str | int, ...]
ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: runs finished (stored ones included) out of all runs."""

#: metrics every run row carries, with their meaning (units in brackets)
BASE_METRICS: dict[str, str] = {
    "requests": "requests that arrived after warm-up and completed [count]",
    "ok": "successful requests [count]",
    "errors": "failed requests, every kind [count]",
    "error_rate": "errors / requests",
    "availability": "ok / requests",
    "throughput": "successful requests per second after warm-up [1/s]",
    "latency_mean": "mean latency of successful requests [s]",
    "latency_p50": "median latency [s]",
    "latency_p95": "95th percentile latency [s]",
    "latency_p99": "99th percentile latency [s]",
    "load_imbalance": "most-loaded member's requests / mean per member (1 = even)",
    "expectations_held": "1 when every expectation of the scenario held, else 0",
}
#: metrics whose per-point summary is a pass count rather than a mean
_PASS_PREFIXES = ("expect_", "expectations_held")
STORE_DIR = "store"
LOG_NAME = "executed.log"


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for k in range(1, 400):
        k2 = 2 * k
        aa = k * (b - k) * x / ((qam + k2) * (a + k2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + k) * (qab + k) * x / ((a + k2) * (qap + k2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student t cumulative distribution function with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class Interval:
    """Mean and two-sided Student-t confidence interval of a sample."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN with fewer than two values)."""
        return (self.hi - self.lo) / 2.0


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Mean and ``confidence`` CI of the finite values (NaN bounds for fewer than two)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(float(v))], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, 1)
    sd = float(x.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


# --------------------------------------------------------------------------------------
# Overrides: dotted paths into the scenario
# --------------------------------------------------------------------------------------


class OverrideError(ValueError):
    """One or more ``--set`` values do not give a valid scenario; one message per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_path(path: str) -> PathT:
    """``loadbalancer.pools.0.lb_algorithm`` or ``loadbalancer.pools[0].lb_algorithm`` -> parts."""
    text = path.strip()
    if not text:
        raise OverrideError(["empty parameter path"])
    parts: list[str | int] = []
    for token in text.replace("[", ".").replace("]", "").split("."):
        if token == "":
            raise OverrideError([f"{path}: malformed path (empty component)"])
        if token.lstrip("-").isdigit():
            parts.append(int(token))
        else:
            parts.append(token)
    return tuple(parts)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` at top-level commas (not inside quotes, ``{}`` or ``[]``)."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    cur = ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def parse_value(text: str) -> Any:
    """A ``--set`` value: YAML scalar (``10``, ``0.5``, ``true``, ``LEAST_CONNECTIONS``) or flow collection."""
    try:
        value = yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError as exc:
        raise OverrideError([f"cannot read value {text!r}: {exc}"]) from None
    if isinstance(value, str) and _NUMBER.match(value):
        # YAML 1.1 reads '1e3' and '2.5e2' as text; a user means a number
        return float(value)
    return value


@dataclass(frozen=True)
class Override:
    """One ``--set path=v1,v2,...``: a scenario path and the values it takes."""

    path: str
    values: tuple[Any, ...]

    @property
    def parts(self) -> PathT:
        """The path split into keys and list indices."""
        return parse_path(self.path)


def parse_set(text: str) -> Override:
    """Parse ``path=v1,v2,...`` (the right side split at top-level commas)."""
    if "=" not in text:
        raise OverrideError([f"--set {text!r}: expected path=value[,value...]"])
    path, _, rhs = text.partition("=")
    path = path.strip()
    parse_path(path)
    raw = split_values(rhs)
    if rhs.strip() == "" or any(v == "" for v in raw):
        raise OverrideError([f"--set {text!r}: empty value (give path=v1,v2,...)"])
    values = tuple(parse_value(v) for v in raw)
    return Override(path, values)


def set_path(data: Any, parts: PathT, value: Any) -> None:
    """Set ``value`` at ``parts`` inside a scenario dict; unknown *leaf* keys are left to
    the validator (it names them with a did-you-mean), missing intermediate keys or list
    indices out of range are reported here."""
    cur = data
    for i, part in enumerate(parts):
        here = format_path(parts[: i + 1])
        last = i == len(parts) - 1
        if isinstance(cur, list):
            if not isinstance(part, int):
                raise OverrideError([f"{here}: {format_path(parts[:i]) or 'this'} is a list; expected an index"])
            if not -len(cur) <= part < len(cur):
                n = len(cur)
                items = f"{n} item{'s' if n != 1 else ''}"
                raise OverrideError([f"{here}: index {part} out of range ({format_path(parts[:i])} has {items})"])
            if last:
                cur[part] = value
                return
            cur = cur[part]
        elif isinstance(cur, dict):
            key = str(part)
            if last:
                cur[key] = value
                return
            if key not in cur:
                close = difflib.get_close_matches(key, [str(k) for k in cur], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; fields here: {', '.join(map(str, cur))}"
                raise OverrideError([f"{here}: no such field{hint}"])
            if cur[key] is None:
                raise OverrideError(
                    [f"{here}: is not set in the scenario; set the whole object (e.g. --set {here}='{{...}}')"]
                )
            cur = cur[key]
        else:
            raise OverrideError([f"{here}: {format_path(parts[:i])} is a value, not an object or list"])


def scenario_data(scenario: m.Scenario) -> dict[str, Any]:
    """The scenario as plain JSON-able data, every default filled in (so any field can be set)."""
    return scenario.model_dump(mode="json")


def canonical_json(obj: Any) -> str:
    """Stable JSON text (sorted keys, no spaces) for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def _referenced_files(data: Any) -> Iterator[str]:
    """Every ``file`` a trace arrival or empirical distribution names."""
    if isinstance(data, dict):
        if isinstance(data.get("file"), str) and (data.get("process") == "trace" or data.get("dist") == "empirical"):
            yield data["file"]
        for v in data.values():
            yield from _referenced_files(v)
    elif isinstance(data, list):
        for v in data:
            yield from _referenced_files(v)


def scenario_hash(scenario: m.Scenario | Mapping[str, Any], base_dir: Path | None = None) -> str:
    """SHA-256 of the scenario's content (not its formatting), plus any files it reads."""
    data = scenario_data(scenario) if isinstance(scenario, m.Scenario) else scenario
    h = hashlib.sha256(canonical_json(data).encode())
    for name in sorted(set(_referenced_files(data))):
        p = Path(name)
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        try:
            h.update(f"\0{name}\0".encode() + hashlib.sha256(p.read_bytes()).digest())
        except OSError:
            h.update(f"\0{name}\0missing".encode())
    return h.hexdigest()


def derive_seed(base_hash: str, point: Mapping[str, Any] | None, replication: int) -> int:
    """A run's seed from (scenario content hash, grid point, replication); 0 <= seed < 2**63."""
    text = f"lbsim-seed|{base_hash}|{canonical_json(dict(point) if point else {})}|{replication}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def run_key(run_scenario_hash: str, seed: int, version: str = __version__) -> str:
    """The store key of one run: its scenario (after overrides), seed and lbsim version."""
    return hashlib.sha256(f"lbsim-run|{run_scenario_hash}|{seed}|{version}".encode()).hexdigest()[:32]


def _describe_assignment(assign: Mapping[str, Any]) -> str:
    return " ".join(f"--set {p}={_show(v)}" for p, v in assign.items())


def _show(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def apply_overrides(
    scenario: m.Scenario | Mapping[str, Any], assign: Mapping[str, Any], base_dir: Path | None = None
) -> m.Scenario:
    """The scenario with ``assign`` (path -> value) applied, validated like a scenario file.

    Raises :class:`OverrideError` naming the ``--set`` responsible for each problem.
    """
    data = scenario_data(scenario) if isinstance(scenario, m.Scenario) else json.loads(json.dumps(scenario))
    for path, value in assign.items():
        try:
            set_path(data, parse_path(path), value)
        except OverrideError as err:
            raise OverrideError([f"--set {path}={_show(value)}: {p}" for p in err.problems]) from None
    try:
        return parse_scenario(yaml.safe_dump(data, sort_keys=False), "--set", base_dir)
    except ScenarioError as err:
        problems = []
        for p in err.problems:
            blamed = {
                path: v
                for path, v in assign.items()
                if _related(parse_path(path), parse_path(p.path) if p.path else ())
            }
            who = _describe_assignment(blamed or dict(assign)) or "scenario"
            problems.append(f"{who}: {p.path or '<top>'}: {p.message}")
        raise OverrideError(problems) from None


def _related(a: PathT, b: PathT) -> bool:
    """One path is a prefix of the other (a problem at or under, or above, the set value)."""
    n = min(len(a), len(b))
    return n > 0 and a[:n] == b[:n]


# --------------------------------------------------------------------------------------
# Grid points and run specifications
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One grid point: the labels shown in tables and the scenario paths they set."""

    index: int
    label: dict[str, Any]
    assign: dict[str, Any]


def grid(overrides: Sequence[Override]) -> list[Point]:
    """The cartesian product of the overrides' values, last override varying fastest."""
    paths = [o.path for o in overrides]
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        raise OverrideError([f"--set {dup}: given twice; list all its values in one --set"])
    points = []
    for i, combo in enumerate(itertools.product(*(o.values for o in overrides))):
        assign = dict(zip(paths, combo, strict=True))
        points.append(Point(i, dict(assign), assign))
    return points


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to simulate one run (picklable, JSON-able)."""

    key: str
    point: int
    replication: int
    seed: int
    scenario: dict[str, Any]
    base_dir: str | None


@dataclass
class Design:
    """A validated experiment: the grid, the seeds and a spec per run, in table order."""

    scenario: m.Scenario
    base_hash: str
    points: list[Point]
    replications: int
    crn: bool
    specs: list[RunSpec]
    base_dir: str | None


def design(
    scenario: m.Scenario,
    points: Sequence[Point],
    replications: int,
    *,
    base_dir: Path | None = None,
    crn: bool = False,
    seed_base: str | None = None,
) -> Design:
    """Validate every point and derive every run's seed and store key (nothing runs).

    Seeds derive from the scenario's content hash, or from ``seed_base`` when given (a
    capacity plan builds a different scenario per member count but wants the same seeds
    for all of them). All problems of all points are collected into one
    :class:`OverrideError`.
    """
    if replications < 1:
        raise OverrideError([f"--replications {replications}: need at least 1"])
    base_hash = seed_base or scenario_hash(scenario, base_dir)
    specs: list[RunSpec] = []
    problems: list[str] = []
    bd = str(Path(base_dir).resolve()) if base_dir is not None else None
    for pt in points:
        try:
            sc = apply_overrides(scenario, pt.assign, base_dir)
        except OverrideError as err:
            problems.extend(p for p in err.problems if p not in problems)
            continue
        for rep in range(replications):
            seed = derive_seed(base_hash, None if crn else pt.label, rep)
            data = scenario_data(sc.model_copy(update={"seed": seed}))
            key = run_key(scenario_hash(data, base_dir), seed)
            specs.append(RunSpec(key, pt.index, rep, seed, data, bd))
    if problems:
        raise OverrideError(problems)
    return Design(scenario, base_hash, list(points), replications, crn, specs, bd)


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
    from lbsim.engine import simulate
    from lbsim.results import summarise

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


# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


class RunStore:
    """Finished runs, one JSON file per key, written atomically; plus a log of executions."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the record for ``key`` lives."""
        return self.folder / f"{key}.json"

    def has(self, key: str) -> bool:
        """True when the run is stored."""
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any]:
        """The stored record."""
        return dict(json.loads(self.path(key).read_text(encoding="utf-8")))

    def keys(self) -> list[str]:
        """Every stored key."""
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def put(self, record: dict[str, Any]) -> bool:
        """Store a record (temporary file + rename); False when it was already there.

        The log line is appended after the rename, so each logged key is a run that was
        simulated and stored; a kill between the two leaves a stored, unlogged run.
        """
        key = record["key"]
        target = self.path(key)
        if target.exists():
            return False
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, allow_nan=False), encoding="utf-8")
        os.replace(tmp, target)
        line = json.dumps(
            {
                "key": key,
                "seed": record["seed"],
                "pid": record.get("pid"),
                "wall": round(float(record.get("wall", 0.0)), 4),
            }
        )
        fd = os.open(self.folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return True

    def executed(self) -> list[str]:
        """Keys in the execution log, one per simulated run, in order."""
        log = self.folder / LOG_NAME
        if not log.is_file():
            return []
        return [json.loads(line)["key"] for line in log.read_text().splitlines() if line.strip()]

    def clean_stale(self, max_age: float = 60.0) -> int:
        """Remove temporary files left by killed writers; returns how many.

        A temporary file lives for milliseconds (write, then rename), so one whose
        writer is gone (no such process, or a zombie) or that is older than ``max_age``
        seconds is debris of a killed run.
        """
        n = 0
        now = time.time()
        for tmp in self.folder.glob(".*.tmp"):
            try:
                pid = int(tmp.name.rsplit(".", 2)[-2])
                stale = not _pid_alive(pid) or now - tmp.stat().st_mtime > max_age
            except (ValueError, OSError):
                continue
            if stale:
                tmp.unlink(missing_ok=True)
                n += 1
        return n


def _pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


# --------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------


class RunFailed(RuntimeError):
    """Some runs raised; the others finished and are stored (a rerun retries the failed)."""

    def __init__(self, failures: list[tuple[RunSpec, str]]):
        lines = [f"point {s.point} replication {s.replication} (seed {s.seed}): {e}" for s, e in failures]
        super().__init__(f"{len(failures)} run(s) failed:\n" + "\n".join(lines))
        self.failures = failures


class Engine:
    """Where runs execute: serially, on local processes, or on a Dask cluster.

    ``jobs``: worker count (None = every core; 1 = serial in this process unless
    ``dask`` is given). ``dask``: ``"local"`` for a ``LocalCluster`` bound to 127.0.0.1
    (no dashboard), or a scheduler address such as ``tcp://10.0.0.5:8786``. Remote Dask
    workers need lbsim installed and return their records to this process, which stores
    them; local workers store their own. Use as a context manager to reuse the pool or
    cluster across several sweeps (``plan`` does).
    """

    def __init__(self, jobs: int | None = None, dask: str | None = None):
        if jobs is not None and jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs = jobs
        self.dask = dask
        self._pool: Any = None
        self._client: Any = None
        self._cluster: Any = None

    @property
    def workers(self) -> int:
        """How many runs can execute at once."""
        return self.jobs or os.cpu_count() or 1

    @property
    def kind(self) -> str:
        """``serial``, ``processes`` or ``dask``."""
        if self.dask:
            return "dask"
        return "serial" if self.workers == 1 else "processes"

    def describe(self) -> str:
        """A short description for logs and reports."""
        if self.dask:
            return f"dask ({'LocalCluster on 127.0.0.1' if self.dask == 'local' else self.dask})"
        return "serial" if self.kind == "serial" else f"{self.workers} local processes"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down the process pool or Dask client/cluster, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _dask_client(self) -> Any:
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.dask == "local":
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
            else:
                self._client = Client(self.dask, timeout="20s")
        return self._client

    def dask_addresses(self) -> list[str]:
        """The Dask scheduler's address followed by its workers' (starts the client)."""
        if not self.dask:
            return []
        info = self._dask_client().scheduler_info()
        return [str(info["address"]), *sorted(str(w) for w in info["workers"])]

    def run(
        self, specs: Sequence[RunSpec], store: RunStore, progress: ProgressCallback | None = None
    ) -> dict[str, dict[str, Any]]:
        """Execute the specs not yet in ``store``; return every record by key.

        Specs sharing a key (the same run asked twice) execute once.
        """
        unique: dict[str, RunSpec] = {}
        for s in specs:
            unique.setdefault(s.key, s)
        total = len(unique)
        store.clean_stale()
        records: dict[str, dict[str, Any]] = {}
        todo: list[RunSpec] = []
        for key, s in unique.items():
            if store.has(key):
                records[key] = store.get(key)
            else:
                todo.append(s)
        done = len(records)
        if progress:
            progress(done, total)
        failures: list[tuple[RunSpec, str]] = []
        for spec, rec, err in self._execute(todo, store):
            if err is not None:
                failures.append((spec, err))
            else:
                assert rec is not None
                store.put(rec)  # no-op when the worker stored it
                records[spec.key] = rec
            done += 1
            if progress:
                progress(done, total)
        if failures:
            raise RunFailed(failures)
        return records

    def _execute(
        self, todo: list[RunSpec], store: RunStore
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        if not todo:
            return
        folder = str(store.folder)
        if self.dask:
            yield from self._execute_dask(todo, folder)
        elif self.workers == 1 or len(todo) == 1:
            for s in todo:
                try:
                    yield s, execute_run(s, folder), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        else:
            yield from self._execute_processes(todo, folder)

    def _execute_processes(
        self, todo: list[RunSpec], folder: str
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            # spawn: no fork of a process that may be running a progress-bar thread
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        futures = {self._pool.submit(execute_run, s, folder): s for s in todo}
        try:
            for fut in as_completed(futures):
                s = futures[fut]
                try:
                    yield s, fut.result(), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        finally:
            for fut in futures:
                fut.cancel()

    def _execute_dask(
        self, todo: list[RunSpec], folder: str
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        from distributed import as_completed

        client = self._dask_client()
        target = folder if self.dask == "local" else None
        futures = [
            client.submit(execute_run, s, target, pure=False, key=f"lbsim-run-{s.key}-{time.time_ns()}") for s in todo
        ]
        by_key = {f.key: s for f, s in zip(futures, todo, strict=True)}
        try:
            for fut in as_completed(futures):
                s = by_key[fut.key]
                try:
                    yield s, fut.result(), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        finally:
            for fut in futures:
                fut.cancel()


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


# --------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """A finished experiment: tables, per-run records and where they were written."""

    runs: pd.DataFrame
    points: pd.DataFrame
    meta: dict[str, Any]
    records: dict[str, dict[str, Any]] = field(repr=False)
    executed: int = 0
    reused: int = 0
    out: Path | None = None

    @property
    def labels(self) -> list[str]:
        """The parameter (label) columns."""
        cols = list(self.runs.columns)
        return cols[cols.index("replication") + 1 : cols.index("seed")]

    def latency_histogram(self, point: int) -> np.ndarray:
        """The latency histogram of a grid point, summed over its replications
        (bins of :func:`lbsim.metrics.bin_edges`; runs missing from the store are skipped)."""
        from lbsim.metrics import NBINS

        total = np.zeros(NBINS, dtype=np.int64)
        for key in self.runs.loc[self.runs["point"] == point, "key"]:
            if str(key) not in self.records:
                continue
            h = self.records[str(key)]["latency_hist"]
            np.add.at(total, np.asarray(h["bins"], dtype=np.int64), np.asarray(h["counts"], dtype=np.int64))
        return total

    def members(self) -> pd.DataFrame:
        """Per-member rows of every stored run: point, replication, labels, then members.csv's columns."""
        frames = []
        labels = self.labels
        for _, r in self.runs.iterrows():
            if str(r["key"]) not in self.records:
                continue
            df = pd.DataFrame(self.records[str(r["key"])]["members"])
            df.insert(0, "point", int(r["point"]))
            df.insert(1, "replication", int(r["replication"]))
            for j, lab in enumerate(labels):
                df.insert(2 + j, lab, r[lab])
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def scenario_of(self, point: int, replication: int = 0) -> m.Scenario:
        """The exact scenario of one run (its ``seed`` is the run's seed): run it alone to reproduce it."""
        row = self.runs[(self.runs["point"] == point) & (self.runs["replication"] == replication)]
        return m.Scenario.model_validate(self.records[str(row["key"].iloc[0])]["scenario"])


def run_design(
    design_: Design,
    *,
    out: Path | None = None,
    engine: Engine | None = None,
    progress: ProgressCallback | None = None,
    confidence: float = 0.95,
    kind: str = "sweep",
    extra_meta: Mapping[str, Any] | None = None,
    scenario_text: str | None = None,
    store: RunStore | None = None,
) -> SweepResult:
    """Execute a design (skipping stored runs) and build, and with ``out`` write, its tables.

    Runs are stored in ``store``, by default ``out/store`` (a temporary folder without
    ``out``, removed afterwards).
    """
    import tempfile

    own_engine = engine is None
    eng = engine or Engine()
    tmpdir = None
    if store is None and out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="lbsim-sweep-")
        store = RunStore(Path(tmpdir.name) / STORE_DIR)
    elif store is None:
        assert out is not None
        store = RunStore(Path(out) / STORE_DIR)
    try:
        before = set(store.keys())
        records = eng.run(design_.specs, store, progress)
    finally:
        if own_engine:
            eng.close()
    wanted = {s.key for s in design_.specs}
    reused = len(wanted & before)
    runs = runs_table(design_, records)
    points = points_table(runs, confidence)
    first = records[design_.specs[0].key]
    meta: dict[str, Any] = {
        "kind": kind,
        "scenario": design_.scenario.name,
        "scenario_hash": design_.base_hash,
        "parameters": list(design_.points[0].label) if design_.points else [],
        "grid": [{"point": p.index, "label": p.label, "set": p.assign} for p in design_.points],
        "replications": design_.replications,
        "confidence": confidence,
        "crn": design_.crn,
        "runs": len(design_.specs),
        "lbsim_version": __version__,
        "metrics": dict(BASE_METRICS),
        "expectations": [e["description"] for e in first["expectations"]],
        "incidents": [f"{i['kind']} {i['target']} at {i['fault_time']:g} s" for i in first["incidents"]],
        "duration": design_.scenario.duration,
        "warmup": design_.scenario.warmup,
        **(dict(extra_meta) if extra_meta else {}),
    }
    result = SweepResult(runs, points, meta, records, len(wanted) - reused, reused, None)
    if out is not None:
        result.out = save_tables(
            result, Path(out), scenario_text or yaml.safe_dump(scenario_data(design_.scenario), sort_keys=False)
        )
    if tmpdir is not None:
        tmpdir.cleanup()
    return result


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_tables(result: SweepResult, out: Path, scenario_text: str) -> Path:
    """Write runs/points as parquet and CSV, ``<kind>.json`` and the base scenario, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (("runs", result.runs), ("points", result.points)):

        def parquet(p: Path, d: pd.DataFrame = df) -> None:
            d.to_parquet(p, index=False)

        def csv(p: Path, d: pd.DataFrame = df) -> None:
            d.to_csv(p, index=False, lineterminator="\n")

        _atomic_write(out / f"{name}.parquet", parquet)
        _atomic_write(out / f"{name}.csv", csv)
    meta_text = json.dumps(result.meta, indent=2, default=str) + "\n"
    _atomic_write(out / "experiment.json", lambda p: p.write_text(meta_text, encoding="utf-8"))
    _atomic_write(out / "scenario.yaml", lambda p: p.write_text(scenario_text, encoding="utf-8"))
    return out


def load_experiment(folder: Path) -> SweepResult:
    """Read a folder written by a sweep, compare or plan (tables, metadata and stored runs)."""
    folder = Path(folder)
    meta = json.loads((folder / "experiment.json").read_text(encoding="utf-8"))
    runs = pd.read_parquet(folder / "runs.parquet")
    points = pd.read_parquet(folder / "points.parquet")
    store = RunStore(folder / STORE_DIR)
    records = {str(k): store.get(str(k)) for k in runs["key"] if store.has(str(k))}
    return SweepResult(runs, points, meta, records, 0, len(records), folder)


def sweep(
    scenario: m.Scenario,
    overrides: Sequence[Override | str],
    *,
    replications: int = 5,
    out: Path | None = None,
    jobs: int | None = None,
    dask: str | None = None,
    engine: Engine | None = None,
    base_dir: Path | None = None,
    crn: bool = False,
    confidence: float = 0.95,
    progress: ProgressCallback | None = None,
    scenario_text: str | None = None,
) -> SweepResult:
    """Run ``scenario`` at every grid point of ``overrides`` (``Override`` or ``"path=v1,v2"``)
    ``replications`` times; with ``out``, store runs there (resumable) and write the tables.

    Every grid point is validated before anything runs (:class:`OverrideError`).
    """
    ovs = [o if isinstance(o, Override) else parse_set(o) for o in overrides]
    pts = grid(ovs) if ovs else [Point(0, {}, {})]
    d = design(scenario, pts, replications, base_dir=base_dir, crn=crn)
    eng = engine or Engine(jobs=jobs, dask=dask)
    try:
        return run_design(d, out=out, engine=eng, progress=progress, confidence=confidence, scenario_text=scenario_text)
    finally:
        if engine is None:
            eng.close()


@contextlib.contextmanager
def rich_progress(description: str, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A rich progress bar (completed/total, elapsed, time left) as a progress callback."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


__all__ = [
    "BASE_METRICS",
    "Design",
    "Engine",
    "Interval",
    "Override",
    "OverrideError",
    "Point",
    "RunFailed",
    "RunSpec",
    "RunStore",
    "SweepResult",
    "apply_overrides",
    "derive_seed",
    "design",
    "execute_run",
    "grid",
    "load_experiment",
    "mean_ci",
    "parse_path",
    "parse_set",
    "points_table",
    "rich_progress",
    "run_design",
    "run_key",
    "run_metrics",
    "runs_table",
    "scenario_hash",
    "set_path",
    "sweep",
    "t_quantile",
]
