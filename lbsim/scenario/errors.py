"""Scenario problems and how they are worded: the error types and pydantic-error phrasing.

Both :mod:`lbsim.scenario.loader` (YAML and schema errors) and
:mod:`lbsim.scenario.validation` (cross-field rules) report :class:`Problem` objects and
word pydantic's errors through :func:`describe`; keeping them here lets the two use each
other's output without importing each other.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from lbsim.scenario import model
from lbsim.scenario.model import Scenario

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

    tags = {kind for kind, ev in _EVENT_MODELS.items() if ev is cls}
    for f in cls.model_fields.values():
        if typing.get_origin(f.annotation) is Literal:
            tags.update(str(a) for a in typing.get_args(f.annotation))
    return tags


def _unwrap(tp: Any) -> Any:
    """Strip Optional/list/Annotated to the model inside: a class, or a list for a union."""

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
    "zone": model.ZoneEvent,
    "member": model.MemberEvent,
}
_EVENT_TAGS = set(_EVENT_MODELS)
_VALUE_TAGS = {
    "constant",
    "exponential",
    "lognormal",
    "gamma",
    "uniform",
    "empirical",
    "poisson",
    "profile",
    "mmpp",
    "trace",
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
