"""Streaming measurements: memory stays bounded whatever the simulated time.

Latencies go into log-spaced histograms (relative bin width 1%, so a percentile is
within about 0.5% of the exact order statistic) per member; means are exact sums. Calls
on the hot path only append to two Python lists; the lists are folded into numpy
histograms every :data:`FLUSH` requests. Per-second series (throughput, errors, occupancy)
live in a :class:`SecondWindow`: the last few thousand simulated seconds in memory, every
finished second before them in an anonymous temporary file, so a month-long run holds no
more of them in memory than an hour-long one.

The per-member histograms are sparse: sorted ``member * NBINS + bin`` cells with their
counts, so memory grows with the (member, bin) pairs actually seen, not with members
times bins (a dense row is 24 KB: 240 MB for 10,000 members). A member's cells are
contiguous, so its summary costs a binary search and its own cells only.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, overload

import numpy as np

#: latency histogram range and resolution
LAT_MIN = 1e-7
LAT_MAX = 1e6
RATIO = 1.01
_LOG_RATIO = math.log(RATIO)
NBINS = math.ceil(math.log(LAT_MAX / LAT_MIN) / _LOG_RATIO) + 2  # + under/overflow
FLUSH = 1 << 16
#: simulated seconds between two closings of a run's per-second window (:class:`SecondWindow`):
#: about the number of per-second rows a run keeps in memory
SPILL_EVERY = 4096
#: one finished simulated second as it is spilled: successes, their latency sum, errors, and
#: the occupancy sample (active connections, queued in members, kernel backlog)
ROW = np.dtype(
    [("ok", "<i8"), ("lat", "<f8"), ("err", "<i8"), ("active", "<i4"), ("queued", "<i4"), ("backlog", "<i4")]
)

#: outcome codes; index 0 is success, the rest are error classes
OK = 0


def bin_edges() -> np.ndarray:
    """Lower edges of the latency bins (bin 0 holds everything below LAT_MIN)."""
    k = np.arange(NBINS - 1, dtype=float)
    return np.concatenate([[0.0], LAT_MIN * RATIO**k])


def _bin_mid() -> np.ndarray:
    k = np.arange(NBINS, dtype=float)
    mid = LAT_MIN * RATIO ** (k - 1 + 0.5)
    mid[0] = LAT_MIN / 2
    return mid


_MID = _bin_mid()


@dataclass(frozen=True)
class LatencySummary:
    """Count, mean and percentiles of a latency distribution (seconds)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float

    def as_dict(self) -> dict[str, float]:
        """The contract's ``latency`` object."""
        return {"mean": self.mean, "p50": self.p50, "p95": self.p95, "p99": self.p99}


def percentile_from_hist(hist: np.ndarray, q: float) -> float:
    """The q-quantile (0..1) of a latency histogram, at its bin's geometric midpoint."""
    total = int(hist.sum())
    if total == 0:
        return float("nan")
    rank = max(1, math.ceil(q * total))
    idx = int(np.searchsorted(np.cumsum(hist), rank))
    return float(_MID[min(idx, NBINS - 1)])


