"""JUnit XML reports for ``lbsim check``, so that CI systems show scenarios as tests.

The report has the shape CI tools (Jenkins, GitLab, GitHub test reporters) read: a
``<testsuites>`` root holding one ``<testsuite>`` with one ``<testcase>`` per scenario.
A scenario whose expectations failed gets a ``<failure>`` whose text lists each failing
expectation as expected-versus-found; a scenario that could not be run (invalid file,
crash) gets an ``<error>``. The file is written atomically (a temporary file in the same
folder, then renamed), so a CI step never reads half a report.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: characters XML 1.0 cannot carry at all (control characters other than tab, LF, CR)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """Text safe for an XML 1.0 document (unrepresentable characters become '?')."""
    return _NOT_XML.sub("?", text)


@dataclass(frozen=True)
class Case:
    """One scenario as a test case.

    ``failure`` / ``error`` hold a one-line message and ``detail`` the longer text (the
    failing expectations, or the problems of an invalid file). A case with neither
    passed.
    """

    name: str
    classname: str
    time: float
    failure: str | None = None
    error: str | None = None
    detail: str = ""


def to_xml(cases: Sequence[Case], suite: str = "lbsim") -> bytes:
    """The JUnit XML document for ``cases`` (UTF-8, with an XML declaration)."""
    failures = sum(1 for c in cases if c.failure is not None and c.error is None)
    errors = sum(1 for c in cases if c.error is not None)
    total_time = sum(c.time for c in cases)
    attrs = {
        "name": suite,
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": "0",
        "time": f"{total_time:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", attrs)
    for c in cases:
        tc = ET.SubElement(
            ts,
            "testcase",
            {"name": _clean(c.name), "classname": _clean(c.classname), "time": f"{c.time:.3f}"},
        )
        if c.error is not None:
            el = ET.SubElement(tc, "error", {"message": _clean(c.error), "type": "invalid"})
            el.text = _clean(c.detail)
        elif c.failure is not None:
            el = ET.SubElement(tc, "failure", {"message": _clean(c.failure), "type": "expectation"})
            el.text = _clean(c.detail)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write(path: Path, cases: Sequence[Case], suite: str = "lbsim") -> Path:
    """Write the report atomically to ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_xml(cases, suite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
