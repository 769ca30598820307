"""Loading scenario files: safe YAML, schema validation, and readable problems.

Every problem found in a scenario is reported as one :class:`Problem` naming the file,
the line, the field path (``loadbalancer.pools[0].members[1].weight``) and what was
expected, so that a user can fix a file without reading a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lbsim.scenario import model
from lbsim.scenario.cost import check_cost
from lbsim.scenario.errors import (
    PathT,
    Problem,
    ScenarioError,
    _clean_loc,
    _describe,
    format_path,
)
from lbsim.scenario.fastyaml import _INT_TEXT, MAX_DEPTH, MAX_INT_DIGITS, fast_load
from lbsim.scenario.gcpause import gc_paused
from lbsim.scenario.model import Scenario
from lbsim.scenario.sanity import check_values
from lbsim.scenario.sanity import scenario_warnings as sanity_warnings
from lbsim.scenario.validation import check_scenario

#: the largest scenario file read (bytes): scenarios are hand-written; traces and sample
#: files, which may be large, are separate files
MAX_FILE_BYTES = 4 * 1024 * 1024
_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _limits(text: str) -> list[tuple[PathT, int, str]]:
    """Refuse what would break or exhaust the YAML loader before it builds anything.

    The scanner is iterative, so it walks any input; the composer and constructor
    recurse per nesting level and convert integers with ``int()``, which Python limits to
    4,300 digits. Scanning first turns both into problems with a line number.
    """
    depth = 0
    for tok in yaml.scan(text, Loader=_SAFE):
        if isinstance(tok, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                line = tok.start_mark.line + 1
                return [((), line, f"nesting deeper than {MAX_DEPTH} levels; a scenario needs far fewer")]
        elif isinstance(tok, _CLOSE):
            depth -= 1
        elif (
            isinstance(tok, yaml.ScalarToken)
            and tok.plain
            and len(tok.value) > MAX_INT_DIGITS
            and _INT_TEXT.fullmatch(tok.value)
        ):
            line = tok.start_mark.line + 1
            return [((), line, f"a number of {len(tok.value)} digits; at most {MAX_INT_DIGITS} are accepted")]
    return []


#: libyaml's loader where PyYAML has it (several times faster); the same documents, marks
#: and errors. Its composer recurses in C, which is safe only because _limits caps the
#: nesting first.
_SAFE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SAFE):
    """A safe loader that also remembers the line of every mapping key and list item."""


def _compose_lines(text: str) -> tuple[dict[PathT, int], list[tuple[PathT, int, str]]]:
    """Map every field path in a YAML document to its 1-based line; find structural problems.

    The problems are what a YAML loader accepts silently but a scenario must not: a key
    given twice in one mapping (the loader keeps the last one, so an earlier block would
    vanish without a word) and an alias that contains itself (a structure with no end).
    A node shared through an alias is walked once, so aliases cannot blow up the walk.
    """
    return _walk_lines(yaml.compose(text, Loader=_LineLoader))


def _load_with_lines(text: str) -> tuple[dict[PathT, int], list[tuple[PathT, int, str]], Any]:
    """:func:`_compose_lines` and the document's data from one parse (composing twice
    costs a second or more for a 10,000-member scenario); no data when there are
    structural problems."""
    loader = _LineLoader(text)
    try:
        root = loader.get_single_node()
        lines, problems = _walk_lines(root)
        data = loader.construct_document(root) if root is not None and not problems else None
    finally:
        loader.dispose()
    return lines, problems, data


def _walk_lines(root: yaml.Node | None) -> tuple[dict[PathT, int], list[tuple[PathT, int, str]]]:
    """The lines and structural problems of a composed document (see :func:`_compose_lines`)."""
    lines: dict[PathT, int] = {}
    problems: list[tuple[PathT, int, str]] = []
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


def _python_error(text: str, exc: yaml.YAMLError) -> yaml.YAMLError:
    """The pure-Python loader's error for ``text`` (its wording names the culprit, such
    as ``'\\t'``, where libyaml's does not); ``exc`` when it finds none."""
    if _SAFE is yaml.SafeLoader:
        return exc
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as py_exc:
        return py_exc
    except (RecursionError, ValueError):
        return exc
    return exc


def _line_for(lines: dict[PathT, int], path: PathT) -> int | None:
    """The line of the longest prefix of ``path`` present in the document."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return lines.get(())


def parse_scenario(text: str, file: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Parse and validate scenario text; raise :class:`ScenarioError` with every problem.

    The cyclic collector is paused meanwhile (:mod:`lbsim.scenario.gcpause`): a large
    scenario's objects all live on, and re-traversing them was half of parsing.
    """
    with gc_paused():
        return _parse_scenario(text, file, base_dir)