class LatencyRecorder:
    """Per-member latency histograms and exact sums, filled from a buffered stream."""

    __slots__ = (
        "_lat",
        "_npend",
        "_pend",
        "_when",
        "_who",
        "counts",
        "keys",
        "n_members",
        "seconds",
        "sums",
        "vals",
    )

    def __init__(self, n_members: int, seconds: int = 1) -> None:
        self.n_members = n_members
        #: sparse histograms: sorted cells ``row * NBINS + bin`` (row n_members: no member)
        #: and their counts
        self.keys = np.zeros(0, dtype=np.int64)
        self.vals = np.zeros(0, dtype=np.int64)
        self.sums = np.zeros(n_members + 1, dtype=float)
        self.counts = np.zeros(n_members + 1, dtype=np.int64)
        #: per simulated second: responses completed and the sum of their latencies (and the
        #: data plane's errors and occupancy samples), seconds past ``seconds - 1`` counted
        #: in the last one
        self.seconds = SecondWindow(max(1, seconds))
        #: arrays handed over by extend() (the compiled data plane), not yet folded
        self._pend: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._npend = 0
        self._lat: list[float] = []
        self._who: list[int] = []
        self._when: list[float] = []

    @property
    def ok_per_second(self) -> np.ndarray:
        """Successes per simulated second over the whole run (a copy read back from the
        spill file and the window: for tests and small runs, not for long ones)."""
        self.flush()
        return self.seconds.rows(0, self.seconds.nsec)["ok"].copy()

    @property
    def lat_per_second(self) -> np.ndarray:
        """The sum of the successes' latencies per simulated second (a copy, as above)."""
        self.flush()
        return self.seconds.rows(0, self.seconds.nsec)["lat"].copy()

    def close_seconds(self, now: float) -> None:
        """Spill the per-second rows before ``now`` that are finished (see :class:`SecondWindow`).

        Called when everything before ``now`` has been recorded. Latencies still in the
        buffer are counted into their rows here without folding the buffer (a fold at
        another point would change the histograms' floating-point sums); the fold that
        comes later leaves the rows already spilled alone.
        """
        if self._pend:
            lat = np.concatenate([np.asarray(self._lat, dtype=float), *(p[0] for p in self._pend)])
            at = np.concatenate([np.asarray(self._when, dtype=float), *(p[2] for p in self._pend)])
        else:
            lat = np.asarray(self._lat, dtype=float)
            at = np.asarray(self._when, dtype=float)
        self.seconds.close(int(now), at, lat)

    def closing(self, env: Any) -> Generator[Any, Any, None]:
        """A SimPy process that closes the per-second rows every :data:`SPILL_EVERY`
        simulated seconds. As a SimPy event it also makes the compiled data plane hand
        over everything before it first (the kernel advances it before each one)."""
        every = SPILL_EVERY
        while True:
            yield env.timeout(every)
            self.close_seconds(env.now)

    def grow(self, n_members: int) -> None:
        """Make room for members added during the run (indices stay stable)."""
        self.flush()
        if n_members <= self.n_members:
            return
        extra = n_members - self.n_members
        none_cells = self.keys >= self.n_members * NBINS  # the last row moves down
        self.keys = np.where(none_cells, self.keys + extra * NBINS, self.keys)
        self.sums = np.concatenate([self.sums[:-1], np.zeros(extra), self.sums[-1:]])
        self.counts = np.concatenate(
            [self.counts[:-1], np.zeros(extra, np.int64), self.counts[-1:]]
        )
        self.n_members = n_members

    def add(self, member: int, latency: float, when: float = 0.0) -> None:
        """Record one latency for member index ``member`` (-1: no member), completed at ``when``."""
        if self._pend:  # keep the order: what extend() gave comes first
            for lat, who, at in self._pend:
                self._lat.extend(lat.tolist())
                self._who.extend(who.tolist())
                self._when.extend(at.tolist())
            self._pend.clear()
            self._npend = 0
        self._lat.append(latency)
        self._who.append(member)
        self._when.append(when)
        if len(self._lat) >= FLUSH:
            self.flush()

    def extend(self, latency: np.ndarray, member: np.ndarray, when: np.ndarray) -> None:
        """Record many latencies at once, exactly as that many :meth:`add` calls would.

        The buffer is folded every :data:`FLUSH` values, at the same points as one
        value at a time, so the floating-point sums come out bit for bit the same. The
        arrays are copied (callers may reuse theirs) and kept as arrays until folded.
        """
        i, n = 0, len(latency)
        while i < n:
            j = min(n, i + FLUSH - len(self._lat) - self._npend)
            self._pend.append((latency[i:j].copy(), member[i:j].astype(np.int64), when[i:j].copy()))
            self._npend += j - i
            if len(self._lat) + self._npend >= FLUSH:
                self.flush()
            i = j

    def flush(self) -> None:
        """Fold buffered values into the histograms (list values first, then arrays:
        :meth:`add` moves pending arrays to the lists, so the order is the order given)."""
        if not self._lat and not self._pend:
            return
        if self._pend:
            lat = np.concatenate([np.asarray(self._lat, dtype=float), *(p[0] for p in self._pend)])
            who = np.concatenate([np.asarray(self._who, dtype=np.int64), *(p[1] for p in self._pend)])
            at = np.concatenate([np.asarray(self._when, dtype=float), *(p[2] for p in self._pend)])
        else:
            lat = np.asarray(self._lat, dtype=float)
            who = np.asarray(self._who, dtype=np.int64)
            at = np.asarray(self._when, dtype=float)
        who[who < 0] = self.n_members
        with np.errstate(divide="ignore"):
            b = np.floor(np.log(np.maximum(lat, 0.0) / LAT_MIN) / _LOG_RATIO) + 1
        b = np.clip(np.nan_to_num(b, neginf=0.0), 0, NBINS - 1).astype(np.int64)
        flat = who * NBINS + b
        span = (self.n_members + 1) * NBINS
        if span <= 4 * len(flat):  # few members: a dense count is cheaper than sorting
            dense = np.bincount(flat, minlength=span)
            cells = np.flatnonzero(dense)
            counts = dense[cells]
        else:
            cells, counts = np.unique(flat, return_counts=True)
        self._add_cells(cells, counts)
        self.sums += np.bincount(who, weights=lat, minlength=self.n_members + 1)
        self.counts += np.bincount(who, minlength=self.n_members + 1)
        self.seconds.add_latencies(at, lat)
        self._lat.clear()
        self._who.clear()
        self._when.clear()
        self._pend.clear()
        self._npend = 0

    def _add_cells(self, cells: np.ndarray, counts: np.ndarray) -> None:
        """Add counts to sorted, distinct cells (inserting the cells not seen before)."""
        keys = self.keys
        pos = np.searchsorted(keys, cells)
        hit = pos < len(keys)
        hit[hit] = keys[pos[hit]] == cells[hit]
        self.vals[pos[hit]] += counts[hit]
        new = ~hit
        if new.any():
            self.keys = np.insert(keys, pos[new], cells[new])
            self.vals = np.insert(self.vals, pos[new], counts[new])

    def _cells(self, rows: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Bins and counts of the given rows' cells (all rows when None), unmerged."""
        if rows is None:
            return self.keys % NBINS, self.vals
        idx = np.asarray(list(rows), dtype=np.int64)
        idx[idx < 0] = self.n_members
        lo = np.searchsorted(self.keys, idx * NBINS)
        hi = np.searchsorted(self.keys, (idx + 1) * NBINS)
        if len(idx) == 1:
            sl = slice(int(lo[0]), int(hi[0]))
            return self.keys[sl] % NBINS, self.vals[sl]
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(idx) else lo
        return self.keys[take] % NBINS, self.vals[take]

    def summary(self, rows: Sequence[int] | None = None) -> LatencySummary:
        """Latency summary over the given member rows (all rows when None)."""
        self.flush()
        if rows is None:
            n = int(self.counts.sum())
            s = float(self.sums.sum())
        else:
            n = int(self.counts[list(rows)].sum())
            s = float(self.sums[list(rows)].sum())
        if n == 0:
            nan = float("nan")
            return LatencySummary(0, nan, nan, nan, nan)
        bins, counts = self._cells(rows)
        if rows is not None and len(rows) == 1:  # one row: its cells are sorted by bin already
            cum = np.cumsum(counts)
            total = int(cum[-1]) if len(cum) else 0

            def pct(q: float) -> float:
                if total == 0:
                    return float("nan")
                k = int(np.searchsorted(cum, max(1, math.ceil(q * total))))
                return float(_MID[min(int(bins[k]), NBINS - 1)])

            return LatencySummary(n, s / n, pct(0.50), pct(0.95), pct(0.99))
        hist = np.bincount(bins, weights=counts, minlength=NBINS).astype(np.int64)
        return LatencySummary(
            n,
            s / n,
            percentile_from_hist(hist, 0.50),
            percentile_from_hist(hist, 0.95),
            percentile_from_hist(hist, 0.99),
        )

    def row_summaries(self, rows: Sequence[int]) -> list[LatencySummary]:
        """``[self.summary([r]) for r in rows]`` with the same values, in a few numpy calls.

        ``members.csv`` needs one summary per member; at 10,000 members calling
        :meth:`summary` per member cost half a second. A member's cells are contiguous
        and sorted by bin, so one running sum over all cells serves every member: the
        k-th smallest latency of member r lies where the running sum first reaches
        ``before_r + k`` (``before_r``: the sum before r's cells), inside r's cells.
        """
        self.flush()
        idx = np.asarray(rows, dtype=np.int64)
        lo = np.searchsorted(self.keys, idx * NBINS)
        hi = np.searchsorted(self.keys, (idx + 1) * NBINS)
        run = np.cumsum(self.vals)
        before = np.where(lo > 0, run[np.maximum(lo - 1, 0)], 0) if len(run) else np.zeros(len(idx), np.int64)
        total = np.where(hi > lo, run[np.maximum(hi - 1, 0)] - before, 0) if len(run) else before
        counts = self.counts[idx].tolist()
        sums = self.sums[idx].tolist()
        pcts = []
        for q in (0.50, 0.95, 0.99):
            want = np.maximum(1, np.ceil(q * total.astype(float))).astype(np.int64)
            k = np.searchsorted(run, before + want) if len(run) else want
            k = np.minimum(k, max(len(run) - 1, 0))
            bins = np.minimum(self.keys[k] % NBINS, NBINS - 1) if len(run) else k
            pcts.append(_MID[bins].tolist() if len(run) else [float("nan")] * len(idx))
        nan = float("nan")
        out = []
        for j, (n, s, t) in enumerate(zip(counts, sums, total.tolist(), strict=True)):
            if n == 0:
                out.append(LatencySummary(0, nan, nan, nan, nan))
            elif t == 0:
                out.append(LatencySummary(n, s / n, nan, nan, nan))
            else:
                out.append(LatencySummary(n, s / n, pcts[0][j], pcts[1][j], pcts[2][j]))
        return out

    def histogram(self, rows: Sequence[int] | None = None) -> np.ndarray:
        """The raw counts per bin (for CDF plots)."""
        self.flush()
        bins, counts = self._cells(rows)
        out = np.zeros(NBINS, dtype=np.int64)
        np.add.at(out, bins, counts)
        return out

    @property
    def hist(self) -> np.ndarray:
        """All histograms as a dense (members + 1) x NBINS array (a copy; large)."""
        self.flush()
        dense = np.zeros((self.n_members + 1) * NBINS, dtype=np.int64)
        dense[self.keys] = self.vals
        return dense.reshape(self.n_members + 1, NBINS)

    def merge(self, other: LatencyRecorder, offset: int) -> None:
        """Add ``other``'s histograms, its member rows shifted by ``offset`` (its no-member
        row to this one's), sums and counts likewise (merging load balancers' data planes)."""
        other.flush()
        self.flush()
        row = other.keys // NBINS
        shifted = np.where(row == other.n_members, self.n_members, row + offset) * NBINS + other.keys % NBINS
        order = np.argsort(shifted, kind="stable")
        cells, inverse = np.unique(shifted[order], return_inverse=True)
        counts = np.bincount(inverse, weights=other.vals[order]).astype(np.int64)
        self._add_cells(cells, counts)
        k = other.n_members
        self.sums[offset : offset + k] += other.sums[:k]
        self.sums[-1] += other.sums[k]
        self.counts[offset : offset + k] += other.counts[:k]
        self.counts[-1] += other.counts[k]


class SecondWindow:
    """One data plane's per-second series over a run: memory for a window of seconds only.

    Every simulated second ``s`` has a :data:`ROW`: successes and the sum of their
    latencies (from :meth:`LatencyRecorder.flush`), errors (``errors[s] += 1``, as on the
    list it replaces) and the ``s``-th occupancy sample (``samples.append``). Rows
    ``[base, base + capacity)`` are numpy columns in memory; :meth:`close` appends the
    finished rows before a given second to an anonymous temporary file (no name in the
    file system, so it goes when the window is dropped, the process ends or is killed)
    and moves the window on. A row is finished when its second is over and its sample
    was taken. :meth:`rows` reads any range back, from the file and the window alike.

    Latency seconds are clamped to ``nsec - 1`` (the last row gathers anything later).
    """

    __slots__ = ("_err", "_file", "_lat", "_occ", "_ok", "base", "errors", "nsamples", "nsec", "samples")

    def __init__(self, nsec: int, capacity: int | None = None) -> None:
        self.nsec = max(1, nsec)
        #: the absolute second of the window's first row; rows before it are in the file
        self.base = 0
        #: occupancy samples taken so far (sample ``k`` belongs to row ``k``)
        self.nsamples = 0
        cap = max(1, min(self.nsec, 2 * SPILL_EVERY + 64) if capacity is None else capacity)
        # zeros are not resident until written
        self._ok = np.zeros(cap, dtype=np.int64)
        self._lat = np.zeros(cap, dtype=float)
        self._err = np.zeros(cap, dtype=np.int64)
        self._occ = np.zeros((cap, 3), dtype=np.int32)
        self._file: IO[bytes] | None = None
        #: the data plane's ``per_second_err`` and ``samples``
        self.errors = ErrorCounts(self)
        self.samples = WindowSamples(self)

    @property
    def capacity(self) -> int:
        """Rows held in memory (the bound the tests check)."""
        return len(self._ok)

    @property
    def spilled(self) -> int:
        """Rows written to the temporary file (all rows before :attr:`base`)."""
        return self.base

    def reserve(self, rows: int) -> None:
        """Make the window at least ``rows`` rows long (doubling)."""
        cap = len(self._ok)
        if rows <= cap:
            return
        extra = max(rows, 2 * cap) - cap
        self._ok = np.concatenate([self._ok, np.zeros(extra, dtype=np.int64)])
        self._lat = np.concatenate([self._lat, np.zeros(extra, dtype=float)])
        self._err = np.concatenate([self._err, np.zeros(extra, dtype=np.int64)])
        self._occ = np.concatenate([self._occ, np.zeros((extra, 3), dtype=np.int32)])

    def _late(self, second: int) -> RuntimeError:
        return RuntimeError(f"per-second row {second} was already written out (window starts at {self.base})")

    def add_latencies(self, at: np.ndarray, lat: np.ndarray) -> None:
        """Count successes completed at times ``at`` with latencies ``lat`` in their seconds.

        Seconds before the window were counted when they were closed (the values were
        still buffered then) and are skipped. Only the seconds the batch touches are
        summed: per second, the batch's values in order, then added to the row, which is
        what :meth:`close` does for rows it finishes early.
        """
        sec = np.minimum(at.astype(np.int64), self.nsec - 1)
        lo = int(sec.min())
        if lo < self.base:
            keep = sec >= self.base
            sec, lat = sec[keep], lat[keep]
            if not len(sec):
                return
            lo = int(sec.min())
        hi = int(sec.max()) + 1
        a, b = lo - self.base, hi - self.base
        self.reserve(b)
        self._ok[a:b] += np.bincount(sec - lo, minlength=b - a)
        self._lat[a:b] += np.bincount(sec - lo, weights=lat, minlength=b - a)

    def close(self, second: int, at: np.ndarray, lat: np.ndarray) -> None:
        """Spill the rows before ``second`` (whose seconds are over) that have their sample.

        ``at`` and ``lat`` are the successes still buffered, not yet given to
        :meth:`add_latencies`: those of the rows closed now are counted into them (the
        same per-second sums the later fold would have made); those of rows closed
        before were counted then.
        """
        upto = min(second, self.nsamples, self.nsec - 1)
        k = upto - self.base
        if k <= 0:
            return
        self.reserve(k)
        sec = np.minimum(at.astype(np.int64), self.nsec - 1)
        mine = (sec >= self.base) & (sec < upto)  # earlier ones: counted at an earlier close
        rel = sec[mine] - self.base
        rows = np.zeros(k, dtype=ROW)
        rows["ok"] = self._ok[:k] + np.bincount(rel, minlength=k)
        rows["lat"] = self._lat[:k] + np.bincount(rel, weights=lat[mine], minlength=k)
        rows["err"] = self._err[:k]
        rows["active"], rows["queued"], rows["backlog"] = self._occ[:k].T
        self._append(rows)
        for col in (self._ok, self._lat, self._err, self._occ):
            col[:-k] = col[k:]
            col[-k:] = 0
        self.base = upto

    def _append(self, rows: np.ndarray) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="lbsim-seconds-")  # noqa: SIM115 (kept open)
        self._file.seek(0, 2)
        self._file.write(rows.tobytes())

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a :data:`ROW` array (zeros where nothing was recorded)."""
        stop = max(start, stop)
        out = np.zeros(stop - start, dtype=ROW)
        a, b = start, min(stop, self.base)
        if a < b:
            assert self._file is not None
            self._file.seek(a * ROW.itemsize)
            data = self._file.read((b - a) * ROW.itemsize)
            out[: b - a] = np.frombuffer(data, dtype=ROW)
        a, b = max(start, self.base), min(stop, self.base + len(self._ok))
        if a < b:
            i, j, o = a - self.base, b - self.base, a - start
            out["ok"][o : o + j - i] = self._ok[i:j]
            out["lat"][o : o + j - i] = self._lat[i:j]
            out["err"][o : o + j - i] = self._err[i:j]
            occ = self._occ[i:j]
            out["active"][o : o + j - i] = occ[:, 0]
            out["queued"][o : o + j - i] = occ[:, 1]
            out["backlog"][o : o + j - i] = occ[:, 2]
        return out

    @property
    def length(self) -> int:
        """Rows that may hold something: the run's seconds, or further if written further."""
        return max(self.nsec, self.base + _last_written(self) + 1, self.nsamples)

    @classmethod
    def filled(cls, ok: np.ndarray, lat: np.ndarray, err: np.ndarray) -> SecondWindow:
        """A window holding the given columns whole (no samples), for a live world's results."""
        n = len(ok)
        w = cls(n, capacity=n)
        w._ok[:] = ok
        w._lat[:] = lat
        w._err[:] = err[:n]
        return w

    @classmethod
    def sum_of(cls, parts: Sequence[SecondWindow], chunk: int = 1 << 16) -> SecondWindow:
        """The row-by-row sum of several windows (load balancers merged into one result),
        written to a new window's file chunk by chunk (parts added in order)."""
        n = max((p.length for p in parts), default=1)
        out = cls(n, capacity=1)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            total = np.zeros(stop - start, dtype=ROW)
            for p in parts:
                r = p.rows(start, stop)
                for name in ROW.names or ():
                    total[name] += r[name]
            out._append(total)
        out.base = n
        out.nsamples = max((p.nsamples for p in parts), default=0)
        return out

    def discard(self) -> None:
        """Close the temporary file now (the window is of no further use)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _last_written(w: SecondWindow) -> int:
    """The window's last row with anything in it (-1: none)."""
    used = np.flatnonzero(w._ok | w._err | (w._lat != 0) | w._occ.any(axis=1))
    return int(used[-1]) if len(used) else -1


