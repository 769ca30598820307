"""Benchmark: simulated requests per CPU-second and per wall-second, lbsim against baselines.

The standard scenario: M members (default 10) with one slot each, utilisation 0.9, an
HTTP health monitor on every member, Poisson arrivals, exponential service, N requests,
once per algorithm. Four models of it are timed:

- ``exact``: lbsim's engine (``run_scenario`` on the parsed scenario: simulation and
  summary; parsing is outside the timing);
- ``compiled``: the same run with lbsim's compiled steady-state data plane, when numba
  is installed and the scenario is one it covers (the column is absent otherwise);
- ``simpy``: the model a SimPy user writes by hand, one process per request and a
  ``simpy.Resource`` per member;
- ``heapq``: a hand-written event loop of the same queueing model on a ``heapq``
  calendar, the floor a pure-Python discrete-event simulation can reach.

Every measurement runs in a fresh interpreter (started with ``subprocess``), which times
itself with ``time.process_time`` and ``time.perf_counter`` around the run only and
reports its own peak resident memory from ``/proc/self/status`` (``VmHWM``). ``VmHWM``
belongs to the process's own address space, so unlike ``ru_maxrss`` it does not carry
the parent's high-water mark across fork and exec. Measurements are interleaved
(repetition by repetition, algorithm by algorithm, model by model) so that load from
other processes on the machine spreads over all models alike; the table gives the
median of the repetitions.

The scaling curve runs the exact engine on 10, 100, 1,000 and 10,000 members with the
same number of requests and times the whole run including parsing the YAML and setting
up the members, relative to 10 members.

Usage: ``python -m lbsim.bench [--requests N] [--members M] [--algorithms A,B]
[--repeat R] [--scale-requests N] [--no-scale]``; ``--memory`` prints only the peak
memory of a 1-hour and a 30-day ``failures/stochastic-day``-like run (fresh processes)
and the growth from one to the other (the per-second rows and heartbeat statistics go to
temporary files during the run, so it should stay within 20 MB).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

MEAN_SERVICE = 0.01
UTILISATION = 0.9
CHECK_DELAY = 5.0
CLIENTS = 5000
ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
MODELS = ("exact", "compiled", "simpy", "heapq")
SCALE_MEMBERS = (10, 100, 1000, 10000)


def bench_yaml(algorithm: str, members: int, requests: int, seed: int = 1) -> str:
    """The standard benchmark scenario for one algorithm, as YAML text."""
    rate = UTILISATION * members / MEAN_SERVICE
    duration = requests / rate
    rows = "\n".join(
        f"        - {{name: m{i}, address: 10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}, "
        f"protocol_port: 8080, concurrency: 1, service_time: {{dist: exponential, mean: {MEAN_SERVICE}}}}}"
        for i in range(members)
    )
    return f"""
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
      healthmonitor: {{type: HTTP, delay: {CHECK_DELAY:g}, timeout: 3, max_retries: 3}}
      members:
{rows}
traffic:
  - {{listener: l, arrival: {{process: poisson, rate: {rate}}}, clients: {{count: {CLIENTS}, cidr: 198.18.0.0/16}}}}
"""


def bench_scenario(algorithm: str, members: int, requests: int, seed: int = 1) -> Any:
    """The standard benchmark scenario for one algorithm, parsed."""
    from lbsim.scenario.loader import parse_scenario

    return parse_scenario(bench_yaml(algorithm, members, requests, seed), "bench.yaml")


def _chooser(algorithm: str, members: int, active: list[int]) -> Callable[[int], int]:
    """The baselines' member choice: rotation, fewest active, source modulo."""
    if algorithm == "ROUND_ROBIN":
        state = [0]

        def choose_rr(_src: int) -> int:
            state[0] = (state[0] + 1) % members
            return state[0]

        return choose_rr
    if algorithm == "LEAST_CONNECTIONS":
        return lambda _src: min(range(members), key=active.__getitem__)
    return lambda src: src % members


