"""Warnings of a run, kept in ``summary.json`` under ``warnings`` (a list of sentences).

Before the run: :func:`lbsim.scenario.sanity.scenario_warnings` (``field.path: what``).
After it: for every ``hang`` or ``error`` injected on a member whose monitor cannot see
it (a TCP or TLS-HELLO monitor and a hang, for instance), how many requests failed while
the API showed the member ONLINE the whole time: the number a user needs to see that the
monitor missed the fault.
"""

from __future__ import annotations

from lbsim.scenario import model as m
from lbsim.scenario.errors import format_path
from lbsim.scenario.sanity import UNSEEN_FAULTS, scenario_warnings, trees
from lbsim.sim.engine import RawRun


def run_warnings(raw: RawRun) -> list[str]:
    """Every warning of a finished run, as ``field.path: sentence`` strings."""
    out = [f"{format_path(path)}: {msg}" for path, msg in scenario_warnings(raw.scenario)]
    out.extend(_unseen_hangs(raw))
    return out


def _monitor_types(sc: m.Scenario) -> dict[str, str]:
    return {
        mem.name: p.healthmonitor.type for _, lb in trees(sc) for p in lb.pools if p.healthmonitor for mem in p.members
    }


def _unseen_hangs(raw: RawRun) -> list[str]:
    """Hangs a connect-only monitor could not see, with the requests they cost."""
    monitor = _monitor_types(raw.scenario)
    tl = raw.timeline
    out = []
    for f in raw.faults:
        fault = {"member_hang": "hang", "member_hang_traffic": "hang", "stochastic_hang": "hang"}.get(f.kind)
        if fault is None and f.kind in ("member_error", "member_error_traffic", "stochastic_error"):
            fault = "error"
        if fault is None or len(f.members) != 1:
            continue
        name = f.members[0]
        kind = monitor.get(name)
        if kind is None or fault not in UNSEEN_FAULTS.get(kind, ()):
            continue
        end = f.end if f.end is not None else raw.duration
        statuses = {tl.value_at("member", name, "operating_status", f.time)} | {
            c.new for c in tl.changes("member", name, "operating_status") if f.time <= c.time <= end
        }
        if statuses == {"ONLINE"}:
            what, code = ("hung", "504") if fault == "hang" else ("answered errors", "the error status")
            out.append(
                f"member '{name}' {what} from {f.time:g} s to {end:g} s; its {kind} monitor kept it UP and the "
                f"API showed it ONLINE throughout, while {f.failed} request(s) sent to it failed ({code})"
            )
    return out
