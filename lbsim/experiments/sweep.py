"""Experiments: parameter sweeps with replications, reproducible seeds, engines, CI tables.

A *sweep* runs a scenario at every point of a parameter grid, ``replications`` times per
point, and tabulates one row per run and one row per grid point (mean and Student-t
confidence interval of every metric). The pieces, in the order a sweep uses them:

* **Overrides** -- ``path=v1,v2,...`` where ``path`` is a dotted scenario path with list
  indices (``loadbalancer.pools.0.lb_algorithm``, ``traffic.0.arrival.rate``,
  ``octavia.heartbeat_interval``; ``pools[0]`` is accepted too). Values are YAML
  scalars or flow collections (``{dist: exponential, mean: 0.02}``). Every grid point is
  applied to the scenario and validated exactly as a scenario file is, *before* anything
  runs, so that a bad value is reported with the path it came from.
* **Seeds** -- derived from a hash of the scenario's content, the grid point and the
  replication number, so any single run can be reproduced alone: the stored run carries
  its scenario with ``seed`` set to the derived seed, and ``lbsim run`` on it gives the
  same numbers. With common random numbers (``crn=True``, used by ``compare`` and
  ``plan``) the grid point is left out of the seed: replication *r* of every point sees
  the same arrivals and service demands, because lbsim draws each random quantity from
  its own named stream (:func:`lbsim.sim.distributions.stream`).
* **Store** -- every finished run is written atomically (temporary file, then rename)
  under a key that hashes its inputs: the scenario after overrides (seed included), the
  contents of files it reads (traces, empirical samples) and the lbsim version. A rerun
  skips what is stored, so a sweep killed half-way loses only the runs that were in
  flight. ``executed.log`` gets one line per run actually simulated.
* **Engines** -- :class:`Engine` runs the missing runs serially, on local processes
  (``concurrent.futures.ProcessPoolExecutor``, the default, one per core), or on Dask
  (a ``distributed.LocalCluster`` on 127.0.0.1, or a scheduler address). Tables are
  built from the stored records in grid order, so they are identical whatever the engine.

Confidence intervals are ``mean ± t(1-α/2, n-1)·s/√n`` over the replications of a point
(Student t; the t quantile is computed here so that scipy is not needed).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lbsim._version import __version__
from lbsim.experiments.common import BASE_METRICS, STORE_DIR, ProgressCallback
from lbsim.experiments.design import Design, Override, Point, design, grid, parse_set, scenario_data
from lbsim.experiments.engines import Engine
from lbsim.experiments.store import RunStore
from lbsim.experiments.tables import points_table, runs_table
from lbsim.scenario import model as m

# --------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """A finished experiment: tables, per-run records and where they were written."""

    runs: pd.DataFrame
    points: pd.DataFrame
    meta: dict[str, Any]
    records: dict[str, dict[str, Any]] = field(repr=False)
    executed: int = 0
    reused: int = 0
    out: Path | None = None

    @property
    def labels(self) -> list[str]:
        """The parameter (label) columns."""
        cols = list(self.runs.columns)
        return cols[cols.index("replication") + 1 : cols.index("seed")]

    def latency_histogram(self, point: int) -> np.ndarray:
        """The latency histogram of a grid point, summed over its replications
        (bins of :func:`lbsim.sim.metrics.bin_edges`; runs missing from the store are skipped)."""
        from lbsim.sim.metrics import NBINS

        total = np.zeros(NBINS, dtype=np.int64)
        for key in self.runs.loc[self.runs["point"] == point, "key"]:
            if str(key) not in self.records:
                continue
            h = self.records[str(key)]["latency_hist"]
            np.add.at(total, np.asarray(h["bins"], dtype=np.int64), np.asarray(h["counts"], dtype=np.int64))
        return total

    def members(self) -> pd.DataFrame:
        """Per-member rows of every stored run: point, replication, labels, then members.csv's columns."""
        frames = []
        labels = self.labels
        for _, r in self.runs.iterrows():
            if str(r["key"]) not in self.records:
                continue
            df = pd.DataFrame(self.records[str(r["key"])]["members"])
            df.insert(0, "point", int(r["point"]))
            df.insert(1, "replication", int(r["replication"]))
            for j, lab in enumerate(labels):
                df.insert(2 + j, lab, r[lab])
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def scenario_of(self, point: int, replication: int = 0) -> m.Scenario:
        """The exact scenario of one run (its ``seed`` is the run's seed): run it alone to reproduce it."""
        row = self.runs[(self.runs["point"] == point) & (self.runs["replication"] == replication)]
        return m.Scenario.model_validate(self.records[str(row["key"].iloc[0])]["scenario"])


