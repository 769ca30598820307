"""The fast scenario reader (lbsim.scenario.fastyaml) gives PyYAML's data or declines.

The contract: for any text, ``fast_load`` returns ``None`` or exactly what PyYAML's safe
loader builds (types, key order, values), and it never accepts a text the full path
refuses (a YAML error, a key given twice, limits). Scenarios read either way validate to
the same model, and problems found after the fast read still name their lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.bench import bench_yaml
from lbsim.scenario import loader
from lbsim.scenario.errors import ScenarioError
from lbsim.scenario.fastyaml import fast_load
from lbsim.scenario.loader import _limits, _load_with_lines, parse_scenario

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = sorted((ROOT / "scenarios").rglob("*.yaml"))
_SAFE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def same(a: Any, b: Any) -> bool:
    """Equal with equal types all the way down (1, 1.0 and True differ; key order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(map(repr, a)) == list(map(repr, b)) and all(
            type(k1) is type(k2) and same(a[k1], b[k2]) for k1, k2 in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def full_read(text: str) -> tuple[bool, Any]:
    """What the full path makes of ``text``: (accepted, data)."""
    try:
        if _limits(text):
            return False, None
        _, structural, data = _load_with_lines(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return False, None
    return not structural, data


def check_agrees(text: str) -> Any:
    """``fast_load`` declines, or the full path accepts ``text`` with the same data."""
    got = fast_load(text)
    if got is not None:
        ok, want = full_read(text)
        assert ok, text
        assert same(got, want), (text, got, want)
    return got


# ------------------------------------------------------------------- generated documents

#: scalar texts whose YAML 1.1 types are easy to get wrong
TRICKY = [
    "on", "off", "yes", "No", "TRUE", "false", "null", "Null", "~", "1", "-1", "+1", "01", "0o17", "017",
    "0x1F", "0b101", "1_000", "1:30", "-1:30:00", "1.5", ".5", "-.5", "1e3", "1.0e+3", "6.8523015e+5",
    ".inf", "-.Inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10",
    "10.0.0.1", "198.18.0.0/16", "fd00::1", "GET /health", "a b", "a  b", "x:y", "http://h/p", "-x",
    "?x", "=", "<<", "a'b", 'a"b', "é", "m0", "web-1", "exponential", "0", "-0", "0.0", "1__0", "1,000",
    "[a]", "{a}", "a #b", "a#b", "- a", "a: b", "&a", "*a", "!x", "|", ">", "%x", "@x", "`x", "'q'", '"q"',
    "", " ", "a ", "#", ":", "?", "-", "1" * 120,
]  # fmt: skip
KEYS = ["name", "address", "on", "1", "null", "x:y", "a b", "<<", "-k", "2001-12-14", "k", "k", "web-1"]


def scalar_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(TRICKY),
        st.from_regex(r"[a-z0-9._/-]{1,8}", fullmatch=True),
        st.sampled_from(TRICKY).map(lambda s: "'" + s.replace("'", "''") + "'"),
        st.sampled_from(TRICKY).map(lambda s: '"' + s + '"'),
    )


def flow_text(depth: int) -> st.SearchStrategy[str]:
    leaf = scalar_text()
    if depth <= 0:
        return leaf
    inner = st.one_of(leaf, flow_text(depth - 1))
    mapping = st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=4).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
    )
    seq = st.lists(inner, max_size=4).map(lambda vs: "[" + ", ".join(vs) + "]")
    return st.one_of(mapping, seq)


@st.composite
def block_text(draw: st.DrawFn, indent: int = 0, depth: int = 3) -> str:
    """A block mapping or sequence at ``indent``, values inline, flow or nested."""
    pad = " " * indent
    lines: list[str] = []
    is_seq = draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        head = f"{pad}- " if is_seq else f"{pad}{draw(st.sampled_from(KEYS))}:"
        kind = draw(st.sampled_from(["scalar", "flow", "nested", "empty", "comment"] if depth > 0 else ["scalar"]))
        sep = "" if is_seq else " "
        if kind == "scalar":
            lines.append(f"{head}{sep}{draw(scalar_text())}")
        elif kind == "flow":
            flow = draw(flow_text(2))
            if draw(st.booleans()):  # over several lines: break at some of its spaces
                cont = "\n" + pad + " " * draw(st.integers(0, 4))
                parts = flow.split(" ")
                breaks = draw(st.lists(st.booleans(), min_size=len(parts), max_size=len(parts)))
                flow = parts[0] + "".join((cont if b else " ") + p for p, b in zip(parts[1:], breaks, strict=False))
            lines.append(f"{head}{sep}{flow}")
        elif kind == "empty":
            lines.append(head.rstrip())
        elif kind == "comment":
            lines.append(f"{head}{sep}{draw(scalar_text())}  # note")
            lines.append(f"{pad}# a comment line")
        else:
            step = draw(st.sampled_from([0, 2, 4])) if not is_seq else draw(st.sampled_from([2, 4]))
            lines.append(head.rstrip())
            lines.append(draw(block_text(indent + step, depth - 1)))
    return "\n".join(lines)


