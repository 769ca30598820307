"""Result tables that grow with simulated time, read from the run in chunks.

``timeseries.csv`` has a row per simulated second and ``stats.csv`` one per heartbeat and
listener: a month-long run has millions. The run keeps them in temporary files
(:class:`lbsim.sim.metrics.SecondWindow`, :class:`lbsim.octavia.healthmanager.StatsRows`),
and here they stay there: :class:`TimeseriesRows` and :class:`StatsTable` write the CSV a
piece at a time and build a DataFrame only when one is asked for. :class:`_LazyTable` is
the :class:`~lbsim.results.folder.RunResult` field that holds either.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lbsim.octavia.healthmanager import StatsRows
from lbsim.sim.engine import RawRun
from lbsim.sim.metrics import SecondWindow

STATS_COLUMNS = [
    "time",
    "listener",
    "amphora",
    "bytes_in",
    "bytes_out",
    "active_connections",
    "total_connections",
    "request_errors",
]


class UnbuiltTable:
    """A result table that is read from the run in chunks rather than held whole
    (:class:`TimeseriesRows`, :class:`StatsTable`): built on demand, written in pieces."""

    def frame(self) -> pd.DataFrame:
        """The whole table."""
        raise NotImplementedError

    def write_csv(self, path: Path) -> None:
        """Write the table as ``DataFrame.to_csv(index=False)`` would, a piece at a time."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (or deep-copied) as the DataFrame: the temporary files stay here."""
        return (pd.DataFrame, (self.frame(),))


_REQUIRED = object()


class _LazyTable:
    """A :class:`RunResult` field that may hold an :class:`UnbuiltTable` until first read.

    Reading the attribute builds the DataFrame then (and keeps it); :meth:`RunResult.save`
    writes an unbuilt table in chunks instead, so saving a long run never holds its
    per-second or per-heartbeat table in memory. Assigning a DataFrame works as for any
    field.
    """

    def __init__(self, default: Any = _REQUIRED) -> None:
        self.default = default

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}"

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            if self.default is _REQUIRED:  # no class-level default: the field stays required
                raise AttributeError(self.key)
            return self.default
        value = obj.__dict__[self.key]
        if isinstance(value, UnbuiltTable):
            value = obj.__dict__[self.key] = value.frame()
        return value

    def __set__(self, obj: object, value: pd.DataFrame | UnbuiltTable | None) -> None:
        obj.__dict__[self.key] = value

    def raw(self, obj: object) -> pd.DataFrame | UnbuiltTable | None:
        """The value as stored (an unbuilt table stays unbuilt)."""
        return obj.__dict__[self.key]


def _write_table(value: pd.DataFrame | UnbuiltTable, path: Path) -> None:
    if isinstance(value, UnbuiltTable):
        value.write_csv(path)
    else:
        value.to_csv(path, index=False, lineterminator="\n")


TIMESERIES_COLUMNS = ["second", "ok", "errors", "mean_latency", "active", "queued", "backlog"]
#: rows of ``timeseries.csv`` (and ``stats.csv``) formatted at a time when written from a
#: run: pandas turns every value of a piece into a string first, and larger pieces left
#: the allocator holding more (a 30-day save peaked 28 MB higher with 65,536 rows)
CSV_CHUNK = 1 << 13


