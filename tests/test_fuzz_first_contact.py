"""Fuzzing the front door (issue 14): mutants of the bundled scenarios, validated and run.

Hypothesis draws a bundled scenario and one to three mutations (a key deleted, renamed
or added, a value replaced by something hostile: zero, negative, huge, tiny, NaN, the
wrong type, rich markup, a misspelt status; a list item duplicated). Each mutant is
written to a file and given to the CLI as a user would: ``lbsim validate``, and when it
validates and its cost estimate says it is short, ``lbsim run``. Every outcome must be
exit 0, 1 or a clean 2 (a message, no traceback) within a time limit; an exception
escaping ``main`` or a run that does not end fails the test, and Hypothesis shrinks it to
a minimal reproducer. Examples are derandomized, so CI runs the same few hundred mutants
every time; the bases are the bundled scenarios with their arrival rates scaled down, so
that a run takes milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import io
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.cli.main import main
from lbsim.scenario.cost import estimate
from lbsim.scenario.loader import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
RATE_SCALE = 0.05
MAX_DURATION = 150.0
#: runs estimated to take longer than this (seconds) are only validated
MAX_RUN_ESTIMATE = 2.0
#: a single validate + run may take this long before it counts as a hang
TIME_LIMIT = 30


def _scale_rates(arrival: dict[str, Any]) -> None:
    if "rate" in arrival:
        arrival["rate"] = max(1.0, float(arrival["rate"]) * RATE_SCALE)
    if "rates" in arrival:
        arrival["rates"] = [float(r) * RATE_SCALE for r in arrival["rates"]]
    if "profile" in arrival:
        arrival["profile"] = [[t, float(r) * RATE_SCALE] for t, r in arrival["profile"]]


def _when(item: dict[str, Any]) -> float:
    if "at" in item:
        return float(item["at"])
    return float(max(item.get("within", [0, 0])))


def _bases() -> list[tuple[str, dict[str, Any]]]:
    """The bundled scenarios, cut to :data:`MAX_DURATION` seconds, their rates scaled down."""
    out = []
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or float(data.get("duration", 0)) > 2000:
            continue
        data["duration"] = min(float(data["duration"]), MAX_DURATION)
        data["warmup"] = min(float(data.get("warmup", 0)), MAX_DURATION / 4)
        for key in ("events", "expect"):
            data[key] = [x for x in data.get(key, []) if _when(x) <= MAX_DURATION]
        for tr in data.get("traffic", []):
            _scale_rates(tr.get("arrival", {}))
        out.append((str(path.relative_to(ROOT)), data))
    return out


BASES = _bases()

#: multipliers for numbers: mostly plausible (the mutant still validates), some extreme
FACTORS = [0, 0.5, 2, 10, 0.01, 1000, -1, 1e6, 1e-6]
HOSTILE: list[Any] = [
    0,
    -1,
    1,
    0.5,
    1e-9,
    1e9,
    2**70,
    float("nan"),
    float("inf"),
    "",
    "x",
    "[/x]",
    "[bold]b[/bold]",
    ":100:",
    "DEGARDED",
    "ONLINE",
    "SOURCE_IP_PORT",
    "2001:db8::/120",
    "nope.csv",
    None,
    True,
    [],
    {},
    [0, 0],
    {"dist": "gamma", "mean": 0.01, "cv": 1e-200},
    {"dist": "constant", "value": 0},
    {"process": "mmpp", "rates": [0, 0], "switch": [1, 1]},
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path and list index path in a YAML tree (the root excluded)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def mutate(data: dict[str, Any], ops: list[tuple[str, int, int]]) -> dict[str, Any]:
    """Apply ``ops`` (operation, path pick, value pick) to a deep copy of ``data``."""
    tree = copy.deepcopy(data)
    for op, pick, value in ops:
        paths = list(_paths(tree))
        if not paths:
            break
        path = paths[pick % len(paths)]
        parent, key = _parent(tree, path), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = copy.deepcopy(HOSTILE[value % len(HOSTILE)])
        elif op == "scale" and isinstance(parent[key], int | float) and not isinstance(parent[key], bool):
            factor = FACTORS[value % len(FACTORS)]
            scaled = parent[key] * factor
            parent[key] = int(scaled) if isinstance(parent[key], int) and abs(scaled) < 2**63 else scaled
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "rename" and isinstance(parent, dict) and isinstance(key, str) and len(key) > 1:
            parent[key[:-1]] = parent.pop(key)
        elif op == "add" and isinstance(parent, dict):
            parent[f"extra{value}"] = copy.deepcopy(HOSTILE[value % len(HOSTILE)])
    return tree


class Hung(Exception):
    """A CLI call did not return within :data:`TIME_LIMIT` seconds."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def boom(*_: Any) -> None:
        raise Hung(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in this process; returns the exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    text = out.getvalue() + err.getvalue()
    assert "Traceback" not in text, text
    return code, text


OPS = st.tuples(
    st.sampled_from(["scale", "scale", "scale", "delete", "replace", "duplicate", "rename", "add"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)


def check_mutant(base: int, ops: list[tuple[str, int, int]]) -> str:
    """Validate a mutant and run it if short; return what happened (for the statistics)."""
    name, data = BASES[base]
    mutant = mutate(data, ops)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "mutant.yaml"
        f.write_text(yaml.safe_dump(mutant, sort_keys=False, allow_unicode=True), encoding="utf-8")
        with time_limit(TIME_LIMIT):
            code, text = cli("validate", str(f))
            assert code in (0, 2), (name, ops, text)
            if code == 2:
                assert "error: " in text and str(f) in text, (name, ops, text)
                return "invalid"
            try:
                sc = load_scenario(f)
            except ScenarioError as exc:  # validate said ok: the loader must agree
                raise AssertionError(f"validate accepted what load_scenario refuses: {exc}") from None
            if estimate(sc, f.parent).seconds > MAX_RUN_ESTIMATE:
                return "long"
            code, text = cli("run", str(f), "--out", str(Path(tmp) / "out"), "--quiet")
            assert code in (0, 1, 2), (name, ops, text)
            if code != 2:
                assert (Path(tmp) / "out" / "manifest.json").is_file()
                for reader in ("status", "stats"):
                    rcode, rtext = cli(reader, str(Path(tmp) / "out"))
                    assert rcode in (0, 2), (reader, rtext)
            return f"ran:{code}"


def test_the_bases_are_valid_and_short() -> None:
    assert len(BASES) >= 10
    for name, data in BASES:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "base.yaml"
            f.write_text(yaml.safe_dump(data))
            assert estimate(load_scenario(f)).seconds <= MAX_RUN_ESTIMATE, name


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(base=st.integers(0, len(BASES) - 1), ops=st.lists(OPS, min_size=1, max_size=3))
def test_mutants_end_cleanly(base: int, ops: list[tuple[str, int, int]]) -> None:
    check_mutant(base, ops)


@pytest.mark.parametrize(
    "ops",
    [
        [("replace", 0, 0)],
        [("delete", 1, 0), ("add", 2, 11)],
    ],
)
def test_mutate_changes_the_tree(ops: list[tuple[str, int, int]]) -> None:
    _, data = BASES[0]
    assert mutate(data, ops) != data
    assert mutate(data, []) == data
