"""Engines that execute missing runs: serially, on local processes, or on Dask."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from lbsim.experiments.common import ProgressCallback, die_with_parent
from lbsim.experiments.design import RunSpec
from lbsim.experiments.runs import execute_run
from lbsim.experiments.store import RunStore

# --------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------


def local_cluster(workers: int, dashboard: bool = False) -> tuple[Any, Any]:
    """A Dask ``LocalCluster`` only this process can use, and its client security.

    Dask's scheduler runs whatever a connected client submits, so an open local scheduler
    lets any user of the machine run code as the lbsim user. Here every connection is
    mutual TLS with a throw-away certificate (``Security.temporary()``, held in memory:
    only this process and the workers it starts have it), the scheduler and workers
    listen on 127.0.0.1 on ports the OS picks, and the scheduler's HTTP server (health,
    metrics and, when asked, the dashboard) also binds 127.0.0.1 on a random port, with
    no routes at all unless ``dashboard`` is True.
    """
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    security = Security.temporary()
    routes = dask.config.get("distributed.scheduler.http.routes") if dashboard else []
    with dask.config.set({"distributed.scheduler.http.routes": routes}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            protocol="tls://",
            security=security,
            dashboard_address="127.0.0.1:0" if dashboard else None,
            worker_dashboard_address=None,
            scheduler_kwargs={"dashboard": dashboard, "dashboard_address": "127.0.0.1:0"},
        )
    return cluster, security


class RunFailed(RuntimeError):
    """Some runs raised; the others finished and are stored (a rerun retries the failed)."""

    def __init__(self, failures: list[tuple[RunSpec, str]]):
        lines = [f"point {s.point} replication {s.replication} (seed {s.seed}): {e}" for s, e in failures]
        super().__init__(f"{len(failures)} run(s) failed:\n" + "\n".join(lines))
        self.failures = failures


class Engine:
    """Where runs execute: serially, on local processes, or on a Dask cluster.

    ``jobs``: worker count (None = every core; 1 = serial in this process unless
    ``dask`` is given). ``dask``: ``"local"`` for a ``LocalCluster`` bound to 127.0.0.1
    (no dashboard), or a scheduler address such as ``tcp://10.0.0.5:8786``. Remote Dask
    workers need lbsim installed and return their records to this process, which stores
    them; local workers store their own. Use as a context manager to reuse the pool or
    cluster across several sweeps (``plan`` does).
    """

    def __init__(self, jobs: int | None = None, dask: str | None = None):
        if jobs is not None and jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs = jobs
        self.dask = dask
        self._pool: Any = None
        self._client: Any = None
        self._cluster: Any = None

    @property
    def workers(self) -> int:
        """How many runs can execute at once."""
        return self.jobs or os.cpu_count() or 1

    @property
    def kind(self) -> str:
        """``serial``, ``processes`` or ``dask``."""
        if self.dask:
            return "dask"
        return "serial" if self.workers == 1 else "processes"

    def describe(self) -> str:
        """A short description for logs and reports."""
        if self.dask:
            return f"dask ({'LocalCluster on 127.0.0.1' if self.dask == 'local' else self.dask})"
        return "serial" if self.kind == "serial" else f"{self.workers} local processes"

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down the process pool or Dask client/cluster, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _dask_client(self) -> Any:
        if self._client is None:
            from distributed import Client

            if self.dask == "local":
                self._cluster, security = local_cluster(self.workers)
                self._client = Client(self._cluster, security=security)
            else:
                self._client = Client(self.dask, timeout="20s")
        return self._client

    def dask_addresses(self) -> list[str]:
        """The Dask scheduler's address followed by its workers' (starts the client)."""
        if not self.dask:
            return []
        info = self._dask_client().scheduler_info()
        return [str(info["address"]), *sorted(str(w) for w in info["workers"])]

    def run(
        self, specs: Sequence[RunSpec], store: RunStore, progress: ProgressCallback | None = None
    ) -> dict[str, dict[str, Any]]:
        """Execute the specs not yet in ``store``; return every record by key.

        Specs sharing a key (the same run asked twice) execute once.
        """
        unique: dict[str, RunSpec] = {}
        for s in specs:
            unique.setdefault(s.key, s)
        total = len(unique)
        store.clean_stale()
        records: dict[str, dict[str, Any]] = {}
        todo: list[RunSpec] = []
        for key, s in unique.items():
            if store.has(key):
                records[key] = store.get(key)
            else:
                todo.append(s)
        done = len(records)
        if progress:
            progress(done, total)
        failures: list[tuple[RunSpec, str]] = []
        for spec, rec, err in self._execute(todo, store):
            if err is not None:
                failures.append((spec, err))
            else:
                assert rec is not None
                store.put(rec)  # no-op when the worker stored it
                records[spec.key] = rec
            done += 1
            if progress:
                progress(done, total)
        if failures:
            raise RunFailed(failures)
        return records

    def _execute(
        self, todo: list[RunSpec], store: RunStore
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        if not todo:
            return
        folder = str(store.folder)
        if self.dask:
            yield from self._execute_dask(todo, folder)
        elif self.workers == 1 or len(todo) == 1:
            for s in todo:
                try:
                    yield s, execute_run(s, folder), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        else:
            yield from self._execute_processes(todo, folder)

    def _execute_processes(
        self, todo: list[RunSpec], folder: str
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            # spawn: no fork of a process that may be running a progress-bar thread; workers
            # die with this process (a killed sweep leaves no orphan writing to the store)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        futures = {self._pool.submit(execute_run, s, folder): s for s in todo}
        try:
            for fut in as_completed(futures):
                s = futures[fut]
                try:
                    yield s, fut.result(), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        finally:
            for fut in futures:
                fut.cancel()

    def _execute_dask(
        self, todo: list[RunSpec], folder: str
    ) -> Iterator[tuple[RunSpec, dict[str, Any] | None, str | None]]:
        from distributed import as_completed

        client = self._dask_client()
        target = folder if self.dask == "local" else None
        futures = [
            client.submit(execute_run, s, target, pure=False, key=f"lbsim-run-{s.key}-{time.time_ns()}") for s in todo
        ]
        by_key = {f.key: s for f, s in zip(futures, todo, strict=True)}
        try:
            for fut in as_completed(futures):
                s = by_key[fut.key]
                try:
                    yield s, fut.result(), None
                except Exception as exc:
                    yield s, None, f"{type(exc).__name__}: {exc}"
        finally:
            for fut in futures:
                fut.cancel()
