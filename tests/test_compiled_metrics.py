"""The sparse latency histograms answer exactly as dense per-member histograms would.

A dense reference (one NBINS row per member, filled with the recorder's own binning
rule) is built beside a :class:`LatencyRecorder` fed the same stream in uneven batches,
through both ``add`` and ``extend``, with members added during the run (``grow``) and
recorders merged (``merge``, as multi-load-balancer runs do).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.sim.metrics import _LOG_RATIO, LAT_MIN, NBINS, LatencyRecorder, percentile_from_hist


def bin_of(x: float) -> int:
    """The recorder's bin for latency ``x`` (the rule of LatencyRecorder.flush)."""
    if x <= 0:
        return 0
    b = np.floor(np.log(np.array([x]) / LAT_MIN) / _LOG_RATIO) + 1  # numpy's log, as flush uses
    return min(max(int(b[0]), 0), NBINS - 1)


latencies = st.lists(
    st.tuples(st.integers(-1, 7), st.floats(1e-8, 1e4, allow_nan=False, allow_infinity=False)),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(latencies, st.integers(1, 50), st.integers(0, 3))
def test_sparse_equals_dense(rows: list[tuple[int, float]], batch: int, extra: int) -> None:
    """Summaries and histograms per member, per group and overall match the dense rule."""
    n = 8
    rec = LatencyRecorder(n, 4)
    dense = np.zeros((n + 1 + extra, NBINS), dtype=np.int64)
    for i in range(0, len(rows), batch):
        part = rows[i : i + batch]
        if i % 2:
            for who, x in part:
                rec.add(who, x, 0.5)
        else:
            rec.extend(
                np.array([x for _, x in part], dtype=float),
                np.array([w for w, _ in part], dtype=np.int64),
                np.full(len(part), 0.5),
            )
        rec.flush()
    for who, x in rows:
        dense[n + extra if who < 0 else who, bin_of(x)] += 1
    rec.grow(n + extra)  # members created later: the no-member row moves down
    assert np.array_equal(rec.hist, dense)
    assert np.array_equal(rec.histogram(), dense.sum(axis=0))
    for group in ([0], [3], [1, 2, 5], [n + extra - 1], list(range(n + extra))):
        want = dense[group].sum(axis=0)
        assert np.array_equal(rec.histogram(group), want)
        got = rec.summary(group)
        if got.count:
            for q, value in ((0.5, got.p50), (0.95, got.p95), (0.99, got.p99)):
                assert value == percentile_from_hist(want, q)


def test_memory_grows_with_cells_not_members() -> None:
    """10,000 members with a few requests each keep a few cells, not 240 MB of rows."""
    rec = LatencyRecorder(10_000, 2)
    rng = np.random.default_rng(1)
    n = 50_000
    rec.extend(rng.exponential(0.01, n), rng.integers(0, 10_000, n), np.zeros(n))
    rec.flush()
    assert rec.keys.nbytes + rec.vals.nbytes < 2 * 16 * n
    assert rec.summary([17]).count == int(rec.counts[17])


def test_merge_shifts_members_and_keeps_the_no_member_row() -> None:
    """Merging two recorders equals one recorder fed both streams (rows shifted)."""
    a, b, both = LatencyRecorder(2, 2), LatencyRecorder(3, 2), LatencyRecorder(5, 2)
    for who, x in [(0, 0.01), (1, 0.2), (-1, 3.0), (1, 0.02)]:
        a.add(who, x)
        both.add(who, x)
    for who, x in [(2, 0.5), (-1, 0.001), (0, 0.01)]:
        b.add(who, x)
        both.add(-1 if who < 0 else who + 2, x)
    merged = LatencyRecorder(5, 2)
    merged.merge(a, 0)
    merged.merge(b, 2)
    assert np.array_equal(merged.hist, both.hist)
    assert np.array_equal(merged.counts, both.counts)
    assert np.allclose(merged.sums, both.sums)


def test_large_fold_of_few_members_equals_reference() -> None:
    """A fold large against members x bins takes the dense-count path: same cells."""
    rng = np.random.default_rng(5)
    n = 40_000
    lat = rng.lognormal(-4, 2, n)
    who = rng.integers(-1, 3, n)
    rec = LatencyRecorder(3, 2)
    rec.extend(lat, who, np.zeros(n))
    rec.flush()
    dense = np.zeros((4, NBINS), dtype=np.int64)
    for w, x in zip(who.tolist(), lat.tolist(), strict=True):
        dense[3 if w < 0 else w, bin_of(x)] += 1
    assert np.array_equal(rec.hist, dense)