class ErrorCounts:
    """A window's errors per second, indexed by absolute second like the list it replaces
    (any second is in range); the data plane counts with :meth:`bump`."""

    __slots__ = ("_w",)

    def __init__(self, window: SecondWindow) -> None:
        self._w = window

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, sec: int) -> int:
        w = self._w
        i = sec - w.base
        if i < 0:
            raise w._late(sec)
        return int(w._err[i]) if i < len(w._err) else 0

    def __setitem__(self, sec: int, value: int) -> None:
        w = self._w
        i = sec - w.base
        if i < 0:
            raise w._late(sec)
        if i >= len(w._err):
            w.reserve(i + 1)
        w._err[i] = value

    def bump(self, sec: int) -> None:
        """Count one error in second ``sec`` (the data plane's error path: one call)."""
        w = self._w
        i = sec - w.base
        if i >= 0:
            try:
                w._err[i] += 1
                return
            except IndexError:  # past the window: grow it
                pass
        self[sec] = self[sec] + 1

    def tolist(self) -> list[int]:
        """Every second's count over the run (for tests)."""
        w = self._w
        return [int(v) for v in w.rows(0, w.length)["err"]]

    def __eq__(self, other: object) -> bool:
        return self.tolist() == other.tolist() if isinstance(other, ErrorCounts) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


