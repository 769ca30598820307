"""Octavia's health manager: heartbeats in, operating statuses out; stale amphorae out.

Each heartbeat is turned into operating statuses by the pure aggregation of
:mod:`lbsim.octavia.status` over the control plane's current rows, and the writes are applied
to the database (so the API shows them) at the moment the heartbeat is processed.
A heartbeat that counts refreshes the amphora's ``last_update``; the stale scan runs
every ``health_check_interval`` and starts a failover for an amphora whose last counted
heartbeat is older than ``heartbeat_timeout`` (octavia-semantics.md §1.8).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import numpy as np
import simpy

from lbsim.octavia.controlplane import ControlPlane
from lbsim.octavia.objects import Job
from lbsim.octavia.status import DbListener, DbPool, DbView, HealthUpdate, update_health
from lbsim.octavia.timeline import Timeline
from lbsim.scenario import model as m


def db_view(cp: ControlPlane, lb_name: str) -> DbView | None:
    """The flat view ``get_lb_for_health_update`` loads, from the control plane's rows."""
    lb = cp.get("loadbalancer", lb_name)
    if lb is None or lb.provisioning_status == "DELETED":
        return None
    listeners = {
        li.name: DbListener(
            li.name,
            li.operating_status,
            str(li.attrs.get("protocol", "HTTP")),
            bool(li.attrs.get("admin_state_up", True)),
        )
        for li in cp.listeners_of(lb_name)
    }
    pools = {
        p.name: DbPool(
            p.name,
            p.operating_status,
            {mem.name: mem.operating_status for mem in cp.members_of(p.name)},
        )
        for p in cp.pools_of(lb_name)
    }
    return DbView(
        lb_name,
        bool(lb.attrs.get("admin_state_up", True)),
        lb.provisioning_status,
        lb.operating_status,
        listeners,
        pools,
    )


#: stats rows kept in memory before they go to the temporary file (a live world trims its
#: history to 4,096 rows before it gets here, so only runs with an end spill)
STATS_SPILL_ROWS = 16_384
#: one stats row on disk: the time, then listener and amphora indices and five counters
_RECORD = np.dtype([("time", "<f8"), ("ints", "<i8", (7,))])