@given(text=block_text())
@settings(max_examples=400, deadline=None)
def test_generated_documents_read_as_pyyaml_reads_them(text: str) -> None:
    check_agrees(text)
    check_agrees(text + "\n")


@given(
    text=block_text(),
    where=st.integers(0, 10_000),
    insert=st.sampled_from([*"\t\r-:#'\"[]{},&*!|>%@`? \n", "\n  ", "\n- ", ": ", " #", "---\n", "\\", "é"]),
)
@settings(max_examples=600, deadline=None)
def test_mutated_documents_never_read_differently(text: str, where: int, insert: str) -> None:
    """Any character anywhere: the fast reader declines or agrees with the full path."""
    k = where % (len(text) + 1)
    check_agrees(text[:k] + insert + text[k:])


def test_the_common_shapes_take_the_fast_path() -> None:
    """Every bundled scenario and the benchmark's 1,000 members are read without
    PyYAML's composer, to the same data."""
    assert BUNDLED
    for path in BUNDLED:
        text = path.read_text(encoding="utf-8")
        assert check_agrees(text) is not None, path
    assert check_agrees(bench_yaml("ROUND_ROBIN", 1000, 1000)) is not None


@pytest.mark.parametrize(
    "text",
    [
        "a: |\n  text\n",  # block scalars
        "a: >-\n  folded\n  text\n",
        "a: b\n  c\n",  # a multi-line plain scalar
        "a: 'b\n  c'\n",  # a multi-line quoted scalar
        'a: "\\t\\u00e9"\n',  # escapes
        "--- \na: 1\n...\n",  # document markers
        "%YAML 1.1\n---\na: 1\n",  # a directive
        "a:\tb\n",  # a tab
        "a: {b: [1, {c: d}],\n    e: f}\n",  # a flow collection over lines
        "? a\n: 1\n",  # an explicit key
        "1\n",  # a document that is no mapping (the caller says what it should be)
        "a: 2001-12-14\nb: 1:30\nc: 0o17\nd: .inf\n",  # YAML 1.1 types
        "a: {b: " + "x" * 100_000 + ":y}\n",  # long lines (libyaml reads them in linear time)
        "a: {b: " + "x " * 100_000 + ":y}\n",
    ],
    ids=lambda t: repr(t[:24]),
)
def test_what_libyaml_reads_is_read_as_pyyaml_reads_it(text: str) -> None:
    """The syntax is libyaml's: every form of it that builds plain data is taken, with
    PyYAML's data."""
    assert check_agrees(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # a key given twice (the full path reports it)
        "a: {b: 1, b: 2}\n",
        "a: &x 1\nb: *x\n",  # anchors and aliases
        "a: !!str 1\n",  # tags
        "a: !local x\n",
        "a: " + "1" * (loader.MAX_INT_DIGITS + 1) + "\n",  # beyond the loader's limits
        "a: " + "[" * (loader.MAX_DEPTH + 1) + "]" * (loader.MAX_DEPTH + 1) + "\n",
        "<<: {a: 1}\n",  # merge keys
        "a: 1\n=: 2\n",  # the value key
        "{[1]: 2}\n",  # a key that is no scalar
        "a: [1, 2\n",  # an unclosed flow collection
        "a: 1\n---\nb: 2\n",  # two documents
        "",
        "# only a comment\n",
    ],
    ids=lambda t: repr(t[:24]),
)
def test_what_needs_the_full_loader_is_declined(text: str) -> None:
    assert fast_load(text) is None


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(ROOT)))
def test_scenarios_validate_to_the_same_model_either_way(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    fast = parse_scenario(text, str(path), path.parent)
    monkeypatch.setattr(loader, "fast_load", lambda _text: None)
    full = parse_scenario(text, str(path), path.parent)
    assert fast.model_dump(mode="json") == full.model_dump(mode="json")
    assert fast == full


def test_problems_after_a_fast_read_still_name_file_line_and_field() -> None:
    """A bad member in a large scenario: the fast reader reads it, validation fails, and
    the problem still says which file, line and field, and what was expected."""
    text = bench_yaml("ROUND_ROBIN", 200, 1000)
    lines = text.split("\n")
    k = next(i for i, s in enumerate(lines) if "name: m123," in s)
    lines[k] = lines[k].replace("concurrency: 1", "concurrency: -3")
    bad = "\n".join(lines)
    assert fast_load(bad) is not None  # the shape is the fast reader's
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad, "big.yaml")
    (p,) = err.value.problems
    assert (p.file, p.line) == ("big.yaml", k + 1)
    assert p.path == "loadbalancer.pools[0].members[123].concurrency"
    assert "greater than" in p.message or ">=" in p.message or "at least" in p.message, p.message
    # a whole-scenario rule (validation.py) too: a member name given twice
    lines = text.split("\n")
    k = next(i for i, s in enumerate(lines) if "name: m150," in s)
    lines[k] = lines[k].replace("name: m150,", "name: m7,")
    with pytest.raises(ScenarioError) as err:
        parse_scenario("\n".join(lines), "big.yaml")
    assert any(p.line == k + 1 and "members[150]" in p.path for p in err.value.problems), err.value.problems
