"""Scenario YAML read fast: libyaml's parse events built into plain data in one loop.

PyYAML's safe loader makes a node with two marks for every scalar, resolves each
scalar's type through its regular expressions and then constructs the document object
by object, recursively: at 10,000 members that was most of parsing a scenario (about
0.9 s of CPU). Scenario files need none of what the node graph is for (anchors,
aliases, tags, merge keys), so :func:`fast_load` asks libyaml (PyYAML's C parser) for
the parse events and builds the data itself, typing each scalar with PyYAML's own
resolver and constructors once per distinct text (YAML 1.1 as PyYAML reads it: ``on``
is true, ``1_000`` is 1000, ``1:30`` is 90). Every bit of YAML syntax is libyaml's.

It declines (returns ``None``) whatever it would build differently from the full path,
or not at all: anchors and aliases, explicit tags, merge keys, a key given twice, a key
that is not a scalar, several documents, an empty document, nesting or integers past
the loader's limits, any error from the parser. The caller then takes the full path,
which reads the file again and reports problems with their lines. Without libyaml
(PyYAML built without it) everything takes the full path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

#: the deepest nesting of mappings and lists accepted (a scenario needs about 8)
MAX_DEPTH = 64
#: the longest integer accepted, in digits (Python refuses to convert more than 4,300)
MAX_INT_DIGITS = 100
_INT_TEXT = re.compile(r"[-+]?([0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)")

_CLOADER: Any = getattr(yaml, "CSafeLoader", None)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
#: the scalar types a safe load builds without a tag, by the resolver's tag; anything
#: else the resolver names (merge keys ``<<``, the value key ``=``) is declined
_CONSTRUCT = {
    "tag:yaml.org,2002:str": None,
    "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null,
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _CONSTRUCTOR.construct_yaml_timestamp,
}
_E = yaml.events
_SCALAR, _MAP, _SEQ = _E.ScalarEvent, _E.MappingStartEvent, _E.SequenceStartEvent
_END = (_E.MappingEndEvent, _E.SequenceEndEvent)
_HASHABLE = (str, int, float, bool, type(None))
_NO_KEY = object()  # a mapping waiting for its next key (no YAML value is this object)


class _NotMine(Exception):
    """The text needs the full YAML loader."""


def _typed(value: str, implicit: tuple[bool, bool], memo: dict[tuple[str, tuple[bool, bool]], Any]) -> Any:
    """A scalar's value, typed as PyYAML's safe loader types it (memoised per text)."""
    key = (value, implicit)
    try:
        return memo[key]
    except KeyError:
        pass
    if implicit[0] and len(value) > MAX_INT_DIGITS and _INT_TEXT.fullmatch(value):
        raise _NotMine
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)
    if tag not in _CONSTRUCT:
        raise _NotMine
    build = _CONSTRUCT[tag]
    out = value if build is None else build(yaml.ScalarNode(tag, value))
    memo[key] = out
    return out


def _build(events: Any) -> Any:
    """The data of one document's events (``_NotMine`` where it is not plain data)."""
    memo: dict[tuple[str, tuple[bool, bool]], Any] = {}
    stack: list[Any] = []  # open collections
    keys: list[Any] = []  # per open collection: a mapping's pending key, or _NO_KEY
    root: Any = None
    documents = 0
    for ev in events:
        kind = type(ev)
        if kind is _SCALAR:
            if ev.anchor is not None or ev.tag not in (None, "!"):
                raise _NotMine
            value = _typed(ev.value, ev.implicit, memo)
        elif kind is _MAP or kind is _SEQ:
            if ev.anchor is not None or ev.tag not in (None, "!") or len(stack) >= MAX_DEPTH:
                raise _NotMine
            stack.append({} if kind is _MAP else [])
            keys.append(_NO_KEY)
            continue
        elif kind in _END:
            value = stack.pop()
            keys.pop()
        elif kind is _E.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _NotMine
            continue
        elif kind is _E.AliasEvent:
            raise _NotMine
        else:  # stream start and end, document end
            continue
        if not stack:
            root = value
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
        elif keys[-1] is _NO_KEY:
            if type(value) not in _HASHABLE or value in top:
                raise _NotMine  # a composite key, or a key given twice: the full path says
            keys[-1] = value
        else:
            top[keys[-1]] = value
            keys[-1] = _NO_KEY
    if documents != 1 or root is None:
        raise _NotMine  # no document, or an empty one: the full path says what it is
    return root


def fast_load(text: str) -> Any:
    """The data of ``text`` as PyYAML's safe loader builds it, or ``None`` when this
    reader declines it (then nothing about the text is decided: the full loader reads
    it, and reports any problem with its line)."""
    if _CLOADER is None:
        return None
    try:
        return _build(yaml.parse(text, Loader=_CLOADER))
    except (_NotMine, yaml.YAMLError, ValueError, OverflowError):
        return None


__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "fast_load"]
