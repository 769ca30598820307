"""The Python API: run scenarios from code and get pandas objects back.

>>> from lbsim import load_scenario, run_scenario
>>> result = run_scenario(load_scenario("scenarios/default.yaml"))
>>> result.members            # a DataFrame, one row per member
>>> result.timeline.value_at("pool", "web", "operating_status", 150.0)
"""

from __future__ import annotations

from pathlib import Path

from lbsim.results.folder import RunResult, summarise
from lbsim.scenario import model as m
from lbsim.sim.engine import ProgressFn
from lbsim.sim.world import simulate


def run_scenario(
    scenario: m.Scenario,
    *,
    seed: int | None = None,
    base_dir: Path | None = None,
    log_requests: bool = False,
    progress: ProgressFn | None = None,
    scenario_yaml: str = "",
    engine: str = "auto",
) -> RunResult:
    """Simulate one scenario and summarise it (nothing is written to disk).

    ``scenario_yaml`` is the text kept in the result folder's ``scenario.yaml``; without
    it the validated scenario itself is written out when the result is saved, so a saved
    result always carries what was run. ``engine`` chooses the data plane ("auto",
    "exact", "compiled"; see :func:`lbsim.sim.engine.simulate`): results are identical.
    """
    raw = simulate(scenario, seed=seed, base_dir=base_dir, log_requests=log_requests, progress=progress, engine=engine)
    result = summarise(raw, scenario_yaml)
    if not scenario_yaml:
        result.scenario_model = scenario
    return result
