"""lbsim: a discrete-event digital twin of OpenStack Octavia (load balancer as a service).

Public API: :func:`load_scenario` reads and validates a scenario file,
:func:`run_scenario` simulates it and returns a :class:`RunResult` whose tables are
pandas DataFrames.
"""

__version__ = "0.1.0"

from lbsim.api import run_scenario
from lbsim.results import RunResult
from lbsim.scenario import ScenarioError, load_scenario, parse_scenario

__all__ = [
    "RunResult",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "parse_scenario",
    "run_scenario",
]