class TimeseriesRows(UnbuiltTable):
    """The contract's ``timeseries.csv`` table of a finished run, read in chunks.

    One row per simulated second ``[0, n)``, from the run's per-second rows
    (:class:`lbsim.sim.metrics.SecondWindow`: a temporary file and a window in memory),
    so :meth:`write_csv` streams a month-long run's 2.6 million rows to disk a chunk at a
    time and :meth:`frame` builds the DataFrame only when someone asks for it. A row's
    values depend on its second only, so the file is the same bytes whatever the chunks.
    """

    def __init__(self, seconds: SecondWindow, n: int) -> None:
        self.seconds = seconds
        self.n = n

    def __len__(self) -> int:
        return self.n

    def columns(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Rows ``[start, stop)`` column by column, as in the table."""
        rows = self.seconds.rows(start, stop)
        okv = rows["ok"]
        mean_lat = rows["lat"].copy()
        # mean latency where a second had successes, else NaN; in place, no temporaries
        has_ok = okv > 0
        np.divide(mean_lat, okv, out=mean_lat, where=has_ok)
        mean_lat[~has_ok] = np.nan
        np.round(mean_lat, 9, out=mean_lat)
        return {
            "second": np.arange(start, stop, dtype=np.int64),
            "ok": okv.astype(np.int64),
            "errors": rows["err"].astype(np.int64),
            "mean_latency": mean_lat,
            "active": rows["active"].astype(np.int64),
            "queued": rows["queued"].astype(np.int64),
            "backlog": rows["backlog"].astype(np.int64),
        }

    def chunks(self, size: int | None = None) -> Iterator[pd.DataFrame]:
        """The table in pieces of ``size`` rows (at least one piece, maybe empty)."""
        size = max(1, size or CSV_CHUNK)
        for start in range(0, max(self.n, 1), size):
            yield pd.DataFrame(self.columns(start, min(self.n, start + size)), copy=False)

    def frame(self) -> pd.DataFrame:
        """The whole table, built column by column into preallocated arrays that pandas
        takes without a copy (each column held once)."""
        cols = {
            name: np.empty(self.n, dtype=float if name == "mean_latency" else np.int64) for name in TIMESERIES_COLUMNS
        }
        step = 1 << 14  # small pieces: the temporaries stay a fraction of the columns
        for start in range(0, self.n, step):
            stop = min(self.n, start + step)
            for name, values in self.columns(start, stop).items():
                cols[name][start:stop] = values
        return pd.DataFrame(cols, copy=False)

    def write_csv(self, path: Path, chunk: int | None = None) -> None:
        """Write ``timeseries.csv`` a chunk at a time (what ``DataFrame.to_csv`` writes)."""
        with open(path, "w", encoding="utf-8", newline="") as f:
            for k, part in enumerate(self.chunks(chunk)):
                part.to_csv(f, index=False, header=k == 0, lineterminator="\n")


def timeseries_rows(raw: RawRun) -> TimeseriesRows:
    """The contract's ``timeseries.csv`` table of a raw run (one row per simulated second),
    unbuilt: see :class:`TimeseriesRows`."""
    raw.dp.latency.flush()
    return TimeseriesRows(raw.dp.latency.seconds, math.ceil(raw.duration))


def timeseries_frame(raw: RawRun) -> pd.DataFrame:
    """The contract's ``timeseries.csv`` table as a DataFrame (built whole)."""
    return timeseries_rows(raw).frame()


class StatsTable(UnbuiltTable):
    """The contract's ``stats.csv`` table of a run's compact history, read in chunks
    (:meth:`StatsRows.chunks <lbsim.octavia.healthmanager.StatsRows.chunks>`)."""

    def __init__(self, rows: StatsRows) -> None:
        self.rows = rows

    def frame(self) -> pd.DataFrame:
        return stats_frame(self.rows)

    def write_csv(self, path: Path, chunk: int | None = None) -> None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            for k, cols in enumerate(self.rows.chunks(chunk or CSV_CHUNK)):
                part = pd.DataFrame(dict(zip(STATS_COLUMNS, cols, strict=True)), copy=False)
                part.to_csv(f, index=False, header=k == 0, lineterminator="\n")


def stats_table(rows: Any) -> pd.DataFrame | StatsTable:
    """``stats.csv`` of a run: unbuilt for a history that went to disk (a long run with an
    end, whose rows no longer change), else the DataFrame now (short runs; a live world's
    history, which goes on changing; merged load balancers' lists of rows)."""
    return StatsTable(rows) if isinstance(rows, StatsRows) and rows.spilled else stats_frame(rows)


def stats_frame(rows: Any) -> pd.DataFrame:
    """The contract's ``stats.csv`` table from the health manager's history.

    Compact histories (:class:`~lbsim.octavia.healthmanager.StatsRows`) go in column by
    column; merged multi-LB histories are plain lists of tuples.
    """
    if isinstance(rows, StatsRows):
        return pd.DataFrame(dict(zip(STATS_COLUMNS, rows.columns(), strict=True)), copy=False)
    return pd.DataFrame(rows, columns=STATS_COLUMNS)
