"""Benchmark: simulated requests per wall-second, lbsim vs an idiomatic SimPy model.

The standard scenario: 10 members with one slot each, utilisation 0.9, an HTTP health
monitor on every member, Poisson arrivals, exponential service, N requests (default
1,000,000), once per algorithm. In the same process the same scenario runs as the model
a SimPy user would write by hand: one process per request and a ``simpy.Resource`` per
member. The figures printed are simulated requests per wall-second for both, their ratio,
and the peak resident memory of a process that runs the lbsim scenario alone.

Usage: ``python -m lbsim.bench [--requests N] [--members M] [--algorithms A,B]``.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import simpy

from lbsim.api import run_scenario
from lbsim.scenario.loader import parse_scenario

MEAN_SERVICE = 0.01
UTILISATION = 0.9


def bench_scenario(algorithm: str, members: int, requests: int, seed: int = 1) -> Any:
    """The standard benchmark scenario for one algorithm."""
    rate = UTILISATION * members / MEAN_SERVICE
    duration = requests / rate
    rows = "\n".join(
        f"        - {{name: m{i}, address: 10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}, "
        f"protocol_port: 8080, concurrency: 1, service_time: {{dist: exponential, mean: {MEAN_SERVICE}}}}}"
        for i in range(members)
    )
    text = f"""
version: 1
name: bench-{algorithm.lower()}
seed: {seed}
duration: {duration}
loadbalancer:
  name: lb
  listeners: [{{name: l, protocol: HTTP, protocol_port: 80, default_pool: p}}]
  pools:
    - name: p
      protocol: HTTP
      lb_algorithm: {algorithm}
      healthmonitor: {{type: HTTP, delay: 5, timeout: 3, max_retries: 3}}
      members:
{rows}
traffic:
  - {{listener: l, arrival: {{process: poisson, rate: {rate}}}, clients: {{count: 5000, cidr: 198.18.0.0/16}}}}
"""
    return parse_scenario(text, "bench.yaml")


def idiomatic_simpy(algorithm: str, members: int, requests: int, seed: int = 1) -> int:
    """The same scenario as a SimPy user writes it; returns requests completed."""
    rng = random.Random(seed)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(members)]
    active = [0] * members
    done = [0]
    latencies: list[float] = []
    rate = UTILISATION * members / MEAN_SERVICE
    clients = [rng.getrandbits(32) for _ in range(5000)]

    def handle(env: simpy.Environment, idx: int) -> Any:
        t0 = env.now
        active[idx] += 1
        with servers[idx].request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_SERVICE))
        active[idx] -= 1
        latencies.append(env.now - t0)
        done[0] += 1

    def choose_rr() -> Callable[[int], int]:
        state = [0]

        def choose(_src: int) -> int:
            state[0] = (state[0] + 1) % members
            return state[0]

        return choose

    def choose_lc(_src: int) -> int:
        return min(range(members), key=active.__getitem__)

    def choose_src(src: int) -> int:
        return src % members

    choose = {"ROUND_ROBIN": choose_rr(), "LEAST_CONNECTIONS": choose_lc, "SOURCE_IP": choose_src}[
        algorithm
    ]

    def source(env: simpy.Environment) -> Any:
        for _ in range(requests):
            yield env.timeout(rng.expovariate(rate))
            env.process(handle(env, choose(rng.choice(clients))))

    def checker(env: simpy.Environment, offset: float) -> Any:
        yield env.timeout(offset)
        while True:
            yield env.timeout(0.001)  # the check itself
            yield env.timeout(5.0)

    for i in range(members):
        env.process(checker(env, 5.0 * i / members))
    env.process(source(env))
    env.run(until=requests / rate + 60)
    return done[0]


def peak_rss_mb(algorithm: str, members: int, requests: int) -> float:
    """Peak resident memory (MB) of a fresh process that runs the lbsim benchmark once."""
    code = (
        "import resource, sys; from lbsim.bench import bench_scenario; from lbsim.api import run_scenario; "
        f"run_scenario(bench_scenario({algorithm!r}, {members}, {requests})); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0  # ru_maxrss is in KiB on Linux


def measure(algorithm: str, members: int, requests: int) -> dict[str, float]:
    """Both models on one algorithm: requests per wall-second, ratio, lbsim peak memory."""
    sc = bench_scenario(algorithm, members, requests)
    t = time.perf_counter()
    res = run_scenario(sc)
    lbsim_s = time.perf_counter() - t
    peak = peak_rss_mb(algorithm, members, requests)
    n_lbsim = int(res.summary["requests"])
    t = time.perf_counter()
    n_base = idiomatic_simpy(algorithm, members, requests)
    base_s = time.perf_counter() - t
    return {
        "lbsim_rps": n_lbsim / lbsim_s,
        "simpy_rps": n_base / base_s,
        "ratio": (n_lbsim / lbsim_s) / (n_base / base_s),
        "peak_mb": peak,
        "requests": n_lbsim,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark table."""
    p = argparse.ArgumentParser(prog="python -m lbsim.bench", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--algorithms", default="ROUND_ROBIN,LEAST_CONNECTIONS,SOURCE_IP")
    args = p.parse_args(argv)
    print(
        f"{'algorithm':<18} {'members':>7} {'requests':>10} {'lbsim req/s':>12} "
        f"{'simpy req/s':>12} {'ratio':>6} {'peak MB':>8}"
    )
    for alg in args.algorithms.split(","):
        r = measure(alg.strip(), args.members, args.requests)
        print(
            f"{alg:<18} {args.members:>7} {r['requests']:>10,.0f} {r['lbsim_rps']:>12,.0f} "
            f"{r['simpy_rps']:>12,.0f} {r['ratio']:>6.2f} {r['peak_mb']:>8.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
