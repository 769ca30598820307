"""Issue 14, data loss and leaks: kills during ``--out`` replacement and during sweeps.

* ``--out`` onto an existing folder: a child process saves over the folder again and
  again and is SIGKILLed at random moments; after every kill the folder must be complete
  (its manifest verifies), old or new, and the next save removes the dead child's
  temporary folder.
* ``lbsim sweep --jobs 2`` killed with SIGKILL: no worker survives its parent (slow:
  real processes, some ten seconds). A worker killed while still importing lbsim exits
  as soon as its initializer runs, before it simulates anything.
* ``lbsim sweep --dask local``: TLS with a temporary certificate, loopback, random ports,
  no HTTP routes (slow: starts a Dask cluster).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim.api import run_scenario
from lbsim.results.manifest import verify
from lbsim.scenario.loader import parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_killed_replacement_always_leaves_a_complete_folder(tmp_path: Path, scenario_dict: dict[str, Any]) -> None:
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    out = tmp_path / "res"
    result.save(out)
    rng = random.Random(14)
    for _ in range(12):
        pid = os.fork()
        if pid == 0:  # child: replace the folder for ever
            try:
                while True:
                    result.save(out)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert verify(out), "the result folder lost its manifest"
        assert (out / "summary.json").is_file()
    result.save(out)  # cleans up what the killed children left
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "res"]
    assert leftovers == []


def _children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out:
                out.add(k)
                todo.append(k)
    return out


def _is_worker(pid: int) -> bool:
    try:
        return "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PR_SET_PDEATHSIG")
def test_killed_sweep_leaves_no_worker(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "scenarios/experiments/small-web.yaml").read_text())
    data["duration"] = 20000  # each run takes ~20 s: the workers are busy when the kill comes
    data["expect"] = []
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbsim.cli", "sweep", str(f), "-r", "4", "-j", "2", "-q", "--out", str(tmp_path / "sw")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = {p for p in _children(proc.pid) if _is_worker(p)}
        assert len(workers) >= 2, "the sweep never started its workers"
        time.sleep(5)  # let them import lbsim and start simulating (a run takes ~20 s)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 3  # far less than a run: only PDEATHSIG ends them this fast
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "a sweep worker outlived its parent"
        store = tmp_path / "sw" / "store"
        assert not store.exists() or not list(store.glob("*.json")), "a worker stored a run after the kill"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_local_dask_cluster_is_private() -> None:
    from distributed import Client

    from lbsim.experiments.engines import Engine

    with Engine(jobs=1, dask="local") as engine:
        scheduler, *workers = engine.dask_addresses()
        assert scheduler.startswith("tls://127.0.0.1:") and not scheduler.endswith(":8786")
        assert all(w.startswith("tls://127.0.0.1:") for w in workers)
        http = engine._cluster.scheduler.http_server
        assert http.port != 8787
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError):  # no routes: not even /info or /health
            urllib.request.urlopen(f"http://127.0.0.1:{http.port}/health", timeout=5)
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do: no certificate
            Client(scheduler.replace("tls://", "tcp://"), timeout="3s")
