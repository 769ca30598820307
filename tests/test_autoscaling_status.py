"""`lbsim status --at T` shows members an autoscaler created (and only while they exist)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbsim import load_scenario, run_scenario
from lbsim.results.folder import status_tree_from_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = ROOT / "scenarios" / "autoscaling" / "flash-crowd.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, scenario_yaml=path.read_text())
    return res.save(tmp_path_factory.mktemp("as") / "run")


def _members(tree: dict, pool_index: int = 0) -> list[str]:
    return [m["name"] for m in tree["statuses"]["loadbalancer"]["listeners"][0]["pools"][pool_index]["members"]]


def test_status_at_shows_scaler_members_while_they_exist(folder: Path) -> None:
    import pandas as pd

    scaling = pd.read_csv(folder / "scaling.csv", keep_default_na=False)
    creates = scaling[(scaling.action == "create") & (scaling.code.astype(str).isin(["201", "201.0"]))]
    assert len(creates) > 0
    first = creates.iloc[0]
    before = _members(status_tree_from_folder(folder, float(first.time) - 1))
    after = _members(status_tree_from_folder(folder, float(first.time) + 5))
    assert first.member not in before
    assert first.member in after
    # the final tree is status.json itself (scaled-in members are gone again)
    assert status_tree_from_folder(folder) == json.loads((folder / "status.json").read_text())
