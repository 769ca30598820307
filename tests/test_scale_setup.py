"""Set-up stays O(members) and cheap per member (issue 15, "scale to 10,000 members").

These tests count things (random generators created, collector runs, bytes per status
row) rather than time anything, so they fail on a regression whatever the machine's load.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lbsim.sim.amphora as amphora_mod
from lbsim.api import run_scenario
from lbsim.bench import bench_yaml
from lbsim.octavia.timeline import Timeline, Transition
from lbsim.scenario import model as m
from lbsim.scenario.gcpause import freeze_existing, gc_frozen, gc_paused
from lbsim.scenario.loader import parse_scenario
from lbsim.sim.amphora import lazy_uniform
from lbsim.sim.distributions import make_sampler, stream


@given(seed=st.integers(0, 2**32 - 1), name=st.text(min_size=1, max_size=20), n=st.integers(1, 5000))
@settings(max_examples=40, deadline=None)
def test_lazy_partial_stream_draws_what_an_eager_one_draws(seed: int, name: str, n: int) -> None:
    """Creating the named stream on first use changes no number (same seed, same name)."""
    lazy = lazy_uniform(seed, name)
    eager = make_sampler(m.Uniform(dist="uniform", low=0, high=1), stream(seed, name))
    assert [lazy() for _ in range(n)] == [eager() for _ in range(n)]
    assert lazy.mean == eager.mean == 0.5


@pytest.fixture
def count_streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of the random streams the amphora module creates."""
    made: list[str] = []
    real = amphora_mod.stream

    def counting(seed: int, name: str) -> np.random.Generator:
        made.append(name)
        return real(seed, name)

    monkeypatch.setattr(amphora_mod, "stream", counting)
    yield made


def test_set_up_creates_no_stream_per_member(count_streams: list[str]) -> None:
    """600 members without partial faults: a handful of streams, not one per member."""
    text = bench_yaml("ROUND_ROBIN", 600, 2000)
    res = run_scenario(parse_scenario(text, "scale.yaml"), scenario_yaml=text, engine="exact")
    assert int(res.summary["requests"]) > 0
    assert not [n for n in count_streams if n.startswith("partial:")]
    assert len(count_streams) < 10


