"""`lbsim run --out` that cannot be written: a clean error before any simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbsim.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_out_below_a_file_is_refused_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["run", str(ROOT / "scenarios" / "default.yaml"), "--out", str(blocker / "res"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and "Traceback" not in err
    assert "simulating" not in err


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "res"
    target.write_text("x")
    assert main(["run", str(ROOT / "scenarios" / "default.yaml"), "--out", str(target), "--quiet"]) == 2
    assert target.read_text() == "x"  # nothing lost
    assert "exists and is not a folder" in capsys.readouterr().err
