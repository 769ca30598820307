"""Generated differential tests: balancing schedules on a real HAProxy and on the twin.

``generated_balancing.generate(seed)`` draws a small pool and a schedule of requests,
health-check DOWN/UP, ``state maint|ready`` and ``weight`` changes (see that module);
each schedule runs on HAProxy 2.6 on 127.0.0.1, with the configuration
``lbsim.haproxy.config.render`` produces, and on the twin's backend and health counters;
the server of every request and every server's status string after every step must be
identical.

Budget: ``LBSIM_GENERATED_CASES`` schedules (default 90) from seeds
``LBSIM_GENERATED_SEED`` (default 20261130) onwards, run ``PARALLEL`` at a time; about a
half a minute on two shared cores. Set the variables for more on demand, e.g.
``LBSIM_GENERATED_CASES=500 pytest -m haproxy tests/conformance/test_haproxy_generated.py``.

A failing schedule is shrunk (:func:`shrink`: drop steps, drop trailing requests, while it
still fails) and printed; record it in ``REGRESSIONS`` below with HAProxy's picks, so it
is checked on every quick run (twin only, no HAProxy: ``test_recorded_regressions``) and
against HAProxy in the long run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import pytest

from .generated_balancing import Schedule, Trace, differences, generate, run_on_haproxy, run_on_twin
from .haproxy_harness import haproxy_version, record_fidelity, require_haproxy

SEED = int(os.environ.get("LBSIM_GENERATED_SEED", "20261130"))
CASES = int(os.environ.get("LBSIM_GENERATED_CASES", "90"))
PARALLEL = 4


# ======================================================================================
# Recorded regression cases (shrunk from generated failures), with HAProxy 2.6's picks
# ======================================================================================

#: (schedule, HAProxy 2.6.12's picks, what it pins). No generated schedule has disagreed
#: on picks so far (seeds 1000-1299, 5000-5199, 20261130-...: see docs/fidelity.md); these
#: pin the cases issue 16 names (a weighted server DOWN and back, late in a long
#: sequence) and one per algorithm, measured with ``run_on_haproxy``.
REGRESSIONS: list[tuple[Schedule, list[int], str]] = [
    (
        Schedule(
            algorithm="ROUND_ROBIN",
            weights=(5, 1, 3, 2),
            backup=(False, False, False, False),
            admin=(True, True, True, True),
            checked=True,
            rise=2,
            fall=3,
            steps=(("req", 33), ("fail", 1, "refuse"), ("req", 33), ("heal", 1), ("req", 150)),
            seed=0,
        ),
        [
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            2,
            0,
            3,
            1,
            0,
            2,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
            1,
            2,
            3,
            0,
            0,
            2,
            0,
            3,
            0,
            2,
            0,
        ],
        "rr weights 5,1,3,2: s1 DOWN by health check at 33, back at 66, 150 more picks (the long catch-up)",
    ),
    (
        Schedule(
            algorithm="ROUND_ROBIN",
            weights=(200, 3, 17, 1),
            backup=(False, False, False, True),
            admin=(True, True, True, True),
            checked=True,
            rise=1,
            fall=2,
            steps=(("req", 50), ("fail", 2, "error"), ("req", 40), ("weight", 0, 7), ("heal", 2), ("req", 120)),
            seed=0,
        ),
        [
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            2,
            1,
            0,
            2,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            1,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            0,
            2,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            1,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            0,
            2,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            1,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            0,
            2,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            1,
            2,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            2,
            0,
            2,
            2,
            0,
            2,
            2,
            1,
            0,
            2,
            2,
            2,
            0,
            2,
            2,
            0,
        ],
        "rr weights 200,3,17 + backup: DOWN by 500s, weight change while away, rejoin",
    ),
    (
        Schedule(
            algorithm="LEAST_CONNECTIONS",
            weights=(1, 3, 2),
            backup=(False, False, False),
            admin=(True, True, False),
            checked=True,
            rise=1,
            fall=1,
            steps=(
                ("req", 6),
                ("fail", 1, "refuse"),
                ("req", 4),
                ("release", 0),
                ("release", 1),
                ("ready", 2),
                ("heal", 1),
                ("req", 8),
            ),
            seed=0,
        ),
        [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 1, 2, 1, 1, 2],
        "leastconn held connections: DOWN while busy, releases, ready from disabled, rejoin",
    ),
    (
        Schedule(
            algorithm="SOURCE_IP",
            weights=(2, 3, 5, 1),
            backup=(False, False, False, False),
            admin=(True, True, True, True),
            checked=True,
            rise=2,
            fall=2,
            steps=(
                ("req", 40),
                ("fail", 2, "refuse"),
                ("req", 40),
                ("weight", 0, 0),
                ("req", 20),
                ("heal", 2),
                ("weight", 0, 2),
                ("req", 40),
            ),
            seed=7,
        ),
        [
            2,
            2,
            1,
            2,
            1,
            2,
            0,
            0,
            2,
            2,
            2,
            2,
            2,
            1,
            2,
            2,
            1,
            2,
            1,
            2,
            1,
            0,
            2,
            2,
            1,
            1,
            1,
            1,
            2,
            1,
            1,
            2,
            2,
            3,
            3,
            1,
            2,
            0,
            2,
            1,
            0,
            0,
            1,
            0,
            0,
            1,
            0,
            1,
            1,
            1,
            0,
            1,
            0,
            0,
            1,
            0,
            1,
            0,
            1,
            3,
            0,
            1,
            0,
            3,
            1,
            1,
            1,
            1,
            3,
            1,
            3,
            0,
            1,
            1,
            0,
            1,
            3,
            1,
            1,
            3,
            1,
            3,
            1,
            3,
            1,
            1,
            3,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            3,
            3,
            1,
            1,
            1,
            1,
            2,
            2,
            0,
            0,
            2,
            2,
            2,
            2,
            1,
            1,
            1,
            2,
            0,
            2,
            3,
            2,
            2,
            2,
            2,
            1,
            2,
            2,
            0,
            1,
            2,
            1,
            1,
            1,
            2,
            0,
            2,
            2,
            2,
            2,
            2,
            0,
            2,
            2,
            2,
            2,
        ],
        "source 2,3,5,1: DOWN, weight 0, rejoin; 140 addresses",
    ),
]


@pytest.mark.parametrize(("schedule", "haproxy_picks", "why"), REGRESSIONS, ids=[r[2] for r in REGRESSIONS])
def test_recorded_regressions(schedule: Schedule, haproxy_picks: list[int], why: str) -> None:
    """Quick suite: the twin reproduces the pick sequence HAProxy 2.6 produced for each
    recorded schedule (measured with ``run_on_haproxy``)."""
    assert run_on_twin(schedule).picks == haproxy_picks, why


# ======================================================================================
# Generated cases against HAProxy
# ======================================================================================


@dataclass
class Outcome:
    schedule: Schedule
    real: Trace | None = None
    twin: Trace | None = None
    error: BaseException | None = None
    seconds: float = 0.0


def run_both(s: Schedule) -> tuple[Trace, Trace]:
    """HAProxy first, then the twin, releasing the servers HAProxy released."""
    real, released = run_on_haproxy(s)
    return real, run_on_twin(s, released)


def fails(s: Schedule) -> bool:
    """Whether the two sides disagree on ``s`` (errors count as disagreement)."""
    try:
        real, twin = run_both(s)
    except Exception:
        return True
    return bool(differences(real, twin))


def shrink(s: Schedule, failing: Callable[[Schedule], bool] = fails, budget: int = 60) -> Schedule:
    """A smaller schedule that still fails: greedily drop steps, then shorten request
    steps (halve, else one fewer), keeping each change that still fails (at most
    ``budget`` runs)."""
    runs = 0
    changed = True
    while changed and runs < budget:
        changed = False
        for j in range(len(s.steps)):
            cand = replace(s, steps=s.steps[:j] + s.steps[j + 1 :])
            if not cand.steps or not any(st[0] == "req" for st in cand.steps):
                continue
            runs += 1
            if failing(cand):
                s, changed = cand, True
                break
        if changed:
            continue
        for j, st in enumerate(s.steps):
            if st[0] != "req" or st[1] <= 1:
                continue
            for fewer in sorted({max(1, st[1] // 2), st[1] - 1}):
                cand = replace(s, steps=(*s.steps[:j], ("req", fewer), *s.steps[j + 1 :]))
                runs += 1
                if failing(cand):
                    s, changed = cand, True
                    break
            if changed:
                break
    return s


def _schedules() -> list[Schedule]:
    return [generate(SEED + k) for k in range(CASES)]


SCHEDULES = _schedules()
REGRESSION_SCHEDULES = [r[0] for r in REGRESSIONS]


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest) -> Iterator[dict[int, Outcome]]:
    """Run every selected schedule (generated and recorded) against HAProxy, PARALLEL at once."""
    require_haproxy()
    print(f"\n{haproxy_version()}")
    wanted = [
        item.callspec.params["k"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "k" in item.callspec.params
    ]
    every = SCHEDULES + REGRESSION_SCHEDULES
    results = {k: Outcome(every[k]) for k in wanted}

    def work(k: int) -> None:
        out = results[k]
        t = time.monotonic()
        try:
            out.real, out.twin = run_both(out.schedule)
        except BaseException as exc:  # reported by the schedule's test
            out.error = exc
        out.seconds = time.monotonic() - t

    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="schedule") as pool:
        list(pool.map(work, wanted))
    yield results


def _ids() -> list[str]:
    return [f"{k}-{s.label()}" for k, s in enumerate(SCHEDULES)] + [
        f"regression-{j}" for j in range(len(REGRESSION_SCHEDULES))
    ]


@pytest.mark.haproxy
@pytest.mark.parametrize("k", range(len(SCHEDULES) + len(REGRESSION_SCHEDULES)), ids=_ids())
def test_generated_schedule_matches_haproxy(outcomes: dict[int, Outcome], k: int) -> None:
    """Identical picks and status strings on HAProxy and on the twin; a failure prints
    the schedule shrunk to a smaller one that still fails (record it in REGRESSIONS)."""
    out = outcomes[k]
    if out.error is not None:
        raise out.error
    assert out.real is not None and out.twin is not None
    problems = differences(out.real, out.twin)
    if problems and os.environ.get("LBSIM_SHRINK", "1") != "0":
        small = shrink(out.schedule)
        with contextlib.suppress(Exception):
            real, _ = run_on_haproxy(small)
            problems.append(f"shrunk: {small!r}\n  HAProxy picks: {real.picks}")
    assert not problems, f"{out.schedule!r}\n" + "\n".join(problems)


@pytest.mark.haproxy
def test_generated_summary(outcomes: dict[int, Outcome]) -> None:
    """One fidelity row per algorithm with the counts; the run stayed within budget."""
    by_algo: dict[str, Counter[str]] = {}
    for k, out in outcomes.items():
        c = by_algo.setdefault(out.schedule.algorithm, Counter())
        c["schedules"] += 1
        c["pinned"] += k >= len(SCHEDULES)
        if out.real is not None and out.twin is not None:
            c["picks"] += len(out.real.picks)
            c["states"] += len(out.real.states) * len(out.schedule.weights)
            c["moves"] += len(out.real.moves)
            if not differences(out.real, out.twin):
                c["agree"] += 1
                c["picks_agree"] += len(out.real.picks)
    for algo, c in sorted(by_algo.items()):
        record_fidelity(
            suite="generated",
            case=f"generated-{algo.lower()}",
            title=f"{algo}: {c['schedules'] - c['pinned']} generated schedules (seed {SEED}) "
            f"+ {c['pinned']} pinned, {c['moves']} health-check DOWN/UP moves",
            metric="picks and status strings identical",
            twin=f"{c['picks']} picks, {c['states']} states",
            haproxy=f"{c['agree']} of {c['schedules']} schedules identical",
            worst=c["schedules"] - c["agree"],
            tolerance="identical",
            ok=c["agree"] == c["schedules"],
        )
    slowest = max((o.seconds for o in outcomes.values()), default=0.0)
    assert slowest < 60, f"a schedule took {slowest:.1f} s"


# ======================================================================================
# The generator and the shrinker themselves (quick suite, no HAProxy)
# ======================================================================================


@pytest.mark.parametrize("seed", range(SEED, SEED + 200))
def test_generated_schedules_are_valid(seed: int) -> None:
    """Every generated schedule is something HAProxy accepts and the harness can drive:
    2-6 servers, weights 0-256, SOURCE_IP weights only 0 or the configured one, DOWN/UP
    alternating per server, releases only for LEAST_CONNECTIONS, and a refusing member
    without a health monitor only while two other active members stay usable."""
    s = generate(seed)
    assert s == generate(seed)  # a pure function of the seed
    n = len(s.weights)
    assert 2 <= n <= 6 and all(0 <= w <= 256 for w in s.weights)
    assert s.algorithm in ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
    faulty = [False] * n
    for step in s.steps:
        if step[0] == "weight" and s.algorithm == "SOURCE_IP":
            assert step[2] in (0, s.weights[step[1]])
        if step[0] == "release":
            assert s.algorithm == "LEAST_CONNECTIONS"
        if step[0] in ("fail", "heal"):
            assert faulty[step[1]] == (step[0] == "heal")
            faulty[step[1]] = step[0] == "fail"
            if step[0] == "fail" and step[2] == "refuse" and not s.checked:
                assert s.algorithm != "SOURCE_IP"
    assert s.steps[-1][0] == "req"


def test_shrink_finds_a_smaller_failing_schedule() -> None:
    """With a stand-in for "HAProxy and the twin disagree" (a maint of m1 followed by at
    least 3 requests), the shrinker drops every other step and trims the requests to 3."""
    big = Schedule(
        "ROUND_ROBIN",
        (3, 1, 2),
        (False, False, False),
        (True, True, True),
        True,
        2,
        2,
        (("req", 40), ("weight", 0, 5), ("maint", 1), ("req", 24), ("fail", 2, "refuse"), ("req", 9)),
    )

    def failing(s: Schedule) -> bool:
        seen_maint = False
        after = 0
        for st in s.steps:
            if st[0] == "maint" and st[1] == 1:
                seen_maint = True
            elif st[0] == "req" and seen_maint:
                after += st[1]
        return seen_maint and after >= 3

    small = shrink(big, failing)
    assert failing(small)
    assert small.steps == (("maint", 1), ("req", 3))
