"""A fast reader for the YAML that scenarios are made of, or nothing.

PyYAML builds a node with two marks for every scalar, resolves each scalar's type
through its regular expressions and constructs the document object by object: at
10,000 members, reading the file was most of parsing it (about 0.9 s). Scenario files
use a small part of YAML: block mappings and sequences by indentation, one-line flow
mappings and sequences (``- {name: m1, address: 10.0.0.1}``), plain and simple quoted
scalars, comments. :func:`fast_load` reads exactly that part line by line and returns
the same Python data PyYAML's safe loader returns; for anything else (anchors, tags,
block scalars, multi-line scalars or flow collections, escapes, a key given twice,
nesting or integers beyond the loader's limits, any doubt) it returns ``None`` and the
caller takes the full path, which also reports problems with their lines. Scalars are
typed by PyYAML's own resolver and constructors (YAML 1.1: ``on`` is true, ``1_000`` is
1000, ``1:30`` is 90), once per distinct text.
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
#: characters PyYAML's reader refuses, and a byte-order mark (both: the full path decides)
#: (tabs, carriage returns, YAML 1.1's other line breaks \x85 \u2028 \u2029 and the BOM too)
_UNREADABLE = re.compile("[^\x0a\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffc\U00010000-\U0010ffff]")
#: a line that needs more than this reader knows: document markers and directives
_SPECIAL_LINE = re.compile(r"(?:---|\.\.\.)(?:\s|$)|%")
#: a plain scalar in block context: no indicator first, no flow indicators, no ": ", no " #"
_BLOCK_PLAIN = re.compile(r"(?![-?:](?:\s|$))[^\s&*!|>'\"%@`#,\[\]{}](?:[^,\[\]{}#:]|:(?=\S))*")
#: a plain key in a block mapping, then the value indicator
_KEY = re.compile(
    r"([^\s&*!|>'\"%@`#,\[\]{}?:-](?:[^,\[\]{}#:]|:(?=\S))*|-(?:[^\s,\[\]{}#:]|:(?=\S))(?:[^,\[\]{}#:]|:(?=\S))*)"
    r"(?<=\S):(?:\s+|$)"
)
#: one token of a one-line flow collection (a plain scalar in it holds no ':' at all)
_FLOW_TOKEN = re.compile(
    r"\s*(?:([\[\]{},])|(:)(?=[\s,\[\]{}])|"
    r"(?:\"([^\"\\]*)\"|'((?:[^']|'')*)'|((?:[^\s&*!|>'\"%@`#,\[\]{}?:-]|-(?=[^\s,\[\]{}#:]))[^,\[\]{}#:]*?))"
    r"(?=\s*(?:[,\[\]{}]|:(?=[\s,\[\]{}])|$)))"
)
_STR = "tag:yaml.org,2002:str"


class _NotMine(Exception):
    """The text needs the full YAML loader."""


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCT = {
    "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null,
    "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
    "tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
    "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _CONSTRUCTOR.construct_yaml_timestamp,
}


class _Reader:
    """One document's lines, read top-down; scalars typed once per distinct text."""

    def __init__(self, lines: list[tuple[int, str]]) -> None:
        self.lines = lines  # (indent, content) of each line that carries content
        self.i = 0
        self.plain: dict[str, Any] = {}

    # ------------------------------------------------------------------ scalars
    def scalar(self, text: str) -> Any:
        """A plain scalar's value, typed as PyYAML types it."""
        try:
            return self.plain[text]
        except KeyError:
            pass
        if len(text) > MAX_INT_DIGITS and _INT_TEXT.fullmatch(text):
            raise _NotMine
        tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
        if tag == _STR:
            value: Any = text
        else:
            construct = _CONSTRUCT.get(tag)
            if construct is None:
                raise _NotMine
            try:
                value = construct(yaml.ScalarNode(tag, text))
            except Exception as exc:  # whatever PyYAML would make of it, the full path says
                raise _NotMine from exc
        self.plain[text] = value
        return value

    def inline(self, text: str, depth: int, owner: int) -> Any:
        """A value written on its line after ``key:`` or ``-`` of a block at ``owner``."""
        c = text[0]
        if c == "[" or c == "{":
            return self.flow(text, depth, owner)
        if c == "'":
            if len(text) < 2 or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
                raise _NotMine
            return text[1:-1].replace("''", "'")
        if c == '"':
            if len(text) < 2 or text[-1] != '"' or '"' in text[1:-1] or "\\" in text:
                raise _NotMine
            return text[1:-1]
        if not _BLOCK_PLAIN.fullmatch(text):
            raise _NotMine
        return self.scalar(text)

    # ------------------------------------------------------------------ flow
    def flow(self, text: str, depth: int, owner: int) -> Any:
        """A flow mapping or sequence from this line; it may go on over the next lines,
        each more indented than its block (no scalar is split across lines)."""
        tokens: list[tuple[str, Any]] = []
        match = _FLOW_TOKEN.match
        plain = self.scalar
        level = 0
        while True:
            pos = 0
            end = len(text)
            while pos < end:
                t = match(text, pos)
                if t is None:
                    raise _NotMine
                pos = t.end()
                punct, colon, dq, sq, pl = t.groups()
                if punct is not None:
                    tokens.append((punct, None))
                    if punct == "{" or punct == "[":
                        level += 1
                    elif punct != ",":
                        level -= 1
                elif colon is not None:
                    tokens.append((":", None))
                elif dq is not None:
                    tokens.append(("s", dq))
                elif sq is not None:
                    tokens.append(("s", sq.replace("''", "'")))
                elif pl is not None:
                    tokens.append(("s", plain(pl.rstrip())))
                else:
                    raise _NotMine
            if level <= 0:
                break
            if tokens[-1][0] == "s" or self.i >= len(self.lines) or self.lines[self.i][0] <= owner:
                raise _NotMine  # a scalar the next line might continue; an unclosed collection
            text = self.lines[self.i][1]
            self.i += 1
        value, k = _flow_value(tokens, 0, depth)
        if k != len(tokens):
            raise _NotMine
        return value

    # ------------------------------------------------------------------ block
    def block(self, indent: int, depth: int) -> Any:
        """The block collection whose first line is the current one, at ``indent``."""
        if depth > MAX_DEPTH:
            raise _NotMine
        content = self.lines[self.i][1]
        if content == "-" or content.startswith("- "):
            return self.sequence(indent, depth)
        return self.mapping(indent, depth, None)

    def nested(self, parent: int, depth: int, dash_ok: bool) -> Any:
        """The value of an entry with nothing after its indicator: a more indented
        block, a same-indent sequence under a key (``dash_ok``), or null."""
        if self.i < len(self.lines):
            ind, content = self.lines[self.i]
            if ind > parent or (dash_ok and ind == parent and (content == "-" or content.startswith("- "))):
                return self.block(ind, depth + 1)
        return None

    def sequence(self, indent: int, depth: int) -> list[Any]:
        out: list[Any] = []
        lines = self.lines
        while self.i < len(lines):
            ind, content = lines[self.i]
            if ind != indent or not (content == "-" or content.startswith("- ")):
                break
            rest = content[2:].lstrip(" ")
            self.i += 1
            if not rest:
                out.append(self.nested(indent, depth, False))
                continue
            col = indent + len(content) - len(rest)
            if rest[0] in "-?" and (len(rest) == 1 or rest[1] == " "):
                raise _NotMine  # "- - x", "- ? x"
            key = _KEY.match(rest)
            if key is not None and rest[0] not in "[{'\"":
                out.append(self.mapping(col, depth + 1, (key, rest)))
                continue
            out.append(self.inline(rest, depth + 1, indent))
            self._no_continuation(indent)
        return out

    def mapping(self, indent: int, depth: int, first: tuple[re.Match[str], str] | None) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        lines = self.lines
        if depth > MAX_DEPTH:
            raise _NotMine
        while True:
            if first is not None:
                key, content = first
                first = None
            else:
                if self.i >= len(lines):
                    break
                ind, content = lines[self.i]
                if ind != indent:
                    if ind > indent:
                        raise _NotMine  # a stray, more indented line
                    break
                if content == "-" or content.startswith("- "):
                    break  # the sequence under the previous key ended here: the caller decides
                found = _KEY.match(content)
                if found is None:
                    raise _NotMine
                key = found
                self.i += 1
            name = key.group(1)
            k = self.scalar(name) if name != "<<" else None
            if name == "<<" or k in out:
                raise _NotMine  # a merge key; a key given twice (the full path says so)
            try:
                hash(k)
            except TypeError as exc:
                raise _NotMine from exc
            rest = content[key.end() :]
            if not rest:
                out[k] = self.nested(indent, depth, True)
            else:
                out[k] = self.inline(rest, depth + 1, indent)
                self._no_continuation(indent)
        return out

    def _no_continuation(self, indent: int) -> None:
        """A value on its line ends there: a more indented line would continue it."""
        if self.i < len(self.lines) and self.lines[self.i][0] > indent:
            raise _NotMine


