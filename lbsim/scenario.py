"""Loading scenario files: safe YAML, schema validation, and readable problems.

Every problem found in a scenario is reported as one :class:`Problem` naming the file,
the line, the field path (``loadbalancer.pools[0].members[1].weight``) and what was
expected, so that a user can fix a file without reading a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lbsim import model
from lbsim.model import Scenario
from lbsim.validation import check_scenario

PathT = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<top>'}: {self.message}"


class ScenarioError(Exception):
    """A scenario could not be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def format_path(path: Iterable[str | int]) -> str:
    """Render a field path as ``a.b[0].c``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also remembers the line of every mapping key and list item."""


def _compose_lines(text: str) -> dict[PathT, int]:
    """Map every field path in a YAML document to its 1-based line."""
    lines: dict[PathT, int] = {}
    root = yaml.compose(text, Loader=_LineLoader)

    def walk(node: yaml.Node, path: PathT) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else str(key)
                lines[(*path, k)] = key.start_mark.line + 1
                walk(value, (*path, k))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines


def _line_for(lines: dict[PathT, int], path: PathT) -> int | None:
    """The line of the longest prefix of ``path`` present in the document."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return lines.get(())


def _model_at(path: PathT) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at ``path`` (for 'did you mean')."""
    cls: Any = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        cls = _unwrap(field.annotation)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip Optional/list/Annotated to the model class inside, if there is exactly one."""
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    models = [m for m in (_unwrap(a) for a in args) if isinstance(m, type)]
    return models[0] if len(models) == 1 else None


def _describe(err: dict[str, Any], loc: PathT) -> str:
    """Turn one pydantic error into a sentence saying what was expected."""
    typ = err["type"]
    given = err.get("input")
    if typ == "extra_forbidden":
        owner = _model_at(loc[:-1])
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
            else:
                hint = "; allowed: " + ", ".join(owner.model_fields)
        return f"unknown field '{loc[-1]}'{hint}"
    if typ == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if typ == "literal_error":
        msg = msg.replace("Input should be", "expected")
    else:
        msg = msg.replace("Input should be", "expected a value that is")
    if given is not None and not isinstance(given, dict | list) and typ != "union_tag_invalid":
        msg += f", got {given!r}"
    return msg


_EVENT_TAGS = {"api", "amphora", "member"}
_VALUE_TAGS = {
    "constant", "exponential", "lognormal", "gamma", "uniform", "empirical",
    "poisson", "profile", "mmpp", "trace",
}


def _clean_loc(loc: tuple[Any, ...]) -> PathT:
    """Drop pydantic's union-tag components from an error location.

    Event tags follow a list index (``events[3]``); distribution and arrival tags follow
    the field holding the union (``service_time``, ``arrival``).
    """
    out: list[str | int] = []
    prev: Any = None
    for part in loc:
        is_tag = isinstance(part, str) and (
            "[" in part
            or (part in _EVENT_TAGS and isinstance(prev, int))
            or (part in _VALUE_TAGS and isinstance(prev, str))
        )
        if not is_tag:
            out.append(part)
        prev = part
    return tuple(out)


def parse_scenario(
    text: str, file: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Parse and validate scenario text; raise :class:`ScenarioError` with every problem."""
    try:
        data = yaml.safe_load(text)
        lines = _compose_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(file, 1, "", "expected a YAML mapping with version, name, duration, ...")]
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        seen: set[tuple[str, str]] = set()
        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]))
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
        raise ScenarioError([Problem(str(p), None, "", f"cannot read file: {exc.strerror}")]) from None
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
