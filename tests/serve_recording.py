"""The real-Octavia recording (``shared/reference/octavia-api-recordings``) as test data.

It lies beside the repository (``../shared``), in CI as on a developer's machine; a missing
copy fails the tests that need it rather than skipping them silently.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = ROOT.parent / "shared" / "reference" / "octavia-api-recordings"


@cache
def steps() -> list[dict[str, Any]]:
    """Every recorded step of ``commands.jsonl`` (cmd, rc, stdout, stderr, http)."""
    path = RECORDINGS / "commands.jsonl"
    if not path.is_file():
        pytest.fail(f"the Octavia recording is missing: {path} (shared/ must lie beside the repository)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def exchanges() -> list[dict[str, Any]]:
    """Every recorded HTTP exchange, in order."""
    return [h for s in steps() for h in s["http"]]
