"""Per-second rows and heartbeat statistics spilled to disk during a run (issue 15, part 5:
"memory flat in simulated time").

The result files must be the same bytes whatever the spill sizes, the memory a run holds
for them must stay within its window however long the run, and the temporary files must
leave nothing behind.
"""

from __future__ import annotations

import functools
import gc
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.api import run_scenario
from lbsim.octavia import healthmanager
from lbsim.results import folder, lazy
from lbsim.scenario.loader import parse_scenario
from lbsim.sim import dataplane, metrics
from lbsim.sim.metrics import ROW, SecondWindow
from lbsim.sim.world import simulate

FILES = (
    "summary.json", "members.csv", "transitions.csv", "status.json", "timeseries.csv",
    "latency.csv", "api.csv", "expectations.csv", "incidents.csv", "stats.csv",
)  # fmt: skip

#: members fail and come back (errors, transitions, incidents), 4 heartbeats a minute
FLAKY = """
version: 1
name: flaky
seed: 7
duration: {duration}
warmup: 3
loadbalancer:
  name: lb1
  listeners:
    - {{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}}
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {{type: HTTP, delay: 5, timeout: 2, max_retries: 2, max_retries_down: 2}}
      members:
        - {{name: a, address: 10.0.0.1, protocol_port: 80, concurrency: 2, service_time: {{dist: exponential, mean: 0.2}}}}
        - {{name: b, address: 10.0.0.2, protocol_port: 80, concurrency: 2, service_time: {{dist: exponential, mean: 0.2}}}}
traffic:
  - {{listener: http, arrival: {{process: poisson, rate: {rate}}}}}
failures:
  - {{pool: web, mttf: {{dist: exponential, mean: 300}}, mttr: {{dist: exponential, mean: 60}}, fault: error}}
"""

#: two load balancers on one clock: their per-second rows are added up
TWO_LBS = """
version: 1
name: two
seed: 3
duration: 900.5
loadbalancers:
  - name: lb1
    listeners: [{name: l1, protocol: HTTP, protocol_port: 80, default_pool: p1}]
    pools:
      - name: p1
        protocol: HTTP
        lb_algorithm: ROUND_ROBIN
        healthmonitor: {type: HTTP, delay: 5, timeout: 2, max_retries: 2}
        members: [{name: m1, address: 10.0.0.1, protocol_port: 80, service_time: {dist: exponential, mean: 0.05}}]
  - name: lb2
    listeners: [{name: l2, protocol: HTTP, protocol_port: 80, default_pool: p2}]
    pools:
      - name: p2
        protocol: HTTP
        lb_algorithm: LEAST_CONNECTIONS
        members: [{name: m2, address: 10.0.1.1, protocol_port: 80, service_time: {dist: exponential, mean: 0.3}}]
traffic:
  - {listener: l1, arrival: {process: poisson, rate: 3}}
  - {listener: l2, arrival: {process: poisson, rate: 5}}
events:
  - {at: 200, member: m1, behaviour: error, status: 503}
  - {at: 500, member: m1, behaviour: healthy}
"""

NEVER = 1 << 40  # a spill size no test run reaches: everything stays in memory


def _files(text: str, out: Path, **patches: int) -> dict[str, bytes]:
    """Run ``text`` with the spill sizes given, save it, and read its result files."""
    targets = {
        "every": (metrics, "SPILL_EVERY"),
        "stats": (healthmanager, "STATS_SPILL_ROWS"),
        "chunk": (lazy, "CSV_CHUNK"),
    }
    with mock.patch.object(metrics, "FLUSH", patches.pop("flush", metrics.FLUSH)):
        flush = metrics.FLUSH
        with mock.patch.object(dataplane, "FLUSH", flush):
            ctx = [mock.patch.object(*targets[k], v) for k, v in patches.items()]
            for c in ctx:
                c.start()
            try:
                res = run_scenario(parse_scenario(text, "spill.yaml"), scenario_yaml=text)
                res.save(out)
            finally:
                for c in ctx:
                    c.stop()
    return {name: (out / name).read_bytes() for name in FILES if (out / name).exists()}


PROPERTY_RUN = FLAKY.format(duration=900.5, rate=4)