def _parse_scenario(text: str, file: str, base_dir: Path | None) -> Scenario:
    # the common shapes of scenario files are read by the fast reader; lines are then
    # found only if there is a problem to report (composing them is most of the cost)
    data = fast_load(text)
    if data is not None:
        return _validate(data, None, text, file, base_dir)
    lines, data = _read(text, file)
    return _validate(data, lines, text, file, base_dir)


def _read(text: str, file: str) -> tuple[dict[PathT, int], Any]:
    """The full path: limits, one composition for the data and every key's line, and
    the structural problems PyYAML accepts silently; :class:`ScenarioError` for any."""
    try:
        limits = _limits(text)
        if limits:
            raise ScenarioError([Problem(file, line, format_path(path), msg) for path, line, msg in limits])
        lines, structural, data = _load_with_lines(text)
        if structural:
            raise ScenarioError([Problem(file, line, format_path(path), msg) for path, line, msg in structural])
    except yaml.YAMLError as first:
        exc = _python_error(text, first)
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(file, line, "", f"not valid YAML: {problem}")]) from None
    except (RecursionError, ValueError) as exc:  # belt and braces behind _limits
        raise ScenarioError([Problem(file, None, "", f"YAML the loader cannot build: {exc}")]) from None
    return lines, data


def _validate(data: Any, lines: dict[PathT, int] | None, text: str, file: str, base_dir: Path | None) -> Scenario:
    """Validate the document's data; problems name their lines (``lines`` None: the
    data came from the fast reader, and the lines are composed now, for the report)."""
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file, 1, "", "expected a YAML mapping with version, name, duration, ...")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        if lines is None:
            lines = _read(text, file)[0]
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
    found = check_scenario(scenario, base_dir)
    if not found:
        found = check_values(scenario, base_dir)
    if not found:
        found = check_cost(scenario, base_dir)
    if found:
        if lines is None:
            lines = _read(text, file)[0]
        raise ScenarioError([Problem(file, _line_for(lines, path), format_path(path), msg) for path, msg in found])
    return scenario


def scenario_warnings(scenario: Scenario, text: str | None = None, file: str = "<scenario>") -> list[Problem]:
    """Warnings about a valid scenario (:func:`lbsim.scenario.sanity.scenario_warnings`),
    with line numbers when the scenario's ``text`` is given."""
    found = sanity_warnings(scenario)
    if not found:
        return []  # no lines needed (composing a large file for them takes seconds)
    lines: dict[PathT, int] = {}
    if text:
        try:
            lines = _compose_lines(text)[0]
        except yaml.YAMLError:
            lines = {}
    return [Problem(file, _line_for(lines, path), format_path(path), msg) for path, msg in found]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (relative trace/sample paths resolve beside it)."""
    p = Path(path)
    text = read_text_file(p, MAX_FILE_BYTES)
    return parse_scenario(text, str(p), p.resolve().parent)


def read_text_file(p: Path, limit: int) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes, or a :class:`ScenarioError`.

    Named pipes, devices (``/dev/zero``) and sockets are refused from ``stat`` alone,
    before anything opens them (opening a pipe blocks; a device never ends), and at most
    ``limit + 1`` bytes are read, so a file that grows while being read is refused too.
    """

    def refuse(message: str) -> ScenarioError:
        return ScenarioError([Problem(str(p), None, "", message)])

    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a folder"
                if stat.S_ISDIR(st.st_mode)
                else "a named pipe"
                if stat.S_ISFIFO(st.st_mode)
                else "a device or socket"
            )
            raise refuse(f"not a regular file ({kind}); give a scenario file")
        if st.st_size > limit:
            raise refuse(f"file is {st.st_size:,} bytes; at most {limit:,} are read")
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise refuse(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise refuse(f"file is larger than {limit:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("not a UTF-8 text file") from None
    if "\0" in text:
        raise refuse("a binary file (it holds NUL bytes), not a YAML scenario")
    return text


def _factory_defaults(schema: dict[str, Any]) -> None:
    """Show defaults that pydantic leaves out of the schema because they come from a
    factory (``service_time: {dist: exponential, mean: 0.01}``, ``clients``, ``workers``),
    so an editor shows what an omitted field means."""
    from pydantic import BaseModel
    from pydantic_core import to_jsonable_python

    for name, definition in schema.get("$defs", {}).items():
        cls = getattr(model, name, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            continue
        props = definition.get("properties", {})
        for field_name, info in cls.model_fields.items():
            key = info.alias or field_name
            if info.default_factory is None or key not in props or "default" in props[key]:
                continue
            value = info.default_factory()  # type: ignore[call-arg]
            if isinstance(value, BaseModel):
                value = value.model_dump(mode="json", exclude_none=True)
            props[key]["default"] = to_jsonable_python(value)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario format v1, for editor completion."""
    schema = Scenario.model_json_schema()
    _factory_defaults(schema)
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
    "read_text_file",
    "scenario_warnings",
]
