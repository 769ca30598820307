"""Issue 14, result readers: damaged result folders get a clear exit 2, never a traceback
or a wrong answer; ``--out`` replaces a folder atomically with normal permissions.

One autoscaled run (so that every reader, ``scaling`` included, has its files) is saved
once per module; each test damages a copy. With the manifest, any damage to a file a
reader uses is refused with a message naming the file; without it (folders from before the
manifest), damage still ends in exit 0 or 2 with a message, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim.api import run_scenario
from lbsim.cli.main import main
from lbsim.results.manifest import MANIFEST, ResultFolderError, verify
from lbsim.scenario.loader import parse_scenario

ROOT = Path(__file__).resolve().parents[1]

#: the files each reader uses (a damaged one must be refused when the manifest lists it)
USES = {
    "status": {"transitions.csv", "scenario.yaml", "summary.json", "api.csv", "scaling.csv"},
    "stats": {"stats.csv", "transitions.csv", "summary.json"},
    "scaling": None,  # verifies every listed file
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load((ROOT / "scenarios/autoscaling/flash-crowd.yaml").read_text())
    data["duration"] = 200
    data["expect"] = []
    text = yaml.safe_dump(data, sort_keys=False)
    out = tmp_path_factory.mktemp("res") / "run"
    run_scenario(parse_scenario(text), scenario_yaml=text).save(out)
    return out


@pytest.fixture
def folder(saved: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(saved, dst)
    return dst


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def _argv(reader: str, folder: Path) -> list[str]:
    return [reader, str(folder)] + (["--at", "150"] if reader in ("status", "stats") else [])


def _damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif how == "garbage":
        path.write_text("this is not what you think,\n{[\n")
    elif how == "columns":
        path.write_text("a,b\n1,2\n")
    elif how == "nan":
        path.write_text(path.read_text().replace('"duration": 200', '"duration": NaN'))


def test_manifest_lists_every_file_with_size_and_checksum(saved: Path) -> None:
    data = json.loads((saved / MANIFEST).read_text())
    files = {p.name for p in saved.iterdir() if p.name != MANIFEST}
    assert set(data["files"]) == files
    assert all(data["files"][n]["bytes"] == (saved / n).stat().st_size for n in files)
    assert verify(saved) is True


def test_truncated_transitions_are_refused_not_misread(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's worst case: half a transitions.csv made `status --at` report a wrong status."""
    code, _ = _cli(capsys, "status", str(folder), "--at", "150")
    assert code == 0
    full = capsys.readouterr()
    del full
    path = folder / "transitions.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))  # cut on a line boundary: still valid CSV
    code, err = _cli(capsys, "status", str(folder), "--at", "150")
    assert code == 2
    assert "transitions.csv" in err and "truncated or changed" in err


def test_a_changed_byte_is_caught_by_the_checksum(folder: Path) -> None:
    path = folder / "stats.csv"
    raw = bytearray(path.read_bytes())
    raw[-2] = ord("7") if raw[-2] != ord("7") else ord("8")
    path.write_bytes(bytes(raw))
    with pytest.raises(ResultFolderError, match="checksum"):
        verify(folder)


@pytest.mark.parametrize("reader", ["status", "stats", "scaling"])
@pytest.mark.parametrize("how", ["empty", "half", "binary", "garbage", "columns"])
@pytest.mark.parametrize(
    "name", ["summary.json", "transitions.csv", "stats.csv", "scaling.csv", "api.csv", "scenario.yaml", MANIFEST]
)
def test_damaged_file_with_manifest(
    reader: str, how: str, name: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _damage(folder / name, how)
    code, err = _cli(capsys, *_argv(reader, folder))
    uses = USES[reader]
    if name == MANIFEST or uses is None or name in uses:
        assert code == 2, err
        assert name in err or "manifest" in err
    else:
        assert code in (0, 2)


@pytest.mark.parametrize("reader", ["status", "stats", "scaling"])
@pytest.mark.parametrize("how", ["empty", "half", "binary", "garbage", "columns", "nan"])
@pytest.mark.parametrize("name", ["summary.json", "transitions.csv", "stats.csv", "scaling.csv", "api.csv"])
def test_damaged_file_without_manifest(
    reader: str, how: str, name: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Folders saved before the manifest existed: still no traceback."""
    (folder / MANIFEST).unlink()
    if how == "nan" and name != "summary.json":
        return
    _damage(folder / name, how)
    code, err = _cli(capsys, *_argv(reader, folder))
    assert code in (0, 2)
    if code == 2:
        assert err.strip()


@pytest.mark.parametrize(
    ("name", "how"),
    [
        ("summary.json", "garbage"),
        ("summary.json", "nan"),
        ("members.csv", "columns"),
        ("timeseries.csv", "binary"),
        ("transitions.csv", "empty"),
        ("status.json", "half"),
    ],
)
@pytest.mark.parametrize("with_manifest", [True, False])
def test_report_of_a_damaged_folder(
    name: str, how: str, with_manifest: bool, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not with_manifest:
        (folder / MANIFEST).unlink()
    _damage(folder / name, how)
    code, err = _cli(capsys, "report", str(folder), "--out", str(tmp_path / "rep"))
    assert code == 2 and name in err


def test_not_a_folder_and_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for reader in ("status", "stats", "scaling", "report"):
        code, err = _cli(capsys, reader, str(tmp_path / "missing"))
        assert code == 2 and "missing" in err
        (tmp_path / "empty").mkdir(exist_ok=True)
        code, err = _cli(capsys, reader, str(tmp_path / "empty"))
        assert code == 2 and err.strip()


# ------------------------------------------------------------------ --out


def _run(tmp: Path, out: Path, capsys: pytest.CaptureFixture[str], scenario_dict: dict[str, Any]) -> None:
    f = tmp / "s.yaml"
    f.write_text(yaml.safe_dump(scenario_dict))
    code, err = _cli(capsys, "run", str(f), "--out", str(out), "--quiet")
    assert code == 0, err


def test_out_replaces_an_existing_folder_and_leaves_no_temporary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_dict: dict[str, Any]
) -> None:
    out = tmp_path / "res"
    out.mkdir()
    (out / "old-file.txt").write_text("from an earlier run")
    _run(tmp_path, out, capsys, scenario_dict)
    assert not (out / "old-file.txt").exists() and (out / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "s.yaml"]  # no .res.* left
    verify(out)


def test_stale_temporary_folders_of_dead_processes_are_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_dict: dict[str, Any]
) -> None:
    dead = tmp_path / ".res.lbsim-tmp-999999999-abc"
    dead.mkdir()
    (dead / "summary.json").write_text("{}")
    _run(tmp_path, tmp_path / "res", capsys, scenario_dict)
    assert not dead.exists()


def test_result_folders_get_normal_permissions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scenario_dict: dict[str, Any]
) -> None:
    old = os.umask(0o022)
    try:
        _run(tmp_path, tmp_path / "res", capsys, scenario_dict)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "res").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "res" / "summary.json").stat().st_mode) == 0o644


def test_python_api_load_verifies_the_manifest(folder: Path) -> None:
    from lbsim.results.folder import RunResult

    assert RunResult.load(folder).summary["duration"] == 200
    (folder / "members.csv").write_text("name\n")
    with pytest.raises(ResultFolderError, match=r"members\.csv"):
        RunResult.load(folder)
