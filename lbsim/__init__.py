"""lbsim: a discrete-event digital twin of OpenStack Octavia (load balancer as a service).

Public API: :func:`load_scenario` reads and validates a scenario file,
:func:`run_scenario` simulates it and returns a :class:`RunResult` whose tables are
pandas DataFrames. :func:`sweep`, :func:`compare`, :func:`plan` and :func:`build_report`
are the experiment and report entry points the notebooks use; :func:`erlang_c` and
:func:`mmc_mean_sojourn` are the queueing-theory references.

Names are loaded on first use (PEP 562), so ``import lbsim`` and ``lbsim --help`` stay
light: pandas, matplotlib and Dask are imported only by what needs them.
The layout is described in ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lbsim._version import __version__

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "load_scenario": "lbsim.scenario.loader",
    "parse_scenario": "lbsim.scenario.loader",
    "ScenarioError": "lbsim.scenario.loader",
    "run_scenario": "lbsim.api",
    "RunResult": "lbsim.results.folder",
    "sweep": "lbsim.experiments.sweep",
    "SweepResult": "lbsim.experiments.sweep",
    "compare": "lbsim.experiments.compare",
    "plan": "lbsim.experiments.plan",
    "build_report": "lbsim.report.html",
    "erlang_c": "lbsim.experiments.queueing",
    "mmc_mean_wait": "lbsim.experiments.queueing",
    "mmc_mean_sojourn": "lbsim.experiments.queueing",
    "mmc_wait_quantile": "lbsim.experiments.queueing",
    "min_servers_for_wait": "lbsim.experiments.queueing",
}

__all__ = [
    "RunResult",
    "ScenarioError",
    "SweepResult",
    "__version__",
    "build_report",
    "compare",
    "erlang_c",
    "load_scenario",
    "min_servers_for_wait",
    "mmc_mean_sojourn",
    "mmc_mean_wait",
    "mmc_wait_quantile",
    "parse_scenario",
    "plan",
    "plots",
    "run_scenario",
    "sweep",
]


#: public name -> a whole module (the figure helpers the notebooks call as ``plots.xxx``)
_MODULES: dict[str, str] = {"plots": "lbsim.figures.plots"}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        mod = importlib.import_module(_MODULES[name])
        globals()[name] = mod
        return mod
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lbsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_MODULES))


if TYPE_CHECKING:
    from lbsim.api import run_scenario
    from lbsim.experiments.compare import compare
    from lbsim.experiments.plan import plan
    from lbsim.experiments.queueing import (
        erlang_c,
        min_servers_for_wait,
        mmc_mean_sojourn,
        mmc_mean_wait,
        mmc_wait_quantile,
    )
    from lbsim.experiments.sweep import SweepResult, sweep
    from lbsim.figures import plots
    from lbsim.report.html import build_report
    from lbsim.results.folder import RunResult
    from lbsim.scenario.loader import ScenarioError, load_scenario, parse_scenario
