"""The regression suite in ``scenarios/regression/``: every expectation must hold.

Each scenario pins one piece of Octavia/HAProxy status semantics with expectations whose
times were derived from the rules (check delay, fall/rise, heartbeat interval, worker
durations), not copied from a run; the derivation is in each file's header. Beyond the
expectations, a few facts that expectations cannot express are checked here from the
run's other tables: the 409 answers in ``api.csv`` and what the data plane did with the
traffic.

A scenario that fails because of an engine bug gets an entry in ``KNOWN_ENGINE_BUGS``
(strict xfail), so that the fix turns it into an unexpected pass that must be cleaned up.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from lbsim import load_scenario, run_scenario
from lbsim.results.folder import RunResult
from lbsim.scenario import model as m

REGRESSION = Path(__file__).resolve().parent.parent / "scenarios" / "regression"
FILES = sorted(REGRESSION.glob("*.yaml"))

#: file stem -> reason, for scenarios whose reference expectations the engine misses
KNOWN_ENGINE_BUGS: dict[str, str] = {}


@cache
def _run(stem: str) -> RunResult:
    path = REGRESSION / f"{stem}.yaml"
    return run_scenario(load_scenario(path), base_dir=REGRESSION, log_requests=True)


def _params() -> list[object]:
    out: list[object] = []
    for f in FILES:
        marks = []
        if f.stem in KNOWN_ENGINE_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_ENGINE_BUGS[f.stem]))
        out.append(pytest.param(f.stem, id=f.stem, marks=marks))
    return out


def test_the_suite_has_one_scenario_per_case() -> None:
    """Cases (a)..(h) of issue 3 each have their scenario file."""
    prefixes = sorted(f.name[:2] for f in FILES)
    assert prefixes == [f"{c}-" for c in "abcdefgh"]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_uses_every_expectation_form(path: Path) -> None:
    """Each scenario pins a point in time, a window held throughout, and a transition."""
    sc = load_scenario(path)
    forms = {
        "at" if e.at is not None else "transition" if e.transition is not None else "within"
        for e in sc.expect
    }
    assert forms == {"at", "within", "transition"}


@pytest.mark.parametrize("stem", _params())
def test_every_expectation_holds(stem: str) -> None:
    """The engine reproduces the reference semantics each scenario spells out."""
    result = _run(stem)
    exp = result.expectations
    assert len(exp) == len(load_scenario(REGRESSION / f"{stem}.yaml").expect) > 0
    failing = exp[exp["result"] != "pass"]
    assert failing.empty, "\n" + failing.to_string()


def test_c_drained_member_gets_no_new_traffic_and_an_all_drained_pool_answers_503() -> None:
    """Weight 0 takes web-1 out of the rotation once the configuration is pushed (t=63);
    with both members at weight 0 the backend has no usable server: every request 503."""
    q = _run("c-weight-zero-draining").requests
    assert q is not None
    before = q[(q.time > 1) & (q.time < 61)]
    assert set(before.member) == {"web-1", "web-2"}
    drained = q[(q.time > 63.001) & (q.time < 101)]
    assert len(drained) > 0 and set(drained.member) == {"web-2"}
    assert (drained.outcome == "ok").all()
    none_left = q[q.time > 103.001]
    assert len(none_left) > 0 and set(none_left.outcome) == {"503"}


def test_e_refusing_member_without_monitor_keeps_getting_connections() -> None:
    """Without checks HAProxy never takes web-1 out: it keeps getting its round-robin
    share of new connections. Each is refused and, since roundrobin is not a hash, there
    is no persistence and other servers are usable, HAProxy 2.6 redispatches it at once
    to another server (measured on loopback): no error and no turn-around delay, but
    web-1 serves nothing."""
    q = _run("e-no-monitor").requests
    assert q is not None
    late = q[(q.time > 80) & (q.time < 100)]
    assert len(late) > 100
    assert set(late.outcome) == {"ok"}
    assert "web-1" not in set(late.member)
    assert late.latency.max() < 1.0

def test_g_no_listener_answers_before_the_load_balancer_is_built() -> None:
    """Until the create flow ends (t=45) there is no amphora: connections fail."""
    q = _run("g-provision-from-nothing").requests
    assert q is not None
    early = q[q.time < 44.999]
    late = q[q.time > 45.001]
    assert len(early) > 0 and set(early.outcome) == {"connect"}
    assert len(late) > 0 and set(late.outcome) == {"ok"}


def test_h_api_csv_records_the_409s_and_the_refused_update_changed_nothing() -> None:
    """The member PUT at 62 hits the LB lock held by the listener PUT at 61 (409, Load
    Balancer immutable); the member PUT at 151 hits the pool left in ERROR (409, Pool
    immutable). Every other call is accepted with Octavia's PUT code 200."""
    result = _run("h-conflict-and-revert")
    api = result.api_calls
    sc = load_scenario(REGRESSION / "h-conflict-and-revert.yaml")
    calls = [e for e in sc.events if isinstance(e, m.ApiEvent)]
    assert len(api) == len(calls)
    by_time = {float(r.time): r for r in api.itertuples(index=False)}
    refused = {t: r for t, r in by_time.items() if r.code == 409}
    assert set(refused) == {62.0, 151.0}
    assert (refused[62.0].object_type, refused[62.0].name) == ("member", "web-2")
    assert "Load Balancer lb1" in refused[62.0].message
    assert "immutable" in refused[62.0].message
    assert "Pool web" in refused[151.0].message
    assert all(r.code == 200 for t, r in by_time.items() if t not in refused)
    # the refused weight 0 never reached HAProxy: web-2 still takes its round-robin half
    q = result.requests
    assert q is not None
    window = q[(q.time > 63) & (q.time < 100)]
    share = (window.member == "web-2").mean()
    assert 0.45 < share < 0.55
