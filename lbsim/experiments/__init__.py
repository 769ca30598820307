"""Many runs: sweeps with confidence intervals, paired comparisons, capacity planning, queueing theory.

The sweep machinery is split by seam: :mod:`.design` (overrides, seeds, grid),
:mod:`.runs` (one run -> one record), :mod:`.store` (atomic run store), :mod:`.engines`
(serial, processes, Dask), :mod:`.tables` (run and point tables), :mod:`.stats`
(Student-t intervals) and :mod:`.sweep` (the whole sweep). This package re-exports their
public names; :mod:`.compare`, :mod:`.plan` and :mod:`.queueing` build on them.
"""

from lbsim.experiments.common import BASE_METRICS
from lbsim.experiments.design import (
    Design,
    Override,
    OverrideError,
    Point,
    RunSpec,
    apply_overrides,
    derive_seed,
    design,
    grid,
    parse_path,
    parse_set,
    run_key,
    scenario_hash,
    set_path,
)
from lbsim.experiments.engines import Engine, RunFailed
from lbsim.experiments.runs import execute_run, run_metrics
from lbsim.experiments.stats import Interval, mean_ci, t_quantile
from lbsim.experiments.store import RunStore
from lbsim.experiments.sweep import SweepResult, load_experiment, rich_progress, run_design, sweep
from lbsim.experiments.tables import points_table, runs_table

__all__ = [
    "BASE_METRICS",
    "Design",
    "Engine",
    "Interval",
    "Override",
    "OverrideError",
    "Point",
    "RunFailed",
    "RunSpec",
    "RunStore",
    "SweepResult",
    "apply_overrides",
    "derive_seed",
    "design",
    "execute_run",
    "grid",
    "load_experiment",
    "mean_ci",
    "parse_path",
    "parse_set",
    "points_table",
    "rich_progress",
    "run_design",
    "run_key",
    "run_metrics",
    "runs_table",
    "scenario_hash",
    "set_path",
    "sweep",
    "t_quantile",
]