@functools.cache
def _kept_in_memory(flush: int) -> dict[str, bytes]:
    """The result files of :data:`PROPERTY_RUN` with nothing spilled (once per ``flush``)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _files(PROPERTY_RUN, Path(tmp) / "whole", every=NEVER, stats=NEVER, chunk=NEVER, flush=flush)


@given(
    every=st.integers(1, 500),
    stats=st.integers(1, 120),
    chunk=st.integers(1, 2000),
    flush=st.sampled_from([7, 500, metrics.FLUSH]),
)
@settings(max_examples=10, deadline=None)
def test_result_files_do_not_depend_on_spill_sizes(every: int, stats: int, chunk: int, flush: int) -> None:
    """Spilling every few seconds (latencies still buffered, folded before or after a
    close), heartbeat rows a few at a time, CSV pieces of any size: the same bytes as a
    run that keeps everything in memory."""
    whole = _kept_in_memory(flush)
    with tempfile.TemporaryDirectory() as tmp:
        spilled = _files(PROPERTY_RUN, Path(tmp) / "spilled", every=every, stats=stats, chunk=chunk, flush=flush)
    assert set(whole) == set(FILES)
    for name in FILES:
        assert spilled[name] == whole[name], name
    rows = whole["timeseries.csv"].decode().splitlines()
    assert len(rows) == 1 + 901
    ts = [r.split(",") for r in rows[1:]]
    assert sum(int(r[2]) for r in ts) > 0 and sum(int(r[1]) for r in ts) > 0  # errors and successes


def test_several_load_balancers_add_up_their_spilled_rows(tmp_path: Path) -> None:
    whole = _files(TWO_LBS, tmp_path / "whole", every=NEVER, stats=NEVER)
    spilled = _files(TWO_LBS, tmp_path / "spilled", every=37, stats=5, chunk=100)
    assert spilled == whole
    ts = pd.read_csv(tmp_path / "spilled" / "timeseries.csv")
    assert len(ts) == 901 and ts["errors"].sum() > 0
    assert ts["active"].sum() > 0  # both load balancers' samples


def test_compiled_data_plane_spills_the_same_rows(tmp_path: Path) -> None:
    pytest.importorskip("numba", reason="the compiled data plane needs numba (a dependency of lbsim)")
    text = FLAKY.format(duration=2000, rate=30).split("failures:")[0]  # the compiled path: no failures
    sc = parse_scenario(text, "c.yaml")
    outs = []
    for engine, every in (("exact", NEVER), ("compiled", 113)):
        with mock.patch.object(metrics, "SPILL_EVERY", every):
            raw = simulate(sc, engine=engine)
        assert (raw.dp.compiled is not None) == (engine == "compiled")
        assert (raw.dp.latency.seconds.spilled > 0) == (engine == "compiled")
        res = folder.summarise(raw, text)
        res.save(tmp_path / engine)
        outs.append({name: (tmp_path / engine / name).read_bytes() for name in FILES})
    assert outs[0] == outs[1]


def test_memory_held_for_the_series_stays_within_the_window() -> None:
    """A run 40 times longer than the window: the per-second rows in memory never exceed
    it, nor the heartbeat rows theirs; everything before is in the files."""
    every, kept = 256, 48
    capacities: list[int] = []
    real_close = SecondWindow.close

    def close(self: SecondWindow, second: int, at: np.ndarray, lat: np.ndarray) -> None:
        capacities.append(self.capacity)
        real_close(self, second, at, lat)
        assert second - self.base <= 2  # all but the second in progress (and its sample)

    text = FLAKY.format(duration=every * 40, rate=0.5)
    with (
        mock.patch.object(metrics, "SPILL_EVERY", every),
        mock.patch.object(healthmanager, "STATS_SPILL_ROWS", kept),
        mock.patch.object(SecondWindow, "close", close),
    ):
        raw = simulate(parse_scenario(text, "long.yaml"))
    window = raw.dp.latency.seconds
    assert len(capacities) == 39
    assert max(capacities) <= 2 * every + 64 and window.capacity <= 2 * every + 64
    assert window.spilled >= every * 39 - 2
    rows = raw.stats_rows
    assert len(rows._time) <= kept and len(rows) > 20 * kept  # type: ignore[attr-defined]
    assert rows._spilled == len(rows) - rows._n  # type: ignore[attr-defined]
    ts = folder.timeseries_frame(raw)
    assert int(ts["ok"].sum()) == raw.dp.ok  # nothing lost in the files


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def test_spill_files_leave_nothing_behind(tmp_path: Path) -> None:
    """The files have no name (nothing in the temporary folder, even while a run holds
    them) and are closed with the run's objects, also after an interrupted run."""
    text = FLAKY.format(duration=3000, rate=1)
    gc.collect()
    before = _open_fds()
    with (
        mock.patch.object(tempfile, "tempdir", str(tmp_path)),
        mock.patch.object(metrics, "SPILL_EVERY", 100),
        mock.patch.object(healthmanager, "STATS_SPILL_ROWS", 16),
    ):
        res = run_scenario(parse_scenario(text, "t.yaml"))  # the Python API: no folder at all
        assert list(tmp_path.iterdir()) == []
        assert len(res.timeseries) == 3000 and int(res.timeseries["ok"].sum()) == res.summary["ok"]

        def stop(frac: float) -> None:
            if frac >= 0.5:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            run_scenario(parse_scenario(text, "t.yaml"), progress=stop)
        assert list(tmp_path.iterdir()) == []
    del res
    gc.collect()
    assert _open_fds() <= before


