"""``tools/fidelity_table.py``: rendering and writing the README table (quick, no HAProxy)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fidelity_table.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_table", TOOL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ROWS = [
    {"case": "rr-1", "title": "ROUND_ROBIN", "metric": "picks", "twin": "3", "haproxy": "3 of 3", "ok": True},
    {"case": "gen-a", "title": "one generated case", "twin": "x", "haproxy": "y", "ok": True, "detail": True},
    {"case": "gen-b", "title": "another", "twin": "x", "haproxy": "z", "ok": False, "detail": True},
    {"case": "q|l", "title": "a pipe", "twin": "a", "haproxy": "b", "worst": 0.1234, "ok": False},
]


def test_detail_rows_are_counted_not_listed(tool: ModuleType) -> None:
    """Per-case rows of the generated suites stay out of the table and are counted below it."""
    table = tool.render_table(ROWS, "HAProxy 2.6.12", "2026-11-30")
    assert "gen-a" not in table and "gen-b" not in table
    assert "**rr-1** ROUND_ROBIN" in table
    assert "1 of 2 comparisons agree within tolerance." in table
    assert "summarise 2 per-case comparisons (1 agree" in table
    assert "q\\|l" in table and "0.123" in table  # pipes escaped, floats to 3 places
    assert "**differs**" in table


def test_write_replaces_only_the_block(tool: ModuleType, tmp_path: Path) -> None:
    """``--from-json`` with ``--write`` swaps what is between the markers, nothing else."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{tool.START}\nold table\n{tool.END}\nafter\n", encoding="utf-8")
    assert tool.main(["--from-json", str(rows), "--write", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith(f"{tool.END}\nafter\n")
    assert "old table" not in text and "**rr-1**" in text


def test_missing_markers_is_a_clear_error(tool: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file without the markers: exit status 2 and a message, no traceback."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n", encoding="utf-8")
    assert tool.main(["--from-json", str(rows), "--write", str(readme)]) == 2
    assert "needs the lines" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "no markers here\n"