class WindowSamples:
    """A window's occupancy samples: ``append`` puts sample ``k`` in row ``k``; reading
    (``len``, iteration, indexing) behaves like a list of ``(active, queued, backlog)`` tuples, over the whole run."""

    __slots__ = ("_w",)

    def __init__(self, window: SecondWindow) -> None:
        self._w = window

    def append(self, row: tuple[int, int, int]) -> None:
        """Add the next sample."""
        w = self._w
        i = w.nsamples - w.base
        if i >= len(w._occ):
            w.reserve(i + 1)
        w._occ[i] = row
        w.nsamples += 1

    def extend(self, rows: Sequence[tuple[int, int, int]]) -> None:
        """Add several samples."""
        for row in rows:
            self.append(row)

    def _all(self) -> np.ndarray:
        r = self._w.rows(0, self._w.nsamples)
        return np.stack([r["active"], r["queued"], r["backlog"]], axis=1)

    def __len__(self) -> int:
        return self._w.nsamples

    def __bool__(self) -> bool:
        return self._w.nsamples > 0

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        for row in self._all().tolist():
            yield (row[0], row[1], row[2])

    @overload
    def __getitem__(self, i: int) -> tuple[int, int, int]: ...
    @overload
    def __getitem__(self, i: slice) -> np.ndarray: ...
    def __getitem__(self, i: int | slice) -> tuple[int, int, int] | np.ndarray:
        if isinstance(i, slice):
            return self._all()[i]
        n = self._w.nsamples
        if not -n <= i < n:
            raise IndexError("sample index out of range")
        a, b, c = self._all()[i].tolist()
        return (a, b, c)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (WindowSamples, list)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class SecondSeries:
    """Per-simulated-second counters (requests completed, errors, ...)."""

    __slots__ = ("data", "names")

    def __init__(self, duration: float, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.data = np.zeros((math.ceil(duration) + 1, len(names)), dtype=np.int64)

    def add(self, t: float, column: int, n: int = 1) -> None:
        """Count ``n`` in the second containing ``t``."""
        self.data[int(t), column] += n