def run_design(
    design_: Design,
    *,
    out: Path | None = None,
    engine: Engine | None = None,
    progress: ProgressCallback | None = None,
    confidence: float = 0.95,
    kind: str = "sweep",
    extra_meta: Mapping[str, Any] | None = None,
    scenario_text: str | None = None,
    store: RunStore | None = None,
) -> SweepResult:
    """Execute a design (skipping stored runs) and build, and with ``out`` write, its tables.

    Runs are stored in ``store``, by default ``out/store`` (a temporary folder without
    ``out``, removed afterwards).
    """
    import tempfile

    own_engine = engine is None
    eng = engine or Engine()
    tmpdir = None
    if store is None and out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="lbsim-sweep-")
        store = RunStore(Path(tmpdir.name) / STORE_DIR)
    elif store is None:
        assert out is not None
        store = RunStore(Path(out) / STORE_DIR)
    try:
        before = set(store.keys())
        records = eng.run(design_.specs, store, progress)
    finally:
        if own_engine:
            eng.close()
    wanted = {s.key for s in design_.specs}
    reused = len(wanted & before)
    runs = runs_table(design_, records)
    points = points_table(runs, confidence)
    first = records[design_.specs[0].key]
    meta: dict[str, Any] = {
        "kind": kind,
        "scenario": design_.scenario.name,
        "scenario_hash": design_.base_hash,
        "parameters": list(design_.points[0].label) if design_.points else [],
        "grid": [{"point": p.index, "label": p.label, "set": p.assign} for p in design_.points],
        "replications": design_.replications,
        "confidence": confidence,
        "crn": design_.crn,
        "runs": len(design_.specs),
        "lbsim_version": __version__,
        "metrics": dict(BASE_METRICS),
        "expectations": [e["description"] for e in first["expectations"]],
        "incidents": [f"{i['kind']} {i['target']} at {i['fault_time']:g} s" for i in first["incidents"]],
        "duration": design_.scenario.duration,
        "warmup": design_.scenario.warmup,
        **(dict(extra_meta) if extra_meta else {}),
    }
    result = SweepResult(runs, points, meta, records, len(wanted) - reused, reused, None)
    if out is not None:
        result.out = save_tables(
            result, Path(out), scenario_text or yaml.safe_dump(scenario_data(design_.scenario), sort_keys=False)
        )
    if tmpdir is not None:
        tmpdir.cleanup()
    return result


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_tables(result: SweepResult, out: Path, scenario_text: str) -> Path:
    """Write runs/points as parquet and CSV, ``<kind>.json`` and the base scenario, atomically."""
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (("runs", result.runs), ("points", result.points)):

        def parquet(p: Path, d: pd.DataFrame = df) -> None:
            d.to_parquet(p, index=False)

        def csv(p: Path, d: pd.DataFrame = df) -> None:
            d.to_csv(p, index=False, lineterminator="\n")

        _atomic_write(out / f"{name}.parquet", parquet)
        _atomic_write(out / f"{name}.csv", csv)
    meta_text = json.dumps(result.meta, indent=2, default=str) + "\n"
    _atomic_write(out / "experiment.json", lambda p: p.write_text(meta_text, encoding="utf-8"))
    _atomic_write(out / "scenario.yaml", lambda p: p.write_text(scenario_text, encoding="utf-8"))
    return out


def load_experiment(folder: Path) -> SweepResult:
    """Read a folder written by a sweep, compare or plan (tables, metadata and stored runs)."""
    folder = Path(folder)
    meta = json.loads((folder / "experiment.json").read_text(encoding="utf-8"))
    runs = pd.read_parquet(folder / "runs.parquet")
    points = pd.read_parquet(folder / "points.parquet")
    store = RunStore(folder / STORE_DIR)
    records = {str(k): store.get(str(k)) for k in runs["key"] if store.has(str(k))}
    return SweepResult(runs, points, meta, records, 0, len(records), folder)


def sweep(
    scenario: m.Scenario,
    overrides: Sequence[Override | str],
    *,
    replications: int = 5,
    out: Path | None = None,
    jobs: int | None = None,
    dask: str | None = None,
    engine: Engine | None = None,
    base_dir: Path | None = None,
    crn: bool = False,
    confidence: float = 0.95,
    progress: ProgressCallback | None = None,
    scenario_text: str | None = None,
) -> SweepResult:
    """Run ``scenario`` at every grid point of ``overrides`` (``Override`` or ``"path=v1,v2"``)
    ``replications`` times; with ``out``, store runs there (resumable) and write the tables.

    Every grid point is validated before anything runs (:class:`OverrideError`).
    """
    ovs = [o if isinstance(o, Override) else parse_set(o) for o in overrides]
    pts = grid(ovs) if ovs else [Point(0, {}, {})]
    d = design(scenario, pts, replications, base_dir=base_dir, crn=crn)
    eng = engine or Engine(jobs=jobs, dask=dask)
    try:
        return run_design(d, out=out, engine=eng, progress=progress, confidence=confidence, scenario_text=scenario_text)
    finally:
        if engine is None:
            eng.close()


@contextlib.contextmanager
def rich_progress(description: str, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A rich progress bar (completed/total, elapsed, time left) as a progress callback."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True, emoji=False, highlight=False),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
