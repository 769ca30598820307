"""The status timeline: every change of every status field, and queries over it.

A :class:`Timeline` is the single record of what Octavia's API and HAProxy showed over
simulated time. The engine writes to it; expectations, ``lbsim status --at``, reports
and ``transitions.csv`` read from it. Initial values are rows at time 0 with an empty
``old`` value, so the file alone reconstructs the state at any time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import NamedTuple

import pandas as pd

FIELDS = ("provisioning_status", "operating_status", "data_plane_state")
COLUMNS = ["time", "object_type", "name", "field", "old", "new"]


class Transition(NamedTuple):
    """One change of one status field of one object.

    A named tuple rather than a frozen dataclass: a 10,000-member start-up records tens
    of thousands of initial values, and a tuple is built several times faster (the
    frozen dataclass's ``__init__`` goes through ``object.__setattr__`` per field).
    """

    time: float
    object_type: str
    name: str
    field: str
    old: str
    new: str


class Timeline:
    """Append-only history of status values, indexed for point-in-time queries."""

    def __init__(self) -> None:
        self.rows: list[Transition] = []
        self._current: dict[tuple[str, str, str], str] = {}
        self._history: dict[tuple[str, str, str], tuple[list[float], list[str]]] = {}

    def set(self, time: float, object_type: str, name: str, field: str, value: str) -> bool:
        """Record ``value`` for a field if it differs from the current one; True if it did."""
        key = (object_type, name, field)
        old = self._current.get(key, "")
        if old == value:
            return False
        self._current[key] = value
        self.rows.append(Transition(time, object_type, name, field, old, value))
        hist = self._history.get(key)
        if hist is None:  # first value: no empty lists built and thrown away on later changes
            self._history[key] = ([time], [value])
        else:
            hist[0].append(time)
            hist[1].append(value)
        return True

    def current(self, object_type: str, name: str, field: str) -> str:
        """The latest value ('' if never set)."""
        return self._current.get((object_type, name, field), "")

    def value_at(self, object_type: str, name: str, field: str, t: float) -> str:
        """The value shown at time ``t`` (after every change stamped at or before t)."""
        hist = self._history.get((object_type, name, field))
        if hist is None:
            return ""
        times, values = hist
        i = bisect.bisect_right(times, t)
        return values[i - 1] if i else ""

    def changes(self, object_type: str, name: str, field: str) -> Iterator[Transition]:
        """Every change of one field, in time order."""
        for row in self.rows:
            if row.object_type == object_type and row.name == name and row.field == field:
                yield row

    def objects(self) -> list[tuple[str, str]]:
        """Every (object_type, name) that ever had a status."""
        seen: dict[tuple[str, str], None] = {}
        for ot, name, _f in self._current:
            seen[(ot, name)] = None
        return list(seen)

    def frame(self) -> pd.DataFrame:
        """The timeline as the contract's ``transitions.csv`` table."""
        return pd.DataFrame([tuple(r) for r in self.rows], columns=COLUMNS)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Timeline:
        """Rebuild a timeline from a ``transitions.csv`` table."""
        tl = cls()
        for time, otype, name, fld, new in zip(
            df["time"].astype(float), df["object_type"], df["name"], df["field"], df["new"].fillna(""), strict=True
        ):
            tl.set(float(time), str(otype), str(name), str(fld), str(new))
        return tl
