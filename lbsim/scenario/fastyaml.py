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
#: one token of a flow collection (a plain scalar in it holds no ':' at all; possessive
#: runs, so a long scalar that is no token fails at once instead of backtracking; what
#: is no token takes the rest of the line, so a bad line is not rescanned from each place)
_FLOW_TOKEN = re.compile(
    r"\s*(?:([\[\]{},])|(:)(?=[\s,\[\]{}])|"
    r"(?:\"([^\"\\]*)\"|'((?:[^']|'')*)'|((?:[^\s&*!|>'\"%@`#,\[\]{}?:-]|-(?=[^\s,\[\]{}#:]))(?:[^,\[\]{}#:\s]++|\s++(?=[^,\[\]{}#:\s]))*+))"
    r"(?=\s*(?:[,\[\]{}]|:(?=[\s,\[\]{}])|$))|([\s\S]+))"
)
_STR = "tag:yaml.org,2002:str"
#: what a flow collection expects next: before the outermost one opens, after it closed;
#: a key, the ':' after it, a value; an item; a ',' or the end of the collection
_START, _DONE, _KEY_, _COLON, _VALUE, _ITEM, _NEXT = range(7)


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
        each more indented than its block (no scalar is split across lines).

        One pass over the tokens: ``top`` is the innermost open collection, ``state``
        what it expects next (a key, ``:``, a value or an item, ``,`` or its end)."""
        findall = _FLOW_TOKEN.findall
        plain = self.scalar
        stack: list[tuple[Any, Any, int]] = []  # enclosing collections: (collection, key, state)
        top: Any = None
        key: Any = None
        state = _START
        while True:
            last_scalar = False
            for punct, colon, dq, sq, pl, bad in findall(text):
                if punct:
                    if punct == "{" or punct == "[":
                        new: Any = {} if punct == "{" else []
                        if state == _VALUE:
                            top[key] = new
                        elif state == _ITEM:
                            top.append(new)
                        elif state != _START:
                            raise _NotMine
                        if len(stack) + depth > MAX_DEPTH:
                            raise _NotMine
                        stack.append((top, key, state))
                        top = new
                        state = _KEY_ if punct == "{" else _ITEM
                    elif punct == ",":
                        if state != _NEXT:
                            raise _NotMine
                        state = _KEY_ if type(top) is dict else _ITEM
                    else:  # } or ]
                        if (punct == "}") is not (type(top) is dict):
                            raise _NotMine
                        if state != _NEXT and state != (_KEY_ if punct == "}" else _ITEM):
                            raise _NotMine
                        parent, key, state = stack.pop()
                        if state == _START:
                            state = _DONE
                            continue
                        top = parent
                        state = _NEXT
                    last_scalar = False
                    continue
                if colon:
                    if state != _COLON:
                        raise _NotMine
                    state = _VALUE
                    last_scalar = False
                    continue
                if bad or state == _DONE:
                    raise _NotMine
                value = plain(pl.rstrip()) if pl else dq if dq or not sq else sq.replace("''", "'")
                if state == _VALUE:
                    top[key] = value
                    state = _NEXT
                elif state == _ITEM:
                    top.append(value)
                    state = _NEXT
                elif state == _KEY_:
                    if value in top:
                        raise _NotMine  # a key given twice: the full path says so
                    key = value
                    state = _COLON
                else:
                    raise _NotMine
                last_scalar = True
            if state == _DONE:
                return top
            if last_scalar or self.i >= len(self.lines) or self.lines[self.i][0] <= owner:
                raise _NotMine  # a scalar the next line might continue; an unclosed collection
            text = self.lines[self.i][1]
            self.i += 1

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