def _flow_value(tokens: list[tuple[str, Any]], k: int, depth: int) -> tuple[Any, int]:
    """One value of a flow collection's tokens from ``k``: (value, next token)."""
    if k >= len(tokens):
        raise _NotMine
    kind, value = tokens[k]
    if kind == "s":
        return value, k + 1
    if depth > MAX_DEPTH:
        raise _NotMine
    if kind == "{":
        out: dict[Any, Any] = {}
        k += 1
        while True:
            if tokens[k][0] == "}":
                return out, k + 1
            kk, key = tokens[k]
            if kk != "s" or k + 2 >= len(tokens) or tokens[k + 1][0] != ":":
                raise _NotMine
            try:
                if key in out:
                    raise _NotMine
            except TypeError as exc:
                raise _NotMine from exc
            out[key], k = _flow_value(tokens, k + 2, depth + 1)
            if k >= len(tokens):
                raise _NotMine
            if tokens[k][0] == ",":
                k += 1
                if k >= len(tokens):
                    raise _NotMine
            elif tokens[k][0] != "}":
                raise _NotMine
    if kind == "[":
        items: list[Any] = []
        k += 1
        while True:
            if k >= len(tokens):
                raise _NotMine
            if tokens[k][0] == "]":
                return items, k + 1
            item, k = _flow_value(tokens, k, depth + 1)
            items.append(item)
            if k >= len(tokens):
                raise _NotMine
            if tokens[k][0] == ",":
                k += 1
            elif tokens[k][0] != "]":
                raise _NotMine
    raise _NotMine


def fast_load(text: str) -> Any:
    """The data of ``text`` as PyYAML's safe loader builds it, or ``None`` when the text
    is not in the part of YAML this reader takes (then nothing about it is decided: the
    full loader reads it, and reports any problem)."""
    if _UNREADABLE.search(text) is not None:
        return None
    lines: list[tuple[int, str]] = []
    for raw in text.split("\n"):
        content = raw.lstrip(" ")
        if not content or content[0] == "#":
            continue
        if "#" in content:
            cut = content.find(" #")
            if cut < 0 or "'" in content or '"' in content or "#" in content[:cut]:
                return None  # a '#' inside a scalar, or a comment after quotes: the full path
            content = content[:cut]
        content = content.rstrip(" ")
        if not content:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if indent == 0 and _SPECIAL_LINE.match(content):
            return None
        lines.append((indent, content))
    if not lines:
        return None  # an empty document: the full path says what it is
    reader = _Reader(lines)
    try:
        data = reader.block(lines[0][0], 1)
    except (_NotMine, RecursionError, IndexError):
        return None
    if reader.i != len(lines):
        return None
    return data


__all__ = ["fast_load"]