def idiomatic_simpy(algorithm: str, members: int, requests: int, seed: int = 1) -> int:
    """The scenario as a SimPy user writes it; returns the number of requests completed."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(members)]
    active = [0] * members
    done = [0]
    latencies: list[float] = []
    rate = UTILISATION * members / MEAN_SERVICE
    clients = [rng.getrandbits(32) for _ in range(CLIENTS)]
    choose = _chooser(algorithm, members, active)

    def handle(env: simpy.Environment, idx: int) -> Any:
        t0 = env.now
        active[idx] += 1
        with servers[idx].request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0 / MEAN_SERVICE))
        active[idx] -= 1
        latencies.append(env.now - t0)
        done[0] += 1

    def source(env: simpy.Environment) -> Any:
        for _ in range(requests):
            yield env.timeout(rng.expovariate(rate))
            env.process(handle(env, choose(rng.choice(clients))))

    def checker(env: simpy.Environment, offset: float) -> Any:
        yield env.timeout(offset)
        while True:
            yield env.timeout(0.001)  # the check itself
            yield env.timeout(CHECK_DELAY)

    for i in range(members):
        env.process(checker(env, CHECK_DELAY * i / members))
    env.process(source(env))
    env.run(until=requests / rate + 60)
    return done[0]


def heapq_loop(algorithm: str, members: int, requests: int, seed: int = 1) -> int:
    """The same model as a hand-written ``heapq`` event loop; returns requests completed.

    Events are ``(time, seq, kind, member)`` tuples: an arrival, a completion, a health
    check. Each member has one slot and a FIFO queue of arrival times; latencies go to
    a list, as in the SimPy model.
    """
    rng = random.Random(seed)
    rate = UTILISATION * members / MEAN_SERVICE
    clients = [rng.getrandbits(32) for _ in range(CLIENTS)]
    active = [0] * members
    busy = [False] * members
    queues: list[deque[float]] = [deque() for _ in range(members)]
    started = [0.0] * members
    choose = _chooser(algorithm, members, active)
    latencies: list[float] = []
    expo = rng.expovariate
    mu = 1.0 / MEAN_SERVICE
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    cal: list[tuple[float, int, int, int]] = [(expo(rate), 0, 0, 0)]
    for i in range(members):
        seq += 1
        push(cal, (CHECK_DELAY * i / members, seq, 2, i))
    end = requests / rate + 60
    arrived = 0
    while cal:
        t, _, kind, i = pop(cal)
        if t >= end:
            break
        seq += 1
        if kind == 0:  # arrival
            arrived += 1
            m = choose(rng.choice(clients))
            active[m] += 1
            if busy[m]:
                queues[m].append(t)
            else:
                busy[m] = True
                started[m] = t
                push(cal, (t + expo(mu), seq, 1, m))
            if arrived < requests:
                seq += 1
                push(cal, (t + expo(rate), seq, 0, 0))
        elif kind == 1:  # completion
            latencies.append(t - started[i])
            active[i] -= 1
            q = queues[i]
            if q:
                started[i] = q.popleft()
                push(cal, (t + expo(mu), seq, 1, i))
            else:
                busy[i] = False
        else:  # a health check, then the next one
            push(cal, (t + 0.001 + CHECK_DELAY, seq, 2, i))
    return len(latencies)


# ---------------------------------------------------------------------------- measuring


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def compiled_available() -> bool:
    """Whether the compiled data plane can run here (numba importable)."""
    from lbsim.sim.compiled import available

    return available()


def run_one(model: str, algorithm: str, members: int, requests: int, whole: bool = False) -> dict[str, float]:
    """Run one model once in this process and time it (what the child process does).

    ``whole`` times parsing and set-up too (the scaling curve).
    """
    if model in ("exact", "compiled"):
        from lbsim.api import run_scenario
        from lbsim.scenario.loader import parse_scenario

        text = bench_yaml(algorithm, members, requests)
        kw: dict[str, Any] = {"engine": model}  # "exact" even where "auto" would compile
        if model == "compiled":  # compile outside the timing (numba caches to disk too)
            run_scenario(parse_scenario(bench_yaml(algorithm, 4, 2000), "warm.yaml"), scenario_yaml=text, **kw)
        sc = None if whole else parse_scenario(text, "bench.yaml")
        c0, w0 = time.process_time(), time.perf_counter()
        if sc is None:
            sc = parse_scenario(text, "bench.yaml")
        res = run_scenario(sc, scenario_yaml=text, **kw)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        n = int(res.summary["requests"])
    else:
        fn = idiomatic_simpy if model == "simpy" else heapq_loop
        c0, w0 = time.process_time(), time.perf_counter()
        n = fn(algorithm, members, requests)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"requests": n, "cpu": cpu, "wall": wall, "peak_mb": _peak_mb()}


def long_run_peaks(duration: float, rate: float = 0.5) -> dict[str, float]:
    """Peak memory (MB) of a ``failures/stochastic-day``-like run of ``duration`` seconds
    while it runs, while its tables are built and while they are saved (this process).

    The peak is reset between phases (``/proc/self/clear_refs``), so each figure is that
    phase's own high-water mark; run it in a fresh process (:func:`memory_table`).
    """
    import tempfile
    from pathlib import Path

    from lbsim.results.folder import summarise
    from lbsim.scenario.loader import parse_scenario
    from lbsim.sim.world import simulate

    def reset() -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
        except OSError:  # not Linux: the peaks are then cumulative
            pass

    text = (Path(__file__).resolve().parent.parent / "scenarios/failures/stochastic-day.yaml").read_text()
    text = text.replace("duration: 86400", f"duration: {duration:g}").replace("rate: 20}", f"rate: {rate:g}}}")
    sc = parse_scenario(text, "long.yaml")
    reset()
    raw = simulate(sc)
    out = {"run": _peak_mb()}
    reset()
    res = summarise(raw, text)
    out["tables"] = _peak_mb()
    reset()
    with tempfile.TemporaryDirectory() as d:
        res.save(Path(d) / "out")
    out["save"] = _peak_mb()
    return out


def memory_table() -> None:
    """Print the long-run peaks for one hour and 30 days, each in a fresh process."""
    print("peak MB (VmHWM, fresh process), failures/stochastic-day at 0.5 requests/s")
    print(f"{'duration':>10} {'running':>8} {'tables':>8} {'saving':>8}")
    peaks = []
    for label, duration in (("1 hour", 3600.0), ("30 days", 30 * 86400.0)):
        code = f"import json; from lbsim.bench import long_run_peaks; print(json.dumps(long_run_peaks({duration})))"
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        p = json.loads(out.stdout.strip().splitlines()[-1])
        peaks.append(p)
        print(f"{label:>10} {p['run']:>8.0f} {p['tables']:>8.0f} {p['save']:>8.0f}", flush=True)
    # issue 15's target: memory flat in simulated time (30 days within 20 MB of an hour)
    d = {k: peaks[1][k] - peaks[0][k] for k in ("run", "tables", "save")}
    print(f"{'growth':>10} {d['run']:>+8.0f} {d['tables']:>+8.0f} {d['save']:>+8.0f}", flush=True)


def measure(model: str, algorithm: str, members: int, requests: int, whole: bool = False) -> dict[str, float]:
    """Run one model once in a fresh interpreter and return its timings and peak memory."""
    code = (
        "import json, sys; from lbsim.bench import run_one; "
        f"print(json.dumps(run_one({model!r}, {algorithm!r}, {members}, {requests}, {whole})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r["requests"] / r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark table and the scaling curve."""
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="python -m lbsim.bench", description=doc.splitlines()[0])
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--algorithms", default=",".join(ALGORITHMS))
    p.add_argument("--models", default=",".join(MODELS), help="subset of " + ",".join(MODELS))
    p.add_argument("--repeat", type=int, default=3, help="repetitions (the table shows medians)")
    p.add_argument("--scale-requests", type=int, default=200_000, help="requests per point of the scaling curve")
    p.add_argument("--no-scale", action="store_true", help="skip the scaling curve")
    p.add_argument("--memory", action="store_true", help="only the long-run memory table (1 hour vs 30 days)")
    args = p.parse_args(argv)
    if args.memory:
        memory_table()
        return 0
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS] + [a for a in algorithms if a not in ALGORITHMS]
    if bad:
        p.error(f"unknown model or algorithm: {', '.join(bad)}")
    if "compiled" in models and not compiled_available():
        print("(compiled path unavailable: numba is not installed)", file=sys.stderr, flush=True)
        models.remove("compiled")
    results: dict[tuple[str, str], list[dict[str, float]]] = {(a, m): [] for a in algorithms for m in models}
    for _ in range(args.repeat):
        for alg in algorithms:
            for model in models:
                results[(alg, model)].append(measure(model, alg, args.members, args.requests))
    print(
        f"{args.members} members, {args.requests:,} requests, median of {args.repeat} interleaved repetitions, "
        "each in a fresh process"
    )
    print(
        f"{'algorithm':<18} {'model':<9} {'req/CPU-s':>11} {'req/wall-s':>11} "
        f"{'× heapq':>8} {'× simpy':>8} {'peak MB':>8}"
    )
    for alg in algorithms:
        floor = _median(results[(alg, "heapq")], "cpu") if "heapq" in models else float("nan")
        simpy_rate = _median(results[(alg, "simpy")], "cpu") if "simpy" in models else float("nan")
        for model in models:
            rows = results[(alg, model)]
            cpu_rate = _median(rows, "cpu")
            print(
                f"{alg:<18} {model:<9} {cpu_rate:>11,.0f} {_median(rows, 'wall'):>11,.0f} "
                f"{cpu_rate / floor:>8.2f} {cpu_rate / simpy_rate:>8.2f} "
                f"{statistics.median(r['peak_mb'] for r in rows):>8.1f}",
                flush=True,
            )
    if not args.no_scale:
        alg = algorithms[0]
        print(
            f"\nscaling ({alg}, exact engine, {args.scale_requests:,} requests, whole run incl. parse and set-up, "
            f"median of {args.repeat})"
        )
        print(f"{'members':>8} {'req/CPU-s':>11} {'req/wall-s':>11} {'× 10 members':>13} {'peak MB':>8}")
        curve: dict[int, list[dict[str, float]]] = {n: [] for n in SCALE_MEMBERS}
        for _ in range(args.repeat):
            for n in SCALE_MEMBERS:
                curve[n].append(measure("exact", alg, n, args.scale_requests, whole=True))
        base = _median(curve[SCALE_MEMBERS[0]], "cpu")
        for n in SCALE_MEMBERS:
            rate = _median(curve[n], "cpu")
            print(
                f"{n:>8,} {rate:>11,.0f} {_median(curve[n], 'wall'):>11,.0f} {rate / base:>13.2f} "
                f"{statistics.median(r['peak_mb'] for r in curve[n]):>8.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