def test_lazy_tables_equal_the_saved_files(tmp_path: Path) -> None:
    text = FLAKY.format(duration=1200, rate=2)
    with mock.patch.object(metrics, "SPILL_EVERY", 50), mock.patch.object(healthmanager, "STATS_SPILL_ROWS", 8):
        res = run_scenario(parse_scenario(text, "lazy.yaml"), scenario_yaml=text)
    assert isinstance(folder._lazy("timeseries").raw(res), folder.TimeseriesRows)  # not built yet
    assert isinstance(folder._lazy("stats").raw(res), folder.StatsTable)
    fresh = pickle.loads(pickle.dumps(res))  # unbuilt tables pickle as their DataFrames
    res.save(tmp_path / "a")  # streamed from the files
    fresh.save(tmp_path / "p")
    ts, stats = res.timeseries, res.stats  # built now
    assert stats is not None
    pd.testing.assert_frame_equal(ts, pd.read_csv(tmp_path / "a" / "timeseries.csv"))
    pd.testing.assert_frame_equal(stats, pd.read_csv(tmp_path / "a" / "stats.csv"))
    res.save(tmp_path / "b")  # from the DataFrames now
    for name in ("timeseries.csv", "stats.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "p" / name).read_bytes()
    again = pickle.loads(pickle.dumps(res))  # the files stay behind: DataFrames travel
    pd.testing.assert_frame_equal(again.timeseries, ts)
    pd.testing.assert_frame_equal(again.stats, stats)
    res.timeseries = ts.head(3)  # a field like any other
    assert len(res.timeseries) == 3


# ---------------------------------------------------------------------------- the window alone

step_st = st.tuples(
    st.integers(0, 3),  # seconds the clock moves on
    st.lists(st.floats(0, 5, allow_nan=False), max_size=6),  # successes completing now
    st.integers(0, 2),  # errors now
    st.sampled_from(["none", "fold", "close", "both"]),
)


@given(steps=st.lists(step_st, max_size=80), cap=st.integers(1, 40), nsec=st.integers(1, 150))
@settings(max_examples=150, deadline=None)
def test_window_rows_equal_whole_arrays(steps: list[Any], cap: int, nsec: int) -> None:
    """Any interleaving of buffered successes, folds, errors, samples and closes gives the
    rows whole arrays give (the per-second latency sums bit for bit), and closes spill
    exactly the finished rows."""
    w = SecondWindow(nsec, capacity=cap)
    ok = np.zeros(nsec + 400, dtype=np.int64)
    lat = np.zeros(nsec + 400, dtype=float)
    err = np.zeros(nsec + 400, dtype=np.int64)
    occ: list[tuple[int, int, int]] = []
    buf_at: list[float] = []
    buf_lat: list[float] = []
    now = 0.0

    def fold() -> None:
        if not buf_at:
            return
        at, la = np.asarray(buf_at), np.asarray(buf_lat)
        sec = np.minimum(at.astype(np.int64), nsec - 1)
        lo, hi = int(sec.min()), int(sec.max()) + 1
        ok[lo:hi] += np.bincount(sec - lo, minlength=hi - lo)
        lat[lo:hi] += np.bincount(sec - lo, weights=la, minlength=hi - lo)
        w.add_latencies(at, la)
        buf_at.clear()
        buf_lat.clear()

    for move, lats, errs, action in steps:
        for _ in range(move):  # a sample at the start of every second
            row = (len(occ) % 7, len(occ) % 3, 1)
            occ.append(row)
            w.samples.append(row)
            now = float(len(occ))
        for k, x in enumerate(lats):
            buf_at.append(now + k * 0.1)
            buf_lat.append(x)
        for k in range(errs):  # as the data plane counts (bump), or as on a list
            if k % 2:
                w.errors[int(now)] += 1
            else:
                w.errors.bump(int(now))
            err[int(now)] += 1
        if action in ("fold", "both"):
            fold()
        if action in ("close", "both"):
            before = w.base
            w.close(int(now), np.asarray(buf_at, dtype=float), np.asarray(buf_lat, dtype=float))
            assert w.base == max(before, min(int(now), len(occ), nsec - 1))  # the finished rows
    fold()
    n = len(ok)
    got = w.rows(0, n)
    assert got["ok"].tolist() == ok.tolist()
    assert got["lat"].tobytes() == lat.tobytes()
    assert got["err"].tolist() == err.tolist()
    samples = np.zeros((n, 3), dtype=np.int32)
    if occ:
        samples[: len(occ)] = occ
    assert np.stack([got["active"], got["queued"], got["backlog"]], axis=1).tolist() == samples.tolist()
    assert list(w.samples) == occ
    assert got.dtype == ROW


def test_a_write_to_a_spilled_second_is_refused() -> None:
    """Rows on disk are final: a count for one of their seconds is a bug, and says so."""
    w = SecondWindow(100, capacity=4)
    for _ in range(10):
        w.samples.append((1, 2, 3))
    w.errors.bump(9)
    w.close(8, np.zeros(0), np.zeros(0))
    assert w.base == 8 and w.spilled == 8
    with pytest.raises(RuntimeError, match="already written out"):
        w.errors.bump(7)
    with pytest.raises(RuntimeError, match="already written out"):
        w.errors[3] += 1
    w.errors.bump(60)  # past the window: it grows
    assert w.rows(0, 100)["err"].tolist() == [0] * 9 + [1] + [0] * 50 + [1] + [0] * 39
