"""Loading scenario files: safe YAML, schema validation, and readable problems.

Every problem found in a scenario is reported as one :class:`Problem` naming the file,
the line, the field path (``loadbalancer.pools[0].members[1].weight``) and what was
expected, so that a user can fix a file without reading a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
            problems.append(
                (path, node.start_mark.line + 1, "an alias refers to a node that contains it")
            )
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
                    problems.append(
                        ((*path, k), line, f"key '{k}' is given twice (first on line {first[k]})")
                    )
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


def _model_at(path: tuple[Any, ...], root: type[BaseModel] = Scenario) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at ``path`` (for 'did you mean').

    ``path`` is pydantic's raw error location, union tags included, so that a member of a
    tagged union (an event, a distribution, an arrival process) is found by its tag.
    """
    cls: Any = root
    for part in path:
        if isinstance(part, int):
            continue
        if isinstance(cls, list):  # a union: the tag picks the member
            cls = next((c for c in cls if str(part) in _tags(c)), None)
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        cls = _unwrap(field.annotation)
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _tags(cls: type[BaseModel]) -> set[str]:
    """The union tags that select ``cls``: its Literal values, or its event kind."""
    import typing

    tags = {kind for kind, ev in _EVENT_MODELS.items() if ev is cls}
    for f in cls.model_fields.values():
        if typing.get_origin(f.annotation) is Literal:
            tags.update(str(a) for a in typing.get_args(f.annotation))
    return tags


def _unwrap(tp: Any) -> Any:
    """Strip Optional/list/Annotated to the model inside: a class, or a list for a union."""
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    found: list[type[BaseModel]] = []
    for inner in (_unwrap(a) for a in args):
        if isinstance(inner, list):
            found.extend(inner)
        elif isinstance(inner, type):
            found.append(inner)
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def _describe(err: Mapping[str, Any], loc: PathT, root: type[BaseModel] = Scenario) -> str:
    """Turn one pydantic error into a sentence saying what was expected.

    ``root`` is the model that was validated (the scenario, or an object body of an
    ``api`` event), so that a misspelt key is matched against the right field names.
    """
    typ = err["type"]
    given = err.get("input")
    if typ == "extra_forbidden":
        key = str(err["loc"][-1])
        owner = _model_at(tuple(err["loc"])[:-1], root)
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(key, list(owner.model_fields), n=1)
            allowed = "; allowed: " + ", ".join(owner.model_fields)
            hint = f"; did you mean '{close[0]}'?" if close else allowed
        return f"unknown field '{key}'{hint}"
    if typ == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if typ == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == _NAME_PATTERN:
        msg = "expected a name of letters, digits, '_', '.', '@' and '-' only"
    elif typ == "string_pattern_mismatch":
        msg = f"expected text matching {err.get('ctx', {}).get('pattern')}"
    if typ == "literal_error":
        msg = msg.replace("Input should be", "expected")
    else:
        msg = msg.replace("Input should be", "expected a value that is")
    if given is not None and not isinstance(given, dict | list) and typ != "union_tag_invalid":
        msg += f": {given!r}" if ", got " in msg else f", got {given!r}"
    return msg


_NAME_PATTERN = r"^[A-Za-z0-9_.@\-]+$"  # model.Name's pattern
_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "api": model.ApiEvent,
    "amphora": model.AmphoraEvent,
    "network": model.NetworkEvent,
    "member": model.MemberEvent,
}
_EVENT_TAGS = set(_EVENT_MODELS)
_VALUE_TAGS = {
    "constant", "exponential", "lognormal", "gamma", "uniform", "empirical",
    "poisson", "profile", "mmpp", "trace",
}


_NOT_IN_DATA = object()


def _clean_loc(loc: tuple[Any, ...], data: Any = _NOT_IN_DATA) -> PathT:
    """Drop pydantic's union-tag components from an error location.

    Event tags follow an index of the ``events`` list (``events[3]``); distribution and
    arrival tags follow the field holding the union (``service_time``, ``arrival``). With
    the validated ``data`` at hand, the location is walked through it, so a component is
    a tag only where the data agree (the event's kind, the ``dist``/``process`` value), and
    a key the user wrote is never taken for one, however it is spelt (``n[ame``,
    ``constant``). Without data, the same rules are applied by position only.
    """
    out: list[str | int] = []
    node: Any = data
    prev: Any = None
    prev2: Any = None
    for part in loc:
        if _is_tag(part, node, prev, prev2):
            prev2, prev = prev, part
            continue
        out.append(part)
        node = _child(node, part)
        prev2, prev = prev, part
    return tuple(out)


def _child(node: Any, part: Any) -> Any:
    """``node[part]`` when the data have it, else the not-in-data marker."""
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _NOT_IN_DATA


def _is_tag(part: Any, node: Any, prev: Any, prev2: Any) -> bool:
    """Whether ``part`` of an error location is a union tag rather than a field or key."""
    if not isinstance(part, str):
        return False
    event_position = part in _EVENT_TAGS and isinstance(prev, int) and prev2 == "events"
    if isinstance(node, dict):
        if event_position and model._event_kind(node) == part:
            return True
        if part in _VALUE_TAGS and part in (node.get("dist"), node.get("process")):
            return True
        return "[" in part and part not in node
    if node is _NOT_IN_DATA:
        return "[" in part or event_position or (part in _VALUE_TAGS and isinstance(prev, str))
    return False


def parse_scenario(
    text: str, file: str = "<scenario>", base_dir: Path | None = None
) -> Scenario:
    """Parse and validate scenario text; raise :class:`ScenarioError` with every problem."""
    try:
        lines, structural = _compose_lines(text)
        if structural:
            raise ScenarioError(
                [Problem(file, line, format_path(path), msg) for path, line, msg in structural]
            )
        data = yaml.safe_load(text)
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
