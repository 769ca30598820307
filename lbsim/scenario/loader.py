"""Loading scenario files: safe YAML, schema validation, and readable problems.

Every problem found in a scenario is reported as one :class:`Problem` naming the file,
the line, the field path (``loadbalancer.pools[0].members[1].weight``) and what was
expected, so that a user can fix a file without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lbsim.scenario import model
from lbsim.scenario.errors import (
    PathT,
    Problem,
    ScenarioError,
    _clean_loc,
    _describe,
    format_path,
)
from lbsim.scenario.model import Scenario
from lbsim.scenario.validation import check_scenario


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also remembers the line of every mapping key and list item."""


def _compose_lines(text: str) -> tuple[dict[PathT, int], list[tuple[PathT, int, str]]]:
    """Map every field path in a YAML document to its 1-based line; find structural problems.

    The problems are what a YAML loader accepts silently but a scenario must not: a key
    given twice in one mapping (the loader keeps the last one, so an earlier block would
    vanish without a word) and an alias that contains itself (a structure with no end).
    A node shared through an alias is walked once, so aliases cannot blow up the walk.
    """
    lines: dict[PathT, int] = {}
    problems: list[tuple[PathT, int, str]] = []
    root = yaml.compose(text, Loader=_LineLoader)
    walked: set[int] = set()
    open_nodes: set[int] = set()

    def walk(node: yaml.Node, path: PathT) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in open_nodes:
            problems.append((path, node.start_mark.line + 1, "an alias refers to a node that contains it"))
            return
        if id(node) in walked:
            return
        walked.add(id(node))
        open_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
                line = key.start_mark.line + 1
                if k in first and k != "<<":
                    problems.append(((*path, k), line, f"key '{k}' is given twice (first on line {first[k]})"))
                first.setdefault(k, line)
                lines[(*path, k)] = line
                walk(value, (*path, k))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))
        open_nodes.discard(id(node))

    if root is not None:
        walk(root, ())
    return lines, problems


def _line_for(lines: dict[PathT, int], path: PathT) -> int | None:
    """The line of the longest prefix of ``path`` present in the document."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return lines.get(())


def parse_scenario(text: str, file: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Parse and validate scenario text; raise :class:`ScenarioError` with every problem."""
    try:
        lines, structural = _compose_lines(text)
        if structural:
            raise ScenarioError([Problem(file, line, format_path(path), msg) for path, line, msg in structural])
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file, 1, "", "expected a YAML mapping with version, name, duration, ...")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[str, str]] = set()
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]), data)
            msg = _describe(err, loc)
            key = (format_path(loc), msg)
            if key in seen:
                continue
            seen.add(key)
            problems.append(Problem(file, _line_for(lines, loc), format_path(loc), msg))
        raise ScenarioError(problems) from None
    ref_problems = [
        Problem(file, _line_for(lines, path), format_path(path), msg)
        for path, msg in check_scenario(scenario, base_dir)
    ]
    if ref_problems:
        raise ScenarioError(ref_problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (relative trace/sample paths resolve beside it)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        problem = Problem(str(p), None, "", f"cannot read file: {exc.strerror}")
        raise ScenarioError([problem]) from None
    except UnicodeDecodeError:
        raise ScenarioError([Problem(str(p), None, "", "not a UTF-8 text file")]) from None
    return parse_scenario(text, str(p), p.resolve().parent)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario format v1, for editor completion."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lbsim scenario, format version 1"
    return schema


__all__ = [
    "Problem",
    "ScenarioError",
    "format_path",
    "json_schema",
    "load_scenario",
    "model",
    "parse_scenario",
]
