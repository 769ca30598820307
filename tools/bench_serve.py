"""Benchmark of ``lbsim serve`` (a script, not a test): API latency under concurrent clients
while the twin simulates traffic, and how far simulated time lags the clock at several speeds.

    python tools/bench_serve.py [--clients 100] [--seconds 20] [--rate 1000] [--speeds 1,10,60]

1. ``lbsim serve`` of the bundled default scenario with its listener's traffic raised to
   ``--rate`` requests/s, at ``--speed 1``; ``--clients`` concurrent HTTP clients read the API
   (load balancer show, pool member list, status tree, in turn) for ``--seconds``: p50/p99
   latency and requests/s.
2. For each speed: the same twin at that speed, no API clients; every 0.5 s the clock is read:
   the lag is how far the simulation is behind where the clock says it should be, and the
   achieved rate is simulated seconds per wall second.

Everything runs on loopback; the server is stopped at the end (Ctrl-C, as a user would).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _scenario(rate: float, folder: Path) -> Path:
    doc = yaml.safe_load((ROOT / "scenarios" / "default.yaml").read_text())
    doc["traffic"][0]["arrival"] = {"process": "poisson", "rate": rate}
    doc["events"] = []
    doc["expect"] = []
    doc["duration"] = 100000
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _start(scenario: Path, speed: float, port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "lbsim.cli.main", "serve", str(scenario), "--speed", str(speed), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("lbsim serve did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _clients(endpoint: str, n: int, seconds: float) -> tuple[list[float], int]:
    async with httpx.AsyncClient(base_url=endpoint, timeout=60, limits=httpx.Limits(max_connections=n)) as c:
        lb = (await c.get("/v2.0/lbaas/loadbalancers")).json()["loadbalancers"][0]["id"]
        pool = (await c.get("/v2.0/lbaas/pools")).json()["pools"][0]["id"]
        paths = [f"/v2.0/lbaas/loadbalancers/{lb}", f"/v2.0/lbaas/pools/{pool}/members",
                 f"/v2.0/lbaas/loadbalancers/{lb}/status"]  # fmt: skip
        latencies: list[float] = []
        errors = 0
        stop = time.monotonic() + seconds

        async def one(k: int) -> None:
            nonlocal errors
            i = k
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = await c.get(paths[i % len(paths)])
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200
                i += 1

        await asyncio.gather(*(one(k) for k in range(n)))
        return latencies, errors


def _lag(endpoint: str, seconds: float) -> tuple[float, float, float]:
    samples = []
    first = httpx.get(endpoint + "/lbsim/v1/clock", timeout=60).json()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        samples.append(httpx.get(endpoint + "/lbsim/v1/clock", timeout=60).json())
    wall = time.monotonic() - t0
    lags = [s["target"] - s["now"] for s in samples]
    rate = (samples[-1]["now"] - first["now"]) / wall
    return statistics.mean(lags), max(lags), rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="simulated client requests per second")
    ap.add_argument("--speeds", default="1,10,60")
    ap.add_argument("--port", type=int, default=9871)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = _scenario(args.rate, Path(tmp))
        endpoint = f"http://127.0.0.1:{args.port}"
        proc = _start(scenario, 1.0, args.port)
        try:
            time.sleep(2.0)
            latencies, errors = asyncio.run(_clients(endpoint, args.clients, args.seconds))
            clock = httpx.get(endpoint + "/lbsim/v1/clock", timeout=60).json()
        finally:
            _stop(proc)
        q = statistics.quantiles(latencies, n=100)
        print(f"API at speed 1, twin simulating {args.rate:g} req/s, {args.clients} concurrent clients, "
              f"{args.seconds:g} s: {len(latencies) / args.seconds:.0f} req/s, p50 {q[49] * 1000:.1f} ms, "
              f"p99 {q[98] * 1000:.1f} ms, {errors} non-200; "
              f"sim lag at the end {clock['target'] - clock['now']:.2f} s")  # fmt: skip
        for speed in (float(x) for x in args.speeds.split(",")):
            proc = _start(scenario, speed, args.port)
            try:
                mean, worst, rate = _lag(endpoint, args.seconds)
            finally:
                _stop(proc)
            print(f"speed {speed:g}: simulated {rate:.1f} s per wall second (asked {speed:g}); "
                  f"lag behind the clock mean {mean:.2f} s, max {worst:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
