"""Memory stays compact over long simulated times (issue 15, "memory flat in simulated time").

The tests measure allocations with tracemalloc (numpy reports its buffers to it), not
wall time: a regression to per-row tuples or padded copies fails them on any machine.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.octavia.healthmanager import StatsRows
from lbsim.results.folder import STATS_COLUMNS, stats_frame, timeseries_frame
from lbsim.scenario.loader import parse_scenario
from lbsim.sim.world import simulate

ROOT = Path(__file__).resolve().parent.parent

row_st = st.tuples(
    st.floats(0, 1e7, allow_nan=False),
    st.sampled_from(["http", "https", "l3"]),
    st.sampled_from(["amphora-1", "amphora-2"]),
    *(st.integers(0, 2**62) for _ in range(5)),
)


@given(rows=st.lists(row_st, max_size=600), keep=st.integers(0, 700))
@settings(max_examples=60, deadline=None)
def test_stats_rows_behave_like_the_list_they_replace(rows: list[tuple[Any, ...]], keep: int) -> None:
    compact = StatsRows(capacity=4)  # small: the doubling is exercised
    ref: list[tuple[Any, ...]] = []
    for r in rows:
        compact.append(r)
        ref.append(r)
    assert len(compact) == len(ref) and bool(compact) == bool(ref)
    assert list(compact) == ref
    if ref:
        assert compact[0] == ref[0] and compact[-1] == ref[-1]
        assert compact[len(ref) // 2 :] == ref[len(ref) // 2 :]
    cut = slice(-keep) if keep else slice(None)  # world.py trims with del rows[:-kept]
    del compact[cut]
    del ref[cut]
    assert list(compact) == ref
    compact.append((1.5, "http", "amphora-9", 1, 2, 3, 4, 5))
    ref.append((1.5, "http", "amphora-9", 1, 2, 3, 4, 5))
    assert list(compact) == ref
    expected = pd.DataFrame(ref, columns=STATS_COLUMNS)
    got = stats_frame(compact)
    assert got.to_csv(index=False) == expected.to_csv(index=False)


def test_stats_rows_cost_under_80_bytes_a_row() -> None:
    """A list of tuples cost about 240 bytes a heartbeat row (17 bytes a simulated second)."""
    rows = StatsRows()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(16_384):  # a power of two: the arrays are full
            rows.append((k * 10.0, "http", "amphora-1", 10**9 + k, 10**10 + k, 3, 10**6 + k, 0))
        per_row = (tracemalloc.get_traced_memory()[0] - before) / 16_384
    finally:
        tracemalloc.stop()
    assert per_row < 80, per_row


def _reference_timeseries(raw: Any) -> pd.DataFrame:
    """The table as it was built before (padded concatenations), for comparison."""
    dp = raw.dp
    n = math.ceil(raw.duration)
    dp.latency.flush()
    okv = np.concatenate([dp.latency.ok_per_second, np.zeros(n, np.int64)])[:n]
    errv = np.asarray((dp.per_second_err.tolist() + [0] * n)[:n], dtype=np.int64)
    latv = np.concatenate([dp.latency.lat_per_second, np.zeros(n)])[:n]
    samples = np.zeros((n, 3), dtype=np.int64)
    if dp.samples:
        arr = np.asarray(dp.samples[:n], dtype=np.int64)
        samples[: len(arr)] = arr
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_lat = np.where(okv > 0, latv / np.maximum(okv, 1), np.nan)
    return pd.DataFrame(
        {
            "second": np.arange(n),
            "ok": okv,
            "errors": errv,
            "mean_latency": np.round(mean_lat, 9),
            "active": samples[:, 0],
            "queued": samples[:, 1],
            "backlog": samples[:, 2],
        }
    )


def test_timeseries_is_built_without_copies_and_unchanged() -> None:
    """Two simulated days of stochastic-day: the per-second table is the same bytes as
    before, and building it allocates little more than its seven columns."""
    text = (ROOT / "scenarios/failures/stochastic-day.yaml").read_text()
    text = text.replace("duration: 86400", "duration: 172800").replace("rate: 20}", "rate: 2}")
    text = text.replace("fault: refuse}", "fault: error}")  # faulty members answer 500s: errors
    raw = simulate(parse_scenario(text, "long.yaml"))
    expected = _reference_timeseries(raw)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        got = timeseries_frame(raw)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    n = 172800
    assert len(got) == n
    assert got.to_csv(index=False, lineterminator="\n") == expected.to_csv(index=False, lineterminator="\n")
    columns = 7 * 8 * n
    assert peak < 1.3 * columns, (peak, columns)  # the padded build peaked above 2.5x
    assert int(got["errors"].sum()) > 0  # the columns are really filled
    assert int(got["ok"].sum()) == raw.dp.ok
    assert got["mean_latency"].isna().any()  # seconds without a success
