"""Checking a scenario's ``expect:`` items against the status timeline.

Three forms (contract, extended):

* ``at: t`` — the field shows the value at time t (after every change stamped ≤ t);
* ``within: [t0, t1]`` with a value — the field shows the value throughout the window;
* ``within: [t0, t1]`` with ``transition: [OLD, NEW]`` — the field changes from OLD to NEW
  at some time inside the window (``field:`` says which; operating_status by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lbsim.octavia.timeline import Timeline
from lbsim.scenario import model as m

COLUMNS = ["index", "time", "object_type", "name", "field", "expected", "found", "result"]


@dataclass(frozen=True)
class Outcome:
    """One expectation, what was found, and whether it held."""

    index: int
    when: str
    object_type: str
    name: str
    field: str
    expected: str
    found: str
    passed: bool


def check(expectation: m.Expectation, timeline: Timeline, index: int = 0) -> Outcome:
    """Evaluate one expectation."""
    kind, name = expectation.target
    fld = expectation.status_field
    if expectation.at is not None:
        found = timeline.value_at(kind, name, fld, expectation.at) or "(none)"
        return Outcome(
            index,
            f"{expectation.at:g}",
            kind,
            name,
            fld,
            expectation.expected,
            found,
            found == expectation.expected,
        )
    assert expectation.within is not None
    t0, t1 = expectation.within
    when = f"[{t0:g}, {t1:g}]"
    changes = [c for c in timeline.changes(kind, name, fld) if t0 <= c.time <= t1 and c.old]
    if expectation.transition is not None:
        old, new = expectation.transition
        hits = [c for c in changes if c.old == old and c.new == new]
        if hits:
            return Outcome(
                index,
                when,
                kind,
                name,
                fld,
                expectation.expected,
                f"{old} -> {new} at {hits[0].time:g}",
                True,
            )
        seen = ", ".join(f"{c.old} -> {c.new} at {c.time:g}" for c in changes) or "no change"
        return Outcome(index, when, kind, name, fld, expectation.expected, seen, False)
    start = timeline.value_at(kind, name, fld, t0) or "(none)"
    values = [start] + [c.new for c in changes if c.time > t0]
    found = " -> ".join(dict.fromkeys(values))
    return Outcome(
        index,
        when,
        kind,
        name,
        fld,
        expectation.expected,
        found,
        all(v == expectation.expected for v in values),
    )


def check_all(scenario: m.Scenario, timeline: Timeline) -> list[Outcome]:
    """Evaluate every expectation of a scenario."""
    return [check(e, timeline, i) for i, e in enumerate(scenario.expect)]


def frame(outcomes: list[Outcome]) -> pd.DataFrame:
    """The contract's ``expectations.csv`` table, indexed by the expectation's number in
    the scenario (the index is named ``index``, the first column of the CSV; it is not
    repeated as a column)."""
    df = pd.DataFrame(
        [
            (
                o.index,
                o.when,
                o.object_type,
                o.name,
                o.field,
                o.expected,
                o.found,
                "pass" if o.passed else "fail",
            )
            for o in outcomes
        ],
        columns=COLUMNS,
    )
    return df.set_index("index")
