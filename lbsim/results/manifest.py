"""The result folder's ``manifest.json`` and the careful reading of result files.

A result folder is written once and then read by ``lbsim status``, ``stats``, ``report``
and ``scaling``, possibly much later and after it was copied, synced or edited. At save
time :func:`write_manifest` records every file's size and SHA-256; every reader calls
:func:`verify` first, so a file cut in half (a ``transitions.csv`` that would make
``lbsim status`` report a member ONLINE that was ERROR), emptied or replaced is refused
with a message naming it, instead of being read as if it were true.

Folders written before the manifest existed have none; they are read as before, and the
readers below (:func:`read_json_object`, :func:`read_table`, :func:`read_duration`) turn
garbage, empty, binary or wrong-column files into :class:`ResultFolderError` messages
rather than tracebacks.

``manifest.json``::

    {"format": 1, "files": {"summary.json": {"bytes": 812, "sha256": "..."}, ...}}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

MANIFEST = "manifest.json"
#: the largest JSON file a reader accepts (summary.json and status.json are kilobytes)
MAX_JSON_BYTES = 64 * 1024 * 1024


class ResultFolderError(ValueError):
    """A result folder is missing, incomplete, damaged, or asked about a time outside its run."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record the size and SHA-256 of every file in ``folder`` (written last, atomically)."""
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": _digest(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"format": 1, "files": files}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def verify(folder: Path, names: Iterable[str] | None = None) -> bool:
    """Check the files of ``folder`` against its manifest; True when it has one.

    ``names`` limits the check to the files a reader is about to use (all listed files
    otherwise). Raises :class:`ResultFolderError` for a damaged manifest, a listed file
    that is missing, or one whose size or checksum differs from the recorded one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultFolderError(f"{folder}: no such result folder")
    path = folder / MANIFEST
    if not path.exists():
        return False
    data = read_json_object(folder, MANIFEST)
    files = data.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise ResultFolderError(f"{folder}: manifest.json is damaged (no valid 'files' table)")
    wanted = list(files) if names is None else [n for n in names if n in files]
    for name in wanted:
        rec = files[name]
        p = folder / name
        if not p.is_file():
            raise ResultFolderError(f"{folder}: {name} is missing (the manifest lists it)")
        size = p.stat().st_size
        if size != rec["bytes"]:
            raise ResultFolderError(
                f"{folder}: {name} has {size:,} bytes but was saved with {rec['bytes']:,} "
                "(truncated or changed after the run); rerun the scenario"
            )
        if _digest(p) != rec["sha256"]:
            raise ResultFolderError(
                f"{folder}: {name} does not match the checksum recorded when it was saved "
                "(changed after the run); rerun the scenario"
            )
    return True


def _read_text(folder: Path, name: str) -> str:
    p = folder / name
    if not p.is_file():
        raise ResultFolderError(f"{folder}: not a complete result folder ({name} is missing)")
    if p.stat().st_size > MAX_JSON_BYTES:
        raise ResultFolderError(f"{folder}: {name} is too large to be a result file")
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultFolderError(f"{folder}: {name} is not UTF-8 text (a binary file?)") from None


def read_json_object(folder: Path, name: str) -> dict[str, Any]:
    """A JSON object file of the folder, or a :class:`ResultFolderError` saying what is wrong."""
    text = _read_text(folder, name)
    if not text.strip():
        raise ResultFolderError(f"{folder}: {name} is empty")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ResultFolderError(f"{folder}: {name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultFolderError(f"{folder}: {name} should hold a JSON object, not {type(data).__name__}")
    return data


def read_duration(folder: Path, summary: dict[str, Any]) -> float:
    """The run's simulated length from ``summary.json`` (a finite number >= 0)."""
    value = summary.get("duration")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ResultFolderError(f"{folder}: summary.json: duration should be a number of seconds, got {value!r}")
    return float(value)


def read_table(folder: Path, name: str, columns: Iterable[str], numeric: Iterable[str] = (), **kw: Any) -> pd.DataFrame:
    """A CSV table of the folder with at least ``columns`` (``numeric`` ones all numbers).

    Empty, binary and garbage files, missing columns and non-numeric values in numeric
    columns become a :class:`ResultFolderError` naming the file and what is wrong.
    """
    p = folder / name
    if not p.is_file():
        raise ResultFolderError(f"{folder}: not a complete result folder ({name} is missing)")
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if not head.strip():
        raise ResultFolderError(f"{folder}: {name} is empty (expected a CSV header and rows)")
    if b"\0" in head:
        raise ResultFolderError(f"{folder}: {name} is a binary file, not CSV")
    try:
        df = pd.read_csv(p, **kw)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ResultFolderError(f"{folder}: {name} is not a readable CSV table ({exc})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultFolderError(f"{folder}: {name} lacks column(s) {', '.join(missing)}; not a result table")
    for c in numeric:
        col = pd.to_numeric(df[c], errors="coerce")
        bad = col.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise ResultFolderError(
                f"{folder}: {name}:{row}: column {c} should be a number, got {df[c].iloc[row - 2]!r}"
            )
    return df
