"""The exact engine's fused arrival path gives the same run as the general one.

A Poisson source's arrivals run through :func:`lbsim.sim.traffic.poisson_callback`,
which inlines the common case of a request (admission, balancing, a free slot of a
healthy member) and hands everything else to :meth:`DataPlane.arrive`. Any other source
(a trace, MMPP, a live source that may stop) runs the general callback of
:func:`lbsim.sim.traffic.arrival_callback`, which always calls :meth:`DataPlane.arrive`.
Both must give the same run to the last bit. The reference run here forces the general
callback for a Poisson source (a ``running`` test that is always true), and the result
tables, per-request log included, must be equal: over the three algorithms, with a full
frontend, slow, refusing and hanging members, a weight change, persistence and a VIP
without a frontend for a while (the amphora fails).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from conftest import make_scenario

import lbsim.sim.engine as engine_module
from lbsim.api import run_scenario
from lbsim.scenario import model as m
from lbsim.sim import traffic
from lbsim.sim.dataplane import DataPlane


def busy_scenario(algorithm: str, persistence: str | None) -> dict[str, Any]:
    """Two one-slot members near saturation behind a listener of three connections."""
    d = make_scenario()
    d["duration"] = 6
    lb = d["loadbalancer"]
    lb["listeners"][0]["connection_limit"] = 3
    pool = lb["pools"][0]
    pool["lb_algorithm"] = algorithm
    if persistence is not None:
        pool["session_persistence"] = {"type": persistence}
    for member in pool["members"]:
        member["concurrency"] = 1
    d["traffic"][0]["arrival"] = {"process": "poisson", "rate": 150}
    d["events"] = [
        {"at": 1, "member": "web-1", "behaviour": "slow", "factor": 3},
        {"at": 2, "member": "web-2", "behaviour": "refuse"},
        {"at": 3, "member": "web-2", "behaviour": "healthy"},
        {"at": 3.5, "member": "web-1", "behaviour": "hang"},
        {"at": 4.5, "member": "web-1", "behaviour": "healthy"},
        {"at": 5, "api": "update", "member": "web-2", "set": {"weight": 3}},
        {"at": 5.5, "amphora": "MASTER", "behaviour": "fail"},
    ]
    return d


def run(data: dict[str, Any], general: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """One exact run with request logging; ``general`` forces the general callback.

    Also checks that the fused callback is used exactly when it should be.
    """
    fused_sources: list[str] = []
    make_fused = traffic.poisson_callback

    def counted(dp: DataPlane, listener: str, *args: Any) -> Any:
        fused_sources.append(listener)
        return make_fused(dp, listener, *args)

    monkeypatch.setattr(traffic, "poisson_callback", counted)
    if general:
        original = traffic.arrival_callback

        def always_running(
            dp: Any, listener: str, gap: Any, addrs: Any, crng: Any, horizon: float, running: Any = None, trace: Any = None
        ) -> Any:
            if running is None:
                running = lambda: True  # noqa: E731
            return original(dp, listener, gap, addrs, crng, horizon, running, trace)

        monkeypatch.setattr(engine_module, "arrival_callback", always_running)
    try:
        result = run_scenario(m.Scenario.model_validate(data), log_requests=True, engine="exact")
    finally:
        monkeypatch.undo()
    assert fused_sources == ([] if general else ["http"])
    return result


@pytest.mark.parametrize("algorithm", ["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"])
@pytest.mark.parametrize("persistence", [None, "SOURCE_IP"])
def test_fused_arrivals_equal_the_general_path(
    algorithm: str, persistence: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = busy_scenario(algorithm, persistence)
    fused = run(data, False, monkeypatch)
    general = run(data, True, monkeypatch)
    assert fused.requests is not None and general.requests is not None
    outcomes = set(fused.requests["outcome"].astype(str))
    assert {"ok", "connect"} <= outcomes  # the run did meet the general path's cases
    assert len(fused.requests) > 500
    assert fused.summary == general.summary
    for name in ("members", "timeseries", "requests", "stats", "latency", "incidents"):
        a, b = getattr(fused, name), getattr(general, name)
        if a is None:
            assert b is None
        else:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