class StatsRows(list[tuple[Any, ...]]):
    """The health manager's history of listener statistics, compactly.

    One row per heartbeat and listener, for the whole run: as tuples of a float, two
    strings and five ints a row cost about 240 bytes (17 bytes a simulated second of a
    30-day run). Here the time is a float64, listener and amphora are indices into name
    tables and the counters are int64, in arrays that double when full; once they hold
    :data:`STATS_SPILL_ROWS` rows, full arrays are appended to an anonymous temporary file
    (64 bytes a row; no name in the file system, so it goes with the object or the
    process) and emptied, so memory stays flat however long the run.

    It stands in for the list it replaces (``append``, ``len``, truth value, iteration
    and indexing give the same tuples, ``del rows[:-k]`` trims), like the live run's
    ``SecondCounts``: the underlying list itself stays empty, so only the methods
    below may be used. :meth:`columns` and :meth:`chunks` hand the history to a table
    without tuples.
    """

    def __init__(self, capacity: int = 256) -> None:
        super().__init__()
        capacity = max(1, min(capacity, STATS_SPILL_ROWS))  # the arrays never outgrow the spill size
        self._time = np.zeros(capacity, dtype=np.float64)
        self._ints = np.zeros((capacity, 7), dtype=np.int64)  # listener, amphora, 5 counters
        self._n = 0
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._file: Any = None  # the temporary file of the rows before the arrays' ones
        self._spilled = 0

    def _name(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._names)
            self._names.append(name)
        return i

    def append(self, row: tuple[Any, ...]) -> None:
        """Add one row ``(time, listener, amphora, bytes_in, bytes_out, active, total, errors)``."""
        if self._n == len(self._time):
            if self._n >= STATS_SPILL_ROWS:
                self._spill()
            else:
                self._time = np.concatenate([self._time, np.zeros_like(self._time)])
                self._ints = np.concatenate([self._ints, np.zeros_like(self._ints)])
        t, listener, amphora, *counters = row
        self._time[self._n] = t
        self._ints[self._n] = (self._name(listener), self._name(amphora), *counters)
        self._n += 1

    def _spill(self) -> None:
        """Move the rows in the arrays to the end of the temporary file."""
        import tempfile

        rec = np.empty(self._n, dtype=_RECORD)
        rec["time"] = self._time[: self._n]
        rec["ints"] = self._ints[: self._n]
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="lbsim-stats-")  # noqa: SIM115 (kept open)
        self._file.seek(0, 2)
        self._file.write(rec.tobytes())
        self._spilled += self._n
        self._n = 0

    def _spilled_part(self, start: int, stop: int) -> np.ndarray:
        """Spilled rows ``[start, stop)`` as :data:`_RECORD` records."""
        self._file.seek(start * _RECORD.itemsize)
        return np.frombuffer(self._file.read((stop - start) * _RECORD.itemsize), dtype=_RECORD)

    def _unspill(self) -> None:
        """Bring every spilled row back into the arrays (before an edit such as ``del``)."""
        if not self._spilled:
            return
        old = self._spilled_part(0, self._spilled)
        self._time = np.concatenate([old["time"], self._time[: self._n]])
        self._ints = np.concatenate([old["ints"], self._ints[: self._n]])
        self._n = len(self._time)
        self._file.close()
        self._file = None
        self._spilled = 0

    def __len__(self) -> int:
        return self._spilled + self._n

    @property
    def spilled(self) -> int:
        """Rows in the temporary file (none for a live world, which trims its history)."""
        return self._spilled

    def __bool__(self) -> bool:
        return len(self) > 0

    def _row(self, time: float, ints: list[int]) -> tuple[Any, ...]:
        names = self._names
        return (time, names[ints[0]], names[ints[1]], *ints[2:])

    def _arrays(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and integer columns of rows ``[start, stop)``, from the file and the arrays."""
        times, ints = [], []
        a, b = start, min(stop, self._spilled)
        if a < b:
            part = self._spilled_part(a, b)
            times.append(part["time"])
            ints.append(part["ints"])
        a, b = max(start, self._spilled) - self._spilled, stop - self._spilled
        if a < b:
            times.append(self._time[a:b])
            ints.append(self._ints[a:b])
        if not times:
            return np.zeros(0, dtype=np.float64), np.zeros((0, 7), dtype=np.int64)
        if len(times) == 1:
            return times[0], ints[0]
        return np.concatenate(times), np.concatenate(ints)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        step = 1 << 14
        for start in range(0, len(self), step):
            times, ints = self._arrays(start, min(len(self), start + step))
            for t, row in zip(times.tolist(), ints.tolist(), strict=True):
                yield self._row(t, row)

    def __getitem__(self, i: Any) -> Any:
        n = len(self)
        if isinstance(i, slice):
            return [self[k] for k in range(n)[i]]
        if not -n <= i < n:
            raise IndexError("stats row index out of range")
        k = i % n
        times, ints = self._arrays(k, k + 1)
        return self._row(float(times[0]), ints[0].tolist())

    def __delitem__(self, i: Any) -> None:
        self._unspill()
        keep = np.ones(self._n, dtype=bool)
        keep[i] = False
        n = int(keep.sum())
        self._time[:n] = self._time[: self._n][keep]
        self._ints[:n] = self._ints[: self._n][keep]
        self._n = n

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, list) else NotImplemented

    __hash__ = None

    def chunks(self, size: int = 1 << 16) -> Iterator[tuple[Any, ...]]:
        """The history in pieces of ``size`` rows, each as :meth:`columns` gives it (at
        least one piece, maybe empty), for writing a table without holding it whole."""
        names = self._names
        for start in range(0, max(len(self), 1), max(1, size)):
            times, ints = self._arrays(start, min(len(self), start + size))
            listener = [names[k] for k in ints[:, 0].tolist()]
            amphora = [names[k] for k in ints[:, 1].tolist()]
            yield (times.copy(), listener, amphora, *(ints[:, j].copy() for j in range(2, 7)))

    def columns(self) -> tuple[Any, ...]:
        """The history column by column: times, listener names, amphora names, then the
        five counters (numpy arrays and lists of names; no per-row tuples)."""
        (whole,) = self.chunks(max(len(self), 1))
        return whole


class HealthManager:
    """Receives heartbeats, writes operating statuses, detects stale amphorae."""

    def __init__(
        self,
        env: simpy.Environment,
        cp: ControlPlane,
        timeline: Timeline,
        settings: m.OctaviaSettings,
        lb_name: str,
        record: Callable[[Any], None],
    ) -> None:
        self.env = env
        self.cp = cp
        self.timeline = timeline
        self.settings = settings
        self.lb_name = lb_name
        self.record = record
        self.last_update: dict[str, float] = {}
        self.busy: set[str] = set()
        self.on_failover: Callable[[str, Job], None] | None = None
        self.processed = 0
        #: one row per (listener, amphora) as Octavia's listener_statistics table
        self.stats: dict[tuple[str, str], list[int]] = {}
        #: history: (time, listener, amphora, bytes_in, bytes_out, active, total, request_errors)
        self.stats_rows: list[tuple[Any, ...]] = StatsRows()

    def process(self, amphora_id: str, heartbeat: dict[str, Any]) -> HealthUpdate | None:
        """Handle one heartbeat now: refresh the amphora's health row, write statuses."""
        view = db_view(self.cp, self.lb_name)
        if view is None:
            return None
        update = update_health(view, heartbeat, heartbeat_interval=self.settings.heartbeat_interval)
        if update.refresh_amphora:
            self.last_update[amphora_id] = self.env.now
        for w in update.writes:
            self.record(self.cp.set_operating_status(w.object_type, w.object_id, w.operating_status))
        self.processed += 1
        return update

    def update_stats(self, amphora_id: str, heartbeat: dict[str, Any]) -> None:
        """Add a heartbeat's v3 deltas to the listener statistics (§6.2).

        Counters (bytes in/out, total connections, request errors) are incremented by
        the deltas; active connections are overwritten by the current gauge.
        """
        now = self.env.now
        for listener, entry in heartbeat.get("listeners", {}).items():
            st = entry.get("stats", {})
            row = self.stats.setdefault((listener, amphora_id), [0, 0, 0, 0, 0])
            row[0] += int(st.get("rx", 0))
            row[1] += int(st.get("tx", 0))
            row[2] = int(st.get("conns", 0))
            row[3] += int(st.get("totconns", 0))
            row[4] += int(st.get("ereq", 0))
            self.stats_rows.append((now, listener, amphora_id, *row))

    def forget(self, amphora_id: str) -> None:
        """The amphora was deleted: its health row goes away."""
        self.last_update.pop(amphora_id, None)
        self.busy.discard(amphora_id)

    def stale_scan(self) -> Generator[simpy.Event, Any, None]:
        """Every ``health_check_interval``: fail over amphorae whose heartbeats stopped."""
        s = self.settings
        while True:
            yield self.env.timeout(s.health_check_interval)
            expired = self.env.now - s.heartbeat_timeout
            stale = [a for a, t in self.last_update.items() if t < expired and a not in self.busy]
            if not stale:
                continue
            if s.failover_threshold is not None and len(stale) >= s.failover_threshold:
                for amp in stale:
                    self.timeline.set(self.env.now, "amphora", amp, "provisioning_status", "FAILOVER_STOPPED")
                continue
            amp = stale[0]
            job, changes = self.cp.lock_for_failover(self.lb_name)
            if job is None:
                continue  # LB not ACTIVE/ERROR: skip this cycle
            self.busy.add(amp)
            self.record(changes)
            if self.on_failover is not None:
                self.on_failover(amp, job)
