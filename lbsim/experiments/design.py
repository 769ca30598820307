"""Overrides (``path=v1,v2``), reproducible seeds and the grid of run specifications a sweep runs.

Every grid point is applied to the scenario and validated exactly as a scenario file is,
before anything runs. Seeds derive from a hash of the scenario content, the grid point
and the replication (see :mod:`lbsim.experiments.sweep`).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lbsim._version import __version__
from lbsim.experiments.common import PathT
from lbsim.scenario import model as m
from lbsim.scenario.loader import ScenarioError, format_path, parse_scenario

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