def _gen2_runs(fn: Any) -> int:
    runs = [0]

    def cb(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            runs[0] += 1

    gc.collect()
    gc.callbacks.append(cb)
    try:
        fn()
    finally:
        gc.callbacks.remove(cb)
    return runs[0]


def test_parsing_a_large_scenario_runs_no_full_collection() -> None:
    """Parsing 3,000 members builds objects that all live on: no oldest-generation
    collection re-traverses them while parsing (it did several times, half of parse time)."""
    text = bench_yaml("ROUND_ROBIN", 3000, 2000)
    assert gc.isenabled()
    assert _gen2_runs(lambda: parse_scenario(text, "scale.yaml")) == 0
    assert gc.isenabled()


def test_gc_paused_restores_the_collector_state() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_freeze_existing_hides_what_exists_and_undoes_only_its_own() -> None:
    """Objects that exist are frozen (out of collections) until the undo; objects made
    after are not; an existing freeze (a caller's own) is neither added to nor undone."""
    assert gc.get_freeze_count() == 0
    before = [object() for _ in range(10)]
    thaw = freeze_existing()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > len(before)
        made = [[i] for i in range(100)]  # tracked, young: the collector still sees them
        assert any(gc.is_tracked(x) for x in made)
        assert gc.get_freeze_count() == frozen
        inner = freeze_existing()  # nested: already frozen, so nothing to do
        assert gc.get_freeze_count() == frozen
        inner()
        assert gc.get_freeze_count() == frozen
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own freeze stays as it was, through a block and after
    try:
        theirs = gc.get_freeze_count()
        with gc_frozen():
            assert gc.get_freeze_count() == theirs
        assert gc.get_freeze_count() == theirs
    finally:
        gc.unfreeze()
    with pytest.raises(RuntimeError), gc_frozen():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_a_run_keeps_its_deployment_out_of_collections_and_thaws_after() -> None:
    """While a run goes on, the deployment built at set-up is frozen (no collection
    re-traverses its thousands of servers); afterwards nothing stays frozen, even when
    the run fails."""
    text = bench_yaml("ROUND_ROBIN", 300, 3000)
    sc = parse_scenario(text, "scale.yaml")
    seen: list[int] = []
    res = run_scenario(sc, scenario_yaml=text, engine="exact", progress=lambda _f: seen.append(gc.get_freeze_count()))
    assert int(res.summary["requests"]) > 0
    assert seen and min(seen) > 300 * 10  # at least a few objects per member
    assert gc.get_freeze_count() == 0

    def boom(_f: float) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        run_scenario(sc, scenario_yaml=text, engine="exact", progress=boom)
    assert gc.get_freeze_count() == 0


def test_a_world_run_freezes_its_deployments_and_thaws_after() -> None:
    """The same for scenarios with ``loadbalancers:`` (several trees on one clock)."""
    from lbsim.sim.world import World

    members = ", ".join(
        f"{{name: m{i}, address: 10.0.{i // 200}.{i % 200 + 1}, protocol_port: 80}}" for i in range(200)
    )
    text = f"""
name: two
duration: 5
loadbalancers:
  - name: a
    listeners: [{{name: la, protocol: HTTP, protocol_port: 80, default_pool: pa}}]
    pools: [{{name: pa, protocol: HTTP, lb_algorithm: ROUND_ROBIN, members: [{members}]}}]
traffic: [{{listener: la, arrival: {{process: poisson, rate: 50}}}}]
"""
    seen: list[int] = []
    raw = World(parse_scenario(text, "two.yaml")).run(progress=lambda _f: seen.append(gc.get_freeze_count()), steps=4)
    assert raw.dp.ok > 0
    assert seen and min(seen) > 200 * 10
    assert gc.get_freeze_count() == 0


def test_status_rows_are_plain_tuples() -> None:
    """A status row carries no per-instance dict (a frozen dataclass did: slower to build,
    larger to keep) and still reads by field name."""
    row = Transition(0.0, "member", "m1", "operating_status", "", "ONLINE")
    assert isinstance(row, tuple)
    assert not hasattr(row, "__dict__")
    assert (row.name, row.new) == ("m1", "ONLINE")


def test_initial_status_recording_is_compact() -> None:
    """Recording one initial value per member costs well under 0.5 KB each."""
    tl = Timeline()
    names = [f"m{i}" for i in range(5000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names:
            tl.set(0.0, "member", name, "operating_status", "ONLINE")
        per_row = (tracemalloc.get_traced_memory()[0] - before) / len(names)
    finally:
        tracemalloc.stop()
    assert per_row < 450, per_row  # 491 bytes with the frozen dataclass rows
    assert tl.value_at("member", "m42", "operating_status", 5.0) == "ONLINE"


@given(
    data=st.lists(st.tuples(st.integers(0, 40), st.floats(1e-6, 100.0)), max_size=400),
    members=st.integers(1, 41),
)
@settings(max_examples=60, deadline=None)
def test_row_summaries_equal_one_summary_per_row(data: list[tuple[int, float]], members: int) -> None:
    """members.csv's vectorised per-member summaries are exactly the per-row ones
    (counts, means and percentiles to the bit; empty members NaN)."""
    from lbsim.sim.metrics import LatencyRecorder

    rec = LatencyRecorder(members, 10)
    for member, latency in data:
        rec.add(member % members, latency)
    rows = list(range(members))
    got = rec.row_summaries(rows)
    want = [rec.summary([r]) for r in rows]
    same = [
        (g.count, g.mean, g.p50, g.p95, g.p99) == (w.count, w.mean, w.p50, w.p95, w.p99) or (g.count == w.count == 0)
        for g, w in zip(got, want, strict=True)
    ]
    assert all(same), [(g, w) for g, w, ok in zip(got, want, same, strict=True) if not ok]


class _Kind(str):
    """An object type that counts how often it is compared."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _Kind.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_loading_members_without_a_monitor_looks_at_each_description_a_few_times() -> None:
    """A running pool without a health monitor: its members are NO_MONITOR and one with
    a monitor ONLINE, and loading n members compares O(n) object types (it scanned the
    whole tree per member: 10,000 members took 20 s)."""
    from lbsim.octavia.controlplane import ControlPlane
    from lbsim.octavia.objects import ObjSpec

    n = 300
    pool = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    specs = [
        ObjSpec(_Kind("loadbalancer"), "lb"),
        ObjSpec(_Kind("pool"), "bare", pool),
        ObjSpec(_Kind("pool"), "watched", pool),
        ObjSpec(_Kind("healthmonitor"), "hm", {"pool": "watched", "type": "HTTP", "admin_state_up": True}),
        ObjSpec(_Kind("member"), "w", {"pool": "watched", "address": "10.1.0.1", "protocol_port": 80}),
        *(
            ObjSpec(
                _Kind("member"),
                f"m{i}",
                {"pool": "bare", "address": f"10.0.{i // 250}.{i % 250 + 1}", "protocol_port": 80},
            )
            for i in range(n)
        ),
    ]
    _Kind.compared = 0
    cp = ControlPlane()
    cp.load_active(specs)
    member_ops = {o.name: o.operating_status for o in cp.objects() if o.type == "member"}
    assert member_ops.pop("w") == "ONLINE"
    assert set(member_ops.values()) == {"NO_MONITOR"} and len(member_ops) == n
    assert _Kind.compared < 30 * n, _Kind.compared


def test_the_occupancy_sample_counts_every_queued_request() -> None:
    """The once-a-second sample sums the members' queues (kept as one list), also for
    servers that joined the data plane without add_server."""
    from lbsim.sim.dataplane import DataPlane, Server
    from lbsim.sim.kernel import TwinEnvironment

    env = TwinEnvironment()
    dp = DataPlane(env, 4, 0.0, 10.0, False)
    one = make_sampler(m.Constant(dist="constant", value=0.01), stream(1, "t"))
    servers = [Server(dp, i, f"m{i}", 1, one, one) for i in range(5)]
    for s in servers[:4]:
        dp.add_server(s)
    dp.servers.append(servers[4])  # as a merge of data planes does
    for k, s in enumerate(servers):
        s.queue.extend([(0.0,)] * (k + 1))
    dp.sample()
    servers[2].queue.clear()
    dp.sample()
    assert [row[1] for row in dp.samples] == [15, 12]


@given(scenario=st.text(), kind=st.text(), name=st.text())
@settings(max_examples=300, deadline=None)
def test_object_ids_are_the_uuid5_of_the_names(scenario: str, kind: str, name: str) -> None:
    """The id built from the digest directly is uuid5's, character for character."""
    import uuid

    from lbsim.scenario.ids import object_id

    text = f"lbsim:{scenario}:{kind}:{name}"
    try:
        want = str(uuid.uuid5(uuid.NAMESPACE_URL, text))
    except UnicodeEncodeError:  # lone surrogates: neither can encode them
        with pytest.raises(UnicodeEncodeError):
            object_id(scenario, kind, name)
        return
    assert object_id(scenario, kind, name) == want
